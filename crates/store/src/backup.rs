//! Online copies of the store: SQLite's backup API over a connection of its own, so the copy
//! is one consistent snapshot (a single read transaction in WAL mode) while other connections
//! and processes go on writing.
//!
//! Invariant: the copy is written to a file beside its final name and renamed into place only
//! once complete and synced, so a copy that exists is whole.

use crate::error::{Result, StoreError};
use crate::store::Store;
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use std::path::Path;
use std::time::Duration;

/// The newest store schema this binary reads.
pub fn supported_schema_version() -> i64 {
    crate::migrations::MIGRATIONS.len() as i64
}

/// What a copy holds, read from the copy itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyInfo {
    pub bytes: u64,
    pub schema_version: i64,
    /// The last audit record in the copy (sequence and hash), if any.
    pub audit_head: Option<(i64, String)>,
}

impl Store {
    /// Moves everything in the write-ahead log into the database file, so the file alone holds
    /// every committed change (before it is moved or copied as a file).
    pub fn checkpoint(&self) -> Result<()> {
        self.conn()
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }

    /// Copies the database to `dest` (which must not exist) as one consistent snapshot, after
    /// chaining this process's journalled read records.
    pub fn copy_to(&self, dest: &Path) -> Result<CopyInfo> {
        self.flush_read_audit()?;
        if dest.exists() {
            return Err(StoreError::Refused(format!("{} already exists", dest.display())));
        }
        let source = Connection::open_with_flags(
            self.path(),
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        source.busy_timeout(Duration::from_secs(30))?;
        let mut partial = dest.as_os_str().to_owned();
        partial.push(".partial");
        let partial = std::path::PathBuf::from(partial);
        let _ = std::fs::remove_file(&partial);
        {
            let mut copy = Connection::open(&partial)?;
            // All pages in one step: one read transaction on the source, so the copy is a
            // snapshot even while others write (which the WAL lets them do meanwhile).
            use rusqlite::backup::{Backup, StepResult};
            let backup = Backup::new(&source, &mut copy)?;
            let mut waits = 0;
            loop {
                match backup.step(-1)? {
                    StepResult::Done => break,
                    StepResult::More => {}
                    // A writer holds a lock the copy must wait for (rare in WAL mode).
                    StepResult::Busy | StepResult::Locked if waits < 600 => {
                        waits += 1;
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    _ => {
                        return Err(StoreError::Io(format!(
                            "{}: the store stayed locked for 30 s; try again",
                            self.path().display()
                        )));
                    }
                }
            }
        }
        let file = std::fs::File::open(&partial).map_err(|e| io(&partial, e))?;
        file.sync_all().map_err(|e| io(&partial, e))?;
        drop(file);
        let info = inspect(&partial)?;
        std::fs::rename(&partial, dest).map_err(|e| io(dest, e))?;
        Ok(info)
    }
}

/// Schema version and audit head of a database file, read without migrating it.
pub fn inspect(path: &Path) -> Result<CopyInfo> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let schema_version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let has_audit: bool = conn
        .query_row(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'audit_log'",
            [],
            |_| Ok(true),
        )
        .optional()?
        .unwrap_or(false);
    let audit_head = if has_audit {
        conn.query_row(
            "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?
    } else {
        None
    };
    let integrity: String = conn.query_row("PRAGMA quick_check", [], |r| r.get(0))?;
    if integrity != "ok" {
        return Err(StoreError::Corrupt(format!("{}: {integrity}", path.display())));
    }
    let bytes = std::fs::metadata(path).map_err(|e| io(path, e))?.len();
    Ok(CopyInfo {
        bytes,
        schema_version,
        audit_head,
    })
}

fn io(path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Io(format!("{}: {e}", path.display()))
}
