//! Broadcasting binaries, Sum, activations.

use crate::error::OpResult;
use crate::ir::ops::util::broadcast;
use crate::ir::ops::{Activation, BinaryOp};
use crate::ir::{Tensor, TensorData, numel, strides};
use crate::op_bail;

/// For each element of `out` (row-major), the flat index of the element of an input of shape
/// `input` that numpy broadcasting pairs with it.
pub fn broadcast_map(input: &[usize], out: &[usize]) -> Vec<usize> {
    let n = numel(out);
    if input == out {
        return (0..n).collect();
    }
    let offset = out.len() - input.len();
    let in_strides = strides(input);
    // The step each output axis moves the input's flat index by (0 where it broadcasts).
    let step: Vec<usize> = (0..out.len())
        .map(|a| {
            a.checked_sub(offset)
                .filter(|&i| input[i] != 1)
                .map_or(0, |i| in_strides[i])
        })
        .collect();
    let mut map = Vec::with_capacity(n);
    let mut idx = vec![0usize; out.len()];
    let mut flat = 0usize;
    for _ in 0..n {
        map.push(flat);
        // Advance the multi-index (row-major odometer), keeping `flat` in step.
        for a in (0..out.len()).rev() {
            idx[a] += 1;
            flat += step[a];
            if idx[a] < out[a] {
                break;
            }
            flat -= step[a] * idx[a];
            idx[a] = 0;
        }
    }
    map
}

fn zip_with(
    a: &Tensor,
    b: &Tensor,
    f32_op: impl Fn(f32, f32) -> f32,
    i64_op: impl Fn(i64, i64) -> OpResult<i64>,
) -> OpResult<Tensor> {
    let out = broadcast(a.shape(), b.shape())?;
    // Same shapes, or one side a single value: no index maps (weights of 100M elements fold
    // through here when the relevance pass makes modified weights).
    let (la, lb) = (a.len(), b.len());
    match (a.data(), b.data()) {
        (TensorData::F32(x), TensorData::F32(y)) if la == lb && a.shape() == b.shape() => {
            return Tensor::from_f32(out, x.iter().zip(y).map(|(&p, &q)| f32_op(p, q)).collect());
        }
        (TensorData::F32(x), TensorData::F32(y)) if lb == 1 && la == numel(&out) => {
            let q = y[0];
            return Tensor::from_f32(out, x.iter().map(|&p| f32_op(p, q)).collect());
        }
        (TensorData::F32(x), TensorData::F32(y)) if la == 1 && lb == numel(&out) => {
            let p = x[0];
            return Tensor::from_f32(out, y.iter().map(|&q| f32_op(p, q)).collect());
        }
        _ => {}
    }
    let (ma, mb) = (
        broadcast_map(a.shape(), &out),
        broadcast_map(b.shape(), &out),
    );
    match (a.data(), b.data()) {
        (TensorData::F32(x), TensorData::F32(y)) => {
            let v = ma
                .iter()
                .zip(&mb)
                .map(|(&i, &j)| f32_op(x[i], y[j]))
                .collect();
            Tensor::from_f32(out, v)
        }
        (TensorData::I64(x), TensorData::I64(y)) => {
            let v = ma
                .iter()
                .zip(&mb)
                .map(|(&i, &j)| i64_op(x[i], y[j]))
                .collect::<OpResult<_>>()?;
            Tensor::from_i64(out, v)
        }
        _ => op_bail!("operands have different types"),
    }
}

pub fn binary(op: BinaryOp, a: &Tensor, b: &Tensor) -> OpResult<Tensor> {
    // The exponent or slope may be of another type than the base: computed in the base's.
    let converted;
    let b = match (op, a.data(), b.data()) {
        (BinaryOp::Pow | BinaryOp::PRelu, TensorData::F32(_), TensorData::I64(_))
        | (BinaryOp::Pow | BinaryOp::PRelu, TensorData::I64(_), TensorData::F32(_)) => {
            converted = b.cast(a.dtype());
            &converted
        }
        _ => b,
    };
    let out = zip_with(
        a,
        b,
        |x, y| op.f32(x, y),
        |x, y| match op.i64(x, y) {
            Some(v) => Ok(v),
            None => op_bail!(
                "{} of integers {x} and {y} has no integer result",
                op.name()
            ),
        },
    )?;
    Ok(if op.is_predicate() {
        out.cast(crate::ir::DType::I64)
    } else {
        out
    })
}

