//! Conv, Gemm and MatMul, written as plain loops.

use super::elementwise::broadcast_map;
use crate::error::OpResult;
use crate::ir::ops::gemm::{MatMulDims, matmul_dims};
use crate::ir::ops::{Conv, Gemm, Plane};
use crate::ir::{Tensor, numel};

/// Calls `tap(x_index, y_index, w_index)` for every multiply-add of a convolution of an input
/// of shape `x` with a weight of shape `w`: flat indices into x, y and w. Conv and its adjoint are
/// the same taps read in opposite directions.
pub fn conv_taps(
    c: &Conv,
    x: &[usize],
    w: &[usize],
    mut tap: impl FnMut(usize, usize, usize),
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
                        for oh in 0..p.oh {
                            let Some(ih) = p.row(oh, kh) else { continue };
                            for ow in 0..p.ow {
                                if let Some(iw) = p.col(ow, kw) {
                                    tap(x0 + ih * p.iw + iw, y0 + oh * p.ow + ow, wi);
                                }
                            }
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
    // The taps in conv_taps' order (so every output sums its terms in the same order), with the
    // output columns of one (row, tap) done as one slice operation: constant folding runs the
    // z-box rule's bound convolutions through here at full image size.
    let p = Plane::new(&g)?;
    let (n, cin, cout) = (x.shape()[0], x.shape()[1], w.shape()[0]);
    let (cin_g, cout_g) = (cin / c.group, cout / c.group);
    let (plane_in, plane_out) = (p.ih * p.iw, p.oh * p.ow);
    for ni in 0..n {
        for oc in 0..cout {
            let y0 = (ni * cout + oc) * plane_out;
            for icg in 0..cin_g {
                let x0 = (ni * cin + (oc / cout_g) * cin_g + icg) * plane_in;
                for kh in 0..p.kh {
                    for kw in 0..p.kw {
                        let wv = ws[((oc * cin_g + icg) * p.kh + kh) * p.kw + kw];
                        // Output columns whose input column is inside the image.
                        let lo = (0..p.ow).find(|&o| p.col(o, kw).is_some());
                        let Some(lo) = lo else { continue };
                        let hi = (lo..p.ow).take_while(|&o| p.col(o, kw).is_some()).count() + lo;
                        let first = p.col(lo, kw).unwrap_or(0);
                        for oh in 0..p.oh {
                            let Some(ih) = p.row(oh, kh) else { continue };
                            let row = &mut y[y0 + oh * p.ow..][lo..hi];
                            let xr = &xs[x0 + ih * p.iw + first..];
                            if p.sw == 1 {
                                for (o, &v) in row.iter_mut().zip(xr) {
                                    *o += wv * v;
                                }
                            } else {
                                for (o, v) in row.iter_mut().zip(xr.iter().step_by(p.sw)) {
                                    *o += wv * v;
                                }
                            }
                        }
                    }
                }
            }
        }
    }
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
