//! MaxPool, AveragePool, and the global pools.

use crate::error::OpResult;
use crate::ir::ops::pool::best_tap;
use crate::ir::ops::{GlobalPool, Plane, Pool, PoolIndices, PoolKind};
use crate::ir::{Tensor, numel};

pub fn pool(p: &Pool, x: &Tensor) -> OpResult<Tensor> {
    let g = p.geometry(x.shape())?;
    let pl = Plane::new(&g)?;
    let xs = x.f32s()?;
    let planes = x.shape()[0] * x.shape()[1];
    let mut out_shape = x.shape()[..2].to_vec();
    out_shape.extend(&g.output);
    let mut y = Vec::with_capacity(numel(&out_shape));
    for plane in 0..planes {
        let xi = &xs[plane * pl.ih * pl.iw..][..pl.ih * pl.iw];
        for oh in 0..pl.oh {
            for ow in 0..pl.ow {
                let (mut max, mut sum, mut real, mut padded) =
                    (f32::NEG_INFINITY, 0.0f32, 0usize, 0usize);
                for kh in 0..pl.kh {
                    for kw in 0..pl.kw {
                        // Positions in the explicit padding count for count_include_pad; positions
                        // past it (ceil mode) never do, as in PyTorch and onnxruntime.
                        if pl.in_padding((oh, ow), (kh, kw)) {
                            padded += 1;
                        }
                        if let (Some(ih), Some(iw)) = (pl.row(oh, kh), pl.col(ow, kw)) {
                            let v = xi[ih * pl.iw + iw];
                            max = max.max(v);
                            sum += v;
                            real += 1;
                        }
                    }
                }
                y.push(match p.kind {
                    PoolKind::Max => max,
                    PoolKind::Average { count_include_pad } => {
                        let count = if count_include_pad { padded } else { real };
                        sum / count.max(1) as f32
                    }
                });
            }
        }
    }
    Tensor::from_f32(out_shape, y)
}

pub fn global_pool(kind: GlobalPool, x: &Tensor) -> OpResult<Tensor> {
    let shape = x.shape();
    let plane = numel(&shape[2..]);
    let y = x
        .f32s()?
        .chunks(plane.max(1))
        .map(|c| match kind {
            GlobalPool::Max => c.iter().copied().fold(f32::NEG_INFINITY, f32::max),
            GlobalPool::Average => c.iter().sum::<f32>() / plane as f32,
        })
        .collect();
    let mut out = shape.to_vec();
    out[2..].iter_mut().for_each(|d| *d = 1);
    Tensor::from_f32(out, y)
}

/// The flat index of each window's first (or last) maximum; see [`PoolIndices`].
pub fn pool_indices(p: &PoolIndices, x: &Tensor) -> OpResult<Tensor> {
    let g = p.pool.geometry(x.shape())?;
    let pl = Plane::new(&g)?;
    let xs = x.f32s()?;
    let planes = x.shape()[0] * x.shape()[1];
    let mut out_shape = x.shape()[..2].to_vec();
    out_shape.extend(&g.output);
    let in_plane = pl.ih * pl.iw;
    let mut y = Vec::with_capacity(numel(&out_shape));
    for plane in 0..planes {
        let xi = &xs[plane * in_plane..][..in_plane];
        for oh in 0..pl.oh {
            for ow in 0..pl.ow {
                let taps = (0..pl.kh).flat_map(|kh| (0..pl.kw).map(move |kw| (kh, kw)));
                let real =
                    taps.filter_map(|(kh, kw)| Some(pl.row(oh, kh)? * pl.iw + pl.col(ow, kw)?));
                let best = best_tap(xi, real, p.last);
                y.push(best.map_or(-1, |t| {
                    let t = if p.column_major {
                        (t % pl.iw) * pl.ih + t / pl.iw
                    } else {
                        t
                    };
                    let offset = if p.whole_tensor { plane * in_plane } else { 0 };
                    (offset + t) as i64
                }));
            }
        }
    }
    Tensor::from_i64(out_shape, y)
}
