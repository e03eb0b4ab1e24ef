//! Sums of linear maps read as one linear layer, the way Arras et al. (2017) treat a recurrent
//! cell: the gate pre-activation `x_t W + h_{t-1} U + b_ih + b_hh` is one epsilon-rule layer over
//! the inputs `[x_t, h_{t-1}]` (its biases absorb relevance), and the cell update
//! `c_t = f * c_{t-1} + i * g` is the epsilon rule on a sum. Exporters write such a cell as a
//! MatMul or Gemm per operand, an Add, and bias Adds (or a BatchNormalization, after lrpc folds
//! them); taken node by node, the bias Adds would pass relevance on unabsorbed and the Add would
//! take Zennit's merge rule, so the unrolled cell would not give the cell's relevance.
//!
//! A block is rooted at a sum: an Add, Sub or Sum of two or more computed tensors, climbed
//! through the bias Adds and scalings that are its only consumers. Its members are the linear
//! nodes below it whose only consumer is a member: sums, bias Adds and scalings by constants,
//! BatchNormalizations with constant parameters, and Gemm or MatMul layers with the epsilon rule;
//! a Gemm or MatMul ends the block (its input is a leaf). Every other computed operand is a
//! leaf. The block is fused only when it holds a Gemm or MatMul, or a leaf is a gated product
//! (a cell update): a sum of Conv branches (a ResNet merge) keeps Zennit's norm rule.
//!
//! Relevance: s = R / (z + eps * sgn0(z)) at the root, carried down to the leaves by the
//! block's derivative (every member is linear, so that is W^T s through a layer and s through a
//! sum), and R_leaf = leaf * s_leaf. With a bias factor, the relevance the biases and the
//! stabiliser absorbed is handed back in equal shares to every input element over the last axis,
//! which is Arras et al.'s `bias_factor * (b + eps * sgn0(z)) / N` term summed over the outputs.

use std::collections::{HashMap, HashSet};

use petgraph::stable_graph::NodeIndex;

use super::builder::Builder;
use super::composite::{LayerKind, layer_kind};
use super::linear::{self, Linear};
use super::local;
use super::rule::Rule;
use crate::error::OpResult;
use crate::ir::ops::{BinaryOp, Reduce, ReduceKind};
use crate::ir::{Graph, Op};
use crate::op_ensure;

/// One fused sum of linear maps.
#[derive(Clone, Debug)]
pub struct LinearSum {
    /// Members, the root first, consumers before their operands.
    members: Vec<NodeIndex>,
    /// The computed operands the block reads, each once, in the order first met.
    leaves: Vec<NodeIndex>,
    epsilon: f32,
}

/// What part a node can take in a block.
#[derive(Clone, Copy, PartialEq)]
enum Role {
    /// A sum, bias Add, scaling or BatchNormalization: the block goes on below it.
    Inner,
    /// A Gemm or MatMul with the epsilon rule: the block ends at its input.
    Layer(f32),
}

fn role(
    graph: &Graph,
    n: NodeIndex,
    on_path: &HashSet<NodeIndex>,
    rules: &std::collections::BTreeMap<NodeIndex, Rule>,
) -> Option<Role> {
    let rule = rules.get(&n)?;
    let kind = layer_kind(graph, n, on_path).ok()?;
    let ins = graph.inputs_of(n);
    match (kind, rule, &graph.node(n).op) {
        (LayerKind::Dense, Rule::Epsilon { epsilon }, _) => Some(Role::Layer(*epsilon)),
        (LayerKind::Merge, Rule::Norm, _) => Some(Role::Inner),
        (LayerKind::BatchNorm, Rule::Pass, Op::BatchNorm(_))
            if ins[1..].iter().all(|&p| graph.constant(p).is_some())
                && !super::composite::is_gate(graph, ins[0]) =>
        {
            Some(Role::Inner)
        }
        (LayerKind::ConstElementwise, Rule::Gradient, Op::Binary(b)) => {
            let computed_first = on_path.contains(&ins[0]);
            let linear = match b {
                BinaryOp::Add | BinaryOp::Sub => true,
                BinaryOp::Mul => !ins.iter().any(|&i| super::composite::is_gate(graph, i)),
                BinaryOp::Div => computed_first,
                _ => false,
            };
            linear.then_some(Role::Inner)
        }
        _ => None,
    }
}

