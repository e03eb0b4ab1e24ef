//! Add/Sub/Mul/Div (numpy broadcasting from opset 7; before it an explicit `broadcast` flag with
//! an optional `axis`, of which lrpc reads the suffix-aligned form that equals numpy's), Sum, and
//! the activations. Clip's bounds: attributes `min`/`max` before opset 11, optional constant inputs
//! from 11 on.

use std::sync::Arc;

use super::{Imported, NodeCtx, Source};
use crate::ir::ops::{Activation, BinaryOp};
use crate::ir::{Op, Tensor};

fn binary(ctx: &NodeCtx, op: BinaryOp) -> Result<Imported, String> {
    if ctx.opset < 7 && ctx.attrs.flag("broadcast", false)? && ctx.attrs.has("axis") {
        return Err("legacy broadcasting with an explicit 'axis' is not supported".into());
    }
    Ok(Imported::first(Op::Binary(op), 2))
}

pub fn add(ctx: &NodeCtx) -> Result<Imported, String> {
    binary(ctx, BinaryOp::Add)
}

pub fn sub(ctx: &NodeCtx) -> Result<Imported, String> {
    binary(ctx, BinaryOp::Sub)
}

pub fn mul(ctx: &NodeCtx) -> Result<Imported, String> {
    binary(ctx, BinaryOp::Mul)
}

pub fn div(ctx: &NodeCtx) -> Result<Imported, String> {
    binary(ctx, BinaryOp::Div)
}

/// Max, Min and Mean take any number of inputs: a chain of binaries (Mean then divides).
fn variadic(ctx: &NodeCtx, op: BinaryOp, mean: bool) -> Result<Imported, String> {
    let n = ctx.node.input.len();
    if n == 0 || (0..n).any(|i| !ctx.has_input(i)) {
        return Err("every input must be present".into());
    }
    if n == 1 && !mean {
        return Ok(Imported::first(Op::Identity, 1));
    }
    let mut out = Imported::new();
    let mut acc = Source::Input(0);
    for i in 1..n {
        // The node that gives the ONNX output carries the ONNX node's name.
        let role = if i + 1 == n && !mean {
            String::new()
        } else {
            format!("partial{i}")
        };
        acc = out.add(role, Op::Binary(op), vec![acc, Source::Input(i)]);
    }
    if mean {
        let count = Tensor::from_f32(vec![], vec![n as f32]).map_err(|e| e.to_string())?;
        let c = Source::Const(format!("{}.count", ctx.node.name), Arc::new(count));
        acc = out.add("", Op::Binary(BinaryOp::Div), vec![acc, c]);
    }
    out.output(0, &acc);
    Ok(out)
}

pub fn max(ctx: &NodeCtx) -> Result<Imported, String> {
    variadic(ctx, BinaryOp::Max, false)
}

pub fn min(ctx: &NodeCtx) -> Result<Imported, String> {
    variadic(ctx, BinaryOp::Min, false)
}

pub fn mean(ctx: &NodeCtx) -> Result<Imported, String> {
    variadic(ctx, BinaryOp::Add, true)
}

pub fn pow(_: &NodeCtx) -> Result<Imported, String> {
    Ok(Imported::first(Op::Binary(BinaryOp::Pow), 2))
}

pub fn prelu(_: &NodeCtx) -> Result<Imported, String> {
    Ok(Imported::first(Op::Binary(BinaryOp::PRelu), 2))
}

pub fn modulo(ctx: &NodeCtx) -> Result<Imported, String> {
    let op = if ctx.attrs.flag("fmod", false)? {
        BinaryOp::FMod
    } else {
        BinaryOp::Mod
    };
    Ok(Imported::first(Op::Binary(op), 2))
}

fn predicate(op: BinaryOp) -> Result<Imported, String> {
    Ok(Imported::first(Op::Binary(op), 2))
}

pub fn equal(_: &NodeCtx) -> Result<Imported, String> {
    predicate(BinaryOp::Equal)
}

pub fn less(_: &NodeCtx) -> Result<Imported, String> {
    predicate(BinaryOp::Less)
}

pub fn less_or_equal(_: &NodeCtx) -> Result<Imported, String> {
    predicate(BinaryOp::LessOrEqual)
}

pub fn greater(_: &NodeCtx) -> Result<Imported, String> {
    predicate(BinaryOp::Greater)
}

pub fn greater_or_equal(_: &NodeCtx) -> Result<Imported, String> {
    predicate(BinaryOp::GreaterOrEqual)
}

