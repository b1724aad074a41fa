//! The encoder's forward pass on plain host memory, on the kernels chosen at load.
//!
//! Arranged to waste nothing: every linear layer is one packed matrix multiply (`gemm` or
//! `qgemm`) whose output buffer starts as `bias (+ residual)` so both adds come free; GELU runs
//! in place on the matmul's output; attention reads q, k and v where the QKV matmul left them
//! (no permute copies) and runs one sequence per task, with inner loops compiled for AVX2+FMA
//! when the chosen [`Isa`] allows.
//!
//! Invariant: nothing here uses an instruction above the model's [`Isa`], so forcing a lower
//! level (`GROUNDWORK_KERNEL`) really runs the lower level's code — which is what lets the
//! parity test check every path on one machine.

use crate::bert::{BertModel, LayerNorm, Linear};
use crate::kernel::Isa;
use rayon::prelude::*;

impl BertModel {
    /// The last hidden state `[b * s, hidden]` for a padded batch of token ids.
    pub(crate) fn forward(&self, ids: &[u32], mask: &[u8], b: usize, s: usize) -> Vec<f32> {
        let h = self.hidden;
        let rows = b * s;
        let mut x = vec![0f32; rows * h];
        x.par_chunks_mut(h).enumerate().for_each(|(row, out)| {
            let token = ids[row] as usize;
            let position = row % s;
            let word = &self.word[token * h..(token + 1) * h];
            let pos = &self.pos_type[position * h..(position + 1) * h];
            for ((o, w), p) in out.iter_mut().zip(word).zip(pos) {
                *o = w + p;
            }
        });
        layer_norm(&mut x, &self.ln_emb, h, self.isa);
        // Additive mask per key position: 0 for tokens, a huge negative for padding.
        let key_bias: Vec<f32> = mask
            .iter()
            .map(|&m| if m == 1 { 0.0 } else { f32::MIN })
            .collect();
        // One buffer per intermediate, reused by every layer: a fresh allocation of tens of
        // megabytes per matmul costs a page fault per page touched.
        let (mut qkv, mut context, mut attended, mut inter, mut next) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for layer in &self.layers {
            linear(&x, rows, &layer.qkv, None, false, self.isa, &mut qkv);
            attention(&qkv, &key_bias, b, s, self.heads, h, self.isa, &mut context);
            linear(
                &context,
                rows,
                &layer.attn_out,
                Some(&x),
                false,
                self.isa,
                &mut attended,
            );
            layer_norm(&mut attended, &layer.ln_attn, h, self.isa);
            linear(&attended, rows, &layer.inter, None, true, self.isa, &mut inter);
            linear(
                &inter,
                rows,
                &layer.out,
                Some(&attended),
                false,
                self.isa,
                &mut next,
            );
            layer_norm(&mut next, &layer.ln_out, h, self.isa);
            std::mem::swap(&mut x, &mut next);
        }
        x
    }
}

