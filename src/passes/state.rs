//! HoldStates: keeps the constant initial states of a recurrent cell written out by an exporter
//! (h_0 and c_0 from a ConstantOfShape) as operands of the cell's first step, by putting an
//! [`Op::Hold`] between the constant and its use, before folding would merge `h_0 U` into a bias
//! and turn `f * c_0` into a scaling. The relevance rules then see them as Arras et al. do: inputs
//! of the first step's linear map and cell update (the bias factor counts them; relevance that
//! reaches them is reported as left on the states). The ONNX LSTM/GRU/RNN importer holds its
//! states itself.
//!
//! A state is a constant (a known value) of the full shape of its use that feeds either the data
//! operand of a Gemm/MatMul with a constant weight, or a Mul with a sigmoid gate, where that node's
//! only consumer is an Add with a computed operand: the pre-activation `x W + h_0 U` and the cell
//! update `f * c_0 + i * g`. A broadcast constant (a scalar scale, a per-channel bias) is never a
//! state.

use super::Pass;
use crate::error::Result;
use crate::ir::ops::{Activation, BinaryOp};
use crate::ir::{Graph, NodeIndex, Op};

pub struct HoldStates;

fn known(graph: &Graph, n: NodeIndex) -> bool {
    graph
        .node(n)
        .fact
        .as_ref()
        .is_some_and(|f| f.value.is_some())
}

fn is_sigmoid(graph: &Graph, n: NodeIndex) -> bool {
    matches!(graph.node(n).op, Op::Activation(Activation::Sigmoid))
}

/// Whether `n`'s only consumer is an Add whose other operand is computed.
fn feeds_sum(graph: &Graph, n: NodeIndex) -> bool {
    let consumers = graph.consumers_of(n);
    let [(c, _)] = consumers.as_slice() else {
        return false;
    };
    graph.node(*c).op == Op::Binary(BinaryOp::Add)
        && graph
            .inputs_of(*c)
            .iter()
            .any(|&i| i != n && !known(graph, i))
}

impl Pass for HoldStates {
    fn name(&self) -> &'static str {
        "HoldStates"
    }

    fn run(&self, graph: &mut Graph) -> Result<bool> {
        let mut held = Vec::new();
        for n in graph.nodes.node_indices() {
            let ins = graph.inputs_of(n);
            // (A linear map of a state is itself known: it would fold.)
            if !feeds_sum(graph, n) {
                continue;
            }
            let state = match &graph.node(n).op {
                Op::Gemm(g)
                    if !g.trans_a
                        && ins.len() >= 2
                        && known(graph, ins[0])
                        && known(graph, ins[1]) =>
                {
                    Some(ins[0])
                }
                Op::MatMul if ins.len() == 2 && known(graph, ins[0]) && known(graph, ins[1]) => {
                    Some(ins[0])
                }
                Op::Binary(BinaryOp::Mul) if ins.len() == 2 => {
                    match (known(graph, ins[0]), known(graph, ins[1])) {
                        (true, false) if is_sigmoid(graph, ins[1]) => Some(ins[0]),
                        (false, true) if is_sigmoid(graph, ins[0]) => Some(ins[1]),
                        _ => None,
                    }
                }
                _ => None,
            };
            let Some(s) = state else { continue };
            if graph.node(s).op == Op::Hold {
                continue;
            }
            // Full shape: [batch, hidden] against the Mul's output, or the MatMul's rows.
            let full = match &graph.node(n).op {
                Op::Binary(_) => graph.fact(s).shape == graph.fact(n).shape,
                _ => graph.fact(s).shape.len() >= 2,
            };
            if full {
                held.push((n, s));
            }
        }
        for &(n, s) in &held {
            let name = format!("{}.state", graph.node(n).name);
            let h = graph.add(name, Op::Hold, &[s]);
            let ins: Vec<NodeIndex> = graph
                .inputs_of(n)
                .into_iter()
                .map(|i| if i == s { h } else { i })
                .collect();
            graph.set_inputs(n, &ins);
        }
        Ok(!held.is_empty())
    }
}
