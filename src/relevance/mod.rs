//! The relevance pass: reads a rule assignment and appends the backward (relevance) graph to the
//! forward graph, so both are one IR graph that later stages run or compile together.
//!
//! Like an autograd pass: keep the nodes between the input and the explained node, walk them in
//! reverse topological order, sum the relevance arriving at each node from its consumers, and let
//! the node's rule turn it into relevance for its inputs. The walk starts from a seed input:
//! relevance = logit x one-hot(target) for LRP, one-hot(target) for gradient methods.

mod builder;
pub mod composite;
mod linear;
mod linear_sum;
mod local;
pub mod method;
pub mod rule;

use std::collections::{BTreeMap, HashMap};

use petgraph::stable_graph::NodeIndex;

use builder::Builder;
use composite::LayerKind;
pub use method::{
    Composite, DEFAULT_METHOD, GradientMethod, METHOD_NAMES, Method, MethodKind, Params, Settings,
};
pub use rule::{Bound, Rule};

use crate::error::{Error, Result};
use crate::ir::ops::BinaryOp;
use crate::ir::{DType, Fact, Graph, Op, Output};
use crate::passes::{self, Pass};

/// The `op` of a [`LayerTrace`] that reports relevance left on a fixed state (a recurrent
/// cell's initial h or c, another model input) rather than a layer's output.
pub const STATE_OP: &str = "state";

/// One forward node on the relevance path and the node holding the relevance at its output.
#[derive(Clone, Debug)]
pub struct LayerTrace {
    pub name: String,
    pub op: String,
    pub rule: String,
    pub relevance: NodeIndex,
}

/// The joint forward + relevance graph and the handles an explainer needs.
#[derive(Clone, Debug)]
pub struct Relevance {
    pub graph: Graph,
    /// Where relevance stops ([`stop_node`]): the explained input, or the embedding lookup
    /// of token ids.
    pub input: NodeIndex,
    /// The seed input: the one-hot target mask, of the logits' shape.
    pub seed: NodeIndex,
    /// The explained node (the logits).
    pub logits: NodeIndex,
    /// Relevance (or gradient) at the model input.
    pub relevance: NodeIndex,
    /// Every layer on the path, in forward order.
    pub layers: Vec<LayerTrace>,
    /// The model's own outputs (name, node), kept so the forward part can serve `run`.
    pub model_outputs: Vec<(String, NodeIndex)>,
}

/// The node a method explains: the first output, or the logits before its trailing Softmax.
pub fn explained_node(graph: &Graph) -> Result<NodeIndex> {
    let out = graph.outputs.first().ok_or_else(|| Error::Graph {
        file: graph.source.clone(),
        reason: "the model has no output to explain".into(),
    })?;
    Ok(out.logits.unwrap_or(out.node))
}

/// Which rule each node on the relevance path gets (for `inspect --method`).
/// A fused sum of linear maps ([`linear_sum`]) shows as the epsilon rule at its root.
pub fn rules(graph: &Graph, method: &Method) -> Result<BTreeMap<NodeIndex, Rule>> {
    let (mut rules, blocks) = assignment(graph, method)?;
    for (root, block) in &blocks {
        rules.insert(
            *root,
            Rule::Epsilon {
                epsilon: block.epsilon(),
            },
        );
    }
    Ok(rules)
}

/// The composite's rules and the sums of linear maps fused into one epsilon layer each.
fn assignment(
    graph: &Graph,
    method: &Method,
) -> Result<(
    BTreeMap<NodeIndex, Rule>,
    HashMap<NodeIndex, linear_sum::LinearSum>,
)> {
    let target = explained_node(graph)?;
    let rules = composite::assign(graph, method, target)?;
    check_composite_needs(graph, method, &rules)?;
    let blocks = if method.is_lrp() {
        let input = stop_node(graph)?;
        let on_path = composite::path(graph, input, target);
        linear_sum::find(graph, &on_path, &rules, method.params.epsilon)
    } else {
        HashMap::new()
    };
    Ok((rules, blocks))
}

/// epsilon-gamma-box's box rule needs a Conv to sit on; say so instead of silently degrading.
fn check_composite_needs(
    graph: &Graph,
    method: &Method,
    rules: &BTreeMap<NodeIndex, Rule>,
) -> Result<()> {
    if method.kind == MethodKind::Lrp(Composite::EpsilonGammaBox)
        && !rules
            .keys()
            .any(|&n| matches!(graph.node(n).op, Op::Conv(_)))
    {
        return Err(Error::Graph {
            file: graph.source.clone(),
            reason: "epsilon-gamma-box puts the z-box rule on the first Conv, and this model has no Conv; use another method (e.g. epsilon-plus-flat)".into(),
        });
    }
    Ok(())
}