fn only_consumer(graph: &Graph, n: NodeIndex) -> Option<NodeIndex> {
    match graph.consumers_of(n).as_slice() {
        [(c, _)] => Some(*c),
        _ => None,
    }
}

/// The fused blocks of a rule assignment, by root.
pub fn find(
    graph: &Graph,
    on_path: &HashSet<NodeIndex>,
    rules: &std::collections::BTreeMap<NodeIndex, Rule>,
    default_epsilon: f32,
) -> HashMap<NodeIndex, LinearSum> {
    let mut blocks = HashMap::new();
    let is_merge = |n: NodeIndex| {
        rules.get(&n) == Some(&Rule::Norm)
            && layer_kind(graph, n, on_path).ok() == Some(LayerKind::Merge)
    };
    // A Gemm under bias Adds alone (a first step, whose h_0 term was folded away) is a block
    // too: its biases absorb relevance like the others'.
    let starts = |n: NodeIndex| {
        is_merge(n)
            || (matches!(role(graph, n, on_path, rules), Some(Role::Layer(_)))
                && only_consumer(graph, n)
                    .is_some_and(|c| role(graph, c, on_path, rules) == Some(Role::Inner)))
    };
    let mut roots = Vec::new();
    for &n in rules.keys().filter(|&&n| starts(n)) {
        let mut root = n;
        while let Some(c) = only_consumer(graph, root) {
            if role(graph, c, on_path, rules) != Some(Role::Inner) {
                break;
            }
            root = c;
        }
        if !roots.contains(&root) {
            roots.push(root);
        }
    }
    let order: HashMap<NodeIndex, usize> = graph
        .topo_order()
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(k, n)| (n, k))
        .collect();
    for root in roots {
        if let Some(block) = collect(graph, root, on_path, rules, &order, default_epsilon) {
            blocks.insert(root, block);
        }
    }
    blocks
}

fn collect(
    graph: &Graph,
    root: NodeIndex,
    on_path: &HashSet<NodeIndex>,
    rules: &std::collections::BTreeMap<NodeIndex, Rule>,
    order: &HashMap<NodeIndex, usize>,
    default_epsilon: f32,
) -> Option<LinearSum> {
    if let Some(Role::Layer(_)) = role(graph, root, on_path, rules) {
        return None;
    }
    let mut members = vec![root];
    let mut leaves = Vec::new();
    let mut layer_epsilons = Vec::new();
    let mut stack = vec![root];
    while let Some(m) = stack.pop() {
        let stops = matches!(role(graph, m, on_path, rules), Some(Role::Layer(_)));
        for i in graph.inputs_of(m) {
            if !on_path.contains(&i) {
                continue;
            }
            let joins = !stops
                && only_consumer(graph, i) == Some(m)
                && role(graph, i, on_path, rules).is_some();
            if joins {
                if let Some(Role::Layer(e)) = role(graph, i, on_path, rules) {
                    layer_epsilons.push(e);
                }
                members.push(i);
                stack.push(i);
            } else if !leaves.contains(&i) {
                leaves.push(i);
            }
        }
    }
    let gated_leaf = leaves.iter().any(|&l| {
        matches!(
            layer_kind(graph, l, on_path),
            Ok(LayerKind::Product { gate: Some(_) })
        )
    });
    if layer_epsilons.is_empty() && !gated_leaf {
        return None;
    }
    let epsilon = match layer_epsilons.as_slice() {
        [] => default_epsilon,
        [first, rest @ ..] if rest.iter().all(|e| e == first) => *first,
        // Layers forced to different epsilons by --rule keep their own rules.
        _ => return None,
    };
    members.sort_by_key(|m| std::cmp::Reverse(order.get(m).copied().unwrap_or(0)));
    Some(LinearSum {
        members,
        leaves,
        epsilon,
    })
}

impl LinearSum {
    /// Every member but the root: nodes whose relevance the block computes.
    pub fn inner(&self) -> &[NodeIndex] {
        &self.members[1..]
    }

    /// The epsilon of the block's stabiliser.
    pub fn epsilon(&self) -> f32 {
        self.epsilon
    }
}

