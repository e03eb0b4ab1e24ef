//! Quantisation, read as float arithmetic: quantised integers are carried as float32 values
//! (exact, every type read here has at most 16 bits), so a model's Q/DQ pairs run as the
//! fake quantisation they are and relevance passes through them.
//!
//! - DequantizeLinear: (x - zero_point) * scale, per tensor or per axis. On a constant (the
//!   usual quantised weight) it folds to the float weight, and the layer is a linear layer.
//! - QuantizeLinear: clamp(round(x / scale) + zero_point) to the zero point's type (uint8
//!   when absent or `output_dtype`), with a rounding whose derivative is taken as 1 (the
//!   straight-through estimator), so gradients pass the pair instead of vanishing.
//! - MatMulInteger / ConvInteger: the product of (a - a_zero_point) and (b - b_zero_point),
//!   exactly.
//! - DynamicQuantizeLinear: its outputs are read as (x, 1, 0), so the MatMulInteger or
//!   ConvInteger after it multiplies the float input by the dequantised weight: lrpc explains
//!   the float network the quantised one approximates and records a note saying so. Only where
//!   every use of the quantised value is such a product (the dequantised value is then exactly
//!   the float one); anywhere else its integers would be visible, and it is refused.

use std::sync::Arc;

use super::{Imported, NodeCtx, Source};
use crate::ir::ops::{Activation, BinaryOp, Cast, Reshape};
use crate::ir::{DType, Op, Tensor};
use crate::onnx::proto::tensor_proto::DataType as D;

/// The integer range of a quantised type.
fn range(dtype: i32) -> Result<(f32, f32), String> {
    let d = D::try_from(dtype).map_err(|_| format!("unknown data type {dtype}"))?;
    Ok(match d {
        D::Uint8 => (0.0, 255.0),
        D::Int8 => (-128.0, 127.0),
        D::Uint16 => (0.0, 65535.0),
        D::Int16 => (-32768.0, 32767.0),
        D::Uint4 => (0.0, 15.0),
        D::Int4 => (-8.0, 7.0),
        other => {
            return Err(format!(
                "quantisation to {} is not supported",
                other.as_str_name()
            ));
        }
    })
}

/// Whether input `i` is absent or a constant zero (a zero point that shifts nothing, which
/// would otherwise be a Sub for the passes to remove).
fn zero_or_absent(ctx: &NodeCtx, i: usize) -> bool {
    !ctx.has_input(i)
        || ctx.consts.get(&ctx.node.input[i]).is_some_and(|t| {
            t.cast(DType::F32)
                .f32s()
                .is_ok_and(|v| v.iter().all(|&x| x == 0.0))
        })
}

fn konst(v: f32) -> Result<Arc<Tensor>, String> {
    Ok(Arc::new(Tensor::from_f32(vec![], vec![v])?))
}

/// The float value of `src` (a no-op on float input).
fn float(out: &mut Imported, role: &str, src: Source) -> Source {
    out.add(
        role,
        Op::Cast(Cast {
            to: DType::F32,
            boolean: false,
        }),
        vec![src],
    )
}

/// Input `i` (a scale or zero point) as float, shaped to broadcast against an input of rank
/// `rank` along `axis` when it is per axis (1-D with more than one element).
fn per_axis(
    ctx: &NodeCtx,
    out: &mut Imported,
    i: usize,
    role: &str,
    rank: usize,
    axis: i64,
) -> Result<Source, String> {
    let shape = ctx.input_shapes.get(i).cloned().unwrap_or_default();
    let src = float(out, &format!("{role}_float"), Source::Input(i));
    if shape.len() > 1 {
        return Err(format!(
            "a {}-D {role} (blocked quantisation) is not supported",
            shape.len()
        ));
    }
    if shape.len() == 1 && shape[0] > 1 {
        let r = rank as i64;
        if axis < -r || axis >= r {
            return Err(format!("axis {axis} is out of range for rank {rank}"));
        }
        let axis = axis.rem_euclid(r.max(1)) as usize;
        let mut dims = vec![1i64; rank];
        dims[axis] = shape[0] as i64;
        let t = Tensor::from_i64(vec![rank], dims)?;
        return Ok(out.add(
            format!("{role}_axis"),
            Op::Reshape(Reshape { allowzero: false }),
            vec![src, Source::Const(format!("{role}_shape"), Arc::new(t))],
        ));
    }
    Ok(src)
}

fn check_block_size(ctx: &NodeCtx) -> Result<(), String> {
    match ctx.attrs.int("block_size")? {
        Some(b) if b != 0 => Err(format!(
            "blocked quantisation (block_size {b}) is not supported"
        )),
        _ => Ok(()),
    }
}

/// Rank of input 0, and the `axis` attribute of a per-axis scale (default 1).
fn rank_and_axis(ctx: &NodeCtx) -> Result<(usize, i64), String> {
    let rank = ctx.input_shapes.first().map_or(0, Vec::len);
    Ok((rank, ctx.attrs.int("axis")?.unwrap_or(1)))
}

pub fn dequantize_linear(ctx: &NodeCtx) -> Result<Imported, String> {
    check_block_size(ctx)?;
    let (rank, axis) = rank_and_axis(ctx)?;
    let mut out = Imported::new();
    let shifted = centred(ctx, &mut out, 0, 2, "x", axis)?;
    let scale = per_axis(ctx, &mut out, 1, "scale", rank, axis)?;
    let y = out.add("", Op::Binary(BinaryOp::Mul), vec![shifted, scale]);
    out.output(0, &y);
    Ok(out)
}

