//! Folder sources, confined to their root.
//!
//! Invariant: nothing outside the source folder is ever listed, read or written through it.
//!
//! - **Listing** walks the folder itself (`lstat`, never following a link by accident). A
//!   symbolic link is resolved and checked: one that resolves outside the root, dangles or loops
//!   is a per-entry failure (`link_outside_root`, `link_broken`, `link_loop`) and is never read.
//!   Inside the root, a link is followed only when the source says so (`follow_links`), else it
//!   is reported as `link_not_followed`. Entries the listing cannot represent (names that are not
//!   UTF-8 or hold control characters: `bad_name`), special files (`not_a_file`) and
//!   sub-folders that cannot be read (`unreadable`, which keeps every stored document under it)
//!   are failures of that one entry; the rest of the listing completes. Only the root itself
//!   failing to list fails the listing.
//! - **Reading** opens the *resolved* path the listing recorded, one component at a time with
//!   `openat(…, O_NOFOLLOW)` from a descriptor of the root, and refuses anything but a regular
//!   file. A link swapped in after the listing, anywhere on the path, makes the open fail; `..`
//!   never appears in a recorded path. Reads stop one byte past the size limit, so a file that
//!   grows after listing cannot exhaust memory.

use crate::entry::{ListFailure, Listing, Locator, ObjectEntry, ObjectError, Resolved};
use groundwork_core::ErrorCode;
use rustix::fs::{Mode, OFlags};
use std::ffi::OsStr;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

/// Folders nested deeper than this (counting followed links) are reported, not walked.
const MAX_DEPTH: usize = 64;

/// A folder source: its canonical root and an open descriptor of it.
pub struct Folder {
    root: PathBuf,
    root_fd: OwnedFd,
    /// `file:///root/`, with the trailing slash.
    root_uri: String,
    follow_links: bool,
}

impl Folder {
    /// Opens a folder source. `root` must be canonical: a root that now resolves somewhere
    /// else (it, or a folder above it, was replaced by a link) is refused rather than followed.
    pub fn open(root: &Path, follow_links: bool) -> Result<Folder, ObjectError> {
        let unavailable = |message: String| ObjectError::Unavailable {
            uri: root_uri(root),
            message,
        };
        let canonical =
            std::fs::canonicalize(root).map_err(|e| unavailable(format!("cannot open the folder: {e}")))?;
        if canonical != root {
            return Err(unavailable(format!(
                "the source folder now resolves to {}; re-add the source to read from there",
                canonical.display()
            )));
        }
        let root_fd = rustix::fs::open(
            root,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::empty(),
        )
        .map_err(|e| unavailable(format!("cannot open the folder: {e}")))?;
        Ok(Folder {
            root: root.to_path_buf(),
            root_fd,
            root_uri: root_uri(root),
            follow_links,
        })
    }

    pub fn uri(&self) -> &str {
        &self.root_uri
    }

    /// Lists every regular file under the root (hidden names skipped). Fails only when the
    /// root itself cannot be read.
    pub fn list(&self) -> Result<Listing, ObjectError> {
        let mut walk = Walk {
            folder: self,
            listing: Listing::default(),
            ancestors: vec![self.root.clone()],
        };
        let entries = std::fs::read_dir(&self.root).map_err(|e| ObjectError::Unavailable {
            uri: self.root_uri.clone(),
            message: format!("cannot list the folder: {e}"),
        })?;
        walk.entries(entries, "", PathBuf::new(), true)?;
        let mut listing = walk.listing;
        listing.objects.sort_by(|a, b| a.uri.cmp(&b.uri));
        listing.failures.sort_by(|a, b| a.uri.cmp(&b.uri));
        Ok(listing)
    }

    /// Reads a listed file whole, refusing more than `max_bytes`.
    pub fn read(&self, uri: &str, resolved: &Resolved, max_bytes: u64) -> Result<Vec<u8>, ObjectError> {
        let unreadable = |message: String| ObjectError::Unavailable {
            uri: uri.to_owned(),
            message,
        };
        let fd = self
            .open_beneath(&resolved.0)
            .map_err(|e| unreadable(e.to_string()))?;
        let stat = rustix::fs::fstat(&fd).map_err(|e| unreadable(e.to_string()))?;
        if rustix::fs::FileType::from_raw_mode(stat.st_mode) != rustix::fs::FileType::RegularFile {
            return Err(unreadable("not a regular file".into()));
        }
        let mut bytes = Vec::new();
        std::fs::File::from(fd)
            .take(max_bytes.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|e| unreadable(e.to_string()))?;
        if bytes.len() as u64 > max_bytes {
            return Err(ObjectError::TooLarge {
                uri: uri.to_owned(),
                size: (stat.st_size as u64).max(bytes.len() as u64),
                limit: max_bytes,
            });
        }
        Ok(bytes)
    }

