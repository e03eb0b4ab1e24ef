//! CanonicalizeLinear: every dense layer with a constant weight becomes
//! `Gemm{alpha 1, beta 1, trans_a 0, trans_b t}(x[m,k], W, b[n]?)` with W of shape [k,n] (t = 0) or
//! [n,k] (t = 1, as PyTorch's nn.Linear stores it), so the relevance pass sees one form of
//! "Linear" and its modified weights (w+, w^2, ...) are plain element-wise functions of W.
//! transB stays an attribute: compiled GEMMs read a transposed weight through strides, so
//! transposing a 100M-value classifier weight at compile time would only cost time and memory.
//! Rewrites: a Gemm with constant B (alpha and beta folded into W and b), a 2-D MatMul with a
//! constant weight, and such a MatMul followed by Add of a constant bias (the form newer
//! exporters emit for nn.Linear). A MatMul of a rank-3+ input (a transformer's tokens) runs as
//! that Gemm over the rows: Reshape to [rows, k], Gemm, Reshape back; the bias then belongs to
//! the layer, as rules with a bias in their denominator (gamma, z+) need.

use std::sync::Arc;

use petgraph::stable_graph::NodeIndex;

use super::Pass;
use crate::error::Result;
use crate::ir::ops::{BinaryOp, Gemm, Reshape};
use crate::ir::{Graph, Op, Tensor};

/// Brings constant-weight Gemm/MatMul(+Add) into canonical Gemm form.
pub struct CanonicalizeLinear;

/// The canonical form, with `trans_b` as the layer has it.
fn canonical(trans_b: bool) -> Gemm {
    Gemm {
        alpha: 1.0,
        beta: 1.0,
        trans_a: false,
        trans_b,
    }
}

/// A bias that is one value per output column: shapes [n], [1, n], or a single value.
fn column_bias(t: &Tensor, n: usize, scale: f32) -> Option<Tensor> {
    let v = t.f32s().ok()?;
    let values: Vec<f32> = match (t.shape(), v.len()) {
        (_, 1) => vec![v[0] * scale; n],
        ([len], _) | ([1, len], _) if *len == n => v.iter().map(|x| x * scale).collect(),
        _ => return None,
    };
    Tensor::from_f32(vec![n], values).ok()
}

/// W' = alpha * B (B itself when alpha is 1).
fn weight(b: &Arc<Tensor>, g: &Gemm) -> Option<Arc<Tensor>> {
    if g.alpha == 1.0 {
        return Some(Arc::clone(b));
    }
    let v = b.f32s().ok()?;
    let data = v.iter().map(|&x| g.alpha * x).collect();
    Tensor::from_f32(b.shape().to_vec(), data)
        .ok()
        .map(Arc::new)
}

impl Pass for CanonicalizeLinear {
    fn name(&self) -> &'static str {
        "CanonicalizeLinear"
    }

    fn run(&self, graph: &mut Graph) -> Result<bool> {
        let mut changed = false;
        let nodes: Vec<NodeIndex> = graph.nodes.node_indices().collect();
        for n in nodes {
            if !graph.nodes.contains_node(n) {
                continue;
            }
            changed |= match graph.node(n).op.clone() {
                Op::Gemm(g) if g != canonical(g.trans_b) && !g.trans_a => gemm(graph, n, &g),
                Op::MatMul => matmul(graph, n),
                _ => false,
            };
        }
        Ok(changed)
    }
}

fn rewrite(
    graph: &mut Graph,
    n: NodeIndex,
    x: NodeIndex,
    (w, trans_b): (Arc<Tensor>, bool),
    b: Option<Tensor>,
) {
    let name = graph.node(n).name.clone();
    let mut inputs = vec![x, graph.add(format!("{name}.weight"), Op::Const(w), &[])];
    if let Some(b) = b {
        inputs.push(graph.add(format!("{name}.bias"), Op::Const(Arc::new(b)), &[]));
    }
    graph.set_inputs(n, &inputs);
    graph.node_mut(n).op = Op::Gemm(canonical(trans_b));
}

fn gemm(graph: &mut Graph, n: NodeIndex, g: &Gemm) -> bool {
    let ins = graph.inputs_of(n);
    let Some(b) = graph.constant_f32(ins[1]) else {
        return false;
    };
    let Some(w) = weight(&b, g) else { return false };
    let cols = w.shape()[if g.trans_b { 0 } else { 1 }];
    let bias = match ins.get(2) {
        None => None,
        Some(&c) => match graph
            .constant_f32(c)
            .and_then(|c| column_bias(&c, cols, g.beta))
        {
            Some(bias) => Some(bias),
            None => return false,
        },
    };
    rewrite(graph, n, ins[0], (w, g.trans_b), bias);
    true
}

fn matmul(graph: &mut Graph, n: NodeIndex) -> bool {
    let ins = graph.inputs_of(n);
    let Some(w) = graph.constant_f32(ins[1]) else {
        return false;
    };
    let x_shape = graph
        .node(ins[0])
        .fact
        .as_ref()
        .map_or(vec![], |f| f.shape.clone());
    if x_shape.len() < 2 || w.rank() != 2 {
        return false;
    }
    let cols = w.shape()[1];
    // Absorb a following constant bias when this MatMul feeds only that Add.
    let consumers = graph.consumers_of(n);
    let mut bias = None;
    if let [(add, _)] = consumers.as_slice()
        && matches!(graph.node(*add).op, Op::Binary(BinaryOp::Add))
        && !graph.is_output(n)
    {
        let other = graph.inputs_of(*add).into_iter().find(|&i| i != n);
        if let Some(b) = other
            .and_then(|o| graph.constant_f32(o))
            .and_then(|b| column_bias(&b, cols, 1.0))
        {
            bias = Some((*add, b));
        }
    }
    let end = bias.as_ref().map_or(n, |(add, _)| *add);
    let x = if x_shape.len() == 2 {
        ins[0]
    } else {
        let rows = x_shape[..x_shape.len() - 1].iter().product();
        let k = x_shape[x_shape.len() - 1];
        let mut out_shape = x_shape[..x_shape.len() - 1].to_vec();
        out_shape.push(cols);
        let name = graph.node(n).name.clone();
        // The uses move to the restoring Reshape before it reads the Gemm, so it is not its
        // own consumer.
        let restore = graph.add(format!("{name}.unflatten"), reshape(), &[]);
        graph.replace_uses(end, restore);
        let target = shape_const(graph, &format!("{name}.shape"), &out_shape);
        graph.set_inputs(restore, &[end, target]);
        let target = shape_const(graph, &format!("{name}.rows_shape"), &[rows, k]);
        graph.add(format!("{name}.rows"), reshape(), &[ins[0], target])
    };
    match bias {
        Some((add, b)) => {
            rewrite(graph, n, x, (w, false), Some(b));
            graph.replace_uses(add, n);
            graph.nodes.remove_node(add);
        }
        None => rewrite(graph, n, x, (w, false), None),
    }
    true
}

fn reshape() -> Op {
    Op::Reshape(Reshape { allowzero: false })
}

/// A constant i64 shape tensor for a Reshape.
fn shape_const(graph: &mut Graph, name: &str, shape: &[usize]) -> NodeIndex {
    let dims = shape.iter().map(|&d| d as i64).collect();
    let t = Tensor::from_i64(vec![shape.len()], dims).expect("one value per axis");
    graph.add(name.to_string(), Op::Const(Arc::new(t)), &[])
}
