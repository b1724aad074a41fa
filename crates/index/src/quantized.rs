//! 8-bit codes of the stored vectors, for scanning large allow-lists with a quarter of the
//! memory traffic — without giving up exactness.
//!
//! A filtered search over scattered slots is bound by memory, not arithmetic: at 1M vectors of
//! 384 floats, 1% of the index is 15 MB of vector data read in random order per query. Each
//! vector also has an 8-bit code (one scale per vector, components rounded to ±127), and a scan
//! reads the codes first. The approximate score comes with a rigorous error bound, so the exact
//! result is recovered by re-scoring in f32 only the slots whose *upper bound* reaches the k-th
//! best exact score: usually a few dozen.
//!
//! The bound: with `v̂ = c·s` (error ≤ `s/2` per component) and `q̂` likewise,
//! `|v·q − v̂·q̂| ≤ Σ|vᵢ|·|qᵢ − q̂ᵢ| + |q̂ᵢ|·|vᵢ − v̂ᵢ| ≤ (s_q/2)·‖v‖₁ + (s_v/2)·‖q̂‖₁`,
//! plus a relative allowance for f32 rounding.

/// Codes for `slots × dim` components, one scale and one L1 norm per slot.
#[derive(Debug, Default, Clone)]
pub(crate) struct Codes {
    dim: usize,
    codes: Vec<i8>,
    scales: Vec<f32>,
    l1: Vec<f32>,
}

/// A query quantized the same way.
pub(crate) struct QueryCode {
    codes: Vec<i8>,
    scale: f32,
    /// ‖q̂‖₁ (of the reconstructed query, as the bound needs).
    l1: f32,
}

/// Slack for f32 rounding in the scores and the bound itself.
const ROUNDING_SLACK: f32 = 1e-5;

fn quantize(vector: &[f32], out: &mut Vec<i8>) -> f32 {
    let max = vector.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    if max == 0.0 {
        out.extend(std::iter::repeat_n(0, vector.len()));
        return 0.0;
    }
    let scale = max / 127.0;
    out.extend(
        vector
            .iter()
            .map(|x| (x / scale).round().clamp(-127.0, 127.0) as i8),
    );
    scale
}

impl Codes {
    pub fn new(dim: usize) -> Codes {
        Codes {
            dim,
            ..Codes::default()
        }
    }

    /// Codes for every slot of `data` (`slots × dim`), replacing what was there.
    pub fn rebuild(&mut self, data: &[f32]) {
        self.codes.clear();
        self.scales.clear();
        self.l1.clear();
        for vector in data.chunks_exact(self.dim) {
            self.push(vector);
        }
    }

    pub fn push(&mut self, vector: &[f32]) {
        let scale = quantize(vector, &mut self.codes);
        self.scales.push(scale);
        self.l1.push(vector.iter().map(|x| x.abs()).sum());
    }

    pub fn memory_bytes(&self) -> usize {
        self.codes.capacity() + (self.scales.capacity() + self.l1.capacity()) * 4
    }

    pub fn query(&self, query: &[f32]) -> QueryCode {
        let mut codes = Vec::with_capacity(query.len());
        let scale = quantize(query, &mut codes);
        let l1 = codes.iter().map(|&c| (c as f32 * scale).abs()).sum();
        QueryCode { codes, scale, l1 }
    }

    /// Approximate score of `slot` and an upper bound on its exact score.
    #[inline]
    pub fn score(&self, query: &QueryCode, slot: usize) -> (f32, f32) {
        let codes = &self.codes[slot * self.dim..(slot + 1) * self.dim];
        let raw = dot_i8(&query.codes, codes);
        let scale = self.scales[slot];
        let approx = raw as f32 * query.scale * scale;
        let error = 0.5 * (query.scale * self.l1[slot] + scale * query.l1);
        (approx, approx + error + ROUNDING_SLACK * (1.0 + approx.abs()))
    }
}

/// i8 dot product, vectorised by the compiler for the CPU it finds at run time.
fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU reported AVX2.
            return unsafe { dot_i8_avx2(a, b) };
        }
    }
    dot_i8_portable(a, b)
}

#[inline(always)]
fn dot_i8_portable(a: &[i8], b: &[i8]) -> i32 {
    a.iter().zip(b).map(|(&x, &y)| i32::from(x) * i32::from(y)).sum()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn dot_i8_avx2(a: &[i8], b: &[i8]) -> i32 {
    // The same loop, compiled with AVX2 available: LLVM widens to i16 and uses vpmaddwd.
    dot_i8_portable(a, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator, so the test needs no dependency.
    fn vectors(n: usize, dim: usize, seed: u64) -> Vec<f32> {
        let mut state = seed;
        (0..n * dim)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((state >> 33) as f32 / (1u64 << 31) as f32) - 0.5
            })
            .collect()
    }

    #[test]
    fn the_bound_holds_for_every_pair() {
        let dim = 384;
        let data = vectors(300, dim, 7);
        let queries = vectors(20, dim, 11);
        let mut codes = Codes::new(dim);
        codes.rebuild(&data);
        for query in queries.chunks_exact(dim) {
            let code = codes.query(query);
            for (slot, vector) in data.chunks_exact(dim).enumerate() {
                let exact: f32 = query.iter().zip(vector).map(|(a, b)| a * b).sum();
                let (approx, upper) = codes.score(&code, slot);
                assert!(upper >= exact, "slot {slot}: bound {upper} < exact {exact}");
                assert!(
                    2.0 * approx - upper <= exact,
                    "slot {slot}: lower bound above exact"
                );
                assert!((approx - exact).abs() < 0.05 * (1.0 + exact.abs()));
            }
        }
        let zero = codes.query(&vec![0.0; dim]);
        assert_eq!(codes.score(&zero, 0).0, 0.0);
    }
}
