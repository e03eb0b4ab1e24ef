//! The reference interpreter: a plain, obviously correct evaluation of every IR op. It is the
//! oracle compiled code is tested against and the evaluator constant folding uses; it is never a
//! fallback for compiled code.

mod backward;
mod elementwise;
mod linear;
mod movement;
pub mod norm;
mod pool;

use std::collections::HashMap;
use std::sync::Arc;

pub use elementwise::broadcast_map;
pub use movement::{for_each_index, movement_table};

use crate::error::{Error, OpResult, Result};
use crate::ir::{Graph, NodeIndex, Op, Tensor};
use crate::op_bail;

/// Evaluates one op on its input values.
pub fn eval(op: &Op, inputs: &[&Tensor]) -> OpResult<Tensor> {
    let arity = op.arity();
    if !arity.contains(&inputs.len()) {
        op_bail!("takes {arity:?} inputs, got {}", inputs.len());
    }
    let x = || inputs[0];
    match op {
        Op::Input => op_bail!("an Input has no value of its own"),
        Op::Const(t) => Ok(Tensor::clone(t)),
        Op::Conv(c) => linear::conv(c, x(), inputs[1], inputs.get(2).copied()),
        Op::Gemm(g) => linear::gemm(g, x(), inputs[1], inputs.get(2).copied()),
        Op::MatMul => linear::matmul(x(), inputs[1]),
        Op::Binary(b) => elementwise::binary(*b, x(), inputs[1]),
        Op::Sum => elementwise::sum(inputs),
        Op::Where => elementwise::select(inputs[0], inputs[1], inputs[2]),
        Op::Reduce(r) => elementwise::reduce(r, x()),
        Op::Activation(a) => elementwise::activation(*a, x()),
        Op::Pool(p) => pool::pool(p, x()),
        Op::PoolIndices(p) => pool::pool_indices(p, x()),
        Op::ArgExtremum(a) => elementwise::arg_extremum(a, x()),
        Op::GlobalPool(g) => pool::global_pool(*g, x()),
        Op::BatchNorm(b) => norm::batch_norm(b, inputs),
        Op::Lrn(l) => norm::lrn(l, x()),
        Op::Softmax(s) => norm::softmax(s, x()),
        Op::Flatten(f) => movement::reshape_to(x(), f.output_shape(x().shape())?),
        Op::Reshape(r) => {
            movement::reshape_to(x(), r.output_shape(x().shape(), inputs[1].i64s()?)?)
        }
        Op::Transpose(t) => movement::transpose(t, x()),
        Op::Concat(c) => movement::concat(c, inputs),
        Op::Pad(p) => movement::pad(p, x()),
        Op::Squeeze(s) => movement::reshape_to(x(), s.output_shape(x().shape())?),
        Op::Unsqueeze(u) => movement::reshape_to(x(), u.output_shape(x().shape())?),
        Op::Slice(s) => movement::slice(s, x()),
        Op::SplitPart(p) => movement::slice(&p.to_slice(x().shape())?, x()),
        Op::Expand => movement::expand(x(), inputs[1]),
        Op::ScatterNd(s) => movement::scatter_nd(s, x(), inputs[1], inputs[2]),
        Op::DepthSpace(d) => {
            x().gather_flat(d.output_shape(x().shape())?, &d.sources(x().shape())?)
        }
        Op::Resize(r) => movement::resize(r, x(), inputs.get(1).copied()),
        Op::MovementAdjoint(m) => movement::movement_adjoint(m, x()),
        Op::ResizeBackward(b) => movement::resize_backward(b, x()),
        Op::Tile => movement::tile(x(), inputs[1]),
        Op::Range => movement::range(inputs[0], inputs[1], inputs[2]),
        Op::Shape(s) => s.value(x().shape()),
        Op::Gather(g) => movement::gather(g, x(), inputs[1]),
        Op::Cast(c) => Ok(if c.boolean {
            x().nonzero()
        } else {
            x().cast(c.to)
        }),
        Op::ConstantOfShape(c) => movement::constant_of_shape(c, x()),
        Op::Identity | Op::Hold => Ok(x().clone()),
        Op::ConvTranspose(c) => backward::conv_transpose(c, x(), inputs[1], inputs.get(2).copied()),
        Op::PoolBackward(p) => backward::pool_backward(p, x(), inputs[1]),
        Op::GlobalPoolBackward(p) => backward::global_pool_backward(p, x(), inputs[1]),
        Op::SliceBackward(s) => backward::slice_backward(s, x()),
        Op::ActivationGrad(a) => backward::activation_grad(a, x(), inputs[1]),
        Op::LrnBackward(l) => norm::lrn_backward(l, x(), inputs[1]),
        Op::Pointwise(p) => backward::pointwise(*p, x()),
    }
}

