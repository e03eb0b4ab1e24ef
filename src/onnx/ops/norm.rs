//! BatchNormalization (opset < 9 has `spatial`, which must be 1; opset < 7 has `is_test`;
//! opset >= 14 has `training_mode`, which must be 0), LRN, and Softmax (opset < 13: coerce to 2-D
//! at `axis`, default 1; from 13: one axis, default -1).
//! The Reduce family.

use super::{Imported, NodeCtx};
use crate::ir::Op;
use crate::ir::ops::{BatchNorm, Lrn, Reduce, ReduceKind, Softmax};

pub fn batch_norm(ctx: &NodeCtx) -> Result<Imported, String> {
    let a = &ctx.attrs;
    if ctx.opset < 9 && !a.flag("spatial", true)? {
        return Err("BatchNormalization with spatial=0 is not supported".into());
    }
    if a.flag("training_mode", false)? {
        return Err(
            "BatchNormalization in training mode is not supported (export in eval mode)".into(),
        );
    }
    let epsilon = a.float_or("epsilon", 1e-5)?;
    if epsilon.is_nan() || epsilon < 0.0 {
        return Err(format!(
            "attribute 'epsilon' must not be negative, got {epsilon}"
        ));
    }
    Ok(Imported::first(Op::BatchNorm(BatchNorm { epsilon }), 5))
}

pub fn lrn(ctx: &NodeCtx) -> Result<Imported, String> {
    let a = &ctx.attrs;
    let size = a.int("size")?.ok_or("attribute 'size' is required")?;
    if size < 1 {
        return Err(format!("attribute 'size' must be positive, got {size}"));
    }
    let op = Lrn {
        size: size as usize,
        alpha: a.float_or("alpha", 1e-4)?,
        beta: a.float_or("beta", 0.75)?,
        bias: a.float_or("bias", 1.0)?,
    };
    Ok(Imported::first(Op::Lrn(op), 1))
}

pub fn softmax(ctx: &NodeCtx) -> Result<Imported, String> {
    let coerce_2d = ctx.opset < 13;
    let axis = ctx.attrs.int_or("axis", if coerce_2d { 1 } else { -1 })?;
    Ok(Imported::first(Op::Softmax(Softmax { axis, coerce_2d }), 1))
}

/// The Reduce family: axes an attribute, or (ReduceSum from opset 13, the others from 18) an
/// optional constant input; no axes means every axis, unless `noop_with_empty_axes`.
fn reduce(ctx: &NodeCtx, kind: ReduceKind) -> Result<Imported, String> {
    let axes_as_input = ctx.opset >= 18 || (kind == ReduceKind::Sum && ctx.opset >= 13);
    let axes = if axes_as_input {
        ctx.const_ints(1, "axes")?
    } else {
        ctx.attrs.ints("axes")?
    };
    let axes = axes.filter(|a| !a.is_empty());
    if axes.is_none() && ctx.attrs.flag("noop_with_empty_axes", false)? {
        return Ok(Imported::first(Op::Identity, 1));
    }
    let keepdims = ctx.attrs.flag("keepdims", true)?;
    Ok(Imported::first(
        Op::Reduce(Reduce {
            kind,
            axes,
            keepdims,
        }),
        1,
    ))
}

macro_rules! reducers {
    ($($fn_name:ident => $kind:ident),* $(,)?) => {
        $(
            pub fn $fn_name(ctx: &NodeCtx) -> Result<Imported, String> {
                reduce(ctx, ReduceKind::$kind)
            }
        )*
    };
}

reducers! {
    reduce_sum => Sum, reduce_mean => Mean, reduce_max => Max, reduce_min => Min,
    reduce_prod => Prod, reduce_l1 => L1, reduce_l2 => L2, reduce_log_sum_exp => LogSumExp,
    reduce_sum_square => SumSquare,
}
