//! AWS's binary event-stream framing (`application/vnd.amazon.eventstream`), as Bedrock's
//! `ConverseStream` sends it.
//!
//! A message is: total length (u32, big-endian), headers length (u32), a CRC-32 of those eight
//! bytes, the headers, the payload, and a CRC-32 of everything before it. A header is a name
//! (u8 length + bytes), a type tag and a value; groundwork reads the string-valued ones
//! (`:event-type`, `:message-type`, `:exception-type`, `:content-type`) and skips the rest by
//! their declared sizes. Both checksums are verified, and a message may not claim more than
//! [`MAX_MESSAGE_BYTES`], so a broken or hostile server can neither smuggle corrupt data in nor
//! make the reader allocate without bound.

use std::io::Read;

/// Largest message accepted (a text delta is a few hundred bytes).
pub const MAX_MESSAGE_BYTES: usize = 1024 * 1024;
/// Prelude (12 bytes) plus the trailing checksum (4 bytes).
const FRAMING_BYTES: usize = 16;

/// One decoded message: its string headers and its payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub headers: Vec<(String, String)>,
    pub payload: Vec<u8>,
}

impl Message {
    /// The value of the string header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("the event stream broke: {0}")]
    Io(String),
    #[error("the event stream ended inside a message")]
    Truncated,
    #[error("an event-stream message is malformed: {0}")]
    Malformed(String),
}

/// Reads the next message; `Ok(None)` at a clean end of stream (between messages).
pub fn read_message(reader: &mut impl Read) -> Result<Option<Message>, FrameError> {
    let mut prelude = [0u8; 12];
    match read_exact_or_eof(reader, &mut prelude)? {
        0 => return Ok(None),
        12 => {}
        _ => return Err(FrameError::Truncated),
    }
    let total = u32::from_be_bytes(prelude[0..4].try_into().expect("4 bytes")) as usize;
    let headers_len = u32::from_be_bytes(prelude[4..8].try_into().expect("4 bytes")) as usize;
    let prelude_crc = u32::from_be_bytes(prelude[8..12].try_into().expect("4 bytes"));
    if crc32fast::hash(&prelude[..8]) != prelude_crc {
        return Err(FrameError::Malformed("prelude checksum mismatch".to_owned()));
    }
    if !(FRAMING_BYTES..=MAX_MESSAGE_BYTES).contains(&total) || headers_len > total - FRAMING_BYTES {
        return Err(FrameError::Malformed(format!(
            "a message of {total} bytes with {headers_len} bytes of headers"
        )));
    }
    let mut rest = vec![0u8; total - 12];
    if read_exact_or_eof(reader, &mut rest)? != rest.len() {
        return Err(FrameError::Truncated);
    }
    let (body, crc) = rest.split_at(rest.len() - 4);
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&prelude);
    hasher.update(body);
    if hasher.finalize() != u32::from_be_bytes(crc.try_into().expect("4 bytes")) {
        return Err(FrameError::Malformed("message checksum mismatch".to_owned()));
    }
    let (header_bytes, payload) = body.split_at(headers_len);
    Ok(Some(Message {
        headers: parse_headers(header_bytes)?,
        payload: payload.to_vec(),
    }))
}

fn read_exact_or_eof(reader: &mut impl Read, buf: &mut [u8]) -> Result<usize, FrameError> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(FrameError::Io(e.to_string())),
        }
    }
    Ok(filled)
}

fn parse_headers(mut bytes: &[u8]) -> Result<Vec<(String, String)>, FrameError> {
    let bad = |what: &str| FrameError::Malformed(format!("header {what}"));
    let mut headers = Vec::new();
    while !bytes.is_empty() {
        let name_len = bytes[0] as usize;
        let name = bytes.get(1..1 + name_len).ok_or_else(|| bad("name overruns"))?;
        let name = String::from_utf8(name.to_vec()).map_err(|_| bad("name is not UTF-8"))?;
        bytes = &bytes[1 + name_len..];
        let (&kind, rest) = bytes.split_first().ok_or_else(|| bad("type missing"))?;
        bytes = rest;
        let fixed = match kind {
            0 | 1 => Some(0), // true, false
            2 => Some(1),     // byte
            3 => Some(2),     // short
            4 => Some(4),     // integer
            5 | 8 => Some(8), // long, timestamp
            9 => Some(16),    // uuid
            6 | 7 => None,    // byte array, string: u16 length first
            other => return Err(bad(&format!("type {other} is unknown"))),
        };
        let len = match fixed {
            Some(len) => len,
            None => {
                let len = bytes.get(..2).ok_or_else(|| bad("length overruns"))?;
                bytes = &bytes[2..];
                u16::from_be_bytes([len[0], len[1]]) as usize
            }
        };
        let value = bytes.get(..len).ok_or_else(|| bad("value overruns"))?;
        if kind == 7 {
            let value = String::from_utf8(value.to_vec()).map_err(|_| bad("value is not UTF-8"))?;
            headers.push((name, value));
        }
        bytes = &bytes[len..];
    }
    Ok(headers)
}

