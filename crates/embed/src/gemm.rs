//! fp32 matrix multiply for the encoder's linear layers: `c += a · w`, with `w` packed once
//! at load time.
//!
//! Invariant: the result equals the plain triple loop up to float rounding (each output is
//! one sum over `k` in order, so kernels differ only in FMA-versus-separate rounding) —
//! the parity test holds every [`Isa`] to the reference within 1e-5.
//!
//! The weights never change, so they are rearranged at load into column panels of `NR`
//! columns, each `k × NR` contiguous: the micro-kernel streams one panel linearly while it
//! keeps an `MR × NR` tile of the output in registers for the whole of `k` (`8 × 32` on
//! AVX-512, `6 × 16` on AVX2). The activations are read in place (row-major), one broadcast
//! per row per step. Work is cut into row blocks for a batch and into column panels for a
//! single short query, so both cores run either way. On this project's 2-core AMD EPYC the
//! AVX-512 kernel reaches about what a tuned BLAS does (see ARCHITECTURE.md for figures).

use crate::kernel::{Isa, SharedMut, for_each_block};

/// Steps of `k` per pass over the output (keeps a panel slice and the rows' slices in L1/L2).
const KC: usize = 384;

/// `w` (`[k, n]`, row-major) rearranged for one [`Isa`]'s micro-kernel.
pub(crate) struct PackedF32 {
    isa: Isa,
    k: usize,
    n: usize,
    /// `panels × k × nr`, zero-padded past `n`.
    data: Vec<f32>,
}

impl PackedF32 {
    pub(crate) fn pack(w: &[f32], k: usize, n: usize, isa: Isa) -> PackedF32 {
        assert_eq!(w.len(), k * n, "weight shape");
        let nr = nr(isa);
        let panels = n.div_ceil(nr);
        let mut data = vec![0f32; panels * k * nr];
        for (p, panel) in data.chunks_exact_mut(k * nr).enumerate() {
            let width = nr.min(n - p * nr);
            for (row, out) in panel.chunks_exact_mut(nr).enumerate() {
                out[..width].copy_from_slice(&w[row * n + p * nr..row * n + p * nr + width]);
            }
        }
        PackedF32 { isa, k, n, data }
    }

    pub(crate) fn outputs(&self) -> usize {
        self.n
    }

    /// `c[rows × n] += a[rows × k] · w`.
    pub(crate) fn multiply_accumulate(&self, a: &[f32], rows: usize, c: &mut [f32]) {
        let (k, n) = (self.k, self.n);
        assert!(
            a.len() >= rows * k && c.len() >= rows * n,
            "gemm operand too small"
        );
        if rows == 0 || n == 0 {
            return;
        }
        let panels = n.div_ceil(nr(self.isa));
        let out = SharedMut(c.as_mut_ptr());
        for_each_block(rows, panels, mr(self.isa), |rows, panels| {
            // SAFETY: blocks are disjoint (row range × panel range) parts of `c`, which is at
            // least rows × n long (asserted above); each task writes only its block.
            unsafe { self.block(a, rows, panels, out.get()) };
        });
    }

    /// One task: rows `rows` × panels `panels` of the output.
    ///
    /// # Safety
    /// `c` points to a `[rows_total × n]` buffer whose block given here no other thread touches.
    unsafe fn block(
        &self,
        a: &[f32],
        rows: std::ops::Range<usize>,
        panels: std::ops::Range<usize>,
        c: *mut f32,
    ) {
        let (k, n, isa) = (self.k, self.n, self.isa);
        let nr = nr(isa);
        let mr = mr(isa);
        for k0 in (0..k).step_by(KC) {
            let depth = KC.min(k - k0);
            for p in panels.clone() {
                let b = &self.data[p * k * nr + k0 * nr..p * k * nr + (k0 + depth) * nr];
                let width = nr.min(n - p * nr);
                let mut i = rows.start;
                while i < rows.end {
                    let height = mr.min(rows.end - i);
                    let a_tile = &a[i * k + k0..];
                    // SAFETY: rows i..i+height and columns p*nr..p*nr+width lie in this task's block.
                    let c_tile = unsafe { c.add(i * n + p * nr) };
                    if width == nr {
                        // SAFETY: a full panel: `height` rows of `nr` columns at stride n.
                        unsafe { tile(isa, height, a_tile, k, b, depth, c_tile, n) };
                    } else {
                        // A partial last panel goes through a full-width scratch tile.
                        let mut scratch = [0f32; 16 * 32];
                        for r in 0..height {
                            // SAFETY: row r of the tile has `width` valid columns.
                            let row = unsafe { std::slice::from_raw_parts(c_tile.add(r * n), width) };
                            scratch[r * nr..r * nr + width].copy_from_slice(row);
                        }
                        // SAFETY: the scratch tile is `height × nr` at stride nr.
                        unsafe { tile(isa, height, a_tile, k, b, depth, scratch.as_mut_ptr(), nr) };
                        for r in 0..height {
                            // SAFETY: as above.
                            let row = unsafe { std::slice::from_raw_parts_mut(c_tile.add(r * n), width) };
                            row.copy_from_slice(&scratch[r * nr..r * nr + width]);
                        }
                    }
                    i += height;
                }
            }
        }
    }
}

