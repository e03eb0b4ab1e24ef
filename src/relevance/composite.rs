//! Rule assignment: what kind of layer each node is, and which rule the method gives it
//! (design.md section 4's composite table), then the user's name-pattern overrides.

use std::collections::{BTreeMap, HashSet};

use petgraph::Direction;
use petgraph::stable_graph::NodeIndex;

use super::method::{Composite, GradientMethod, Method, MethodKind};
use super::rule::Rule;
use crate::error::{Error, Result};
use crate::ir::ops::{Activation, BinaryOp, GlobalPool, PoolKind};
use crate::ir::{Graph, Op};

/// What a node is, as far as rule choice goes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LayerKind {
    /// Conv with a constant weight.
    Conv,
    /// Gemm or MatMul with a constant weight.
    Dense,
    /// Add, Sub or Sum of two or more computed tensors.
    Merge,
    /// AveragePool or GlobalAveragePool.
    AvgPool,
    MaxPool,
    Activation(Activation),
    BatchNorm,
    Lrn,
    Softmax,
    /// Reshape, Flatten, Transpose, Concat, Pad, Slice, Squeeze, Unsqueeze.
    Movement,
    /// Add/Sub/Mul/Div of one computed tensor and constants.
    ConstElementwise,
    /// Mul of two computed tensors: `gate` is the operand slot that is a gate (a Sigmoid or
    /// HardSigmoid output, possibly reshaped), if exactly one is.
    Product {
        gate: Option<usize>,
    },
    /// Div of two computed tensors: a normalisation by a computed scale (LayerNorm written out).
    Quotient,
    /// Mul of a computed tensor and the reciprocal of a computed deviation (`scale`, its slot):
    /// RMSNorm written out, x * rsqrt(mean(x^2) + eps), the deviation held like LayerNorm's.
    Normalised {
        scale: usize,
    },
    /// MatMul of two computed tensors (attention's Q K^T and A V): `weights` is the operand
    /// slot holding attention weights (a Softmax output, possibly moved), if exactly one does.
    MatProduct {
        weights: Option<usize>,
    },
}

/// Whether `n` is a gate: the output of a sigmoid-like activation (values in [0, 1]), seen
/// through data movement (squeeze-excite gates are reshaped or unsqueezed before the product).
pub fn is_gate(graph: &Graph, n: NodeIndex) -> bool {
    matches!(
        graph.node(through_movement(graph, n)).op,
        Op::Activation(Activation::Sigmoid | Activation::HardSigmoid { .. })
    )
}

/// Whether `n` is the reciprocal of a deviation, seen through data movement: Reciprocal or
/// 1 / (constant numerator) of a Sqrt, or a power with a constant negative exponent (how
/// exporters write rsqrt).
pub fn is_normaliser(graph: &Graph, n: NodeIndex) -> bool {
    let n = through_movement(graph, n);
    let ins = graph.inputs_of(n);
    let is_sqrt = |i: NodeIndex| {
        matches!(
            graph.node(through_movement(graph, i)).op,
            Op::Activation(Activation::Sqrt)
        )
    };
    match graph.node(n).op {
        Op::Activation(Activation::Reciprocal) => ins.first().is_some_and(|&i| is_sqrt(i)),
        Op::Binary(BinaryOp::Div) => {
            ins.len() == 2 && graph.constant(ins[0]).is_some() && is_sqrt(ins[1])
        }
        Op::Binary(BinaryOp::Pow) => ins.get(1).is_some_and(|&e| {
            graph.constant_f32(e).is_some_and(|t| {
                t.f32s()
                    .is_ok_and(|v| !v.is_empty() && v.iter().all(|&p| p < 0.0))
            })
        }),
        _ => false,
    }
}

/// Whether `n` holds attention weights: a Softmax output, seen through data movement.
pub fn is_attention(graph: &Graph, n: NodeIndex) -> bool {
    matches!(graph.node(through_movement(graph, n)).op, Op::Softmax(_))
}

/// The node whose values `n` moves: `n` itself unless it is data movement of a first operand.
fn through_movement(graph: &Graph, mut n: NodeIndex) -> NodeIndex {
    while graph.node(n).op.is_data_movement() {
        match graph.inputs_of(n).first() {
            Some(&i) => n = i,
            None => break,
        }
    }
    n
}

