//! Table-driven kernels: data movement and pooling described by index tables computed at compile
//! time (a gather or scatter per element; a window of taps per pooled output), so one emitted loop
//! serves Transpose, Slice, Pad, Concat, broadcasts, SliceBackward and every pool geometry.
//! Tables are checked against the buffers they index when they are built, which is what keeps the
//! emitted loads and stores in bounds.

use crate::ir::ops::pool::best_tap;

/// Out-of-window or padding taps and gathered zeros are marked with this index.
pub const NONE: i32 = -1;

/// A per-element move.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum TableKernel {
    /// out[i] = table[i] == NONE ? fill : src[table[i]].
    Gather { fill: f32 },
    /// out[table[i]] = src[i].
    Scatter,
}

impl TableKernel {
    /// The reference semantics over elements start..end.
    pub fn eval(self, src: &[f32], table: &[i32], out: &mut [f32], range: std::ops::Range<usize>) {
        for i in range {
            match self {
                TableKernel::Gather { fill } => {
                    out[i] = usize::try_from(table[i]).map_or(fill, |t| src[t]);
                }
                TableKernel::Scatter => out[table[i] as usize] = src[i],
            }
        }
    }
}

/// How a window combines its taps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduce {
    /// The largest tap (backward: the first largest tap gets the gradient).
    Max,
    /// The sum of the taps divided by the window's count.
    Average,
    /// The index of the first (`last`: last) largest tap, stored as an f32 integer: within the
    /// plane, or counted from the tensor's start (`whole_tensor`), and column-major within the
    /// plane when `column_height` is not 0 (its rows). Forward only.
    Indices {
        whole_tensor: bool,
        last: bool,
        column_height: usize,
    },
}

impl Reduce {
    /// The index an Indices reduction stores for tap `t` (an index into plane `p`).
    pub fn index(self, in_plane: usize, p: usize, t: usize) -> usize {
        let Reduce::Indices {
            whole_tensor,
            column_height,
            ..
        } = self
        else {
            return t;
        };
        let t = match in_plane.checked_div(column_height) {
            Some(width) if width > 0 => (t % width) * column_height + t / width,
            _ => t,
        };
        if whole_tensor { p * in_plane + t } else { t }
    }
}

/// A pooling kernel over planes: every plane of `in_plane` inputs has `outputs` outputs, each
/// reading `taps` table entries (indices into the plane, `NONE` for padding).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowKernel {
    pub reduce: Reduce,
    pub in_plane: usize,
    pub outputs: usize,
    pub taps: usize,
}

impl WindowKernel {
    /// Reference forward semantics for planes in `planes`.
    pub fn eval_forward(
        &self,
        src: &[f32],
        table: &[i32],
        counts: &[f32],
        out: &mut [f32],
        planes: std::ops::Range<usize>,
    ) {
        for p in planes {
            let x = &src[p * self.in_plane..][..self.in_plane];
            for o in 0..self.outputs {
                let taps = &table[o * self.taps..][..self.taps];
                let valid = taps.iter().filter_map(|&t| usize::try_from(t).ok());
                out[p * self.outputs + o] = match self.reduce {
                    Reduce::Max => valid.fold(f32::NEG_INFINITY, |m, t| m.max(x[t])),
                    Reduce::Average => valid.fold(0.0, |s, t| s + x[t]) / counts[o],
                    Reduce::Indices { last, .. } => best_tap(x, valid, last)
                        .map_or(-1.0, |t| self.reduce.index(self.in_plane, p, t) as f32),
                };
            }
        }
    }

    /// Reference adjoint semantics for planes in `planes` (dx is overwritten there).
    pub fn eval_backward(
        &self,
        x: &[f32],
        dy: &[f32],
        table: &[i32],
        counts: &[f32],
        dx: &mut [f32],
        planes: std::ops::Range<usize>,
    ) {
        for p in planes {
            let xs = &x[p * self.in_plane..][..self.in_plane];
            let dxs = &mut dx[p * self.in_plane..][..self.in_plane];
            dxs.fill(0.0);
            for o in 0..self.outputs {
                let d = dy[p * self.outputs + o];
                let taps = &table[o * self.taps..][..self.taps];
                let valid = taps.iter().filter_map(|&t| usize::try_from(t).ok());
                match self.reduce {
                    Reduce::Max => {
                        if let Some(t) = best_tap(xs, valid, false) {
                            dxs[t] += d;
                        }
                    }
                    Reduce::Average => valid.for_each(|t| dxs[t] += d / counts[o]),
                    // Integer outputs carry no gradient; lowering never asks for this.
                    Reduce::Indices { .. } => {}
                }
            }
        }
    }
}
