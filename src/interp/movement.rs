//! Ops that move data: each computes, for every output element, which input element it copies.

use crate::error::OpResult;
use crate::ir::ops::util::norm_axis;
use crate::ir::ops::{Concat, ConstantOfShape, Gather, Pad, Slice, Transpose};
use crate::ir::{Tensor, TensorData, numel, strides};
use crate::{op_bail, op_ensure};

/// Calls `f` with every multi-index of `shape` in row-major order.
pub fn for_each_index(shape: &[usize], mut f: impl FnMut(&[usize])) {
    let mut idx = vec![0usize; shape.len()];
    for _ in 0..numel(shape) {
        f(&idx);
        for a in (0..shape.len()).rev() {
            idx[a] += 1;
            if idx[a] < shape[a] {
                break;
            }
            idx[a] = 0;
        }
    }
}

pub fn transpose(t: &Transpose, x: &Tensor) -> OpResult<Tensor> {
    let perm = t.perm(x.rank())?;
    let out: Vec<usize> = perm.iter().map(|&p| x.shape()[p]).collect();
    let st = strides(x.shape());
    let mut index = Vec::with_capacity(x.len());
    for_each_index(&out, |i| {
        index.push(i.iter().zip(&perm).map(|(&v, &p)| v * st[p]).sum())
    });
    x.gather_flat(out, &index)
}

pub fn concat(c: &Concat, inputs: &[&Tensor]) -> OpResult<Tensor> {
    let first = inputs[0].shape();
    let a = norm_axis(c.axis, first.len())?;
    let outer = numel(&first[..a]);
    let mut out_shape = first.to_vec();
    out_shape[a] = inputs.iter().map(|t| t.shape()[a]).sum();
    let data = match inputs[0].data() {
        TensorData::F32(_) => {
            let parts: Vec<&[f32]> = inputs.iter().map(|t| t.f32s()).collect::<OpResult<_>>()?;
            TensorData::F32(interleave(&parts, inputs, a, outer))
        }
        TensorData::I64(_) => {
            let parts: Vec<&[i64]> = inputs.iter().map(|t| t.i64s()).collect::<OpResult<_>>()?;
            TensorData::I64(interleave(&parts, inputs, a, outer))
        }
    };
    Tensor::with_data(out_shape, data)
}

/// For each outer index, the blocks of every input along the axis, one after another.
fn interleave<T: Copy>(parts: &[&[T]], inputs: &[&Tensor], axis: usize, outer: usize) -> Vec<T> {
    let mut out = Vec::new();
    for o in 0..outer {
        for (p, t) in parts.iter().zip(inputs) {
            let block = numel(&t.shape()[axis..]);
            out.extend_from_slice(&p[o * block..][..block]);
        }
    }
    out
}

pub fn pad(p: &Pad, x: &Tensor) -> OpResult<Tensor> {
    let out = p.output_shape(x.shape())?;
    let shape = x.shape();
    let n = x.rank();
    if p.mode != crate::ir::ops::PadMode::Constant {
        op_ensure!(
            shape.iter().all(|&d| d > 0),
            "{:?} padding of an empty axis",
            p.mode
        );
    }
    let st = strides(shape);
    let mut sources = Vec::with_capacity(numel(&out));
    for_each_index(&out, |i| {
        let src: Option<usize> = (0..n)
            .map(|a| p.source(i[a], p.pads[a], shape[a]).map(|s| s * st[a]))
            .sum();
        sources.push(src);
    });
    match x.data() {
        TensorData::F32(v) => Tensor::from_f32(
            out,
            sources
                .iter()
                .map(|s| s.map_or(p.value, |s| v[s]))
                .collect(),
        ),
        TensorData::I64(v) => Tensor::from_i64(
            out,
            sources
                .iter()
                .map(|s| s.map_or(p.value as i64, |s| v[s]))
                .collect(),
        ),
    }
}

/// For each element of the slice of an input of `shape`, in row-major order, its flat index in
/// the input (shared by Slice and its adjoint).
pub fn slice_sources(s: &Slice, shape: &[usize]) -> OpResult<(Vec<usize>, Vec<usize>)> {
    let axes = s.resolve(shape)?;
    let out: Vec<usize> = axes.iter().map(|a| a.len).collect();
    let st = strides(shape);
    let mut index = Vec::with_capacity(numel(&out));
    for_each_index(&out, |i| {
        let flat: i64 = i
            .iter()
            .zip(&axes)
            .zip(&st)
            .map(|((&v, a), &s)| (a.start + v as i64 * a.step) * s as i64)
            .sum();
        index.push(flat as usize);
    });
    Ok((out, index))
}

