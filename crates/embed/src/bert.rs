//! A BERT encoder loaded for sentence embedding: configuration, weights, batching, pooling.
//!
//! Only what sentence embedding needs is implemented: absolute position
//! embeddings, token type 0 everywhere, post-layer-norm encoder blocks with
//! exact (erf) GELU. Weights are rearranged once at load time so the hot
//! loop does as little work as possible:
//!
//! * query/key/value projections are fused into one `[hidden, 3*hidden]`
//!   matrix, so each layer does one large matmul instead of three;
//! * the `1/sqrt(head_dim)` attention scale is folded into the query weights;
//! * every linear weight is packed for the chosen kernel (`gemm` for fp32, `qgemm` for int8);
//! * the token-type-0 embedding is pre-added to the position embeddings.
//!
//! The forward pass itself is in `crate::host`.

use serde::Deserialize;

use crate::EmbedError;
use crate::gemm::PackedF32;
use crate::kernel::{Isa, Precision};
use crate::qgemm::PackedI8;
use crate::weights::Weights;
/// The subset of a Hugging Face `config.json` that a BERT encoder needs.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    #[serde(default = "default_act")]
    pub hidden_act: String,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    pub max_position_embeddings: usize,
    #[serde(default)]
    pub model_type: Option<String>,
    #[serde(default)]
    pub position_embedding_type: Option<String>,
}

fn default_act() -> String {
    "gelu".to_string()
}

fn default_eps() -> f64 {
    1e-12
}

