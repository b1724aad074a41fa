//! Little-endian binary encoding helpers with a running FNV-1a checksum, and
//! crash-safe file replacement (write temp file, fsync, rename, fsync dir).

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use crate::{IndexError, Result};

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

fn fnv_update(mut hash: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    hash
}

pub(crate) struct HashingWriter<W: Write> {
    inner: W,
    hash: u64,
}

impl<W: Write> HashingWriter<W> {
    pub(crate) fn new(inner: W) -> Self {
        Self {
            inner,
            hash: FNV_OFFSET,
        }
    }

    pub(crate) fn bytes(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.hash = fnv_update(self.hash, bytes);
        self.inner.write_all(bytes)
    }

    pub(crate) fn u32(&mut self, v: u32) -> io::Result<()> {
        self.bytes(&v.to_le_bytes())
    }

    pub(crate) fn u64(&mut self, v: u64) -> io::Result<()> {
        self.bytes(&v.to_le_bytes())
    }

    pub(crate) fn u64s(&mut self, values: impl IntoIterator<Item = u64>) -> io::Result<()> {
        self.batched(values, |v, buf| buf.extend_from_slice(&v.to_le_bytes()))
    }

    pub(crate) fn u32s(&mut self, values: impl IntoIterator<Item = u32>) -> io::Result<()> {
        self.batched(values, |v, buf| buf.extend_from_slice(&v.to_le_bytes()))
    }

    pub(crate) fn f32s(&mut self, values: &[f32]) -> io::Result<()> {
        self.batched(values.iter().copied(), |v, buf| {
            buf.extend_from_slice(&v.to_le_bytes())
        })
    }

    fn batched<T>(
        &mut self,
        values: impl IntoIterator<Item = T>,
        encode: impl Fn(T, &mut Vec<u8>),
    ) -> io::Result<()> {
        let mut buf = Vec::with_capacity(64 * 1024);
        for v in values {
            encode(v, &mut buf);
            if buf.len() >= 64 * 1024 - 8 {
                self.bytes(&buf)?;
                buf.clear();
            }
        }
        self.bytes(&buf)
    }

    /// Appends the checksum of everything written so far.
    pub(crate) fn finish(mut self) -> io::Result<W> {
        let hash = self.hash;
        self.inner.write_all(&hash.to_le_bytes())?;
        Ok(self.inner)
    }
}

/// Reader that tracks how many bytes remain so every length read from the
/// file can be checked *before* allocating for it.
pub(crate) struct CheckedReader<R: Read> {
    inner: R,
    hash: u64,
    remaining: u64,
}

fn truncated() -> IndexError {
    IndexError::Corrupt("file is truncated".into())
}

impl<R: Read> CheckedReader<R> {
    pub(crate) fn new(inner: R, len: u64) -> Self {
        Self {
            inner,
            hash: FNV_OFFSET,
            // The trailing checksum is not part of the payload.
            remaining: len.saturating_sub(8),
        }
    }

    /// Fails unless at least `bytes` payload bytes are left.
    pub(crate) fn ensure(&self, bytes: u64) -> Result<()> {
        if bytes > self.remaining {
            Err(truncated())
        } else {
            Ok(())
        }
    }

    pub(crate) fn remaining(&self) -> u64 {
        self.remaining
    }

    pub(crate) fn bytes(&mut self, buf: &mut [u8]) -> Result<()> {
        self.ensure(buf.len() as u64)?;
        self.inner.read_exact(buf).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => truncated(),
            _ => IndexError::Io(e),
        })?;
        self.remaining -= buf.len() as u64;
        self.hash = fnv_update(self.hash, buf);
        Ok(())
    }

    pub(crate) fn u32(&mut self) -> Result<u32> {
        let mut b = [0u8; 4];
        self.bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    pub(crate) fn u64(&mut self) -> Result<u64> {
        let mut b = [0u8; 8];
        self.bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn batched<T>(&mut self, count: usize, width: usize, decode: impl Fn(&[u8]) -> T) -> Result<Vec<T>> {
        let total = (count as u64).checked_mul(width as u64).ok_or_else(truncated)?;
        self.ensure(total)?;
        let mut out = Vec::with_capacity(count);
        let mut buf = vec![0u8; (64 * 1024 / width) * width];
        let mut left = count;
        while left > 0 {
            let take = left.min(buf.len() / width);
            let chunk = &mut buf[..take * width];
            self.bytes(chunk)?;
            out.extend(chunk.chunks_exact(width).map(&decode));
            left -= take;
        }
        Ok(out)
    }

    pub(crate) fn u8s(&mut self, count: usize) -> Result<Vec<u8>> {
        self.batched(count, 1, |b| b[0])
    }

    pub(crate) fn u32s(&mut self, count: usize) -> Result<Vec<u32>> {
        self.batched(count, 4, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn u64s(&mut self, count: usize) -> Result<Vec<u64>> {
        self.batched(count, 8, |b| {
            u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
        })
    }

    pub(crate) fn f32s(&mut self, count: usize) -> Result<Vec<f32>> {
        self.batched(count, 4, |b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Checks that the payload was fully consumed and the checksum matches.
    pub(crate) fn finish(mut self) -> Result<()> {
        if self.remaining != 0 {
            return Err(IndexError::Corrupt("trailing bytes after payload".into()));
        }
        let mut b = [0u8; 8];
        self.inner.read_exact(&mut b).map_err(|_| truncated())?;
        if u64::from_le_bytes(b) != self.hash {
            return Err(IndexError::Corrupt("checksum mismatch".into()));
        }
        Ok(())
    }
}

pub(crate) fn open_checked(path: &Path) -> Result<CheckedReader<BufReader<File>>> {
    let file = File::open(path)?;
    let len = file.metadata()?.len();
    if len < 8 {
        return Err(truncated());
    }
    Ok(CheckedReader::new(BufReader::with_capacity(1 << 20, file), len))
}

/// Writes `path` atomically: readers (and a crash) see either the old file
/// or the complete new one, never a prefix.
pub(crate) fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut HashingWriter<BufWriter<File>>) -> io::Result<()>,
) -> Result<()> {
    let tmp = temp_path(path);
    let result = (|| -> io::Result<()> {
        let file = File::create(&tmp)?;
        let mut writer = HashingWriter::new(BufWriter::with_capacity(1 << 20, file));
        write(&mut writer)?;
        let file = writer.finish()?.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        sync_parent_dir(path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    Ok(result?)
}

fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp-{}", std::process::id()));
    path.with_file_name(name)
}

fn sync_parent_dir(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        File::open(parent)?.sync_all()?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}
