//! The providers against a real server process (`fake_llm.py`, standard-library Python) that
//! answers deterministically and misbehaves on request: streaming, 429 with Retry-After, 5xx,
//! timeouts, malformed and unusual bodies, broken streams, and SigV4 checked independently.

use groundwork_core::LlmLimits;
use groundwork_llm::bedrock::BedrockChat;
use groundwork_llm::openai::OpenAiChat;
use groundwork_llm::prompt::{SourceText, build};
use groundwork_llm::sigv4::Credentials;
use groundwork_llm::{ChatModel, LlmError, citations};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

struct FakeServer {
    child: Child,
    base: String,
}

impl FakeServer {
    fn start(envs: &[(&str, &str)]) -> FakeServer {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fake_llm.py");
        let mut child = Command::new("python3")
            .arg(script)
            .envs(envs.iter().copied())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs the fake model server");
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let port = first
            .trim()
            .strip_prefix("PORT ")
            .expect("the server prints its port");
        FakeServer {
            child,
            base: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const SOURCES: [&str; 2] = [
    "Employees get twenty weeks of paid parental leave. It starts at birth.",
    "The office closes between Christmas and New Year.",
];

fn ask(
    model: &dyn ChatModel,
    question: &str,
    stream: bool,
) -> (Result<groundwork_llm::ChatResponse, LlmError>, String) {
    let sources: Vec<SourceText<'_>> = SOURCES
        .iter()
        .enumerate()
        .map(|(i, text)| SourceText {
            uri: if i == 0 {
                "file:///hr/leave.md"
            } else {
                "file:///hr/holidays.md"
            },
            text,
            suspicious: false,
        })
        .collect();
    let request = build(question, &sources, &LlmLimits::default());
    let mut streamed = String::new();
    let result = if stream {
        let mut collect = |piece: &str| streamed.push_str(piece);
        model.chat(&request, Some(&mut collect))
    } else {
        model.chat(&request, None)
    };
    (result, streamed)
}

fn limits(timeout_secs: u64) -> LlmLimits {
    LlmLimits {
        timeout_secs,
        max_retries: 2,
        ..LlmLimits::default()
    }
}

#[test]
fn openai_compatible_answers_stream_and_retry() {
    let server = FakeServer::start(&[("FAKE_LLM_KEY", "sekret")]);
    let base = format!("{}/v1", server.base);
    let model = OpenAiChat::new(&base, "fake-model", Some("sekret".into()), limits(3)).unwrap();

    let (answer, _) = ask(&model, "How long is parental leave?", false);
    let answer = answer.unwrap();
    assert_eq!(
        answer.text,
        "Employees get twenty weeks of paid parental leave [1]. The office closes between Christmas and New Year [2]."
    );
    assert_eq!(answer.attempts, 1);
    assert!(answer.usage.unwrap().completion_tokens > 0);
    let mapped = citations::map(&answer.text, 2);
    assert_eq!(mapped.citations.len(), 2);
    assert_eq!(mapped.citations[1].sources, vec![2]);

    // Streaming: the pieces add up to the whole text, usage arrives in the last chunk.
    let (streamed_answer, streamed) = ask(&model, "How long is parental leave?", true);
    let streamed_answer = streamed_answer.unwrap();
    assert_eq!(streamed, streamed_answer.text);
    assert_eq!(streamed_answer.text, answer.text);
    assert_eq!(streamed_answer.model, "fake-stream");
    assert_eq!(streamed_answer.finish_reason.as_deref(), Some("stop"));

    // 429 with Retry-After, then success; a 503 once, then success.
    let (retried, _) = ask(&model, "RATE_LIMIT_ONCE leave?", false);
    assert_eq!(retried.unwrap().attempts, 2);
    let (retried, _) = ask(&model, "SERVER_ERROR_ONCE leave?", false);
    assert_eq!(retried.unwrap().attempts, 2);
    let (limited, _) = ask(&model, "ALWAYS_429 leave?", false);
    assert!(matches!(limited, Err(LlmError::RateLimited)), "{limited:?}");

    // Unusual but readable shapes are accepted; unreadable ones are typed errors.
    let (odd, _) = ask(&model, "ODD_SHAPE leave?", false);
    let odd = odd.unwrap();
    assert!(odd.text.starts_with("Employees get twenty weeks"));
    assert_eq!(odd.model, "fake-model");
    assert!(odd.usage.is_none());
    let (malformed, _) = ask(&model, "MALFORMED leave?", false);
    assert!(matches!(malformed, Err(LlmError::Malformed(_))), "{malformed:?}");

    // A stream that breaks after text went out is not retried (the text cannot be unsent).
    let (broken, streamed) = ask(&model, "BROKEN_STREAM leave?", true);
    assert!(matches!(broken, Err(LlmError::Interrupted(_))), "{broken:?}");
    assert!(!streamed.is_empty());

    // A wrong key is refused, and the error quotes neither key.
    let wrong = OpenAiChat::new(&base, "fake-model", Some("nope".into()), limits(3)).unwrap();
    let (refused, _) = ask(&wrong, "How long?", false);
    let refused = refused.unwrap_err();
    assert!(
        matches!(refused, LlmError::Http { status: 401, .. }),
        "{refused:?}"
    );
    assert!(!refused.to_string().contains("sekret") && !refused.to_string().contains("nope"));
}

#[test]
fn openai_compatible_timeouts_and_unreachable_servers_fail_fast() {
    let server = FakeServer::start(&[]);
    let model = OpenAiChat::new(
        &format!("{}/v1", server.base),
        "fake-model",
        None,
        LlmLimits {
            timeout_secs: 1,
            max_retries: 0,
            ..LlmLimits::default()
        },
    )
    .unwrap();
    let started = std::time::Instant::now();
    let (slow, _) = ask(&model, "SLOW leave?", false);
    assert!(matches!(slow, Err(LlmError::Timeout(1))), "{slow:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(4));

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let nowhere = OpenAiChat::new(&format!("http://127.0.0.1:{port}/v1"), "m", None, limits(2)).unwrap();
    let (unreachable, _) = ask(&nowhere, "leave?", false);
    assert!(
        matches!(unreachable, Err(LlmError::Transport(_))),
        "{unreachable:?}"
    );
    assert!(OpenAiChat::new("ftp://example", "m", None, limits(2)).is_err());
}

#[test]
fn bedrock_converse_is_signed_so_an_independent_verifier_accepts_it() {
    let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    let server = FakeServer::start(&[("FAKE_AWS_SECRET", secret)]);
    let credentials = Credentials {
        access_key_id: "AKIDEXAMPLE".into(),
        secret_access_key: secret.into(),
        session_token: Some("session-token-value".into()),
    };
    let model = BedrockChat::new(
        "us-east-1",
        "anthropic.claude-3-haiku-20240307-v1:0",
        Some(&server.base),
        credentials.clone(),
        limits(5),
    )
    .unwrap();
    let (answer, streamed) = ask(&model, "How long is parental leave?", true);
    let answer = answer.unwrap();
    assert!(
        answer
            .text
            .starts_with("Employees get twenty weeks of paid parental leave [1]."),
        "{answer:?}"
    );
    assert_eq!(streamed, answer.text);
    assert_eq!(answer.usage.unwrap().prompt_tokens, 12);

    // A wrong secret is caught by the verifier: the signature is really checked.
    let forged = BedrockChat::new(
        "us-east-1",
        "anthropic.claude-3-haiku-20240307-v1:0",
        Some(&server.base),
        Credentials {
            secret_access_key: "not-the-secret".into(),
            ..credentials
        },
        limits(5),
    )
    .unwrap();
    let (refused, _) = ask(&forged, "How long is parental leave?", false);
    assert!(
        matches!(refused, Err(LlmError::Http { status: 403, .. })),
        "{refused:?}"
    );
}

#[test]
fn bedrock_converse_stream_delivers_deltas_and_types_its_failures() {
    let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    let server = FakeServer::start(&[("FAKE_AWS_SECRET", secret)]);
    let model = BedrockChat::new(
        "eu-west-1",
        "anthropic.claude-3-haiku-20240307-v1:0",
        Some(&server.base),
        Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: secret.into(),
            session_token: None,
        },
        limits(5),
    )
    .unwrap();
    // Deltas arrive one by one and add up to the answer; usage comes from the metadata event.
    let mut pieces = Vec::new();
    let request = build(
        "How long is parental leave?",
        &[SourceText {
            uri: "file:///hr/leave.md",
            text: SOURCES[0],
            suspicious: false,
        }],
        &LlmLimits::default(),
    );
    let answer = model
        .chat(&request, Some(&mut |piece: &str| pieces.push(piece.to_owned())))
        .unwrap();
    assert!(pieces.len() > 3, "{pieces:?}");
    assert_eq!(pieces.concat(), answer.text);
    assert_eq!(answer.finish_reason.as_deref(), Some("end_turn"));
    assert_eq!(answer.usage.unwrap().prompt_tokens, 12);
    // The whole answer without streaming goes through Converse and says the same.
    let (whole, _) = ask(&model, "How long is parental leave?", false);
    assert!(whole.unwrap().text.starts_with(&answer.text[..20]));

    // Throttled inside the stream before any text: retried, then answered.
    let (retried, _) = ask(&model, "STREAM_THROTTLED_ONCE parental leave", true);
    assert_eq!(retried.unwrap().attempts, 2);
    // Broken off, or corrupted, after text was handed on: typed, and not retried.
    for question in ["BROKEN_STREAM parental leave", "BAD_CRC parental leave"] {
        let (failed, streamed) = ask(&model, question, true);
        assert!(!streamed.is_empty(), "{question}");
        assert!(
            matches!(failed, Err(LlmError::Interrupted(_))),
            "{question}: {failed:?}"
        );
    }
}
