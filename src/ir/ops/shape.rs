//! Ops that move or reshape data without arithmetic, and the shape arithmetic exporters emit.
//!
//! Opset differences resolved by the importer: Reshape's target is an input (opset >= 5);
//! Squeeze/Unsqueeze axes and Slice starts/ends/axes/steps are attributes before opsets 13 and 10
//! and inputs after, always constants here; Pad's pads and value likewise (opset 11).

use std::sync::Arc;

use super::util::{norm_axis, norm_axis_inclusive, to_sizes};
use crate::error::OpResult;
use crate::ir::fact::Fact;
use crate::ir::tensor::{DType, Tensor, numel};
use crate::{op_bail, op_ensure};

/// Flatten to 2-D: [prod(dims[..axis]), prod(dims[axis..])].
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Flatten {
    pub axis: i64,
}

impl Flatten {
    pub fn output_shape(&self, x: &[usize]) -> OpResult<Vec<usize>> {
        let a = norm_axis_inclusive(self.axis, x.len())?;
        Ok(vec![numel(&x[..a]), numel(&x[a..])])
    }

    pub fn infer(&self, inputs: &[&Fact]) -> OpResult<Fact> {
        Ok(Fact::new(
            inputs[0].dtype,
            self.output_shape(&inputs[0].shape)?,
        ))
    }
}

/// Reshape `data` to the shape held by its second input (0 copies a dim unless `allowzero`; -1
/// is inferred).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Reshape {
    pub allowzero: bool,
}

impl Reshape {
    pub fn output_shape(&self, x: &[usize], target: &[i64]) -> OpResult<Vec<usize>> {
        let mut out = Vec::with_capacity(target.len());
        let mut infer_at = None;
        for (i, &t) in target.iter().enumerate() {
            match t {
                -1 => {
                    op_ensure!(infer_at.is_none(), "shape {target:?} has more than one -1");
                    infer_at = Some(i);
                    out.push(1);
                }
                0 if !self.allowzero => {
                    op_ensure!(
                        i < x.len(),
                        "shape {target:?} copies axis {i} of a rank-{} input",
                        x.len()
                    );
                    out.push(x[i]);
                }
                t if t >= 0 => out.push(t as usize),
                _ => op_bail!("shape {target:?} has a negative dimension"),
            }
        }
        if let Some(i) = infer_at {
            let known = numel(&out);
            op_ensure!(
                known > 0 && numel(x).is_multiple_of(known),
                "cannot reshape {x:?} to {target:?}"
            );
            out[i] = numel(x) / known;
        }
        op_ensure!(
            numel(&out) == numel(x),
            "cannot reshape {x:?} ({} elements) to {target:?}",
            numel(x)
        );
        Ok(out)
    }

    pub fn infer(&self, inputs: &[&Fact]) -> OpResult<Fact> {
        let Some(target) = &inputs[1].value else {
            op_bail!("the target shape is computed at run time; lrpc needs it constant");
        };
        let shape = self.output_shape(&inputs[0].shape, target.i64s()?)?;
        Ok(Fact::new(inputs[0].dtype, shape))
    }
}

/// Permute axes; no `perm` reverses them.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Transpose {
    pub perm: Option<Vec<usize>>,
}

impl Transpose {
    pub fn perm(&self, rank: usize) -> OpResult<Vec<usize>> {
        let perm = match &self.perm {
            Some(p) => p.clone(),
            None => (0..rank).rev().collect(),
        };
        let mut seen = vec![false; rank];
        op_ensure!(perm.len() == rank, "perm {perm:?} does not fit rank {rank}");
        for &p in &perm {
            op_ensure!(
                p < rank && !seen[p],
                "perm {perm:?} is not a permutation of 0..{rank}"
            );
            seen[p] = true;
        }
        Ok(perm)
    }

    pub fn infer(&self, inputs: &[&Fact]) -> OpResult<Fact> {
        let x = &inputs[0].shape;
        let perm = self.perm(x.len())?;
        Ok(Fact::new(
            inputs[0].dtype,
            perm.iter().map(|&p| x[p]).collect(),
        ))
    }
}

