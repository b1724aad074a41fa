//! 8-bit matrix multiply for the encoder's linear layers: `c += dequant(quant(a) · quant(w))`.
//!
//! Invariant: the integer part is exact — every kernel computes the same 32-bit sums (no
//! saturating step anywhere: `u8 × i8` products summed four at a time fit easily), and the
//! float epilogue is the same separate multiply and add on every kernel — so all [`Isa`]s
//! give identical outputs for identical inputs.
//!
//! Weights are quantised once, symmetrically per output channel (`w ≈ sw[j] · qw[k][j]`,
//! `qw ∈ [-127, 127]`); activations per row at each call, asymmetrically over the row's own
//! range (`a ≈ sa[i] · (qa[i][k] − za[i])`, `qa ∈ [0, 255]`), in unsigned bytes as the VNNI
//! instruction (`vpdpbusd`) wants them. The range is what buys the accuracy: the input of the
//! feed-forward output layer (after GELU) is almost all ≥ −0.17, so a symmetric code would
//! waste half of its 256 steps. The zero point comes back out exactly:
//! `Σ (qa − za)·qw = Σ qa·qw − za·Σ qw`, with `Σ qw` per column computed at load. Packed weights hold four consecutive `k`
//! of a column together, as `vpdpbusd` consumes them: one instruction does 64
//! multiply-adds, four times what one fp32 FMA does at the same width.

use rayon::prelude::*;

use crate::kernel::{Isa, SharedMut, for_each_block, vnni_available};

