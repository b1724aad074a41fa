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

use crate::kernel::{Isa, SharedMut, split_work, vnni_available};

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
        let (k, kp, n) = (self.k, self.kp, self.n);
        assert!(
            a.len() >= rows * k && c.len() >= rows * n,
            "gemm operand too small"
        );
        if rows == 0 || n == 0 {
            return;
        }
        // Quantise each row over its own range (widened to include 0, so that a zero stays
        // exactly zero), as unsigned bytes with a zero point. The padding `k..kp` meets zero
        // weights, so its bytes do not matter.
        let mut quantised = vec![0u8; rows * kp];
        let mut row_scales = vec![0f32; rows];
        let mut zero_points = vec![0i32; rows];
        quantised
            .par_chunks_mut(kp)
            .zip(row_scales.par_iter_mut().zip(zero_points.par_iter_mut()))
            .zip(a.par_chunks(k))
            .for_each(|((out, (scale, zero)), row)| {
                let (min, max) = row
                    .iter()
                    .fold((0f32, 0f32), |(lo, hi), &v| (lo.min(v), hi.max(v)));
                let range = max - min;
                if range > 0.0 && range.is_finite() {
                    *scale = range / 255.0;
                    let inverse = 255.0 / range;
                    *zero = (-min * inverse).round().clamp(0.0, 255.0) as i32;
                    let z = *zero as f32;
                    for (o, v) in out.iter_mut().zip(row) {
                        *o = (v * inverse + z).round().clamp(0.0, 255.0) as u8;
                    }
                }
            });

        let panels = n.div_ceil(NR);
        let (row_block, panel_block) = split_work(rows, panels, MR);
        let tasks: Vec<(usize, usize)> = (0..rows)
            .step_by(row_block)
            .flat_map(|r| (0..panels).step_by(panel_block).map(move |p| (r, p)))
            .collect();
        let out = SharedMut(c.as_mut_ptr());
        tasks.into_par_iter().for_each(|(r0, p0)| {
            let r1 = (r0 + row_block).min(rows);
            let p1 = (p0 + panel_block).min(panels);
            for p in p0..p1 {
                let width = NR.min(n - p * NR);
                let mut i = r0;
                while i < r1 {
                    let height = MR.min(r1 - i);
                    let mut sums = [[0i32; NR]; MR];
                    self.sums(&quantised[i * kp..(i + height) * kp], height, p, &mut sums);
                    for (r, sums) in sums.iter().enumerate().take(height) {
                        // SAFETY: row i+r, columns p*NR..p*NR+width of `c` belong to this task
                        // alone (tasks are disjoint row × panel blocks of a rows × n buffer).
                        let row = unsafe {
                            std::slice::from_raw_parts_mut(out.get().add((i + r) * n + p * NR), width)
                        };
                        let (sa, za) = (row_scales[i + r], zero_points[i + r]);
                        let scales = &self.scales[p * NR..p * NR + width];
                        let column_sums = &self.column_sums[p * NR..p * NR + width];
                        for (((o, &s), &sw), &sum) in row.iter_mut().zip(sums).zip(scales).zip(column_sums) {
                            *o += (s - za * sum) as f32 * (sw * sa);
                        }
                    }
                    i += height;
                }
            }
        });
    }

    /// The integer sums `Σ_k qa[r][k] · qw[k][j]` (`qa` with its zero point) of `height` rows
    /// against panel `p`.
    fn sums(&self, rows: &[u8], height: usize, p: usize, out: &mut [[i32; NR]; MR]) {
        let kp = self.kp;
        let panel = &self.data[p * kp * NR..(p + 1) * kp * NR];
        #[cfg(target_arch = "x86_64")]
        if self.vnni {
            // SAFETY: `vnni` is only set when the CPU has AVX-512 F/BW/VL and VNNI; `rows`
            // holds `height ≤ MR` rows of `kp` bytes and `panel` kp × NR bytes.
            unsafe { x86::sums_vnni(rows, height, kp, panel, out) };
            return;
        }
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

    /// `vpdpbusd` over an `R × 32` tile: per step of four `k`, two loads of packed weights,
    /// one 4-byte broadcast per row, two dot-product-accumulates per row.
    ///
    /// # Safety
    /// The CPU has AVX-512 F/BW/VL and VNNI; `rows` holds `height` rows of `kp` bytes (kp a
    /// multiple of 4) and `panel` `kp × 32` bytes.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
    pub(super) unsafe fn sums_vnni(
        rows: &[u8],
        height: usize,
        kp: usize,
        panel: &[i8],
        out: &mut [[i32; NR]; MR],
    ) {
        assert!(rows.len() >= height * kp && panel.len() >= kp * NR && height <= MR);
        // SAFETY: the asserts bound every access of the tiles below.
        unsafe {
            match height {
                8 => tile::<8>(rows.as_ptr(), kp, panel.as_ptr(), out),
                7 => tile::<7>(rows.as_ptr(), kp, panel.as_ptr(), out),
                6 => tile::<6>(rows.as_ptr(), kp, panel.as_ptr(), out),
                5 => tile::<5>(rows.as_ptr(), kp, panel.as_ptr(), out),
                4 => tile::<4>(rows.as_ptr(), kp, panel.as_ptr(), out),
                3 => tile::<3>(rows.as_ptr(), kp, panel.as_ptr(), out),
                2 => tile::<2>(rows.as_ptr(), kp, panel.as_ptr(), out),
                _ => tile::<1>(rows.as_ptr(), kp, panel.as_ptr(), out),
            }
        }
    }

    /// # Safety
    /// As [`sums_vnni`], with exactly `R` rows.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
    #[allow(clippy::needless_range_loop)] // `r` indexes a register tile, unrolled by `R`
    unsafe fn tile<const R: usize>(rows: *const u8, kp: usize, panel: *const i8, out: &mut [[i32; NR]; MR]) {
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
            for r in 0..R {
                _mm512_storeu_si512(out[r].as_mut_ptr() as *mut __m512i, acc[r][0]);
                _mm512_storeu_si512(out[r].as_mut_ptr().add(16) as *mut __m512i, acc[r][1]);
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
