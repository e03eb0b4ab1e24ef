//! Gemm (C optional from opset 11; opsets < 7 had a `broadcast` flag, which numpy-style
//! broadcasting of C subsumes) and MatMul.

use super::{Imported, NodeCtx};
use crate::ir::Op;
use crate::ir::ops::Gemm;

pub fn gemm(ctx: &NodeCtx) -> Result<Imported, String> {
    let a = &ctx.attrs;
    let op = Gemm {
        alpha: a.float_or("alpha", 1.0)?,
        beta: a.float_or("beta", 1.0)?,
        trans_a: a.flag("transA", false)?,
        trans_b: a.flag("transB", false)?,
    };
    Ok(Imported::first(Op::Gemm(op), ctx.present_inputs()))
}

pub fn matmul(_: &NodeCtx) -> Result<Imported, String> {
    Ok(Imported::first(Op::MatMul, 2))
}