/// Relevance for each leaf of `block`, given relevance `r` at its root.
pub fn propagate(
    bl: &mut Builder,
    block: &LinearSum,
    r: NodeIndex,
    bias_factor: f32,
) -> OpResult<Vec<(NodeIndex, NodeIndex)>> {
    let layer = bl.layer.clone();
    let root = block.members[0];
    let s = bl.normalise("q", r, root, block.epsilon);
    let mut signals: HashMap<NodeIndex, Vec<NodeIndex>> = HashMap::from([(root, vec![s])]);
    let mut at_leaves: HashMap<NodeIndex, Vec<NodeIndex>> = HashMap::new();
    for &m in &block.members {
        let parts = signals.remove(&m).unwrap_or_default();
        op_ensure!(
            !parts.is_empty(),
            "block member '{}' got no signal",
            bl.graph.node(m).name
        );
        bl.layer = format!("{layer}.{}", bl.graph.node(m).name);
        let g = bl.sum("signal", &parts);
        let flows = if matches!(bl.graph.node(m).op, Op::Gemm(_) | Op::MatMul) {
            let l = Linear::new(bl.graph, m);
            let x = bl.graph.inputs_of(m)[0];
            vec![(x, linear::propagate(bl, &l, &Rule::Gradient, g)?)]
        } else {
            let kind = layer_kind(bl.graph, m, bl.on_path).map_err(crate::error::OpError)?;
            local::propagate(bl, m, &Rule::Gradient, kind, g)?
        };
        for (to, sig) in flows {
            let dest = if block.members.contains(&to) {
                &mut signals
            } else {
                &mut at_leaves
            };
            dest.entry(to).or_default().push(sig);
        }
    }
    bl.layer = layer;
    let mut out = Vec::with_capacity(block.leaves.len());
    for (k, &leaf) in block.leaves.iter().enumerate() {
        let parts = at_leaves.remove(&leaf).unwrap_or_default();
        let g = bl.sum(&format!("leaf_signal{k}"), &parts);
        out.push((leaf, bl.mul(&format!("relevance{k}"), leaf, g)));
    }
    if bias_factor != 0.0 {
        redistribute(bl, r, root, &mut out, bias_factor)?;
    }
    Ok(out)
}

/// Arras et al.'s bias factor: the relevance at `root` that its inputs' shares `rels` do not
/// account for (what the biases and the stabiliser absorbed), times `bias_factor`, handed in
/// equal parts to the N input elements that share each position of the last axis.
pub fn redistribute(
    bl: &mut Builder,
    r: NodeIndex,
    root: NodeIndex,
    rels: &mut [(NodeIndex, NodeIndex)],
    bias_factor: f32,
) -> OpResult<()> {
    let out_shape = bl.graph.fact(root).shape.clone();
    let lead = &out_shape[..out_shape.len().saturating_sub(1)];
    let mut n = 0usize;
    for &(leaf, _) in rels.iter() {
        let shape = &bl.graph.fact(leaf).shape;
        op_ensure!(
            !shape.is_empty() && &shape[..shape.len() - 1] == lead,
            "the bias factor shares absorbed relevance over the last axis, and input '{}' {:?} does not match the output {:?} on the other axes",
            bl.graph.node(leaf).name,
            shape,
            out_shape
        );
        n += shape[shape.len() - 1];
    }
    let last = |bl: &mut Builder, role: &str, x: NodeIndex| {
        bl.add(
            role,
            Op::Reduce(Reduce {
                kind: ReduceKind::Sum,
                axes: Some(vec![-1]),
                keepdims: true,
            }),
            &[x],
        )
    };
    let mut absorbed = last(bl, "bias.out", r);
    for (k, &(_, rel)) in rels.iter().enumerate() {
        let shares = last(bl, &format!("bias.in{k}"), rel);
        absorbed = bl.bin(&format!("bias.left{k}"), BinaryOp::Sub, absorbed, shares);
    }
    let share = bl.scale("bias.share", absorbed, bias_factor / n.max(1) as f32);
    for (k, (_, rel)) in rels.iter_mut().enumerate() {
        *rel = bl.bin(&format!("bias.relevance{k}"), BinaryOp::Add, *rel, share);
    }
    Ok(())
}