/// Encodes a message with string headers (for tests and tools; Bedrock encodes its own).
pub fn encode(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let mut header_bytes = Vec::new();
    for (name, value) in headers {
        header_bytes.push(name.len() as u8);
        header_bytes.extend_from_slice(name.as_bytes());
        header_bytes.push(7);
        header_bytes.extend_from_slice(&(value.len() as u16).to_be_bytes());
        header_bytes.extend_from_slice(value.as_bytes());
    }
    let total = FRAMING_BYTES + header_bytes.len() + payload.len();
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&(total as u32).to_be_bytes());
    out.extend_from_slice(&(header_bytes.len() as u32).to_be_bytes());
    let prelude_crc = crc32fast::hash(&out);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    out.extend_from_slice(&header_bytes);
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_skips_typed_headers() {
        let mut bytes = encode(
            &[(":event-type", "contentBlockDelta")],
            br#"{"delta":{"text":"Hi"}}"#,
        );
        bytes.extend(encode(&[(":event-type", "messageStop")], b"{}"));
        let mut reader = &bytes[..];
        let first = read_message(&mut reader).unwrap().unwrap();
        assert_eq!(first.header(":event-type"), Some("contentBlockDelta"));
        assert_eq!(first.payload, br#"{"delta":{"text":"Hi"}}"#);
        assert_eq!(
            read_message(&mut reader).unwrap().unwrap().header(":event-type"),
            Some("messageStop")
        );
        assert_eq!(read_message(&mut reader), Ok(None));

        // A non-string header (an i32 and a uuid) is skipped by its size.
        let mut headers = vec![1, b'n', 4, 0, 0, 0, 7, 1, b'u', 9];
        headers.extend([0u8; 16]);
        headers.extend([2, b':', b'x', 7, 0, 1, b'y']);
        let mut raw = Vec::new();
        let total = 16 + headers.len();
        raw.extend((total as u32).to_be_bytes());
        raw.extend((headers.len() as u32).to_be_bytes());
        raw.extend(crc32fast::hash(&raw).to_be_bytes());
        raw.extend(&headers);
        raw.extend(crc32fast::hash(&raw).to_be_bytes());
        let message = read_message(&mut &raw[..]).unwrap().unwrap();
        assert_eq!(message.headers, [(":x".to_owned(), "y".to_owned())]);
    }

    #[test]
    fn corrupt_truncated_and_oversized_messages_are_errors() {
        let good = encode(&[(":event-type", "messageStop")], b"{}");
        let mut flipped = good.clone();
        let last = flipped.len() - 6;
        flipped[last] ^= 1;
        assert!(matches!(
            read_message(&mut &flipped[..]),
            Err(FrameError::Malformed(_))
        ));
        let mut prelude = good.clone();
        prelude[9] ^= 1;
        assert!(matches!(
            read_message(&mut &prelude[..]),
            Err(FrameError::Malformed(_))
        ));
        assert_eq!(
            read_message(&mut &good[..good.len() - 3]),
            Err(FrameError::Truncated)
        );
        assert_eq!(read_message(&mut &good[..5]), Err(FrameError::Truncated));
        let mut huge = Vec::new();
        huge.extend(((MAX_MESSAGE_BYTES + 1) as u32).to_be_bytes());
        huge.extend(0u32.to_be_bytes());
        huge.extend(crc32fast::hash(&huge).to_be_bytes());
        assert!(matches!(
            read_message(&mut &huge[..]),
            Err(FrameError::Malformed(_))
        ));
    }
}