pub fn slice(s: &Slice, x: &Tensor) -> OpResult<Tensor> {
    let (out, index) = slice_sources(s, x.shape())?;
    x.gather_flat(out, &index)
}

pub fn gather(g: &Gather, x: &Tensor, indices: &Tensor) -> OpResult<Tensor> {
    let a = norm_axis(g.axis, x.rank())?;
    let dim = x.shape()[a] as i64;
    let idx: Vec<usize> = indices
        .i64s()?
        .iter()
        .map(|&i| {
            let j = if i < 0 { i + dim } else { i };
            op_ensure!(
                (0..dim).contains(&j),
                "index {i} is out of range for axis of size {dim}{}",
                if a == 0 && x.rank() == 2 {
                    // A lookup table: ids or positions past its end.
                    format!(
                        " (a table of {dim} rows: an id past its end, or a sequence longer than the {dim} positions the model has)"
                    )
                } else {
                    String::new()
                }
            );
            Ok(j as usize)
        })
        .collect::<OpResult<_>>()?;
    let out = g.output_shape(x.shape(), indices.shape())?;
    let (outer, inner) = (numel(&x.shape()[..a]), numel(&x.shape()[a + 1..]));
    let mut index = Vec::with_capacity(numel(&out));
    for o in 0..outer {
        for &j in &idx {
            for i in 0..inner {
                index.push((o * dim as usize + j) * inner + i);
            }
        }
    }
    x.gather_flat(out, &index)
}

pub fn constant_of_shape(c: &ConstantOfShape, shape: &Tensor) -> OpResult<Tensor> {
    let out = ConstantOfShape::output_shape(shape)?;
    let n = numel(&out);
    let data = match c.value.data() {
        TensorData::F32(v) => TensorData::F32(vec![v[0]; n]),
        TensorData::I64(v) => TensorData::I64(vec![v[0]; n]),
    };
    Tensor::with_data(out, data)
}

/// Reshape-like ops: same data, new shape.
pub fn reshape_to(x: &Tensor, shape: Vec<usize>) -> OpResult<Tensor> {
    if numel(&shape) != x.len() {
        op_bail!("cannot view {:?} as {shape:?}", x.shape());
    }
    x.clone().reshape(shape)
}

/// Expand: each output element reads the input element numpy broadcasting pairs it with.
pub fn expand(x: &Tensor, shape: &Tensor) -> OpResult<Tensor> {
    let out = crate::ir::ops::Expand::output_shape(x.shape(), shape)?;
    let map = super::elementwise::broadcast_map(x.shape(), &out);
    x.gather_flat(out, &map)
}

/// Tile: output index i reads input index i mod dim on every axis.
pub fn tile(x: &Tensor, repeats: &Tensor) -> OpResult<Tensor> {
    let r = crate::ir::ops::Tile::repeats(x.shape(), repeats)?;
    let shape = x.shape();
    let out: Vec<usize> = shape.iter().zip(&r).map(|(d, r)| d * r).collect();
    let st = strides(shape);
    let mut index = Vec::with_capacity(numel(&out));
    for_each_index(&out, |i| {
        index.push(
            i.iter()
                .zip(shape)
                .zip(&st)
                .map(|((&v, &d), &s)| (v % d) * s)
                .sum(),
        );
    });
    x.gather_flat(out, &index)
}

/// Range(start, limit, delta) in the inputs' type.
pub fn range(start: &Tensor, limit: &Tensor, delta: &Tensor) -> OpResult<Tensor> {
    match (start.data(), limit.data(), delta.data()) {
        (TensorData::I64(s), TensorData::I64(l), TensorData::I64(d)) => {
            let n = crate::ir::ops::Range::count(s[0] as f64, l[0] as f64, d[0] as f64)?;
            Tensor::from_i64(vec![n], (0..n as i64).map(|k| s[0] + k * d[0]).collect())
        }
        (TensorData::F32(s), TensorData::F32(l), TensorData::F32(d)) => {
            let n =
                crate::ir::ops::Range::count(f64::from(s[0]), f64::from(l[0]), f64::from(d[0]))?;
            Tensor::from_f32(vec![n], (0..n).map(|k| s[0] + k as f32 * d[0]).collect())
        }
        _ => crate::op_bail!("start, limit and delta must have one type"),
    }
}

/// Resize: every output element the weighted sum of its taps.
pub fn resize(r: &crate::ir::ops::Resize, x: &Tensor, second: Option<&Tensor>) -> OpResult<Tensor> {
    let r = r.resolve(second)?;
    let v = x.f32s()?;
    let out = r.output_shape(x.shape())?;
    let mut y = vec![0f32; numel(&out)];
    for t in r.taps(x.shape())? {
        y[t.dst] += t.weight * v[t.src];
    }
    Tensor::from_f32(out, y)
}