/// Concatenate along `axis`.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Concat {
    pub axis: i64,
}

impl Concat {
    pub fn infer(&self, inputs: &[&Fact]) -> OpResult<Fact> {
        let first = &inputs[0].shape;
        let a = norm_axis(self.axis, first.len())?;
        let mut out = first.clone();
        for f in &inputs[1..] {
            op_ensure!(f.dtype == inputs[0].dtype, "inputs have different types");
            op_ensure!(
                f.shape.len() == first.len()
                    && f.shape
                        .iter()
                        .zip(first)
                        .enumerate()
                        .all(|(i, (x, y))| i == a || x == y),
                "shapes {first:?} and {:?} differ off the concat axis {a}",
                f.shape
            );
            out[a] += f.shape[a];
        }
        Ok(Fact::new(inputs[0].dtype, out))
    }
}

/// What Pad puts in the border.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum PadMode {
    /// `value`.
    Constant,
    /// The input mirrored at its edge, the edge itself not repeated.
    Reflect,
    /// The edge element repeated.
    Edge,
    /// The input repeated as if periodic.
    Wrap,
}

/// Padding: `pads` is all begins then all ends, one pair per axis.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Pad {
    pub pads: Vec<usize>,
    pub value: f32,
    pub mode: PadMode,
}

impl Pad {
    /// The input index output index `o` of an axis reads (`len` input elements, `before`
    /// padded in front), or None for a constant border.
    pub fn source(&self, o: usize, before: usize, len: usize) -> Option<usize> {
        let i = o as i64 - before as i64;
        let n = len as i64;
        if (0..n).contains(&i) {
            return Some(i as usize);
        }
        Some(match self.mode {
            PadMode::Constant => return None,
            PadMode::Edge => i.clamp(0, n - 1) as usize,
            PadMode::Wrap => i.rem_euclid(n) as usize,
            PadMode::Reflect if n == 1 => 0,
            PadMode::Reflect => {
                let period = 2 * (n - 1);
                let m = i.rem_euclid(period);
                (if m < n { m } else { period - m }) as usize
            }
        })
    }

    pub fn output_shape(&self, x: &[usize]) -> OpResult<Vec<usize>> {
        let n = x.len();
        op_ensure!(
            self.pads.len() == 2 * n,
            "pads has {} values for a rank-{n} input",
            self.pads.len()
        );
        Ok((0..n)
            .map(|i| x[i] + self.pads[i] + self.pads[n + i])
            .collect())
    }

    pub fn infer(&self, inputs: &[&Fact]) -> OpResult<Fact> {
        Ok(Fact::new(
            inputs[0].dtype,
            self.output_shape(&inputs[0].shape)?,
        ))
    }
}

/// Remove size-1 axes (all of them when `axes` is absent).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Squeeze {
    pub axes: Option<Vec<i64>>,
}

impl Squeeze {
    pub fn output_shape(&self, x: &[usize]) -> OpResult<Vec<usize>> {
        match &self.axes {
            None => Ok(x.iter().copied().filter(|&d| d != 1).collect()),
            Some(axes) => {
                let axes: Vec<usize> = axes
                    .iter()
                    .map(|&a| norm_axis(a, x.len()))
                    .collect::<OpResult<_>>()?;
                for &a in &axes {
                    op_ensure!(
                        x[a] == 1,
                        "cannot squeeze axis {a} of size {} in {x:?}",
                        x[a]
                    );
                }
                Ok(x.iter()
                    .enumerate()
                    .filter(|(i, _)| !axes.contains(i))
                    .map(|(_, &d)| d)
                    .collect())
            }
        }
    }

    pub fn infer(&self, inputs: &[&Fact]) -> OpResult<Fact> {
        Ok(Fact::new(
            inputs[0].dtype,
            self.output_shape(&inputs[0].shape)?,
        ))
    }
}

/// Insert size-1 axes at `axes` (positions in the output).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Unsqueeze {
    pub axes: Vec<i64>,
}

