//! The read-audit journal: how a search's audit record is made durable without a SQLite commit
//! per search.
//!
//! A read (search, ask) changes nothing, so its record needs no transaction of its own; what it
//! needs is to survive anything that the caller survives. Committing each record into the
//! chain costs a B-tree insert into the table and its three indexes plus a WAL commit — more
//! than a lexical search itself. Instead, [`ReadAuditJournal::append`] writes the *masked*
//! record (sensitive data never reaches disk unmasked) as one JSON line to a journal file that
//! belongs to this process, and returns once `write(2)` has handed it to the OS: from then on a
//! kill of the process cannot lose it, the same promise as a WAL commit at
//! `synchronous = NORMAL`. A flusher thread moves journalled records into the hash chain in
//! batches — one transaction for many records — and records in the same transaction how far
//! into the journal it has got (`audit_journal.offset`), so a crash between the two never
//! chains a record twice or skips one.
//!
//! Ownership: each process holds an exclusive advisory lock on its own journal file for its
//! lifetime. A file whose lock can be taken belongs to a process that is gone; whoever opens
//! the store next (or the flusher's periodic sweep) chains what that process left behind, then
//! deletes the file *before* its offset row, so a crash in between leaves a row without a file
//! (dropped on the next sweep), never a file without a row (which would replay it from the
//! start).
//!
//! Readers of the chain (`audit query`, `verify`, lineage) flush this process's journal first;
//! another live process's records reach the chain within one flush interval.