pub fn and(_: &NodeCtx) -> Result<Imported, String> {
    predicate(BinaryOp::And)
}

pub fn or(_: &NodeCtx) -> Result<Imported, String> {
    predicate(BinaryOp::Or)
}

pub fn xor(_: &NodeCtx) -> Result<Imported, String> {
    predicate(BinaryOp::Xor)
}

pub fn where_(_: &NodeCtx) -> Result<Imported, String> {
    Ok(Imported::first(Op::Where, 3))
}

pub fn sum(ctx: &NodeCtx) -> Result<Imported, String> {
    if ctx.present_inputs() != ctx.node.input.len()
        || (0..ctx.node.input.len()).any(|i| !ctx.has_input(i))
    {
        return Err("every input of Sum must be present".into());
    }
    Ok(Imported::first(Op::Sum, ctx.node.input.len()))
}

fn activation(a: Activation) -> Result<Imported, String> {
    Ok(Imported::first(Op::Activation(a), 1))
}

pub fn relu(_: &NodeCtx) -> Result<Imported, String> {
    activation(Activation::Relu)
}

pub fn sigmoid(_: &NodeCtx) -> Result<Imported, String> {
    activation(Activation::Sigmoid)
}

pub fn tanh(_: &NodeCtx) -> Result<Imported, String> {
    activation(Activation::Tanh)
}

macro_rules! plain {
    ($($fn_name:ident => $variant:ident),* $(,)?) => {
        $(
            pub fn $fn_name(_: &NodeCtx) -> Result<Imported, String> {
                activation(Activation::$variant)
            }
        )*
    };
}

plain! {
    hard_swish => HardSwish, softplus => Softplus, softsign => Softsign, mish => Mish,
    erf => Erf, exp => Exp, log => Log, sqrt => Sqrt, abs => Abs, neg => Neg,
    reciprocal => Reciprocal, floor => Floor, ceil => Ceil, round => Round, not => Not,
    sign => Sign,
}

pub fn hard_sigmoid(ctx: &NodeCtx) -> Result<Imported, String> {
    activation(Activation::HardSigmoid {
        alpha: ctx.attrs.float_or("alpha", 0.2)?,
        beta: ctx.attrs.float_or("beta", 0.5)?,
    })
}

pub fn elu(ctx: &NodeCtx) -> Result<Imported, String> {
    activation(Activation::Elu {
        alpha: ctx.attrs.float_or("alpha", 1.0)?,
    })
}

pub fn selu(ctx: &NodeCtx) -> Result<Imported, String> {
    activation(Activation::Selu {
        alpha: ctx.attrs.float_or("alpha", 1.673_263_2)?,
        gamma: ctx.attrs.float_or("gamma", 1.050_701)?,
    })
}

pub fn celu(ctx: &NodeCtx) -> Result<Imported, String> {
    let alpha = ctx.attrs.float_or("alpha", 1.0)?;
    if alpha == 0.0 {
        return Err("Celu's alpha must not be 0".into());
    }
    activation(Activation::Celu { alpha })
}

pub fn thresholded_relu(ctx: &NodeCtx) -> Result<Imported, String> {
    activation(Activation::ThresholdedRelu {
        alpha: ctx.attrs.float_or("alpha", 1.0)?,
    })
}

pub fn gelu(ctx: &NodeCtx) -> Result<Imported, String> {
    let tanh = match ctx.attrs.string("approximate")?.as_deref() {
        None | Some("none") => false,
        Some("tanh") => true,
        Some(other) => return Err(format!("unknown approximate '{other}'")),
    };
    activation(Activation::Gelu { tanh })
}

pub fn leaky_relu(ctx: &NodeCtx) -> Result<Imported, String> {
    activation(Activation::LeakyRelu {
        alpha: ctx.attrs.float_or("alpha", 0.01)?,
    })
}

pub fn clip(ctx: &NodeCtx) -> Result<Imported, String> {
    let (min, max) = if ctx.opset < 11 {
        (ctx.attrs.float("min")?, ctx.attrs.float("max")?)
    } else {
        (ctx.const_scalar(1, "min")?, ctx.const_scalar(2, "max")?)
    };
    let (min, max) = (
        min.unwrap_or(f32::NEG_INFINITY),
        max.unwrap_or(f32::INFINITY),
    );
    if min.is_nan() || max.is_nan() {
        return Err("Clip bounds must not be NaN".into());
    }
    activation(Activation::Clip { min, max })
}
