//! MaxPool (dilations and ceil_mode from opset 10; the `Indices` output is refused if used) and
//! AveragePool (count_include_pad from opset 7, ceil_mode from 10), and the global pools.
//! `storage_order` only concerns `Indices`, so it is ignored.

use super::conv::window;
use super::{Imported, NodeCtx};
use crate::ir::Op;
use crate::ir::ops::{GlobalPool, Pool, PoolKind};

fn pool(ctx: &NodeCtx, kind: PoolKind) -> Result<Imported, String> {
    let kernel_shape = ctx
        .attrs
        .sizes("kernel_shape", 1)?
        .ok_or("attribute 'kernel_shape' is required")?;
    let window = window(ctx, true)?;
    Ok(Imported::first(
        Op::Pool(Pool {
            kind,
            kernel_shape,
            window,
        }),
        1,
    ))
}

pub fn max_pool(ctx: &NodeCtx) -> Result<Imported, String> {
    pool(ctx, PoolKind::Max)
}

pub fn average_pool(ctx: &NodeCtx) -> Result<Imported, String> {
    if ctx.attrs.has("dilations")
        && ctx
            .attrs
            .sizes("dilations", 1)?
            .is_some_and(|d| d.iter().any(|&x| x != 1))
    {
        return Err("AveragePool with dilations is not supported".into());
    }
    let count_include_pad = ctx.attrs.flag("count_include_pad", false)?;
    pool(ctx, PoolKind::Average { count_include_pad })
}

pub fn global_max_pool(_: &NodeCtx) -> Result<Imported, String> {
    Ok(Imported::first(Op::GlobalPool(GlobalPool::Max), 1))
}

pub fn global_average_pool(_: &NodeCtx) -> Result<Imported, String> {
    Ok(Imported::first(Op::GlobalPool(GlobalPool::Average), 1))
}