/// The one slot of `ins` for which `test` holds, if exactly one does.
fn only_slot(ins: &[NodeIndex], test: impl Fn(NodeIndex) -> bool) -> Option<usize> {
    let slots: Vec<usize> = (0..ins.len()).filter(|&k| test(ins[k])).collect();
    (slots.len() == 1).then(|| slots[0])
}

/// Classifies a node, or says why no rule can handle it. `on_path` holds the nodes that
/// depend on the explained input: an operand outside it (a constant, or data of another model
/// input) is fixed as far as relevance goes.
pub fn layer_kind(
    graph: &Graph,
    n: NodeIndex,
    on_path: &HashSet<NodeIndex>,
) -> Result<LayerKind, String> {
    let ins = graph.inputs_of(n);
    let computed = ins.iter().filter(|i| on_path.contains(i)).count();
    let weight_const = ins.get(1).is_some_and(|&w| graph.constant(w).is_some());
    let bias_const = ins.get(2).is_none_or(|&b| graph.constant(b).is_some());
    Ok(match &graph.node(n).op {
        Op::Conv(_) if weight_const && bias_const => LayerKind::Conv,
        Op::ConvTranspose(_) if weight_const && bias_const => LayerKind::Conv,
        Op::Gemm(g) if weight_const && bias_const && !g.trans_a => LayerKind::Dense,
        Op::MatMul if weight_const => LayerKind::Dense,
        Op::MatMul if computed == 2 => LayerKind::MatProduct {
            weights: only_slot(&ins[..2], |i| is_attention(graph, i)),
        },
        Op::Conv(_) | Op::Gemm(_) | Op::MatMul => {
            return Err(
                "its weight is computed, not constant; LRP needs a layer with constant parameters"
                    .into(),
            );
        }
        Op::Binary(BinaryOp::Add | BinaryOp::Sub) | Op::Sum if computed >= 2 => LayerKind::Merge,
        Op::Binary(BinaryOp::Div) if computed == 2 => LayerKind::Quotient,
        Op::Binary(BinaryOp::Mul) if computed == 2 => {
            match only_slot(&ins[..2], |i| is_normaliser(graph, i)) {
                Some(scale) => LayerKind::Normalised { scale },
                None => LayerKind::Product {
                    gate: only_slot(&ins[..2], |i| is_gate(graph, i)),
                },
            }
        }
        Op::Binary(_) | Op::Sum if computed == 1 => LayerKind::ConstElementwise,
        Op::Binary(b) => {
            return Err(format!(
                "{} of two computed tensors has no relevance rule (two computed operands have rules in Add, Sub and Sum: norm; Mul: uniform or gate; Div: pass to the numerator; MatMul: uniform or attention-const)",
                b.name()
            ));
        }
        Op::Pool(p) if matches!(p.kind, PoolKind::Max) => LayerKind::MaxPool,
        Op::Pool(_) | Op::GlobalPool(GlobalPool::Average) => LayerKind::AvgPool,
        Op::GlobalPool(GlobalPool::Max) => LayerKind::MaxPool,
        Op::Activation(a) => LayerKind::Activation(*a),
        Op::Where => LayerKind::Movement,
        // Gathering with constant indices moves data; a computed index would select by data.
        Op::Gather(_) if ins.get(1).is_some_and(|&i| graph.constant(i).is_some()) => {
            LayerKind::Movement
        }
        Op::Resize(r) => match r.interpolation {
            crate::ir::ops::resize::Interpolation::Nearest(_) => LayerKind::Movement,
            crate::ir::ops::resize::Interpolation::Linear => LayerKind::AvgPool,
        },
        Op::BatchNorm(_) => LayerKind::BatchNorm,
        Op::Lrn(_) => LayerKind::Lrn,
        Op::Softmax(_) => LayerKind::Softmax,
        op if op.is_data_movement() => LayerKind::Movement,
        op => return Err(format!("{} has no relevance rule", op.name())),
    })
}

