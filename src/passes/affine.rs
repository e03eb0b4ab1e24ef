//! AffineToBatchNorm: element-wise Mul/Add/Sub/Div of a computed tensor and a per-channel
//! constant (shape [C, 1, ...] or a single value against input [N, C, ...]) is a per-channel affine
//! map, which is what BatchNormalization computes. Exporters write BatchNorm this way (Mul/Add with
//! Unsqueeze'd constants) and models put input normalisation in front; turning each into a
//! BatchNormalization (mean 0, var 1, epsilon 0, so exact) and merging chains of them lets
//! FoldBatchNorm fold them into the Conv/Gemm before, and gives the rest BatchNorm's rule.

use std::sync::Arc;

use petgraph::stable_graph::NodeIndex;

use super::Pass;
use super::batchnorm::batchnorm_affine;
use crate::error::Result;
use crate::ir::ops::{BatchNorm, BinaryOp};
use crate::ir::{Graph, Op, Tensor};

/// Rewrites per-channel affine element-wise ops into BatchNormalization, merging chains.
pub struct AffineToBatchNorm;

/// The per-channel values of constant `c` against an input of shape `x`, if it is one value or
/// one value per channel (axis 1) and broadcasting does not grow the input.
fn per_channel(c: &Tensor, x: &[usize]) -> Option<Vec<f32>> {
    let v = c.f32s().ok()?;
    if x.len() < 2 || c.rank() > x.len() {
        return None;
    }
    let channels = x[1];
    let mut padded = vec![1usize; x.len() - c.rank()];
    padded.extend_from_slice(c.shape());
    let only_channel = padded
        .iter()
        .enumerate()
        .all(|(axis, &d)| d == 1 || (axis == 1 && d == channels));
    if !only_channel {
        return None;
    }
    Some(if v.len() == 1 {
        vec![v[0]; channels]
    } else {
        v.to_vec()
    })
}

impl Pass for AffineToBatchNorm {
    fn name(&self) -> &'static str {
        "AffineToBatchNorm"
    }

    fn run(&self, graph: &mut Graph) -> Result<bool> {
        let mut changed = false;
        let nodes: Vec<NodeIndex> = graph.nodes.node_indices().collect();
        for n in nodes {
            if !graph.nodes.contains_node(n) {
                continue;
            }
            if let Some((x, scale, shift)) = affine_of(graph, n) {
                let name = graph.node(n).name.clone();
                // A BatchNorm feeding only this op merges with it into one.
                let (x, scale, shift) = match batchnorm_affine(graph, x) {
                    Some(inner) if graph.consumers_of(x).len() == 1 && !graph.is_output(x) => {
                        let (s1, t1) = (inner.scale.clone(), inner.shift());
                        let inner = graph.inputs_of(x)[0];
                        let s: Vec<f32> = s1.iter().zip(&scale).map(|(a, b)| a * b).collect();
                        let t = t1
                            .iter()
                            .zip(&scale)
                            .zip(&shift)
                            .map(|((t1, s2), t2)| t1 * s2 + t2)
                            .collect();
                        (inner, s, t)
                    }
                    _ => (x, scale, shift),
                };
                let c = scale.len();
                let konst = |graph: &mut Graph, role: &str, v: Vec<f32>| {
                    let t = Tensor::from_f32(vec![c], v).expect("one value per channel");
                    graph.add(format!("{name}.{role}"), Op::Const(Arc::new(t)), &[])
                };
                let inputs = [
                    x,
                    konst(graph, "scale", scale),
                    konst(graph, "shift", shift),
                    konst(graph, "mean", vec![0.0; c]),
                    konst(graph, "var", vec![1.0; c]),
                ];
                graph.set_inputs(n, &inputs);
                graph.node_mut(n).op = Op::BatchNorm(BatchNorm { epsilon: 0.0 });
                changed = true;
            }
        }
        Ok(changed)
    }
}

/// (computed input, scale, shift) when `n` is a per-channel affine Mul/Add/Sub/Div.
fn affine_of(graph: &Graph, n: NodeIndex) -> Option<(NodeIndex, Vec<f32>, Vec<f32>)> {
    let Op::Binary(op) = graph.node(n).op else {
        return None;
    };
    let ins = graph.inputs_of(n);
    let konst = |i: NodeIndex| match &graph.node(i).op {
        Op::Const(t) => Some(t.clone()),
        _ => None,
    };
    let (slot, x, c) = match (konst(ins[0]), konst(ins[1])) {
        (None, Some(c)) => (0, ins[0], c),
        (Some(c), None) => (1, ins[1], c),
        _ => return None,
    };
    let shape = &graph.node(x).fact.as_ref()?.shape;
    if graph.node(n).fact.as_ref()?.shape != *shape {
        return None;
    }
    let v = per_channel(&c, shape)?;
    let ones = vec![1.0; v.len()];
    let zeros = vec![0.0; v.len()];
    Some(match (op, slot) {
        (BinaryOp::Mul, _) => (x, v, zeros),
        (BinaryOp::Add, _) => (x, ones, v),
        (BinaryOp::Sub, 0) => (x, ones, v.iter().map(|a| -a).collect()),
        (BinaryOp::Sub, _) => (x, vec![-1.0; v.len()], v),
        (BinaryOp::Div, 0) if v.iter().all(|&a| a != 0.0) => {
            (x, v.iter().map(|a| 1.0 / a).collect(), zeros)
        }
        _ => return None,
    })
}
