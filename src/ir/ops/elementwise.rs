//! Element-wise ops: the broadcasting binaries (arithmetic, Max/Min/Pow/Mod, comparisons, logic),
//! the n-ary Sum, and the pointwise functions (activations and unary math). Clip's bounds are attributes before opset 11 and inputs
//! from 11 on; the importer turns both into the `min`/`max` fields here.

use super::util::broadcast;
use crate::error::OpResult;
use crate::ir::fact::Fact;
use crate::op_ensure;

/// A broadcasting binary op. Comparisons and logic ops give 0/1 as i64 (ONNX's bool).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Max,
    Min,
    /// a^b.
    Pow,
    /// Remainder with the divisor's sign (ONNX Mod, fmod = 0).
    Mod,
    /// Remainder with the dividend's sign (ONNX Mod, fmod = 1; C's fmod).
    FMod,
    /// a for a >= 0, b a otherwise (ONNX PRelu, b the slope).
    PRelu,
    Equal,
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
    And,
    Or,
    Xor,
}

impl BinaryOp {
    /// Every op, in the order of [`BinaryOp::code`].
    pub const ALL: &'static [BinaryOp] = &[
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Div,
        BinaryOp::Max,
        BinaryOp::Min,
        BinaryOp::Pow,
        BinaryOp::Mod,
        BinaryOp::FMod,
        BinaryOp::PRelu,
        BinaryOp::Equal,
        BinaryOp::Less,
        BinaryOp::LessOrEqual,
        BinaryOp::Greater,
        BinaryOp::GreaterOrEqual,
        BinaryOp::And,
        BinaryOp::Or,
        BinaryOp::Xor,
    ];

    pub fn name(self) -> &'static str {
        match self {
            BinaryOp::Add => "Add",
            BinaryOp::Sub => "Sub",
            BinaryOp::Mul => "Mul",
            BinaryOp::Div => "Div",
            BinaryOp::Max => "Max",
            BinaryOp::Min => "Min",
            BinaryOp::Pow => "Pow",
            BinaryOp::Mod => "Mod",
            BinaryOp::FMod => "FMod",
            BinaryOp::PRelu => "PRelu",
            BinaryOp::Equal => "Equal",
            BinaryOp::Less => "Less",
            BinaryOp::LessOrEqual => "LessOrEqual",
            BinaryOp::Greater => "Greater",
            BinaryOp::GreaterOrEqual => "GreaterOrEqual",
            BinaryOp::And => "And",
            BinaryOp::Or => "Or",
            BinaryOp::Xor => "Xor",
        }
    }

    /// The op's index in [`BinaryOp::ALL`] (what compiled code passes to the scalar helper).
    pub fn code(self) -> u32 {
        Self::ALL.iter().position(|&o| o == self).unwrap_or(0) as u32
    }

    /// Whether the result is a 0/1 truth value (i64).
    pub fn is_predicate(self) -> bool {
        matches!(
            self,
            BinaryOp::Equal
                | BinaryOp::Less
                | BinaryOp::LessOrEqual
                | BinaryOp::Greater
                | BinaryOp::GreaterOrEqual
                | BinaryOp::And
                | BinaryOp::Or
                | BinaryOp::Xor
        )
    }

    /// The op on f32 values (predicates give 0 or 1).
    pub fn f32(self, a: f32, b: f32) -> f32 {
        let truth = |c: bool| f32::from(u8::from(c));
        match self {
            BinaryOp::Add => a + b,
            BinaryOp::Sub => a - b,
            BinaryOp::Mul => a * b,
            BinaryOp::Div => a / b,
            // NaN-propagating, as numpy's maximum/minimum and Cranelift's fmax/fmin.
            BinaryOp::Max if a.is_nan() || b.is_nan() => f32::NAN,
            BinaryOp::Min if a.is_nan() || b.is_nan() => f32::NAN,
            BinaryOp::Max => a.max(b),
            BinaryOp::Min => a.min(b),
            BinaryOp::Pow => a.powf(b),
            BinaryOp::Mod => {
                let r = a % b;
                if r != 0.0 && (r < 0.0) != (b < 0.0) {
                    r + b
                } else {
                    r
                }
            }
            BinaryOp::FMod => a % b,
            BinaryOp::PRelu => {
                if a >= 0.0 {
                    a
                } else {
                    a * b
                }
            }
            BinaryOp::Equal => truth(a == b),
            BinaryOp::Less => truth(a < b),
            BinaryOp::LessOrEqual => truth(a <= b),
            BinaryOp::Greater => truth(a > b),
            BinaryOp::GreaterOrEqual => truth(a >= b),
            BinaryOp::And => truth(a != 0.0 && b != 0.0),
            BinaryOp::Or => truth(a != 0.0 || b != 0.0),
            BinaryOp::Xor => truth((a != 0.0) != (b != 0.0)),
        }
    }

    /// The op on i64 values; None where it has no integer result (division or remainder by
    /// zero, a negative or overflowing power).
    pub fn i64(self, a: i64, b: i64) -> Option<i64> {
        let truth = |c: bool| i64::from(c);
        Some(match self {
            BinaryOp::Add => a.wrapping_add(b),
            BinaryOp::Sub => a.wrapping_sub(b),
            BinaryOp::Mul => a.wrapping_mul(b),
            BinaryOp::Div => a.checked_div(b)?,
            BinaryOp::Max => a.max(b),
            BinaryOp::Min => a.min(b),
            BinaryOp::Pow => a.checked_pow(u32::try_from(b).ok()?)?,
            BinaryOp::Mod => {
                let r = a.checked_rem(b)?;
                if r != 0 && (r < 0) != (b < 0) {
                    r + b
                } else {
                    r
                }
            }
            BinaryOp::FMod => a.checked_rem(b)?,
            BinaryOp::PRelu => {
                if a >= 0 {
                    a
                } else {
                    a.wrapping_mul(b)
                }
            }
            BinaryOp::Equal => truth(a == b),
            BinaryOp::Less => truth(a < b),
            BinaryOp::LessOrEqual => truth(a <= b),
            BinaryOp::Greater => truth(a > b),
            BinaryOp::GreaterOrEqual => truth(a >= b),
            BinaryOp::And => truth(a != 0 && b != 0),
            BinaryOp::Or => truth(a != 0 || b != 0),
            BinaryOp::Xor => truth((a != 0) != (b != 0)),
        })
    }

    /// Whether compiled kernels have an f32x4 form of it (Pow and the remainders call a scalar
    /// function).
    pub fn vectorizes(self) -> bool {
        !matches!(self, BinaryOp::Pow | BinaryOp::Mod | BinaryOp::FMod)
    }

    pub fn infer(self, inputs: &[&Fact]) -> OpResult<Fact> {
        let mut f = if self == BinaryOp::Pow || self == BinaryOp::PRelu {
            // The exponent (slope) may have another type than the base.
            let shape = broadcast(&inputs[0].shape, &inputs[1].shape)?;
            Fact::new(inputs[0].dtype, shape)
        } else {
            infer_broadcast(inputs)?
        };
        if self.is_predicate() {
            f.dtype = crate::ir::DType::I64;
        }
        Ok(f)
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

/// Where's shape rule: the condition is any type, x and y one type; all three broadcast.
pub fn infer_where(inputs: &[&Fact]) -> OpResult<Fact> {
    let values = infer_broadcast(&inputs[1..])?;
    let shape = broadcast(&inputs[0].shape, &values.shape)?;
    Ok(Fact::new(values.dtype, shape))
}

/// A pointwise function of one tensor: the activations, and the unary math ops models compute
/// with (Exp, Log, Sqrt, ... in normalisations and softmaxes written out). Relevance passes
/// through all of them unchanged (as in Zennit, where every activation is the identity for
/// relevance); gradient methods use [`super::ActivationGrad::derivative`].
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
    /// max(0, min(1, alpha x + beta)).
    HardSigmoid {
        alpha: f32,
        beta: f32,
    },
    /// x * HardSigmoid(x; 1/6, 1/2).
    HardSwish,
    /// x for x > 0, alpha (e^x - 1) otherwise.
    Elu {
        alpha: f32,
    },
    /// gamma * Elu(x; alpha).
    Selu {
        alpha: f32,
        gamma: f32,
    },
    /// max(0, x) + min(0, alpha (e^(x / alpha) - 1)).
    Celu {
        alpha: f32,
    },
    /// ln(1 + e^x), computed as max(x, 0) + ln(1 + e^-|x|) so that it does not overflow.
    Softplus,
    /// x / (1 + |x|).
    Softsign,
    /// x tanh(softplus(x)).
    Mish,
    /// x Phi(x) (the normal CDF, through erf), or its tanh approximation.
    Gelu {
        tanh: bool,
    },
    /// x for x > alpha, else 0.
    ThresholdedRelu {
        alpha: f32,
    },
    Erf,
    Exp,
    Log,
    Sqrt,
    Abs,
    Neg,
    Reciprocal,
    Floor,
    Ceil,
    /// Round half to even (ONNX Round).
    Round,
    /// Toward zero: a float cast to an integer type at run time.
    Trunc,
    /// 1 where x != 0, else 0: a cast to bool at run time.
    NonZero,
    /// 1 where x == 0, else 0: ONNX Not on 0/1 values.
    Not,
    /// -1, 0 or 1 (ONNX Sign).
    Sign,
    /// Round half to even with its derivative taken as 1 (the straight-through estimator):
    /// QuantizeLinear's rounding, so gradients pass a quantise-dequantise pair as they do in
    /// quantisation-aware training instead of vanishing.
    RoundStraight,
}

