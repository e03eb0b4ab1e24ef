//! Conv (opsets 1, 11, 22: the versions differ only in type constraints) and ConvTranspose.
//! Bias is optional.

use std::sync::Arc;

use super::{Imported, NodeCtx, Source};
use crate::ir::ops::{AutoPad, Conv, Window};
use crate::ir::{Op, Tensor};

/// Reads strides, dilations, pads, auto_pad and (when the op has it) ceil_mode.
pub fn window(ctx: &NodeCtx, with_ceil_mode: bool) -> Result<Window, String> {
    let a = &ctx.attrs;
    let auto_pad = match a.string("auto_pad")?.as_deref() {
        None | Some("NOTSET") | Some("") => AutoPad::NotSet,
        Some("SAME_UPPER") => AutoPad::SameUpper,
        Some("SAME_LOWER") => AutoPad::SameLower,
        Some("VALID") => AutoPad::Valid,
        Some(other) => return Err(format!("attribute 'auto_pad' has unknown value '{other}'")),
    };
    Ok(Window {
        strides: a.sizes("strides", 1)?.unwrap_or_default(),
        dilations: a.sizes("dilations", 1)?.unwrap_or_default(),
        pads: a.sizes("pads", 0)?.unwrap_or_default(),
        auto_pad,
        ceil_mode: with_ceil_mode && a.flag("ceil_mode", false)?,
    })
}

pub fn conv(ctx: &NodeCtx) -> Result<Imported, String> {
    let a = &ctx.attrs;
    let group = a.int_or("group", 1)?;
    if group < 1 {
        return Err(format!("attribute 'group' must be positive, got {group}"));
    }
    let op = Conv {
        kernel_shape: a.sizes("kernel_shape", 1)?,
        window: window(ctx, false)?,
        group: group as usize,
    };
    Ok(Imported::first(Op::Conv(op), ctx.present_inputs()))
}

/// ConvTranspose, as the adjoint of the Conv it transposes: y = ConvTranspose(x, w) is the
/// gradient of Conv(., w) (weight [C, M / group, k...], mapping M channels to C) at x, for
/// the Conv input whose size the attributes give: stride (in - 1) + output_padding +
/// dilation (k - 1) + 1 - pads. Then the bias, per output channel.
pub fn conv_transpose(ctx: &NodeCtx) -> Result<Imported, String> {
    use crate::ir::ops::backward::ConvTranspose;
    let a = &ctx.attrs;
    let x = ctx
        .input_shape()
        .cloned()
        .ok_or("the input's shape is not known at import")?;
    let w = ctx
        .const_input(1, "the weight")?
        .ok_or("the weight is required")?;
    let w = w.shape().to_vec();
    let spatial = x.len().saturating_sub(2);
    if x.len() < 3 || w.len() != x.len() {
        return Err(format!(
            "input {x:?} and weight {w:?} do not fit N x C x spatial"
        ));
    }
    let group = usize::try_from(a.int_or("group", 1)?).map_err(|_| "group must be positive")?;
    if group == 0 || x[1] != w[0] {
        return Err(format!(
            "the input has {} channels, the weight expects {} (group {group})",
            x[1], w[0]
        ));
    }
    if a.has("output_shape") {
        return Err("the 'output_shape' attribute is not supported (give pads)".into());
    }
    let win = window(ctx, false)?;
    if !matches!(win.auto_pad, AutoPad::NotSet | AutoPad::Valid) {
        return Err("auto_pad SAME_UPPER/SAME_LOWER is not supported for ConvTranspose".into());
    }
    let kernel: Vec<usize> = w[2..].to_vec();
    if let Some(k) = a.sizes("kernel_shape", 1)?
        && k != kernel
    {
        return Err(format!(
            "kernel_shape {k:?} disagrees with the weight {w:?}"
        ));
    }
    let at = |v: &Vec<usize>, i: usize, default: usize| v.get(i).copied().unwrap_or(default);
    let output_padding = a.sizes("output_padding", 0)?.unwrap_or_default();
    let mut out = vec![x[0], w[1] * group];
    for i in 0..spatial {
        let (s, d) = (at(&win.strides, i, 1), at(&win.dilations, i, 1));
        let pads = if win.auto_pad == AutoPad::Valid {
            0
        } else {
            at(&win.pads, i, 0) + at(&win.pads, i + spatial, 0)
        };
        let full = s * (x[2 + i] - 1) + at(&output_padding, i, 0) + d * (kernel[i] - 1) + 1;
        let size = full
            .checked_sub(pads)
            .filter(|&v| v > 0)
            .ok_or_else(|| format!("pads {:?} leave no output on axis {i}", win.pads))?;
        out.push(size);
    }
    let conv = Conv {
        kernel_shape: Some(kernel),
        window: win,
        group,
    };
    let op = Op::ConvTranspose(ConvTranspose {
        conv,
        input_shape: out,
    });
    if !ctx.has_input(2) {
        return Ok(Imported::op(op, vec![Source::Input(0), Source::Input(1)]));
    }
    // A constant bias stays in the node (one linear layer for LRP, as Zennit sees it); a
    // computed one is added after it.
    if ctx.consts.contains_key(&ctx.node.input[2]) {
        return Ok(Imported::first(op, 3));
    }
    let mut imported = Imported::new();
    let y = imported.add("transposed", op, vec![Source::Input(0), Source::Input(1)]);
    let mut per_channel = vec![-1i64];
    per_channel.extend(std::iter::repeat_n(1, spatial));
    let shape = Tensor::from_i64(vec![per_channel.len()], per_channel).map_err(|e| e.0)?;
    let shape = Source::Const(format!("{}.bias_shape", ctx.node.name), Arc::new(shape));
    let bias = imported.add(
        "bias",
        Op::Reshape(crate::ir::ops::Reshape { allowzero: false }),
        vec![Source::Input(2), shape],
    );
    let sum = imported.add("", Op::Binary(crate::ir::ops::BinaryOp::Add), vec![y, bias]);
    imported.output(0, &sum);
    Ok(imported)
}
