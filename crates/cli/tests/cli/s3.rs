//! S3 sources against a real S3-compatible server (moto, started by scripts/test.sh).

use crate::require_model;
use crate::support::{TestHome, file_name};
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use std::io::{Read, Write};

/// The server's endpoint, or `None` (skip) outside CI when none was started.
pub(crate) fn endpoint() -> Option<String> {
    match std::env::var("GROUNDWORK_TEST_S3_ENDPOINT") {
        Ok(endpoint) => Some(endpoint),
        Err(_) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "GROUNDWORK_TEST_S3_ENDPOINT is not set; run the tests through scripts/test.sh"
            );
            eprintln!("skipping: no S3 test server (run scripts/test.sh)");
            None
        }
    }
}

/// Creates a bucket with a plain HTTP PUT (the test server does not check signatures).
pub(crate) fn create_bucket(endpoint: &str, bucket: &str) {
    let address = endpoint.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).expect("connect to S3 test server");
    write!(
        stream,
        "PUT /{bucket} HTTP/1.1\r\nHost: {address}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "create bucket: {response}");
}

struct Bucket {
    store: Box<dyn ObjectStore>,
    runtime: tokio::runtime::Runtime,
}

impl Bucket {
    fn new(endpoint: &str, bucket: &str) -> Bucket {
        create_bucket(endpoint, bucket);
        let store = AmazonS3Builder::new()
            .with_endpoint(endpoint)
            .with_allow_http(true)
            .with_virtual_hosted_style_request(false)
            .with_bucket_name(bucket)
            .with_region("us-east-1")
            .with_access_key_id("testing")
            .with_secret_access_key("testing")
            .build()
            .unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        Bucket {
            store: Box::new(store),
            runtime,
        }
    }

    fn put(&self, key: &str, body: &str) {
        self.runtime
            .block_on(
                self.store
                    .put(&ObjectPath::from(key), PutPayload::from(body.to_string())),
            )
            .unwrap();
    }

    fn delete(&self, key: &str) {
        self.runtime
            .block_on(self.store.delete(&ObjectPath::from(key)))
            .unwrap();
    }
}

#[test]
fn s3_prefix_sync_add_update_delete_with_sidecars() {
    let model = require_model!();
    let Some(endpoint) = endpoint() else { return };
    let bucket_name = format!("gw-test-{}", std::process::id());
    let bucket = Bucket::new(&endpoint, &bucket_name);
    bucket.put(
        "handbook/finance/budget.md",
        "# Budget\n\nThe travel budget is 2,000 euros per person per year.",
    );
    bucket.put(
        "handbook/finance/budget.md.metadata.json",
        r#"{"metadataAttributes": {"department": "finance", "year": 2026}}"#,
    );
    bucket.put(
        "handbook/hr/leave.txt",
        "Employees receive 26 weeks of parental leave.",
    );
    bucket.put(
        "outside/ignored.txt",
        "This object is outside the prefix and never synced.",
    );

    // Credentials come from the environment, as for any S3 source.
    let env = TestHome::new(model);
    env.ok(&["kb", "create", "lake"]);
    let location = format!("s3://{bucket_name}/handbook/");
    env.ok(&["source", "add", "lake", &location, "--endpoint", &endpoint]);
    let credentials = [
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
    ];
    let sync = |env: &TestHome| env.json_with_env(&["sync", "lake"], &credentials);
    let first = sync(&env);
    assert_eq!(first["added"], 2, "{first}");

    let hits = env.json(&[
        "search",
        "lake",
        "travel budget",
        "-k",
        "5",
        "--filter",
        "department=finance",
    ]);
    let uris = TestHome::hit_uris(&hits);
    assert_eq!(
        uris,
        vec![format!("s3://{bucket_name}/handbook/finance/budget.md")]
    );
    assert!(
        hits["hits"][0]["object_version"]
            .as_str()
            .is_some_and(|v| !v.is_empty())
    );
    assert_eq!(hits["hits"][0]["metadata"]["year"], 2026);

    let unchanged = sync(&env);
    assert_eq!(unchanged["unchanged"], 2, "{unchanged}");
    assert_eq!(unchanged["embeddings_computed"], 0);

    bucket.put(
        "handbook/hr/leave.txt",
        "Employees receive 30 weeks of parental leave from 2027.",
    );
    bucket.delete("handbook/finance/budget.md");
    bucket.put(
        "handbook/it/vpn.txt",
        "Connect to the VPN before opening internal dashboards.",
    );
    let changed = sync(&env);
    assert_eq!(
        (
            changed["added"].as_u64(),
            changed["updated"].as_u64(),
            changed["deleted"].as_u64()
        ),
        (Some(1), Some(1), Some(1)),
        "{changed}"
    );

    let hits = env.json(&["search", "lake", "parental leave weeks", "-k", "5"]);
    let names: Vec<String> = TestHome::hit_uris(&hits)
        .iter()
        .map(|u| file_name(u).to_string())
        .collect();
    assert!(
        names.contains(&"leave.txt".to_string()) && !names.contains(&"budget.md".to_string()),
        "{names:?}"
    );
    assert!(hits["hits"][0]["content"].as_str().unwrap().contains("30 weeks"));
    env.assert_indexes_match_store("lake");
}

#[test]
fn audit_anchors_live_in_object_storage() {
    let model = require_model!();
    let Some(endpoint) = endpoint() else { return };
    let bucket_name = format!("gw-anchor-{}", std::process::id());
    let bucket = Bucket::new(&endpoint, &bucket_name);
    let env = TestHome::new(model);
    env.ok(&["user", "add", "alice"]);
    env.ok(&["user", "add", "bob"]);
    let anchor = format!("s3://{bucket_name}/audit/anchor.json");
    let anchored = env.json(&["audit", "anchor", &anchor, "--endpoint", &endpoint]);
    assert!(anchored["seq"].as_i64().unwrap() >= 2, "{anchored}");
    let verified = env.json(&["audit", "verify", "--anchor", &anchor, "--endpoint", &endpoint]);
    assert_eq!(verified["intact"], true, "{verified}");

    // Cutting the tail in the database is caught by the anchor held outside it.
    let db = rusqlite::Connection::open(env.home.join("groundwork.db")).unwrap();
    db.execute_batch("DROP TRIGGER audit_log_no_delete;").unwrap();
    let head = anchored["seq"].as_i64().unwrap();
    db.execute("DELETE FROM audit_log WHERE seq >= ?1", [head - 1])
        .unwrap();
    let cut = env.output(&[
        "--json",
        "audit",
        "verify",
        "--anchor",
        &anchor,
        "--endpoint",
        &endpoint,
    ]);
    assert_eq!(cut.status.code(), Some(9));
    let cut: serde_json::Value = serde_json::from_slice(&cut.stdout).unwrap();
    assert_eq!(cut["first_break"]["kind"], "truncated", "{cut}");

    // A missing object and a key-less location are typed errors.
    let missing = format!("s3://{bucket_name}/audit/none.json");
    assert_eq!(
        env.fails(&["audit", "verify", "--anchor", &missing, "--endpoint", &endpoint])
            .1,
        "source_unavailable"
    );
    assert_eq!(
        env.fails(&[
            "audit",
            "anchor",
            &format!("s3://{bucket_name}/"),
            "--endpoint",
            &endpoint
        ])
        .1,
        "invalid_request"
    );
    bucket.delete("audit/anchor.json");
}
