//! The harness: a temporary home per test and helpers to run the real binary.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The installed model, or `None` to skip a test outside CI. In CI a missing model fails.
pub use groundwork_embed::test_model_dir as model_dir;

/// Skips the test (returns) when the model is missing outside CI.
#[macro_export]
macro_rules! require_model {
    () => {
        match $crate::support::model_dir() {
            Some(dir) => dir,
            None => return,
        }
    };
}

pub struct TestHome {
    _dir: tempfile::TempDir,
    pub root: PathBuf,
    pub home: PathBuf,
    model: PathBuf,
}

impl TestHome {
    /// A fresh, initialised home directory.
    pub fn new(model: PathBuf) -> TestHome {
        let test_home = TestHome::uninitialised(model);
        test_home.ok(&["init"]);
        test_home
    }

    /// A home directory path under a fresh temporary root, not created yet.
    pub fn uninitialised(model: PathBuf) -> TestHome {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().to_path_buf();
        let home = root.join("home");
        TestHome {
            _dir: dir,
            root,
            home,
            model,
        }
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_groundwork"));
        command
            .arg("--home")
            .arg(&self.home)
            .args(args)
            .env("GROUNDWORK_MODEL_DIR", &self.model)
            .env_remove("GROUNDWORK_HOME");
        command
    }

    pub fn output(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run groundwork")
    }

    /// Runs a command that must succeed and returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let output = succeeded(self.output(args), args);
        String::from_utf8(output.stdout).expect("utf-8 output")
    }

    /// Runs a command with `--json` that must succeed, and parses its output.
    pub fn json(&self, args: &[&str]) -> Value {
        self.json_with_env(args, &[])
    }

    /// [`Self::json`] with extra environment variables for the child (credentials, keys).
    pub fn json_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> Value {
        let mut command = self.command(&["--json"]);
        command.args(args);
        for (name, value) in env {
            command.env(name, value);
        }
        let output = succeeded(command.output().expect("run groundwork"), args);
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
            panic!(
                "bad JSON from {args:?}: {e}\n{}",
                String::from_utf8_lossy(&output.stdout)
            )
        })
    }

    /// Runs a command with `--json` that must fail; returns (exit code, error code).
    pub fn fails(&self, args: &[&str]) -> (i32, String) {
        let mut with_json = vec!["--json"];
        with_json.extend_from_slice(args);
        let output = self.output(&with_json);
        assert!(
            !output.status.success(),
            "groundwork {args:?} unexpectedly succeeded"
        );
        let body: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
            panic!(
                "bad JSON error from {args:?}: {e}\n{}",
                String::from_utf8_lossy(&output.stdout)
            )
        });
        (
            output.status.code().unwrap_or(-1),
            body["error"]["code"].as_str().unwrap_or_default().to_string(),
        )
    }

    /// Starts `groundwork serve` on a free loopback port with extra environment variables;
    /// returns the process and its base URL, read from the first line it prints.
    pub fn serve(&self, env: &[(&str, &str)]) -> (std::process::Child, String) {
        use std::io::BufRead;
        let mut command = self.command(&["--json", "serve", "--listen", "127.0.0.1:0"]);
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .expect("start groundwork serve");
        let mut first = String::new();
        std::io::BufReader::new(child.stdout.take().expect("piped stdout"))
            .read_line(&mut first)
            .expect("serve prints where it listens");
        let listening: Value = serde_json::from_str(&first).expect("a JSON line");
        let base = listening["listening"].as_str().expect("a URL").to_owned();
        (child, base)
    }

    /// Creates a folder under the test root.
    pub fn folder(&self, name: &str) -> PathBuf {
        let path = self.root.join(name);
        std::fs::create_dir_all(&path).expect("create folder");
        path
    }

    /// URIs of the hits of a JSON search response.
    pub fn hit_uris(response: &Value) -> Vec<String> {
        response["hits"]
            .as_array()
            .expect("hits")
            .iter()
            .map(|h| h["uri"].as_str().expect("uri").to_string())
            .collect()
    }

    /// Asserts that the derived indexes hold exactly what the store holds.
    pub fn assert_indexes_match_store(&self, kb: &str) -> Value {
        let status = self.json(&["index", "status", kb]);
        assert_eq!(status["lexical_chunks"], status["store_chunks"], "{status}");
        assert_eq!(status["vectors"], status["store_chunks"], "{status}");
        assert_eq!(status["lexical_seq"], status["store_seq"], "{status}");
        status
    }
}

/// Asserts that a run succeeded, showing its output when it did not.
fn succeeded(output: Output, args: &[&str]) -> Output {
    assert!(
        output.status.success(),
        "groundwork {args:?} failed with {:?}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

pub fn write(path: &Path, content: impl AsRef<[u8]>) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("create parent");
    }
    std::fs::write(path, content).expect("write file");
}

/// The file name at the end of a URI.
pub fn file_name(uri: &str) -> &str {
    uri.rsplit('/').next().unwrap_or(uri)
}

/// Sends SIGTERM to a server and waits up to 30 s for it to exit; returns its exit status.
pub fn stop_with_sigterm(child: &mut std::process::Child) -> std::process::ExitStatus {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if let Some(exit) = child.try_wait().expect("wait for serve") {
            return exit;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("serve did not stop within 30 s of SIGTERM");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// The deterministic chat-model server of the `llm` crate's tests (`fake_llm.py`), as a real
/// process; stopped on drop.
pub struct FakeModel {
    child: std::process::Child,
    pub base: String,
}

impl FakeModel {
    pub fn start(env: &[(&str, &str)]) -> FakeModel {
        use std::io::BufRead;
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../llm/tests/fake_llm.py");
        let mut child = Command::new("python3")
            .arg(script)
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3 runs the fake model server");
        let mut first = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let port = first.trim().strip_prefix("PORT ").unwrap().to_owned();
        FakeModel {
            child,
            base: format!("http://127.0.0.1:{port}/v1"),
        }
    }

    /// Appends `[llm]` naming this server to the home's config.
    pub fn configure(&self, env: &TestHome) {
        use std::io::Write;
        let mut config = std::fs::OpenOptions::new()
            .append(true)
            .open(env.home.join("config.toml"))
            .unwrap();
        writeln!(
            config,
            "\n[llm]\nprovider = \"openai\"\nbase_url = \"{}\"\nmodel = \"fake-model\"",
            self.base
        )
        .unwrap();
    }
}

impl Drop for FakeModel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `$GROUNDWORK_SHARED_DIR/data/NAME`, or `None` to skip a test outside CI (in CI a missing
/// folder fails).
pub fn shared_data(name: &str) -> Option<PathBuf> {
    let Some(shared) = std::env::var_os("GROUNDWORK_SHARED_DIR") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "GROUNDWORK_SHARED_DIR is not set"
        );
        return None;
    };
    let dir = Path::new(&shared).join("data").join(name);
    assert!(dir.is_dir(), "{} is missing", dir.display());
    Some(dir)
}

/// A sync report's failures: file name → error code.
pub fn failures(report: &Value) -> std::collections::BTreeMap<String, String> {
    report["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                file_name(f["uri"].as_str().unwrap()).to_string(),
                f["code"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}
