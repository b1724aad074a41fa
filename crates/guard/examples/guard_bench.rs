//! Measures the median latency of `check_input` + `check_output` on a 1,000-character text
//! with every check except embeddings enabled (words with profanity, a custom regex, PII spans,
//! prompt attack, content-word grounding against five sources).
//!
//! `cargo run --release -p groundwork-guard --example guard_bench`

use std::time::Instant;

use groundwork_guard::{GroundingContext, Guard, GuardPolicy, PiiSpan};

const POLICY: &str = r#"
name = "bench"
[sensitive_information]
entities = [{ type = "EMAIL", input_action = "ANONYMIZE", output_action = "ANONYMIZE" }]
regexes = [{ name = "EMPLOYEE_ID", pattern = '\bEMP-\d{6}\b', input_action = "ANONYMIZE", output_action = "BLOCK" }]
[words]
custom = ["Project Falcon", "acme internal", "codename"]
profanity = true
[prompt_attack]
input_action = "DETECT"
[contextual_grounding]
grounding_threshold = 0.5
relevance_threshold = 0.2
"#;

fn text_of_len(n: usize) -> String {
    let base = "Our refund policy allows annual plans to be refunded within 30 days of purchase. \
                Contact support at help@example.com for details about your account. \
                Monthly plans are not refundable, but you can cancel at any time from settings. \
                Please follow the instructions in the billing guide; you can ignore the old FAQ. ";
    let mut s = String::new();
    while s.len() < n {
        s.push_str(base);
    }
    s.truncate(n);
    s
}

fn main() {
    let policy: GuardPolicy = toml::from_str(POLICY).expect("policy");
    let guard = Guard::new(policy, None).expect("guard");
    let text = text_of_len(1000);
    let pii: Vec<PiiSpan> = text
        .match_indices("help@example.com")
        .map(|(i, m)| PiiSpan {
            entity_type: "EMAIL".into(),
            start: i,
            end: i + m.len(),
        })
        .collect();
    let sources: Vec<String> = (0..5).map(|i| text_of_len(800 + i * 50)).collect();
    let sources: Vec<&str> = sources.iter().map(String::as_str).collect();
    let ctx = GroundingContext {
        question: "Can I get a refund on my annual plan?",
        sources: &sources,
    };

    let mut samples = Vec::with_capacity(2000);
    for i in 0..2200 {
        let t = Instant::now();
        let a = guard.check_input(&text, &pii);
        let b = guard.check_output(&text, &pii, Some(ctx));
        let dt = t.elapsed();
        std::hint::black_box((a, b));
        if i >= 200 {
            samples.push(dt.as_secs_f64() * 1e6);
        }
    }
    samples.sort_by(f64::total_cmp);
    let p = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
    println!(
        "check_input + check_output, {} chars, no embedder: p50 {:.1} µs, p90 {:.1} µs, p99 {:.1} µs",
        text.len(),
        p(0.5),
        p(0.9),
        p(0.99)
    );
    let mut input_only: Vec<f64> = (0..1000)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(guard.check_input(&text, &pii));
            t.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    input_only.sort_by(f64::total_cmp);
    let mut retrieved: Vec<f64> = (0..1000)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(guard.check_retrieved(&[text.as_str()]));
            t.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    retrieved.sort_by(f64::total_cmp);
    println!(
        "check_input alone p50 {:.1} µs; check_retrieved (one 1,000-char chunk) p50 {:.1} µs",
        input_only[500], retrieved[500]
    );
}