impl Activation {
    pub fn name(self) -> &'static str {
        match self {
            Activation::Relu => "Relu",
            Activation::LeakyRelu { .. } => "LeakyRelu",
            Activation::Clip { .. } => "Clip",
            Activation::Sigmoid => "Sigmoid",
            Activation::Tanh => "Tanh",
            Activation::HardSigmoid { .. } => "HardSigmoid",
            Activation::HardSwish => "HardSwish",
            Activation::Elu { .. } => "Elu",
            Activation::Selu { .. } => "Selu",
            Activation::Celu { .. } => "Celu",
            Activation::Softplus => "Softplus",
            Activation::Softsign => "Softsign",
            Activation::Mish => "Mish",
            Activation::Gelu { .. } => "Gelu",
            Activation::ThresholdedRelu { .. } => "ThresholdedRelu",
            Activation::Erf => "Erf",
            Activation::Exp => "Exp",
            Activation::Log => "Log",
            Activation::Sqrt => "Sqrt",
            Activation::Abs => "Abs",
            Activation::Neg => "Neg",
            Activation::Reciprocal => "Reciprocal",
            Activation::Floor => "Floor",
            Activation::Ceil => "Ceil",
            Activation::Round => "Round",
            Activation::Trunc => "Trunc",
            Activation::NonZero => "NonZero",
            Activation::Not => "Not",
            Activation::Sign => "Sign",
            Activation::RoundStraight => "RoundStraight",
        }
    }

    /// Every parameterless function, by name (what [`Activation::from_parts`] reads back).
    const PLAIN: &'static [Activation] = &[
        Activation::Relu,
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::HardSwish,
        Activation::Softplus,
        Activation::Softsign,
        Activation::Mish,
        Activation::Erf,
        Activation::Exp,
        Activation::Log,
        Activation::Sqrt,
        Activation::Abs,
        Activation::Neg,
        Activation::Reciprocal,
        Activation::Floor,
        Activation::Ceil,
        Activation::Round,
        Activation::Trunc,
        Activation::NonZero,
        Activation::Not,
        Activation::Sign,
        Activation::RoundStraight,
    ];

    /// Every function's name, in the order of [`Activation::code`].
    const NAMES: &'static [&'static str] = &[
        "Relu",
        "LeakyRelu",
        "Clip",
        "Sigmoid",
        "Tanh",
        "HardSigmoid",
        "HardSwish",
        "Elu",
        "Selu",
        "Celu",
        "Softplus",
        "Softsign",
        "Mish",
        "Gelu",
        "ThresholdedRelu",
        "Erf",
        "Exp",
        "Log",
        "Sqrt",
        "Abs",
        "Neg",
        "Reciprocal",
        "Floor",
        "Ceil",
        "Round",
        "Trunc",
        "NonZero",
        "Not",
        "Sign",
        "RoundStraight",
    ];

    /// A small number naming the function (without its parameters), for compiled code.
    pub fn code(self) -> u32 {
        Self::NAMES
            .iter()
            .position(|&n| n == self.name())
            .unwrap_or(0) as u32
    }

    /// The function with this code and parameters (see [`Activation::params`]; unused ones
    /// are ignored).
    pub fn from_code(code: u32, p0: f32, p1: f32) -> Option<Activation> {
        let name = Self::NAMES.get(code as usize)?;
        let p = [p0, p1];
        (0..=2).find_map(|n| Activation::from_parts(name, &p[..n]))
    }

    /// The attribute values, in a fixed order (what an artifact stores beside the name).
    pub fn params(self) -> Vec<f32> {
        match self {
            Activation::LeakyRelu { alpha }
            | Activation::Elu { alpha }
            | Activation::Celu { alpha }
            | Activation::ThresholdedRelu { alpha } => vec![alpha],
            Activation::Clip { min, max } => vec![min, max],
            Activation::HardSigmoid { alpha, beta } => vec![alpha, beta],
            Activation::Selu { alpha, gamma } => vec![alpha, gamma],
            Activation::Gelu { tanh } => vec![f32::from(u8::from(tanh))],
            _ => vec![],
        }
    }

    /// The activation with this name and [`Activation::params`].
    pub fn from_parts(name: &str, p: &[f32]) -> Option<Activation> {
        Some(match (name, p) {
            ("LeakyRelu", &[alpha]) => Activation::LeakyRelu { alpha },
            ("Elu", &[alpha]) => Activation::Elu { alpha },
            ("Celu", &[alpha]) => Activation::Celu { alpha },
            ("ThresholdedRelu", &[alpha]) => Activation::ThresholdedRelu { alpha },
            ("Clip", &[min, max]) => Activation::Clip { min, max },
            ("HardSigmoid", &[alpha, beta]) => Activation::HardSigmoid { alpha, beta },
            ("Selu", &[alpha, gamma]) => Activation::Selu { alpha, gamma },
            ("Gelu", &[t]) if t == 0.0 || t == 1.0 => Activation::Gelu { tanh: t == 1.0 },
            (name, []) => *Self::PLAIN.iter().find(|a| a.name() == name)?,
            _ => return None,
        })
    }

    /// Whether compiled kernels have an f32x4 form of it (the others call a scalar function).
    pub fn vectorizes(self) -> bool {
        matches!(
            self,
            Activation::Relu
                | Activation::LeakyRelu { .. }
                | Activation::Clip { .. }
                | Activation::HardSigmoid { .. }
                | Activation::HardSwish
                | Activation::ThresholdedRelu { .. }
                | Activation::Abs
                | Activation::Neg
                | Activation::Sqrt
                | Activation::Reciprocal
                | Activation::Softsign
                | Activation::Floor
                | Activation::Ceil
                | Activation::Round
                | Activation::RoundStraight
                | Activation::Trunc
                | Activation::NonZero
                | Activation::Not
                | Activation::Gelu { tanh: false }
        )
    }

    /// The function itself, on one value.
    pub fn apply(self, x: f32) -> f32 {
        let elu = |x: f32, alpha: f32| if x > 0.0 { x } else { alpha * x.exp_m1() };
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
            Activation::HardSigmoid { alpha, beta } => (alpha * x + beta).clamp(0.0, 1.0),
            Activation::HardSwish => x * (x / 6.0 + 0.5).clamp(0.0, 1.0),
            Activation::Elu { alpha } => elu(x, alpha),
            Activation::Selu { alpha, gamma } => gamma * elu(x, alpha),
            Activation::Celu { alpha } => x.max(0.0) + (alpha * (x / alpha).exp_m1()).min(0.0),
            Activation::Softplus => softplus(x),
            Activation::Softsign => x / (1.0 + x.abs()),
            Activation::Mish => x * softplus(x).tanh(),
            Activation::Gelu { tanh: false } => {
                0.5 * x * (1.0 + erf_rational(x * std::f32::consts::FRAC_1_SQRT_2))
            }
            Activation::Gelu { tanh: true } => {
                let k = (2.0 / std::f32::consts::PI).sqrt();
                0.5 * x * (1.0 + (k * (x + 0.044715 * x * x * x)).tanh())
            }
            Activation::ThresholdedRelu { alpha } => {
                if x > alpha {
                    x
                } else {
                    0.0
                }
            }
            Activation::Erf => erf(x),
            Activation::Exp => x.exp(),
            Activation::Log => x.ln(),
            Activation::Sqrt => x.sqrt(),
            Activation::Abs => x.abs(),
            Activation::Neg => -x,
            Activation::Reciprocal => 1.0 / x,
            Activation::Floor => x.floor(),
            Activation::Ceil => x.ceil(),
            Activation::Round | Activation::RoundStraight => x.round_ties_even(),
            Activation::Trunc => x.trunc(),
            Activation::NonZero => f32::from(x != 0.0),
            Activation::Not => f32::from(x == 0.0),
            Activation::Sign => {
                if x > 0.0 {
                    1.0
                } else if x < 0.0 {
                    -1.0
                } else {
                    x
                }
            }
        }
    }

    /// The function on an integer, for those ONNX defines on integer types.
    pub fn apply_i64(self, x: i64) -> Option<i64> {
        Some(match self {
            Activation::Relu => x.max(0),
            Activation::Abs => x.wrapping_abs(),
            Activation::Neg => x.wrapping_neg(),
            Activation::Sign => x.signum(),
            Activation::Not => i64::from(x == 0),
            Activation::NonZero => i64::from(x != 0),
            Activation::Floor
            | Activation::Ceil
            | Activation::Round
            | Activation::RoundStraight
            | Activation::Trunc => x,
            _ => return None,
        })
    }

    pub fn infer(self, inputs: &[&Fact]) -> OpResult<Fact> {
        op_ensure!(
            inputs[0].dtype == crate::ir::DType::F32 || self.apply_i64(0).is_some(),
            "{} needs an f32 input",
            self.name()
        );
        Ok(Fact::new(inputs[0].dtype, inputs[0].shape.clone()))
    }
}