    /// Reads the file at `key` (a `/`-separated relative path without links) up to `max_bytes`.
    pub fn get(&self, key: &str, max_bytes: u64) -> Result<Vec<u8>, ObjectError> {
        let relative = relative_key(key).ok_or_else(|| ObjectError::InvalidUri(key.to_owned()))?;
        self.read(&format!("{}{key}", self.root_uri), &Resolved(relative), max_bytes)
    }

    /// Writes the file at `key` whole (a temporary file renamed over it), creating missing
    /// folders beneath the root. Never follows a link.
    pub fn put(&self, key: &str, body: &[u8]) -> Result<(), ObjectError> {
        use std::io::Write;
        let uri = format!("{}{key}", self.root_uri);
        let unavailable = |e: std::io::Error| ObjectError::Unavailable {
            uri: uri.clone(),
            message: e.to_string(),
        };
        let relative = relative_key(key).ok_or_else(|| ObjectError::InvalidUri(key.to_owned()))?;
        let name = relative
            .file_name()
            .ok_or_else(|| ObjectError::InvalidUri(key.to_owned()))?;
        let mut dir = rustix::fs::openat(
            &self.root_fd,
            ".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(io)
        .map_err(unavailable)?;
        if let Some(parent) = relative.parent() {
            for part in parent.components() {
                let part = part.as_os_str();
                match rustix::fs::mkdirat(&dir, part, Mode::from_raw_mode(0o755)) {
                    Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                    Err(e) => return Err(unavailable(io(e))),
                }
                dir = rustix::fs::openat(
                    &dir,
                    part,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
                    Mode::empty(),
                )
                .map_err(io)
                .map_err(unavailable)?;
            }
        }
        let mut temporary = name.to_os_string();
        temporary.push(format!(".{}.tmp", std::process::id()));
        let fd = rustix::fs::openat(
            &dir,
            temporary.as_os_str(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::from_raw_mode(0o644),
        )
        .map_err(io)
        .map_err(unavailable)?;
        let mut file = std::fs::File::from(fd);
        file.write_all(body)
            .and_then(|()| file.sync_all())
            .map_err(unavailable)?;
        rustix::fs::renameat(&dir, temporary.as_os_str(), &dir, name)
            .map_err(io)
            .map_err(unavailable)
    }

    /// Opens `relative` beneath the root, one component at a time, refusing every link.
    fn open_beneath(&self, relative: &Path) -> std::io::Result<OwnedFd> {
        let parts: Vec<&OsStr> = relative
            .components()
            .map(|c| match c {
                Component::Normal(part) => Ok(part),
                _ => Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "path leaves the source folder",
                )),
            })
            .collect::<Result<_, _>>()?;
        let Some((last, folders)) = parts.split_last() else {
            return Err(std::io::ErrorKind::InvalidInput.into());
        };
        let mut dir: Option<OwnedFd> = None;
        for part in folders {
            let parent = dir.as_ref().map_or(self.root_fd.as_fd(), |d| d.as_fd());
            let next = rustix::fs::openat(
                parent,
                *part,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
                Mode::empty(),
            )
            .map_err(io)?;
            dir = Some(next);
        }
        let parent = dir.as_ref().map_or(self.root_fd.as_fd(), |d| d.as_fd());
        // NONBLOCK: a FIFO swapped in after the listing must not hang the open.
        rustix::fs::openat(
            parent,
            *last,
            OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW | OFlags::NOCTTY | OFlags::NONBLOCK,
            Mode::empty(),
        )
        .map_err(io)
    }
}

fn io(e: rustix::io::Errno) -> std::io::Error {
    std::io::Error::from_raw_os_error(e.raw_os_error())
}

fn root_uri(root: &Path) -> String {
    let mut uri = format!("file://{}", root.display());
    if !uri.ends_with('/') {
        uri.push('/');
    }
    uri
}

/// A `/`-separated key as a relative path of plain components, or `None` for anything with
/// `.`, `..`, empty segments or an absolute start.
fn relative_key(key: &str) -> Option<PathBuf> {
    let mut path = PathBuf::new();
    for part in key.split('/') {
        if part.is_empty() || part == "." || part == ".." || part.contains('\0') {
            return None;
        }
        path.push(part);
    }
    (!path.as_os_str().is_empty()).then_some(path)
}

