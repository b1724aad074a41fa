//! [`LocalEmbedder`]: all-MiniLM-L6-v2 (or a compatible BERT) on the CPU.

use std::path::Path;
use std::time::Instant;

use serde::Serialize;
use sha2::{Digest, Sha256};
use tokenizers::Tokenizer;

use crate::bert::{BertConfig, BertModel};
use crate::fetch::KNOWN_FILES;
use crate::kernel::{Isa, Precision};
use crate::weights::Weights;
use crate::{DEFAULT_MODEL_NAME, EmbedError, Embedder};

/// Tuning knobs for [`LocalEmbedder::load`].
#[derive(Debug, Clone)]
pub struct LocalOptions {
    /// Number of texts per forward pass. Inputs are sorted by length before
    /// batching, so larger batches cost little padding.
    pub batch_size: usize,
    /// Maximum sequence length including `[CLS]` and `[SEP]`. The default
    /// 256 matches sentence-transformers' `max_seq_length` for MiniLM, not
    /// the model's 512 positions.
    pub max_seq_len: usize,
    /// Number of threads for inference. `None` uses rayon's global pool
    /// (`RAYON_NUM_THREADS`, else one thread per CPU). `Some(n)`
    /// runs inference inside a dedicated rayon pool of `n` threads.
    pub threads: Option<usize>,
    /// The numbers the linear layers compute with. Part of the fingerprint: vectors of the
    /// two precisions are never mixed in one index.
    pub precision: Precision,
    /// The instruction-set level of the kernels; `None` uses `GROUNDWORK_KERNEL` when set
    /// (`portable`, `avx2` or `avx512`), else the best the CPU has. Not part of the
    /// fingerprint: every level computes the same function.
    pub isa: Option<Isa>,
}

impl Default for LocalOptions {
    fn default() -> Self {
        Self {
            batch_size: 32,
            max_seq_len: 256,
            threads: None,
            precision: Precision::Fp32,
            isa: None,
        }
    }
}

/// A BERT sentence embedder running in-process.
pub struct LocalEmbedder {
    model: BertModel,
    tokenizer: Tokenizer,
    cls_id: u32,
    sep_id: u32,
    pad_id: u32,
    max_seq_len: usize,
    batch_size: usize,
    fingerprint: String,
    pool: Option<rayon::ThreadPool>,
}

impl std::fmt::Debug for LocalEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalEmbedder")
            .field("fingerprint", &self.fingerprint)
            .field("max_seq_len", &self.max_seq_len)
            .field("batch_size", &self.batch_size)
            .finish_non_exhaustive()
    }
}

