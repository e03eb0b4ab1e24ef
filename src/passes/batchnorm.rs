//! FoldBatchNorm: a BatchNormalization whose input is a Conv or Gemm with constant parameters,
//! and which is that node's only consumer, is merged into it, as Zennit's canonizers do:
//! with s = scale / sqrt(var + eps), W' = W s (per output channel) and b' = (b - mean) s + B.
//! BatchNorms that cannot be folded stay (the relevance pass lets relevance through them).

use std::sync::Arc;

use petgraph::stable_graph::NodeIndex;

use super::Pass;
use crate::error::Result;
use crate::ir::ops::Gemm;
use crate::ir::{Graph, Op, Tensor, numel};

/// Merges BatchNormalization into the preceding Conv/Gemm.
pub struct FoldBatchNorm;

/// The per-channel affine map of a BatchNorm node whose parameters are all constants:
/// y = (x - mean) * scale + beta, scale = gamma / sqrt(var + eps).
pub(super) struct ChannelAffine {
    pub scale: Vec<f32>,
    pub mean: Vec<f32>,
    pub beta: Vec<f32>,
}

impl ChannelAffine {
    /// The same map as x * scale + shift.
    pub fn shift(&self) -> Vec<f32> {
        self.beta
            .iter()
            .zip(&self.mean)
            .zip(&self.scale)
            .map(|((b, m), s)| b - m * s)
            .collect()
    }

    /// (b - mean) * scale + beta: a bias b seen through the map, in Zennit's order of operations
    /// (its BatchNorm merge), so folded models round as Zennit's do.
    fn fold_bias(&self, b: &[f32]) -> Vec<f32> {
        (0..self.scale.len())
            .map(|j| (b[j] - self.mean[j]) * self.scale[j] + self.beta[j])
            .collect()
    }
}

pub(super) fn batchnorm_affine(graph: &Graph, n: NodeIndex) -> Option<ChannelAffine> {
    let Op::BatchNorm(b) = &graph.node(n).op else {
        return None;
    };
    let ins = graph.inputs_of(n);
    let p: Vec<Arc<Tensor>> = ins[1..]
        .iter()
        .map(|&i| graph.constant_f32(i))
        .collect::<Option<_>>()?;
    let (gamma, beta, mean, var) = (
        p[0].f32s().ok()?,
        p[1].f32s().ok()?,
        p[2].f32s().ok()?,
        p[3].f32s().ok()?,
    );
    let scale = gamma
        .iter()
        .zip(var)
        .map(|(g, v)| g / (v + b.epsilon).sqrt())
        .collect();
    Some(ChannelAffine {
        scale,
        mean: mean.to_vec(),
        beta: beta.to_vec(),
    })
}

impl Pass for FoldBatchNorm {
    fn name(&self) -> &'static str {
        "FoldBatchNorm"
    }

    fn run(&self, graph: &mut Graph) -> Result<bool> {
        let bns: Vec<NodeIndex> = graph
            .nodes
            .node_indices()
            .filter(|&n| matches!(graph.node(n).op, Op::BatchNorm(_)))
            .collect();
        let mut changed = false;
        for bn in bns {
            let Some(affine) = batchnorm_affine(graph, bn) else {
                continue;
            };
            let producer = graph.inputs_of(bn)[0];
            if graph.consumers_of(producer).len() != 1 || graph.is_output(producer) {
                continue;
            }
            let folded = match &graph.node(producer).op {
                Op::Conv(_) => fold_conv(graph, producer, &affine),
                Op::Gemm(g) => fold_gemm(graph, producer, g.clone(), &affine),
                _ => None,
            };
            let Some((weight, bias, op)) = folded else {
                continue;
            };
            let name = graph.node(producer).name.clone();
            let x = graph.inputs_of(producer)[0];
            let w = graph.add(
                format!("{name}.folded_weight"),
                Op::Const(Arc::new(weight)),
                &[],
            );
            let b = graph.add(
                format!("{name}.folded_bias"),
                Op::Const(Arc::new(bias)),
                &[],
            );
            graph.set_inputs(producer, &[x, w, b]);
            graph.node_mut(producer).op = op;
            graph.replace_uses(bn, producer);
            graph.nodes.remove_node(bn);
            changed = true;
        }
        Ok(changed)
    }
}

type Folded = (Tensor, Tensor, Op);

/// Conv weight [M, C/g, k...]: scale each output channel's filter.
fn fold_conv(graph: &Graph, conv: NodeIndex, affine: &ChannelAffine) -> Option<Folded> {
    let s = &affine.scale;
    let ins = graph.inputs_of(conv);
    let w = graph.constant_f32(ins[1])?;
    let m = w.shape()[0];
    if s.len() != m {
        return None;
    }
    let per = numel(&w.shape()[1..]);
    let wv: Vec<f32> = w
        .f32s()
        .ok()?
        .iter()
        .enumerate()
        .map(|(i, &v)| v * s[i / per])
        .collect();
    let b0 = match ins.get(2) {
        Some(&b) => graph.constant_f32(b)?.f32s().ok()?.to_vec(),
        None => vec![0.0; m],
    };
    let bv = affine.fold_bias(&b0);
    Some((
        Tensor::from_f32(w.shape().to_vec(), wv).ok()?,
        Tensor::from_f32(vec![m], bv).ok()?,
        graph.node(conv).op.clone(),
    ))
}

/// Gemm Y = alpha A B' + beta C over columns j: B' column j scales by s_j; C becomes
/// (beta C - mean) s + B with beta 1. Only a C that is one value per column (or absent) folds.
fn fold_gemm(graph: &Graph, gemm: NodeIndex, g: Gemm, affine: &ChannelAffine) -> Option<Folded> {
    let s = &affine.scale;
    let ins = graph.inputs_of(gemm);
    let w = graph.constant_f32(ins[1])?;
    let n = if g.trans_b {
        w.shape()[0]
    } else {
        w.shape()[1]
    };
    if s.len() != n {
        return None;
    }
    let cols = w.shape()[1];
    let wv: Vec<f32> = w
        .f32s()
        .ok()?
        .iter()
        .enumerate()
        .map(|(i, &v)| v * s[if g.trans_b { i / cols } else { i % cols }])
        .collect();
    let c0: Vec<f32> = match ins.get(2) {
        Some(&c) => {
            let c = graph.constant_f32(c)?;
            let v = c.f32s().ok()?;
            match v.len() {
                1 => vec![v[0]; n],
                len if len == n => v.to_vec(),
                _ => return None,
            }
        }
        None => vec![0.0; n],
    };
    let scaled: Vec<f32> = c0.iter().map(|c| g.beta * c).collect();
    let bv = affine.fold_bias(&scaled);
    Some((
        Tensor::from_f32(w.shape().to_vec(), wv).ok()?,
        Tensor::from_f32(vec![n], bv).ok()?,
        Op::Gemm(Gemm { beta: 1.0, ..g }),
    ))
}
