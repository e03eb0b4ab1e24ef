//! Normalisations: BatchNormalization (inference form; `spatial`/`is_test`/`momentum` of old
//! opsets are checked by the importer), LRN (across channels), and Softmax (opset < 13 flattens to
//! 2-D at `axis`, default 1; opset >= 13 works along one axis, default -1).

use super::util::norm_axis;
use crate::error::OpResult;
use crate::ir::fact::Fact;
use crate::ir::tensor::DType;
use crate::op_ensure;

/// BatchNormalization: y = (x - mean) / sqrt(var + epsilon) * scale + bias, per channel (axis 1).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct BatchNorm {
    pub epsilon: f32,
}

impl BatchNorm {
    pub fn infer(&self, inputs: &[&Fact]) -> OpResult<Fact> {
        let x = &inputs[0].shape;
        op_ensure!(x.len() >= 2, "input {x:?} must be N x C x ...");
        for (f, name) in inputs[1..].iter().zip(["scale", "B", "mean", "var"]) {
            op_ensure!(
                f.shape == [x[1]],
                "{name} has shape {:?}, expected [{}]",
                f.shape,
                x[1]
            );
        }
        Ok(Fact::new(DType::F32, x.clone()))
    }
}

/// Local response normalisation across channels:
/// y = x / (bias + alpha / size * sum_{c' in window(c)} x_{c'}^2) ^ beta.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Lrn {
    pub size: usize,
    pub alpha: f32,
    pub beta: f32,
    pub bias: f32,
}

impl Lrn {
    pub fn infer(&self, inputs: &[&Fact]) -> OpResult<Fact> {
        let x = &inputs[0].shape;
        op_ensure!(x.len() >= 3, "input {x:?} must be N x C x spatial...");
        op_ensure!(self.size > 0, "size must be positive");
        Ok(Fact::new(DType::F32, x.clone()))
    }
}

/// Softmax along `axis`.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Softmax {
    pub axis: i64,
    /// Opset < 13: the input is viewed as 2-D [prod(dims[..axis]), prod(dims[axis..])].
    pub coerce_2d: bool,
}

impl Softmax {
    pub fn infer(&self, inputs: &[&Fact]) -> OpResult<Fact> {
        let x = &inputs[0].shape;
        norm_axis(self.axis, x.len())?;
        Ok(Fact::new(DType::F32, x.clone()))
    }
}
