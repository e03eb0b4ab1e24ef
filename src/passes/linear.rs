//! CanonicalizeLinear: every dense layer with a constant weight becomes
//! `Gemm{alpha 1, beta 1, trans_a 0, trans_b 0}(x[m,k], W[k,n], b[n]?)`, so the relevance pass sees
//! one form of "Linear" and its modified weights (w+, w^2, ...) are plain element-wise functions
//! of W. Rewrites: a Gemm with constant B (alpha, transB and beta folded into W and b), a 2-D
//! MatMul with a constant weight, and such a MatMul followed by Add of a constant bias (the form
//! newer exporters emit for nn.Linear).

use std::sync::Arc;

use petgraph::stable_graph::NodeIndex;

use super::Pass;
use crate::error::Result;
use crate::ir::ops::{BinaryOp, Gemm};
use crate::ir::{Graph, Op, Tensor};

/// Brings constant-weight Gemm/MatMul(+Add) into canonical Gemm form.
pub struct CanonicalizeLinear;

const CANONICAL: Gemm = Gemm {
    alpha: 1.0,
    beta: 1.0,
    trans_a: false,
    trans_b: false,
};

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

/// W' = alpha * op(B) as [k, n]; B itself when there is nothing to fold.
fn weight(b: &Arc<Tensor>, g: &Gemm) -> Option<Arc<Tensor>> {
    let (r, c) = (b.shape()[0], b.shape()[1]);
    let v = b.f32s().ok()?;
    if !g.trans_b && g.alpha == 1.0 {
        return Some(Arc::clone(b));
    }
    let (k, n) = if g.trans_b { (c, r) } else { (r, c) };
    let mut data = vec![0f32; k * n];
    if g.trans_b {
        // Blocked, so both the rows read and the rows written stay in cache (a VGG16
        // classifier weight is 100M values).
        const TILE: usize = 32;
        for r0 in (0..k).step_by(TILE) {
            for c0 in (0..n).step_by(TILE) {
                for row in r0..(r0 + TILE).min(k) {
                    for col in c0..(c0 + TILE).min(n) {
                        data[row * n + col] = g.alpha * v[col * c + row];
                    }
                }
            }
        }
    } else {
        data.iter_mut().zip(v).for_each(|(d, &x)| *d = g.alpha * x);
    }
    Tensor::from_f32(vec![k, n], data).ok().map(Arc::new)
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
                Op::Gemm(g) if g != CANONICAL && !g.trans_a => gemm(graph, n, &g),
                Op::MatMul => matmul(graph, n),
                _ => false,
            };
        }
        Ok(changed)
    }
}

fn rewrite(graph: &mut Graph, n: NodeIndex, x: NodeIndex, w: Arc<Tensor>, b: Option<Tensor>) {
    let name = graph.node(n).name.clone();
    let mut inputs = vec![x, graph.add(format!("{name}.weight"), Op::Const(w), &[])];
    if let Some(b) = b {
        inputs.push(graph.add(format!("{name}.bias"), Op::Const(Arc::new(b)), &[]));
    }
    graph.set_inputs(n, &inputs);
    graph.node_mut(n).op = Op::Gemm(CANONICAL);
}

fn gemm(graph: &mut Graph, n: NodeIndex, g: &Gemm) -> bool {
    let ins = graph.inputs_of(n);
    let Some(b) = graph.constant_f32(ins[1]) else {
        return false;
    };
    let Some(w) = weight(&b, g) else { return false };
    let cols = w.shape()[1];
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
    rewrite(graph, n, ins[0], w, bias);
    true
}

fn matmul(graph: &mut Graph, n: NodeIndex) -> bool {
    let ins = graph.inputs_of(n);
    let Some(w) = graph.constant_f32(ins[1]) else {
        return false;
    };
    let x_rank = graph.node(ins[0]).fact.as_ref().map_or(0, |f| f.rank());
    if x_rank != 2 || w.rank() != 2 {
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
    match bias {
        Some((add, b)) => {
            rewrite(graph, n, ins[0], w, Some(b));
            graph.replace_uses(add, n);
            graph.nodes.remove_node(add);
        }
        None => rewrite(graph, n, ins[0], w, None),
    }
    true
}