impl Unsqueeze {
    pub fn output_shape(&self, x: &[usize]) -> OpResult<Vec<usize>> {
        let rank = x.len() + self.axes.len();
        let mut axes: Vec<usize> = self
            .axes
            .iter()
            .map(|&a| norm_axis(a, rank))
            .collect::<OpResult<_>>()?;
        axes.sort_unstable();
        op_ensure!(
            axes.windows(2).all(|w| w[0] != w[1]),
            "axes {:?} repeat",
            self.axes
        );
        let mut src = x.iter();
        Ok((0..rank)
            .map(|i| {
                if axes.contains(&i) {
                    1
                } else {
                    *src.next().unwrap_or(&1)
                }
            })
            .collect())
    }

    pub fn infer(&self, inputs: &[&Fact]) -> OpResult<Fact> {
        Ok(Fact::new(
            inputs[0].dtype,
            self.output_shape(&inputs[0].shape)?,
        ))
    }
}

/// Strided slice; absent `axes` means 0..len(starts), absent `steps` means 1.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Slice {
    pub starts: Vec<i64>,
    pub ends: Vec<i64>,
    pub axes: Option<Vec<i64>>,
    pub steps: Option<Vec<i64>>,
}

/// One axis of a resolved slice: first index, step, count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SliceAxis {
    pub start: i64,
    pub step: i64,
    pub len: usize,
}

impl Slice {
    /// Per-axis (start, step, len) for input shape `x`, with ONNX's clamping rules.
    pub fn resolve(&self, x: &[usize]) -> OpResult<Vec<SliceAxis>> {
        let n = self.starts.len();
        op_ensure!(self.ends.len() == n, "starts and ends differ in length");
        let axes: Vec<i64> = self.axes.clone().unwrap_or_else(|| (0..n as i64).collect());
        let steps: Vec<i64> = self.steps.clone().unwrap_or_else(|| vec![1; n]);
        op_ensure!(
            axes.len() == n && steps.len() == n,
            "axes/steps lengths differ from starts"
        );
        let mut out: Vec<SliceAxis> = x
            .iter()
            .map(|&d| SliceAxis {
                start: 0,
                step: 1,
                len: d,
            })
            .collect();
        let mut seen = vec![false; x.len()];
        for i in 0..n {
            let a = norm_axis(axes[i], x.len())?;
            op_ensure!(!seen[a], "axis {a} sliced twice");
            seen[a] = true;
            let (dim, step) = (x[a] as i64, steps[i]);
            op_ensure!(step != 0, "slice step must not be zero");
            let fix = |v: i64| if v < 0 { v + dim } else { v };
            let (start, end) = (fix(self.starts[i]), fix(self.ends[i]));
            let (start, end, len) = if step > 0 {
                let s = start.clamp(0, dim);
                let e = end.clamp(0, dim);
                (s, e, if e > s { (e - s + step - 1) / step } else { 0 })
            } else {
                let s = start.clamp(-1, dim - 1);
                let e = end.clamp(-1, dim - 1);
                (s, e, if s > e { (s - e - step - 1) / -step } else { 0 })
            };
            let _ = end;
            out[a] = SliceAxis {
                start,
                step,
                len: len as usize,
            };
        }
        Ok(out)
    }

    pub fn infer(&self, inputs: &[&Fact]) -> OpResult<Fact> {
        let axes = self.resolve(&inputs[0].shape)?;
        Ok(Fact::new(
            inputs[0].dtype,
            axes.iter().map(|a| a.len).collect(),
        ))
    }
}

/// The input's shape as an i64 vector, optionally a sub-range (opset 15 `start`/`end`).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ShapeOf {
    pub start: i64,
    pub end: Option<i64>,
}

impl ShapeOf {
    /// The value this op produces for an input of shape `x`.
    pub fn value(&self, x: &[usize]) -> OpResult<Tensor> {
        let r = x.len() as i64;
        let clamp = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
        let (s, e) = (clamp(self.start), clamp(self.end.unwrap_or(r)));
        let dims: Vec<i64> = x[s..e.max(s)].iter().map(|&d| d as i64).collect();
        Tensor::from_i64(vec![dims.len()], dims)
    }

