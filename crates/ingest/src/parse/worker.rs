//! The parse worker: the child side of a [`super::ParserPool`].
//!
//! A worker is the program started again with a hidden subcommand (`groundwork parse-worker`).
//! Before it reads any input it caps its own data segment (`RLIMIT_DATA`: heap and private
//! mappings) and turns core dumps off (a dump would write a hostile file's bytes to disk); then
//! it answers parse requests from stdin on stdout, one at a time, until stdin closes. Before
//! each request it sets its CPU-time limit (`RLIMIT_CPU`) to what it has used so far plus the
//! per-document allowance, so a parser stuck in a loop is stopped by the kernel even when the
//! parent is gone and nobody is left to kill it.
//!
//! Invariants: stdout carries nothing but response frames (each opens with [`MAGIC`]); a panic
//! in a parser is caught and answered as [`ParseError::Panic`], and the worker goes on; whatever
//! the kernel stops (memory, CPU time, a stack overflow) ends the process, and the parent
//! classifies the death for that one document.
//!
//! Frames (integers little-endian): a request is `MAGIC`, a `u32` header length, the JSON
//! [`Request`], a `u64` body length and the body (the file's bytes); a response is `MAGIC`, a
//! `u64` length and the JSON `Result<Extracted, ParseError>`.

use super::isolate::{panic_message, quiet_panics};
use super::{Extracted, ParseError, ParseLimits};
use serde::{Deserialize, Serialize};
use std::io::{self, Read, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};

/// Opens every frame in both directions.
pub(super) const MAGIC: &[u8; 4] = b"GWP1";

/// Largest request header accepted (the header is a path, a charset name and the limits).
const MAX_HEADER_BYTES: u32 = 64 * 1024;

/// Stack of the thread that parses: generous, because some PDF structures are parsed
/// recursively. An overflow ends the worker, not the parent.
const WORKER_STACK_BYTES: usize = 64 * 1024 * 1024;

/// The environment variable that arms the test faults of debug builds (see `test_faults`).
pub(super) const TEST_FAULTS_VAR: &str = "GROUNDWORK_TEST_PARSER_FAULTS";

/// The limits a worker puts on itself at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerLimits {
    /// Cap on the worker's data segment (heap and private writable mappings, the parse thread's
    /// stack included), in bytes; 0 leaves it unlimited.
    pub memory_bytes: u64,
    /// CPU time allowed per document, in seconds; 0 leaves it unlimited.
    pub cpu_seconds_per_document: u64,
}

/// What the parent asks: the file's name (for the format) and the limits of this parse.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Request {
    pub path_hint: String,
    pub declared_encoding: Option<String>,
    pub limits: ParseLimits,
}

/// Runs the worker loop on stdin/stdout until stdin closes. Call it from the binary's entry
/// point when started as a worker; it returns when the parent is done (or gone).
pub fn serve_worker(limits: WorkerLimits) -> io::Result<()> {
    set_limit(libc::RLIMIT_CORE, 0)?;
    if limits.memory_bytes > 0 {
        set_limit(libc::RLIMIT_DATA, limits.memory_bytes)?;
    }
    let cpu = limits.cpu_seconds_per_document;
    std::thread::Builder::new()
        .name("groundwork-parse-worker".to_owned())
        .stack_size(WORKER_STACK_BYTES)
        .spawn(move || serve(io::stdin().lock(), io::stdout().lock(), cpu))?
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("the worker thread panicked outside a parse")))
}

fn serve(mut input: impl Read, mut output: impl Write, cpu_seconds: u64) -> io::Result<()> {
    while let Some((request, body)) = read_request(&mut input)? {
        if cpu_seconds > 0 {
            allow_cpu_seconds(cpu_seconds)?;
        }
        #[cfg(debug_assertions)]
        test_faults::apply(&body);
        let result = quiet_panics(|| {
            catch_unwind(AssertUnwindSafe(|| {
                super::parse_declared(
                    &body,
                    &request.path_hint,
                    &request.limits,
                    request.declared_encoding.as_deref(),
                )
            }))
        })
        .unwrap_or_else(|payload| Err(ParseError::Panic(panic_message(payload.as_ref()))));
        drop(body);
        write_response(&mut output, &result)?;
    }
    Ok(())
}