/// ln(1 + e^x) without overflow for large x.
fn softplus(x: f32) -> f32 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

/// Odd-power coefficients of [`erf_rational`]'s numerator, x^1 first.
pub const ERF_NUMERATOR: [f32; 7] = [
    -1.609_603_3e-2,
    -2.954_6e-3,
    -7.349_906e-4,
    -5.692_506_4e-5,
    -2.101_024e-6,
    2.770_681_4e-8,
    -2.726_142_3e-10,
];
/// Even-power coefficients of [`erf_rational`]'s denominator, x^0 first.
pub const ERF_DENOMINATOR: [f32; 5] = [
    -1.426_473_9e-2,
    -7.373_329e-3,
    -1.682_827e-3,
    -2.133_740_6e-4,
    -1.456_607_2e-5,
];
/// Beyond this |x|, erf is 1 to f32 precision.
pub const ERF_CLAMP: f32 = 4.0;

/// erf(x) as a rational minimax fit x P(x^2) / Q(x^2) on |x| <= 4 (the form Eigen and
/// XNNPACK use; within 4.2e-7 of erf). GELU uses it rather than the C library's erff because
/// compiled kernels evaluate the same operations in the same order on f32x4 vectors, so the
/// interpreter and compiled code agree bitwise and the GELU vectorises.
pub fn erf_rational(x: f32) -> f32 {
    let c = x.clamp(-ERF_CLAMP, ERF_CLAMP);
    let x2 = c * c;
    let mut p = ERF_NUMERATOR[6];
    for &a in ERF_NUMERATOR[..6].iter().rev() {
        p = p * x2 + a;
    }
    let mut q = ERF_DENOMINATOR[4];
    for &b in ERF_DENOMINATOR[..4].iter().rev() {
        q = q * x2 + b;
    }
    c * p / q
}

/// The error function, from the C library (Rust's own is not stable yet).
pub fn erf(x: f32) -> f32 {
    unsafe extern "C" {
        fn erff(x: f32) -> f32;
    }
    // SAFETY: erff is a pure function of one float in the C math library std links on every
    // supported target; it reads and writes no memory.
    unsafe { erff(x) }
}

#[cfg(test)]
mod tests {
    use super::{erf, erf_rational};

    #[test]
    fn the_rational_erf_stays_within_5e7_of_the_c_library() {
        let mut worst = 0f32;
        for i in -60_000..=60_000 {
            let x = i as f32 * 1e-4;
            worst = worst.max((erf_rational(x) - erf(x)).abs());
        }
        assert!(worst <= 5e-7, "largest difference {worst:e}");
        assert_eq!(erf_rational(0.0), 0.0);
        assert_eq!(erf_rational(-1.0), -erf_rational(1.0));
        assert!(erf_rational(f32::NAN).is_nan());
    }
}
