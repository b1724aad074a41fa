//! A knowledge base embedded by a remote OpenAI-compatible `/v1/embeddings` server (a real
//! HTTP server in this test, answering deterministic bag-of-words vectors).

use crate::require_model;
use crate::support::{TestHome, file_name, write};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;

const DIMENSION: usize = 64;

/// Hashes each lowercase word into one of 64 buckets; similar wording → similar vectors.
fn bag_of_words(text: &str) -> Vec<f32> {
    let mut vector = vec![0f32; DIMENSION];
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        let hash = word
            .to_lowercase()
            .bytes()
            .fold(2_166_136_261u32, |h, b| (h ^ b as u32).wrapping_mul(16_777_619));
        vector[hash as usize % DIMENSION] += 1.0;
    }
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-9);
    vector.iter().map(|x| x / norm).collect()
}

/// Serves `/v1/embeddings` on an ephemeral port; returns the base URL.
fn start_server(expected_key: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut content_length = 0;
            let mut authorised = false;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                let lower = line.to_ascii_lowercase();
                if let Some(value) = lower.strip_prefix("content-length:") {
                    content_length = value.trim().parse().unwrap_or(0);
                }
                if lower.starts_with("authorization:") && line.contains(expected_key) {
                    authorised = true;
                }
            }
            let mut body = vec![0; content_length];
            reader.read_exact(&mut body).unwrap();
            let (status, response) = if !authorised {
                (
                    "401 Unauthorized",
                    serde_json::json!({"error": {"message": "bad key"}}),
                )
            } else {
                let request: serde_json::Value = serde_json::from_slice(&body).unwrap();
                let data: Vec<serde_json::Value> = request["input"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .enumerate()
                    .map(|(index, text)| {
                        serde_json::json!({"object": "embedding", "index": index, "embedding": bag_of_words(text.as_str().unwrap())})
                    })
                    .collect();
                (
                    "200 OK",
                    serde_json::json!({"object": "list", "data": data, "model": request["model"]}),
                )
            };
            let body = response.to_string();
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://{address}/v1")
}

#[test]
fn a_remote_embedder_serves_a_knowledge_base() {
    let model = require_model!();
    let env = TestHome::new(model);
    let docs = env.folder("docs");
    write(
        &docs.join("boats.txt"),
        "Sailing boats need wind and a good keel.",
    );
    write(
        &docs.join("bread.txt"),
        "Sourdough bread rises slowly with wild yeast.",
    );
    let url = start_server("sk-test-secret");
    env.ok(&[
        "kb",
        "create",
        "remote",
        "--embedder-url",
        &url,
        "--embedder-model",
        "bow-64",
        "--embedder-api-key-env",
        "TEST_EMBEDDER_KEY",
    ]);
    env.ok(&["source", "add", "remote", docs.to_str().unwrap()]);

    // Without the key the sync fails cleanly, naming the variable and not any secret.
    let (code, error) = env.fails(&["sync", "remote"]);
    assert_eq!((code, error.as_str()), (6, "model_unavailable"));

    let key = [("TEST_EMBEDDER_KEY", "sk-test-secret")];
    env.json_with_env(&["sync", "remote"], &key);
    let response = env.json_with_env(
        &[
            "search",
            "remote",
            "wild yeast bread",
            "-k",
            "1",
            "--search-type",
            "semantic",
        ],
        &key,
    );
    assert_eq!(file_name(&TestHome::hit_uris(&response)[0]), "bread.txt");

    // A wrong key: a typed error, and the key itself never appears in the message.
    let output = env
        .command(&["--json", "search", "remote", "boats", "--search-type", "semantic"])
        .env("TEST_EMBEDDER_KEY", "sk-wrong-key")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(!text.contains("sk-wrong-key"), "secret leaked: {text}");
}
