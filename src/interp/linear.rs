//! Conv, Gemm and MatMul, written as plain loops.

use super::elementwise::broadcast_map;
use crate::error::OpResult;
use crate::ir::ops::gemm::{MatMulDims, matmul_dims};
use crate::ir::ops::{Conv, Gemm, Plane};
use crate::ir::{Tensor, numel};

/// One run of multiply-adds of a convolution: for k in 0..len, output `y + k` reads input
/// `x + k * step` through weight `w` (flat indices into x, y and w).
#[derive(Clone, Copy, Debug)]
pub struct TapRow {
    pub x: usize,
    pub step: usize,
    pub y: usize,
    pub len: usize,
    pub w: usize,
}

/// Calls `row` for every run of multiply-adds of a convolution of an input of shape `x` with a
/// weight of shape `w`, in a fixed order: image, output channel, input channel, kernel row,
/// kernel column, output row, with a run over the output columns whose input is inside the
/// image. Conv and its adjoint are the same taps read in opposite directions; both sum every
/// output's terms in this order.
pub fn conv_rows(
    c: &Conv,
    x: &[usize],
    w: &[usize],
    mut row: impl FnMut(TapRow),
) -> OpResult<Vec<usize>> {
    let g = c.geometry(x, w)?;
    let p = Plane::new(&g)?;
    let (n, cin, cout) = (x[0], x[1], w[0]);
    let (cin_g, cout_g) = (cin / c.group, cout / c.group);
    let (plane_in, plane_out) = (p.ih * p.iw, p.oh * p.ow);
    for ni in 0..n {
        for oc in 0..cout {
            let y0 = (ni * cout + oc) * plane_out;
            for icg in 0..cin_g {
                let x0 = (ni * cin + (oc / cout_g) * cin_g + icg) * plane_in;
                for kh in 0..p.kh {
                    for kw in 0..p.kw {
                        let wi = ((oc * cin_g + icg) * p.kh + kh) * p.kw + kw;
                        // The valid output columns are one run (the input column grows with it).
                        let Some(lo) = (0..p.ow).find(|&o| p.col(o, kw).is_some()) else {
                            continue;
                        };
                        let len = (lo..p.ow).take_while(|&o| p.col(o, kw).is_some()).count();
                        let first = p.col(lo, kw).unwrap_or(0);
                        for oh in 0..p.oh {
                            let Some(ih) = p.row(oh, kh) else { continue };
                            row(TapRow {
                                x: x0 + ih * p.iw + first,
                                step: p.sw,
                                y: y0 + oh * p.ow + lo,
                                len,
                                w: wi,
                            });
                        }
                    }
                }
            }
        }
    }
    let mut out = vec![n, cout];
    out.extend(&g.output);
    Ok(out)
}

pub fn conv(c: &Conv, x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> OpResult<Tensor> {
    let (xs, ws) = (x.f32s()?, w.f32s()?);
    let g = c.geometry(x.shape(), w.shape())?;
    let mut out_shape = vec![x.shape()[0], w.shape()[0]];
    out_shape.extend(&g.output);
    let mut y = vec![0f32; numel(&out_shape)];
    if let Some(b) = b {
        let (bs, plane) = (b.f32s()?, numel(&g.output));
        for (i, v) in y.iter_mut().enumerate() {
            *v = bs[(i / plane) % bs.len()];
        }
    }
    conv_rows(c, x.shape(), w.shape(), |r| {
        let wv = ws[r.w];
        let out = &mut y[r.y..r.y + r.len];
        if r.step == 1 {
            // Contiguous: a loop the compiler vectorises.
            for (o, v) in out.iter_mut().zip(&xs[r.x..r.x + r.len]) {
                *o += wv * v;
            }
        } else {
            for (o, v) in out.iter_mut().zip(xs[r.x..].iter().step_by(r.step)) {
                *o += wv * v;
            }
        }
    })?;
    Tensor::from_f32(out_shape, y)
}

/// C[m, n] += A[m, k] B[k, n] over row-major slices.
fn matmul_into(a: &[f32], b: &[f32], c: &mut [f32], m: usize, k: usize, n: usize) {
    for i in 0..m {
        for p in 0..k {
            let av = a[i * k + p];
            let row = &b[p * n..][..n];
            for (cv, &bv) in c[i * n..][..n].iter_mut().zip(row) {
                *cv += av * bv;
            }
        }
    }
}

fn transpose2(v: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0.0; v.len()];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = v[r * cols + c];
        }
    }
    t
}

pub fn gemm(g: &Gemm, a: &Tensor, b: &Tensor, c: Option<&Tensor>) -> OpResult<Tensor> {
    let (m, k, n) = g.dims(a.shape(), b.shape())?;
    let av = if g.trans_a {
        transpose2(a.f32s()?, k, m)
    } else {
        a.f32s()?.to_vec()
    };
    let bv = if g.trans_b {
        transpose2(b.f32s()?, n, k)
    } else {
        b.f32s()?.to_vec()
    };
    let mut y = vec![0.0; m * n];
    matmul_into(&av, &bv, &mut y, m, k, n);
    for v in &mut y {
        *v *= g.alpha;
    }
    if let Some(c) = c {
        let map = broadcast_map(c.shape(), &[m, n]);
        let cv = c.f32s()?;
        for (v, &i) in y.iter_mut().zip(&map) {
            *v += g.beta * cv[i];
        }
    }
    Tensor::from_f32(vec![m, n], y)
}

pub fn matmul(a: &Tensor, b: &Tensor) -> OpResult<Tensor> {
    let MatMulDims {
        output: out,
        batch,
        m,
        k,
        n,
    } = matmul_dims(a.shape(), b.shape())?;
    // Promote 1-D operands as numpy does, then broadcast the batch axes.
    let a_shape: Vec<usize> = if a.rank() == 1 {
        vec![1, k]
    } else {
        a.shape().to_vec()
    };
    let b_shape: Vec<usize> = if b.rank() == 1 {
        vec![k, 1]
    } else {
        b.shape().to_vec()
    };
    let map_a = broadcast_map(&a_shape[..a_shape.len() - 2], &batch);
    let map_b = broadcast_map(&b_shape[..b_shape.len() - 2], &batch);
    let (av, bv) = (a.f32s()?, b.f32s()?);
    let mut y = vec![0.0; numel(&batch) * m * n];
    for (bi, (&ia, &ib)) in map_a.iter().zip(&map_b).enumerate() {
        matmul_into(
            &av[ia * m * k..][..m * k],
            &bv[ib * k * n..][..k * n],
            &mut y[bi * m * n..][..m * n],
            m,
            k,
            n,
        );
    }
    Tensor::from_f32(out, y)
}
