//! MaxPool (dilations and ceil_mode from opset 10; the `Indices` output, in `storage_order` 0
//! or 1, is a second node), AveragePool (count_include_pad from opset 7, ceil_mode from 10,
//! dilations from 19), the global pools, and ArgMax/ArgMin.

use super::Source;
use super::conv::window;
use super::{Imported, NodeCtx};
use crate::ir::Op;
use crate::ir::ops::{ArgExtremum, GlobalPool, Pool, PoolIndices, PoolKind};

fn window_of(ctx: &NodeCtx, kind: PoolKind) -> Result<Pool, String> {
    let kernel_shape = ctx
        .attrs
        .sizes("kernel_shape", 1)?
        .ok_or("attribute 'kernel_shape' is required")?;
    let window = window(ctx, true)?;
    Ok(Pool {
        kind,
        kernel_shape,
        window,
    })
}

fn pool(ctx: &NodeCtx, kind: PoolKind) -> Result<Imported, String> {
    Ok(Imported::first(Op::Pool(window_of(ctx, kind)?), 1))
}

/// MaxPool, with its `Indices` output as a second node when the model names one.
pub fn max_pool(ctx: &NodeCtx) -> Result<Imported, String> {
    let pool = window_of(ctx, PoolKind::Max)?;
    let mut out = Imported::first(Op::Pool(pool.clone()), 1);
    if ctx.node.output.get(1).is_some_and(|o| !o.is_empty()) {
        let column_major = match ctx.attrs.int("storage_order")?.unwrap_or(0) {
            0 => false,
            1 => true,
            other => return Err(format!("storage_order must be 0 or 1, got {other}")),
        };
        let indices = PoolIndices {
            pool,
            column_major,
            whole_tensor: true,
            last: false,
        };
        let at = out.add("indices", Op::PoolIndices(indices), vec![Source::Input(0)]);
        out.output(1, &at);
    }
    Ok(out)
}

/// ArgMax / ArgMin (`select_last_index` from opset 12).
pub fn arg_extremum(ctx: &NodeCtx, min: bool) -> Result<Imported, String> {
    Ok(Imported::first(
        Op::ArgExtremum(ArgExtremum {
            min,
            axis: ctx.attrs.int("axis")?.unwrap_or(0),
            keepdims: ctx.attrs.flag("keepdims", true)?,
            last: ctx.attrs.flag("select_last_index", false)?,
        }),
        1,
    ))
}

pub fn arg_max(ctx: &NodeCtx) -> Result<Imported, String> {
    arg_extremum(ctx, false)
}

pub fn arg_min(ctx: &NodeCtx) -> Result<Imported, String> {
    arg_extremum(ctx, true)
}

pub fn average_pool(ctx: &NodeCtx) -> Result<Imported, String> {
    let count_include_pad = ctx.attrs.flag("count_include_pad", false)?;
    pool(ctx, PoolKind::Average { count_include_pad })
}

pub fn global_max_pool(_: &NodeCtx) -> Result<Imported, String> {
    Ok(Imported::first(Op::GlobalPool(GlobalPool::Max), 1))
}

pub fn global_average_pool(_: &NodeCtx) -> Result<Imported, String> {
    Ok(Imported::first(Op::GlobalPool(GlobalPool::Average), 1))
}
