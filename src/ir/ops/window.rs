//! Sliding-window geometry shared by Conv, MaxPool and AveragePool: strides, dilations, explicit or
//! automatic padding, and ceil mode, resolved against a concrete input size in one place so shape
//! inference and every kernel agree on it.

use crate::error::OpResult;
use crate::{op_bail, op_ensure};

/// ONNX `auto_pad`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum AutoPad {
    /// Use the explicit `pads`.
    NotSet,
    /// Output size ceil(in / stride); odd padding goes at the end.
    SameUpper,
    /// Output size ceil(in / stride); odd padding goes at the start.
    SameLower,
    /// No padding.
    Valid,
}

/// A window's attributes as the model states them; empty vectors mean the ONNX defaults.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Window {
    pub strides: Vec<usize>,
    pub dilations: Vec<usize>,
    /// ONNX layout: all begins, then all ends.
    pub pads: Vec<usize>,
    pub auto_pad: AutoPad,
    pub ceil_mode: bool,
}

/// A window resolved against an input's spatial size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Geometry {
    pub kernel: Vec<usize>,
    pub strides: Vec<usize>,
    pub dilations: Vec<usize>,
    pub pad_begin: Vec<usize>,
    pub pad_end: Vec<usize>,
    pub input: Vec<usize>,
    pub output: Vec<usize>,
}

fn or_ones(v: &[usize], n: usize, what: &str) -> OpResult<Vec<usize>> {
    if v.is_empty() {
        return Ok(vec![1; n]);
    }
    op_ensure!(
        v.len() == n,
        "{what} has {} values but the window has {n} spatial axes",
        v.len()
    );
    op_ensure!(
        v.iter().all(|&s| s > 0),
        "{what} must be positive, got {v:?}"
    );
    Ok(v.to_vec())
}

impl Window {
    /// Resolves defaults and padding for `input` (spatial dims only) and a `kernel` of the same rank.
    pub fn resolve(&self, input: &[usize], kernel: &[usize]) -> OpResult<Geometry> {
        let n = input.len();
        op_ensure!(
            (1..=3).contains(&n),
            "only 1-D, 2-D and 3-D windows are supported, got {n} spatial axes"
        );
        op_ensure!(
            kernel.len() == n,
            "kernel has {} spatial axes but the input has {n}",
            kernel.len()
        );
        op_ensure!(
            kernel.iter().all(|&k| k > 0),
            "kernel_shape must be positive, got {kernel:?}"
        );
        let strides = or_ones(&self.strides, n, "strides")?;
        let dilations = or_ones(&self.dilations, n, "dilations")?;
        let extent: Vec<usize> = (0..n).map(|i| (kernel[i] - 1) * dilations[i] + 1).collect();
        let (pad_begin, pad_end) = match self.auto_pad {
            AutoPad::NotSet => {
                if self.pads.is_empty() {
                    (vec![0; n], vec![0; n])
                } else {
                    op_ensure!(
                        self.pads.len() == 2 * n,
                        "pads has {} values, expected {} (begin and end for {n} axes)",
                        self.pads.len(),
                        2 * n
                    );
                    (self.pads[..n].to_vec(), self.pads[n..].to_vec())
                }
            }
            AutoPad::Valid => (vec![0; n], vec![0; n]),
            AutoPad::SameUpper | AutoPad::SameLower => {
                let mut begin = vec![0; n];
                let mut end = vec![0; n];
                for i in 0..n {
                    let out = input[i].div_ceil(strides[i]);
                    let total =
                        ((out.max(1) - 1) * strides[i] + extent[i]).saturating_sub(input[i]);
                    let small = total / 2;
                    if self.auto_pad == AutoPad::SameUpper {
                        (begin[i], end[i]) = (small, total - small);
                    } else {
                        (begin[i], end[i]) = (total - small, small);
                    }
                }
                (begin, end)
            }
        };
        let mut output = Vec::with_capacity(n);
        for i in 0..n {
            let padded = input[i] + pad_begin[i] + pad_end[i];
            if padded < extent[i] {
                op_bail!(
                    "window of extent {} does not fit axis {i} of size {} (padded {padded})",
                    extent[i],
                    input[i]
                );
            }
            let span = padded - extent[i];
            let mut out = if self.ceil_mode {
                span.div_ceil(strides[i]) + 1
            } else {
                span / strides[i] + 1
            };
            // With ceil mode the last window must start inside the input or its begin padding.
            if self.ceil_mode && (out - 1) * strides[i] >= input[i] + pad_begin[i] {
                out -= 1;
            }
            output.push(out);
        }
        Ok(Geometry {
            kernel: kernel.to_vec(),
            strides,
            dilations,
            pad_begin,
            pad_end,
            input: input.to_vec(),
            output,
        })
    }
}