/// The version of a file as `object_store` gave it before this walker existed (inode, mtime in
/// microseconds, size), so documents synced before keep their versions.
fn etag(metadata: &std::fs::Metadata) -> String {
    let mtime = metadata
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .unwrap_or_default()
        .as_micros();
    format!("{:x}-{mtime:x}-{:x}", metadata.ino(), metadata.len())
}

fn modified_millis(metadata: &std::fs::Metadata) -> i64 {
    metadata
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis() as i64)
}

/// A name as it may appear in a URI: UTF-8 without control characters.
fn clean_name(name: &OsStr) -> Option<&str> {
    let text = name.to_str()?;
    (!text.chars().any(char::is_control)).then_some(text)
}

/// A name that cannot be represented, made printable for the report: control characters,
/// `%` and bytes that are not UTF-8 are percent-encoded.
fn escaped_name(name: &OsStr) -> String {
    let mut out = String::new();
    for chunk in name.as_bytes().utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_control() || c == '%' {
                let mut buffer = [0u8; 4];
                for byte in c.encode_utf8(&mut buffer).bytes() {
                    out.push_str(&format!("%{byte:02X}"));
                }
            } else {
                out.push(c);
            }
        }
        for byte in chunk.invalid() {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

struct Walk<'a> {
    folder: &'a Folder,
    listing: Listing,
    /// Canonical folders on the path being walked, root first: a followed link back into one
    /// of them is a loop.
    ancestors: Vec<PathBuf>,
}

