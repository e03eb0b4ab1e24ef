//! LowerReduce: a Reduce over computed values becomes ops that compiled code and the relevance
//! pass already know: the reduced axes moved last (Transpose), the value viewed as
//! [1, kept, reduced] (Reshape), a global pool over the last axis (average, or max for
//! ReduceMax/ReduceMin), and the pointwise work around it (|x|, x^2 or e^x before; times the
//! count, sqrt or ln after; negation around the max for ReduceMin), then the output shape.
//! Relevance then flows through the pool's rule like any average or max pool. ReduceProd, and
//! reductions of integers or over no elements, stay as they are (the interpreter evaluates them;
//! compiled code refuses them by name). ArgMax/ArgMin become the same view and a MaxPool's
//! indices over the last axis (negated first for ArgMin).

use super::Pass;
use crate::error::Result;
use crate::ir::ops::{
    Activation, AutoPad, BinaryOp, GlobalPool, Pool, PoolIndices, PoolKind, ReduceKind, Reshape,
    Transpose, Window,
};
use crate::ir::{DType, Graph, NodeIndex, Op, Tensor};

/// Rewrites computed Reduce nodes into pools.
pub struct LowerReduce;

impl Pass for LowerReduce {
    fn name(&self) -> &'static str {
        "LowerReduce"
    }

    fn run(&self, graph: &mut Graph) -> Result<bool> {
        let candidates: Vec<NodeIndex> = graph
            .nodes
            .node_indices()
            .filter(|&n| {
                let node = graph.node(n);
                (matches!(&node.op, Op::Reduce(r) if r.kind != ReduceKind::Prod)
                    || matches!(node.op, Op::ArgExtremum(_)))
                    && node.fact.as_ref().is_some_and(|f| f.value.is_none())
            })
            .collect();
        let mut changed = false;
        for n in candidates {
            changed |= lower(graph, n)?;
        }
        Ok(changed)
    }
}

/// The rewrite of one node: names its new nodes after it and turns it into the final reshape.
struct Rewrite {
    n: NodeIndex,
    name: String,
    file: String,
}

impl Rewrite {
    fn error(&self, e: crate::error::OpError) -> crate::error::Error {
        crate::error::Error::Graph {
            file: self.file.clone(),
            reason: format!("{}: {}", self.name, e.0),
        }
    }

    fn konst(&self, graph: &mut Graph, role: &str, t: Tensor) -> NodeIndex {
        graph.add(format!("{}.{role}", self.name), Op::Const(t.into()), &[])
    }

    fn dims(&self, graph: &mut Graph, role: &str, d: &[usize]) -> Result<NodeIndex> {
        let v: Vec<i64> = d.iter().map(|&d| d as i64).collect();
        let t = Tensor::from_i64(vec![v.len()], v).map_err(|e| self.error(e))?;
        Ok(self.konst(graph, role, t))
    }

    fn activation(&self, graph: &mut Graph, role: &str, a: Activation, v: NodeIndex) -> NodeIndex {
        graph.add(format!("{}.{role}", self.name), Op::Activation(a), &[v])
    }

    /// `x` (of `shape`) with `axes` moved last (in order), viewed as `view`.
    fn view(
        &self,
        graph: &mut Graph,
        x: NodeIndex,
        shape: &[usize],
        axes: &[usize],
        view: &[usize],
    ) -> Result<NodeIndex> {
        let mut v = x;
        let perm: Vec<usize> = (0..shape.len())
            .filter(|a| !axes.contains(a))
            .chain(axes.iter().copied())
            .collect();
        if perm.iter().enumerate().any(|(i, &p)| i != p) {
            let t = Op::Transpose(Transpose { perm: Some(perm) });
            v = graph.add(format!("{}.transpose", self.name), t, &[v]);
        }
        let viewed = self.dims(graph, "view_shape", view)?;
        Ok(graph.add(
            format!("{}.view", self.name),
            Op::Reshape(Reshape { allowzero: false }),
            &[v, viewed],
        ))
    }

    /// The node itself becomes the final reshape of `v`: whoever refers to it by index (the
    /// relevance pass's layer list, the outputs) still finds its value.
    fn finish(&self, graph: &mut Graph, v: NodeIndex, out_shape: &[usize]) -> Result<bool> {
        let shaped = self.dims(graph, "shape", out_shape)?;
        let node = graph.node_mut(self.n);
        node.op = Op::Reshape(Reshape { allowzero: false });
        node.fact = None;
        graph.set_inputs(self.n, &[v, shaped]);
        Ok(true)
    }
}

