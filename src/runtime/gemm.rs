//! GEMM-shaped work on the `gemm` crate: Conv as im2col + GEMM (a 1x1, stride-1, unpadded Conv
//! multiplies the input directly), its adjoint as the transposed GEMM + col2im, Gemm and batched
//! MatMul. Operands are described by strides, so transposed weights are never copied. The data
//! movement around the GEMM (im2col, col2im, bias fill) is memory-bound Rust here: it shares the
//! GEMM's rayon pool and runs over whole rows with `copy_from_slice`.

use rayon::prelude::*;

use super::Shared;
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
        gemm_with(
            (m, k, n),
            (dst.as_mut_ptr(), n, accumulate),
            (lhs.data.as_ptr(), lhs.rs, lhs.cs),
            (rhs.data.as_ptr(), rhs.rs, rhs.cs),
            scale,
            par,
        )
    }
}

/// One single-threaded, unscaled GEMM on raw pointers (a Conv tile): see [`gemm_with`].
///
/// # Safety
/// As for [`gemm_with`].
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_raw(
    dims: (usize, usize, usize),
    dst: *mut f32,
    dst_rs: usize,
    accumulate: bool,
    lhs: (*const f32, usize, usize),
    rhs: (*const f32, usize, usize),
) {
    // SAFETY: forwarded from the caller.
    unsafe {
        gemm_with(
            dims,
            (dst, dst_rs, accumulate),
            lhs,
            rhs,
            1.0,
            gemm::Parallelism::None,
        )
    }
}

/// The one call into the `gemm` crate: dst[i * dst_rs + j] = (accumulate ? dst : 0) + scale *
/// sum_p lhs[i * lrs + p * lcs] rhs[p * rrs + j * rcs], for i < m, j < n, p < k.
///
/// # Safety
/// Every addressed element must lie in memory valid for the access (reads of lhs and rhs,
/// reads and writes of dst), and dst must not overlap lhs or rhs.
unsafe fn gemm_with(
    (m, k, n): (usize, usize, usize),
    (dst, dst_rs, accumulate): (*mut f32, usize, bool),
    (lhs, lrs, lcs): (*const f32, usize, usize),
    (rhs, rrs, rcs): (*const f32, usize, usize),
    scale: f32,
    par: gemm::Parallelism,
) {
    if m == 0 || n == 0 {
        return;
    }
    // SAFETY: forwarded from the caller.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            dst_rs as isize,
            accumulate,
            lhs,
            lcs as isize,
            lrs as isize,
            rhs,
            rcs as isize,
            rrs as isize,
            1.0,
            scale,
            false,
            false,
            false,
            par,
        )
    }
}

/// Output columns (spatial positions) per forward tile, aiming at an im2col tile of ~1 MB.
const TILE_FLOATS: usize = 1 << 16;
/// Below this many output positions per image, a Conv splits its output channels over threads
/// instead of its positions.
const TILE_MIN_POSITIONS: usize = 1024;

/// How a Conv's work is split over threads (chosen at compile time from the shapes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    /// Tiles of `cols` output positions per (image, group), each its own im2col + GEMM.
    Positions { cols: usize },
    /// One im2col per (image, group), output channels split over the threads.
    Channels,
    /// Small planes: `images` images of one group side by side in one im2col + GEMM (their
    /// columns concatenated), the result copied to each image's place; a tiny per-image GEMM
    /// would cost more in call overhead than in arithmetic.
    Images { images: usize },
}

/// Below this many output positions per image, a Conv with a batch runs several images per
/// GEMM ([`Split::Images`]).
const SMALL_PLANE: usize = 256;

/// The shapes of one Conv (or its adjoint): what lowering decides and an artifact stores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvShape {
    pub batch: usize,
    pub cin: usize,
    pub cout: usize,
    pub group: usize,
    pub plane: Plane,
}

impl ConvShape {
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
            && p.depth.k == 1
            && p.depth.s == 1
            && p.depth.pb == 0
            && p.depth.pe == 0
    }

    /// Multiply-adds of the Conv (its adjoint has as many).
    pub fn multiply_adds(&self) -> usize {
        let p = &self.plane;
        self.batch * self.cout * p.oh * p.ow * (self.cin / self.group.max(1)) * p.kh * p.kw
    }
}