use crate::error::{Result, StoreError};
use crate::sql::write_transaction;
use groundwork_govern::audit::AuditRow;
use rusqlite::{Connection, OptionalExtension, params};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long a journalled record may wait before the flusher chains it (the default; the
/// environment variable `GROUNDWORK_AUDIT_FLUSH_MS` overrides it, which the crash tests use to
/// make sure a kill finds records still in the journal).
const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_millis(100);
/// A batch this large is chained at once instead of waiting for the interval.
const FLUSH_BATCH: usize = 256;
/// A fully chained journal larger than this is replaced by a fresh file.
const ROTATE_BYTES: u64 = 4 << 20;
/// How often the flusher looks for journals left by processes that died.
const ORPHAN_SWEEP: Duration = Duration::from_secs(30);

/// Chains `rows` (masked, unchained) after the current head, in `tx`.
pub(crate) type ChainRows = fn(&rusqlite::Transaction<'_>, Vec<AuditRow>) -> Result<()>;

pub(crate) struct ReadAuditJournal {
    shared: Arc<Shared>,
    flusher: Option<JoinHandle<()>>,
}

struct Shared {
    dir: PathBuf,
    db_path: PathBuf,
    chain_rows: ChainRows,
    state: Mutex<State>,
    wake: Condvar,
}

struct State {
    file: File,
    name: String,
    /// Bytes written to `file`.
    written: u64,
    /// Records written but not yet chained, with the journal offset just past each.
    pending: Vec<(u64, AuditRow)>,
    /// The connection the flusher commits with (opened on first flush).
    conn: Option<Connection>,
    stopping: bool,
    last_sweep: Instant,
    /// The last flush failure, reported to the next appender (the records stay journalled).
    failed: Option<String>,
}

impl ReadAuditJournal {
    /// Opens a fresh journal for this process next to the database at `db_path`, after
    /// chaining whatever dead processes left behind.
    pub(crate) fn open(db_path: &Path, chain_rows: ChainRows) -> Result<ReadAuditJournal> {
        let dir = journal_dir(db_path);
        std::fs::create_dir_all(&dir).map_err(|e| io_error(&dir, e))?;
        let conn = open_connection(db_path)?;
        let (file, name) = create_journal_file(&dir)?;
        let interval = std::env::var("GROUNDWORK_AUDIT_FLUSH_MS")
            .ok()
            .and_then(|ms| ms.parse().ok())
            .map_or(DEFAULT_FLUSH_INTERVAL, Duration::from_millis);
        let shared = Arc::new(Shared {
            dir,
            db_path: db_path.to_path_buf(),
            chain_rows,
            state: Mutex::new(State {
                file,
                name,
                written: 0,
                pending: Vec::new(),
                conn: Some(conn),
                stopping: false,
                last_sweep: Instant::now(),
                failed: None,
            }),
            wake: Condvar::new(),
        });
        let flusher = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("audit-journal".into())
                .spawn(move || shared.run_flusher(interval))
                .map_err(|e| io_error(Path::new("audit-journal thread"), e))?
        };
        Ok(ReadAuditJournal {
            shared,
            flusher: Some(flusher),
        })
    }

    /// Journals one masked record; returns once the OS holds it.
    pub(crate) fn append(&self, row: AuditRow) -> Result<()> {
        let mut line = serde_json::to_vec(&row).expect("audit rows serialise");
        line.push(b'\n');
        let mut state = self.shared.lock();
        if let Some(message) = state.failed.take() {
            // Earlier records are safe in the journal; the caller should still hear that the
            // chain is not advancing.
            tracing_free_warning(&message);
        }
        let state = &mut *state;
        state
            .file
            .write_all(&line)
            .map_err(|e| io_error(&self.shared.dir, e))?;
        state.written += line.len() as u64;
        state.pending.push((state.written, row));
        if state.pending.len() >= FLUSH_BATCH {
            self.shared.wake.notify_one();
        }
        Ok(())
    }

    /// Chains every record this process has journalled so far.
    pub(crate) fn flush(&self) -> Result<()> {
        let mut state = self.shared.lock();
        self.shared.flush_locked(&mut state)
    }
}

impl Drop for ReadAuditJournal {
    fn drop(&mut self) {
        {
            let mut state = self.shared.lock();
            state.stopping = true;
            self.shared.wake.notify_one();
        }
        if let Some(flusher) = self.flusher.take() {
            let _ = flusher.join();
        }
        // What could not be chained now stays in the journal for the next process to chain.
        let mut state = self.shared.lock();
        if self.shared.flush_locked(&mut state).is_ok() {
            let path = self.shared.dir.join(&state.name);
            let name = state.name.clone();
            if let Some(conn) = state.conn.as_mut() {
                let _ = retire_journal(conn, &path, &name);
            }
        }
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn run_flusher(&self, interval: Duration) {
        let mut state = self.lock();
        loop {
            if state.stopping {
                return;
            }
            let (next, _) = self
                .wake
                .wait_timeout(state, interval)
                .unwrap_or_else(|p| p.into_inner());
            state = next;
            if let Err(error) = self.flush_locked(&mut state) {
                state.failed = Some(error.to_string());
            }
            if state.last_sweep.elapsed() >= ORPHAN_SWEEP {
                state.last_sweep = Instant::now();
                let chain_rows = self.chain_rows;
                if let Some(conn) = state.conn.as_mut()
                    && let Err(error) = recover_orphans(&self.dir, conn, chain_rows)
                {
                    state.failed = Some(error.to_string());
                }
            }
        }
    }

    fn flush_locked(&self, state: &mut State) -> Result<()> {
        if state.pending.is_empty() {
            return Ok(());
        }
        if state.conn.is_none() {
            state.conn = Some(open_connection(&self.db_path)?);
        }
        let conn = state.conn.as_mut().expect("opened above");
        let end = state.pending.last().map(|(end, _)| *end).expect("not empty");
        let rows: Vec<AuditRow> = state.pending.iter().map(|(_, row)| row.clone()).collect();
        let tx = write_transaction(conn)?;
        (self.chain_rows)(&tx, rows)?;
        set_offset(&tx, &state.name, end)?;
        tx.commit()?;
        state.pending.clear();
        if state.written >= ROTATE_BYTES {
            let (file, name) = create_journal_file(&self.dir)?;
            let old_name = std::mem::replace(&mut state.name, name);
            let old_file = std::mem::replace(&mut state.file, file);
            state.written = 0;
            drop(old_file);
            retire_journal(conn, &self.dir.join(&old_name), &old_name)?;
        }
        Ok(())
    }
}

/// Where the journals of the database at `db_path` live.
fn journal_dir(db_path: &Path) -> PathBuf {
    let mut name = db_path.file_name().unwrap_or_default().to_os_string();
    name.push(".audit-journal");
    db_path.with_file_name(name)
}

fn open_connection(db_path: &Path) -> Result<Connection> {
    let conn = Connection::open(db_path)?;
    conn.busy_timeout(Duration::from_secs(30))?;
    // Chaining journalled records needs no fsync: the journal already holds them.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(conn)
}

fn create_journal_file(dir: &Path) -> Result<(File, String)> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let name = format!("{}-{nanos}.jsonl", std::process::id());
    // Locked under a name the sweep ignores, then renamed: a sweep never sees a live journal
    // unlocked.
    let opening = dir.join(format!("{name}.new"));
    let file = OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(&opening)
        .map_err(|e| io_error(&opening, e))?;
    // Held until the process exits: the sign to others that this journal is alive.
    file.lock().map_err(|e| io_error(&opening, e))?;
    let path = dir.join(&name);
    std::fs::rename(&opening, &path).map_err(|e| io_error(&path, e))?;
    Ok((file, name))
}

fn set_offset(tx: &rusqlite::Transaction<'_>, name: &str, offset: u64) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO audit_journal (file, offset) VALUES (?1, ?2)
         ON CONFLICT(file) DO UPDATE SET offset = excluded.offset",
    )?
    .execute(params![name, offset as i64])?;
    Ok(())
}

