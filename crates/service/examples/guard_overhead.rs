//! Guardrail overhead per request: the input check on a question plus the output check on a
//! 1,000-character answer, as `ask` runs them (PII spans from `govern::mask`, then the guard).
//!
//! `cargo run --release -p groundwork-service --example guard_overhead -- [RUNS]`
//!
//! Three policies, from cheap to complete:
//! - `lexical`: custom words, profanity, all 31 Bedrock PII types (ANONYMIZE), a custom regex,
//!   prompt attack — no model;
//! - `grounding`: the same plus contextual grounding against five 1,000-character sources
//!   (content words and numbers; no model);
//! - `topics`: `grounding` plus three denied topics (the question and each answer sentence
//!   embedded with the local model);
//! - `semantic`: `grounding` with `semantic = true` (every answer and source sentence embedded).
//!
//! The embedding checks need the local model (`GROUNDWORK_MODEL_DIR` or the default home).
//! `GUARD_OVERHEAD_EMBED=1` first prints what embedding the question, the answer and its
//! sentences costs on its own, to see where the model-backed checks spend their time.

use groundwork_core::stats::percentile;
use groundwork_govern::mask::EntityKind;
use groundwork_guard::GroundingContext;
use groundwork_service::Groundwork;
use std::time::Instant;

const QUESTION: &str = "How many weeks of parental leave do I get, and who approves it? My \
manager is Dana Whitfield (dana.whitfield@example.com).";

/// About 1,000 characters, with an email, a phone number and an employee number to mask.
const ANSWER: &str = "Employees get twenty weeks of paid parental leave after the birth or \
adoption of a child [1]. The leave can start up to four weeks before the expected date of birth \
and must be taken within the first year [1]. Requests go to the leave desk at \
leave.desk@example.com or +1 415 555 0142 at least eight weeks ahead, with the expected date \
and the planned split of the leave [2]. Your manager approves the dates, and HR confirms the \
pay; for employee EMP-204518 the confirmation is sent by email within five working days [2]. \
Part-time employees get the same twenty weeks, paid in proportion to their contracted hours \
[3]. Leave can be split into at most three blocks, each of at least two weeks, and unused \
weeks lapse at the end of the first year [3]. During leave, pension contributions continue \
as if you were working, and you keep accruing holiday [4]. Returning employees may ask for \
flexible hours for six months, which managers may only refuse for documented business \
reasons [5].";

fn policy(name: &str, extra: &str) -> String {
    let entities: Vec<String> = EntityKind::BEDROCK
        .iter()
        .map(|kind| format!("{{ type = \"{}\" }}", kind.as_str()))
        .collect();
    format!(
        "[guardrails.policies.{name}]\n\
         [guardrails.policies.{name}.sensitive_information]\n\
         entities = [{}]\n\
         regexes = [{{ name = \"EMPLOYEE_ID\", pattern = '\\bEMP-\\d{{6}}\\b' }}]\n\
         [guardrails.policies.{name}.words]\n\
         custom = [\"Project Falcon\", \"acme-internal\"]\n\
         profanity = true\n\
         [guardrails.policies.{name}.prompt_attack]\n\
         {extra}\n",
        entities.join(", ")
    )
}

fn main() -> anyhow::Result<()> {
    let runs: usize = std::env::args().nth(1).map_or(Ok(200), |n| n.parse())?;
    let dir = tempfile::tempdir()?;
    let home = dir.path().join("home");
    Groundwork::init(&home)?;
    let grounding = "[guardrails.policies.grounding.contextual_grounding]\n\
                     grounding_threshold = 0.5\nrelevance_threshold = 0.2\n";
    let semantic = "[guardrails.policies.semantic.contextual_grounding]\n\
                    grounding_threshold = 0.5\nrelevance_threshold = 0.2\nsemantic = true\n";
    let topics = "[guardrails.policies.topics.contextual_grounding]\n\
                  grounding_threshold = 0.5\nrelevance_threshold = 0.2\n\
                  [[guardrails.policies.topics.topics]]\nname = \"Investment advice\"\n\
                  definition = \"Recommendations about buying, selling or holding stocks, bonds or crypto.\"\n\
                  examples = [\"Should I buy Tesla shares?\", \"Is bitcoin a good investment?\"]\n\
                  [[guardrails.policies.topics.topics]]\nname = \"Medical advice\"\n\
                  definition = \"Diagnosing illnesses or recommending treatments or medication.\"\n\
                  [[guardrails.policies.topics.topics]]\nname = \"Politics\"\n\
                  definition = \"Opinions about political parties, candidates or elections.\"\n";
    let config = format!(
        "{}{}{}{}",
        policy("lexical", ""),
        policy("grounding", grounding),
        policy("semantic", semantic),
        policy("topics", topics)
    );
    let path = home.join("config.toml");
    let text = std::fs::read_to_string(&path)?;
    std::fs::write(&path, format!("{text}\n{config}"))?;
    let groundwork = Groundwork::open(&home)?;
    if std::env::var_os("GUARD_OVERHEAD_EMBED").is_some() {
        let embedder = groundwork.embedder()?;
        let sentences: Vec<&str> = ANSWER.split(". ").collect();
        for (label, texts) in [
            ("question", vec![QUESTION]),
            ("answer", vec![ANSWER]),
            ("sentences", sentences),
        ] {
            embedder.embed(&texts)?;
            let started = Instant::now();
            embedder.embed(&texts)?;
            println!(
                "embed {label} ({} texts): {:.1} ms",
                texts.len(),
                started.elapsed().as_secs_f64() * 1e3
            );
        }
    }
    let sources: Vec<String> = (0..5).map(|i| ANSWER.replace("[1]", &format!("({i})"))).collect();
    let sources: Vec<&str> = sources.iter().map(String::as_str).collect();
    println!(
        "guardrail overhead per request, input check ({} chars) + output check ({} chars), {runs} runs:",
        QUESTION.chars().count(),
        ANSWER.chars().count()
    );
    for name in ["lexical", "grounding", "topics", "semantic"] {
        let guard = match groundwork.guardrail(name) {
            Ok(guard) => guard,
            Err(error) => {
                println!("  {name:<9} skipped: {error}");
                continue;
            }
        };
        let mut timings = Vec::with_capacity(runs);
        let mut intervened = false;
        for run in 0..runs + 5 {
            let started = Instant::now();
            let input = guard.check_input(QUESTION);
            let output = guard.check_output(
                ANSWER,
                Some(GroundingContext {
                    question: QUESTION,
                    sources: &sources,
                }),
            );
            let ms = started.elapsed().as_secs_f64() * 1e3;
            // The first runs warm caches (regex DFAs, the model's buffers).
            if run >= 5 {
                timings.push(ms);
            }
            intervened = input.intervened() && output.intervened();
        }
        println!(
            "  {name:<9} p50 {:.2} ms, p99 {:.2} ms (both checks intervened: {intervened})",
            percentile(&timings, 0.5),
            percentile(&timings, 0.99)
        );
    }
    Ok(())
}
