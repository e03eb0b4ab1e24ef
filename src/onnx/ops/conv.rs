//! Conv (opsets 1, 11, 22: the versions differ only in type constraints). Bias is optional.

use super::{Imported, NodeCtx};
use crate::ir::Op;
use crate::ir::ops::{AutoPad, Conv, Window};

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