/// The nodes relevance flows through: descendants of the input that `target` depends on.
///
/// Held states ([`Op::Hold`], a recurrent cell's initial h and c) are sources too: relevance
/// flows into them through the layers that read them, and stops there (reported as left on
/// the state, as Arras et al.'s R(h_0), R(c_0)).
pub fn path(graph: &Graph, input: NodeIndex, target: NodeIndex) -> HashSet<NodeIndex> {
    let walk = |start: Vec<NodeIndex>, dir: Direction| {
        let mut seen = HashSet::new();
        let mut stack = start;
        while let Some(n) = stack.pop() {
            if seen.insert(n) {
                stack.extend(graph.nodes.neighbors_directed(n, dir));
            }
        }
        seen
    };
    let mut sources = vec![input];
    sources.extend(
        graph
            .nodes
            .node_indices()
            .filter(|&n| graph.node(n).op == Op::Hold),
    );
    let down = walk(sources, Direction::Outgoing);
    walk(vec![target], Direction::Incoming)
        .intersection(&down)
        .copied()
        .collect()
}

/// Assigns a rule to every node on the path from the input to `target` (the input excluded).
pub fn assign(
    graph: &Graph,
    method: &Method,
    target: NodeIndex,
) -> Result<BTreeMap<NodeIndex, Rule>> {
    let input = super::stop_node(graph)?;
    let on_path = path(graph, input, target);
    let order = graph.topo_order().map_err(|_| Error::Graph {
        file: graph.source.clone(),
        reason: "the graph has a cycle".into(),
    })?;
    let node_error = |n: NodeIndex, reason: String| Error::Shape {
        file: graph.source.clone(),
        node: graph.node(n).name.clone(),
        op: graph.node(n).op.name().into(),
        reason,
    };
    let mut rules = BTreeMap::new();
    let mut first_done = false;
    for n in order
        .into_iter()
        .filter(|n| on_path.contains(n) && *n != input)
    {
        let kind = layer_kind(graph, n, &on_path).map_err(|r| node_error(n, r))?;
        let first = !first_done && is_first_layer(method, kind);
        first_done |= first;
        let mut rule = default_rule(method, kind, first).map_err(|r| node_error(n, r))?;
        let name = &graph.node(n).name;
        for o in method.overrides.iter().filter(|o| o.matcher.is_match(name)) {
            check_applies(&o.rule, kind).map_err(|r| {
                node_error(
                    n,
                    format!(
                        "rule '{}' from '{}={}': {r}",
                        o.rule.name(),
                        o.pattern,
                        o.rule.name()
                    ),
                )
            })?;
            rule = o.rule.clone();
        }
        rules.insert(n, rule);
    }
    Ok(rules)
}

/// Whether a node of this kind takes the composite's special first-layer rule.
fn is_first_layer(method: &Method, kind: LayerKind) -> bool {
    match method.kind {
        MethodKind::Lrp(Composite::EpsilonPlusFlat | Composite::EpsilonAlpha2Beta1Flat) => {
            matches!(kind, LayerKind::Conv | LayerKind::Dense)
        }
        MethodKind::Lrp(Composite::EpsilonGammaBox) => kind == LayerKind::Conv,
        _ => false,
    }
}