    pub fn infer(&self, inputs: &[&Fact]) -> OpResult<Fact> {
        Ok(Fact::constant(Arc::new(self.value(&inputs[0].shape)?)))
    }
}

/// Gather slices of `data` along `axis` at `indices` (negative indices count from the end).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Gather {
    pub axis: i64,
}

impl Gather {
    pub fn output_shape(&self, x: &[usize], indices: &[usize]) -> OpResult<Vec<usize>> {
        let a = norm_axis(self.axis, x.len())?;
        let mut out = x[..a].to_vec();
        out.extend_from_slice(indices);
        out.extend_from_slice(&x[a + 1..]);
        Ok(out)
    }

    pub fn infer(&self, inputs: &[&Fact]) -> OpResult<Fact> {
        op_ensure!(inputs[1].dtype == DType::I64, "indices must be integers");
        let shape = self.output_shape(&inputs[0].shape, &inputs[1].shape)?;
        Ok(Fact::new(inputs[0].dtype, shape))
    }
}

/// Element type conversion; every integer type maps to i64, every float type to f32, and BOOL to
/// i64 holding 0 or 1 (`boolean`: every nonzero value becomes 1, as ONNX casts to bool).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Cast {
    pub to: DType,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub boolean: bool,
}

impl Cast {
    pub fn infer(&self, inputs: &[&Fact]) -> OpResult<Fact> {
        Ok(Fact::new(self.to, inputs[0].shape.clone()))
    }
}

/// A tensor of the shape given by the (constant) input, filled with `value`.
#[derive(Clone, Debug, PartialEq)]
pub struct ConstantOfShape {
    /// A one-element tensor; its dtype is the output's.
    pub value: Arc<Tensor>,
}

impl serde::Serialize for ConstantOfShape {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{:?}", self.value.data()))
    }
}

impl ConstantOfShape {
    pub fn output_shape(shape: &Tensor) -> OpResult<Vec<usize>> {
        to_sizes(shape.i64s()?, "ConstantOfShape dims")
    }

    pub fn infer(&self, inputs: &[&Fact]) -> OpResult<Fact> {
        let Some(shape) = &inputs[0].value else {
            op_bail!("the shape is computed at run time; lrpc needs it constant");
        };
        Ok(Fact::new(self.value.dtype(), Self::output_shape(shape)?))
    }
}

/// One output of a Split: part `index` of `x` cut along `axis` into pieces of `sizes` (or, when
/// absent, `parts` pieces of ceil(dim / parts), the last smaller). The `LowerSplit` pass turns it
/// into the equivalent Slice once shapes are known.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SplitPart {
    pub axis: i64,
    pub sizes: Option<Vec<usize>>,
    pub parts: usize,
    pub index: usize,
}

impl SplitPart {
    /// The Slice that takes this part of an input of `shape`.
    pub fn to_slice(&self, shape: &[usize]) -> OpResult<Slice> {
        let axis = norm_axis(self.axis, shape.len())?;
        let dim = shape[axis];
        let sizes = match &self.sizes {
            Some(s) => {
                op_ensure!(
                    s.iter().sum::<usize>() == dim,
                    "split sizes {s:?} do not add up to the axis size {dim}"
                );
                s.clone()
            }
            None => {
                op_ensure!(self.parts > 0, "a split into 0 parts");
                let chunk = dim.div_ceil(self.parts);
                (0..self.parts)
                    .map(|k| chunk.min(dim.saturating_sub(k * chunk)))
                    .collect()
            }
        };
        op_ensure!(
            self.index < sizes.len(),
            "output {} of a split into {} parts",
            self.index,
            sizes.len()
        );
        let start: usize = sizes[..self.index].iter().sum();
        Ok(Slice {
            starts: vec![start as i64],
            ends: vec![(start + sizes[self.index]) as i64],
            axes: Some(vec![axis as i64]),
            steps: None,
        })
    }

