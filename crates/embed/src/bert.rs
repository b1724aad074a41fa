//! A BERT encoder forward pass written directly on candle tensors.
//!
//! Only what sentence embedding needs is implemented: absolute position
//! embeddings, token type 0 everywhere, post-layer-norm encoder blocks with
//! exact (erf) GELU. Weights are rearranged once at load time so the hot
//! loop does as little work as possible:
//!
//! * query/key/value projections are fused into one `[hidden, 3*hidden]`
//!   matrix, so each layer does one large matmul instead of three;
//! * the `1/sqrt(head_dim)` attention scale is folded into the query weights;
//! * all linear weights are stored transposed (`[in, out]`, contiguous) so the
//!   matmul reads them without strided access;
//! * the token-type-0 embedding is pre-added to the position embeddings.

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use rayon::prelude::*;
use serde::Deserialize;

use crate::EmbedError;
use crate::blas;
use crate::host::{HostLayer, HostLayerNorm, HostLinear, HostModel};

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

/// A linear layer with its weight stored as `[in, out]`.
struct Linear {
    w: Tensor,
    b: Tensor,
    /// The same weights as plain row-major `[in, out]` memory, for the BLAS path.
    w_host: Vec<f32>,
    b_host: Vec<f32>,
}

impl Linear {
    fn new(w: Tensor, b: Tensor) -> candle_core::Result<Linear> {
        let w_host = w.flatten_all()?.to_vec1::<f32>()?;
        let b_host = b.to_vec1::<f32>()?;
        Ok(Linear { w, b, w_host, b_host })
    }

    /// `x` is `[rows, in]`; returns `[rows, out]`, passed through erf-GELU when `gelu`.
    /// (With OpenBLAS present, `crate::host` runs the whole encoder instead.)
    fn forward(&self, x: &Tensor, gelu: bool) -> candle_core::Result<Tensor> {
        let y = x.matmul(&self.w)?.broadcast_add(&self.b)?;
        if gelu { y.gelu_erf() } else { Ok(y) }
    }
}

struct LayerNorm {
    w: Tensor,
    b: Tensor,
    eps: f32,
    w_host: Vec<f32>,
    b_host: Vec<f32>,
}

impl LayerNorm {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        // The fused candle-nn kernel needs a contiguous input; everything
        // reaching here already is, so this never copies.
        candle_nn::ops::layer_norm(&x.contiguous()?, &self.w, &self.b, self.eps)
    }
}

struct Layer {
    qkv: Linear,
    attn_out: Linear,
    ln_attn: LayerNorm,
    inter: Linear,
    out: Linear,
    ln_out: LayerNorm,
}

/// A loaded BERT encoder.
pub(crate) struct BertModel {
    word: Tensor,
    /// Host copies of the embedding tables for the BLAS path (empty when BLAS is absent).
    word_host: Vec<f32>,
    pos_type_host: Vec<f32>,
    /// Position embeddings with the token-type-0 embedding already added.
    pos_type: Tensor,
    ln_emb: LayerNorm,
    layers: Vec<Layer>,
    heads: usize,
    head_dim: usize,
    hidden: usize,
    max_positions: usize,
    vocab_size: usize,
}

/// Fetches `name`, trying the bare name first and then with a `bert.` prefix
/// (checkpoints saved from `BertForXxx` heads carry the prefix).
fn get(vb: &VarBuilder, prefix: &str, name: &str) -> Result<Tensor, EmbedError> {
    let full = format!("{prefix}{name}");
    if !vb.contains_tensor(&full) {
        return Err(EmbedError::InvalidModel(format!(
            "weight {full:?} missing from model.safetensors"
        )));
    }
    vb.get_unchecked(&full)
        .and_then(|t| t.to_dtype(DType::F32))
        .map_err(|e| EmbedError::InvalidModel(format!("cannot load weight {full:?}: {e}")))
}

fn check_shape(t: &Tensor, want: &[usize], name: &str) -> Result<(), EmbedError> {
    if t.dims() != want {
        return Err(EmbedError::InvalidModel(format!(
            "weight {name} has shape {:?}, expected {want:?}",
            t.dims()
        )));
    }
    Ok(())
}