fn read_required(dir: &Path, name: &str) -> Result<Vec<u8>, EmbedError> {
    let path = dir.join(name);
    if !path.is_file() {
        return Err(EmbedError::ModelNotFound { path });
    }
    std::fs::read(&path).map_err(EmbedError::io(path))
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl LocalEmbedder {
    /// Loads `config.json`, `model.safetensors` and `tokenizer.json` from
    /// `model_dir`.
    ///
    /// The weights are read once, hashed for the fingerprint, and converted
    /// into the layout the forward pass wants; the file is not kept open.
    pub fn load(model_dir: &Path, options: LocalOptions) -> Result<Self, EmbedError> {
        if !model_dir.is_dir() {
            return Err(EmbedError::ModelNotFound {
                path: model_dir.to_path_buf(),
            });
        }
        let config_bytes = read_required(model_dir, "config.json")?;
        let cfg: BertConfig = serde_json::from_slice(&config_bytes)
            .map_err(|e| EmbedError::InvalidModel(format!("config.json: {e}")))?;
        cfg.validate()?;

        let tok_bytes = read_required(model_dir, "tokenizer.json")?;
        let mut tokenizer = Tokenizer::from_bytes(&tok_bytes)
            .map_err(|e| EmbedError::Tokenizer(format!("tokenizer.json: {e}")))?;
        // tokenizer.json ships with truncation at 128 and fixed padding to
        // 128; we need untruncated token counts and do truncation/padding
        // ourselves, so both are switched off.
        tokenizer
            .with_truncation(None)
            .map_err(|e| EmbedError::Tokenizer(e.to_string()))?;
        tokenizer.with_padding(None);
        let id = |tok: &str| {
            tokenizer
                .token_to_id(tok)
                .ok_or_else(|| EmbedError::InvalidModel(format!("tokenizer has no {tok} token")))
        };
        let cls_id = id("[CLS]")?;
        let sep_id = id("[SEP]")?;
        let pad_id = id("[PAD]")?;

        let weights = read_required(model_dir, "model.safetensors")?;
        let weights_sha = sha256_hex(&weights);
        let tok_sha = sha256_hex(&tok_bytes);
        let isa = match options.isa {
            Some(isa) if isa.available() => isa,
            Some(isa) => Isa::resolve(Some(isa.name()))?,
            None => Isa::resolve(std::env::var("GROUNDWORK_KERNEL").ok().as_deref())?,
        };
        let model = BertModel::load(&Weights::parse(&weights)?, &cfg, isa, options.precision)?;
        drop(weights);

        let max_seq_len = options.max_seq_len.clamp(2, model.max_positions());
        // The known MiniLM weights get their public name; anything else is
        // described by its shape so the fingerprint stays meaningful.
        let known_sha = KNOWN_FILES
            .iter()
            .find(|(n, _)| *n == "model.safetensors")
            .map(|(_, s)| *s);
        let name = if known_sha == Some(weights_sha.as_str()) {
            DEFAULT_MODEL_NAME.to_string()
        } else {
            format!("bert-L{}-H{}", cfg.num_hidden_layers, cfg.hidden_size)
        };
        // fp32 keeps the fingerprint it always had, so existing indexes stay valid.
        let numeric = match options.precision {
            Precision::Fp32 => "",
            Precision::Int8 => "+int8",
        };
        let fingerprint = format!(
            "local:{name}:{}+tok{}+mean+l2+{max_seq_len}{numeric}",
            &weights_sha[..16],
            &tok_sha[..16]
        );

        let pool = match options.threads {
            Some(n) if n > 0 => Some(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(n)
                    .thread_name(|i| format!("embed-{i}"))
                    .build()
                    .map_err(|e| EmbedError::Inference(format!("thread pool: {e}")))?,
            ),
            _ => None,
        };

        Ok(Self {
            model,
            tokenizer,
            cls_id,
            sep_id,
            pad_id,
            max_seq_len,
            batch_size: options.batch_size.max(1),
            fingerprint,
            pool,
        })
    }

    /// Content token ids of `text`, untruncated, without specials.
    fn content_ids(&self, text: &str) -> Result<Vec<u32>, EmbedError> {
        let enc = self
            .tokenizer
            .encode_fast(text, false)
            .map_err(|e| EmbedError::Tokenizer(e.to_string()))?;
        Ok(enc.get_ids().to_vec())
    }

    /// `[CLS] + content (truncated) + [SEP]`, the same sequence
    /// sentence-transformers feeds the model.
    fn with_specials(&self, content: &[u32]) -> Vec<u32> {
        let keep = content.len().min(self.max_seq_len - 2);
        let mut ids = Vec::with_capacity(keep + 2);
        ids.push(self.cls_id);
        ids.extend_from_slice(&content[..keep]);
        ids.push(self.sep_id);
        ids
    }

    /// Embeds already-tokenised sequences (specials included), batching
    /// them by length and returning vectors in input order.
    fn embed_ids(&self, seqs: Vec<Vec<u32>>) -> Result<Vec<Vec<f32>>, EmbedError> {
        let n = seqs.len();
        // Sorting by length keeps every batch nearly rectangular, so almost
        // no compute goes into padding.
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by_key(|&i| seqs[i].len());
        let mut out: Vec<Vec<f32>> = vec![Vec::new(); n];
        // A batch also ends where lengths more than double: padding a 20-token sentence to
        // the 250 tokens of a paragraph beside it costs twelve times its own work (the
        // guardrails embed a whole answer together with its sentences).
        let mut batches: Vec<Vec<usize>> = Vec::new();
        for &i in &order {
            let len = seqs[i].len();
            match batches.last_mut() {
                Some(batch) if batch.len() < self.batch_size && len <= 2 * seqs[batch[0]].len().max(16) => {
                    batch.push(i)
                }
                _ => batches.push(vec![i]),
            }
        }
        let mut seqs: Vec<Option<Vec<u32>>> = seqs.into_iter().map(Some).collect();
        for chunk in &batches {
            let batch: Vec<Vec<u32>> = chunk
                .iter()
                .map(|&i| seqs[i].take().unwrap_or_default())
                .collect();
            let vecs = self.run(|| self.model.embed_batch(&batch, self.pad_id))?;
            for (&i, v) in chunk.iter().zip(vecs) {
                out[i] = v;
            }
        }
        Ok(out)
    }

    fn run<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        match &self.pool {
            Some(p) => p.install(f),
            None => f(),
        }
    }

    /// Which kernels run the linear layers: `fp32 avx512`, `fp32 avx2`, `fp32 portable`,
    /// `int8 avx512-vnni`, `int8 avx2` or `int8 portable`.
    pub fn backend(&self) -> String {
        self.model.kernel_description()
    }

    pub fn precision(&self) -> Precision {
        self.model.precision
    }

    /// Maximum sequence length including `[CLS]`/`[SEP]`.
    pub fn max_seq_len(&self) -> usize {
        self.max_seq_len
    }
}

