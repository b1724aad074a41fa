//! A pool of parser worker processes: [`ParserPool::parse`] hands one document to an idle
//! worker (see `worker`) and waits for its answer until the document's deadline.
//!
//! Invariants:
//! - **a document's failure stays that document's.** A worker that overruns the deadline is
//!   killed (`SIGKILL`); one that dies (its memory cap, its CPU-time limit, a stack overflow,
//!   an abort) is reaped and its death classified: the document gets `timeout`,
//!   `out_of_memory` or `panic`, and the next document gets a fresh worker;
//! - **at most `workers` processes run**; callers beyond that wait for one to free up;
//! - **workers are reused** (one process serves many documents, so the cost of a start is
//!   paid once per `recycle_after` documents, not per file) and replaced after
//!   `recycle_after` documents, so what a parser leaks or fragments goes back to the OS;
//! - **no worker outlives its use**: dropping the pool kills the idle ones; a worker whose
//!   parent died reads the end of stdin and exits, or, if stuck, is stopped by its own CPU
//!   limit. Workers start with an empty environment (no credentials to leak).
//!
//! The program that can act as a worker registers itself once ([`register_worker_command`]);
//! a library caller without one parses in-thread ([`super::parse_isolated`]).

use super::worker::{self, Request, TEST_FAULTS_VAR, WorkerLimits};
use super::{Extracted, ParseError, ParseLimits};
use serde::Serialize;
use std::ffi::OsString;
use std::io::{self, Read};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Largest answer read from a worker (extracted text is at most 20 M characters by default;
/// JSON escaping can double it).
const MAX_RESPONSE_BYTES: u64 = 512 * 1024 * 1024;

/// How much of a worker's stderr is kept to explain its death.
const STDERR_TAIL_BYTES: usize = 4096;

/// How to start a worker: a program and the arguments that make it one. The pool appends
/// `--memory-bytes N --cpu-seconds S`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerCommand {
    pub program: PathBuf,
    pub args: Vec<OsString>,
}

static COMMAND: OnceLock<WorkerCommand> = OnceLock::new();

/// Says, once per process, how this program starts itself as a parse worker. Later calls are
/// ignored.
pub fn register_worker_command(command: WorkerCommand) {
    let _ = COMMAND.set(command);
}

/// The command registered by [`register_worker_command`], if any.
pub fn registered_worker_command() -> Option<&'static WorkerCommand> {
    COMMAND.get()
}

/// The pool's size and the limits each worker puts on itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolConfig {
    /// Most worker processes at once (default 2).
    pub workers: usize,
    /// Memory and CPU caps of each worker (default 2 GiB, 30 s per document).
    pub limits: WorkerLimits,
    /// Documents one worker parses before it is replaced (default 1,000).
    pub recycle_after: usize,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            workers: 2,
            limits: WorkerLimits {
                memory_bytes: 2 * 1024 * 1024 * 1024,
                cpu_seconds_per_document: 30,
            },
            recycle_after: 1000,
        }
    }
}

/// What the pool has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PoolStats {
    /// Worker processes started.
    pub started: u64,
    /// Worker processes ended: killed at a deadline, dead of a limit, or recycled.
    pub stopped: u64,
    /// Workers alive now (idle or parsing).
    pub live: usize,
    /// Documents answered by a worker (successfully parsed or refused by the parser).
    pub answered: u64,
}

/// See the module docs.
pub struct ParserPool {
    command: WorkerCommand,
    config: PoolConfig,
    state: Mutex<State>,
    freed: Condvar,
}

#[derive(Default)]
struct State {
    idle: Vec<Worker>,
    stats: PoolStats,
}

impl std::fmt::Debug for ParserPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParserPool")
            .field("command", &self.command)
            .field("config", &self.config)
            .field("stats", &self.stats())
            .finish()
    }
}

impl ParserPool {
    /// A pool that starts workers with `command` as documents arrive (none at first).
    pub fn new(command: WorkerCommand, config: PoolConfig) -> ParserPool {
        ParserPool {
            command,
            config,
            state: Mutex::new(State::default()),
            freed: Condvar::new(),
        }
    }

    /// The pool's settings.
    pub fn config(&self) -> PoolConfig {
        self.config
    }

    /// What the pool has done so far.
    pub fn stats(&self) -> PoolStats {
        self.lock().stats
    }

