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
    match op {
        BinaryOp::Add => zip_with(a, b, |x, y| x + y, |x, y| Ok(x.wrapping_add(y))),
        BinaryOp::Sub => zip_with(a, b, |x, y| x - y, |x, y| Ok(x.wrapping_sub(y))),
        BinaryOp::Mul => zip_with(a, b, |x, y| x * y, |x, y| Ok(x.wrapping_mul(y))),
        BinaryOp::Div => zip_with(
            a,
            b,
            |x, y| x / y,
            |x, y| match x.checked_div(y) {
                Some(q) => Ok(q),
                None => op_bail!("integer division by zero"),
            },
        ),
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
    let v = x.f32s()?.iter().map(|&v| a.apply(v)).collect();
    Tensor::from_f32(x.shape().to_vec(), v)
}
