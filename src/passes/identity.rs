//! RemoveIdentity: Identity and Dropout (imported as Identity) compute nothing at inference, so
//! their consumers read the input directly.

use super::Pass;
use crate::error::Result;
use crate::ir::{Graph, Op};

/// Bypasses and removes Identity nodes.
pub struct RemoveIdentity;

impl Pass for RemoveIdentity {
    fn name(&self) -> &'static str {
        "RemoveIdentity"
    }

    fn run(&self, graph: &mut Graph) -> Result<bool> {
        let ids: Vec<_> = graph
            .nodes
            .node_indices()
            .filter(|&n| matches!(graph.node(n).op, Op::Identity))
            .collect();
        for &n in &ids {
            let Some(&input) = graph.inputs_of(n).first() else {
                continue;
            };
            graph.replace_uses(n, input);
            graph.nodes.remove_node(n);
        }
        Ok(!ids.is_empty())
    }
}
