//! An optional fast matrix multiply: OpenBLAS's `cblas_sgemm`, loaded at run time.
//!
//! candle's own CPU matmul reaches a fraction of what OpenBLAS does on the small, wide
//! matrices of a MiniLM layer (about 35 vs 170 GFLOP/s on 2 cores here), and the linear
//! layers are three quarters of the work. OpenBLAS is a common system library (Debian:
//! `libopenblas0-pthread`), so it is loaded like a plugin: when present, linear layers use it;
//! when absent, candle's matmul computes the same result more slowly. Nothing links against it,
//! so the binary runs everywhere.
//!
//! `GROUNDWORK_BLAS` overrides the search: a path to a `libopenblas.so`, or `none` to disable.

use std::ffi::c_int;
use std::sync::OnceLock;

const CBLAS_ROW_MAJOR: c_int = 101;
const CBLAS_NO_TRANS: c_int = 111;

type SgemmFn = unsafe extern "C" fn(
    order: c_int,
    trans_a: c_int,
    trans_b: c_int,
    m: c_int,
    n: c_int,
    k: c_int,
    alpha: f32,
    a: *const f32,
    lda: c_int,
    b: *const f32,
    ldb: c_int,
    beta: f32,
    c: *mut f32,
    ldc: c_int,
);
type SetThreadsFn = unsafe extern "C" fn(threads: c_int);

/// Where Debian and most distributions put OpenBLAS; the pthread build first, because an
/// OpenMP build's spinning worker threads compete with rayon's.
const CANDIDATES: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0",
    "/usr/lib/aarch64-linux-gnu/openblas-pthread/libopenblas.so.0",
    "libopenblas.so.0",
    "libopenblas.so",
];

pub(crate) struct Blas {
    // Kept alive for as long as `sgemm` may be called.
    _library: libloading::Library,
    sgemm: SgemmFn,
    path: String,
}

static BLAS: OnceLock<Option<Blas>> = OnceLock::new();

/// The loaded library, or `None` when none is available (or disabled).
pub(crate) fn blas() -> Option<&'static Blas> {
    BLAS.get_or_init(load).as_ref()
}

fn load() -> Option<Blas> {
    let candidates: Vec<String> = match std::env::var("GROUNDWORK_BLAS") {
        Ok(value) if value.eq_ignore_ascii_case("none") => return None,
        Ok(path) => vec![path],
        Err(_) => CANDIDATES.iter().map(|s| s.to_string()).collect(),
    };
    for path in candidates {
        // SAFETY: loading OpenBLAS runs only its own initialisers; we then resolve two
        // C functions with the signatures its cblas.h declares.
        let Ok(library) = (unsafe { libloading::Library::new(&path) }) else {
            continue;
        };
        let Ok(sgemm) = (unsafe { library.get::<SgemmFn>(b"cblas_sgemm\0") }).map(|f| *f) else {
            continue;
        };
        if let Ok(set_threads) = unsafe { library.get::<SetThreadsFn>(b"openblas_set_num_threads\0") } {
            let threads = rayon::current_num_threads().max(1) as c_int;
            // SAFETY: plain C call with an int argument.
            unsafe { set_threads(threads) };
        }
        return Some(Blas {
            _library: library,
            sgemm,
            path,
        });
    }
    None
}

impl Blas {
    /// Where the library was loaded from (reported in the embedder's description).
    pub(crate) fn path(&self) -> &str {
        &self.path
    }

    /// `c[m×n] += a[m×k] · b[k×n]`, all row-major and contiguous: callers pre-fill `c` with
    /// the bias (and residual) so the matmul adds them for free.
    pub(crate) fn gemm_accumulate(&self, m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
        assert!(
            a.len() >= m * k && b.len() >= k * n && c.len() >= m * n,
            "gemm operand too small"
        );
        assert!(m.max(n).max(k) <= c_int::MAX as usize, "gemm dimension too large");
        // SAFETY: the slices are at least as large as the row-major matrices described, and
        // OpenBLAS only reads `a` and `b` and writes `c` within those bounds.
        unsafe {
            (self.sgemm)(
                CBLAS_ROW_MAJOR,
                CBLAS_NO_TRANS,
                CBLAS_NO_TRANS,
                m as c_int,
                n as c_int,
                k as c_int,
                1.0,
                a.as_ptr(),
                k as c_int,
                b.as_ptr(),
                n as c_int,
                1.0,
                c.as_mut_ptr(),
                n as c_int,
            )
        }
    }
}