impl Embedder for LocalEmbedder {
    fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    fn dimension(&self) -> usize {
        self.model.hidden_size()
    }

    fn max_tokens(&self) -> usize {
        self.max_seq_len - 2
    }

    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let encs = self
            .tokenizer
            .encode_batch_fast(texts.to_vec(), false)
            .map_err(|e| EmbedError::Tokenizer(e.to_string()))?;
        let seqs: Vec<Vec<u32>> = encs.iter().map(|e| self.with_specials(e.get_ids())).collect();
        self.embed_ids(seqs)
    }

    fn count_tokens(&self, text: &str) -> usize {
        // Tokenising a &str cannot fail for WordPiece; 0 is a safe fallback.
        self.content_ids(text).map(|v| v.len()).unwrap_or(0)
    }

    fn token_spans(&self, text: &str) -> Vec<(usize, usize)> {
        let Ok(enc) = self.tokenizer.encode(text, false) else {
            return Vec::new();
        };
        enc.get_offsets()
            .iter()
            .map(|&(s, e)| {
                // Offsets come from the tokenizer's alignment tracking; clamp
                // them onto char boundaries so callers can always slice.
                let s = floor_boundary(text, s);
                let e = floor_boundary(text, e).max(s);
                (s, e)
            })
            .collect()
    }
}

fn floor_boundary(text: &str, mut i: usize) -> usize {
    if i >= text.len() {
        return text.len();
    }
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Result of [`measure_throughput`].
#[derive(Debug, Clone, Serialize)]
pub struct ThroughputReport {
    pub batch: usize,
    /// Tokens per sequence, `[CLS]` and `[SEP]` included.
    pub seq_len: usize,
    pub runs: usize,
    /// Mean wall time of one `embed` call on `batch` texts.
    pub ms_per_batch: f64,
    /// `batch * seq_len * runs / total seconds`.
    pub tokens_per_sec: f64,
}

/// Times `runs` calls of [`Embedder::embed`] on `batch` texts that each
/// tokenise to exactly `seq_len` tokens (specials included), after one
/// untimed warm-up call. Tokenisation is part of the timing, as in real use.
pub fn measure_throughput(
    embedder: &LocalEmbedder,
    batch: usize,
    seq_len: usize,
    runs: usize,
) -> ThroughputReport {
    let batch = batch.max(1);
    let runs = runs.max(1);
    let seq_len = seq_len.clamp(2, embedder.max_seq_len);
    // Common lowercase words are single WordPiece tokens in the BERT vocab,
    // so n words give n tokens; verified below and patched if not.
    const WORDS: [&str; 8] = ["the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog"];
    let content = seq_len - 2;
    let mut texts = Vec::with_capacity(batch);
    for i in 0..batch {
        let words: Vec<&str> = (0..content).map(|j| WORDS[(i + j) % WORDS.len()]).collect();
        let mut t = words.join(" ");
        // Patch up the length if the vocabulary disagrees (bounded loops:
        // each step changes the count by at least one token or stops).
        for _ in 0..content {
            if embedder.count_tokens(&t) <= content || t.is_empty() {
                break;
            }
            t.truncate(t.rfind(' ').unwrap_or(0));
        }
        for _ in 0..content {
            if embedder.count_tokens(&t) >= content {
                break;
            }
            t.push_str(" a");
        }
        texts.push(t);
    }
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let _ = embedder.embed(&refs);
    let start = Instant::now();
    for _ in 0..runs {
        let _ = embedder.embed(&refs);
    }
    let secs = start.elapsed().as_secs_f64().max(1e-9);
    ThroughputReport {
        batch,
        seq_len,
        runs,
        ms_per_batch: secs * 1000.0 / runs as f64,
        tokens_per_sec: (batch * seq_len * runs) as f64 / secs,
    }
}