/// The adjoint of a Resize: every input element the weighted sum of the outputs it fed.
pub fn resize_backward(b: &crate::ir::ops::ResizeBackward, dy: &Tensor) -> OpResult<Tensor> {
    let g = dy.f32s()?;
    let mut dx = vec![0f32; numel(&b.input_shape)];
    for t in b.resize.taps(&b.input_shape)? {
        dx[t.src] += t.weight * g[t.dst];
    }
    Tensor::from_f32(b.input_shape.clone(), dx)
}

/// For each output element of the movement op `op` (with its constant `args`) on an input of
/// `shape`, the flat input index it reads, or None where it is filled: the op run on the
/// input's indices (+1, so 0 marks a filled position).
pub fn movement_table(
    op: &crate::ir::Op,
    args: &[std::sync::Arc<Tensor>],
    shape: &[usize],
) -> OpResult<Vec<Option<usize>>> {
    let len = numel(shape);
    op_ensure!(
        len < 1 << 24,
        "input of {len} elements is too large for a movement table"
    );
    let encoded = Tensor::from_f32(shape.to_vec(), (1..=len).map(|i| i as f32).collect())?;
    let mut inputs = vec![&encoded];
    inputs.extend(args.iter().map(|a| &**a));
    let op = match op {
        // The fill value would read as an index.
        crate::ir::Op::Pad(p) => crate::ir::Op::Pad(Pad {
            value: 0.0,
            ..p.clone()
        }),
        op => op.clone(),
    };
    let out = super::eval(&op, &inputs)?;
    Ok(out
        .f32s()?
        .iter()
        .map(|&v| (v >= 1.0).then(|| v as usize - 1))
        .collect())
}

/// The adjoint of a movement op: every input element sums the output elements that read it.
pub fn movement_adjoint(
    m: &crate::ir::ops::backward::MovementAdjoint,
    dy: &Tensor,
) -> OpResult<Tensor> {
    let table = movement_table(&m.forward, &m.args, &m.input_shape)?;
    let g = dy.f32s()?;
    op_ensure!(
        g.len() == table.len(),
        "dy has {} elements for {}",
        g.len(),
        table.len()
    );
    let mut dx = vec![0f32; numel(&m.input_shape)];
    for (j, src) in table.into_iter().enumerate() {
        if let Some(i) = src {
            dx[i] += g[j];
        }
    }
    Tensor::from_f32(m.input_shape.clone(), dx)
}

/// ScatterND on f32 or i64 data.
pub fn scatter_nd(
    s: &crate::ir::ops::ScatterNd,
    data: &Tensor,
    indices: &Tensor,
    updates: &Tensor,
) -> OpResult<Tensor> {
    let shape = data.shape();
    let idx = indices.i64s()?;
    let k = *indices.shape().last().unwrap_or(&0);
    let st = strides(shape);
    let slice: usize = numel(&shape[k..]);
    // One index tuple per element of indices' leading axes.
    let count = numel(&indices.shape()[..indices.rank().saturating_sub(1)]);
    let mut starts = Vec::with_capacity(count);
    for t in 0..count {
        let mut at = 0usize;
        for a in 0..k {
            let d = shape[a] as i64;
            let i = idx[t * k + a];
            let i = if i < 0 { i + d } else { i };
            op_ensure!(
                (0..d).contains(&i),
                "index {} out of range for axis {a} of size {d}",
                idx[t * k + a]
            );
            at += i as usize * st[a];
        }
        starts.push(at);
    }
    let combine = |old: f64, new: f64| -> f64 {
        match s.reduction {
            None => new,
            Some(op) => op.f32(old as f32, new as f32) as f64,
        }
    };
    match (data.data(), updates.data()) {
        (TensorData::F32(d), TensorData::F32(u)) => {
            let mut out = d.clone();
            for (t, &at) in starts.iter().enumerate() {
                for j in 0..slice {
                    out[at + j] =
                        combine(f64::from(out[at + j]), f64::from(u[t * slice + j])) as f32;
                }
            }
            Tensor::from_f32(shape.to_vec(), out)
        }
        (TensorData::I64(d), TensorData::I64(u)) => {
            let mut out = d.clone();
            for (t, &at) in starts.iter().enumerate() {
                for j in 0..slice {
                    out[at + j] = match s.reduction {
                        None => u[t * slice + j],
                        Some(op) => op.i64(out[at + j], u[t * slice + j]).unwrap_or(0),
                    };
                }
            }
            Tensor::from_i64(shape.to_vec(), out)
        }
        _ => op_bail!("data and updates differ in type"),
    }
}