/// Where relevance stops: the explained input when it holds floats; for integer token ids,
/// the embedding lookup they feed (a Gather on a constant float table, possibly after integer
/// Casts), whose output holds one vector per token.
pub fn stop_node(graph: &Graph) -> Result<NodeIndex> {
    let explained = graph.explained_input();
    if graph.fact(explained).dtype == DType::F32 {
        return Ok(explained);
    }
    let name = &graph.node(explained).name;
    let refuse = |why: String| Error::Graph {
        file: graph.source.clone(),
        reason: format!(
            "the explained input '{name}' holds integers, {why}; relevance stops at float values: at an embedding lookup (Gather on a constant table) of token ids, or at another input (--explain-input)"
        ),
    };
    let mut ids = vec![explained];
    let mut lookups = Vec::new();
    while let Some(n) = ids.pop() {
        for (c, slot) in graph.consumers_of(n) {
            match &graph.node(c).op {
                Op::Cast(cast) if cast.to != DType::F32 => ids.push(c),
                Op::Gather(_)
                    if slot == 1
                        && graph
                            .constant(graph.inputs_of(c)[0])
                            .is_some_and(|t| t.dtype() == DType::F32) =>
                {
                    lookups.push(c)
                }
                _ => {}
            }
        }
    }
    match lookups.as_slice() {
        [one] => Ok(*one),
        [] => Err(refuse("and feeds no embedding lookup".into())),
        many => Err(refuse(format!(
            "and feeds {} embedding lookups ({}); lrpc stops relevance at one",
            many.len(),
            many.iter()
                .map(|&n| format!("'{}'", graph.node(n).name))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// Builds the joint graph for `method` on a prepared forward graph.
pub fn build(forward: &Graph, method: &Method) -> Result<Relevance> {
    let mut graph = forward.clone();
    let logits = explained_node(&graph)?;
    let input = stop_node(&graph)?;
    if input != graph.explained_input() && sampling_needs_float_input(method) {
        return Err(Error::Graph {
            file: graph.source.clone(),
            reason: format!(
                "{} perturbs the explained input, and '{}' holds token ids; use gradient, gradient-x-input or an LRP method",
                method.name(),
                graph.node(graph.explained_input()).name
            ),
        });
    }
    let (rules, blocks) = assignment(&graph, method)?;
    let bias_factor = method.params.bias_factor;
    let mut on_path = composite::path(&graph, input, logits);
    on_path.insert(input);
    let seed = graph.add("relevance.seed", Op::Input, &[]);
    let logits_fact = graph.fact(logits).clone();
    graph.node_mut(seed).fact = Some(Fact::new(logits_fact.dtype, logits_fact.shape));
    graph.inputs.push(seed);
    let top = if method.is_lrp() {
        graph.add("relevance.top", Op::Binary(BinaryOp::Mul), &[logits, seed])
    } else {
        seed
    };
    let mut arriving: HashMap<NodeIndex, Vec<NodeIndex>> = HashMap::new();
    arriving.insert(logits, vec![top]);
    let order: Vec<NodeIndex> = graph
        .topo_order()
        .map_err(|_| Error::Graph {
            file: graph.source.clone(),
            reason: "the graph has a cycle".into(),
        })?
        .into_iter()
        .filter(|n| rules.contains_key(n))
        .collect();
    let mut layers = Vec::with_capacity(order.len());
    let mut left: BTreeMap<NodeIndex, Vec<NodeIndex>> = BTreeMap::new();
    for &n in order.iter().rev() {
        let Some(parts) = arriving.remove(&n) else {
            continue;
        };
        if graph.node(n).op == Op::Hold {
            // A held state: relevance stops (LRP reports it; a gradient there is not asked for).
            if method.is_lrp() {
                left.insert(n, parts);
            }
            continue;
        }
        let rule = &rules[&n];
        let node = graph.node(n);
        let (name, op) = (node.name.clone(), node.op.name().to_string());
        let node_error = |reason: String| Error::Shape {
            file: forward.source.clone(),
            node: name.clone(),
            op: op.clone(),
            reason,
        };
        let kind = composite::layer_kind(&graph, n, &on_path).map_err(&node_error)?;
        let mut bl = Builder {
            graph: &mut graph,
            layer: name.clone(),
            on_path: &on_path,
        };
        let r = bl.sum("relevance_in", &parts);
        layers.push(LayerTrace {
            name: name.clone(),
            op: op.clone(),
            rule: rule.to_string(),
            relevance: r,
        });
        let flows = if let Some(block) = blocks.get(&n) {
            layers.last_mut().expect("pushed above").rule =
                format!("epsilon (sum of {})", block.inner().len() + 1);
            linear_sum::propagate(&mut bl, block, r, bias_factor).map_err(|e| node_error(e.0))?
        } else if matches!(kind, LayerKind::Conv | LayerKind::Dense) {
            let layer = linear::Linear::new(bl.graph, n);
            let x = bl.graph.inputs_of(n)[0];
            let mut flows = vec![(
                x,
                linear::propagate(&mut bl, &layer, rule, r).map_err(|e| node_error(e.0))?,
            )];
            if let (Rule::Epsilon { epsilon }, true) = (rule, bias_factor != 0.0) {
                let share = linear::bias_share(&mut bl, &layer, r, *epsilon, bias_factor)
                    .map_err(|e| node_error(e.0))?;
                flows[0].1 = bl.bin("relevance_with_bias", BinaryOp::Add, flows[0].1, share);
            }
            flows
        } else {
            local::propagate(&mut bl, n, rule, kind, r).map_err(|e| node_error(e.0))?
        };
        for (to, rel) in flows {
            if to == input || rules.contains_key(&to) {
                arriving.entry(to).or_default().push(rel);
            }
        }
    }
    layers.reverse();
    // Relevance reaching a held recurrent state: reported (the `--layers` report and
    // `--json`'s `left_on_states`), not passed on.
    for (state, parts) in left {
        let name = graph.node(state).name.clone();
        let mut bl = Builder {
            graph: &mut graph,
            layer: name.clone(),
            on_path: &on_path,
        };
        let r = bl.sum("relevance_left", &parts);
        layers.push(LayerTrace {
            name,
            op: STATE_OP.into(),
            rule: "left on the state".into(),
            relevance: r,
        });
    }
    let parts = arriving.remove(&input).ok_or_else(|| Error::Graph {
        file: forward.source.clone(),
        reason: "no relevance reaches the input: the explained output does not depend on it".into(),
    })?;
    let mut bl = Builder {
        graph: &mut graph,
        layer: "input".into(),
        on_path: &on_path,
    };
    let mut relevance = bl.sum("relevance_in", &parts);
    if method.kind == MethodKind::Gradient(GradientMethod::GradientXInput) {
        relevance = bl.mul("gradient_x_input", input, relevance);
    }
    let model = std::mem::take(&mut graph.outputs);
    graph.outputs = vec![
        Output {
            name: "logits".into(),
            node: logits,
            logits: None,
        },
        Output {
            name: "relevance".into(),
            node: relevance,
            logits: None,
        },
    ];
    let model_count = model.len();
    graph.outputs.extend(model);
    // Kept alive as outputs: nothing else reads the relevance left on states.
    graph
        .outputs
        .extend(layers.iter().filter(|l| l.op == STATE_OP).map(|l| Output {
            name: format!("relevance_left.{}", l.name),
            node: l.relevance,
            logits: None,
        }));
    optimise(&mut graph)?;
    let model_outputs = graph.outputs[2..2 + model_count]
        .iter()
        .map(|o| (o.name.clone(), o.node))
        .collect();
    Ok(Relevance {
        graph,
        input,
        seed,
        logits,
        relevance,
        layers,
        model_outputs,
    })
}

/// SmoothGrad and integrated gradients move the input itself, which token ids do not allow.
fn sampling_needs_float_input(method: &Method) -> bool {
    matches!(
        method.kind,
        MethodKind::Gradient(
            GradientMethod::SmoothGrad { .. } | GradientMethod::IntegratedGradients { .. }
        )
    )
}

/// Infers facts for the new nodes and folds what is constant (modified weights, flat
/// normalisers), to a fixpoint.
fn optimise(graph: &mut Graph) -> Result<()> {
    passes::ReleaseHolds.run(graph)?;
    passes::InferFacts.run(graph)?;
    while passes::FoldConstants.run(graph)? {
        passes::RemoveDeadNodes.run(graph)?;
        passes::InferFacts.run(graph)?;
    }
    // Broadcast operands' relevance is a Reduce; compiled code runs it as a pool.
    while passes::LowerReduce.run(graph)? {
        passes::InferFacts.run(graph)?;
    }
    passes::check(graph, "relevance")
}
