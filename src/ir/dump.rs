//! Stable text, JSON and DOT renderings of a graph, in topological order. `lrpc inspect` prints
//! them and the snapshot tests pin them, so nothing here may depend on hash order or addresses.
//! Constants are shown inline where they are used, not as nodes of their own.

use std::fmt::Write;

use serde::Serialize;

use super::{Graph, NodeIndex, Op};

/// One input of a node as dumps show it.
#[derive(Serialize)]
pub struct InputRef {
    pub name: String,
    /// Shape of a constant input; computed inputs are referenced by name only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub constant: Option<Vec<usize>>,
}

/// One non-constant node as dumps show it.
#[derive(Serialize)]
pub struct NodeView {
    pub name: String,
    pub op: String,
    pub inputs: Vec<InputRef>,
    pub attributes: Vec<(String, String)>,
    pub dtype: String,
    pub shape: Vec<usize>,
    pub parameters: usize,
    /// An extra per-node annotation (the relevance rule, when a method is chosen).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A graph output as dumps show it.
#[derive(Serialize)]
pub struct OutputView {
    pub name: String,
    pub node: String,
    pub shape: Vec<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logits: Option<String>,
}

/// The whole graph as dumps show it.
#[derive(Serialize)]
pub struct GraphView {
    pub source: String,
    pub opset: i64,
    pub inputs: Vec<NodeView>,
    pub outputs: Vec<OutputView>,
    pub parameters: usize,
    pub nodes: Vec<NodeView>,
}

impl GraphView {
    /// Builds the view; `note` may annotate each node (e.g. with its relevance rule).
    pub fn new(graph: &Graph, note: &dyn Fn(NodeIndex) -> Option<String>) -> Self {
        let order = graph
            .topo_order()
            .unwrap_or_else(|_| graph.nodes.node_indices().collect());
        let view = |n: NodeIndex| {
            let node = graph.node(n);
            let (dtype, shape) = node.fact.as_ref().map_or(("?".to_string(), vec![]), |f| {
                (f.dtype.to_string(), f.shape.clone())
            });
            NodeView {
                name: node.name.clone(),
                op: node.op.name().to_string(),
                inputs: graph
                    .inputs_of(n)
                    .into_iter()
                    .map(|i| {
                        let input = graph.node(i);
                        InputRef {
                            name: input.name.clone(),
                            constant: match &input.op {
                                Op::Const(t) => Some(t.shape().to_vec()),
                                _ => None,
                            },
                        }
                    })
                    .collect(),
                attributes: node
                    .op
                    .attributes()
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect(),
                dtype,
                shape,
                parameters: graph.parameter_count(n),
                note: note(n),
            }
        };
        let nodes: Vec<NodeView> = order
            .iter()
            .copied()
            .filter(|&n| !matches!(graph.node(n).op, Op::Const(_) | Op::Input))
            .map(view)
            .collect();
        GraphView {
            source: graph.source.clone(),
            opset: graph.opset,
            inputs: graph.inputs.iter().map(|&n| view(n)).collect(),
            outputs: graph
                .outputs
                .iter()
                .map(|o| OutputView {
                    name: o.name.clone(),
                    node: graph.node(o.node).name.clone(),
                    shape: graph
                        .node(o.node)
                        .fact
                        .as_ref()
                        .map_or(vec![], |f| f.shape.clone()),
                    logits: o.logits.map(|l| graph.node(l).name.clone()),
                })
                .collect(),
            parameters: nodes.iter().map(|n| n.parameters).sum(),
            nodes,
        }
    }

    /// The text form: a header, then one line per node.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let shape = |d: &str, v: &[usize]| {
            let dims: Vec<String> = v.iter().map(|x| x.to_string()).collect();
            format!("{d}[{}]", dims.join(","))
        };
        let _ = writeln!(s, "model {}", self.source);
        let _ = writeln!(s, "opset {}", self.opset);
        for i in &self.inputs {
            let _ = writeln!(s, "input {} {}", i.name, shape(&i.dtype, &i.shape));
        }
        for o in &self.outputs {
            let _ = write!(
                s,
                "output {} = {} {}",
                o.name,
                o.node,
                shape("f32", &o.shape)
            );
            if let Some(l) = &o.logits {
                let _ = write!(s, " (trailing Softmax; logits from {l})");
            }
            s.push('\n');
        }
        let _ = writeln!(s, "parameters {}", self.parameters);
        let _ = writeln!(s, "nodes {}", self.nodes.len());
        for n in &self.nodes {
            let inputs: Vec<String> = n
                .inputs
                .iter()
                .map(|i| match &i.constant {
                    Some(c) => format!("{}:{}", i.name, shape("const", c)),
                    None => i.name.clone(),
                })
                .collect();
            let _ = write!(s, "  {} = {}({})", n.name, n.op, inputs.join(", "));
            if !n.attributes.is_empty() {
                let a: Vec<String> = n
                    .attributes
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                let _ = write!(s, " {{{}}}", a.join(", "));
            }
            let _ = write!(s, " -> {}", shape(&n.dtype, &n.shape));
            if n.parameters > 0 {
                let _ = write!(s, " params={}", n.parameters);
            }
            if let Some(note) = &n.note {
                let _ = write!(s, " rule={note}");
            }
            s.push('\n');
        }
        s
    }

    /// The JSON form (pretty-printed).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a GraphView holds only strings and numbers")
    }

    /// The Graphviz DOT form: computed nodes and the edges between them.
    pub fn to_dot(&self) -> String {
        let mut s = String::from("digraph lrpc {\n  node [shape=box, fontname=\"monospace\"];\n");
        let esc = |x: &str| x.replace('\\', "\\\\").replace('"', "\\\"");
        for n in self.inputs.iter().chain(&self.nodes) {
            let dims: Vec<String> = n.shape.iter().map(|d| d.to_string()).collect();
            let mut label = format!("{}\\n{} [{}]", esc(&n.name), n.op, dims.join(","));
            if let Some(note) = &n.note {
                let _ = write!(label, "\\n{}", esc(note));
            }
            let _ = writeln!(s, "  \"{}\" [label=\"{label}\"];", esc(&n.name));
        }
        for n in &self.nodes {
            for i in n.inputs.iter().filter(|i| i.constant.is_none()) {
                let _ = writeln!(s, "  \"{}\" -> \"{}\";", esc(&i.name), esc(&n.name));
            }
        }
        s.push_str("}\n");
        s
    }
}