/// Columns per panel.
fn nr(isa: Isa) -> usize {
    match isa {
        Isa::Avx512 => 32,
        Isa::Avx2 | Isa::Portable => 16,
    }
}

/// Rows per micro-tile.
fn mr(isa: Isa) -> usize {
    match isa {
        Isa::Avx512 => 8,
        Isa::Avx2 => 6,
        Isa::Portable => 4,
    }
}

/// Dispatches one micro-tile of `height ≤ mr(isa)` rows: `c[height × nr] += a[height × depth]
/// · b[depth × nr]`, `a` at row stride `lda`, `c` at row stride `ldc`.
///
/// # Safety
/// `isa` is available; `a` holds `height` rows of `depth` values at stride `lda`; `b` holds
/// `depth × nr` values; `c` points to `height` rows of `nr` writable values at stride `ldc`.
#[allow(clippy::too_many_arguments)]
unsafe fn tile(
    isa: Isa,
    height: usize,
    a: &[f32],
    lda: usize,
    b: &[f32],
    depth: usize,
    c: *mut f32,
    ldc: usize,
) {
    debug_assert!(a.len() >= (height - 1) * lda + depth && b.len() >= depth * nr(isa));
    let a = a.as_ptr();
    let b = b.as_ptr();
    // SAFETY (every arm): the caller's contract, and `isa` is available.
    unsafe {
        match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => match height {
                8 => x86::tile512::<8>(a, lda, b, c, ldc, depth),
                7 => x86::tile512::<7>(a, lda, b, c, ldc, depth),
                6 => x86::tile512::<6>(a, lda, b, c, ldc, depth),
                5 => x86::tile512::<5>(a, lda, b, c, ldc, depth),
                4 => x86::tile512::<4>(a, lda, b, c, ldc, depth),
                3 => x86::tile512::<3>(a, lda, b, c, ldc, depth),
                2 => x86::tile512::<2>(a, lda, b, c, ldc, depth),
                _ => x86::tile512::<1>(a, lda, b, c, ldc, depth),
            },
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => match height {
                6 => x86::tile256::<6>(a, lda, b, c, ldc, depth),
                5 => x86::tile256::<5>(a, lda, b, c, ldc, depth),
                4 => x86::tile256::<4>(a, lda, b, c, ldc, depth),
                3 => x86::tile256::<3>(a, lda, b, c, ldc, depth),
                2 => x86::tile256::<2>(a, lda, b, c, ldc, depth),
                _ => x86::tile256::<1>(a, lda, b, c, ldc, depth),
            },
            _ => match height {
                4 => tile_portable::<4>(a, lda, b, c, ldc, depth),
                3 => tile_portable::<3>(a, lda, b, c, ldc, depth),
                2 => tile_portable::<2>(a, lda, b, c, ldc, depth),
                _ => tile_portable::<1>(a, lda, b, c, ldc, depth),
            },
        }
    }
}

