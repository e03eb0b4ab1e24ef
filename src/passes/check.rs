//! Graph invariants, checked after every rewrite: input slots are 0..k without gaps, arities fit,
//! every node has a fact, outputs name live nodes, and the graph is acyclic. A violation is a bug
//! in the pass named in the error, never a property of the user's model.

use std::collections::HashSet;

use petgraph::Direction;

use crate::error::{Error, Result};
use crate::ir::Graph;

/// Checks the invariants; `after` names the pass that just ran.
pub fn check(graph: &Graph, after: &str) -> Result<()> {
    let fail = |reason: String| Error::Graph {
        file: graph.source.clone(),
        reason: format!("internal: after {after}: {reason}"),
    };
    for n in graph.nodes.node_indices() {
        let node = graph.node(n);
        let slots: HashSet<usize> = graph
            .nodes
            .edges_directed(n, Direction::Incoming)
            .map(|e| e.weight().slot)
            .collect();
        let count = graph.nodes.edges_directed(n, Direction::Incoming).count();
        if slots.len() != count || (0..count).any(|s| !slots.contains(&s)) {
            return Err(fail(format!(
                "node '{}' has input slots {slots:?}",
                node.name
            )));
        }
        if !node.op.arity().contains(&count) {
            return Err(fail(format!(
                "node '{}' ({}) has {count} inputs",
                node.name,
                node.op.name()
            )));
        }
        if node.fact.is_none() {
            return Err(fail(format!("node '{}' has no fact", node.name)));
        }
    }
    for o in &graph.outputs {
        if !graph.nodes.contains_node(o.node)
            || o.logits.is_some_and(|l| !graph.nodes.contains_node(l))
        {
            return Err(fail(format!("output '{}' names a removed node", o.name)));
        }
    }
    if graph.inputs.iter().any(|&i| !graph.nodes.contains_node(i)) {
        return Err(fail("the input node was removed".into()));
    }
    graph
        .topo_order()
        .map_err(|_| fail("the graph has a cycle".into()))?;
    Ok(())
}