/// `y = x · w + b (+ residual)`, optionally through erf-GELU; `y`'s allocation is reused.
fn linear(
    x: &[f32],
    rows: usize,
    layer: &Linear,
    residual: Option<&[f32]>,
    gelu: bool,
    isa: Isa,
    y: &mut Vec<f32>,
) {
    let outputs = layer.outputs();
    // Every value is overwritten below; only a change of size needs the buffer resized
    // (and so zeroed), which after the first layer none does.
    if y.len() != rows * outputs {
        y.clear();
        y.resize(rows * outputs, 0.0);
    }
    match residual {
        Some(residual) => y
            .par_chunks_mut(outputs * 16)
            .zip(residual.par_chunks(outputs * 16))
            .for_each(|(y, residual)| {
                for (y, residual) in y.chunks_exact_mut(outputs).zip(residual.chunks_exact(outputs)) {
                    for ((y, r), b) in y.iter_mut().zip(residual).zip(&layer.bias) {
                        *y = r + b;
                    }
                }
            }),
        None => y.par_chunks_mut(outputs * 16).for_each(|y| {
            for y in y.chunks_exact_mut(outputs) {
                y.copy_from_slice(&layer.bias);
            }
        }),
    }
    layer.multiply_accumulate(x, rows, y);
    if gelu {
        y.par_chunks_mut(8192).for_each(|block| {
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
        });
    }
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
fn layer_norm(x: &mut [f32], ln: &LayerNorm, h: usize, isa: Isa) {
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

/// Multi-head self-attention over the fused QKV output (`[rows, 3h]`, q pre-scaled), into
/// `context` (its allocation reused).
#[allow(clippy::too_many_arguments)]
fn attention(
    qkv: &[f32],
    key_bias: &[f32],
    b: usize,
    s: usize,
    heads: usize,
    h: usize,
    isa: Isa,
    context: &mut Vec<f32>,
) {
    let fast = isa >= Isa::Avx2;
    // Every value is written below (each head's columns of each row are zeroed first).
    if context.len() != b * s * h {
        context.clear();
        context.resize(b * s * h, 0.0);
    }
    let d = h / heads;
    // 8 × 32 tiles on AVX-512 where a head's width is whole tiles, else 4 × 16.
    let wide = isa >= Isa::Avx512 && d.is_multiple_of(tiled::WIDE_COLUMNS);
    context
        .par_chunks_mut(s * h)
        .enumerate()
        .for_each(|(sequence, out)| {
            let qkv = &qkv[sequence * s * 3 * h..(sequence + 1) * s * 3 * h];
            let bias = &key_bias[sequence * s..(sequence + 1) * s];
            #[cfg(target_arch = "x86_64")]
            if fast {
                if d.is_multiple_of(tiled::COLUMNS) {
                    // SAFETY: the CPU supports the features the function is compiled for
                    // (AVX-512 F as well when `wide`: the model's level has it).
                    unsafe { tiled::attention_sequence(qkv, bias, s, heads, h, out, wide) };
                } else {
                    // SAFETY: as above.
                    unsafe { attention_sequence_avx2(qkv, bias, s, heads, h, out) };
                }
                return;
            }
            attention_sequence(qkv, bias, s, heads, h, out, false);
        });
}

/// Attention as two small register-tiled matrix products per head (`scores = q·kᵀ`, then
/// `context = softmax(scores)·v`), reading q and v in place from the QKV rows.
///
/// The plain loop in [`attention_sequence`] updates a whole score row per multiply-add, so
/// every FMA waits on a load and a store; a 4×16 tile keeps its eight accumulators in
/// registers for the whole inner dimension, which made attention about three times faster
/// (it was a fifth of the encoder's time next to OpenBLAS's matmuls).
#[cfg(target_arch = "x86_64")]
mod tiled {
    use std::arch::x86_64::*;

    /// Output columns per tile (two AVX registers), and per wide tile (two AVX-512 ones).
    pub(super) const COLUMNS: usize = 16;
    pub(super) const WIDE_COLUMNS: usize = 32;
    const ROWS: usize = 4;
    const WIDE_ROWS: usize = 8;

    /// One sequence, all heads; `wide` (the caller checked the CPU has AVX-512 F and that
    /// `h / heads` is a multiple of [`WIDE_COLUMNS`]) runs the products on 8 × 32 tiles.
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn attention_sequence(
        qkv: &[f32],
        bias: &[f32],
        s: usize,
        heads: usize,
        h: usize,
        out: &mut [f32],
        wide: bool,
    ) {
        let d = h / heads;
        let columns = if wide { WIDE_COLUMNS } else { COLUMNS };
        // Score rows are padded to whole tiles; padded keys get the padding bias (→ weight 0).
        let padded = s.div_ceil(columns) * columns;
        // Every head's keys transposed at once (`[h, padded]`), reading each key row whole:
        // per head, strided reads of 32 values from each of `s` rows cost more than the
        // products they feed.
        let mut keys_t = vec![0f32; h * padded];
        for j in 0..s {
            let keys = &qkv[j * 3 * h + h..j * 3 * h + 2 * h];
            for (c, &k) in keys.iter().enumerate() {
                keys_t[c * padded + j] = k;
            }
        }
        let mut scores = vec![0f32; s * padded];
        let mut inverse_sums = vec![0f32; s];
        for head in 0..heads {
            for row in scores.chunks_exact_mut(padded) {
                row[..s].copy_from_slice(bias);
                row[s..].fill(f32::MIN);
            }
            let queries = &qkv[head * d..];
            let keys = &keys_t[head * d * padded..(head + 1) * d * padded];
            multiply_accumulate(
                s,
                padded,
                d,
                queries,
                3 * h,
                keys,
                padded,
                &mut scores,
                padded,
                wide,
            );
            // Softmax without its division: the context rows are scaled by 1/Σ instead (d
            // values a row rather than `padded`).
            for (row, inverse) in scores.chunks_exact_mut(padded).zip(&mut inverse_sums) {
                let max = super::max16(row);
                if wide {
                    // SAFETY: `wide` means the CPU has AVX-512 F (see above).
                    unsafe { super::exp_minus_avx512(row, max) };
                } else {
                    super::exp_minus(row, max, true);
                }
                *inverse = 1.0 / super::sum8(row);
            }
            let context = &mut out[head * d..];
            for i in 0..s {
                context[i * h..i * h + d].fill(0.0);
            }
            let values = &qkv[2 * h + head * d..];
            multiply_accumulate(s, d, s, &scores, padded, values, 3 * h, context, h, wide);
            for (i, inverse) in inverse_sums.iter().enumerate() {
                for v in &mut context[i * h..i * h + d] {
                    *v *= inverse;
                }
            }
        }
    }

    /// `c[rows, cols] += a[rows, k] · b[k, cols]`, all row-major with the given row strides;
    /// `cols` is a multiple of [`COLUMNS`] ([`WIDE_COLUMNS`] if `wide`, which the caller only
    /// sets where the CPU has AVX-512 F).
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx2,fma")]
    fn multiply_accumulate(
        rows: usize,
        cols: usize,
        k: usize,
        a: &[f32],
        lda: usize,
        b: &[f32],
        ldb: usize,
        c: &mut [f32],
        ldc: usize,
        wide: bool,
    ) {
        assert!(cols.is_multiple_of(if wide { WIDE_COLUMNS } else { COLUMNS }));
        if rows == 0 || cols == 0 || k == 0 {
            return;
        }
        // Bounds for every access the tiles make, checked once here.
        assert!(a.len() >= (rows - 1) * lda + k);
        assert!(b.len() >= (k - 1) * ldb + cols);
        assert!(c.len() >= (rows - 1) * ldc + cols);
        if wide {
            for i in (0..rows).step_by(WIDE_ROWS) {
                for j in (0..cols).step_by(WIDE_COLUMNS) {
                    // SAFETY: the asserts above cover rows i..i+R and columns j..j+32 of each
                    // operand; the caller checked AVX-512 F.
                    unsafe {
                        let a = a.as_ptr().add(i * lda);
                        let b = b.as_ptr().add(j);
                        let c = c.as_mut_ptr().add(i * ldc + j);
                        match rows - i {
                            1 => wide_tile::<1>(a, lda, b, ldb, c, ldc, k),
                            2 => wide_tile::<2>(a, lda, b, ldb, c, ldc, k),
                            3 => wide_tile::<3>(a, lda, b, ldb, c, ldc, k),
                            4 => wide_tile::<4>(a, lda, b, ldb, c, ldc, k),
                            5 => wide_tile::<5>(a, lda, b, ldb, c, ldc, k),
                            6 => wide_tile::<6>(a, lda, b, ldb, c, ldc, k),
                            7 => wide_tile::<7>(a, lda, b, ldb, c, ldc, k),
                            _ => wide_tile::<WIDE_ROWS>(a, lda, b, ldb, c, ldc, k),
                        }
                    }
                }
            }
            return;
        }
        for i in (0..rows).step_by(ROWS) {
            for j in (0..cols).step_by(COLUMNS) {
                // SAFETY: the asserts above cover rows i..i+R and columns j..j+16 of each operand.
                unsafe {
                    let a = a.as_ptr().add(i * lda);
                    let b = b.as_ptr().add(j);
                    let c = c.as_mut_ptr().add(i * ldc + j);
                    match rows - i {
                        1 => tile::<1>(a, lda, b, ldb, c, ldc, k),
                        2 => tile::<2>(a, lda, b, ldb, c, ldc, k),
                        3 => tile::<3>(a, lda, b, ldb, c, ldc, k),
                        _ => tile::<ROWS>(a, lda, b, ldb, c, ldc, k),
                    }
                }
            }
        }
    }

    /// `$name::<R>`: one `R × 2·$lanes` tile of `c += a · b`, accumulated in two registers
    /// per row for the whole of `k` — the same code at two register widths.
    macro_rules! register_tile {
        ($name:ident, $features:literal, $lanes:literal, $zero:ident, $load:ident, $store:ident, $splat:ident, $fma:ident) => {
            #[inline]
            #[target_feature(enable = $features)]
            unsafe fn $name<const R: usize>(
                a: *const f32,
                lda: usize,
                b: *const f32,
                ldb: usize,
                c: *mut f32,
                ldc: usize,
                k: usize,
            ) {
                // SAFETY (whole body): the caller guarantees R rows of `a` (k values each), k
                // rows of `b` and R rows of `c` (2·$lanes values each) at these strides.
                unsafe {
                    let mut acc = [[$zero(); 2]; R];
                    for (r, acc) in acc.iter_mut().enumerate() {
                        acc[0] = $load(c.add(r * ldc));
                        acc[1] = $load(c.add(r * ldc + $lanes));
                    }
                    // Row pointers advance by addition: no index multiplications (or their
                    // overflow checks in test builds) inside the loop.
                    let mut a_rows = [a; R];
                    for (r, row) in a_rows.iter_mut().enumerate() {
                        *row = a.add(r * lda);
                    }
                    let mut b_row = b;
                    for _ in 0..k {
                        let b0 = $load(b_row);
                        let b1 = $load(b_row.add($lanes));
                        for (acc, a_row) in acc.iter_mut().zip(a_rows.iter_mut()) {
                            let x = $splat(**a_row);
                            *a_row = a_row.add(1);
                            acc[0] = $fma(x, b0, acc[0]);
                            acc[1] = $fma(x, b1, acc[1]);
                        }
                        b_row = b_row.add(ldb);
                    }
                    for (r, acc) in acc.iter().enumerate() {
                        $store(c.add(r * ldc), acc[0]);
                        $store(c.add(r * ldc + $lanes), acc[1]);
                    }
                }
            }
        };
    }

    register_tile!(
        tile,
        "avx2,fma",
        8,
        _mm256_setzero_ps,
        _mm256_loadu_ps,
        _mm256_storeu_ps,
        _mm256_set1_ps,
        _mm256_fmadd_ps
    );
    register_tile!(
        wide_tile,
        "avx512f,avx2,fma",
        16,
        _mm512_setzero_ps,
        _mm512_loadu_ps,
        _mm512_storeu_ps,
        _mm512_set1_ps,
        _mm512_fmadd_ps
    );
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn attention_sequence_avx2(
    qkv: &[f32],
    bias: &[f32],
    s: usize,
    heads: usize,
    h: usize,
    out: &mut [f32],
) {
    attention_sequence(qkv, bias, s, heads, h, out, true)
}

/// One sequence, all heads. `#[inline(always)]` so the AVX2 wrapper gets vectorised copies.
///
/// Every inner loop runs along a contiguous row (keys transposed to `[d, s]`), so each is a
/// plain vector multiply-add with no horizontal sums.
#[inline(always)]
fn attention_sequence(
    qkv: &[f32],
    bias: &[f32],
    s: usize,
    heads: usize,
    h: usize,
    out: &mut [f32],
    fast: bool,
) {
    let d = h / heads;
    let mut keys_t = vec![0f32; d * s];
    let mut values = vec![0f32; s * d];
    let mut scores = vec![0f32; s];
    for head in 0..heads {
        for j in 0..s {
            let row = &qkv[j * 3 * h..(j + 1) * 3 * h];
            let key = &row[h + head * d..h + (head + 1) * d];
            for (c, &k) in key.iter().enumerate() {
                keys_t[c * s + j] = k;
            }
            values[j * d..(j + 1) * d].copy_from_slice(&row[2 * h + head * d..2 * h + (head + 1) * d]);
        }
        for i in 0..s {
            let query = &qkv[i * 3 * h + head * d..i * 3 * h + (head + 1) * d];
            scores.copy_from_slice(bias);
            for (c, &q) in query.iter().enumerate() {
                for (score, &k) in scores.iter_mut().zip(&keys_t[c * s..(c + 1) * s]) {
                    *score += q * k;
                }
            }
            let max = scores.iter().fold(f32::MIN, |m, &v| if v > m { v } else { m });
            exp_minus(&mut scores, max, fast);
            let sum: f32 = sum8(&scores);
            let inv = 1.0 / sum;
            let target = &mut out[i * h + head * d..i * h + (head + 1) * d];
            target.fill(0.0);
            for (&p, value) in scores.iter().zip(values.chunks_exact(d)) {
                let weight = p * inv;
                for (t, v) in target.iter_mut().zip(value) {
                    *t += weight * v;
                }
            }
        }
    }
}

/// `v = e^(v - shift)` for every element; eight lanes at a time where AVX2 is available.
#[inline(always)]
fn exp_minus(values: &mut [f32], shift: f32, fast: bool) {
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
unsafe fn exp_minus_avx512(values: &mut [f32], shift: f32) {
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
fn max16(values: &[f32]) -> f32 {
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
fn sum8(values: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let mut chunks = values.chunks_exact(8);
    for chunk in &mut chunks {
        for (a, v) in acc.iter_mut().zip(chunk) {
            *a += v;
        }
    }
    acc.iter().sum::<f32>() + chunks.remainder().iter().sum::<f32>()
}
