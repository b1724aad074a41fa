//! Text embedding for groundwork.
//!
//! This crate turns text into dense vectors for retrieval. It offers two
//! implementations of the [`Embedder`] trait:
//!
//! * [`LocalEmbedder`]: runs `sentence-transformers/all-MiniLM-L6-v2` (or any
//!   BERT encoder with the same file layout) on the CPU with a hand-written
//!   BERT forward pass on its own matrix kernels (AVX-512, AVX2+FMA or portable,
//!   chosen at run time), followed by masked mean pooling and L2 normalisation,
//!   matching sentence-transformers to within 1e-5 in fp32; an 8-bit path
//!   ([`Precision::Int8`]) trades a little accuracy for speed.
//! * [`RemoteEmbedder`]: calls an OpenAI-compatible `/v1/embeddings` endpoint.
//!
//! The [`fetch`] module downloads or unpacks the model files into
//! `~/.groundwork/models/all-MiniLM-L6-v2` (see [`default_model_dir`]),
//! verifying their SHA-256 before atomically moving them into place.
//!
//! Every embedder exposes a [`Embedder::fingerprint`]: a stable string that
//! changes whenever the vectors it produces could change (different weights,
//! tokenizer, pooling or sequence length). Indexes store it so that vectors
//! from different models are never mixed.

mod bert;
mod elementwise;
mod error;
pub mod fetch;
mod gather;
mod gemm;
mod host;
mod kernel;
mod local;
mod qgemm;
mod remote;
mod weights;

use std::path::{Path, PathBuf};

pub use error::EmbedError;
pub use fetch::{FetchReport, fetch_model};
pub use gather::{GatherCounters, GatherOptions, GatherStats, GatheringEmbedder, QueryCache};
pub use kernel::{Isa, Precision, vnni_available};
pub use local::{LocalEmbedder, LocalOptions, ThroughputReport, measure_throughput};
pub use remote::{RemoteConfig, RemoteEmbedder};

/// Name of the default local model, also the folder name under `models/`.
pub const DEFAULT_MODEL_NAME: &str = "all-MiniLM-L6-v2";

/// Something that maps texts to fixed-size vectors.
///
/// Implementations must be usable from several threads at once, so that an
/// ingest pipeline and a query path can share one loaded model.
pub trait Embedder: Send + Sync {
    /// Stable identifier of everything that influences the vectors (model,
    /// weights, tokenizer, pooling, maximum length). Two embedders with equal
    /// fingerprints produce interchangeable vectors.
    fn fingerprint(&self) -> &str;

    /// Length of every vector returned by [`Embedder::embed`].
    fn dimension(&self) -> usize;

    /// Largest [`Embedder::count_tokens`] value that is embedded without
    /// truncation. Chunkers should keep chunks at or below this size; longer
    /// texts are silently truncated by `embed`.
    fn max_tokens(&self) -> usize;

    /// Embeds `texts`, returning one vector per input in the same order.
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError>;

    /// Number of content tokens in `text` (special tokens such as `[CLS]`
    /// and `[SEP]` are not counted), without truncation.
    fn count_tokens(&self, text: &str) -> usize;

    /// Byte ranges `(start, end)` in `text` of each content token, without
    /// truncation, in order. `text[start..end]` is always a valid slice.
    /// Several tokens may share a range (e.g. when one character expands
    /// into more than one token).
    fn token_spans(&self, text: &str) -> Vec<(usize, usize)>;
}

/// Where the default local model lives inside a groundwork home folder:
/// `home/models/all-MiniLM-L6-v2`.
pub fn default_model_dir(home: &Path) -> PathBuf {
    home.join("models").join(DEFAULT_MODEL_NAME)
}

/// The installed default model for tests and examples, shared by every test harness: the
/// folder in `GROUNDWORK_MODEL_DIR`, else under `GROUNDWORK_HOME`, else under
/// `~/.groundwork`. `None` (the caller skips) when it is missing outside CI; under `CI` a
/// missing model is a failure, so no check can pass by skipping there.
pub fn test_model_dir() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("GROUNDWORK_MODEL_DIR").map(PathBuf::from),
        std::env::var_os("GROUNDWORK_HOME").map(|h| default_model_dir(Path::new(&h))),
        std::env::var_os("HOME").map(|h| default_model_dir(&Path::new(&h).join(".groundwork"))),
    ];
    for dir in candidates.into_iter().flatten() {
        if dir.join("model.safetensors").is_file() {
            return Some(dir);
        }
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "the embedding model is not installed; run `groundwork models fetch` (scripts/test.sh does) \
         or set GROUNDWORK_MODEL_DIR"
    );
    eprintln!("skipping: the embedding model is not installed (run `groundwork models fetch`)");
    None
}
