//! Element-wise and row-wise maths of the encoder: erf-GELU, layer normalisation, the
//! softmax's exponential, and lane-parallel sums and maxima — each in a portable form and in
//! AVX2 / AVX-512 forms with the same operations per lane, chosen by the model's [`Isa`].
//!
//! Invariant: as in `host`, nothing runs an instruction above the model's level; the wider
//! forms repeat the narrower ones' steps lane for lane (same constants, same order), so the
//! levels differ only where a sum's lanes are added in a different order.

use crate::bert::LayerNorm;
use crate::kernel::Isa;
use rayon::prelude::*;

/// Exact (erf) GELU over `block` in place, compiled for the model's level.
pub(crate) fn gelu_in_place(block: &mut [f32], isa: Isa) {
    #[cfg(target_arch = "x86_64")]
    match isa {
        // SAFETY: the model's level, which the CPU has, includes these features.
        Isa::Avx512 => return unsafe { gelu_block_avx512(block) },
        // SAFETY: as above.
        Isa::Avx2 => return unsafe { gelu_block_avx2(block) },
        Isa::Portable => {}
    }
    let _ = isa;
    gelu_block(block);
}

/// [`gelu_block_avx2`] sixteen lanes at a time (the same operations per lane).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn gelu_block_avx512(block: &mut [f32]) {
    use std::arch::x86_64::*;
    let mut chunks = block.chunks_exact_mut(16);
    for chunk in &mut chunks {
        // SAFETY: `chunk` is exactly 16 floats; unaligned loads and stores are allowed.
        unsafe {
            let x = _mm512_loadu_ps(chunk.as_ptr());
            let erf = avx512::erf16(_mm512_mul_ps(x, _mm512_set1_ps(std::f32::consts::FRAC_1_SQRT_2)));
            let half_x = _mm512_mul_ps(x, _mm512_set1_ps(0.5));
            _mm512_storeu_ps(chunk.as_mut_ptr(), _mm512_fmadd_ps(half_x, erf, half_x));
        }
    }
    // SAFETY: the CPU has AVX2 and FMA too.
    unsafe { gelu_block_avx2(chunks.into_remainder()) };
}

/// Sixteen-lane versions of [`avx2::exp8`] and [`avx2::erf8`] (same constants, same steps).
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(super) fn exp16(x: __m512) -> __m512 {
        let x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.0)), _mm512_set1_ps(88.0));
        let n = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm512_mul_ps(
            x,
            _mm512_set1_ps(std::f32::consts::LOG2_E),
        ));
        let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693_145_75), x);
        let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428_606_8e-6), r);
        let mut p = _mm512_set1_ps(0.001_388_889);
        for c in [0.008_333_334, 0.041_666_668, 0.166_666_67, 0.5, 1.0, 1.0] {
            p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c));
        }
        let bits = _mm512_slli_epi32::<23>(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)));
        _mm512_mul_ps(p, _mm512_castsi512_ps(bits))
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(super) fn erf16(x: __m512) -> __m512 {
        let sign = _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32(i32::MIN));
        let a = _mm512_castsi512_ps(_mm512_andnot_si512(
            _mm512_set1_epi32(i32::MIN),
            _mm512_castps_si512(x),
        ));
        let one = _mm512_set1_ps(1.0);
        let t = _mm512_div_ps(one, _mm512_fmadd_ps(_mm512_set1_ps(0.327_591_1), a, one));
        let mut poly = _mm512_set1_ps(1.061_405_4);
        for c in [-1.453_152_1, 1.421_413_8, -0.284_496_74, 0.254_829_6] {
            poly = _mm512_fmadd_ps(poly, t, _mm512_set1_ps(c));
        }
        poly = _mm512_mul_ps(poly, t);
        let e = exp16(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_mul_ps(a, a)));
        let y = _mm512_fnmadd_ps(poly, e, one);
        _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(y), sign))
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn gelu_block_avx2(block: &mut [f32]) {
    use std::arch::x86_64::*;
    let mut chunks = block.chunks_exact_mut(8);
    for chunk in &mut chunks {
        // SAFETY: `chunk` is exactly 8 floats; unaligned loads and stores are allowed.
        unsafe {
            let x = _mm256_loadu_ps(chunk.as_ptr());
            let erf = avx2::erf8(_mm256_mul_ps(x, _mm256_set1_ps(std::f32::consts::FRAC_1_SQRT_2)));
            let half_x = _mm256_mul_ps(x, _mm256_set1_ps(0.5));
            _mm256_storeu_ps(chunk.as_mut_ptr(), _mm256_fmadd_ps(half_x, erf, half_x));
        }
    }
    gelu_block(chunks.into_remainder());
}