/// The portable micro-kernel: `R × 16`, plain multiply-adds the compiler vectorises.
///
/// # Safety
/// As [`tile`], with 16 columns.
#[inline(always)]
unsafe fn tile_portable<const R: usize>(
    a: *const f32,
    lda: usize,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    depth: usize,
) {
    // SAFETY (whole body): the caller's contract bounds every access.
    unsafe {
        let mut acc = [[0f32; 16]; R];
        for (r, acc) in acc.iter_mut().enumerate() {
            acc.copy_from_slice(std::slice::from_raw_parts(c.add(r * ldc), 16));
        }
        for step in 0..depth {
            let row: &[f32; 16] = &*(b.add(step * 16) as *const [f32; 16]);
            for (r, acc) in acc.iter_mut().enumerate() {
                let x = *a.add(r * lda + step);
                for (o, w) in acc.iter_mut().zip(row) {
                    *o += x * w;
                }
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            std::slice::from_raw_parts_mut(c.add(r * ldc), 16).copy_from_slice(acc);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// `R × 32` on AVX-512: two registers per row, `2R` accumulators live for the whole depth.
    ///
    /// # Safety
    /// As `super::tile` with 32 columns, on a CPU with AVX-512F.
    #[inline]
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::needless_range_loop)] // `r` indexes a register tile, unrolled by `R`
    pub(super) unsafe fn tile512<const R: usize>(
        a: *const f32,
        lda: usize,
        b: *const f32,
        c: *mut f32,
        ldc: usize,
        depth: usize,
    ) {
        // SAFETY (whole body): the caller's contract bounds every access.
        unsafe {
            let mut acc = [[_mm512_setzero_ps(); 2]; R];
            let mut rows = [a; R];
            for r in 0..R {
                acc[r][0] = _mm512_loadu_ps(c.add(r * ldc));
                acc[r][1] = _mm512_loadu_ps(c.add(r * ldc + 16));
                rows[r] = a.add(r * lda);
            }
            let mut b = b;
            for _ in 0..depth {
                let b0 = _mm512_loadu_ps(b);
                let b1 = _mm512_loadu_ps(b.add(16));
                for r in 0..R {
                    let x = _mm512_set1_ps(*rows[r]);
                    rows[r] = rows[r].add(1);
                    acc[r][0] = _mm512_fmadd_ps(x, b0, acc[r][0]);
                    acc[r][1] = _mm512_fmadd_ps(x, b1, acc[r][1]);
                }
                b = b.add(32);
            }
            for r in 0..R {
                _mm512_storeu_ps(c.add(r * ldc), acc[r][0]);
                _mm512_storeu_ps(c.add(r * ldc + 16), acc[r][1]);
            }
        }
    }

    /// `R × 16` on AVX2+FMA: two registers per row (`R ≤ 6` keeps all 16 registers busy).
    ///
    /// # Safety
    /// As `super::tile` with 16 columns, on a CPU with AVX2 and FMA.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::needless_range_loop)] // `r` indexes a register tile, unrolled by `R`
    pub(super) unsafe fn tile256<const R: usize>(
        a: *const f32,
        lda: usize,
        b: *const f32,
        c: *mut f32,
        ldc: usize,
        depth: usize,
    ) {
        // SAFETY (whole body): the caller's contract bounds every access.
        unsafe {
            let mut acc = [[_mm256_setzero_ps(); 2]; R];
            let mut rows = [a; R];
            for r in 0..R {
                acc[r][0] = _mm256_loadu_ps(c.add(r * ldc));
                acc[r][1] = _mm256_loadu_ps(c.add(r * ldc + 8));
                rows[r] = a.add(r * lda);
            }
            let mut b = b;
            for _ in 0..depth {
                let b0 = _mm256_loadu_ps(b);
                let b1 = _mm256_loadu_ps(b.add(8));
                for r in 0..R {
                    let x = _mm256_broadcast_ss(&*rows[r]);
                    rows[r] = rows[r].add(1);
                    acc[r][0] = _mm256_fmadd_ps(x, b0, acc[r][0]);
                    acc[r][1] = _mm256_fmadd_ps(x, b1, acc[r][1]);
                }
                b = b.add(16);
            }
            for r in 0..R {
                _mm256_storeu_ps(c.add(r * ldc), acc[r][0]);
                _mm256_storeu_ps(c.add(r * ldc + 8), acc[r][1]);
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn naive(a: &[f32], w: &[f32], rows: usize, k: usize, n: usize, c: &mut [f32]) {
        for i in 0..rows {
            for j in 0..n {
                let mut s = 0f64;
                for t in 0..k {
                    s += a[i * k + t] as f64 * w[t * n + j] as f64;
                }
                c[i * n + j] += s as f32;
            }
        }
    }

    #[test]
    fn every_isa_matches_the_triple_loop_on_ragged_shapes() {
        let mut rng = groundwork_test_rng(7);
        for &(rows, k, n) in &[
            (1, 1, 1),
            (3, 5, 7),
            (17, 40, 33),
            (9, 400, 48),
            (64, 384, 100),
            (2, 777, 31),
        ] {
            let a: Vec<f32> = (0..rows * k).map(|_| rng() - 0.5).collect();
            let w: Vec<f32> = (0..k * n).map(|_| rng() - 0.5).collect();
            let bias: Vec<f32> = (0..rows * n).map(|_| rng()).collect();
            let mut want = bias.clone();
            naive(&a, &w, rows, k, n, &mut want);
            for isa in Isa::ALL.into_iter().filter(|i| i.available()) {
                let packed = PackedF32::pack(&w, k, n, isa);
                let mut got = bias.clone();
                packed.multiply_accumulate(&a, rows, &mut got);
                for (g, w) in got.iter().zip(&want) {
                    assert!(
                        (g - w).abs() <= 1e-4 * (1.0 + w.abs()),
                        "{isa:?} {rows}x{k}x{n}: {g} vs {w}"
                    );
                }
            }
        }
    }

    /// A tiny deterministic generator of floats in [0, 1).
    pub(crate) fn groundwork_test_rng(seed: u64) -> impl FnMut() -> f32 {
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32
        }
    }
}