thread_local! {
    /// The activation codes of this thread's last call, kept for the next.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Columns per panel (two 16-lane registers of 32-bit sums).
const NR: usize = 32;
/// Rows per micro-tile.
const MR: usize = 8;

/// `w` (`[k, n]`, row-major) quantised and packed.
pub(crate) struct PackedI8 {
    isa: Isa,
    vnni: bool,
    k: usize,
    /// `k` rounded up to a multiple of 4 (the padding is zero weights).
    kp: usize,
    n: usize,
    /// `panels × kp/4 × NR × 4` signed bytes.
    data: Vec<i8>,
    /// Per column (padded to whole panels): the weight scale `sw`.
    scales: Vec<f32>,
    /// Per column (padded): `Σ_k qw[k][j]`.
    column_sums: Vec<i32>,
}

impl PackedI8 {
    pub(crate) fn pack(w: &[f32], k: usize, n: usize, isa: Isa) -> PackedI8 {
        assert_eq!(w.len(), k * n, "weight shape");
        let kp = k.div_ceil(4) * 4;
        let panels = n.div_ceil(NR);
        let mut scales = vec![0f32; panels * NR];
        let mut column_sums = vec![0i32; panels * NR];
        let mut data = vec![0i8; panels * kp * NR];
        for j in 0..n {
            let max = (0..k).map(|t| w[t * n + j].abs()).fold(0f32, f32::max);
            let scale = if max > 0.0 && max.is_finite() {
                max / 127.0
            } else {
                0.0
            };
            let inverse = if scale > 0.0 { 1.0 / scale } else { 0.0 };
            scales[j] = scale;
            let (panel, column) = (j / NR, j % NR);
            let mut sum = 0i32;
            for t in 0..k {
                let q = (w[t * n + j] * inverse).round().clamp(-127.0, 127.0) as i8;
                sum += q as i32;
                data[panel * kp * NR + (t / 4) * NR * 4 + column * 4 + t % 4] = q;
            }
            column_sums[j] = sum;
        }
        PackedI8 {
            isa,
            vnni: isa == Isa::Avx512 && vnni_available(),
            k,
            kp,
            n,
            data,
            scales,
            column_sums,
        }
    }

    pub(crate) fn outputs(&self) -> usize {
        self.n
    }

    /// Which micro-kernel runs: `avx512-vnni`, `avx2` or `portable`.
    pub(crate) fn kernel_name(&self) -> &'static str {
        if self.vnni {
            "avx512-vnni"
        } else if self.isa >= Isa::Avx2 {
            "avx2"
        } else {
            "portable"
        }
    }

    /// `c[rows × n] += a[rows × k] · w`, through 8-bit integers.
    pub(crate) fn multiply_accumulate(&self, a: &[f32], rows: usize, c: &mut [f32]) {
        let (k, n) = (self.k, self.n);
        assert!(
            a.len() >= rows * k && c.len() >= rows * n,
            "gemm operand too small"
        );
        if rows == 0 || n == 0 {
            return;
        }
        // The codes go in this thread's scratch buffer, kept between calls (a fresh one of
        // megabytes per call costs a page fault per page); a nested call gets its own.
        SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
            Ok(mut bytes) => self.run(a, rows, c, &mut bytes),
            Err(_) => self.run(a, rows, c, &mut Vec::new()),
        });
    }

    /// [`Self::multiply_accumulate`] with `bytes` to quantise into (grown as needed).
    fn run(&self, a: &[f32], rows: usize, c: &mut [f32], bytes: &mut Vec<u8>) {
        let (k, kp, n) = (self.k, self.kp, self.n);
        // Quantise each row over its own range (widened to include 0, so that a zero stays
        // exactly zero), as unsigned bytes with a zero point. The padding `k..kp` meets zero
        // weights, so its bytes (whatever an earlier call left there) do not matter.
        if bytes.len() < rows * kp {
            bytes.resize(rows * kp, 0);
        }
        let quantised = &mut bytes[..rows * kp];
        let mut row_scales = vec![0f32; rows];
        let mut zero_points = vec![0i32; rows];
        let isa = if self.vnni { Isa::Avx512 } else { self.isa };
        quantised
            .par_chunks_mut(kp * 16)
            .zip(row_scales.par_chunks_mut(16).zip(zero_points.par_chunks_mut(16)))
            .zip(a.par_chunks(k * 16))
            .for_each(|((out, (scales, zeros)), rows)| {
                for (((out, scale), zero), row) in out
                    .chunks_exact_mut(kp)
                    .zip(scales)
                    .zip(zeros)
                    .zip(rows.chunks_exact(k))
                {
                    (*scale, *zero) = quantise_row(isa, row, &mut out[..k]);
                }
            });

        let panels = n.div_ceil(NR);
        let out = SharedMut(c.as_mut_ptr());
        let quantised = Rows {
            bytes: quantised,
            scales: &row_scales,
            zero_points: &zero_points,
        };
        for_each_block(rows, panels, MR, |rows, panels| {
            for p in panels {
                let mut i = rows.start;
                while i < rows.end {
                    let height = MR.min(rows.end - i);
                    // SAFETY: rows i..i+height, panel p of `c` belong to this task alone (blocks
                    // are disjoint row × panel parts of a rows × n buffer).
                    unsafe { self.tile(&quantised, i, height, p, out.get()) };
                    i += height;
                }
            }
        });
    }

    /// `c[i..i+height][panel p] += dequant(Σ_k qa·qw)` for one micro-tile.
    ///
    /// # Safety
    /// `c` points to a `[rows × n]` buffer whose rows `i..i+height`, columns of panel `p`, no
    /// other thread touches.
    unsafe fn tile(&self, a: &Rows<'_>, i: usize, height: usize, p: usize, c: *mut f32) {
        let (kp, n) = (self.kp, self.n);
        let width = NR.min(n - p * NR);
        let bytes = &a.bytes[i * kp..(i + height) * kp];
        let panel = &self.data[p * kp * NR..(p + 1) * kp * NR];
        let scales = &self.scales[p * NR..(p + 1) * NR];
        let column_sums = &self.column_sums[p * NR..(p + 1) * NR];
        let (row_scales, zero_points) = (&a.scales[i..i + height], &a.zero_points[i..i + height]);
        #[cfg(target_arch = "x86_64")]
        if self.vnni {
            // SAFETY: `vnni` is only set when the CPU has AVX-512 F/BW/VL and VNNI; the slices
            // hold `height ≤ MR` rows of `kp` bytes, a kp × NR panel and NR scales and sums;
            // the caller gives rows i..i+height × `width` columns of `c` at stride n.
            unsafe {
                x86::tile_vnni(
                    bytes,
                    height,
                    kp,
                    panel,
                    x86::Epilogue {
                        scales,
                        column_sums,
                        row_scales,
                        zero_points,
                        c: c.add(i * n + p * NR),
                        ldc: n,
                        width,
                    },
                )
            };
            return;
        }
        let mut sums = [[0i32; NR]; MR];
        self.sums(bytes, height, panel, &mut sums);
        for (r, sums) in sums.iter().enumerate().take(height) {
            // SAFETY: row i+r, columns p*NR..p*NR+width of `c` are the caller's to write.
            let row = unsafe { std::slice::from_raw_parts_mut(c.add((i + r) * n + p * NR), width) };
            let (sa, za) = (row_scales[r], zero_points[r]);
            for (((o, &s), &sw), &sum) in row.iter_mut().zip(sums).zip(scales).zip(column_sums) {
                *o += dequantise(s, za, sum, sw, sa);
            }
        }
    }

    /// The integer sums `Σ_k qa[r][k] · qw[k][j]` (`qa` with its zero point) of `height` rows
    /// against one panel, on the kernels without VNNI.
    fn sums(&self, rows: &[u8], height: usize, panel: &[i8], out: &mut [[i32; NR]; MR]) {
        let kp = self.kp;
        #[cfg(target_arch = "x86_64")]
        if self.isa >= Isa::Avx2 {
            // SAFETY: AVX2 is available at this level.
            unsafe { x86::sums_avx2(rows, height, kp, panel, out) };
            return;
        }
        sums_portable(rows, height, kp, panel, out);
    }

    #[cfg(test)]
    fn k(&self) -> usize {
        self.k
    }
}