impl Walk<'_> {
    /// Walks one folder's entries. `key` is the logical path (as URIs show it, with a trailing
    /// slash unless empty); `physical` the resolved path relative to the root.
    fn entries(
        &mut self,
        entries: std::fs::ReadDir,
        key: &str,
        physical: PathBuf,
        is_root: bool,
    ) -> Result<(), ObjectError> {
        for entry in entries {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) if is_root => {
                    return Err(ObjectError::Unavailable {
                        uri: self.folder.root_uri.clone(),
                        message: format!("cannot list the folder: {e}"),
                    });
                }
                Err(e) => {
                    self.fail_folder(
                        key.trim_end_matches('/'),
                        "listing",
                        ErrorCode::Unreadable,
                        e.to_string(),
                    );
                    return Ok(());
                }
            };
            let name = entry.file_name();
            if name.as_bytes().first() == Some(&b'.') {
                continue;
            }
            let lstat = match entry.metadata() {
                Ok(metadata) => metadata,
                Err(e) => {
                    let uri_key = format!("{key}{}", escaped_name(&name));
                    self.fail(
                        &uri_key,
                        "stat".into(),
                        ErrorCode::Unreadable,
                        e.to_string(),
                        false,
                    );
                    continue;
                }
            };
            let Some(clean) = clean_name(&name) else {
                let uri_key = format!("{key}{}", escaped_name(&name));
                self.fail(
                    &uri_key,
                    etag(&lstat),
                    ErrorCode::BadName,
                    "the name is not UTF-8 or holds control characters; rename it to index it".into(),
                    lstat.is_dir(),
                );
                continue;
            };
            let entry_key = format!("{key}{clean}");
            let entry_physical = physical.join(&name);
            let file_type = lstat.file_type();
            if file_type.is_symlink() {
                self.link(&entry_key, &entry.path(), &lstat)?;
            } else if file_type.is_dir() {
                self.folder(&entry_key, &entry.path(), entry_physical, &lstat)?;
            } else if file_type.is_file() {
                self.file(&entry_key, entry_physical, &lstat);
            } else {
                self.fail(
                    &entry_key,
                    etag(&lstat),
                    ErrorCode::NotAFile,
                    "a FIFO, socket or device, not a regular file".into(),
                    false,
                );
            }
        }
        Ok(())
    }

    fn file(&mut self, key: &str, physical: PathBuf, metadata: &std::fs::Metadata) {
        self.listing.objects.push(ObjectEntry {
            uri: format!("{}{key}", self.folder.root_uri),
            version: etag(metadata),
            size: metadata.len(),
            modified_at: modified_millis(metadata),
            locator: Locator::Folder(Resolved(physical)),
        });
    }

    fn folder(
        &mut self,
        key: &str,
        path: &Path,
        physical: PathBuf,
        metadata: &std::fs::Metadata,
    ) -> Result<(), ObjectError> {
        if self.ancestors.len() > MAX_DEPTH {
            self.fail_folder(
                key,
                &etag(metadata),
                ErrorCode::TooDeep,
                format!("folders nest deeper than {MAX_DEPTH} levels"),
            );
            return Ok(());
        }
        let canonical = self.folder.root.join(&physical);
        match std::fs::read_dir(path) {
            Ok(entries) => {
                self.ancestors.push(canonical);
                let result = self.entries(entries, &format!("{key}/"), physical, false);
                self.ancestors.pop();
                result
            }
            Err(e) => {
                self.fail_folder(
                    key,
                    &etag(metadata),
                    ErrorCode::Unreadable,
                    format!("cannot list: {e}"),
                );
                Ok(())
            }
        }
    }

    fn link(&mut self, key: &str, path: &Path, lstat: &std::fs::Metadata) -> Result<(), ObjectError> {
        let target_text = std::fs::read_link(path)
            .map(|t| t.to_string_lossy().into_owned())
            .unwrap_or_default();
        let version = format!("link:{target_text}:{}", etag(lstat));
        let resolved = match std::fs::canonicalize(path) {
            Ok(resolved) => resolved,
            Err(e) if e.raw_os_error() == Some(libc_eloop()) => {
                self.fail(
                    key,
                    version,
                    ErrorCode::LinkLoop,
                    format!("symbolic link loop ({target_text})"),
                    false,
                );
                return Ok(());
            }
            Err(e) => {
                self.fail(
                    key,
                    version,
                    ErrorCode::LinkBroken,
                    format!("symbolic link to {target_text} does not resolve: {e}"),
                    false,
                );
                return Ok(());
            }
        };
        let Ok(physical) = resolved.strip_prefix(&self.folder.root).map(Path::to_path_buf) else {
            self.fail(
                key,
                version,
                ErrorCode::LinkOutsideRoot,
                "symbolic link to a location outside the source folder; never read".into(),
                false,
            );
            return Ok(());
        };
        if !self.folder.follow_links {
            self.fail(
                key,
                version,
                ErrorCode::LinkNotFollowed,
                "symbolic link not followed (the source's follow_links is off)".into(),
                false,
            );
            return Ok(());
        }
        let metadata = match std::fs::metadata(&resolved) {
            Ok(metadata) => metadata,
            Err(e) => {
                self.fail(key, version, ErrorCode::LinkBroken, e.to_string(), false);
                return Ok(());
            }
        };
        if metadata.is_dir() {
            if self.ancestors.iter().any(|a| a == &resolved) {
                self.fail(
                    key,
                    version,
                    ErrorCode::LinkLoop,
                    format!("symbolic link back into {}", resolved.display()),
                    false,
                );
                return Ok(());
            }
            self.folder(key, &resolved, physical, &metadata)
        } else if metadata.is_file() {
            self.file(key, physical, &metadata);
            Ok(())
        } else {
            self.fail(
                key,
                version,
                ErrorCode::NotAFile,
                "link to a special file".into(),
                false,
            );
            Ok(())
        }
    }

    fn fail_folder(&mut self, key: &str, version: &str, code: ErrorCode, message: String) {
        self.fail(key, format!("folder:{version}"), code, message, true);
    }

    fn fail(&mut self, key: &str, version: String, code: ErrorCode, message: String, subtree: bool) {
        self.listing.failures.push(ListFailure {
            uri: format!("{}{key}", self.folder.root_uri),
            version,
            code,
            message,
            subtree,
        });
    }
}

fn libc_eloop() -> i32 {
    rustix::io::Errno::LOOP.raw_os_error()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_never_climb() {
        assert_eq!(relative_key("a/b.json"), Some(PathBuf::from("a/b.json")));
        for bad in ["", "/a", "a//b", "../a", "a/../b", "./a", "a/."] {
            assert_eq!(relative_key(bad), None, "{bad}");
        }
    }

    #[test]
    fn odd_names_are_escaped_for_reports() {
        assert_eq!(clean_name(OsStr::new("ok name #1.txt")), Some("ok name #1.txt"));
        assert_eq!(clean_name(OsStr::new("a\nb")), None);
        assert_eq!(escaped_name(OsStr::new("a\nb%")), "a%0Ab%25");
        assert_eq!(escaped_name(OsStr::from_bytes(b"x\xffy")), "x%FFy");
    }
}
