//! InferFacts: dtype and static shape of every node in topological order, plus the value of every
//! node whose inputs are all known (evaluated by the reference interpreter): shape inference and
//! the analysis half of constant folding in one walk.

use std::sync::Arc;

use super::Pass;
use crate::error::{Error, Result};
use crate::interp;
use crate::ir::{Fact, Graph, Op, Tensor, numel};
use crate::onnx::DEFAULT_MAX_ELEMENTS;

/// Computes every node's [`Fact`].
pub struct InferFacts;

impl Pass for InferFacts {
    fn name(&self) -> &'static str {
        "InferFacts"
    }

    fn run(&self, graph: &mut Graph) -> Result<bool> {
        let order = graph.topo_order().map_err(|stuck| {
            let names: Vec<String> = stuck
                .iter()
                .map(|&n| format!("'{}'", graph.node(n).name))
                .collect();
            Error::Graph {
                file: graph.source.clone(),
                reason: format!("the graph has a cycle through nodes {}", names.join(", ")),
            }
        })?;
        let limit = if graph.max_elements == 0 {
            DEFAULT_MAX_ELEMENTS
        } else {
            graph.max_elements
        };
        let mut changed = false;
        for n in order {
            if matches!(graph.node(n).op, Op::Input) {
                continue;
            }
            let inputs = graph.inputs_of(n);
            let facts: Vec<&Fact> = inputs
                .iter()
                .map(|&i| {
                    graph
                        .node(i)
                        .fact
                        .as_ref()
                        .expect("inputs come first in topological order")
                })
                .collect();
            let node = graph.node(n);
            let shape_error = |reason: String| Error::Shape {
                file: graph.source.clone(),
                node: node.name.clone(),
                op: node.op.name().into(),
                reason,
            };
            let mut fact = node.op.infer(&facts).map_err(|e| shape_error(e.0))?;
            let elements = numel(&fact.shape);
            if elements > limit {
                return Err(shape_error(format!(
                    "output shape {:?} has {elements} elements, over the limit of {limit}",
                    fact.shape
                )));
            }
            // A Hold keeps its constant from folding (see Op::Hold).
            if fact.value.is_none()
                && node.op != Op::Hold
                && !facts.is_empty()
                && facts.iter().all(|f| f.value.is_some())
            {
                let values: Vec<&Tensor> =
                    facts.iter().filter_map(|f| f.value.as_deref()).collect();
                let value =
                    interp::eval(&node.op, &values).map_err(|e| interp::node_error(graph, n, e))?;
                if value.shape() != fact.shape.as_slice() || value.dtype() != fact.dtype {
                    return Err(shape_error(format!(
                        "internal: inferred {fact} but evaluation gave {:?} {}",
                        value.shape(),
                        value.dtype()
                    )));
                }
                fact = Fact::constant(Arc::new(value));
            }
            let node = graph.node_mut(n);
            if node.fact.as_ref() != Some(&fact) {
                node.fact = Some(fact);
                changed = true;
            }
        }
        Ok(changed)
    }
}
