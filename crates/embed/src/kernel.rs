//! Which instructions and which numbers the encoder runs on, chosen once when a model loads.
//!
//! Invariant: an [`Isa`] is only ever used on a CPU that has it — [`Isa::detect`] picks the
//! best the CPU offers, and [`Isa::resolve`] refuses a requested one it lacks — so the
//! `unsafe` calls into `#[target_feature]` functions in `gemm` and `qgemm` are sound.
//!
//! The [`Precision`] changes the vectors (and so is part of the embedder's fingerprint); the
//! [`Isa`] does not: every fp32 kernel matches the reference within 1e-5, and the int8 kernels
//! do exact integer arithmetic, so they agree with each other bit for bit.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::EmbedError;

/// The numbers the encoder's linear layers compute with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// 32-bit floats throughout: matches sentence-transformers within 1e-5 per component.
    #[default]
    Fp32,
    /// Linear layers on 8-bit integers — weights quantised per output channel at load time,
    /// activations per row at run time — with 32-bit accumulation; everything else (embedding
    /// lookup, attention, layer norm, GELU, pooling) in fp32.
    Int8,
}

impl Precision {
    pub fn name(self) -> &'static str {
        match self {
            Precision::Fp32 => "fp32",
            Precision::Int8 => "int8",
        }
    }

    /// What `groundwork init` writes as a new home's `[model] precision` on this machine: int8
    /// where the CPU has 8-bit dot-product instructions (AVX-512 VNNI), where it is the faster
    /// path and was measured to keep retrieval quality (see ARCHITECTURE.md); fp32 elsewhere.
    pub fn machine_default() -> Precision {
        if Isa::detect() == Isa::Avx512 && vnni_available() {
            Precision::Int8
        } else {
            Precision::Fp32
        }
    }
}

impl std::str::FromStr for Precision {
    type Err = EmbedError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "fp32" => Ok(Precision::Fp32),
            "int8" => Ok(Precision::Int8),
            _ => Err(EmbedError::InvalidModel(format!(
                "unknown precision {s:?} (expected fp32 or int8)"
            ))),
        }
    }
}

/// An instruction-set level for the kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Isa {
    /// Plain Rust, whatever the compiler makes of it for the build's baseline target.
    Portable,
    /// AVX2 with FMA (x86-64-v3).
    Avx2,
    /// AVX-512 F/BW/VL (x86-64-v4); the int8 kernels also use VNNI when present.
    Avx512,
}

impl Isa {
    /// Every level, lowest first.
    pub const ALL: [Isa; 3] = [Isa::Portable, Isa::Avx2, Isa::Avx512];

    pub fn name(self) -> &'static str {
        match self {
            Isa::Portable => "portable",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        }
    }

    /// Whether this CPU can run the level.
    pub fn available(self) -> bool {
        match self {
            Isa::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma"),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => {
                Isa::Avx2.available()
                    && std::is_x86_feature_detected!("avx512f")
                    && std::is_x86_feature_detected!("avx512bw")
                    && std::is_x86_feature_detected!("avx512vl")
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// The best level this CPU has.
    pub fn detect() -> Isa {
        Isa::ALL
            .into_iter()
            .rev()
            .find(|isa| isa.available())
            .unwrap_or(Isa::Portable)
    }

    /// The requested level (`GROUNDWORK_KERNEL` or the caller's choice), or the best one.
    pub fn resolve(requested: Option<&str>) -> Result<Isa, EmbedError> {
        let Some(name) = requested.filter(|n| !n.is_empty()) else {
            return Ok(Isa::detect());
        };
        let isa = Isa::ALL
            .into_iter()
            .find(|isa| isa.name().eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                EmbedError::InvalidModel(format!(
                    "unknown kernel {name:?} (expected portable, avx2 or avx512)"
                ))
            })?;
        if !isa.available() {
            return Err(EmbedError::InvalidModel(format!(
                "kernel {name:?} needs instructions this CPU does not have"
            )));
        }
        Ok(isa)
    }
}

/// AVX-512 VNNI (`vpdpbusd`), used by the int8 kernels at the [`Isa::Avx512`] level.
pub fn vnni_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        Isa::Avx512.available() && std::is_x86_feature_detected!("avx512vnni")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// A raw pointer that several rayon tasks write through, each to its own disjoint region.
#[derive(Clone, Copy)]
pub(crate) struct SharedMut(pub *mut f32);

impl SharedMut {
    /// The pointer. A method (not the field) so that a closure captures the whole `Sync`
    /// wrapper rather than the bare pointer.
    pub(crate) fn get(self) -> *mut f32 {
        self.0
    }
}

// SAFETY: callers only write disjoint regions from different tasks (documented at each use).
unsafe impl Send for SharedMut {}
// SAFETY: as above.
unsafe impl Sync for SharedMut {}

/// How to cut `rows × panels` of output into parallel tasks: `(rows per task, panels per
/// task)`. Many rows (a batch) split by rows; few rows (a query) split by column panels, so
/// both cores work on a single short sequence too.
fn split_work(rows: usize, panels: usize, mr: usize) -> (usize, usize) {
    let threads = rayon::current_num_threads().max(1);
    // Enough tasks for load balance, each still a few hundred microseconds of work.
    let row_tasks = rows.div_ceil(mr);
    if row_tasks >= 4 * threads {
        let per = row_tasks.div_ceil(4 * threads).clamp(1, 128 / mr.max(1) + 1);
        (per * mr, panels)
    } else {
        let panel_tasks = (2 * threads).min(panels).max(1);
        (rows.max(1), panels.div_ceil(panel_tasks))
    }
}

/// Runs `work(row range, panel range)` in parallel over the disjoint blocks [`split_work`]
/// cuts `rows × panels` of output into.
pub(crate) fn for_each_block(
    rows: usize,
    panels: usize,
    mr: usize,
    work: impl Fn(std::ops::Range<usize>, std::ops::Range<usize>) + Sync + Send,
) {
    let (row_block, panel_block) = split_work(rows, panels, mr);
    let tasks: Vec<(usize, usize)> = (0..rows)
        .step_by(row_block)
        .flat_map(|r| (0..panels).step_by(panel_block).map(move |p| (r, p)))
        .collect();
    tasks.into_par_iter().for_each(|(r0, p0)| {
        work(r0..(r0 + row_block).min(rows), p0..(p0 + panel_block).min(panels));
    });
}