/// The quantised activations of one call: `rows × kp` bytes and each row's scale and zero point.
struct Rows<'a> {
    bytes: &'a [u8],
    scales: &'a [f32],
    zero_points: &'a [i32],
}

/// One output's float value from its integer sum: `(Σ qa·qw − za·Σ qw) · sw · sa`. The
/// VNNI epilogue computes exactly this, operation for operation.
#[inline(always)]
fn dequantise(sum: i32, za: i32, column_sum: i32, sw: f32, sa: f32) -> f32 {
    (sum - za * column_sum) as f32 * (sw * sa)
}

/// A row's quantisation from its range `[min, max]` (already widened to include 0): the
/// scale, the multiplier into codes and the zero point; `None` for a row of zeros (or one
/// with an infinity), which is left all zero codes with scale 0.
#[inline(always)]
fn row_parameters(min: f32, max: f32) -> Option<(f32, f32, i32)> {
    let range = max - min;
    if !(range > 0.0 && range.is_finite()) {
        return None;
    }
    let inverse = 255.0 / range;
    let zero = (-min * inverse).round().clamp(0.0, 255.0) as i32;
    Some((range / 255.0, inverse, zero))
}

/// One value's code: `round_half_even(v · inverse + z)` clamped to `[0, 255]` (NaN → 0). The
/// AVX-512 quantiser computes exactly this, operation for operation.
#[inline(always)]
fn code(v: f32, inverse: f32, z: f32) -> u8 {
    (v * inverse + z).round_ties_even().clamp(0.0, 255.0) as u8
}

/// Quantises `row` into `out` (same length): its scale and zero point (a row without a
/// range gets scale 0 and all-zero codes).
/// Every level gives the same bytes (min and max are exact, and the code is one formula).
fn quantise_row(isa: Isa, row: &[f32], out: &mut [u8]) -> (f32, i32) {
    #[cfg(target_arch = "x86_64")]
    if isa == Isa::Avx512 {
        // SAFETY: the model's level, which the CPU has, includes AVX-512 F/BW/VL.
        return unsafe { x86::quantise_row_avx512(row, out) };
    }
    #[cfg(target_arch = "x86_64")]
    if isa == Isa::Avx2 {
        // SAFETY: the CPU has AVX2 and FMA at this level.
        return unsafe { x86::quantise_row_avx2(row, out) };
    }
    let _ = isa;
    quantise_row_portable(row, out)
}

