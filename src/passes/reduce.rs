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

fn lower(graph: &mut Graph, n: NodeIndex) -> Result<bool> {
    if let Op::ArgExtremum(a) = graph.node(n).op.clone() {
        return lower_arg(graph, n, &a);
    }
    let Op::Reduce(r) = graph.node(n).op.clone() else {
        return Ok(false);
    };
    let Some(&x) = graph.inputs_of(n).first() else {
        return Ok(false);
    };
    let fact = graph.fact(x);
    if fact.dtype != DType::F32 {
        return Ok(false);
    }
    let shape = fact.shape.clone();
    let (file, node) = (graph.source.clone(), graph.node(n).name.clone());
    let error = |e: crate::error::OpError| crate::error::Error::Graph {
        file: file.clone(),
        reason: format!("{node}: {}", e.0),
    };
    let axes = r.axes(shape.len()).map_err(error)?;
    let out_shape = r.output_shape(&shape).map_err(error)?;
    let kept: Vec<usize> = (0..shape.len()).filter(|a| !axes.contains(a)).collect();
    let inner: usize = axes.iter().map(|&a| shape[a]).product();
    let outer: usize = kept.iter().map(|&a| shape[a]).product();
    if inner == 0 {
        return Ok(false);
    }
    let name = graph.node(n).name.clone();
    let konst = |graph: &mut Graph, role: &str, t: Tensor| {
        graph.add(format!("{name}.{role}"), Op::Const(t.into()), &[])
    };
    let dims = |d: &[usize]| {
        let v: Vec<i64> = d.iter().map(|&d| d as i64).collect();
        Tensor::from_i64(vec![v.len()], v)
    };
    let mut v = x;
    let perm: Vec<usize> = kept.iter().chain(&axes).copied().collect();
    if perm.iter().enumerate().any(|(i, &p)| i != p) {
        let t = Op::Transpose(Transpose { perm: Some(perm) });
        v = graph.add(format!("{name}.transpose"), t, &[v]);
    }
    let viewed = konst(graph, "view", dims(&[1, outer, inner]).map_err(error)?);
    v = graph.add(
        format!("{name}.view"),
        Op::Reshape(Reshape { allowzero: false }),
        &[v, viewed],
    );
    let activation = |graph: &mut Graph, role: &str, a: Activation, v: NodeIndex| {
        graph.add(format!("{name}.{role}"), Op::Activation(a), &[v])
    };
    let scalar = |v: f32| Tensor::from_f32(vec![], vec![v]);
    match r.kind {
        ReduceKind::L1 => v = activation(graph, "abs", Activation::Abs, v),
        ReduceKind::L2 | ReduceKind::SumSquare => {
            let two = konst(graph, "two", scalar(2.0).map_err(error)?);
            v = graph.add(
                format!("{name}.square"),
                Op::Binary(BinaryOp::Pow),
                &[v, two],
            );
        }
        ReduceKind::LogSumExp => v = activation(graph, "exp", Activation::Exp, v),
        ReduceKind::Min => v = activation(graph, "negate", Activation::Neg, v),
        _ => {}
    }
    let pool = match r.kind {
        ReduceKind::Max | ReduceKind::Min => GlobalPool::Max,
        _ => GlobalPool::Average,
    };
    v = graph.add(format!("{name}.pool"), Op::GlobalPool(pool), &[v]);
    if !matches!(r.kind, ReduceKind::Mean | ReduceKind::Max | ReduceKind::Min) {
        let count = konst(graph, "count", scalar(inner as f32).map_err(error)?);
        v = graph.add(
            format!("{name}.sum"),
            Op::Binary(BinaryOp::Mul),
            &[v, count],
        );
    }
    match r.kind {
        ReduceKind::L2 => v = activation(graph, "sqrt", Activation::Sqrt, v),
        ReduceKind::LogSumExp => v = activation(graph, "log", Activation::Log, v),
        ReduceKind::Min => v = activation(graph, "negate_back", Activation::Neg, v),
        _ => {}
    }
    // The Reduce node itself becomes the final reshape: whoever refers to it by index (the
    // relevance pass's layer list, the outputs) still finds its value.
    let shaped = konst(graph, "shape", dims(&out_shape).map_err(error)?);
    let node = graph.node_mut(n);
    node.op = Op::Reshape(Reshape { allowzero: false });
    node.fact = None;
    graph.set_inputs(n, &[v, shaped]);
    Ok(true)
}

/// ArgMax/ArgMin of computed floats: the axis moved last, viewed as [outer, 1, len], and the
/// indices of one MaxPool window spanning it.
fn lower_arg(graph: &mut Graph, n: NodeIndex, a: &crate::ir::ops::ArgExtremum) -> Result<bool> {
    let Some(&x) = graph.inputs_of(n).first() else {
        return Ok(false);
    };
    let fact = graph.fact(x);
    if fact.dtype != DType::F32 {
        return Ok(false);
    }
    let shape = fact.shape.clone();
    let (file, name) = (graph.source.clone(), graph.node(n).name.clone());
    let error = |e: crate::error::OpError| crate::error::Error::Graph {
        file: file.clone(),
        reason: format!("{name}: {}", e.0),
    };
    let (axis, out_shape) = a.output_shape(&shape).map_err(error)?;
    let len = shape[axis];
    let outer = shape.iter().product::<usize>() / len.max(1);
    let dims = |d: &[usize]| {
        let v: Vec<i64> = d.iter().map(|&d| d as i64).collect();
        Tensor::from_i64(vec![v.len()], v)
    };
    let mut v = x;
    if axis + 1 != shape.len() {
        let mut perm: Vec<usize> = (0..shape.len()).filter(|&d| d != axis).collect();
        perm.push(axis);
        let t = Op::Transpose(Transpose { perm: Some(perm) });
        v = graph.add(format!("{name}.transpose"), t, &[v]);
    }
    let viewed = dims(&[outer, 1, len]).map_err(error)?;
    let viewed = graph.add(format!("{name}.view_shape"), Op::Const(viewed.into()), &[]);
    v = graph.add(
        format!("{name}.view"),
        Op::Reshape(Reshape { allowzero: false }),
        &[v, viewed],
    );
    if a.min {
        v = graph.add(
            format!("{name}.negate"),
            Op::Activation(Activation::Neg),
            &[v],
        );
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
    v = graph.add(format!("{name}.indices"), Op::PoolIndices(indices), &[v]);
    let shaped = dims(&out_shape).map_err(error)?;
    let shaped = graph.add(format!("{name}.shape"), Op::Const(shaped.into()), &[]);
    let node = graph.node_mut(n);
    node.op = Op::Reshape(Reshape { allowzero: false });
    node.fact = None;
    graph.set_inputs(n, &[v, shaped]);
    Ok(true)
}
