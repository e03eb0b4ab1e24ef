//! FuseGelu: the GELU as exporters write it out becomes one `Gelu` activation: the exact form
//! x * 0.5 * (1 + erf(x / sqrt 2)) (the TorchScript exporter before opset 20, with x * (1 /
//! sqrt 2) for the division) and the tanh approximation x * 0.5 * (1 + tanh(sqrt(2 / pi) (x +
//! 0.044715 x^3))) (the cube as Pow(x, 3) or x * x * x), in any order of the products. The value is the same; what changes is
//! that relevance rules see one pointwise function (AttnLRP's identity rule) instead of a
//! product of x with a function of x plus constants, which no product rule treats as identity.

use petgraph::stable_graph::NodeIndex;

use super::Pass;
use crate::error::Result;
use crate::ir::ops::{Activation, BinaryOp};
use crate::ir::{Graph, Op};

/// Fuses written-out exact GELUs into `Gelu` activations.
pub struct FuseGelu;

/// The value of a one-element float constant.
fn scalar(graph: &Graph, n: NodeIndex) -> Option<f32> {
    let t = graph.constant(n)?;
    match t.f32s() {
        Ok([v]) => Some(*v),
        _ => None,
    }
}

fn near(a: f32, b: f32) -> bool {
    (a - b).abs() <= 1e-5 * b.abs().max(1.0)
}

/// For a binary node `n` of `op` with a scalar constant operand equal to `c`: its other operand.
fn with_scalar(graph: &Graph, n: NodeIndex, op: BinaryOp, c: f32) -> Option<NodeIndex> {
    if graph.node(n).op != Op::Binary(op) {
        return None;
    }
    let ins = graph.inputs_of(n);
    let [a, b] = ins.as_slice() else { return None };
    let commutes = matches!(op, BinaryOp::Add | BinaryOp::Mul);
    match (scalar(graph, *a), scalar(graph, *b)) {
        (_, Some(v)) if near(v, c) => Some(*a),
        (Some(v), _) if commutes && near(v, c) => Some(*b),
        _ => None,
    }
}

/// The single consumer of `n`, if it has exactly one and `n` is not a graph output.
fn only_consumer(graph: &Graph, n: NodeIndex) -> Option<NodeIndex> {
    if graph.outputs.iter().any(|o| o.node == n) {
        return None;
    }
    match graph.consumers_of(n).as_slice() {
        [(c, _)] => Some(*c),
        _ => None,
    }
}

/// The operand of Mul node `n` other than `one`, if `one` is an operand.
fn other_factor(graph: &Graph, n: NodeIndex, one: NodeIndex) -> Option<NodeIndex> {
    if graph.node(n).op != Op::Binary(BinaryOp::Mul) {
        return None;
    }
    match graph.inputs_of(n).as_slice() {
        [a, b] if *a == one => Some(*b),
        [a, b] if *b == one => Some(*a),
        _ => None,
    }
}

/// Whether `c` computes x^3: Pow(x, 3), or x * x * x in either grouping.
fn is_cube(graph: &Graph, c: NodeIndex, x: NodeIndex) -> bool {
    if with_scalar(graph, c, BinaryOp::Pow, 3.0) == Some(x) {
        return true;
    }
    let is_square = |s: NodeIndex| {
        graph.node(s).op == Op::Binary(BinaryOp::Mul) && graph.inputs_of(s) == [x, x]
    };
    match other_factor(graph, c, x) {
        Some(s) => is_square(s),
        None => false,
    }
}

/// The x of a tanh GELU's inner argument `d` = sqrt(2 / pi) (x + 0.044715 x^3).
fn tanh_argument(graph: &Graph, d: NodeIndex) -> Option<NodeIndex> {
    let u = with_scalar(graph, d, BinaryOp::Mul, (2.0 / std::f32::consts::PI).sqrt())?;
    if graph.node(u).op != Op::Binary(BinaryOp::Add) {
        return None;
    }
    let ins = graph.inputs_of(u);
    let [p, q] = ins.as_slice() else { return None };
    [(*p, *q), (*q, *p)].into_iter().find_map(|(x, w)| {
        let cube = with_scalar(graph, w, BinaryOp::Mul, 0.044715)?;
        is_cube(graph, cube, x).then_some(x)
    })
}

/// The GELU ending at the Erf or Tanh node `e`: (x, the node whose value is the GELU, whether
/// it is the tanh approximation).
fn match_gelu(graph: &Graph, e: NodeIndex) -> Option<(NodeIndex, NodeIndex, bool)> {
    let d = *graph.inputs_of(e).first()?;
    let tanh = graph.node(e).op == Op::Activation(Activation::Tanh);
    let x = if tanh {
        tanh_argument(graph, d)?
    } else {
        with_scalar(graph, d, BinaryOp::Div, std::f32::consts::SQRT_2)
            .or_else(|| with_scalar(graph, d, BinaryOp::Mul, std::f32::consts::FRAC_1_SQRT_2))?
    };
    only_consumer(graph, d)?;
    let (x, y) = match_tail(graph, e, x)?;
    Some((x, y, tanh))
}

/// The products after the inner function `e` of x: (1 + e) times x times 0.5, in any order.
fn match_tail(graph: &Graph, e: NodeIndex, x: NodeIndex) -> Option<(NodeIndex, NodeIndex)> {
    let a = only_consumer(graph, e)?;
    if with_scalar(graph, a, BinaryOp::Add, 1.0)? != e {
        return None;
    }
    let m = only_consumer(graph, a)?;
    // x * (1 + erf) then * 0.5; (1 + erf) * 0.5 then * x; or (1 + erf) * (0.5 x).
    if let Some(other) = other_factor(graph, m, a) {
        if other == x {
            let y = only_consumer(graph, m)?;
            return (with_scalar(graph, y, BinaryOp::Mul, 0.5)? == m).then_some((x, y));
        }
        if with_scalar(graph, other, BinaryOp::Mul, 0.5) == Some(x) {
            return Some((x, m));
        }
        if scalar(graph, other).is_some_and(|v| near(v, 0.5)) {
            let y = only_consumer(graph, m)?;
            return (other_factor(graph, y, m)? == x).then_some((x, y));
        }
    }
    None
}

impl Pass for FuseGelu {
    fn name(&self) -> &'static str {
        "FuseGelu"
    }

    fn run(&self, graph: &mut Graph) -> Result<bool> {
        let inner: Vec<NodeIndex> = graph
            .nodes
            .node_indices()
            .filter(|&n| {
                matches!(
                    graph.node(n).op,
                    Op::Activation(Activation::Erf | Activation::Tanh)
                )
            })
            .collect();
        let mut changed = false;
        for e in inner {
            let Some((x, y, tanh)) = match_gelu(graph, e) else {
                continue;
            };
            let name = graph.node(y).name.clone();
            let g = graph.add(
                format!("{name}.gelu"),
                Op::Activation(Activation::Gelu { tanh }),
                &[x],
            );
            graph.node_mut(g).fact = graph.node(y).fact.clone();
            graph.replace_uses(y, g);
            changed = true;
        }
        Ok(changed)
    }
}