/// The depth axis of a 3-D window (trivial, one plane, for 1-D and 2-D ones).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Depth {
    /// Input, output and kernel depth.
    pub i: usize,
    pub o: usize,
    pub k: usize,
    /// Stride, dilation, and padding before and after.
    pub s: usize,
    pub d: usize,
    pub pb: usize,
    pub pe: usize,
}

impl Depth {
    /// One plane: what 1-D and 2-D windows have.
    pub const FLAT: Depth = Depth {
        i: 1,
        o: 1,
        k: 1,
        s: 1,
        d: 1,
        pb: 0,
        pe: 0,
    };

    pub fn is_flat(&self) -> bool {
        *self == Depth::FLAT
    }
}

/// A 1-D, 2-D or 3-D window geometry seen as 2-D: a 1-D one gets a height of 1, and a 3-D one
/// folds its depth into the rows, so `ih`, `oh` and `kh` count rows of all planes (depth x
/// height) and every kernel that walks rows and taps works unchanged; `row` and `in_padding`
/// undo the fold. The height's own stride, dilation and padding are `sh`, `dh`, `pt`, `pb`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plane {
    pub ih: usize,
    pub iw: usize,
    pub oh: usize,
    pub ow: usize,
    pub kh: usize,
    pub kw: usize,
    pub sh: usize,
    pub sw: usize,
    pub dh: usize,
    pub dw: usize,
    pub pt: usize,
    pub pl: usize,
    pub pb: usize,
    pub pr: usize,
    pub depth: Depth,
}

impl Plane {
    pub fn new(g: &Geometry) -> OpResult<Plane> {
        let n = g.input.len();
        op_ensure!(
            (1..=3).contains(&n),
            "only 1-D, 2-D and 3-D windows are supported, got {n}-D"
        );
        // Axis i of the last two (height, width); a 1-D window's height is the default.
        let at = |v: &[usize], i: usize, default: usize| {
            if n == 1 {
                if i == 0 { default } else { v[0] }
            } else {
                v[n - 2 + i]
            }
        };
        let depth = if n == 3 {
            Depth {
                i: g.input[0],
                o: g.output[0],
                k: g.kernel[0],
                s: g.strides[0],
                d: g.dilations[0],
                pb: g.pad_begin[0],
                pe: g.pad_end[0],
            }
        } else {
            Depth::FLAT
        };
        Ok(Plane {
            ih: depth.i * at(&g.input, 0, 1),
            iw: at(&g.input, 1, 1),
            oh: depth.o * at(&g.output, 0, 1),
            ow: at(&g.output, 1, 1),
            kh: depth.k * at(&g.kernel, 0, 1),
            kw: at(&g.kernel, 1, 1),
            sh: at(&g.strides, 0, 1),
            sw: at(&g.strides, 1, 1),
            dh: at(&g.dilations, 0, 1),
            dw: at(&g.dilations, 1, 1),
            pt: at(&g.pad_begin, 0, 0),
            pl: at(&g.pad_begin, 1, 0),
            pb: at(&g.pad_end, 0, 0),
            pr: at(&g.pad_end, 1, 0),
            depth,
        })
    }

    /// Every field, in a fixed order (what an artifact stores).
    pub fn to_values(&self) -> [usize; 21] {
        let d = &self.depth;
        [
            self.ih, self.iw, self.oh, self.ow, self.kh, self.kw, self.sh, self.sw, self.dh,
            self.dw, self.pt, self.pl, self.pb, self.pr, d.i, d.o, d.k, d.s, d.d, d.pb, d.pe,
        ]
    }

    /// The inverse of [`Plane::to_values`] (no consistency check: the program validator's job).
    pub fn from_values(v: [usize; 21]) -> Plane {
        let [
            ih,
            iw,
            oh,
            ow,
            kh,
            kw,
            sh,
            sw,
            dh,
            dw,
            pt,
            pl,
            pb,
            pr,
            i,
            o,
            k,
            s,
            d,
            dpb,
            dpe,
        ] = v;
        let depth = Depth {
            i,
            o,
            k,
            s,
            d,
            pb: dpb,
            pe: dpe,
        };
        Plane {
            ih,
            iw,
            oh,
            ow,
            kh,
            kw,
            sh,
            sw,
            dh,
            dw,
            pt,
            pl,
            pb,
            pr,
            depth,
        }
    }

