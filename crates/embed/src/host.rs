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

use crate::bert::{BertModel, Linear};
use crate::elementwise::{exp_minus, gelu_in_place, layer_norm, max16, sum8};
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
        y.par_chunks_mut(8192).for_each(|block| gelu_in_place(block, isa));
    }
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
                    unsafe { crate::elementwise::exp_minus_avx512(row, max) };
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