impl BertConfig {
    pub fn validate(&self) -> Result<(), EmbedError> {
        let bad = |m: String| Err(EmbedError::InvalidModel(m));
        if let Some(t) = &self.model_type
            && t != "bert"
        {
            return bad(format!("model_type {t:?} is not supported (need \"bert\")"));
        }
        if let Some(p) = &self.position_embedding_type
            && p != "absolute"
        {
            return bad(format!("position_embedding_type {p:?} is not supported"));
        }
        // HF "gelu" is the exact erf form; the tanh approximation would drift
        // away from the reference vectors, so anything else is refused.
        if self.hidden_act != "gelu" {
            return bad(format!("hidden_act {:?} is not supported", self.hidden_act));
        }
        if self.hidden_size == 0
            || self.num_attention_heads == 0
            || !self.hidden_size.is_multiple_of(self.num_attention_heads)
        {
            return bad(format!(
                "hidden_size {} is not divisible by num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        if self.num_hidden_layers == 0 || self.intermediate_size == 0 || self.vocab_size == 0 {
            return bad("config has zero-sized dimensions".to_string());
        }
        Ok(())
    }
}

/// A linear layer: packed weights (`[in, out]` before packing) and the bias.
pub(crate) struct Linear {
    weights: Packed,
    pub(crate) bias: Vec<f32>,
}

enum Packed {
    F32(PackedF32),
    I8(PackedI8),
}

impl Linear {
    /// `w` is `[in, out]`, row-major.
    fn new(w: &[f32], inputs: usize, b: Vec<f32>, isa: Isa, precision: Precision) -> Linear {
        let outputs = b.len();
        let weights = match precision {
            Precision::Fp32 => Packed::F32(PackedF32::pack(w, inputs, outputs, isa)),
            Precision::Int8 => Packed::I8(PackedI8::pack(w, inputs, outputs, isa)),
        };
        Linear { weights, bias: b }
    }

    pub(crate) fn outputs(&self) -> usize {
        match &self.weights {
            Packed::F32(p) => p.outputs(),
            Packed::I8(p) => p.outputs(),
        }
    }

    /// `c[rows × out] += x[rows × in] · w` (the bias is the caller's to pre-fill).
    pub(crate) fn multiply_accumulate(&self, x: &[f32], rows: usize, c: &mut [f32]) {
        match &self.weights {
            Packed::F32(p) => p.multiply_accumulate(x, rows, c),
            Packed::I8(p) => p.multiply_accumulate(x, rows, c),
        }
    }

    fn kernel_name(&self) -> &'static str {
        match &self.weights {
            Packed::F32(_) => "",
            Packed::I8(p) => p.kernel_name(),
        }
    }
}

pub(crate) struct LayerNorm {
    pub(crate) w: Vec<f32>,
    pub(crate) b: Vec<f32>,
    pub(crate) eps: f32,
}

pub(crate) struct Layer {
    pub(crate) qkv: Linear,
    pub(crate) attn_out: Linear,
    pub(crate) ln_attn: LayerNorm,
    pub(crate) inter: Linear,
    pub(crate) out: Linear,
    pub(crate) ln_out: LayerNorm,
}

/// A loaded BERT encoder.
pub(crate) struct BertModel {
    /// `[vocab, hidden]`.
    pub(crate) word: Vec<f32>,
    /// `[positions, hidden]`, the token-type-0 embedding already added.
    pub(crate) pos_type: Vec<f32>,
    pub(crate) ln_emb: LayerNorm,
    pub(crate) layers: Vec<Layer>,
    pub(crate) heads: usize,
    pub(crate) hidden: usize,
    pub(crate) isa: Isa,
    pub(crate) precision: Precision,
    max_positions: usize,
    vocab_size: usize,
}

impl BertModel {
    pub fn load(
        weights: &Weights<'_>,
        cfg: &BertConfig,
        isa: Isa,
        precision: Precision,
    ) -> Result<Self, EmbedError> {
        cfg.validate()?;
        let prefix = if weights.contains("embeddings.word_embeddings.weight") {
            ""
        } else if weights.contains("bert.embeddings.word_embeddings.weight") {
            "bert."
        } else {
            return Err(EmbedError::InvalidModel(
                "model.safetensors has no embeddings.word_embeddings.weight".to_string(),
            ));
        };
        let h = cfg.hidden_size;
        let eps = cfg.layer_norm_eps as f32;
        let load = |name: &str, shape: &[usize]| weights.get(&format!("{prefix}{name}"), Some(shape));
        // Linear weights are stored `[out, in]` (PyTorch); transpose to `[in, out]`.
        let dense = |name: &str, in_dim: usize, out_dim: usize| -> Result<(Vec<f32>, Vec<f32>), EmbedError> {
            let w = load(&format!("{name}.weight"), &[out_dim, in_dim])?;
            let b = load(&format!("{name}.bias"), &[out_dim])?;
            Ok((transpose(&w, out_dim, in_dim), b))
        };
        let linear = |name: &str, in_dim: usize, out_dim: usize| -> Result<Linear, EmbedError> {
            let (w, b) = dense(name, in_dim, out_dim)?;
            Ok(Linear::new(&w, in_dim, b, isa, precision))
        };
        let layer_norm = |name: &str| -> Result<LayerNorm, EmbedError> {
            Ok(LayerNorm {
                w: load(&format!("{name}.weight"), &[h])?,
                b: load(&format!("{name}.bias"), &[h])?,
                eps,
            })
        };

        let word = load("embeddings.word_embeddings.weight", &[cfg.vocab_size, h])?;
        let mut pos_type = load(
            "embeddings.position_embeddings.weight",
            &[cfg.max_position_embeddings, h],
        )?;
        let types = weights.get(&format!("{prefix}embeddings.token_type_embeddings.weight"), None)?;
        if types.len() < h || !types.len().is_multiple_of(h) {
            return Err(EmbedError::InvalidModel(
                "bad token_type_embeddings shape".to_string(),
            ));
        }
        for row in pos_type.chunks_exact_mut(h) {
            for (p, t) in row.iter_mut().zip(&types[..h]) {
                *p += t;
            }
        }
        let ln_emb = layer_norm("embeddings.LayerNorm")?;

        let head_dim = h / cfg.num_attention_heads;
        let scale = 1.0 / (head_dim as f32).sqrt();
        let mut layers = Vec::with_capacity(cfg.num_hidden_layers);
        for i in 0..cfg.num_hidden_layers {
            let p = format!("encoder.layer.{i}");
            let (q_w, q_b) = dense(&format!("{p}.attention.self.query"), h, h)?;
            let (k_w, k_b) = dense(&format!("{p}.attention.self.key"), h, h)?;
            let (v_w, v_b) = dense(&format!("{p}.attention.self.value"), h, h)?;
            // Scaling q by 1/sqrt(d) here instead of scaling the scores saves
            // a full pass over the [b, heads, s, s] scores in every layer.
            let mut qkv_w = Vec::with_capacity(h * 3 * h);
            for row in 0..h {
                qkv_w.extend(q_w[row * h..(row + 1) * h].iter().map(|v| v * scale));
                qkv_w.extend_from_slice(&k_w[row * h..(row + 1) * h]);
                qkv_w.extend_from_slice(&v_w[row * h..(row + 1) * h]);
            }
            let qkv_b: Vec<f32> = q_b.iter().map(|v| v * scale).chain(k_b).chain(v_b).collect();
            layers.push(Layer {
                qkv: Linear::new(&qkv_w, h, qkv_b, isa, precision),
                attn_out: linear(&format!("{p}.attention.output.dense"), h, h)?,
                ln_attn: layer_norm(&format!("{p}.attention.output.LayerNorm"))?,
                inter: linear(&format!("{p}.intermediate.dense"), h, cfg.intermediate_size)?,
                out: linear(&format!("{p}.output.dense"), cfg.intermediate_size, h)?,
                ln_out: layer_norm(&format!("{p}.output.LayerNorm"))?,
            });
        }
        Ok(Self {
            word,
            pos_type,
            ln_emb,
            layers,
            heads: cfg.num_attention_heads,
            hidden: h,
            isa,
            precision,
            max_positions: cfg.max_position_embeddings,
            vocab_size: cfg.vocab_size,
        })
    }

