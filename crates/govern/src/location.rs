//! Location prefixes in the one URI form that documents carry.
//!
//! Documents are named `file:///abs/dir/file.txt` or `s3://bucket/key`. A grant's location is
//! normalised to the same form without a trailing slash (`./docs/hr/` run from `/srv` becomes
//! `file:///srv/docs/hr`), and [`covers`] matches whole path segments: `file:///srv/docs/hr`
//! covers `file:///srv/docs/hr/a.txt` and `file:///srv/docs/hr` itself, never
//! `file:///srv/docs/hrx/a.txt`.

use std::path::{Component, Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocationError {
    #[error("`{0}` is not a location: use a folder path, file:///abs/path or s3://bucket/prefix")]
    Invalid(String),
}

/// Normalises a location typed by a user. Relative paths resolve against `cwd`; `.` and `..`
/// are resolved lexically (the service canonicalises existing folders first, so that symlinks
/// resolve the way source URIs do).
pub fn normalise(input: &str, cwd: &Path) -> Result<String, LocationError> {
    let input = input.trim();
    let invalid = || LocationError::Invalid(input.to_owned());
    if input.is_empty() || input.contains(['\0', '\n', '\r']) {
        return Err(invalid());
    }
    if let Some(rest) = input.strip_prefix("s3://") {
        let mut segments = rest.split('/').filter(|s| !s.is_empty());
        let bucket = segments.next().ok_or_else(invalid)?;
        if bucket.contains(char::is_whitespace) {
            return Err(invalid());
        }
        let mut out = format!("s3://{bucket}");
        for segment in segments {
            if segment == "." || segment == ".." {
                return Err(invalid());
            }
            out.push('/');
            out.push_str(segment);
        }
        return Ok(out);
    }
    if let Some(rest) = input
        .strip_prefix("postgres://")
        .or_else(|| input.strip_prefix("postgresql://"))
    {
        return postgres(rest).ok_or_else(invalid);
    }
    if input.contains("://") && !input.starts_with("file://") {
        return Err(invalid());
    }
    let path = Path::new(input.strip_prefix("file://").unwrap_or(input));
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        cwd.join(path)
    };
    Ok(file_uri(&lexical(&absolute)))
}

/// `postgres://host:port/db[/schema[/table]]`: a user part is dropped (grants cover data, not
/// logins), the port defaults to 5432, identifiers keep their case, and nothing may be empty
/// or `.`/`..`.
fn postgres(rest: &str) -> Option<String> {
    let rest = rest.split(['?', '#']).next().unwrap_or(rest);
    let mut segments = rest.split('/').filter(|s| !s.is_empty());
    let authority = segments.next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = match host_port.rsplit_once(':') {
        Some((host, port)) if port.parse::<u16>().is_ok() => (host, port),
        _ => (host_port, "5432"),
    };
    if host.is_empty() || host.contains(char::is_whitespace) {
        return None;
    }
    let mut out = format!("postgres://{}:{port}", host.to_ascii_lowercase());
    for (count, segment) in segments.enumerate() {
        if count >= 3 || segment == "." || segment == ".." {
            return None;
        }
        out.push('/');
        out.push_str(segment);
    }
    Some(out)
}

/// `file://` + the absolute path, without a trailing slash (except for the root itself).
pub fn file_uri(path: &Path) -> String {
    let text = path.to_string_lossy();
    let trimmed = text.trim_end_matches('/');
    if trimmed.is_empty() {
        "file:///".to_owned()
    } else {
        format!("file://{trimmed}")
    }
}

fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for component in path.components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

/// Whether the normalised `prefix` covers the document `uri` on whole path segments.
pub fn covers(prefix: &str, uri: &str) -> bool {
    match uri.strip_prefix(prefix) {
        Some("") => true,
        Some(rest) => prefix.ends_with('/') || rest.starts_with('/'),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_form_for_paths_and_uris() {
        let cwd = Path::new("/srv/app");
        for input in [
            "./docs/hr/",
            "docs/hr",
            "/srv/app/docs/hr",
            "file:///srv/app/docs/./x/../hr/",
        ] {
            assert_eq!(
                normalise(input, cwd).unwrap(),
                "file:///srv/app/docs/hr",
                "{input}"
            );
        }
        assert_eq!(
            normalise("s3://bucket/finance/", cwd).unwrap(),
            "s3://bucket/finance"
        );
        assert_eq!(normalise("s3://bucket//a//b", cwd).unwrap(), "s3://bucket/a/b");
        assert_eq!(normalise("s3://bucket", cwd).unwrap(), "s3://bucket");
        assert_eq!(normalise("/", cwd).unwrap(), "file:///");
        assert_eq!(
            normalise("postgres://reader@DB.internal/shop/public/orders", cwd).unwrap(),
            "postgres://db.internal:5432/shop/public/orders"
        );
        assert_eq!(
            normalise("postgres://db:6543/shop", cwd).unwrap(),
            "postgres://db:6543/shop"
        );
        for bad in [
            "",
            "s3://",
            "http://x/y",
            "s3://b/../c",
            "a\0b",
            "postgres://",
            "postgres://h/d/s/t/x",
        ] {
            assert!(normalise(bad, cwd).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn prefixes_match_whole_segments() {
        assert!(covers("file:///docs/hr", "file:///docs/hr/a.txt"));
        assert!(covers("file:///docs/hr", "file:///docs/hr"));
        assert!(!covers("file:///docs/hr", "file:///docs/hrx/a.txt"));
        assert!(!covers("file:///docs/hr", "file:///docs/h"));
        assert!(covers("file:///", "file:///anything/at/all"));
        assert!(covers("s3://bucket", "s3://bucket/finance/q1.pdf"));
        assert!(!covers("s3://bucket", "s3://bucket2/finance/q1.pdf"));
        assert!(!covers("s3://bucket/fin", "s3://bucket/finance/q1.pdf"));
    }
}
