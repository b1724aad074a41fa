//! Generated inputs for the robustness tests that every parser and request decoder gets
//! (fuzzing on the stable toolchain, run by `cargo test` with a bounded count and by
//! `scripts/fuzz.sh` for longer campaigns).
//!
//! Mutation of valid samples rather than random bytes: a random byte string is refused by
//! the first check of any format, while a valid PDF, DOCX or JSON body with a few bytes
//! flipped, a span cut, doubled or spliced from another sample, or a format token (a quote, a
//! bracket, `obj`, a deep nesting) inserted reaches the parser's inner states. Deterministic:
//! the seed and case number reproduce an input exactly.

use crate::rng::SplitMix64;

/// Seeded mutations of a set of samples.
pub struct Mutator {
    rng: SplitMix64,
    tokens: Vec<Vec<u8>>,
}

/// Bytes that sit on boundaries of common decoders.
const INTERESTING: &[u8] = &[
    0, 1, 0x7f, 0x80, 0xff, b'\n', b'\r', b'"', b'\\', b'{', b'[', b'<', b'%',
];

impl Mutator {
    /// `tokens` are format words worth inserting (`"obj"`, `"</w:t>"`, `"\":"`, …).
    pub fn new(seed: u64, tokens: &[&[u8]]) -> Mutator {
        Mutator {
            rng: SplitMix64::new(seed),
            tokens: tokens.iter().map(|t| t.to_vec()).collect(),
        }
    }

    /// A uniformly chosen number below `n` (for callers that pick among targets).
    pub fn below(&mut self, n: usize) -> usize {
        self.rng.below(n.max(1))
    }

    /// One input: a sample (or, rarely, nothing) with one to eight mutations applied.
    pub fn mutate(&mut self, samples: &[Vec<u8>]) -> Vec<u8> {
        let mut data = if samples.is_empty() || self.rng.chance(2) {
            Vec::new()
        } else {
            samples[self.rng.below(samples.len())].clone()
        };
        for _ in 0..1 + self.rng.below(8) {
            self.mutate_once(&mut data, samples);
        }
        data
    }

    fn mutate_once(&mut self, data: &mut Vec<u8>, samples: &[Vec<u8>]) {
        let len = data.len();
        let at = |rng: &mut SplitMix64| rng.below(len + 1);
        match self.rng.below(10) {
            // Flip one bit.
            0 if len > 0 => {
                let i = self.rng.below(len);
                data[i] ^= 1 << self.rng.below(8);
            }
            // A byte becomes a boundary value.
            1 if len > 0 => {
                let i = self.rng.below(len);
                data[i] = INTERESTING[self.rng.below(INTERESTING.len())];
            }
            // Truncate.
            2 if len > 0 => data.truncate(self.rng.below(len)),
            // Delete a span.
            3 if len > 0 => {
                let start = self.rng.below(len);
                let end = (start + 1 + self.rng.below(64)).min(len);
                data.drain(start..end);
            }
            // Duplicate a span, a few times.
            4 if len > 0 => {
                let start = self.rng.below(len);
                let end = (start + 1 + self.rng.below(256)).min(len);
                let span = data[start..end].to_vec();
                let times = 1 + self.rng.below(16);
                let insert = at(&mut self.rng);
                let repeated: Vec<u8> = span.iter().copied().cycle().take(span.len() * times).collect();
                data.splice(insert..insert, repeated);
            }
            // Insert a format token, sometimes many times (deep nesting, long runs).
            5 | 6 if !self.tokens.is_empty() => {
                let token = self.tokens[self.rng.below(self.tokens.len())].clone();
                let times = if self.rng.chance(10) {
                    1 + self.rng.below(2000)
                } else {
                    1
                };
                let insert = at(&mut self.rng);
                let repeated: Vec<u8> = token.iter().copied().cycle().take(token.len() * times).collect();
                data.splice(insert..insert, repeated);
            }
            // Splice in a span of another sample.
            7 if !samples.is_empty() => {
                let other = &samples[self.rng.below(samples.len())];
                if !other.is_empty() {
                    let start = self.rng.below(other.len());
                    let end = (start + 1 + self.rng.below(512)).min(other.len());
                    let insert = at(&mut self.rng);
                    data.splice(insert..insert, other[start..end].iter().copied());
                }
            }
            // Random bytes.
            8 => {
                let n = 1 + self.rng.below(32);
                let insert = at(&mut self.rng);
                let bytes: Vec<u8> = (0..n).map(|_| self.rng.next_u64() as u8).collect();
                data.splice(insert..insert, bytes);
            }
            // Overwrite a byte with a random one.
            _ if len > 0 => {
                let i = self.rng.below(len);
                data[i] = self.rng.next_u64() as u8;
            }
            _ => data.push(self.rng.next_u64() as u8),
        }
    }
}

/// How many cases a generated-input test runs: `GROUNDWORK_FUZZ_CASES`, else `default` (the
/// bounded count `cargo test` runs; `scripts/fuzz.sh` raises it).
pub fn cases(default: usize) -> usize {
    std::env::var("GROUNDWORK_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The seed of a generated-input run: `GROUNDWORK_FUZZ_SEED`, else `default` (fixed, so a
/// failure in CI reproduces; campaigns vary it).
pub fn seed(default: u64) -> u64 {
    std::env::var("GROUNDWORK_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// What one generated-input run saw, printed as one line that `scripts/fuzz.sh` collects.
#[derive(Debug, Default)]
pub struct FuzzTally {
    pub target: String,
    pub cases: usize,
    /// Inputs the code under test accepted.
    pub accepted: usize,
    /// Inputs refused with a typed error.
    pub refused: usize,
    /// Panics inside a third-party library that the product contained (a typed `panic`).
    pub contained_panics: usize,
    /// Inputs that ran into the per-input deadline (a typed `timeout`).
    pub hangs: usize,
    pub slowest_ms: f64,
}

impl FuzzTally {
    pub fn new(target: &str) -> FuzzTally {
        FuzzTally {
            target: target.to_owned(),
            ..FuzzTally::default()
        }
    }

    /// Times one case.
    pub fn time<T>(&mut self, run: impl FnOnce() -> T) -> T {
        let started = std::time::Instant::now();
        let out = run();
        self.cases += 1;
        self.slowest_ms = self.slowest_ms.max(started.elapsed().as_secs_f64() * 1e3);
        out
    }

    /// The summary line (`fuzz TARGET: …`); crashes are 0 by construction, since a crash fails
    /// the test before this is printed.
    pub fn report(&self) -> String {
        format!(
            "fuzz {}: {} cases, {} accepted, {} refused, 0 crashes, {} hangs, {} contained panics, slowest {:.1} ms",
            self.target,
            self.cases,
            self.accepted,
            self.refused,
            self.hangs,
            self.contained_panics,
            self.slowest_ms
        )
    }
}
