//! GEMM-shaped work on the `gemm` crate: Conv as im2col + GEMM (a 1x1, stride-1, unpadded Conv
//! multiplies the input directly), its adjoint as the transposed GEMM + col2im, Gemm and batched
//! MatMul. Operands are described by strides, so transposed weights are never copied. The data
//! movement around the GEMM (im2col, col2im, bias fill) is memory-bound Rust here: it shares the
//! GEMM's rayon pool and runs over whole rows with `copy_from_slice`.

use rayon::prelude::*;

use crate::ir::ops::Plane;

/// Below this many multiply-adds a GEMM runs on the calling thread.
const PARALLEL_FLOPS: usize = 1 << 18;

/// A strided matrix view: element (i, j) at `data[i * rs + j * cs]`.
#[derive(Clone, Copy, Debug)]
pub struct View<'a> {
    pub data: &'a [f32],
    pub rs: usize,
    pub cs: usize,
}

/// dst[m, n] (row-major) = (accumulate ? dst : 0) + lhs[m, k] * rhs[k, n].
///
/// Panics if a view does not cover the elements it addresses (lowering sizes every buffer, so
/// this is an internal invariant, checked here because the call below is unchecked).
pub fn matmul(
    threads: usize,
    (m, k, n): (usize, usize, usize),
    dst: &mut [f32],
    accumulate: bool,
    lhs: View,
    rhs: View,
    scale: f32,
) {
    if m == 0 || n == 0 {
        return;
    }
    let covers = |v: &View, rows: usize, cols: usize| {
        rows == 0 || cols == 0 || (rows - 1) * v.rs + (cols - 1) * v.cs < v.data.len()
    };
    assert!(dst.len() >= m * n, "GEMM destination too small");
    assert!(
        covers(&lhs, m, k) && covers(&rhs, k, n),
        "GEMM operand too small"
    );
    if k == 0 {
        if !accumulate {
            dst[..m * n].fill(0.0);
        }
        return;
    }
    let par = if threads > 1 && m * n * k >= PARALLEL_FLOPS {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the asserts above show every (i, j) the GEMM addresses, i < m, j < n (dst), i < m,
    // p < k (lhs) and p < k, j < n (rhs), lies inside its slice; dst is a unique borrow, so it
    // overlaps neither operand.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            lhs.data.as_ptr(),
            lhs.cs as isize,
            lhs.rs as isize,
            rhs.data.as_ptr(),
            rhs.cs as isize,
            rhs.rs as isize,
            1.0,
            scale,
            false,
            false,
            false,
            par,
        )
    }
}

/// The geometry of one Conv (or its adjoint) as GEMMs.
#[derive(Clone, Copy, Debug)]
pub struct ConvGemm {
    pub batch: usize,
    pub cin: usize,
    pub cout: usize,
    pub group: usize,
    pub plane: Plane,
}

impl ConvGemm {
    fn cin_g(&self) -> usize {
        self.cin / self.group
    }
    fn cout_g(&self) -> usize {
        self.cout / self.group
    }
    fn taps(&self) -> usize {
        self.plane.kh * self.plane.kw
    }
    /// Rows of the im2col matrix (one group's reduction length).
    pub fn k(&self) -> usize {
        self.cin_g() * self.taps()
    }
    fn in_plane(&self) -> usize {
        self.plane.ih * self.plane.iw
    }
    fn out_plane(&self) -> usize {
        self.plane.oh * self.plane.ow
    }
    /// Whether the input itself is the im2col matrix (1x1 kernel, stride 1, no padding).
    pub fn direct(&self) -> bool {
        let p = &self.plane;
        p.kh == 1
            && p.kw == 1
            && p.sh == 1
            && p.sw == 1
            && p.pt == 0
            && p.pl == 0
            && p.pb == 0
            && p.pr == 0
    }
    /// Length of the im2col scratch buffer (0 when direct).
    pub fn col_len(&self) -> usize {
        if self.direct() {
            0
        } else {
            self.k() * self.out_plane()
        }
    }

    /// y = conv(x, w) + bias.
    pub fn forward(
        &self,
        threads: usize,
        x: &[f32],
        w: &[f32],
        bias: Option<&[f32]>,
        y: &mut [f32],
        col: &mut [f32],
    ) {
        let (k, p, mg, cg) = (self.k(), self.out_plane(), self.cout_g(), self.cin_g());
        for n in 0..self.batch {
            for g in 0..self.group {
                let xs = &x[(n * self.cin + g * cg) * self.in_plane()..][..cg * self.in_plane()];
                let rhs: &[f32] = if self.direct() {
                    xs
                } else {
                    self.im2col(xs, &mut col[..k * p]);
                    &col[..k * p]
                };
                let dst = &mut y[(n * self.cout + g * mg) * p..][..mg * p];
                if let Some(b) = bias {
                    for (row, &v) in dst.chunks_mut(p).zip(&b[g * mg..][..mg]) {
                        row.fill(v);
                    }
                }
                let lhs = View {
                    data: &w[g * mg * k..][..mg * k],
                    rs: k,
                    cs: 1,
                };
                let rhs = View {
                    data: rhs,
                    rs: p,
                    cs: 1,
                };
                matmul(threads, (mg, k, p), dst, bias.is_some(), lhs, rhs, 1.0);
            }
        }
    }