/// Where: x where `cond` is nonzero, else y, all three broadcast to one shape.
pub fn select(cond: &Tensor, x: &Tensor, y: &Tensor) -> OpResult<Tensor> {
    let out = broadcast(cond.shape(), &broadcast(x.shape(), y.shape())?)?;
    let (mc, mx, my) = (
        broadcast_map(cond.shape(), &out),
        broadcast_map(x.shape(), &out),
        broadcast_map(y.shape(), &out),
    );
    let truth: Vec<bool> = match cond.data() {
        TensorData::F32(c) => mc.iter().map(|&i| c[i] != 0.0).collect(),
        TensorData::I64(c) => mc.iter().map(|&i| c[i] != 0).collect(),
    };
    match (x.data(), y.data()) {
        (TensorData::F32(a), TensorData::F32(b)) => {
            let v = (0..truth.len())
                .map(|k| if truth[k] { a[mx[k]] } else { b[my[k]] })
                .collect();
            Tensor::from_f32(out, v)
        }
        (TensorData::I64(a), TensorData::I64(b)) => {
            let v = (0..truth.len())
                .map(|k| if truth[k] { a[mx[k]] } else { b[my[k]] })
                .collect();
            Tensor::from_i64(out, v)
        }
        _ => op_bail!("x and y have different types"),
    }
}

pub fn sum(inputs: &[&Tensor]) -> OpResult<Tensor> {
    let mut acc = inputs[0].clone();
    for t in &inputs[1..] {
        acc = binary(BinaryOp::Add, &acc, t)?;
    }
    Ok(acc)
}

pub fn activation(a: Activation, x: &Tensor) -> OpResult<Tensor> {
    match x.data() {
        TensorData::I64(v) => {
            let Some(out) = v
                .iter()
                .map(|&v| a.apply_i64(v))
                .collect::<Option<Vec<_>>>()
            else {
                op_bail!("{} is not defined on integers", a.name());
            };
            Tensor::from_i64(x.shape().to_vec(), out)
        }
        TensorData::F32(v) => {
            Tensor::from_f32(x.shape().to_vec(), v.iter().map(|&v| a.apply(v)).collect())
        }
    }
}

/// A Reduce op: every output element the reduction of the input elements that map to it.
pub fn reduce(r: &crate::ir::ops::Reduce, x: &Tensor) -> OpResult<Tensor> {
    let shape = x.shape();
    let axes = r.axes(shape.len())?;
    let kept: Vec<usize> = shape
        .iter()
        .enumerate()
        .map(|(a, &d)| if axes.contains(&a) { 1 } else { d })
        .collect();
    // Each input element's output position: its index with the reduced axes set to 0.
    let out_strides = strides(&kept);
    let in_strides = strides(shape);
    let mut groups: Vec<Vec<f64>> = vec![Vec::new(); numel(&kept)];
    let values: Vec<f64> = match x.data() {
        TensorData::F32(v) => v.iter().map(|&v| f64::from(v)).collect(),
        TensorData::I64(v) => v.iter().map(|&v| v as f64).collect(),
    };
    for (i, &v) in values.iter().enumerate() {
        let mut o = 0;
        for a in 0..shape.len() {
            if !axes.contains(&a) {
                o += (i / in_strides[a]) % shape[a] * out_strides[a];
            }
        }
        groups[o].push(v);
    }
    let out_shape = r.output_shape(shape)?;
    let reduced = groups.into_iter().map(|g| r.kind.apply(g.into_iter()));
    match x.data() {
        TensorData::F32(_) => Tensor::from_f32(out_shape, reduced.map(|v| v as f32).collect()),
        TensorData::I64(_) => Tensor::from_i64(out_shape, reduced.map(|v| v as i64).collect()),
    }
}

/// ArgMax / ArgMin along one axis of a float or integer tensor.
pub fn arg_extremum(a: &crate::ir::ops::ArgExtremum, x: &Tensor) -> OpResult<Tensor> {
    let shape = x.shape();
    let (axis, out_shape) = a.output_shape(shape)?;
    let values: Vec<f64> = match x.data() {
        TensorData::F32(v) => v.iter().map(|&v| f64::from(v)).collect(),
        TensorData::I64(v) => v.iter().map(|&v| v as f64).collect(),
    };
    let (len, inner) = (shape[axis], numel(&shape[axis + 1..]));
    let outer = numel(&shape[..axis]);
    let mut out = Vec::with_capacity(outer * inner);
    for o in 0..outer {
        for i in 0..inner {
            let at = |k: usize| values[(o * len + k) * inner + i];
            let mut best = 0;
            for k in 1..len {
                if a.better(at(k), at(best)) {
                    best = k;
                }
            }
            out.push(best as i64);
        }
    }
    Tensor::from_i64(out_shape, out)
}
