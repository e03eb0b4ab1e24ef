//! Ops that only the relevance pass creates: the adjoints of the forward ops (what autograd
//! would compute for dL/dx) and the point-wise helpers of the LRP rules. They never come from ONNX.

use super::Activation;
use super::Conv;
use super::norm::Lrn;
use super::pool::{GlobalPool, Pool};
use super::shape::Slice;
use crate::error::OpResult;
use crate::ir::fact::Fact;
use crate::ir::tensor::DType;
use crate::op_ensure;

/// The adjoint of [`Conv`]: maps dy [N, M, out...] and the weight to dx of `input_shape`.
/// Inputs [dy, w] or, as ONNX's forward ConvTranspose, [x, w, bias] with a bias per output
/// channel (kept in the node so the layer's LRP rules see it, as Zennit's do).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ConvTranspose {
    pub conv: Conv,
    /// The shape of the forward Conv's input, which the adjoint produces.
    pub input_shape: Vec<usize>,
}

impl ConvTranspose {
    pub fn infer(&self, inputs: &[&Fact]) -> OpResult<Fact> {
        let (dy, w) = (&inputs[0].shape, &inputs[1].shape);
        let g = self.conv.geometry(&self.input_shape, w)?;
        let mut expect = vec![self.input_shape[0], w[0]];
        expect.extend(&g.output);
        op_ensure!(
            *dy == expect,
            "gradient shape {dy:?} does not match the Conv output {expect:?}"
        );
        if let Some(b) = inputs.get(2) {
            let channels = self.input_shape.get(1).copied().unwrap_or(0);
            op_ensure!(
                b.shape == [channels],
                "bias {:?} does not match the {channels} output channels",
                b.shape
            );
        }
        Ok(Fact::new(DType::F32, self.input_shape.clone()))
    }
}

/// The adjoint of a window pool, inputs [x, dy]: MaxPool routes each dy to the first maximum of
/// its window (as PyTorch does); AveragePool spreads dy / count over the window.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct PoolBackward {
    pub pool: Pool,
}

impl PoolBackward {
    pub fn infer(&self, inputs: &[&Fact]) -> OpResult<Fact> {
        adjoint_of(self.pool.infer(&inputs[..1])?, inputs)
    }
}

/// The fact of an adjoint with inputs [x, dy] of a forward op whose output fact is `fwd`.
fn adjoint_of(fwd: Fact, inputs: &[&Fact]) -> OpResult<Fact> {
    op_ensure!(
        fwd.shape == inputs[1].shape,
        "gradient shape {:?} does not match the forward output {:?}",
        inputs[1].shape,
        fwd.shape
    );
    Ok(Fact::new(DType::F32, inputs[0].shape.clone()))
}

/// The adjoint of a global pool, inputs [x, dy].
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct GlobalPoolBackward {
    pub pool: GlobalPool,
}

impl GlobalPoolBackward {
    pub fn infer(&self, inputs: &[&Fact]) -> OpResult<Fact> {
        adjoint_of(self.pool.infer(&inputs[..1])?, inputs)
    }
}

/// The adjoint of [`Slice`] (and of Pad, as a slice): scatters dy into zeros of `input_shape`.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SliceBackward {
    pub slice: Slice,
    pub input_shape: Vec<usize>,
}

impl SliceBackward {
    pub fn infer(&self, inputs: &[&Fact]) -> OpResult<Fact> {
        let axes = self.slice.resolve(&self.input_shape)?;
        let out: Vec<usize> = axes.iter().map(|a| a.len).collect();
        op_ensure!(
            inputs[0].shape == out,
            "gradient shape {:?} does not match the slice {out:?}",
            inputs[0].shape
        );
        Ok(Fact::new(DType::F32, self.input_shape.clone()))
    }
}

/// dy * f'(x) for an activation f, inputs [x, dy].
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct ActivationGrad {
    pub activation: Activation,
}

impl ActivationGrad {
    /// f'(x) (0 for the step functions: Floor, Ceil, Round, Trunc, NonZero, Not, Sign).
    pub fn derivative(self, x: f32) -> f32 {
        use std::f32::consts::{FRAC_1_SQRT_2, PI};
        let sigmoid = |x: f32| Activation::Sigmoid.apply(x);
        let step = |c: bool| f32::from(u8::from(c));
        match self.activation {
            Activation::Relu => step(x > 0.0),
            Activation::LeakyRelu { alpha } => {
                if x > 0.0 {
                    1.0
                } else {
                    alpha
                }
            }
            Activation::Clip { min, max } => step(x > min && x < max),
            Activation::Sigmoid => {
                let s = sigmoid(x);
                s * (1.0 - s)
            }
            Activation::Tanh => 1.0 - x.tanh() * x.tanh(),
            Activation::HardSigmoid { alpha, beta } => {
                let z = alpha * x + beta;
                alpha * step(z > 0.0 && z < 1.0)
            }
            Activation::HardSwish => {
                if x < -3.0 {
                    0.0
                } else if x > 3.0 {
                    1.0
                } else {
                    x / 3.0 + 0.5
                }
            }
            Activation::Elu { alpha } => {
                if x > 0.0 {
                    1.0
                } else {
                    alpha * x.exp()
                }
            }
            Activation::Selu { alpha, gamma } => {
                gamma * if x > 0.0 { 1.0 } else { alpha * x.exp() }
            }
            Activation::Celu { alpha } => {
                if x > 0.0 {
                    1.0
                } else {
                    (x / alpha).exp()
                }
            }
            Activation::Softplus => sigmoid(x),
            Activation::Softsign => 1.0 / ((1.0 + x.abs()) * (1.0 + x.abs())),
            Activation::Mish => {
                let t = Activation::Softplus.apply(x).tanh();
                t + x * (1.0 - t * t) * sigmoid(x)
            }
            Activation::Gelu { tanh: false } => {
                let cdf = 0.5 * (1.0 + super::erf(x * FRAC_1_SQRT_2));
                let pdf = (-0.5 * x * x).exp() / (2.0 * PI).sqrt();
                cdf + x * pdf
            }
            Activation::Gelu { tanh: true } => {
                let k = (2.0 / PI).sqrt();
                let t = (k * (x + 0.044715 * x * x * x)).tanh();
                0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * k * (1.0 + 3.0 * 0.044715 * x * x)
            }
            Activation::ThresholdedRelu { alpha } => step(x > alpha),
            Activation::Erf => 2.0 / PI.sqrt() * (-x * x).exp(),
            Activation::Exp => x.exp(),
            Activation::Log => 1.0 / x,
            Activation::Sqrt => 0.5 / x.sqrt(),
            Activation::Abs => {
                if x > 0.0 {
                    1.0
                } else if x < 0.0 {
                    -1.0
                } else {
                    0.0
                }
            }
            Activation::Neg => -1.0,
            Activation::RoundStraight => 1.0,
            Activation::Reciprocal => -1.0 / (x * x),
            Activation::Floor
            | Activation::Ceil
            | Activation::Round
            | Activation::Trunc
            | Activation::NonZero
            | Activation::Not
            | Activation::Sign => 0.0,
        }
    }