    pub fn infer(&self, inputs: &[&Fact]) -> OpResult<Fact> {
        self.to_slice(&inputs[0].shape)?.infer(inputs)
    }
}

/// Expand: broadcast `x` against the (constant) shape input, numpy-style.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Expand;

impl Expand {
    pub fn output_shape(x: &[usize], shape: &Tensor) -> OpResult<Vec<usize>> {
        let dims = to_sizes(shape.i64s()?, "Expand shape")?;
        super::util::broadcast(x, &dims)
    }

    pub fn infer(&self, inputs: &[&Fact]) -> OpResult<Fact> {
        let Some(shape) = &inputs[1].value else {
            op_bail!("the shape is computed at run time; lrpc needs it constant");
        };
        Ok(Fact::new(
            inputs[0].dtype,
            Expand::output_shape(&inputs[0].shape, shape)?,
        ))
    }
}

/// Tile: `x` repeated along each axis by the (constant) repeats input.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Tile;

impl Tile {
    pub fn repeats(x: &[usize], repeats: &Tensor) -> OpResult<Vec<usize>> {
        let r = to_sizes(repeats.i64s()?, "Tile repeats")?;
        op_ensure!(
            r.len() == x.len(),
            "{} repeats for an input of rank {}",
            r.len(),
            x.len()
        );
        Ok(r)
    }

    pub fn infer(&self, inputs: &[&Fact]) -> OpResult<Fact> {
        let Some(repeats) = &inputs[1].value else {
            op_bail!("the repeats are computed at run time; lrpc needs them constant");
        };
        let r = Tile::repeats(&inputs[0].shape, repeats)?;
        let shape = inputs[0]
            .shape
            .iter()
            .zip(&r)
            .map(|(d, r)| d.saturating_mul(*r))
            .collect();
        Ok(Fact::new(inputs[0].dtype, shape))
    }
}

/// Range(start, limit, delta): scalars in, a 1-D tensor out (shape arithmetic only: its inputs
/// must be constant, so it always folds).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Range;

/// At most this many elements: a Range is index arithmetic, not data.
const RANGE_LIMIT: f64 = (1u64 << 31) as f64;

impl Range {
    /// The number of elements, max(ceil((limit - start) / delta), 0).
    pub fn count(start: f64, limit: f64, delta: f64) -> OpResult<usize> {
        op_ensure!(
            delta != 0.0 && delta.is_finite(),
            "delta must be finite and nonzero"
        );
        let n = ((limit - start) / delta).ceil().max(0.0);
        op_ensure!(n.is_finite() && n < RANGE_LIMIT, "a range of {n} elements");
        Ok(n as usize)
    }

    pub fn infer(&self, inputs: &[&Fact]) -> OpResult<Fact> {
        let scalar = |f: &Fact, what: &str| -> OpResult<f64> {
            let Some(v) = &f.value else {
                op_bail!("{what} is computed at run time; lrpc needs Range's inputs constant");
            };
            op_ensure!(v.len() == 1, "{what} must be a scalar");
            Ok(match v.data() {
                crate::ir::TensorData::F32(x) => f64::from(x[0]),
                crate::ir::TensorData::I64(x) => x[0] as f64,
            })
        };
        let (s, l, d) = (
            scalar(inputs[0], "start")?,
            scalar(inputs[1], "limit")?,
            scalar(inputs[2], "delta")?,
        );
        op_ensure!(
            inputs[1].dtype == inputs[0].dtype && inputs[2].dtype == inputs[0].dtype,
            "start, limit and delta must have one type"
        );
        Ok(Fact::new(inputs[0].dtype, vec![Range::count(s, l, d)?]))
    }
}

/// DepthToSpace (`blocksize`, mode DCR or CRD) and its inverse SpaceToDepth: pure permutations
/// of an N x C x H x W tensor.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct DepthSpace {
    pub blocksize: usize,
    /// DepthToSpace's CRD mode (channel-major blocks); false is DCR.
    pub crd: bool,
    /// SpaceToDepth rather than DepthToSpace.
    pub to_depth: bool,
}

