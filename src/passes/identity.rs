//! RemoveIdentity: Identity and Dropout (imported as Identity) compute nothing at inference, nor
//! does a Cast from float to float (every float type is f32 here: a double model's casts, the
//! quantisation importers' casts of values already float), so their consumers read the input
//! directly.

use super::Pass;
use crate::error::Result;
use crate::ir::{DType, Graph, Op};

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
            .filter(|&n| match &graph.node(n).op {
                Op::Identity => true,
                Op::Cast(c) => {
                    !c.boolean
                        && c.to == DType::F32
                        && graph
                            .inputs_of(n)
                            .first()
                            .and_then(|&i| graph.node(i).fact.as_ref())
                            .is_some_and(|f| f.dtype == DType::F32)
                }
                _ => false,
            })
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

/// Bypasses and removes every Hold (see [`Op::Hold`]): run by the relevance pass once its
/// rules have seen the held states, so that what depends only on them folds.
pub struct ReleaseHolds;

impl Pass for ReleaseHolds {
    fn name(&self) -> &'static str {
        "ReleaseHolds"
    }

    fn run(&self, graph: &mut Graph) -> Result<bool> {
        let holds: Vec<_> = graph
            .nodes
            .node_indices()
            .filter(|&n| graph.node(n).op == Op::Hold)
            .collect();
        for &n in &holds {
            if let Some(&input) = graph.inputs_of(n).first() {
                graph.replace_uses(n, input);
                graph.nodes.remove_node(n);
            }
        }
        Ok(!holds.is_empty())
    }
}