impl BertModel {
    pub fn load(vb: &VarBuilder, cfg: &BertConfig) -> Result<Self, EmbedError> {
        cfg.validate()?;
        let prefix = if vb.contains_tensor("embeddings.word_embeddings.weight") {
            ""
        } else if vb.contains_tensor("bert.embeddings.word_embeddings.weight") {
            "bert."
        } else {
            return Err(EmbedError::InvalidModel(
                "model.safetensors has no embeddings.word_embeddings.weight".to_string(),
            ));
        };
        let h = cfg.hidden_size;
        let eps = cfg.layer_norm_eps as f32;

        let load = |name: &str, shape: &[usize]| -> Result<Tensor, EmbedError> {
            let t = get(vb, prefix, name)?;
            check_shape(&t, shape, name)?;
            Ok(t)
        };
        // Linear weights are stored `[out, in]` (PyTorch); keep them `[in, out]`.
        let linear = |name: &str, in_dim: usize, out_dim: usize| -> Result<Linear, EmbedError> {
            let w = load(&format!("{name}.weight"), &[out_dim, in_dim])?;
            let b = load(&format!("{name}.bias"), &[out_dim])?;
            Ok(Linear::new(w.t()?.contiguous()?, b)?)
        };
        let layer_norm = |name: &str| -> Result<LayerNorm, EmbedError> {
            let w = load(&format!("{name}.weight"), &[h])?;
            let b = load(&format!("{name}.bias"), &[h])?;
            Ok(LayerNorm {
                w_host: w.to_vec1()?,
                b_host: b.to_vec1()?,
                w,
                b,
                eps,
            })
        };

        let word = load("embeddings.word_embeddings.weight", &[cfg.vocab_size, h])?;
        let pos = load(
            "embeddings.position_embeddings.weight",
            &[cfg.max_position_embeddings, h],
        )?;
        let types = get(vb, prefix, "embeddings.token_type_embeddings.weight")?;
        if types.rank() != 2 || types.dim(1)? != h || types.dim(0)? == 0 {
            return Err(EmbedError::InvalidModel(
                "bad token_type_embeddings shape".to_string(),
            ));
        }
        let pos_type = pos.broadcast_add(&types.get(0)?)?.contiguous()?;
        let ln_emb = layer_norm("embeddings.LayerNorm")?;

        let head_dim = h / cfg.num_attention_heads;
        let scale = 1.0 / (head_dim as f64).sqrt();
        let mut layers = Vec::with_capacity(cfg.num_hidden_layers);
        for i in 0..cfg.num_hidden_layers {
            let p = format!("encoder.layer.{i}");
            let q = linear(&format!("{p}.attention.self.query"), h, h)?;
            let k = linear(&format!("{p}.attention.self.key"), h, h)?;
            let v = linear(&format!("{p}.attention.self.value"), h, h)?;
            // Scaling q by 1/sqrt(d) here instead of scaling the scores saves
            // a full pass over the [b, heads, s, s] tensor in every layer.
            let qkv = Linear::new(
                Tensor::cat(&[(q.w * scale)?, k.w, v.w], 1)?.contiguous()?,
                Tensor::cat(&[(q.b * scale)?, k.b, v.b], 0)?.contiguous()?,
            )?;
            layers.push(Layer {
                qkv,
                attn_out: linear(&format!("{p}.attention.output.dense"), h, h)?,
                ln_attn: layer_norm(&format!("{p}.attention.output.LayerNorm"))?,
                inter: linear(&format!("{p}.intermediate.dense"), h, cfg.intermediate_size)?,
                out: linear(&format!("{p}.output.dense"), cfg.intermediate_size, h)?,
                ln_out: layer_norm(&format!("{p}.output.LayerNorm"))?,
            });
        }
        let (word_host, pos_type_host) = if blas::blas().is_some() {
            (word.flatten_all()?.to_vec1()?, pos_type.flatten_all()?.to_vec1()?)
        } else {
            (Vec::new(), Vec::new())
        };
        Ok(Self {
            word,
            word_host,
            pos_type_host,
            pos_type,
            ln_emb,
            layers,
            heads: cfg.num_attention_heads,
            head_dim,
            hidden: h,
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
                // An out-of-vocabulary id would make index_select fail; map it
                // to the pad token rather than erroring on odd tokenizers.
                flat.push(if (t as usize) < self.vocab_size { t } else { pad_id });
                mask.push(1u8);
            }
            for _ in seq.len()..s {
                flat.push(pad_id);
                mask.push(0u8);
            }
        }
        let hidden: Vec<f32> = match blas::blas() {
            Some(blas) => self.host_model().forward(blas, &flat, &mask, b, s),
            None => self.forward(&flat, &mask, b, s)?.flatten_all()?.to_vec1()?,
        };
        Ok(pool(&hidden, &mask, b, s, self.hidden))
    }