    /// Parses `bytes` (the content of `path_hint`) in a worker process, as
    /// [`super::parse_declared`] would in this one, within `limits.timeout` of wall-clock time
    /// and the pool's memory and CPU caps. [`ParseError::Unavailable`] means no worker could be
    /// started or reached twice in a row — an installation fault, not the document's.
    pub fn parse(
        &self,
        bytes: &[u8],
        path_hint: &str,
        limits: &ParseLimits,
        declared_encoding: Option<&str>,
    ) -> Result<Extracted, ParseError> {
        if bytes.len() as u64 > limits.max_bytes {
            return Err(ParseError::TooLarge {
                size: bytes.len() as u64,
                limit: limits.max_bytes,
            });
        }
        let request = Request {
            path_hint: path_hint.to_owned(),
            declared_encoding: declared_encoding.map(str::to_owned),
            limits: limits.clone(),
        };
        let mut unreachable = 0;
        loop {
            let mut worker = self.acquire()?;
            match worker.exchange(&request, bytes, limits.timeout, &self.config) {
                Outcome::Answer(result) => {
                    worker.served += 1;
                    self.release(worker);
                    return result;
                }
                Outcome::Stopped(error) => {
                    self.discard(worker);
                    return Err(error);
                }
                Outcome::Unreachable(e) => {
                    self.discard(worker);
                    unreachable += 1;
                    if unreachable >= 2 {
                        return Err(ParseError::Unavailable(format!(
                            "{}: {e}",
                            self.command.program.display()
                        )));
                    }
                }
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// An idle worker, a new one if fewer than `workers` are alive, else the next one freed.
    fn acquire(&self) -> Result<Worker, ParseError> {
        let mut state = self.lock();
        loop {
            if let Some(worker) = state.idle.pop() {
                return Ok(worker);
            }
            if state.stats.live < self.config.workers.max(1) {
                state.stats.live += 1;
                state.stats.started += 1;
                drop(state);
                return Worker::start(&self.command, &self.config).map_err(|e| {
                    let mut state = self.lock();
                    state.stats.live -= 1;
                    self.freed.notify_one();
                    ParseError::Unavailable(format!("cannot start {}: {e}", self.command.program.display()))
                });
            }
            state = self.freed.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn release(&self, worker: Worker) {
        self.lock().stats.answered += 1;
        if worker.served >= self.config.recycle_after.max(1) {
            self.discard(worker);
            return;
        }
        let mut state = self.lock();
        state.idle.push(worker);
        self.freed.notify_one();
    }

    fn discard(&self, worker: Worker) {
        drop(worker);
        let mut state = self.lock();
        state.stats.live -= 1;
        state.stats.stopped += 1;
        self.freed.notify_one();
    }
}

impl Drop for ParserPool {
    fn drop(&mut self) {
        let idle = std::mem::take(&mut self.lock().idle);
        drop(idle);
    }
}

/// How one exchange with a worker ended.
enum Outcome {
    /// The worker answered (the parse may still have failed, as it would in-process).
    Answer(Result<Extracted, ParseError>),
    /// The worker was stopped or died on this document.
    Stopped(ParseError),
    /// The worker could not be given the document (it was gone before it read it).
    Unreachable(io::Error),
}

/// One running worker process and the threads that read its output.
struct Worker {
    child: Child,
    stdin: Option<ChildStdin>,
    responses: Receiver<io::Result<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    readers: Vec<JoinHandle<()>>,
    served: usize,
}

impl Worker {
    fn start(command: &WorkerCommand, config: &PoolConfig) -> io::Result<Worker> {
        let mut process = Command::new(&command.program);
        process
            .args(&command.args)
            .arg("--memory-bytes")
            .arg(config.limits.memory_bytes.to_string())
            .arg("--cpu-seconds")
            .arg(config.limits.cpu_seconds_per_document.to_string())
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // What the program itself may need to start, and nothing else.
        for name in ["LD_LIBRARY_PATH", TEST_FAULTS_VAR] {
            if let Some(value) = std::env::var_os(name) {
                process.env(name, value);
            }
        }
        let mut child = process.spawn()?;
        let (Some(stdin), Some(mut stdout), Some(mut stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::other("worker started without its pipes"));
        };
        let (tx, responses) = mpsc::channel();
        let stdout_reader = std::thread::Builder::new()
            .name("groundwork-parse-out".to_owned())
            .spawn(move || {
                loop {
                    match worker::read_response(&mut stdout, MAX_RESPONSE_BYTES) {
                        Ok(Some(payload)) => {
                            if tx.send(Ok(payload)).is_err() {
                                return;
                            }
                        }
                        Ok(None) => return,
                        Err(e) => {
                            let _ = tx.send(Err(e));
                            return;
                        }
                    }
                }
            });
        let tail = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&tail);
        let stderr_reader = std::thread::Builder::new()
            .name("groundwork-parse-err".to_owned())
            .spawn(move || {
                let mut buffer = [0u8; 4096];
                while let Ok(n @ 1..) = stderr.read(&mut buffer) {
                    let mut tail = kept.lock().unwrap_or_else(PoisonError::into_inner);
                    tail.extend_from_slice(&buffer[..n]);
                    let excess = tail.len().saturating_sub(STDERR_TAIL_BYTES);
                    tail.drain(..excess);
                }
            });
        let mut worker = Worker {
            child,
            stdin: Some(stdin),
            responses,
            stderr: tail,
            readers: Vec::new(),
            served: 0,
        };
        // Dropping `worker` on an error below kills the child and joins what started.
        worker.readers.push(stdout_reader?);
        worker.readers.push(stderr_reader?);
        Ok(worker)
    }

    fn exchange(
        &mut self,
        request: &Request,
        body: &[u8],
        deadline: Duration,
        config: &PoolConfig,
    ) -> Outcome {
        let written = match self.stdin.as_mut() {
            Some(stdin) => worker::write_request(stdin, request, body),
            None => Err(io::ErrorKind::BrokenPipe.into()),
        };
        if let Err(e) = written {
            // Gone before it read the document — unless the document itself is what it died of
            // (a body over its memory cap).
            let status = self.reap();
            return match self.classify(status, config) {
                error @ ParseError::OutOfMemory(_) => Outcome::Stopped(error),
                _ => Outcome::Unreachable(e),
            };
        }
        match self.responses.recv_timeout(deadline) {
            Ok(Ok(payload)) => match serde_json::from_slice::<Result<Extracted, ParseError>>(&payload) {
                Ok(result) => Outcome::Answer(result),
                Err(e) => Outcome::Stopped(ParseError::Panic(format!(
                    "the parser process answered something unreadable: {e}"
                ))),
            },
            Ok(Err(e)) => Outcome::Stopped(ParseError::Panic(format!(
                "the parser process broke its protocol: {e}"
            ))),
            Err(RecvTimeoutError::Timeout) => {
                self.kill();
                Outcome::Stopped(ParseError::Timeout(deadline))
            }
            Err(RecvTimeoutError::Disconnected) => {
                let status = self.reap();
                Outcome::Stopped(self.classify(status, config))
            }
        }
    }

    /// What a worker that ended on a document died of.
    fn classify(&self, status: Option<ExitStatus>, config: &PoolConfig) -> ParseError {
        let tail = self.stderr.lock().unwrap_or_else(PoisonError::into_inner);
        let tail = String::from_utf8_lossy(&tail);
        let last = tail
            .lines()
            .rev()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("")
            .chars()
            .take(300)
            .collect::<String>();
        let memory_mb = config.limits.memory_bytes / (1024 * 1024);
        if tail.contains("memory allocation of") {
            return ParseError::OutOfMemory(format!("over the worker's cap of {memory_mb} MiB ({last})"));
        }
        match status.and_then(|s| s.signal()) {
            Some(libc::SIGXCPU) => {
                ParseError::Timeout(Duration::from_secs(config.limits.cpu_seconds_per_document))
            }
            Some(libc::SIGKILL) => ParseError::OutOfMemory(
                "the parser process was killed (SIGKILL: the system's out-of-memory killer, most likely)"
                    .to_owned(),
            ),
            Some(signal) => ParseError::Panic(format!("the parser process died of signal {signal}: {last}")),
            None => ParseError::Panic(match status {
                Some(status) => format!("the parser process exited ({status}): {last}"),
                None => format!("the parser process could not be reaped: {last}"),
            }),
        }
    }

    /// Waits for a worker that has closed its output (it is exiting), killing it if it has
    /// not ended within a second; then lets the readers finish.
    fn reap(&mut self) -> Option<ExitStatus> {
        self.stdin = None;
        let until = Instant::now() + Duration::from_secs(1);
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() < until => std::thread::sleep(Duration::from_millis(5)),
                Ok(None) => {
                    let _ = self.child.kill();
                    break self.child.wait().ok();
                }
                Err(_) => break None,
            }
        };
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        status
    }

    fn kill(&mut self) {
        self.stdin = None;
        let _ = self.child.kill();
        let _ = self.child.wait();
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if !self.readers.is_empty() || self.stdin.is_some() {
            self.kill();
        }
    }
}