/// Eight-lane versions of [`exp`] and [`erf`] (same constants, same accuracy).
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn exp8(x: __m256) -> __m256 {
        let x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.0)), _mm256_set1_ps(88.0));
        let n = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm256_mul_ps(
            x,
            _mm256_set1_ps(std::f32::consts::LOG2_E),
        ));
        let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693_145_75), x);
        let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.428_606_8e-6), r);
        let mut p = _mm256_set1_ps(0.001_388_889);
        for c in [0.008_333_334, 0.041_666_668, 0.166_666_67, 0.5, 1.0, 1.0] {
            p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(c));
        }
        let bits = _mm256_slli_epi32::<23>(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)));
        _mm256_mul_ps(p, _mm256_castsi256_ps(bits))
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn erf8(x: __m256) -> __m256 {
        let sign = _mm256_and_ps(x, _mm256_set1_ps(-0.0));
        let a = _mm256_andnot_ps(_mm256_set1_ps(-0.0), x);
        let one = _mm256_set1_ps(1.0);
        let t = _mm256_div_ps(one, _mm256_fmadd_ps(_mm256_set1_ps(0.327_591_1), a, one));
        let mut poly = _mm256_set1_ps(1.061_405_4);
        for c in [-1.453_152_1, 1.421_413_8, -0.284_496_74, 0.254_829_6] {
            poly = _mm256_fmadd_ps(poly, t, _mm256_set1_ps(c));
        }
        poly = _mm256_mul_ps(poly, t);
        let e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), _mm256_mul_ps(a, a)));
        let y = _mm256_fnmadd_ps(poly, e, one);
        _mm256_or_ps(y, sign)
    }
}

/// Exact (erf) GELU over a block; the erf below vectorises where the C library's cannot.
#[inline(always)]
fn gelu_block(block: &mut [f32]) {
    for v in block.iter_mut() {
        let x = *v;
        *v = 0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2));
    }
}

/// `e^x` for f32 without a library call: `x = n·ln2 + r`, a degree-6 polynomial for `e^r`
/// on |r| ≤ ln2/2, and `2^n` built in the exponent bits. Relative error about 2e-7 (a couple of
/// ulps); inputs below -87 give 0, as the softmax and erf uses here need.
#[inline(always)]
fn exp(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    let n = (x * std::f32::consts::LOG2_E).round_ties_even();
    let r = x - n * 0.693_145_75 - n * 1.428_606_8e-6;
    let p = 1.0
        + r * (1.0
            + r * (0.5 + r * (0.166_666_67 + r * (0.041_666_668 + r * (0.008_333_334 + r * 0.001_388_889)))));
    f32::from_bits(((n as i32 + 127) as u32) << 23) * p
}

/// erf(x) by Abramowitz & Stegun 7.1.26 (absolute error below 1.5e-7), odd-extended.
#[inline(always)]
fn erf(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let poly =
        t * (0.254_829_6 + t * (-0.284_496_74 + t * (1.421_413_8 + t * (-1.453_152_1 + t * 1.061_405_4))));
    let y = 1.0 - poly * exp(-a * a);
    y.copysign(x)
}

