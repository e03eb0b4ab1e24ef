//! Sign analysis: whether a value is non-negative for every input. The relevance pass uses it to
//! drop the x- terms of the sign-splitting rules (z+, alpha-beta, gamma) when a layer's input is,
//! say, the output of a ReLU: x- is then identically zero, and so are the convolutions and
//! products it would feed (what a hook-based library computes anyway).

use crate::ir::ops::{Activation, BinaryOp, Pointwise};
use crate::ir::{Graph, NodeIndex, Op};

/// Deep chains of sign-preserving ops are rare; past this depth the answer is "unknown".
const MAX_DEPTH: usize = 64;

/// Whether every element of `n`'s value is >= 0 whatever the model input is.
pub fn is_non_negative(graph: &Graph, n: NodeIndex) -> bool {
    non_negative(graph, n, 0)
}

fn non_negative(g: &Graph, n: NodeIndex, depth: usize) -> bool {
    if depth > MAX_DEPTH {
        return false;
    }
    if let Some(c) = g.constant(n) {
        return c.f32s().is_ok_and(|v| v.iter().all(|&x| x >= 0.0));
    }
    let ins = g.inputs_of(n);
    let input = |i: usize| ins.get(i).is_some_and(|&x| non_negative(g, x, depth + 1));
    let all = || ins.iter().all(|&x| non_negative(g, x, depth + 1));
    match &g.node(n).op {
        Op::Activation(Activation::Relu | Activation::Sigmoid) | Op::Softmax(_) => true,
        Op::Activation(Activation::Clip { min, .. }) => *min >= 0.0 || input(0),
        Op::Activation(Activation::LeakyRelu { .. }) => input(0),
        Op::Pointwise(
            Pointwise::Positive
            | Pointwise::Square
            | Pointwise::IsPositive
            | Pointwise::IsNegative
            | Pointwise::One,
        ) => true,
        Op::Pool(_)
        | Op::GlobalPool(_)
        | Op::Flatten(_)
        | Op::Reshape(_)
        | Op::Squeeze(_)
        | Op::Unsqueeze(_)
        | Op::Identity
        | Op::Hold
        | Op::Transpose(_)
        | Op::Slice(_)
        | Op::Gather(_) => input(0),
        Op::Pad(p) => p.value >= 0.0 && input(0),
        Op::Concat(_) | Op::Sum | Op::Binary(BinaryOp::Add | BinaryOp::Mul) => all(),
        _ => false,
    }
}