/// The geometry of one Conv (or its adjoint) as GEMMs, tiled for a number of threads.
#[derive(Clone, Copy, Debug)]
pub struct ConvGemm {
    pub batch: usize,
    pub cin: usize,
    pub cout: usize,
    pub group: usize,
    pub plane: Plane,
    pub threads: usize,
    pub split: Split,
}

impl ConvGemm {
    /// Chooses the split for `threads` workers.
    pub fn new(shape: ConvShape, threads: usize) -> ConvGemm {
        let ConvShape {
            batch,
            cin,
            cout,
            group,
            plane,
        } = shape;
        let mut c = ConvGemm {
            batch,
            cin,
            cout,
            group,
            plane,
            threads: threads.max(1),
            split: Split::Channels,
        };
        let p = c.out_plane();
        let images = batch * group;
        if p < SMALL_PLANE && batch >= 2 {
            // As many images as fill a col tile, but enough tiles for every thread.
            let by_memory = (TILE_FLOATS / c.k().max(1)).max(64) / p.max(1);
            let by_threads = batch.div_ceil(2 * c.threads);
            let ni = by_memory.min(by_threads).min(batch);
            if ni >= 2 {
                c.split = Split::Images { images: ni };
                return c;
            }
        }
        if p >= TILE_MIN_POSITIONS || images >= 2 * c.threads || c.threads == 1 {
            let cols = (TILE_FLOATS / c.k().max(1)).max(64).min(p.max(1));
            let cols = if cols < p {
                cols.next_multiple_of(16).min(p)
            } else {
                p
            };
            c.split = Split::Positions { cols };
        }
        c
    }