/// Sets both the soft and the hard value of `resource` (the worker never raises them again).
fn set_limit(resource: libc::__rlimit_resource_t, value: u64) -> io::Result<()> {
    let limit = libc::rlimit {
        rlim_cur: value,
        rlim_max: value,
    };
    // SAFETY: setrlimit reads the struct we pass and touches no memory of ours.
    if unsafe { libc::setrlimit(resource, &limit) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Lets the process use `seconds` more CPU time from now: the soft `RLIMIT_CPU` moves to the
/// time used so far plus `seconds` (the hard limit stays, so the next document can move it
/// again). Past it the kernel sends `SIGXCPU`, which ends the worker.
fn allow_cpu_seconds(seconds: u64) -> io::Result<()> {
    // SAFETY: getrusage and getrlimit only write into the zeroed structs we pass.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut limit: libc::rlimit = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrlimit(libc::RLIMIT_CPU, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let used = (usage.ru_utime.tv_sec + usage.ru_stime.tv_sec + 1).max(0) as u64;
    limit.rlim_cur = used.saturating_add(seconds).min(limit.rlim_max);
    // SAFETY: as in `set_limit`.
    if unsafe { libc::setrlimit(libc::RLIMIT_CPU, &limit) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Sends one request. The body must be within `request.limits.max_bytes`.
pub(super) fn write_request(output: &mut impl Write, request: &Request, body: &[u8]) -> io::Result<()> {
    let header = serde_json::to_vec(request).map_err(io::Error::other)?;
    output.write_all(MAGIC)?;
    output.write_all(&(header.len() as u32).to_le_bytes())?;
    output.write_all(&header)?;
    output.write_all(&(body.len() as u64).to_le_bytes())?;
    output.write_all(body)?;
    output.flush()
}

/// Reads one request; `None` at a clean end of input (the parent closed the pipe).
fn read_request(input: &mut impl Read) -> io::Result<Option<(Request, Vec<u8>)>> {
    if !read_magic(input)? {
        return Ok(None);
    }
    let header_len = u32::from_le_bytes(read_array(input)?);
    if header_len > MAX_HEADER_BYTES {
        return Err(invalid(format!("request header of {header_len} bytes")));
    }
    let mut header = vec![0; header_len as usize];
    input.read_exact(&mut header)?;
    let request: Request = serde_json::from_slice(&header).map_err(|e| invalid(e.to_string()))?;
    let body_len = u64::from_le_bytes(read_array(input)?);
    if body_len > request.limits.max_bytes {
        return Err(invalid(format!("request body of {body_len} bytes")));
    }
    let mut body = vec![0; body_len as usize];
    input.read_exact(&mut body)?;
    Ok(Some((request, body)))
}

fn write_response(output: &mut impl Write, result: &Result<Extracted, ParseError>) -> io::Result<()> {
    let payload = serde_json::to_vec(result).map_err(io::Error::other)?;
    output.write_all(MAGIC)?;
    output.write_all(&(payload.len() as u64).to_le_bytes())?;
    output.write_all(&payload)?;
    output.flush()
}

/// Reads one response frame's payload, at most `max_bytes`; `None` at a clean end of input
/// (the worker exited between documents).
pub(super) fn read_response(input: &mut impl Read, max_bytes: u64) -> io::Result<Option<Vec<u8>>> {
    if !read_magic(input)? {
        return Ok(None);
    }
    let len = u64::from_le_bytes(read_array(input)?);
    if len > max_bytes {
        return Err(invalid(format!("response of {len} bytes")));
    }
    let mut payload = vec![0; len as usize];
    input.read_exact(&mut payload)?;
    Ok(Some(payload))
}

/// Reads the frame's magic: `false` at end of input before its first byte.
fn read_magic(input: &mut impl Read) -> io::Result<bool> {
    let mut magic = [0u8; 4];
    let mut filled = 0;
    while filled < magic.len() {
        match input.read(&mut magic[filled..]) {
            Ok(0) if filled == 0 => return Ok(false),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    if &magic != MAGIC {
        return Err(invalid("a frame without the magic".to_owned()));
    }
    Ok(true)
}

fn read_array<const N: usize>(input: &mut impl Read) -> io::Result<[u8; N]> {
    let mut bytes = [0u8; N];
    input.read_exact(&mut bytes)?;
    Ok(bytes)
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// Debug builds only, and only when [`TEST_FAULTS_VAR`] is set in the worker's environment: a
/// body that starts with `%GROUNDWORK-TEST-FAULT <kind>` misbehaves the way a broken parser
/// would (`spin`, `sleep`, `grow`, `abort`, `overflow`, `panic`), so that tests can show the
/// limits above stop it. Release builds hold none of this.
#[cfg(debug_assertions)]
mod test_faults {
    pub(super) fn apply(body: &[u8]) {
        if std::env::var_os(super::TEST_FAULTS_VAR).is_none() {
            return;
        }
        let Some(rest) = body.strip_prefix(b"%GROUNDWORK-TEST-FAULT ") else {
            return;
        };
        let kind = rest.split(|b| b.is_ascii_whitespace()).next().unwrap_or_default();
        match kind {
            b"spin" => loop {
                std::hint::black_box(());
            },
            b"sleep" => std::thread::sleep(std::time::Duration::from_secs(3600)),
            b"grow" => {
                let mut held = Vec::new();
                loop {
                    held.push(std::hint::black_box(vec![1u8; 16 << 20]));
                }
            }
            b"abort" => std::process::abort(),
            b"overflow" => {
                std::hint::black_box(recurse(0));
            }
            b"panic" => panic!("test fault: the parser panicked"), // tidy: not an error code
            _ => {}
        }
    }

    #[allow(unconditional_recursion)]
    fn recurse(depth: u64) -> u64 {
        let frame = std::hint::black_box([depth; 64]);
        recurse(depth + 1) + frame[0]
    }
}