    pub fn hidden_size(&self) -> usize {
        self.hidden
    }

    pub fn max_positions(&self) -> usize {
        self.max_positions
    }

    /// What runs the linear layers, e.g. `fp32 avx512` or `int8 avx512-vnni`.
    pub fn kernel_description(&self) -> String {
        match self.precision {
            Precision::Fp32 => format!("fp32 {}", self.isa.name()),
            Precision::Int8 => {
                let name = self.layers.first().map(|l| l.qkv.kernel_name()).unwrap_or("");
                format!("int8 {name}")
            }
        }
    }

    /// Runs the encoder on a padded batch and returns mean-pooled,
    /// L2-normalised sentence vectors.
    ///
    /// `ids[i]` are the token ids of sequence `i` (specials included); all
    /// sequences are right-padded with `pad_id` to the longest one.
    pub fn embed_batch(&self, ids: &[Vec<u32>], pad_id: u32) -> Result<Vec<Vec<f32>>, EmbedError> {
        let b = ids.len();
        if b == 0 {
            return Ok(Vec::new());
        }
        let s = ids.iter().map(Vec::len).max().unwrap_or(0).max(1);
        if s > self.max_positions {
            return Err(EmbedError::Inference(format!(
                "sequence of {s} tokens exceeds the model's {} positions",
                self.max_positions
            )));
        }
        let mut flat = Vec::with_capacity(b * s);
        let mut mask = Vec::with_capacity(b * s);
        for seq in ids {
            for &t in seq {
                // An out-of-vocabulary id would index past the table; map it
                // to the pad token rather than erroring on odd tokenizers.
                flat.push(if (t as usize) < self.vocab_size { t } else { pad_id });
                mask.push(1u8);
            }
            for _ in seq.len()..s {
                flat.push(pad_id);
                mask.push(0u8);
            }
        }
        let hidden = self.forward(&flat, &mask, b, s);
        Ok(pool(&hidden, &mask, b, s, self.hidden))
    }
}

/// `[rows, cols]` → `[cols, rows]`.
fn transpose(m: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0f32; m.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = m[r * cols + c];
        }
    }
    out
}

/// Masked mean pooling followed by L2 normalisation, as sentence-transformers
/// does it: the denominator is clamped at 1e-9 and a zero vector stays zero.
fn pool(hidden: &[f32], mask: &[u8], b: usize, s: usize, h: usize) -> Vec<Vec<f32>> {
    let mut out = Vec::with_capacity(b);
    for i in 0..b {
        let mut acc = vec![0f32; h];
        let mut count = 0f32;
        for j in 0..s {
            if mask[i * s + j] == 0 {
                continue;
            }
            count += 1.0;
            let row = &hidden[(i * s + j) * h..(i * s + j + 1) * h];
            for (a, v) in acc.iter_mut().zip(row) {
                *a += v;
            }
        }
        let denom = count.max(1e-9);
        for a in &mut acc {
            *a /= denom;
        }
        let norm = acc.iter().map(|v| v * v).sum::<f32>().sqrt();
        // F.normalize uses max(norm, 1e-12) so an all-zero vector stays zero.
        let norm = norm.max(1e-12);
        for a in &mut acc {
            *a /= norm;
        }
        out.push(acc);
    }
    out
}