/// Wraps an op error with the node's file, name and op type.
pub fn node_error(graph: &Graph, n: NodeIndex, e: crate::error::OpError) -> Error {
    let node = graph.node(n);
    Error::Eval {
        file: graph.source.clone(),
        node: node.name.clone(),
        op: node.op.name().into(),
        reason: e.0,
    }
}

/// Evaluates, in topological order, every node not in `values` whose inputs all are; Input
/// nodes must be given in `values` (those that are not leave their consumers unevaluated). Called
/// again after more inputs are added, it continues where it stopped.
pub fn evaluate(graph: &Graph, values: &mut HashMap<NodeIndex, Arc<Tensor>>) -> Result<()> {
    let order = graph.topo_order().map_err(|cycle| Error::Graph {
        file: graph.source.clone(),
        reason: format!("the graph has a cycle through {} nodes", cycle.len()),
    })?;
    for n in order {
        let node = graph.node(n);
        if values.contains_key(&n) || matches!(node.op, Op::Input) {
            continue;
        }
        let ins: Option<Vec<&Tensor>> = graph
            .inputs_of(n)
            .iter()
            .map(|i| values.get(i).map(|v| v.as_ref()))
            .collect();
        let Some(ins) = ins else { continue };
        let value = eval(&node.op, &ins).map_err(|e| node_error(graph, n, e))?;
        values.insert(n, Arc::new(value));
    }
    Ok(())
}

/// Runs the whole graph on `input` (its explained input; a model with other inputs needs
/// [`run_feeds`]) and returns the value of every node.
pub fn run_all(graph: &Graph, input: &Tensor) -> Result<HashMap<NodeIndex, Arc<Tensor>>> {
    let mut values = HashMap::new();
    values.insert(graph.explained_input(), Arc::new(input.clone()));
    evaluate(graph, &mut values)?;
    Ok(values)
}

/// Runs the graph on `input` and returns its outputs in order.
pub fn run(graph: &Graph, input: &Tensor) -> Result<Vec<Tensor>> {
    outputs(graph, &run_all(graph, input)?)
}

/// Runs the graph on a value for every input (in `graph.inputs` order); returns its outputs.
pub fn run_feeds(graph: &Graph, feeds: &[Tensor]) -> Result<Vec<Tensor>> {
    let mut values = HashMap::new();
    for (&n, t) in graph.inputs.iter().zip(feeds) {
        values.insert(n, Arc::new(t.clone()));
    }
    evaluate(graph, &mut values)?;
    outputs(graph, &values)
}

fn outputs(graph: &Graph, values: &HashMap<NodeIndex, Arc<Tensor>>) -> Result<Vec<Tensor>> {
    graph
        .outputs
        .iter()
        .map(|o| {
            values
                .get(&o.node)
                .map(|v| Tensor::clone(v))
                .ok_or_else(|| Error::Graph {
                    file: graph.source.clone(),
                    reason: format!("output '{}' depends on an input that was not given", o.name),
                })
        })
        .collect()
}

#[cfg(test)]
mod tests;