    /// Borrowed host views of the weights for [`crate::host::HostModel`].
    fn host_model(&self) -> HostModel<'_> {
        fn linear(l: &Linear) -> HostLinear<'_> {
            HostLinear {
                w: &l.w_host,
                b: &l.b_host,
            }
        }
        fn norm(n: &LayerNorm) -> HostLayerNorm<'_> {
            HostLayerNorm {
                w: &n.w_host,
                b: &n.b_host,
                eps: n.eps,
            }
        }
        HostModel {
            word: &self.word_host,
            pos_type: &self.pos_type_host,
            ln_emb: norm(&self.ln_emb),
            layers: self
                .layers
                .iter()
                .map(|l| HostLayer {
                    qkv: linear(&l.qkv),
                    attn_out: linear(&l.attn_out),
                    ln_attn: norm(&l.ln_attn),
                    inter: linear(&l.inter),
                    out: linear(&l.out),
                    ln_out: norm(&l.ln_out),
                })
                .collect(),
            heads: self.heads,
            hidden: self.hidden,
        }
    }

    /// Returns the last hidden state, `[b, s, hidden]`.
    fn forward(&self, flat: &[u32], mask: &[u8], b: usize, s: usize) -> candle_core::Result<Tensor> {
        let dev = Device::Cpu;
        let h = self.hidden;
        let ids = Tensor::from_slice(flat, (b * s,), &dev)?;
        let x = self.word.index_select(&ids, 0)?.reshape((b, s, h))?;
        let x = x.broadcast_add(&self.pos_type.narrow(0, 0, s)?)?;
        let mut x = self.ln_emb.forward(&x)?.reshape((b * s, h))?;

        // Additive attention mask, built once per batch: 0 for real tokens,
        // a large negative number for padding so softmax gives it weight 0.
        let needs_mask = mask.contains(&0);
        let add_mask = if needs_mask {
            let m: Vec<f32> = mask
                .iter()
                .map(|&m| if m == 1 { 0.0 } else { f32::MIN })
                .collect();
            Some(Tensor::from_vec(m, (b, 1, 1, s), &dev)?)
        } else {
            None
        };

        for layer in &self.layers {
            x = self.layer_forward(layer, &x, add_mask.as_ref(), b, s)?;
        }
        x.reshape((b, s, h))
    }

    fn layer_forward(
        &self,
        layer: &Layer,
        x: &Tensor,
        add_mask: Option<&Tensor>,
        b: usize,
        s: usize,
    ) -> candle_core::Result<Tensor> {
        let (nh, hd, h) = (self.heads, self.head_dim, self.hidden);
        let qkv = layer.qkv.forward(x, false)?; // [b*s, 3h]
        // One copy puts q, k and v each in [b, heads, s, d] order.
        let qkv = qkv
            .reshape((b, s, 3, nh, hd))?
            .permute((2, 0, 3, 1, 4))?
            .contiguous()?;
        let q = qkv.get(0)?;
        let k = qkv.get(1)?;
        let v = qkv.get(2)?;
        let ctx = attention(&q, &k, &v, add_mask)?.reshape((b * s, h))?;
        let attn = layer.attn_out.forward(&ctx, false)?;
        let x = layer.ln_attn.forward(&(attn + x)?)?;
        let inter = layer.inter.forward(&x, true)?;
        let out = layer.out.forward(&inter, false)?;
        layer.ln_out.forward(&(out + x)?)
    }
}

/// Scaled dot-product attention for `[b, heads, s, d]` inputs, returning
/// `[b, s, heads, d]` (contiguous, ready to be viewed as `[b*s, hidden]`).
///
/// The per-head matmuls are far too small for the matmul kernel to spread
/// over threads, and candle runs the batch of them one after another. So
/// the batch is split into one slice per thread and the slices run
/// concurrently; each slice's work is independent.
fn attention(q: &Tensor, k: &Tensor, v: &Tensor, add_mask: Option<&Tensor>) -> candle_core::Result<Tensor> {
    let b = q.dim(0)?;
    let parts = rayon::current_num_threads().clamp(1, b);
    if parts == 1 {
        return attention_slice(q, k, v, add_mask);
    }
    let chunk = b.div_ceil(parts);
    let ranges: Vec<(usize, usize)> = (0..b)
        .step_by(chunk)
        .map(|start| (start, chunk.min(b - start)))
        .collect();
    let outs: Vec<candle_core::Result<Tensor>> = ranges
        .par_iter()
        .map(|&(start, len)| {
            let mask = match add_mask {
                Some(m) => Some(m.narrow(0, start, len)?),
                None => None,
            };
            attention_slice(
                &q.narrow(0, start, len)?,
                &k.narrow(0, start, len)?,
                &v.narrow(0, start, len)?,
                mask.as_ref(),
            )
        })
        .collect();
    let outs = outs.into_iter().collect::<candle_core::Result<Vec<_>>>()?;
    // Each slice is contiguous, so concatenating along dim 0 is a memcpy.
    Tensor::cat(&outs, 0)
}

fn attention_slice(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    add_mask: Option<&Tensor>,
) -> candle_core::Result<Tensor> {
    // q was pre-scaled by 1/sqrt(d) at load time.
    let scores = q.matmul(&k.t()?)?; // [b, heads, s, s]
    let scores = match add_mask {
        Some(m) => scores.broadcast_add(m)?,
        None => scores,
    };
    let probs = candle_nn::ops::softmax_last_dim(&scores)?;
    probs.matmul(v)?.transpose(1, 2)?.contiguous()
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
