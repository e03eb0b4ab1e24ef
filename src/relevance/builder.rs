//! A small helper for appending nodes to the graph while building the relevance graph. Every
//! node it makes is named `{layer}.{role}`, so dumps and errors trace back to the ONNX node.

use std::sync::Arc;

use petgraph::stable_graph::NodeIndex;

use crate::ir::ops::{BinaryOp, Pointwise};
use crate::ir::{Graph, Op, Tensor};

pub struct Builder<'g> {
    pub graph: &'g mut Graph,
    /// The layer whose rule is being emitted; prefixes node names.
    pub layer: String,
    /// The forward nodes that depend on the explained input.
    pub on_path: &'g std::collections::HashSet<NodeIndex>,
}

impl Builder<'_> {
    /// Whether `n` depends on the explained input (else it is fixed: a constant, or data of
    /// another model input, which relevance treats alike).
    pub fn on_path(&self, n: NodeIndex) -> bool {
        self.on_path.contains(&n)
    }

    pub fn add(&mut self, role: &str, op: Op, inputs: &[NodeIndex]) -> NodeIndex {
        let name = format!("{}.{role}", self.layer);
        self.graph.add(name, op, inputs)
    }

    pub fn konst(&mut self, role: &str, t: Tensor) -> NodeIndex {
        self.add(role, Op::Const(Arc::new(t)), &[])
    }

    /// A scalar constant (broadcasts against anything).
    pub fn scalar(&mut self, role: &str, v: f32) -> NodeIndex {
        self.konst(
            role,
            Tensor::from_f32(vec![], vec![v]).expect("one value for a scalar shape"),
        )
    }

    pub fn point(&mut self, role: &str, p: Pointwise, x: NodeIndex) -> NodeIndex {
        self.add(role, Op::Pointwise(p), &[x])
    }

    pub fn bin(&mut self, role: &str, op: BinaryOp, a: NodeIndex, b: NodeIndex) -> NodeIndex {
        self.add(role, Op::Binary(op), &[a, b])
    }

    pub fn mul(&mut self, role: &str, a: NodeIndex, b: NodeIndex) -> NodeIndex {
        self.bin(role, BinaryOp::Mul, a, b)
    }

    pub fn div(&mut self, role: &str, a: NodeIndex, b: NodeIndex) -> NodeIndex {
        self.bin(role, BinaryOp::Div, a, b)
    }

    /// `a * v` for a scalar `v`.
    pub fn scale(&mut self, role: &str, a: NodeIndex, v: f32) -> NodeIndex {
        let c = self.scalar(&format!("{role}.factor"), v);
        self.mul(role, a, c)
    }

    /// The sum of `terms` (the term itself when there is one).
    pub fn sum(&mut self, role: &str, terms: &[NodeIndex]) -> NodeIndex {
        match terms {
            [one] => *one,
            _ => self.add(role, Op::Sum, terms),
        }
    }

    /// R / s(z): the normalised relevance every z-rule starts from.
    pub fn normalise(&mut self, role: &str, r: NodeIndex, z: NodeIndex, epsilon: f32) -> NodeIndex {
        let s = self.point(
            &format!("{role}.stabilized"),
            Pointwise::Stabilize { epsilon },
            z,
        );
        self.div(role, r, s)
    }
}
