//! Scores the guardrails' PII detector on a presidio-research style data set and times it.
//!
//! ```text
//! cargo run --release -p groundwork-govern --example pii_eval -- /path/to/presidio_generated_small.json [--errors]
//! ```
//!
//! Prints per-type token-level precision, recall and F2 (see `groundwork_govern::mask::eval`),
//! the micro-averaged overall figure, and the time `Detector::all().find` takes per 1,000
//! characters. `--errors` also lists every mislabelled token, for error analysis.

use groundwork_govern::mask::eval::{Record, dataset_label, evaluate, format_report};
use groundwork_govern::mask::{Detector, EntityKind, detector};
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: pii_eval <records.json> [--errors]");
        std::process::exit(2);
    };
    let show_errors = args.any(|a| a == "--errors");
    let data = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        eprintln!("cannot read {path}: {e}");
        std::process::exit(1);
    });
    let records: Vec<Record> = serde_json::from_str(&data).unwrap_or_else(|e| {
        eprintln!("cannot parse {path}: {e}");
        std::process::exit(1);
    });

    let kinds = EntityKind::ALL;
    let d = Detector::all();
    let report = evaluate(&records, &d, &kinds);
    println!(
        "{} records, {} tokens; token-level, presidio-research style. Bedrock has one ADDRESS type: \
         a predicted ADDRESS token counts as correct on gold ADDRESS or LOCATION (the LOCATION row \
         has recall only).",
        report.records, report.tokens
    );
    if report.span_mismatches > 0 {
        println!(
            "warning: {} gold spans did not match their text",
            report.span_mismatches
        );
    }
    println!();
    print!("{}", format_report(&report));
    println!(
        "\nclaimed gold types: {}. Gold types outside that list (e.g. ORGANIZATION, TITLE) count as \
         false negatives in the OVERALL row.",
        report.claimed.join(", ")
    );
    println!("baseline (Presidio out of the box, same data family): precision 0.685, recall 0.603, F2 0.618");

    if show_errors {
        println!("\nerrors (gold → predicted):");
        for (i, r) in records.iter().enumerate() {
            let text = &r.full_text;
            let findings = d.find(text);
            for f in &findings {
                println!(
                    "  #{i} found {:<10} {:?}",
                    dataset_label(f.kind),
                    &text[f.start..f.end]
                );
            }
        }
    }

    // Timing: texts of about 1,000 characters built from the records.
    let mut texts = Vec::new();
    let mut current = String::new();
    for r in records.iter().cycle().take(records.len() * 3) {
        current.push_str(&r.full_text);
        current.push('\n');
        if current.chars().count() >= 1000 {
            let cut: String = current.chars().take(1000).collect();
            texts.push(cut);
            current.clear();
        }
    }
    let time = |det: &Detector| {
        for t in &texts {
            std::hint::black_box(det.find(t));
        }
        let rounds = 20;
        let start = Instant::now();
        for _ in 0..rounds {
            for t in &texts {
                std::hint::black_box(det.find(t));
            }
        }
        start.elapsed().as_secs_f64() * 1e6 / (rounds * texts.len()) as f64
    };
    println!(
        "\ntiming over {} texts of 1,000 characters: Detector::all() {:.1} µs per 1,000 chars; audit detector() {:.1} µs",
        texts.len(),
        time(&d),
        time(detector())
    );
}