    /// The shapes this tiling was made for.
    pub fn shape(&self) -> ConvShape {
        ConvShape {
            batch: self.batch,
            cin: self.cin,
            cout: self.cout,
            group: self.group,
            plane: self.plane,
        }
    }

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
        self.shape().direct()
    }

    /// Scratch floats the forward pass needs (im2col tiles, one per thread).
    pub fn forward_scratch(&self) -> usize {
        match (self.direct(), self.split) {
            // Side by side needs the copy even for a 1x1 kernel: images are not adjacent.
            (_, Split::Images { images }) => {
                self.threads * (self.k() + self.cout_g()) * images * self.out_plane()
            }
            (true, _) => 0,
            (false, Split::Positions { cols }) => self.threads * self.k() * cols,
            (false, Split::Channels) => self.k() * self.out_plane(),
        }
    }

    /// Input channels per adjoint tile: a col tile of at most ~4 MB, and at least two tiles per
    /// thread when the batch and groups alone do not give them.
    fn adjoint_channels(&self) -> usize {
        let per_channel = self.taps() * self.out_plane();
        let cg = self.cin_g().max(1);
        let by_memory = (4 * TILE_FLOATS) / per_channel.max(1);
        let images = self.batch * self.group;
        let by_threads = if images >= 2 * self.threads {
            cg
        } else {
            cg.div_ceil(2 * self.threads)
        };
        by_memory.min(by_threads).clamp(1, cg)
    }

    /// Scratch floats the adjoint needs (col tiles of whole channels, one per thread).
    pub fn backward_scratch(&self) -> usize {
        if self.direct() {
            0
        } else {
            self.threads * self.adjoint_channels() * self.taps() * self.out_plane()
        }
    }

    /// The scratch slot of the calling worker (each worker runs one tile at a time: tiles
    /// call nothing that yields to rayon).
    fn slot(&self) -> usize {
        rayon::current_thread_index().unwrap_or(0) % self.threads
    }

    /// y = conv(x, w) + bias.
    pub fn forward(
        &self,
        x: &[f32],
        w: &[f32],
        bias: Option<&[f32]>,
        y: &mut [f32],
        scratch: &mut [f32],
    ) {
        let (k, p, mg, cg) = (self.k(), self.out_plane(), self.cout_g(), self.cin_g());
        assert!(
            x.len() >= self.batch * self.cin * self.in_plane()
                && w.len() >= self.cout * k
                && y.len() >= self.batch * self.cout * p
                && bias.is_none_or(|b| b.len() >= self.cout)
                && scratch.len() >= self.forward_scratch(),
            "Conv operands do not match the compiled geometry"
        );
        let (yp, sp) = (Shared(y.as_mut_ptr()), Shared(scratch.as_mut_ptr()));
        match self.split {
            Split::Positions { cols } => {
                let per_image = p.div_ceil(cols);
                let tiles = self.batch * self.group * per_image;
                (0..tiles).into_par_iter().for_each(|t| {
                    let (image, tile) = (t / per_image, t % per_image);
                    let (n, g) = (image / self.group, image % self.group);
                    let (p0, p1) = (tile * cols, ((tile + 1) * cols).min(p));
                    let xs =
                        &x[(n * self.cin + g * cg) * self.in_plane()..][..cg * self.in_plane()];
                    let (rhs, rrs) = if self.direct() {
                        (xs[p0..].as_ptr(), p)
                    } else {
                        let col = sp.get().wrapping_add(self.slot() * k * cols);
                        // SAFETY: slot `slot()` of the scratch (k * cols floats, inside the
                        // asserted length) belongs to this worker for the tile's duration.
                        let col = unsafe { std::slice::from_raw_parts_mut(col, k * (p1 - p0)) };
                        self.im2col(xs, col, p0, p1);
                        (col.as_ptr(), p1 - p0)
                    };
                    let dst = yp.get().wrapping_add((n * self.cout + g * mg) * p + p0);
                    if let Some(b) = bias {
                        for (r, &v) in b[g * mg..][..mg].iter().enumerate() {
                            // SAFETY: row r of the tile: columns p0..p1 of output row r,
                            // inside y (asserted) and written by this tile only.
                            let row =
                                unsafe { std::slice::from_raw_parts_mut(dst.add(r * p), p1 - p0) };
                            row.fill(v);
                        }
                    }
                    // SAFETY: W_g is mg x k inside w; the rhs tile is k x (p1 - p0) inside x or
                    // the worker's scratch slot; the dst tile is mg rows of p1 - p0 columns at
                    // row stride p inside y, disjoint from other tiles and from the operands.
                    unsafe {
                        gemm_raw(
                            (mg, k, p1 - p0),
                            dst,
                            p,
                            bias.is_some(),
                            (w[g * mg * k..].as_ptr(), k, 1),
                            (rhs, rrs, 1),
                        )
                    }
                });
            }
            Split::Images { images: ni } => {
                let ni = ni.max(1);
                let per_slot = (k + mg) * ni * p;
                let tiles = self.batch.div_ceil(ni) * self.group;
                (0..tiles).into_par_iter().for_each(|t| {
                    let (chunk, g) = (t / self.group, t % self.group);
                    let (n0, n1) = (chunk * ni, ((chunk + 1) * ni).min(self.batch));
                    let width = (n1 - n0) * p;
                    let slot = sp.get().wrapping_add(self.slot() * per_slot);
                    // SAFETY: slot `slot()` of the scratch (per_slot floats, inside the asserted
                    // length) belongs to this worker for the tile's duration: the first
                    // k * ni * p floats hold the side-by-side im2col, the next mg * ni * p the
                    // GEMM's result.
                    let (col, tmp) = unsafe {
                        (
                            std::slice::from_raw_parts_mut(slot, k * width),
                            std::slice::from_raw_parts_mut(slot.add(k * ni * p), mg * width),
                        )
                    };
                    for (j, n) in (n0..n1).enumerate() {
                        let xs =
                            &x[(n * self.cin + g * cg) * self.in_plane()..][..cg * self.in_plane()];
                        for r in 0..k {
                            self.im2col_row(xs, r, &mut col[r * width + j * p..][..p], 0, p);
                        }
                    }
                    if let Some(b) = bias {
                        for (r, &v) in b[g * mg..][..mg].iter().enumerate() {
                            tmp[r * width..][..width].fill(v);
                        }
                    }
                    // SAFETY: W_g is mg x k inside w; col is k x width and tmp mg x width, both
                    // in this worker's slot, disjoint from each other and from w.
                    unsafe {
                        gemm_raw(
                            (mg, k, width),
                            tmp.as_mut_ptr(),
                            width,
                            bias.is_some(),
                            (w[g * mg * k..].as_ptr(), k, 1),
                            (col.as_ptr(), width, 1),
                        )
                    }
                    for (j, n) in (n0..n1).enumerate() {
                        for r in 0..mg {
                            let dst = yp.get().wrapping_add((n * self.cout + g * mg + r) * p);
                            // SAFETY: output row r of image n and group g (inside y, asserted),
                            // written by this tile only: tiles own disjoint (images, group).
                            let row = unsafe { std::slice::from_raw_parts_mut(dst, p) };
                            row.copy_from_slice(&tmp[r * width + j * p..][..p]);
                        }
                    }
                });
            }
            Split::Channels => {
                let rows = mg.div_ceil(self.threads).next_multiple_of(8).min(mg.max(1));
                for n in 0..self.batch {
                    for g in 0..self.group {
                        let xs =
                            &x[(n * self.cin + g * cg) * self.in_plane()..][..cg * self.in_plane()];
                        let rhs = if self.direct() {
                            xs
                        } else {
                            let col = &mut scratch[..k * p];
                            self.im2col_parallel(xs, col);
                            &*col
                        };
                        let rhs = Shared(rhs.as_ptr());
                        let base = (n * self.cout + g * mg) * p;
                        (0..mg.div_ceil(rows)).into_par_iter().for_each(|b| {
                            let (r0, r1) = (b * rows, ((b + 1) * rows).min(mg));
                            let dst = yp.get().wrapping_add(base + r0 * p);
                            if let Some(bias) = bias {
                                for (r, &v) in bias[g * mg + r0..g * mg + r1].iter().enumerate() {
                                    // SAFETY: output row r0 + r of this image and group.
                                    let row = unsafe {
                                        std::slice::from_raw_parts_mut(dst.add(r * p), p)
                                    };
                                    row.fill(v);
                                }
                            }
                            // SAFETY: rows r0..r1 of W_g and of the output block (disjoint per
                            // b), the whole k x p rhs (read only).
                            unsafe {
                                gemm_raw(
                                    (r1 - r0, k, p),
                                    dst,
                                    p,
                                    bias.is_some(),
                                    (w[(g * mg + r0) * k..].as_ptr(), k, 1),
                                    (rhs.get(), p, 1),
                                )
                            }
                        });
                    }
                }
            }
        }
    }

    /// dx = conv^T(dy, w): per tile of input channels, the transposed GEMM into a col tile,
    /// then col2im into those channels' planes (tiles write disjoint planes: deterministic).
    pub fn backward(&self, dy: &[f32], w: &[f32], dx: &mut [f32], scratch: &mut [f32]) {
        let (k, p, mg, cg, taps) = (
            self.k(),
            self.out_plane(),
            self.cout_g(),
            self.cin_g(),
            self.taps(),
        );
        assert!(
            dy.len() >= self.batch * self.cout * p
                && w.len() >= self.cout * k
                && dx.len() >= self.batch * self.cin * self.in_plane()
                && scratch.len() >= self.backward_scratch(),
            "ConvTranspose operands do not match the compiled geometry"
        );
        if let (true, Split::Positions { cols }) = (self.direct(), self.split) {
            // 1x1, stride 1: dx[:, p0..p1] = W_g^T dy[:, p0..p1], tiles of positions as in the
            // forward pass (every tile is as tall as the input has channels).
            let per_image = p.div_ceil(cols);
            let dxp = Shared(dx.as_mut_ptr());
            (0..self.batch * self.group * per_image)
                .into_par_iter()
                .for_each(|t| {
                    let (image, tile) = (t / per_image, t % per_image);
                    let (n, g) = (image / self.group, image % self.group);
                    let (p0, p1) = (tile * cols, ((tile + 1) * cols).min(p));
                    let dst = dxp.get().wrapping_add((n * self.cin + g * cg) * p + p0);
                    let lhs = (w[g * mg * k..].as_ptr(), 1, k);
                    let rhs = (dy[(n * self.cout + g * mg) * p + p0..].as_ptr(), p, 1);
                    // SAFETY: a direct Conv has k == cg and in_plane == p: the tile is cg rows
                    // of p1 - p0 columns at row stride p inside dx (asserted), written by this
                    // tile only; W_g^T and dy's columns p0..p1 lie inside w and dy.
                    unsafe { gemm_raw((cg, mg, p1 - p0), dst, p, false, lhs, rhs) };
                });
            return;
        }
        let cb = self.adjoint_channels();
        let per_image = cg.div_ceil(cb);
        let (dxp, sp) = (Shared(dx.as_mut_ptr()), Shared(scratch.as_mut_ptr()));
        (0..self.batch * self.group * per_image)
            .into_par_iter()
            .for_each(|t| {
                let (image, tile) = (t / per_image, t % per_image);
                let (n, g) = (image / self.group, image % self.group);
                let (c0, c1) = (tile * cb, ((tile + 1) * cb).min(cg));
                let rows = (c1 - c0) * taps;
                let planes = dxp
                    .get()
                    .wrapping_add((n * self.cin + g * cg + c0) * self.in_plane());
                // SAFETY: the planes of channels c0..c1 of this image and group, inside dx
                // (asserted), written by this tile only.
                let planes =
                    unsafe { std::slice::from_raw_parts_mut(planes, (c1 - c0) * self.in_plane()) };
                let lhs = (w[g * mg * k + c0 * taps..].as_ptr(), 1, k);
                let rhs = (dy[(n * self.cout + g * mg) * p..].as_ptr(), p, 1);
                if self.direct() {
                    // SAFETY: W_g^T rows c0..c1 (column stride k inside w), dy's mg x p block,
                    // and the tile's planes (exactly rows x p floats).
                    unsafe { gemm_raw((rows, mg, p), planes.as_mut_ptr(), p, false, lhs, rhs) };
                } else {
                    let col = sp.get().wrapping_add(self.slot() * cb * taps * p);
                    // SAFETY: the worker's scratch slot (cb * taps * p floats, asserted).
                    let col = unsafe { std::slice::from_raw_parts_mut(col, rows * p) };
                    // SAFETY: as above, into the worker's col tile.
                    unsafe { gemm_raw((rows, mg, p), col.as_mut_ptr(), p, false, lhs, rhs) };
                    self.col2im(col, planes);
                }
            });
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

    /// Columns p0..p1 of im2col: col[(c, kh, kw), p - p0] = x[c, ih, iw] of output position p,
    /// or 0 in the padding. `col` holds k rows of p1 - p0.
    fn im2col(&self, x: &[f32], col: &mut [f32], p0: usize, p1: usize) {
        let width = p1 - p0;
        for (r, row) in col.chunks_mut(width).enumerate() {
            self.im2col_row(x, r, row, p0, p1);
        }
    }

    /// The whole im2col matrix, rows in parallel.
    fn im2col_parallel(&self, x: &[f32], col: &mut [f32]) {
        let p = self.out_plane();
        col.par_chunks_mut(p)
            .enumerate()
            .for_each(|(r, row)| self.im2col_row(x, r, row, 0, p));
    }

    /// Row r = (c, kh, kw) of im2col over output positions p0..p1.
    fn im2col_row(&self, x: &[f32], r: usize, row: &mut [f32], p0: usize, p1: usize) {
        let pl = self.plane;
        let taps = self.taps();
        let (c, kh, kw) = (r / taps, (r % taps) / pl.kw, r % pl.kw);
        let xc = &x[c * self.in_plane()..][..self.in_plane()];
        let (lo, hi, off) = self.columns(kw);
        let mut pos = p0;
        while pos < p1 {
            let (oh, first) = (pos / pl.ow, pos % pl.ow);
            let last = pl.ow.min(first + (p1 - pos));
            let out = &mut row[pos - p0..][..last - first];
            match pl.row(oh, kh) {
                None => out.fill(0.0),
                Some(ih) => {
                    let xr = &xc[ih * pl.iw..][..pl.iw];
                    let (a, b) = (lo.clamp(first, last), hi.clamp(first, last));
                    out[..a - first].fill(0.0);
                    out[b - first..].fill(0.0);
                    if a == b {
                        pos += last - first;
                        continue;
                    }
                    let start = (a as isize * pl.sw as isize + off) as usize;
                    let dst = &mut out[a - first..b - first];
                    if pl.sw == 1 {
                        dst.copy_from_slice(&xr[start..start + (b - a)]);
                    } else {
                        for (o, v) in dst.iter_mut().enumerate() {
                            *v = xr[start + o * pl.sw];
                        }
                    }
                }
            }
            pos += last - first;
        }
    }

    /// planes[c, ih, iw] = sum of the col entries im2col would have read from it, for the
    /// channels of one tile, each plane's taps in a fixed order.
    fn col2im(&self, col: &[f32], planes: &mut [f32]) {
        let p = self.plane;
        let (taps, in_plane, out_plane) = (self.taps(), self.in_plane(), self.out_plane());
        for (c, plane) in planes.chunks_mut(in_plane).enumerate() {
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
        }
    }
}