/// Deletes a fully chained journal, then its offset row (in that order: see the module doc).
fn retire_journal(conn: &mut Connection, path: &Path, name: &str) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_error(path, e)),
    }
    conn.execute("DELETE FROM audit_journal WHERE file = ?1", [name])?;
    Ok(())
}

/// Chains what dead processes left in the journals of the database at `db_path`.
pub(crate) fn recover(db_path: &Path, conn: &mut Connection, chain_rows: ChainRows) -> Result<()> {
    let dir = journal_dir(db_path);
    if !dir.exists() {
        return Ok(());
    }
    recover_orphans(&dir, conn, chain_rows)
}

/// Chains the records of every journal whose owner is gone, then removes those journals.
fn recover_orphans(dir: &Path, conn: &mut Connection, chain_rows: ChainRows) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| io_error(dir, e))?;
    let mut present = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| io_error(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".jsonl") {
            continue;
        }
        present.push(name.clone());
        let path = entry.path();
        let Ok(mut file) = OpenOptions::new().read(true).write(true).open(&path) else {
            continue; // Retired meanwhile by its owner.
        };
        if file.try_lock().is_err() {
            continue; // Its process is alive and flushes it itself.
        }
        let tx = write_transaction(conn)?;
        let offset: u64 = tx
            .query_row("SELECT offset FROM audit_journal WHERE file = ?1", [&name], |r| {
                r.get::<_, i64>(0)
            })
            .optional()?
            .unwrap_or(0) as u64;
        let (rows, end) = read_complete_lines(&mut file, offset, &path)?;
        if !rows.is_empty() {
            chain_rows(&tx, rows)?;
            set_offset(&tx, &name, end)?;
        }
        tx.commit()?;
        drop(file);
        retire_journal(conn, &path, &name)?;
    }
    // Offset rows whose file is gone: a crash between deleting a file and its row.
    let stale: Vec<String> = {
        let mut stmt = conn.prepare("SELECT file FROM audit_journal")?;
        let names = stmt.query_map([], |r| r.get::<_, String>(0))?;
        names.collect::<rusqlite::Result<Vec<_>>>()?
    };
    for name in stale {
        if !present.contains(&name) {
            conn.execute("DELETE FROM audit_journal WHERE file = ?1", [&name])?;
        }
    }
    Ok(())
}

/// Reads the whole lines after `offset`. A last line without its newline was being written
/// when the process died — its search never returned — so it is left out.
fn read_complete_lines(file: &mut File, offset: u64, path: &Path) -> Result<(Vec<AuditRow>, u64)> {
    file.seek(SeekFrom::Start(offset))
        .map_err(|e| io_error(path, e))?;
    let mut reader = BufReader::new(file);
    let (mut rows, mut end) = (Vec::new(), offset);
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| io_error(path, e))?;
        if read == 0 || line.last() != Some(&b'\n') {
            break;
        }
        end += read as u64;
        match serde_json::from_slice::<AuditRow>(&line) {
            Ok(row) => rows.push(row),
            Err(error) => {
                return Err(StoreError::AuditJournal(format!(
                    "audit journal {} at byte {}: {error}",
                    path.display(),
                    end - read as u64
                )));
            }
        }
    }
    Ok((rows, end))
}

fn io_error(path: &Path, error: std::io::Error) -> StoreError {
    StoreError::AuditJournal(format!("{}: {error}", path.display()))
}

/// A flush failure has no caller to return to; the store has no logger of its own, so it
/// goes to standard error once, without any record content.
fn tracing_free_warning(message: &str) {
    eprintln!("groundwork: audit journal could not be chained yet (records kept): {message}");
}