    /// dx = conv^T(dy, w): the transposed GEMM, then col2im.
    pub fn backward(&self, threads: usize, dy: &[f32], w: &[f32], dx: &mut [f32], col: &mut [f32]) {
        let (k, p, mg, cg) = (self.k(), self.out_plane(), self.cout_g(), self.cin_g());
        for n in 0..self.batch {
            for g in 0..self.group {
                let lhs = View {
                    data: &w[g * mg * k..][..mg * k],
                    rs: 1,
                    cs: k,
                };
                let rhs = View {
                    data: &dy[(n * self.cout + g * mg) * p..][..mg * p],
                    rs: p,
                    cs: 1,
                };
                let dxs =
                    &mut dx[(n * self.cin + g * cg) * self.in_plane()..][..cg * self.in_plane()];
                if self.direct() {
                    matmul(threads, (k, mg, p), dxs, false, lhs, rhs, 1.0);
                } else {
                    matmul(threads, (k, mg, p), &mut col[..k * p], false, lhs, rhs, 1.0);
                    self.col2im(&col[..k * p], dxs);
                }
            }
        }
    }

    /// For kernel column `kw`: the output columns whose input column is inside the image, and
    /// the input column of output column 0 (possibly negative).
    fn columns(&self, kw: usize) -> (usize, usize, isize) {
        let p = &self.plane;
        let off = (kw * p.dw) as isize - p.pl as isize;
        let (sw, iw, ow) = (p.sw as isize, p.iw as isize, p.ow as isize);
        let lo = if off >= 0 { 0 } else { (-off + sw - 1) / sw };
        let hi = if iw - off <= 0 {
            0
        } else {
            ((iw - off + sw - 1) / sw).min(ow)
        };
        (lo.min(ow) as usize, hi.max(lo.min(ow)) as usize, off)
    }

    /// col[(c, kh, kw), (oh, ow)] = x[c, oh * sh + kh * dh - pt, ow * sw + kw * dw - pl] or 0.
    fn im2col(&self, x: &[f32], col: &mut [f32]) {
        let p = self.plane;
        let (taps, in_plane, out_plane) = (self.taps(), self.in_plane(), self.out_plane());
        col.par_chunks_mut(out_plane)
            .enumerate()
            .for_each(|(r, row)| {
                let (c, kh, kw) = (r / taps, (r % taps) / p.kw, r % p.kw);
                let xc = &x[c * in_plane..][..in_plane];
                let (lo, hi, off) = self.columns(kw);
                for (oh, out) in row.chunks_mut(p.ow).enumerate() {
                    let Some(ih) = p.row(oh, kh) else {
                        out.fill(0.0);
                        continue;
                    };
                    let xr = &xc[ih * p.iw..][..p.iw];
                    out[..lo].fill(0.0);
                    out[hi..].fill(0.0);
                    let start = (lo as isize * p.sw as isize + off) as usize;
                    if p.sw == 1 {
                        out[lo..hi].copy_from_slice(&xr[start..start + hi - lo]);
                    } else {
                        for (o, v) in out[lo..hi].iter_mut().enumerate() {
                            *v = xr[start + o * p.sw];
                        }
                    }
                }
            });
    }

    /// dx[c, ih, iw] = sum of the col entries im2col would have read from it, channel planes in
    /// parallel and each plane's taps in a fixed order (deterministic).
    fn col2im(&self, col: &[f32], dx: &mut [f32]) {
        let p = self.plane;
        let (taps, in_plane, out_plane) = (self.taps(), self.in_plane(), self.out_plane());
        dx.par_chunks_mut(in_plane)
            .enumerate()
            .for_each(|(c, plane)| {
                plane.fill(0.0);
                for t in 0..taps {
                    let (kh, kw) = (t / p.kw, t % p.kw);
                    let row = &col[(c * taps + t) * out_plane..][..out_plane];
                    let (lo, hi, off) = self.columns(kw);
                    for oh in 0..p.oh {
                        let Some(ih) = p.row(oh, kh) else { continue };
                        let src = &row[oh * p.ow..][..p.ow];
                        let dst = &mut plane[ih * p.iw..][..p.iw];
                        let start = (lo as isize * p.sw as isize + off) as usize;
                        for (o, &v) in src[lo..hi].iter().enumerate() {
                            dst[start + o * p.sw] += v;
                        }
                    }
                }
            });
    }
}
