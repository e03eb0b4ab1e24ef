//! Constant (one of `value`, and from opset 12 `value_float(s)`/`value_int(s)`), ConstantOfShape
//! (`value` a one-element tensor, default float 0), Dropout (opset < 7 `is_test`; from 12 the
//! optional `ratio` and `training_mode` inputs; training mode is refused) and Identity.

use std::sync::Arc;

use super::{Imported, NodeCtx};
use crate::ir::ops::ConstantOfShape;
use crate::ir::{Op, Tensor};
use crate::onnx::tensor::to_tensor;

pub fn constant(ctx: &NodeCtx) -> Result<Imported, String> {
    let a = &ctx.attrs;
    let t = if let Some(t) = a.tensor("value")? {
        to_tensor(t, None)?
    } else if let Some(f) = a.float("value_float")? {
        Tensor::from_f32(vec![], vec![f])?
    } else if let Some(v) = a.floats("value_floats")? {
        Tensor::from_f32(vec![v.len()], v)?
    } else if let Some(i) = a.int("value_int")? {
        Tensor::from_i64(vec![], vec![i])?
    } else if let Some(v) = a.ints("value_ints")? {
        Tensor::from_i64(vec![v.len()], v)?
    } else {
        let names = a.names();
        return Err(format!("no supported value attribute (has {names:?})"));
    };
    Ok(Imported::first(Op::Const(Arc::new(t)), 0))
}

pub fn constant_of_shape(ctx: &NodeCtx) -> Result<Imported, String> {
    let value = match ctx.attrs.tensor("value")? {
        Some(t) => to_tensor(t, None)?,
        None => Tensor::from_f32(vec![1], vec![0.0])?,
    };
    if value.len() != 1 {
        return Err(format!(
            "attribute 'value' must hold one element, has {}",
            value.len()
        ));
    }
    let value = Arc::new(value.reshape(vec![])?);
    Ok(Imported::first(
        Op::ConstantOfShape(ConstantOfShape { value }),
        1,
    ))
}

pub fn dropout(ctx: &NodeCtx) -> Result<Imported, String> {
    let training = match ctx.const_input(2, "training_mode")? {
        Some(t) if ctx.opset >= 12 => t.i64s().map_or(true, |v| v.iter().any(|&x| x != 0)),
        _ => false,
    };
    if training {
        return Err("Dropout in training mode is not supported (export in eval mode)".into());
    }
    Ok(Imported::first(Op::Identity, 1))
}

pub fn identity(_: &NodeCtx) -> Result<Imported, String> {
    Ok(Imported::first(Op::Identity, 1))
}