    pub fn infer(&self, inputs: &[&Fact]) -> OpResult<Fact> {
        op_ensure!(
            inputs[0].shape == inputs[1].shape,
            "x {:?} and dy {:?} differ",
            inputs[0].shape,
            inputs[1].shape
        );
        Ok(Fact::new(DType::F32, inputs[0].shape.clone()))
    }
}

/// Point-wise functions the LRP rules are made of.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub enum Pointwise {
    /// s(z) = z + eps * sgn0(z), with sgn0(0) = +1 (Zennit's stabiliser).
    Stabilize { epsilon: f32 },
    /// max(x, 0).
    Positive,
    /// min(x, 0).
    Negative,
    /// 1 where x > 0, else 0.
    IsPositive,
    /// 1 where x < 0, else 0.
    IsNegative,
    /// x^2.
    Square,
    /// 1 everywhere (the input only gives the shape).
    One,
}

impl Pointwise {
    pub fn name(self) -> &'static str {
        match self {
            Pointwise::Stabilize { .. } => "Stabilize",
            Pointwise::Positive => "Positive",
            Pointwise::Negative => "Negative",
            Pointwise::IsPositive => "IsPositive",
            Pointwise::IsNegative => "IsNegative",
            Pointwise::Square => "Square",
            Pointwise::One => "One",
        }
    }

    /// The attribute values, in a fixed order (what an artifact stores beside the name).
    pub fn params(self) -> Vec<f32> {
        match self {
            Pointwise::Stabilize { epsilon } => vec![epsilon],
            Pointwise::Positive
            | Pointwise::Negative
            | Pointwise::IsPositive
            | Pointwise::IsNegative
            | Pointwise::Square
            | Pointwise::One => vec![],
        }
    }

    /// The pointwise op with this name and [`Pointwise::params`].
    pub fn from_parts(name: &str, p: &[f32]) -> Option<Pointwise> {
        Some(match (name, p) {
            ("Stabilize", &[epsilon]) => Pointwise::Stabilize { epsilon },
            ("Positive", []) => Pointwise::Positive,
            ("Negative", []) => Pointwise::Negative,
            ("IsPositive", []) => Pointwise::IsPositive,
            ("IsNegative", []) => Pointwise::IsNegative,
            ("Square", []) => Pointwise::Square,
            ("One", []) => Pointwise::One,
            _ => return None,
        })
    }

    pub fn apply(self, x: f32) -> f32 {
        match self {
            Pointwise::Stabilize { epsilon } => {
                if x >= 0.0 {
                    x + epsilon
                } else {
                    x - epsilon
                }
            }
            Pointwise::Positive => x.max(0.0),
            Pointwise::Negative => x.min(0.0),
            Pointwise::IsPositive => f32::from(x > 0.0),
            Pointwise::IsNegative => f32::from(x < 0.0),
            Pointwise::Square => x * x,
            Pointwise::One => 1.0,
        }
    }
}

/// The adjoint of [`Lrn`], inputs [x, dy]: with d_c = bias + alpha/size sum_{c' in W(c)} x_c'^2,
/// dx_j = dy_j d_j^-beta - (2 alpha beta / size) x_j sum_{c: j in W(c)} dy_c x_c d_c^(-beta-1).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct LrnBackward {
    pub lrn: Lrn,
}

impl LrnBackward {
    pub fn infer(&self, inputs: &[&Fact]) -> OpResult<Fact> {
        adjoint_of(self.lrn.infer(&inputs[..1])?, inputs)
    }
}

/// The adjoint of a data-movement op that reads input elements more than once (Pad in
/// reflect, edge or wrap mode): each input element gets the sum of the output elements that
/// read it. `forward` is the op with its constant arguments; inputs [dy].
#[derive(Clone, Debug, PartialEq)]
pub struct MovementAdjoint {
    pub forward: Box<super::super::Op>,
    pub args: Vec<std::sync::Arc<crate::ir::Tensor>>,
    pub input_shape: Vec<usize>,
}

impl MovementAdjoint {
    pub fn infer(&self, _inputs: &[&Fact]) -> OpResult<Fact> {
        Ok(Fact::new(DType::F32, self.input_shape.clone()))
    }
}
