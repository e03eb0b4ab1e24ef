//! Graph passes: each a small named rewrite `fn(&mut Graph) -> Result<bool>` (whether it changed
//! anything). [`prepare`] runs them in order and to a fixpoint, re-inferring facts and checking
//! the graph's invariants after every change, so a bug shows up as a named failing pass.

mod affine;
mod batchnorm;
mod check;
mod dead;
mod fold;
mod gelu;
mod identity;
mod infer;
mod linear;
mod reduce;
pub mod sign;
mod softmax;
mod state;

pub use affine::AffineToBatchNorm;
pub use batchnorm::FoldBatchNorm;
pub use check::check;
pub use dead::RemoveDeadNodes;
pub use fold::FoldConstants;
pub use gelu::FuseGelu;
pub use identity::{ReleaseHolds, RemoveIdentity};
pub use infer::InferFacts;
pub use linear::CanonicalizeLinear;
pub use reduce::LowerReduce;
pub use softmax::MarkTrailingSoftmax;
pub use state::HoldStates;

use crate::error::{Error, Result};
use crate::ir::Graph;

/// One graph rewrite.
pub trait Pass {
    /// The pass's name, for errors and logs.
    fn name(&self) -> &'static str;
    /// Runs once over the graph; returns whether the graph changed.
    fn run(&self, graph: &mut Graph) -> Result<bool>;
}

/// The rewrites that run to a fixpoint, in order.
fn rewrites() -> Vec<Box<dyn Pass>> {
    vec![
        Box::new(RemoveIdentity),
        // Before folding: it keeps recurrent states from merging into biases.
        Box::new(HoldStates),
        Box::new(FoldConstants),
        Box::new(RemoveDeadNodes),
        // Before AffineToBatchNorm, which would turn the GELU's scalar products into BatchNorms.
        Box::new(FuseGelu),
        Box::new(LowerReduce),
        Box::new(CanonicalizeLinear),
        Box::new(AffineToBatchNorm),
        Box::new(FoldBatchNorm),
    ]
}

/// Upper bound on fixpoint rounds; each round that changes something removes or folds nodes, so
/// a graph needs few. Hitting it means two rewrites undo each other.
const MAX_ROUNDS: usize = 32;

/// Brings an imported graph into the canonical form later stages expect: static facts on every
/// node, no constant subgraphs, no Dropout/Identity, BatchNorm folded where it can be, dense layers
/// in canonical Gemm form, the trailing Softmax marked.
pub fn prepare(graph: &mut Graph) -> Result<()> {
    InferFacts.run(graph)?;
    check(graph, "import")?;
    let passes = rewrites();
    for round in 0.. {
        if round == MAX_ROUNDS {
            return Err(Error::Graph {
                file: graph.source.clone(),
                reason: format!("internal: passes did not settle after {MAX_ROUNDS} rounds"),
            });
        }
        let mut changed = false;
        for pass in &passes {
            if pass.run(graph)? {
                changed = true;
                InferFacts.run(graph)?;
                check(graph, pass.name())?;
            }
        }
        if !changed {
            break;
        }
    }
    MarkTrailingSoftmax.run(graph)?;
    check(graph, MarkTrailingSoftmax.name())?;
    Ok(())
}

#[cfg(test)]
mod tests;
