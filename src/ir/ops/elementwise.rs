//! Element-wise ops: the broadcasting binaries Add/Sub/Mul/Div, the n-ary Sum, and the activations
//! (Relu, LeakyRelu, Clip, Sigmoid, Tanh). Clip's bounds are attributes before opset 11 and inputs
//! from 11 on; the importer turns both into the `min`/`max` fields here.

use super::util::broadcast;
use crate::error::OpResult;
use crate::ir::fact::Fact;
use crate::op_ensure;

/// A broadcasting binary arithmetic op.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
}

impl BinaryOp {
    pub fn name(self) -> &'static str {
        match self {
            BinaryOp::Add => "Add",
            BinaryOp::Sub => "Sub",
            BinaryOp::Mul => "Mul",
            BinaryOp::Div => "Div",
        }
    }

    pub fn infer(self, inputs: &[&Fact]) -> OpResult<Fact> {
        infer_broadcast(inputs)
    }
}

/// Shape rule of every broadcasting element-wise op: same dtype, numpy-broadcast shape.
pub fn infer_broadcast(inputs: &[&Fact]) -> OpResult<Fact> {
    let dtype = inputs[0].dtype;
    let mut shape = inputs[0].shape.clone();
    for f in &inputs[1..] {
        op_ensure!(
            f.dtype == dtype,
            "operands have different types ({dtype} and {})",
            f.dtype
        );
        shape = broadcast(&shape, &f.shape)?;
    }
    Ok(Fact::new(dtype, shape))
}

/// A pointwise nonlinearity. Relevance passes through all of them unchanged.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub enum Activation {
    Relu,
    LeakyRelu {
        alpha: f32,
    },
    /// Clamp to [min, max]; an absent bound is infinite.
    Clip {
        min: f32,
        max: f32,
    },
    Sigmoid,
    Tanh,
}

impl Activation {
    pub fn name(self) -> &'static str {
        match self {
            Activation::Relu => "Relu",
            Activation::LeakyRelu { .. } => "LeakyRelu",
            Activation::Clip { .. } => "Clip",
            Activation::Sigmoid => "Sigmoid",
            Activation::Tanh => "Tanh",
        }
    }

    /// The attribute values, in a fixed order (what an artifact stores beside the name).
    pub fn params(self) -> Vec<f32> {
        match self {
            Activation::Relu | Activation::Sigmoid | Activation::Tanh => vec![],
            Activation::LeakyRelu { alpha } => vec![alpha],
            Activation::Clip { min, max } => vec![min, max],
        }
    }

    /// The activation with this name and [`Activation::params`].
    pub fn from_parts(name: &str, p: &[f32]) -> Option<Activation> {
        Some(match (name, p) {
            ("Relu", []) => Activation::Relu,
            ("Sigmoid", []) => Activation::Sigmoid,
            ("Tanh", []) => Activation::Tanh,
            ("LeakyRelu", &[alpha]) => Activation::LeakyRelu { alpha },
            ("Clip", &[min, max]) => Activation::Clip { min, max },
            _ => return None,
        })
    }

    /// The function itself, on one value.
    pub fn apply(self, x: f32) -> f32 {
        match self {
            Activation::Relu => x.max(0.0),
            Activation::LeakyRelu { alpha } => {
                if x >= 0.0 {
                    x
                } else {
                    alpha * x
                }
            }
            Activation::Clip { min, max } => x.max(min).min(max),
            Activation::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            Activation::Tanh => x.tanh(),
        }
    }

    pub fn infer(self, inputs: &[&Fact]) -> OpResult<Fact> {
        op_ensure!(
            inputs[0].dtype == crate::ir::DType::F32,
            "{} needs an f32 input",
            self.name()
        );
        Ok(Fact::new(inputs[0].dtype, inputs[0].shape.clone()))
    }
}