impl DepthSpace {
    pub fn output_shape(&self, x: &[usize]) -> OpResult<Vec<usize>> {
        let b = self.blocksize;
        op_ensure!(x.len() == 4, "input {x:?} must be N x C x H x W");
        op_ensure!(b > 0, "blocksize must be positive");
        if self.to_depth {
            op_ensure!(
                x[2].is_multiple_of(b) && x[3].is_multiple_of(b),
                "H and W of {x:?} must be multiples of the blocksize {b}"
            );
            Ok(vec![x[0], x[1] * b * b, x[2] / b, x[3] / b])
        } else {
            op_ensure!(
                x[1].is_multiple_of(b * b),
                "channels of {x:?} must be a multiple of blocksize^2 = {}",
                b * b
            );
            Ok(vec![x[0], x[1] / (b * b), x[2] * b, x[3] * b])
        }
    }

    /// For each output element, the flat input index it copies.
    pub fn sources(&self, x: &[usize]) -> OpResult<Vec<usize>> {
        let out = self.output_shape(x)?;
        let b = self.blocksize;
        let mut index = Vec::with_capacity(numel(&out));
        // Walk the DepthToSpace direction: (n, c, h, w) of the deep tensor <-> (n, c', h', w')
        // of the spatial one; SpaceToDepth is the same map read the other way.
        let (deep, wide): (&[usize], &[usize]) = if self.to_depth { (&out, x) } else { (x, &out) };
        let c_wide = wide[1];
        let mut pairs = vec![0usize; numel(deep)];
        let ds = crate::ir::strides(deep);
        let ws = crate::ir::strides(wide);
        for n in 0..wide[0] {
            for c in 0..c_wide {
                for h in 0..wide[2] {
                    for w in 0..wide[3] {
                        let (bh, bw) = (h % b, w % b);
                        let dc = if self.crd {
                            c * b * b + bh * b + bw
                        } else {
                            (bh * b + bw) * c_wide + c
                        };
                        let d = n * ds[0] + dc * ds[1] + (h / b) * ds[2] + (w / b) * ds[3];
                        let wi = n * ws[0] + c * ws[1] + h * ws[2] + w * ws[3];
                        // pairs[deep index] = wide index
                        pairs[d] = wi;
                    }
                }
            }
        }
        if self.to_depth {
            index.extend(pairs);
        } else {
            let mut inverse = vec![0usize; pairs.len()];
            for (d, &wi) in pairs.iter().enumerate() {
                inverse[wi] = d;
            }
            index.extend(inverse);
        }
        Ok(index)
    }

    pub fn infer(&self, inputs: &[&Fact]) -> OpResult<Fact> {
        Ok(Fact::new(
            inputs[0].dtype,
            self.output_shape(&inputs[0].shape)?,
        ))
    }
}

/// ScatterND(data, indices, updates): data with the slices `indices` names replaced by (or
/// combined with, by `reduction`) `updates`. Evaluated where it folds (attention masks built from
/// constants); compiled code does not run it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ScatterNd {
    /// None (replace), or the BinaryOp combining old and new: Add, Mul, Max, Min.
    pub reduction: Option<super::BinaryOp>,
}

impl ScatterNd {
    pub fn infer(&self, inputs: &[&Fact]) -> OpResult<Fact> {
        let (data, indices, updates) = (inputs[0], inputs[1], inputs[2]);
        op_ensure!(indices.dtype == DType::I64, "indices must be integers");
        op_ensure!(
            updates.dtype == data.dtype,
            "updates and data differ in type"
        );
        let k = *indices.shape.last().unwrap_or(&0);
        op_ensure!(
            !indices.shape.is_empty() && k <= data.shape.len(),
            "indices {:?} do not index data {:?}",
            indices.shape,
            data.shape
        );
        let mut want = indices.shape[..indices.shape.len() - 1].to_vec();
        want.extend(&data.shape[k..]);
        op_ensure!(
            updates.shape == want,
            "updates {:?} should be {want:?}",
            updates.shape
        );
        Ok(Fact::new(data.dtype, data.shape.clone()))
    }
}