/// The composite's rule for a layer kind.
fn default_rule(method: &Method, kind: LayerKind, first: bool) -> Result<Rule, String> {
    let p = &method.params;
    let epsilon = Rule::Epsilon { epsilon: p.epsilon };
    let alpha_beta = Rule::AlphaBeta {
        alpha: p.alpha,
        beta: p.beta,
    };
    let composite = match method.kind {
        MethodKind::Gradient(g) => return gradient_rule(g, kind),
        MethodKind::Lrp(c) => c,
    };
    use Composite::*;
    if matches!(composite, AttnLrp | AttnLrpGamma | CpLrp) {
        return Ok(match kind {
            LayerKind::Conv | LayerKind::Dense if composite == AttnLrpGamma => {
                Rule::Gamma { gamma: p.gamma }
            }
            LayerKind::Conv | LayerKind::Dense => epsilon,
            // Bias-like constants and per-channel affine maps absorb their share:
            // R_x = x (dy/dx) R / s(y).
            LayerKind::Merge
            | LayerKind::AvgPool
            | LayerKind::BatchNorm
            | LayerKind::ConstElementwise => Rule::Norm,
            LayerKind::Activation(_)
            | LayerKind::Lrn
            | LayerKind::Quotient
            | LayerKind::Normalised { .. } => Rule::Pass,
            LayerKind::MaxPool | LayerKind::Movement => Rule::Gradient,
            LayerKind::MatProduct { weights: Some(_) } if composite == CpLrp => {
                Rule::AttentionConst
            }
            LayerKind::Product { .. } | LayerKind::MatProduct { .. } => Rule::Uniform,
            LayerKind::Softmax => Rule::Softmax,
        });
    }
    Ok(match kind {
        LayerKind::Conv | LayerKind::Dense if first => match composite {
            EpsilonGammaBox => Rule::ZBox {
                low: p.low.clone(),
                high: p.high.clone(),
            },
            _ => Rule::Flat,
        },
        LayerKind::Conv => match composite {
            Epsilon | AttnLrp | AttnLrpGamma | CpLrp => epsilon,
            EpsilonPlus | EpsilonPlusFlat | ExcitationBackprop => Rule::ZPlus,
            EpsilonAlpha2Beta1 | EpsilonAlpha2Beta1Flat => alpha_beta,
            EpsilonGammaBox => Rule::Gamma { gamma: p.gamma },
        },
        LayerKind::Dense => match composite {
            ExcitationBackprop => Rule::ZPlus,
            _ => epsilon,
        },
        LayerKind::Merge | LayerKind::AvgPool => Rule::Norm,
        // Zennit's ExcitationBackprop maps neither activations nor BatchNorm: they get the gradient.
        LayerKind::Activation(_) | LayerKind::BatchNorm if composite == ExcitationBackprop => {
            Rule::Gradient
        }
        LayerKind::Activation(_)
        | LayerKind::BatchNorm
        | LayerKind::Lrn
        | LayerKind::Quotient
        | LayerKind::Normalised { .. } => Rule::Pass,
        LayerKind::MaxPool | LayerKind::Movement | LayerKind::ConstElementwise => Rule::Gradient,
        LayerKind::Product { gate: Some(_) } => Rule::Gate,
        LayerKind::Product { gate: None } | LayerKind::MatProduct { .. } => Rule::Uniform,
        LayerKind::Softmax => Rule::Softmax,
    })
}

fn gradient_rule(method: GradientMethod, kind: LayerKind) -> Result<Rule, String> {
    Ok(match (method, kind) {
        (GradientMethod::GuidedBackprop, LayerKind::Activation(Activation::Relu)) => {
            Rule::GuidedBackprop
        }
        (GradientMethod::Deconvnet, LayerKind::Activation(Activation::Relu)) => Rule::Deconvnet,
        _ => Rule::Gradient,
    })
}

/// Whether a rule a user forces on a node can apply to it.
fn check_applies(rule: &Rule, kind: LayerKind) -> Result<(), String> {
    let linear = matches!(kind, LayerKind::Conv | LayerKind::Dense);
    let ok = match rule {
        r if r.needs_linear() => linear,
        Rule::Norm => {
            linear
                || matches!(
                    kind,
                    LayerKind::Merge
                        | LayerKind::AvgPool
                        | LayerKind::BatchNorm
                        | LayerKind::ConstElementwise
                )
        }
        Rule::Pass => matches!(
            kind,
            LayerKind::Activation(_)
                | LayerKind::BatchNorm
                | LayerKind::Lrn
                | LayerKind::ConstElementwise
                | LayerKind::Quotient
                | LayerKind::Normalised { .. }
        ),
        Rule::Gradient => true,
        Rule::Gate => matches!(kind, LayerKind::Product { gate: Some(_) }),
        Rule::Uniform => matches!(
            kind,
            LayerKind::Product { .. } | LayerKind::MatProduct { .. } | LayerKind::Normalised { .. }
        ),
        Rule::AttentionConst => matches!(kind, LayerKind::MatProduct { weights: Some(_) }),
        Rule::Softmax => kind == LayerKind::Softmax,
        _ => kind == LayerKind::Activation(Activation::Relu),
    };
    if ok {
        Ok(())
    } else if rule.needs_linear() {
        Err("it needs a Conv, Gemm or MatMul with constant weights".into())
    } else {
        Err("it does not apply to this kind of node".into())
    }
}
