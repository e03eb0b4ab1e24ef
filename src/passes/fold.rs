//! FoldConstants: every computed node whose value InferFacts knows becomes a Const node; its
//! inputs are disconnected and RemoveDeadNodes drops them.

use super::Pass;
use crate::error::Result;
use crate::ir::{Graph, Op};

/// Replaces constant subgraphs by their values.
pub struct FoldConstants;

impl Pass for FoldConstants {
    fn name(&self) -> &'static str {
        "FoldConstants"
    }

    fn run(&self, graph: &mut Graph) -> Result<bool> {
        let foldable: Vec<_> = graph
            .nodes
            .node_indices()
            .filter(|&n| {
                let node = graph.node(n);
                !matches!(node.op, Op::Const(_) | Op::Input)
                    && node.fact.as_ref().is_some_and(|f| f.value.is_some())
            })
            .collect();
        for &n in &foldable {
            let value = graph
                .node(n)
                .fact
                .as_ref()
                .and_then(|f| f.value.clone())
                .expect("selected above for having a value");
            graph.set_inputs(n, &[]);
            graph.node_mut(n).op = Op::Const(value);
        }
        Ok(!foldable.is_empty())
    }
}