#[inline(always)]
fn quantise_row_portable(row: &[f32], out: &mut [u8]) -> (f32, i32) {
    // Sixteen independent lanes, so the compiler can vectorise the fold (min and max are
    // exact, so the order does not change the result).
    let (mut lo, mut hi) = ([0f32; 16], [0f32; 16]);
    let mut chunks = row.chunks_exact(16);
    for chunk in &mut chunks {
        for ((lo, hi), &v) in lo.iter_mut().zip(hi.iter_mut()).zip(chunk) {
            *lo = lo.min(v);
            *hi = hi.max(v);
        }
    }
    for &v in chunks.remainder() {
        lo[0] = lo[0].min(v);
        hi[0] = hi[0].max(v);
    }
    let min = lo.iter().fold(0f32, |m, &v| m.min(v));
    let max = hi.iter().fold(0f32, |m, &v| m.max(v));
    let Some((scale, inverse, zero)) = row_parameters(min, max) else {
        out.fill(0);
        return (0.0, 0);
    };
    let z = zero as f32;
    for (o, &v) in out.iter_mut().zip(row) {
        *o = code(v, inverse, z);
    }
    (scale, zero)
}

/// Plain integer loops (the compiler vectorises them for the target it is built for).
#[inline(always)]
fn sums_portable(rows: &[u8], height: usize, kp: usize, panel: &[i8], out: &mut [[i32; NR]; MR]) {
    for (r, out) in out.iter_mut().enumerate().take(height) {
        let row = &rows[r * kp..(r + 1) * kp];
        let mut acc = [0i32; NR];
        for (group, weights) in row.chunks_exact(4).zip(panel.chunks_exact(4 * NR)) {
            for (acc, column) in acc.iter_mut().zip(weights.chunks_exact(4)) {
                *acc += group[0] as i32 * column[0] as i32
                    + group[1] as i32 * column[1] as i32
                    + group[2] as i32 * column[2] as i32
                    + group[3] as i32 * column[3] as i32;
            }
        }
        *out = acc;
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{MR, NR};
    use std::arch::x86_64::*;

    /// The portable loops compiled for AVX2.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn sums_avx2(
        rows: &[u8],
        height: usize,
        kp: usize,
        panel: &[i8],
        out: &mut [[i32; NR]; MR],
    ) {
        super::sums_portable(rows, height, kp, panel, out)
    }

    /// The portable quantiser compiled for AVX2.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn quantise_row_avx2(row: &[f32], out: &mut [u8]) -> (f32, i32) {
        super::quantise_row_portable(row, out)
    }

    /// [`super::quantise_row_portable`] sixteen lanes at a time: the same exact min and max,
    /// the same parameters, the same code per value (`vrndscaleps` rounds half to even; a
    /// NaN meets `max(·, 0)` as its first operand and becomes 0).
    ///
    /// # Safety
    /// The CPU has AVX-512 F/BW/VL; `out` is at least as long as `row`.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    pub(super) unsafe fn quantise_row_avx512(row: &[f32], out: &mut [u8]) -> (f32, i32) {
        let n = row.len();
        assert!(out.len() >= n);
        let tail = n % 16;
        let tail_mask: __mmask16 = ((1u32 << tail) - 1) as u16;
        // SAFETY (whole body): full chunks read 16 values inside `row`, the tail only the
        // lanes its mask allows; stores mirror the loads into `out`.
        unsafe {
            let (mut lo, mut hi) = (_mm512_setzero_ps(), _mm512_setzero_ps());
            let mut i = 0;
            while i + 16 <= n {
                let x = _mm512_loadu_ps(row.as_ptr().add(i));
                // The new value first: a NaN is passed over, as `f32::min` does.
                lo = _mm512_min_ps(x, lo);
                hi = _mm512_max_ps(x, hi);
                i += 16;
            }
            if tail > 0 {
                let x = _mm512_maskz_loadu_ps(tail_mask, row.as_ptr().add(i));
                lo = _mm512_min_ps(x, lo);
                hi = _mm512_max_ps(x, hi);
            }
            let Some((scale, inverse, zero)) =
                super::row_parameters(_mm512_reduce_min_ps(lo), _mm512_reduce_max_ps(hi))
            else {
                out[..n].fill(0);
                return (0.0, 0);
            };
            let (inverse, z) = (_mm512_set1_ps(inverse), _mm512_set1_ps(zero as f32));
            let (floor, ceiling) = (_mm512_setzero_ps(), _mm512_set1_ps(255.0));
            let codes = |x: __m512| {
                let y = _mm512_add_ps(_mm512_mul_ps(x, inverse), z);
                let y = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(y);
                _mm512_cvtps_epi32(_mm512_min_ps(_mm512_max_ps(y, floor), ceiling))
            };
            let mut i = 0;
            while i + 16 <= n {
                let x = _mm512_loadu_ps(row.as_ptr().add(i));
                _mm_storeu_si128(
                    out.as_mut_ptr().add(i) as *mut __m128i,
                    _mm512_cvtepi32_epi8(codes(x)),
                );
                i += 16;
            }
            if tail > 0 {
                let x = _mm512_maskz_loadu_ps(tail_mask, row.as_ptr().add(i));
                _mm512_mask_cvtepi32_storeu_epi8(out.as_mut_ptr().add(i) as *mut i8, tail_mask, codes(x));
            }
            (scale, zero)
        }
    }

    /// Where a VNNI tile's sums go: `c[r][j] += dequantise(sum, za[r], column_sums[j],
    /// scales[j], row_scales[r])` for the tile's rows and its first `width` columns.
    pub(super) struct Epilogue<'a> {
        /// The panel's weight scales and column sums (`NR` each, padded).
        pub scales: &'a [f32],
        pub column_sums: &'a [i32],
        /// The tile's rows' scales and zero points.
        pub row_scales: &'a [f32],
        pub zero_points: &'a [i32],
        /// The tile's first output, and the output's row stride.
        pub c: *mut f32,
        pub ldc: usize,
        /// Valid columns of the panel (`≤ NR`).
        pub width: usize,
    }

    /// `vpdpbusd` over an `R × 32` tile, then the epilogue in registers: per step of four
    /// `k`, two loads of packed weights, one 4-byte broadcast per row, two
    /// dot-product-accumulates per row.
    ///
    /// # Safety
    /// The CPU has AVX-512 F/BW/VL and VNNI; `rows` holds `height` rows of `kp` bytes (kp a
    /// multiple of 4), `panel` `kp × 32` bytes; `e.c` has `height` rows of `e.width` columns at
    /// stride `e.ldc` that no other thread touches.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
    pub(super) unsafe fn tile_vnni(rows: &[u8], height: usize, kp: usize, panel: &[i8], e: Epilogue<'_>) {
        assert!(rows.len() >= height * kp && panel.len() >= kp * NR && height <= MR);
        assert!(e.scales.len() >= NR && e.column_sums.len() >= NR && e.width <= NR);
        assert!(e.row_scales.len() >= height && e.zero_points.len() >= height);
        // SAFETY: the asserts and the caller's contract bound every access of the tiles.
        unsafe {
            match height {
                8 => tile::<8>(rows.as_ptr(), kp, panel.as_ptr(), &e),
                7 => tile::<7>(rows.as_ptr(), kp, panel.as_ptr(), &e),
                6 => tile::<6>(rows.as_ptr(), kp, panel.as_ptr(), &e),
                5 => tile::<5>(rows.as_ptr(), kp, panel.as_ptr(), &e),
                4 => tile::<4>(rows.as_ptr(), kp, panel.as_ptr(), &e),
                3 => tile::<3>(rows.as_ptr(), kp, panel.as_ptr(), &e),
                2 => tile::<2>(rows.as_ptr(), kp, panel.as_ptr(), &e),
                _ => tile::<1>(rows.as_ptr(), kp, panel.as_ptr(), &e),
            }
        }
    }

    /// # Safety
    /// As [`tile_vnni`], with exactly `R` rows.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
    #[allow(clippy::needless_range_loop)] // `r` indexes a register tile, unrolled by `R`
    unsafe fn tile<const R: usize>(rows: *const u8, kp: usize, panel: *const i8, e: &Epilogue<'_>) {
        // SAFETY (whole body): the caller's contract bounds every access.
        unsafe {
            let mut acc = [[_mm512_setzero_si512(); 2]; R];
            let mut b = panel;
            for group in 0..kp / 4 {
                let b0 = _mm512_loadu_si512(b as *const __m512i);
                let b1 = _mm512_loadu_si512(b.add(64) as *const __m512i);
                for r in 0..R {
                    let x = _mm512_set1_epi32((rows.add(r * kp + group * 4) as *const i32).read_unaligned());
                    acc[r][0] = _mm512_dpbusd_epi32(acc[r][0], x, b0);
                    acc[r][1] = _mm512_dpbusd_epi32(acc[r][1], x, b1);
                }
                b = b.add(4 * NR);
            }
            let lanes = |from: usize| -> __mmask16 {
                let valid = e.width.saturating_sub(from).min(16);
                ((1u32 << valid) - 1) as u16
            };
            let masks = [lanes(0), lanes(16)];
            let scales = [
                _mm512_loadu_ps(e.scales.as_ptr()),
                _mm512_loadu_ps(e.scales.as_ptr().add(16)),
            ];
            let column_sums = [
                _mm512_loadu_si512(e.column_sums.as_ptr() as *const __m512i),
                _mm512_loadu_si512(e.column_sums.as_ptr().add(16) as *const __m512i),
            ];
            for r in 0..R {
                let sa = _mm512_set1_ps(e.row_scales[r]);
                let za = _mm512_set1_epi32(e.zero_points[r]);
                for half in 0..2 {
                    let sums = _mm512_sub_epi32(acc[r][half], _mm512_mullo_epi32(za, column_sums[half]));
                    let value = _mm512_mul_ps(_mm512_cvtepi32_ps(sums), _mm512_mul_ps(scales[half], sa));
                    let out = e.c.add(r * e.ldc + 16 * half);
                    let old = _mm512_maskz_loadu_ps(masks[half], out);
                    _mm512_mask_storeu_ps(out, masks[half], _mm512_add_ps(old, value));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_isa_gives_the_same_sums_and_tracks_fp32() {
        let mut rng = crate::gemm::tests::groundwork_test_rng(11);
        for &(rows, k, n) in &[(1, 1, 1), (3, 6, 7), (17, 40, 33), (9, 384, 64), (20, 1536, 40)] {
            let a: Vec<f32> = (0..rows * k).map(|_| rng() - 0.5).collect();
            let w: Vec<f32> = (0..k * n).map(|_| rng() - 0.5).collect();
            let bias: Vec<f32> = (0..rows * n).map(|_| rng()).collect();
            let mut exact = bias.clone();
            for i in 0..rows {
                for j in 0..n {
                    exact[i * n + j] += (0..k).map(|t| a[i * k + t] * w[t * n + j]).sum::<f32>();
                }
            }
            let mut first: Option<Vec<f32>> = None;
            for isa in Isa::ALL.into_iter().filter(|i| i.available()) {
                let packed = PackedI8::pack(&w, k, n, isa);
                assert_eq!(packed.k(), k);
                let mut got = bias.clone();
                packed.multiply_accumulate(&a, rows, &mut got);
                match &first {
                    None => first = Some(got.clone()),
                    Some(first) => assert_eq!(
                        first,
                        &got,
                        "{} differs from the first kernel",
                        packed.kernel_name()
                    ),
                }
                // Error of 8-bit rounding on both sides: about k · (0.5/127)² · scale per
                // term, far below this bound; a wrong offset or scale is far above it.
                let bound = 0.02 * (k as f32).sqrt();
                for (g, e) in got.iter().zip(&exact) {
                    assert!(
                        (g - e).abs() <= bound,
                        "{} {rows}x{k}x{n}: {g} vs {e}",
                        packed.kernel_name()
                    );
                }
            }
        }
    }
}
