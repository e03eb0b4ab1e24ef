//! MarkTrailingSoftmax: when an output is a Softmax, record its input as the logits, so that
//! explanations start from the pre-softmax score (design.md section 4).

use super::Pass;
use crate::error::Result;
use crate::ir::{Graph, Op};

/// Marks each output that is a Softmax with the node holding its logits.
pub struct MarkTrailingSoftmax;

impl Pass for MarkTrailingSoftmax {
    fn name(&self) -> &'static str {
        "MarkTrailingSoftmax"
    }

    fn run(&self, graph: &mut Graph) -> Result<bool> {
        let mut changed = false;
        for i in 0..graph.outputs.len() {
            let node = graph.outputs[i].node;
            if let Op::Softmax(_) = graph.node(node).op {
                let logits = graph.inputs_of(node).first().copied();
                if graph.outputs[i].logits != logits {
                    graph.outputs[i].logits = logits;
                    changed = true;
                }
            }
        }
        Ok(changed)
    }
}
