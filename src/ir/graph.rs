//! The graph: a `StableDiGraph` of single-output nodes, edges labelled with the consumer's input
//! slot. Stable indices let passes delete and insert nodes while handles elsewhere stay valid.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;

use petgraph::Direction;
use petgraph::stable_graph::{NodeIndex, StableDiGraph};
use petgraph::visit::EdgeRef;

use super::fact::Fact;
use super::ops::Op;
use super::tensor::Tensor;

/// One operation and what is known about its output.
#[derive(Clone, Debug)]
pub struct Node {
    /// From ONNX (the node's name, or its first output's when unnamed); rewrites derive
    /// `{source}.{role}` names from it.
    pub name: String,
    pub op: Op,
    /// Set by shape inference; `None` before it has run.
    pub fact: Option<Fact>,
}

/// An edge from a producer to the consumer's input `slot`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Edge {
    pub slot: usize,
}

/// A graph output.
#[derive(Clone, Debug)]
pub struct Output {
    /// The ONNX output name.
    pub name: String,
    pub node: NodeIndex,
    /// Set when `node` is a trailing Softmax: the node whose values are the logits.
    pub logits: Option<NodeIndex>,
}

/// A whole model in IR form.
#[derive(Clone, Debug, Default)]
pub struct Graph {
    pub nodes: StableDiGraph<Node, Edge>,
    /// The model's input nodes, in ONNX order (the relevance pass appends its seed).
    pub inputs: Vec<NodeIndex>,
    /// Which of `inputs` is explained (the others are data the relevance pass treats as
    /// constants).
    pub explained: usize,
    pub outputs: Vec<Output>,
    /// Where the model came from, for error messages.
    pub source: String,
    /// The default-domain opset the model was written against.
    pub opset: i64,
    /// Largest tensor, in elements, that shape inference accepts (0: the importer's default).
    pub max_elements: usize,
    /// What import changed about the model's meaning ("node 'x' (Op): ..."), for the user: a
    /// dynamically quantised model explained as its float network, for one.
    pub notes: Vec<String>,
    /// Largest value an integer model input may hold, by input name, and why (a recurrent
    /// op's `sequence_lens` given at run time: at most its sequence length).
    pub input_limits: std::collections::BTreeMap<String, (i64, String)>,
}

impl Graph {
    /// An empty graph for a model read from `source`.
    pub fn new(source: impl Into<String>, opset: i64) -> Self {
        Graph {
            source: source.into(),
            opset,
            ..Graph::default()
        }
    }

    /// Adds a node with the given inputs in slot order.
    pub fn add(&mut self, name: impl Into<String>, op: Op, inputs: &[NodeIndex]) -> NodeIndex {
        let n = self.nodes.add_node(Node {
            name: name.into(),
            op,
            fact: None,
        });
        for (slot, &i) in inputs.iter().enumerate() {
            self.nodes.add_edge(i, n, Edge { slot });
        }
        n
    }

    pub fn node(&self, n: NodeIndex) -> &Node {
        &self.nodes[n]
    }

    pub fn node_mut(&mut self, n: NodeIndex) -> &mut Node {
        &mut self.nodes[n]
    }

    /// The producers of `n`'s inputs, in slot order.
    pub fn inputs_of(&self, n: NodeIndex) -> Vec<NodeIndex> {
        let mut edges: Vec<(usize, NodeIndex)> = self
            .nodes
            .edges_directed(n, Direction::Incoming)
            .map(|e| (e.weight().slot, e.source()))
            .collect();
        edges.sort_unstable();
        edges.into_iter().map(|(_, s)| s).collect()
    }

    /// The consumers of `n` as (consumer, slot), ordered by consumer index then slot.
    pub fn consumers_of(&self, n: NodeIndex) -> Vec<(NodeIndex, usize)> {
        let mut c: Vec<(NodeIndex, usize)> = self
            .nodes
            .edges_directed(n, Direction::Outgoing)
            .map(|e| (e.target(), e.weight().slot))
            .collect();
        c.sort_unstable();
        c
    }