pub fn quantize_linear(ctx: &NodeCtx) -> Result<Imported, String> {
    check_block_size(ctx)?;
    let (rank, axis) = rank_and_axis(ctx)?;
    let dtype = if ctx.has_input(2) {
        *ctx.types.get(&ctx.node.input[2]).ok_or(
            "the zero point's type is unknown (it must be an initializer, Constant or input)",
        )?
    } else {
        ctx.attrs
            .int("output_dtype")?
            .filter(|&t| t != 0)
            .map_or(D::Uint8 as i32, |t| t as i32)
    };
    let (lo, hi) = range(dtype)?;
    let mut out = Imported::new();
    let scale = per_axis(ctx, &mut out, 1, "scale", rank, axis)?;
    let x = float(&mut out, "float", Source::Input(0));
    let scaled = out.add("scaled", Op::Binary(BinaryOp::Div), vec![x, scale]);
    let rounded = out.add(
        "rounded",
        Op::Activation(Activation::RoundStraight),
        vec![scaled],
    );
    let shifted = if !zero_or_absent(ctx, 2) {
        let zp = per_axis(ctx, &mut out, 2, "zero_point", rank, axis)?;
        out.add("shifted", Op::Binary(BinaryOp::Add), vec![rounded, zp])
    } else {
        rounded
    };
    let y = out.add(
        "",
        Op::Activation(Activation::Clip { min: lo, max: hi }),
        vec![shifted],
    );
    out.output(0, &y);
    Ok(out)
}

/// Input `i` as float minus the zero point at input `zp` (skipped when absent or zero), a
/// per-axis zero point broadcast along `axis` of input `i`.
fn centred(
    ctx: &NodeCtx,
    out: &mut Imported,
    i: usize,
    zp: usize,
    role: &str,
    axis: i64,
) -> Result<Source, String> {
    let v = float(out, &format!("{role}_float"), Source::Input(i));
    if zero_or_absent(ctx, zp) {
        return Ok(v);
    }
    let rank = ctx.input_shapes.get(i).map_or(0, Vec::len);
    let z = per_axis(ctx, out, zp, &format!("{role}_zero_point"), rank, axis)?;
    Ok(out.add(
        format!("{role}_centred"),
        Op::Binary(BinaryOp::Sub),
        vec![v, z],
    ))
}

pub fn matmul_integer(ctx: &NodeCtx) -> Result<Imported, String> {
    let mut out = Imported::new();
    // a's zero point may be per row ([M]), b's per column ([N]).
    let a = centred(ctx, &mut out, 0, 2, "a", -2)?;
    let b = centred(ctx, &mut out, 1, 3, "b", -1)?;
    let y = out.add("", Op::MatMul, vec![a, b]);
    out.output(0, &y);
    Ok(out)
}

pub fn conv_integer(ctx: &NodeCtx) -> Result<Imported, String> {
    let conv = super::conv::conv(ctx)?;
    let op = conv
        .nodes
        .into_iter()
        .next()
        .map(|n| n.op)
        .ok_or("internal: Conv made no node")?;
    let rank = ctx.input_shapes.get(1).map_or(0, Vec::len);
    if rank < 3 {
        return Err(format!(
            "the weight has rank {rank}; ConvInteger needs M x C x kernel"
        ));
    }
    let mut out = Imported::new();
    // The weight's zero point may be per output channel ([M]).
    let x = centred(ctx, &mut out, 0, 2, "x", 1)?;
    let w = centred(ctx, &mut out, 1, 3, "w", 0)?;
    let y = out.add("", op, vec![x, w]);
    out.output(0, &y);
    Ok(out)
}

/// Ops whose use of DynamicQuantizeLinear's outputs is exact when they are read as (x, 1, 0):
/// the integer products (which subtract the zero point) and the scale's multiplications.
const DEQUANTISING: &[&str] = &["MatMulInteger", "ConvInteger"];

pub fn dynamic_quantize_linear(ctx: &NodeCtx) -> Result<Imported, String> {
    let y = &ctx.node.output[0];
    let uses = ctx.uses.get(y).map(Vec::as_slice).unwrap_or_default();
    if let Some(other) = uses.iter().find(|u| !DEQUANTISING.contains(&u.as_str())) {
        return Err(format!(
            "its quantised output '{y}' is read by {other}; lrpc reads DynamicQuantizeLinear \
             only as the input quantisation of MatMulInteger/ConvInteger (explaining the float \
             network)"
        ));
    }
    let mut out = Imported::new();
    let x = out.add("", Op::Identity, vec![Source::Input(0)]);
    let scale = out.add("scale", Op::Const(konst(1.0)?), vec![]);
    let zero = out.add("zero_point", Op::Const(konst(0.0)?), vec![]);
    out.output(0, &x);
    out.output(1, &scale);
    out.output(2, &zero);
    out.notes.push(
        "DynamicQuantizeLinear is read as the identity (scale 1, zero point 0): the integer \
         products after it use the float input and the dequantised weights, so lrpc runs and \
         explains the float network the quantised one approximates"
            .into(),
    );
    Ok(out)
}
