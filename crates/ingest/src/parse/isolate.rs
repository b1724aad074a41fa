//! Running a parse on its own thread, with `catch_unwind` and a deadline.
//!
//! `pdf-extract` (and `lopdf` below it) panic on malformed input by design and can spin on
//! crafted files. [`parse_isolated`] contains both: a panic becomes [`ParseError::Panic`], and
//! if the parse has not finished after [`ParseLimits::timeout`] the caller gets
//! [`ParseError::Timeout`] and moves on.
//!
//! **The stuck thread is abandoned, not killed.** Rust has no safe way to stop a thread from
//! outside (no cancellation points, and killing a thread mid-allocation would leave the
//! allocator and any locks in an undefined state); the hard stop is a worker process, which is
//! what a sync uses by default (see [`super::ParserPool`]). This thread path is the fallback for
//! `parse_isolation = "thread"` and for library callers without a worker program. The abandoned
//! thread keeps its CPU and memory until the library returns on its own, and its result is then
//! discarded. [`isolated_parsers_running`] reports how many such threads are still alive, so a
//! caller can stop feeding new work (or restart the process) if they pile up.
//!
//! Panic output: the first call installs a process-wide panic hook that forwards to the
//! previously installed hook, except on threads that are inside [`quiet_panics`], where it
//! stays silent (the message is returned in the error instead). Panics elsewhere in the process
//! are reported exactly as before.

use std::any::Any;
use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Once;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use super::{Extracted, ParseError, ParseLimits};

/// Stack for parser threads: generous, because some PDF structures are parsed recursively and
/// a stack overflow aborts the whole process (it cannot be caught). Only touched pages are
/// committed, so the cost is address space.
const PARSER_STACK_BYTES: usize = 64 * 1024 * 1024;

static RUNNING: AtomicUsize = AtomicUsize::new(0);
static HOOK: Once = Once::new();

thread_local! {
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

/// Number of isolated parser threads still running, including ones abandoned after a timeout.
pub fn isolated_parsers_running() -> usize {
    RUNNING.load(Ordering::Relaxed)
}

/// Like [`parse`], on a separate thread: a panic becomes [`ParseError::Panic`], and a parse
/// that takes longer than `limits.timeout` becomes [`ParseError::Timeout`] (the thread is then
/// abandoned; see the module docs).
pub fn parse_isolated(
    bytes: Vec<u8>,
    path_hint: String,
    limits: ParseLimits,
) -> Result<Extracted, ParseError> {
    parse_isolated_declared(bytes, path_hint, limits, None)
}

/// [`parse_isolated`] with a declared text encoding (see `parse_declared`).
pub fn parse_isolated_declared(
    bytes: Vec<u8>,
    path_hint: String,
    limits: ParseLimits,
    declared_encoding: Option<String>,
) -> Result<Extracted, ParseError> {
    let timeout = limits.timeout;
    run_isolated(timeout, move || {
        super::parse_declared(&bytes, &path_hint, &limits, declared_encoding.as_deref())
    })
}

/// Runs any parse job `f` the way [`parse_isolated`] runs [`parse`]: on its own thread, with
/// panics caught and a deadline of `timeout`.
pub fn run_isolated<F>(timeout: Duration, f: F) -> Result<Extracted, ParseError>
where
    F: FnOnce() -> Result<Extracted, ParseError> + Send + 'static,
{
    install_hook();
    let (tx, rx) = mpsc::sync_channel(1);
    RUNNING.fetch_add(1, Ordering::Relaxed);
    let spawned = std::thread::Builder::new()
        .name("groundwork-parse".to_owned())
        .stack_size(PARSER_STACK_BYTES)
        .spawn(move || {
            struct Running;
            impl Drop for Running {
                fn drop(&mut self) {
                    RUNNING.fetch_sub(1, Ordering::Relaxed);
                }
            }
            let _running = Running;
            let result = quiet_panics(|| catch_unwind(AssertUnwindSafe(f)))
                .unwrap_or_else(|payload| Err(ParseError::Panic(panic_message(payload.as_ref()))));
            // The receiver is gone if we timed out; the result is discarded then.
            let _ = tx.send(result);
        });
    if let Err(e) = spawned {
        RUNNING.fetch_sub(1, Ordering::Relaxed);
        return Err(ParseError::Panic(format!("could not start parser thread: {e}")));
    }
    match rx.recv_timeout(timeout) {
        Ok(result) => result,
        Err(mpsc::RecvTimeoutError::Timeout) => Err(ParseError::Timeout(timeout)),
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(ParseError::Panic(
            "parser thread exited without a result".to_owned(),
        )),
    }
}

/// Runs `f` with the panic hook silenced on this thread.
pub(crate) fn quiet_panics<R>(f: impl FnOnce() -> R) -> R {
    install_hook();
    let before = QUIET.with(|q| q.replace(true));
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            QUIET.with(|q| q.set(self.0));
        }
    }
    let _restore = Restore(before);
    f()
}

fn install_hook() {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.try_with(Cell::get).unwrap_or(false) {
                previous(info);
            }
        }));
    });
}

/// The message of a panic payload (`&str` or `String`; anything else is opaque).
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}