    /// The height of one plane: input, output and kernel rows per depth step.
    pub fn heights(&self) -> (usize, usize, usize) {
        let d = &self.depth;
        (
            self.ih / d.i.max(1),
            self.oh / d.o.max(1),
            self.kh / d.k.max(1),
        )
    }

    /// (depth, height) positions of output row `o` at kernel row `k`, padding included.
    fn padded_row(&self, o: usize, k: usize) -> (usize, usize) {
        let (_, ho, hk) = self.heights();
        let d = &self.depth;
        let (od, oh) = (o / ho.max(1), o % ho.max(1));
        let (kd, kh) = (k / hk.max(1), k % hk.max(1));
        (od * d.s + kd * d.d, oh * self.sh + kh * self.dh)
    }

    /// Whether tap (kh, kw) of output (oh, ow) lies inside the input plus its explicit padding:
    /// AveragePool's divisor with count_include_pad (positions past the padding, which ceil mode
    /// can reach, never count, as in PyTorch and onnxruntime).
    pub fn in_padding(&self, (oh, ow): (usize, usize), (kh, kw): (usize, usize)) -> bool {
        let (hi, _, _) = self.heights();
        let d = &self.depth;
        let (z, r) = self.padded_row(oh, kh);
        let c = ow * self.sw + kw * self.dw;
        z < d.i + d.pb + d.pe && r < hi + self.pt + self.pb && c < self.iw + self.pl + self.pr
    }

    /// Input row (of all planes) read by output row `o` at kernel row `k`, if it is not padding.
    pub fn row(&self, o: usize, k: usize) -> Option<usize> {
        let (hi, _, _) = self.heights();
        let d = &self.depth;
        let (z, r) = self.padded_row(o, k);
        let z = z.checked_sub(d.pb).filter(|&z| z < d.i)?;
        let r = r.checked_sub(self.pt).filter(|&r| r < hi)?;
        Some(z * hi + r)
    }

    /// Input column read by output column `o` at kernel column `k`, if it is not padding.
    pub fn col(&self, o: usize, k: usize) -> Option<usize> {
        (o * self.sw + k * self.dw)
            .checked_sub(self.pl)
            .filter(|&i| i < self.iw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(strides: &[usize], pads: &[usize], auto_pad: AutoPad, ceil_mode: bool) -> Window {
        Window {
            strides: strides.to_vec(),
            dilations: vec![],
            pads: pads.to_vec(),
            auto_pad,
            ceil_mode,
        }
    }

    #[test]
    fn explicit_padding_and_stride() {
        let g = window(&[2, 1], &[1, 0, 1, 2], AutoPad::NotSet, false)
            .resolve(&[7, 5], &[3, 3])
            .unwrap();
        assert_eq!(g.output, vec![4, 5]);
        assert_eq!(g.pad_begin, vec![1, 0]);
        assert_eq!(g.pad_end, vec![1, 2]);
    }

    #[test]
    fn same_upper_puts_odd_padding_at_the_end() {
        let g = window(&[2, 2], &[], AutoPad::SameUpper, false)
            .resolve(&[9, 8], &[3, 3])
            .unwrap();
        assert_eq!(g.output, vec![5, 4]);
        assert_eq!(
            (g.pad_begin.clone(), g.pad_end.clone()),
            (vec![1, 0], vec![1, 1])
        );
        let g = window(&[2, 2], &[], AutoPad::SameLower, false)
            .resolve(&[9, 8], &[3, 3])
            .unwrap();
        assert_eq!((g.pad_begin, g.pad_end), (vec![1, 1], vec![1, 0]));
    }

    #[test]
    fn ceil_mode_drops_a_window_that_starts_in_the_end_padding() {
        // PyTorch: MaxPool2d(2, stride 2, ceil_mode) on 5 -> 3; with pad 1 on 4 -> 3, not 4.
        let g = window(&[2], &[], AutoPad::NotSet, true)
            .resolve(&[5], &[2])
            .unwrap();
        assert_eq!(g.output, vec![3]);
        let g = window(&[2], &[1, 1], AutoPad::NotSet, true)
            .resolve(&[4], &[2])
            .unwrap();
        assert_eq!(g.output, vec![3]);
    }

    #[test]
    fn rejects_zero_stride_and_oversized_kernel() {
        assert!(
            window(&[0], &[], AutoPad::NotSet, false)
                .resolve(&[5], &[2])
                .is_err()
        );
        assert!(
            window(&[1], &[], AutoPad::NotSet, false)
                .resolve(&[2], &[3])
                .is_err()
        );
    }
}