fn lower(graph: &mut Graph, n: NodeIndex) -> Result<bool> {
    let Some(&x) = graph.inputs_of(n).first() else {
        return Ok(false);
    };
    let fact = graph.fact(x);
    if fact.dtype != DType::F32 {
        return Ok(false);
    }
    let shape = fact.shape.clone();
    let rw = Rewrite {
        n,
        name: graph.node(n).name.clone(),
        file: graph.source.clone(),
    };
    match graph.node(n).op.clone() {
        Op::Reduce(r) => lower_reduce(graph, &rw, x, &shape, &r),
        Op::ArgExtremum(a) => lower_arg(graph, &rw, x, &shape, &a),
        _ => Ok(false),
    }
}

fn lower_reduce(
    graph: &mut Graph,
    rw: &Rewrite,
    x: NodeIndex,
    shape: &[usize],
    r: &crate::ir::ops::Reduce,
) -> Result<bool> {
    let axes = r.axes(shape.len()).map_err(|e| rw.error(e))?;
    let out_shape = r.output_shape(shape).map_err(|e| rw.error(e))?;
    let inner: usize = axes.iter().map(|&a| shape[a]).product();
    if inner == 0 {
        return Ok(false);
    }
    let outer = shape.iter().product::<usize>() / inner;
    let mut v = rw.view(graph, x, shape, &axes, &[1, outer, inner])?;
    let scalar = |v: f32| Tensor::from_f32(vec![], vec![v]).map_err(|e| rw.error(e));
    match r.kind {
        ReduceKind::L1 => v = rw.activation(graph, "abs", Activation::Abs, v),
        ReduceKind::L2 | ReduceKind::SumSquare => {
            let two = rw.konst(graph, "two", scalar(2.0)?);
            v = graph.add(
                format!("{}.square", rw.name),
                Op::Binary(BinaryOp::Pow),
                &[v, two],
            );
        }
        ReduceKind::LogSumExp => v = rw.activation(graph, "exp", Activation::Exp, v),
        ReduceKind::Min => v = rw.activation(graph, "negate", Activation::Neg, v),
        _ => {}
    }
    let pool = match r.kind {
        ReduceKind::Max | ReduceKind::Min => GlobalPool::Max,
        _ => GlobalPool::Average,
    };
    v = graph.add(format!("{}.pool", rw.name), Op::GlobalPool(pool), &[v]);
    if !matches!(r.kind, ReduceKind::Mean | ReduceKind::Max | ReduceKind::Min) {
        let count = rw.konst(graph, "count", scalar(inner as f32)?);
        v = graph.add(
            format!("{}.sum", rw.name),
            Op::Binary(BinaryOp::Mul),
            &[v, count],
        );
    }
    match r.kind {
        ReduceKind::L2 => v = rw.activation(graph, "sqrt", Activation::Sqrt, v),
        ReduceKind::LogSumExp => v = rw.activation(graph, "log", Activation::Log, v),
        ReduceKind::Min => v = rw.activation(graph, "negate_back", Activation::Neg, v),
        _ => {}
    }
    rw.finish(graph, v, &out_shape)
}

/// ArgMax/ArgMin of computed floats: the axis moved last, viewed as [outer, 1, len], and the
/// indices of one MaxPool window spanning it.
fn lower_arg(
    graph: &mut Graph,
    rw: &Rewrite,
    x: NodeIndex,
    shape: &[usize],
    a: &crate::ir::ops::ArgExtremum,
) -> Result<bool> {
    let (axis, out_shape) = a.output_shape(shape).map_err(|e| rw.error(e))?;
    let len = shape[axis];
    let outer = shape.iter().product::<usize>() / len.max(1);
    let mut v = rw.view(graph, x, shape, &[axis], &[outer, 1, len])?;
    if a.min {
        v = rw.activation(graph, "negate", Activation::Neg, v);
    }
    let pool = Pool {
        kind: PoolKind::Max,
        kernel_shape: vec![len],
        window: Window {
            strides: vec![],
            dilations: vec![],
            pads: vec![],
            auto_pad: AutoPad::NotSet,
            ceil_mode: false,
        },
    };
    let indices = PoolIndices {
        pool,
        column_major: false,
        whole_tensor: false,
        last: a.last,
    };
    v = graph.add(
        format!("{}.indices", rw.name),
        Op::PoolIndices(indices),
        &[v],
    );
    rw.finish(graph, v, &out_shape)
}
