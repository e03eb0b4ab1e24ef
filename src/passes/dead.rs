//! RemoveDeadNodes: drops every node no graph output depends on (the model input stays).

use std::collections::HashSet;

use petgraph::Direction;

use super::Pass;
use crate::error::Result;
use crate::ir::Graph;

/// Removes nodes that cannot reach an output.
pub struct RemoveDeadNodes;

impl Pass for RemoveDeadNodes {
    fn name(&self) -> &'static str {
        "RemoveDeadNodes"
    }

    fn run(&self, graph: &mut Graph) -> Result<bool> {
        let mut live = HashSet::new();
        let mut stack: Vec<_> = graph
            .outputs
            .iter()
            .flat_map(|o| std::iter::once(o.node).chain(o.logits))
            .chain(graph.inputs.iter().copied())
            .collect();
        while let Some(n) = stack.pop() {
            if live.insert(n) {
                stack.extend(graph.nodes.neighbors_directed(n, Direction::Incoming));
            }
        }
        let dead: Vec<_> = graph
            .nodes
            .node_indices()
            .filter(|n| !live.contains(n))
            .collect();
        for &n in &dead {
            graph.nodes.remove_node(n);
        }
        Ok(!dead.is_empty())
    }
}
