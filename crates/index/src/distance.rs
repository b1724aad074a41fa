//! Dot-product kernels. Vectors are L2-normalised on insert, so cosine
//! similarity is a plain dot product.
//!
//! The portable kernel keeps 16 independent accumulators so LLVM can keep
//! several SIMD registers busy without a loop-carried dependency on a single
//! sum. On x86-64 an AVX2+FMA build of the same kernel is selected at run
//! time, since the workspace compiles for the baseline x86-64 target (SSE2).

const LANES: usize = 16;

/// Portable kernel body (kept as a macro so another target-feature build can
/// reuse it).
macro_rules! dot_body {
    ($a:expr, $b:expr, $madd:expr) => {{
        let n = $a.len().min($b.len());
        let (a, b) = (&$a[..n], &$b[..n]);
        let mut acc = [0.0f32; LANES];
        let mut ca = a.chunks_exact(LANES);
        let mut cb = b.chunks_exact(LANES);
        for (x, y) in (&mut ca).zip(&mut cb) {
            // Fixed-size arrays: no bounds checks, so the loop vectorises.
            let x: &[f32; LANES] = x.try_into().unwrap_or(&[0.0; LANES]);
            let y: &[f32; LANES] = y.try_into().unwrap_or(&[0.0; LANES]);
            for i in 0..LANES {
                acc[i] = $madd(x[i], y[i], acc[i]);
            }
        }
        let mut tail = 0.0f32;
        for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
            tail += x * y;
        }
        // Pairwise reduction keeps the rounding error small.
        let mut width = LANES / 2;
        while width > 0 {
            for i in 0..width {
                acc[i] += acc[i + width];
            }
            width /= 2;
        }
        acc[0] + tail
    }};
}

fn dot_portable(a: &[f32], b: &[f32]) -> f32 {
    dot_body!(a, b, |x: f32, y: f32, acc: f32| acc + x * y)
}

/// AVX2 kernel with explicit intrinsics: LLVM's SLP vectoriser splits the
/// portable body into 2-lane operations, about 4x slower than this.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
    use std::arch::x86_64::*;
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let blocks = n / 32;
    let mut acc = [_mm256_setzero_ps(); 4];
    for block in 0..blocks {
        let base = block * 32;
        for (lane, acc) in acc.iter_mut().enumerate() {
            let offset = base + lane * 8;
            let x: &[f32; 8] = a[offset..offset + 8].try_into().unwrap_or(&[0.0; 8]);
            let y: &[f32; 8] = b[offset..offset + 8].try_into().unwrap_or(&[0.0; 8]);
            // SAFETY: `x` and `y` are 8 readable f32s; loadu has no alignment
            // requirement.
            let (vx, vy) = unsafe { (_mm256_loadu_ps(x.as_ptr()), _mm256_loadu_ps(y.as_ptr())) };
            *acc = _mm256_fmadd_ps(vx, vy, *acc);
        }
    }
    let sum = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
    let mut lanes = [0.0f32; 8];
    // SAFETY: `lanes` holds exactly 8 f32s.
    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), sum) };
    let mut total =
        ((lanes[0] + lanes[4]) + (lanes[1] + lanes[5])) + ((lanes[2] + lanes[6]) + (lanes[3] + lanes[7]));
    for i in blocks * 32..n {
        total = a[i].mul_add(b[i], total);
    }
    total
}

#[cfg(target_arch = "x86_64")]
fn dot_avx2_entry(a: &[f32], b: &[f32]) -> f32 {
    // SAFETY: only selected by `kernel()` after the CPU reported AVX2 and FMA.
    unsafe { dot_avx2(a, b) }
}

pub(crate) type DotFn = fn(&[f32], &[f32]) -> f32;

fn select_kernel() -> DotFn {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            return dot_avx2_entry;
        }
    }
    dot_portable
}

/// The fastest dot kernel for this CPU (detected once).
pub(crate) fn kernel() -> DotFn {
    static KERNEL: std::sync::OnceLock<DotFn> = std::sync::OnceLock::new();
    *KERNEL.get_or_init(select_kernel)
}

/// Scales `v` to unit length in place; zero vectors stay zero.
pub(crate) fn normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 && norm.is_finite() {
        let inv = 1.0 / norm;
        v.iter_mut().for_each(|x| *x *= inv);
    }
}
