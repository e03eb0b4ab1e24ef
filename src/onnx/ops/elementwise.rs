//! Add/Sub/Mul/Div (numpy broadcasting from opset 7; before it an explicit `broadcast` flag with
//! an optional `axis`, of which lrpc reads the suffix-aligned form that equals numpy's), Sum, and
//! the activations. Clip's bounds: attributes `min`/`max` before opset 11, optional constant inputs
//! from 11 on.

use super::{Imported, NodeCtx};
use crate::ir::Op;
use crate::ir::ops::{Activation, BinaryOp};

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