    /// The explained input node.
    pub fn explained_input(&self) -> NodeIndex {
        self.inputs[self.explained.min(self.inputs.len().saturating_sub(1))]
    }

    /// Whether `n` is a graph output.
    pub fn is_output(&self, n: NodeIndex) -> bool {
        self.outputs
            .iter()
            .any(|o| o.node == n || o.logits == Some(n))
    }

    /// Makes every consumer of `old` (and every output naming it) read `new` instead.
    pub fn replace_uses(&mut self, old: NodeIndex, new: NodeIndex) {
        for (consumer, slot) in self.consumers_of(old) {
            let edge = self
                .nodes
                .edges_directed(consumer, Direction::Incoming)
                .find(|e| e.source() == old && e.weight().slot == slot)
                .map(|e| e.id());
            if let Some(edge) = edge {
                self.nodes.remove_edge(edge);
            }
            self.nodes.add_edge(new, consumer, Edge { slot });
        }
        for o in &mut self.outputs {
            if o.node == old {
                o.node = new;
            }
            if o.logits == Some(old) {
                o.logits = Some(new);
            }
        }
    }

    /// Replaces `n`'s inputs with `inputs` (in slot order).
    pub fn set_inputs(&mut self, n: NodeIndex, inputs: &[NodeIndex]) {
        let old: Vec<_> = self
            .nodes
            .edges_directed(n, Direction::Incoming)
            .map(|e| e.id())
            .collect();
        for e in old {
            self.nodes.remove_edge(e);
        }
        for (slot, &i) in inputs.iter().enumerate() {
            self.nodes.add_edge(i, n, Edge { slot });
        }
    }

    /// Nodes in a deterministic topological order (ties broken by creation order, which follows
    /// the ONNX file), or the nodes left on a cycle.
    pub fn topo_order(&self) -> Result<Vec<NodeIndex>, Vec<NodeIndex>> {
        let mut indegree: std::collections::HashMap<NodeIndex, usize> = self
            .nodes
            .node_indices()
            .map(|n| (n, self.nodes.edges_directed(n, Direction::Incoming).count()))
            .collect();
        let mut ready: BinaryHeap<Reverse<NodeIndex>> = indegree
            .iter()
            .filter(|&(_, &d)| d == 0)
            .map(|(&n, _)| Reverse(n))
            .collect();
        let mut order = Vec::with_capacity(indegree.len());
        while let Some(Reverse(n)) = ready.pop() {
            order.push(n);
            for e in self.nodes.edges_directed(n, Direction::Outgoing) {
                let d = indegree
                    .get_mut(&e.target())
                    .expect("every node has an indegree entry");
                *d -= 1;
                if *d == 0 {
                    ready.push(Reverse(e.target()));
                }
            }
        }
        if order.len() == self.nodes.node_count() {
            Ok(order)
        } else {
            let mut left: Vec<NodeIndex> = indegree
                .into_iter()
                .filter(|&(_, d)| d > 0)
                .map(|(n, _)| n)
                .collect();
            left.sort_unstable();
            Err(left)
        }
    }

    /// The fact of `n`; panics if shape inference has not run, which is a pass-ordering bug.
    pub fn fact(&self, n: NodeIndex) -> &Fact {
        self.nodes[n]
            .fact
            .as_ref()
            .expect("shape inference runs before any pass that reads facts")
    }

    /// The value of `n` when it is a Const node.
    pub fn constant(&self, n: NodeIndex) -> Option<&Arc<Tensor>> {
        match &self.nodes[n].op {
            Op::Const(t) => Some(t),
            _ => None,
        }
    }

    /// The value of `n` when it is an f32 Const node (a weight, a bias, a parameter).
    pub fn constant_f32(&self, n: NodeIndex) -> Option<Arc<Tensor>> {
        self.constant(n).filter(|t| t.f32s().is_ok()).cloned()
    }

    /// Number of parameters: elements of the f32 constants feeding `n`.
    pub fn parameter_count(&self, n: NodeIndex) -> usize {
        self.inputs_of(n)
            .into_iter()
            .filter_map(|i| self.constant_f32(i).map(|t| t.len()))
            .sum()
    }
}