/// Row-wise layer normalisation in place (two-pass mean and variance, as PyTorch computes it),
/// compiled for the model's level.
pub(crate) fn layer_norm(x: &mut [f32], ln: &LayerNorm, h: usize, isa: Isa) {
    x.par_chunks_mut(h * 16).for_each(|rows| {
        #[cfg(target_arch = "x86_64")]
        match isa {
            // SAFETY: the model's level, which the CPU has, includes these features.
            Isa::Avx512 => return unsafe { layer_norm_avx512(rows, ln, h) },
            // SAFETY: as above.
            Isa::Avx2 => return unsafe { layer_norm_avx2(rows, ln, h) },
            Isa::Portable => {}
        }
        let _ = isa;
        layer_norm_rows(rows, ln, h);
    });
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn layer_norm_avx512(rows: &mut [f32], ln: &LayerNorm, h: usize) {
    layer_norm_rows(rows, ln, h)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn layer_norm_avx2(rows: &mut [f32], ln: &LayerNorm, h: usize) {
    layer_norm_rows(rows, ln, h)
}

/// The sums run in sixteen independent lanes, so they vectorise (a serial float sum cannot).
#[inline(always)]
fn layer_norm_rows(rows: &mut [f32], ln: &LayerNorm, h: usize) {
    for row in rows.chunks_exact_mut(h) {
        let mean = sum16(row, |v| v) / h as f32;
        let variance = sum16(row, |v| (v - mean) * (v - mean)) / h as f32;
        let inv = 1.0 / (variance + ln.eps).sqrt();
        for ((v, w), b) in row.iter_mut().zip(&ln.w).zip(&ln.b) {
            *v = (*v - mean) * inv * w + b;
        }
    }
}

/// `Σ f(v)` over `row` in sixteen lanes (added together at the end).
#[inline(always)]
fn sum16(row: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut acc = [0f32; 16];
    let mut chunks = row.chunks_exact(16);
    for chunk in &mut chunks {
        for (a, &v) in acc.iter_mut().zip(chunk) {
            *a += f(v);
        }
    }
    acc.iter().sum::<f32>() + chunks.remainder().iter().map(|&v| f(v)).sum::<f32>()
}

/// `v = e^(v - shift)` for every element; eight lanes at a time where AVX2 is available.
#[inline(always)]
pub(crate) fn exp_minus(values: &mut [f32], shift: f32, fast: bool) {
    #[cfg(target_arch = "x86_64")]
    if fast {
        use std::arch::x86_64::*;
        let mut chunks = values.chunks_exact_mut(8);
        for chunk in &mut chunks {
            // SAFETY: `fast` is only set where the model's Isa (which the CPU has) includes AVX2+FMA; `chunk` is exactly 8 floats.
            unsafe {
                let x = _mm256_sub_ps(_mm256_loadu_ps(chunk.as_ptr()), _mm256_set1_ps(shift));
                _mm256_storeu_ps(chunk.as_mut_ptr(), avx2::exp8(x));
            }
        }
        for v in chunks.into_remainder() {
            *v = exp(*v - shift);
        }
        return;
    }
    for v in values.iter_mut() {
        *v = exp(*v - shift);
    }
}

/// [`exp_minus`] sixteen lanes at a time (the same operations per lane as its eight).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
pub(crate) unsafe fn exp_minus_avx512(values: &mut [f32], shift: f32) {
    use std::arch::x86_64::*;
    let mut chunks = values.chunks_exact_mut(16);
    for chunk in &mut chunks {
        // SAFETY: `chunk` is exactly 16 floats.
        unsafe {
            let x = _mm512_sub_ps(_mm512_loadu_ps(chunk.as_ptr()), _mm512_set1_ps(shift));
            _mm512_storeu_ps(chunk.as_mut_ptr(), avx512::exp16(x));
        }
    }
    exp_minus(chunks.into_remainder(), shift, true);
}

/// The largest value, in sixteen independent lanes (vectorisable, unlike a serial fold).
#[inline(always)]
pub(crate) fn max16(values: &[f32]) -> f32 {
    let mut acc = [f32::MIN; 16];
    let mut chunks = values.chunks_exact(16);
    for chunk in &mut chunks {
        for (a, &v) in acc.iter_mut().zip(chunk) {
            *a = if v > *a { v } else { *a };
        }
    }
    let max = chunks
        .remainder()
        .iter()
        .fold(f32::MIN, |m, &v| if v > m { v } else { m });
    acc.iter().fold(max, |m, &v| if v > m { v } else { m })
}

/// Sum with eight independent lanes (vectorisable, unlike a serial float sum).
#[inline(always)]
pub(crate) fn sum8(values: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let mut chunks = values.chunks_exact(8);
    for chunk in &mut chunks {
        for (a, v) in acc.iter_mut().zip(chunk) {
            *a += v;
        }
    }
    acc.iter().sum::<f32>() + chunks.remainder().iter().sum::<f32>()
}
