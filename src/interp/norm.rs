//! BatchNormalization, LRN, Softmax.

use crate::error::OpResult;
use crate::ir::ops::util::norm_axis;
use crate::ir::ops::{BatchNorm, Lrn, LrnBackward, Softmax};
use crate::ir::{Tensor, numel};

pub fn batch_norm(b: &BatchNorm, inputs: &[&Tensor]) -> OpResult<Tensor> {
    let x = inputs[0];
    let (scale, bias, mean, var) = (
        inputs[1].f32s()?,
        inputs[2].f32s()?,
        inputs[3].f32s()?,
        inputs[4].f32s()?,
    );
    let c = x.shape()[1];
    let inner = numel(&x.shape()[2..]);
    let y = x
        .f32s()?
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let ch = (i / inner) % c;
            (v - mean[ch]) / (var[ch] + b.epsilon).sqrt() * scale[ch] + bias[ch]
        })
        .collect();
    Tensor::from_f32(x.shape().to_vec(), y)
}

pub fn lrn(l: &Lrn, x: &Tensor) -> OpResult<Tensor> {
    let mut y = vec![0.0; x.len()];
    lrn_into(l, x.shape(), x.f32s()?, &mut y);
    Tensor::from_f32(x.shape().to_vec(), y)
}

/// LRN over slices (`s` is the input shape, N x C x ...); the compiled runtime calls this too.
pub fn lrn_into(l: &Lrn, s: &[usize], xs: &[f32], y: &mut [f32]) {
    let (n, c, inner) = (s[0], s[1], numel(&s[2..]));
    // ONNX: channels c - floor((size-1)/2) ..= c + ceil((size-1)/2), clipped to the range.
    let (below, above) = ((l.size - 1) / 2, (l.size - 1).div_ceil(2));
    for ni in 0..n {
        for ci in 0..c {
            let lo = ci.saturating_sub(below);
            let hi = (ci + above).min(c - 1);
            for p in 0..inner {
                let at = |ch: usize| xs[(ni * c + ch) * inner + p];
                let sq: f32 = (lo..=hi).map(|ch| at(ch) * at(ch)).sum();
                y[(ni * c + ci) * inner + p] =
                    at(ci) / (l.bias + l.alpha / l.size as f32 * sq).powf(l.beta);
            }
        }
    }
}

pub fn softmax(sm: &Softmax, x: &Tensor) -> OpResult<Tensor> {
    let mut y = vec![0.0; x.len()];
    softmax_into(sm, x.shape(), x.f32s()?, &mut y)?;
    Tensor::from_f32(x.shape().to_vec(), y)
}

/// Softmax over slices (`s` is the input shape); the compiled runtime calls this too.
pub fn softmax_into(sm: &Softmax, s: &[usize], xs: &[f32], y: &mut [f32]) -> OpResult<()> {
    let a = norm_axis(sm.axis, s.len())?;
    // (outer, len, inner): softmax runs over `len` values spaced `inner` apart.
    let (outer, len, inner) = if sm.coerce_2d {
        (numel(&s[..a]), numel(&s[a..]), 1)
    } else {
        (numel(&s[..a]), s[a], numel(&s[a + 1..]))
    };
    for o in 0..outer {
        for i in 0..inner {
            let idx = |k: usize| (o * len + k) * inner + i;
            let max = (0..len)
                .map(|k| xs[idx(k)])
                .fold(f32::NEG_INFINITY, f32::max);
            let total: f32 = (0..len).map(|k| (xs[idx(k)] - max).exp()).sum();
            for k in 0..len {
                y[idx(k)] = (xs[idx(k)] - max).exp() / total;
            }
        }
    }
    Ok(())
}

pub fn lrn_backward(b: &LrnBackward, x: &Tensor, dy: &Tensor) -> OpResult<Tensor> {
    let mut dx = vec![0.0; x.len()];
    lrn_backward_into(&b.lrn, x.shape(), x.f32s()?, dy.f32s()?, &mut dx);
    Tensor::from_f32(x.shape().to_vec(), dx)
}

/// LRN's adjoint over slices (`dx` is overwritten); the compiled runtime calls this too.
pub fn lrn_backward_into(l: &Lrn, s: &[usize], xs: &[f32], dys: &[f32], dx: &mut [f32]) {
    let (n, c, inner) = (s[0], s[1], numel(&s[2..]));
    let (below, above) = ((l.size - 1) / 2, (l.size - 1).div_ceil(2));
    let window = |ci: usize| ci.saturating_sub(below)..=(ci + above).min(c - 1);
    let k = l.alpha / l.size as f32;
    dx.fill(0.0);
    for ni in 0..n {
        for p in 0..inner {
            let at = |ch: usize| (ni * c + ch) * inner + p;
            let d: Vec<f32> = (0..c)
                .map(|ci| l.bias + k * window(ci).map(|j| xs[at(j)] * xs[at(j)]).sum::<f32>())
                .collect();
            for ci in 0..c {
                // Output c reads every j in its window: route its gradient back to each.
                let common = dys[at(ci)] * xs[at(ci)] * d[ci].powf(-l.beta - 1.0);
                for j in window(ci) {
                    dx[at(j)] -= 2.0 * k * l.beta * xs[at(j)] * common;
                }
                dx[at(ci)] += dys[at(ci)] * d[ci].powf(-l.beta);
            }
        }
    }
}
