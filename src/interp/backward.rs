//! The adjoint ops and LRP point-wise helpers, as plain loops.

use super::linear::conv_rows;
use super::movement::slice_sources;
use crate::error::OpResult;
use crate::ir::ops::pool::best_tap;
use crate::ir::ops::{
    ActivationGrad, ConvTranspose, GlobalPool, GlobalPoolBackward, Plane, Pointwise, PoolBackward,
    PoolKind, SliceBackward,
};
use crate::ir::{Tensor, numel};
use crate::op_ensure;

/// dx[n, ic, ih, iw] = sum over the (oc, kh, kw) that read it of w[oc, ic, kh, kw] dy[n, oc, oh, ow]:
/// Conv's taps with the roles of x and y swapped.
pub fn conv_transpose(
    c: &ConvTranspose,
    dy: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
) -> OpResult<Tensor> {
    let (dys, ws) = (dy.f32s()?, w.f32s()?);
    let mut dx = vec![0f32; numel(&c.input_shape)];
    let g = c.conv.geometry(&c.input_shape, w.shape())?;
    let mut y_shape = vec![c.input_shape[0], w.shape()[0]];
    y_shape.extend(&g.output);
    op_ensure!(
        dy.shape() == y_shape.as_slice(),
        "gradient has shape {:?}, the Conv output is {y_shape:?}",
        dy.shape()
    );
    conv_rows(&c.conv, &c.input_shape, w.shape(), |r| {
        let wv = ws[r.w];
        for (k, &d) in dys[r.y..r.y + r.len].iter().enumerate() {
            dx[r.x + k * r.step] += wv * d;
        }
    })?;
    if let Some(b) = bias {
        let b = b.f32s()?;
        let channels = c.input_shape.get(1).copied().unwrap_or(1).max(1);
        op_ensure!(
            b.len() == channels,
            "bias has {} values for {channels} channels",
            b.len()
        );
        let inner = numel(&c.input_shape[2.min(c.input_shape.len())..]).max(1);
        for (i, v) in dx.iter_mut().enumerate() {
            *v += b[(i / inner) % channels];
        }
    }
    Tensor::from_f32(c.input_shape.clone(), dx)
}

pub fn pool_backward(b: &PoolBackward, x: &Tensor, dy: &Tensor) -> OpResult<Tensor> {
    let g = b.pool.geometry(x.shape())?;
    let pl = Plane::new(&g)?;
    let (xs, dys) = (x.f32s()?, dy.f32s()?);
    let planes = x.shape()[0] * x.shape()[1];
    let mut dx = vec![0f32; xs.len()];
    for plane in 0..planes {
        let xi = &xs[plane * pl.ih * pl.iw..][..pl.ih * pl.iw];
        let dxi = &mut dx[plane * pl.ih * pl.iw..][..pl.ih * pl.iw];
        for oh in 0..pl.oh {
            for ow in 0..pl.ow {
                let d = dys[(plane * pl.oh + oh) * pl.ow + ow];
                let window: Vec<usize> = (0..pl.kh)
                    .flat_map(|kh| (0..pl.kw).map(move |kw| (kh, kw)))
                    .filter_map(|(kh, kw)| Some(pl.row(oh, kh)? * pl.iw + pl.col(ow, kw)?))
                    .collect();
                match b.pool.kind {
                    PoolKind::Max => {
                        // The first maximum in scan order wins, as in PyTorch's max_pool backward.
                        if let Some(i) = best_tap(xi, window.iter().copied(), false) {
                            dxi[i] += d;
                        }
                    }
                    PoolKind::Average { count_include_pad } => {
                        let count = if count_include_pad {
                            padded_count(&pl, oh, ow)
                        } else {
                            window.len()
                        };
                        for &i in &window {
                            dxi[i] += d / count.max(1) as f32;
                        }
                    }
                }
            }
        }
    }
    Tensor::from_f32(x.shape().to_vec(), dx)
}

/// Window positions inside input + explicit padding (the divisor with count_include_pad).
fn padded_count(pl: &Plane, oh: usize, ow: usize) -> usize {
    (0..pl.kh)
        .flat_map(|kh| (0..pl.kw).map(move |kw| (kh, kw)))
        .filter(|&tap| pl.in_padding((oh, ow), tap))
        .count()
}

pub fn global_pool_backward(b: &GlobalPoolBackward, x: &Tensor, dy: &Tensor) -> OpResult<Tensor> {
    let plane = numel(&x.shape()[2..]);
    let (xs, dys) = (x.f32s()?, dy.f32s()?);
    let mut dx = vec![0f32; xs.len()];
    for (p, &d) in dys.iter().enumerate() {
        let xi = &xs[p * plane..][..plane];
        let dxi = &mut dx[p * plane..][..plane];
        match b.pool {
            GlobalPool::Average => dxi.iter_mut().for_each(|v| *v = d / plane as f32),
            GlobalPool::Max => {
                let mut best = 0;
                for (i, &v) in xi.iter().enumerate() {
                    if v > xi[best] {
                        best = i;
                    }
                }
                dxi[best] = d;
            }
        }
    }
    Tensor::from_f32(x.shape().to_vec(), dx)
}

pub fn slice_backward(s: &SliceBackward, dy: &Tensor) -> OpResult<Tensor> {
    let (_, index) = slice_sources(&s.slice, &s.input_shape)?;
    let dys = dy.f32s()?;
    op_ensure!(
        dys.len() == index.len(),
        "gradient has {} values, the slice {}",
        dys.len(),
        index.len()
    );
    let mut dx = vec![0f32; numel(&s.input_shape)];
    for (&i, &d) in index.iter().zip(dys) {
        dx[i] += d;
    }
    Tensor::from_f32(s.input_shape.clone(), dx)
}

pub fn activation_grad(a: &ActivationGrad, x: &Tensor, dy: &Tensor) -> OpResult<Tensor> {
    let v = x
        .f32s()?
        .iter()
        .zip(dy.f32s()?)
        .map(|(&x, &d)| d * a.derivative(x))
        .collect();
    Tensor::from_f32(x.shape().to_vec(), v)
}

pub fn pointwise(p: Pointwise, x: &Tensor) -> OpResult<Tensor> {
    let v = x.f32s()?.iter().map(|&v| p.apply(v)).collect();
    Tensor::from_f32(x.shape().to_vec(), v)
}
