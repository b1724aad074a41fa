//! The tensors of a `model.safetensors` file, read as f32.
//!
//! Invariant: a tensor is handed out only with the shape the caller asked for (when it asks)
//! and as exactly `product(shape)` values; a missing, misshapen or non-float tensor is an
//! `InvalidModel` error, never a panic or a short slice.

use safetensors::{Dtype, SafeTensors};

use crate::EmbedError;

pub(crate) struct Weights<'a> {
    tensors: SafeTensors<'a>,
}

impl<'a> Weights<'a> {
    pub(crate) fn parse(bytes: &'a [u8]) -> Result<Weights<'a>, EmbedError> {
        let tensors = SafeTensors::deserialize(bytes)
            .map_err(|e| EmbedError::InvalidModel(format!("model.safetensors: {e}")))?;
        Ok(Weights { tensors })
    }

    pub(crate) fn contains(&self, name: &str) -> bool {
        self.tensors.tensor(name).is_ok()
    }

    /// The tensor `name` as f32 values, checked against `shape` when given.
    pub(crate) fn get(&self, name: &str, shape: Option<&[usize]>) -> Result<Vec<f32>, EmbedError> {
        let view = self.tensors.tensor(name).map_err(|_| {
            EmbedError::InvalidModel(format!("weight {name:?} missing from model.safetensors"))
        })?;
        if let Some(want) = shape
            && view.shape() != want
        {
            return Err(EmbedError::InvalidModel(format!(
                "weight {name} has shape {:?}, expected {want:?}",
                view.shape()
            )));
        }
        let count: usize = view.shape().iter().product();
        let data = view.data();
        let values: Vec<f32> = match view.dtype() {
            Dtype::F32 => data
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            Dtype::F16 => data
                .chunks_exact(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            Dtype::BF16 => data
                .chunks_exact(2)
                .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            other => {
                return Err(EmbedError::InvalidModel(format!(
                    "weight {name} has dtype {other:?} (need F32, F16 or BF16)"
                )));
            }
        };
        if values.len() != count {
            return Err(EmbedError::InvalidModel(format!(
                "weight {name} holds {} values for shape {:?}",
                values.len(),
                view.shape()
            )));
        }
        Ok(values)
    }
}
