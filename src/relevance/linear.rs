//! The rules of linear layers (Conv, ConvTranspose, canonical Gemm, MatMul with a constant
//! weight). Each rule is
//! written as Zennit's hooks compute it: forward passes of the layer with modified inputs and
//! parameters, R divided by the stabilised sum of those outputs, then the layer's adjoint (what
//! autograd computes) with the same modified parameters, multiplied by the modified inputs.
//! Modified parameters are element-wise functions of constants, so constant folding turns them
//! into new constants at compile time.

use petgraph::stable_graph::NodeIndex;

use super::builder::Builder;
use super::rule::{Bound, Rule, STABILIZER};
use crate::error::OpResult;
use crate::ir::ops::{BinaryOp, Concat, ConvTranspose, Gemm, Pointwise, Slice, Transpose};
use crate::ir::{Graph, Op, Tensor, numel};
use crate::passes::sign;
use crate::{op_bail, op_ensure};

/// A linear layer z = L(x; W, b) of the forward graph.
pub struct Linear {
    op: Op,
    x: NodeIndex,
    w: NodeIndex,
    b: Option<NodeIndex>,
    x_shape: Vec<usize>,
    z: NodeIndex,
}

impl Linear {
    pub fn new(graph: &Graph, n: NodeIndex) -> Self {
        let ins = graph.inputs_of(n);
        Linear {
            op: graph.node(n).op.clone(),
            x: ins[0],
            w: ins[1],
            b: ins.get(2).copied(),
            x_shape: graph.fact(ins[0]).shape.clone(),
            z: n,
        }
    }

    /// L(x; w, b): the layer's op on other operands.
    fn forward(
        &self,
        bl: &mut Builder,
        role: &str,
        x: NodeIndex,
        w: NodeIndex,
        b: Option<NodeIndex>,
    ) -> NodeIndex {
        let mut inputs = vec![x, w];
        inputs.extend(b);
        bl.add(role, self.op.clone(), &inputs)
    }

    /// The adjoint of L(.; w) applied to q: W^T q in the layer's geometry.
    fn adjoint(&self, bl: &mut Builder, role: &str, q: NodeIndex, w: NodeIndex) -> NodeIndex {
        match &self.op {
            Op::Conv(c) => bl.add(
                role,
                Op::ConvTranspose(ConvTranspose {
                    conv: c.clone(),
                    input_shape: self.x_shape.clone(),
                }),
                &[q, w],
            ),
            // ConvTranspose is the adjoint of its Conv, so its adjoint is that Conv.
            Op::ConvTranspose(t) => bl.add(role, Op::Conv(t.conv.clone()), &[q, w]),
            Op::Gemm(g) => {
                let adj = Gemm {
                    alpha: g.alpha,
                    beta: 1.0,
                    trans_a: false,
                    trans_b: !g.trans_b,
                };
                bl.add(role, Op::Gemm(adj), &[q, w])
            }
            _ => {
                let wt = bl.add(
                    &format!("{role}.weight_t"),
                    Op::Transpose(Transpose { perm: None }),
                    &[w],
                );
                bl.add(role, Op::MatMul, &[q, wt])
            }
        }
    }

    /// A constant of the input's shape: `value` everywhere, or per channel (axis 1).
    fn filled(&self, bl: &mut Builder, role: &str, bound: &Bound) -> OpResult<NodeIndex> {
        let n = numel(&self.x_shape);
        let data = match bound {
            Bound::Scalar(v) => vec![*v; n],
            Bound::PerChannel(v) => {
                op_ensure!(
                    self.x_shape.len() >= 2 && self.x_shape[1] == v.len(),
                    "a per-channel bound has {} values but the layer input {:?} has {} channels",
                    v.len(),
                    self.x_shape,
                    self.x_shape.get(1).copied().unwrap_or(0)
                );
                let inner = numel(&self.x_shape[2..]);
                (0..n).map(|i| v[(i / inner) % v.len()]).collect()
            }
        };
        Ok(bl.konst(role, Tensor::from_f32(self.x_shape.clone(), data)?))
    }
}

/// Relevance at the layer input for `rule`, given relevance `r` at its output.
pub fn propagate(bl: &mut Builder, l: &Linear, rule: &Rule, r: NodeIndex) -> OpResult<NodeIndex> {
    use Pointwise::{Negative, One, Positive, Square};
    let (x, w) = (l.x, l.w);
    Ok(match rule {
        Rule::Epsilon { epsilon } => epsilon_rule(bl, l, r, *epsilon),
        Rule::Norm => epsilon_rule(bl, l, r, STABILIZER),
        Rule::Gradient => l.adjoint(bl, "relevance", r, w),
        Rule::ZPlus | Rule::AlphaBeta { .. } => {
            let (alpha, beta) = match rule {
                Rule::AlphaBeta { alpha, beta } => (*alpha, *beta),
                _ => (1.0, 0.0),
            };
            let (xp, xn) = split_input(bl, x);
            let wp = bl.point("w_plus", Positive, w);
            let wn = bl.point("w_minus", Negative, w);
            let bp = l.b.map(|b| bl.point("b_plus", Positive, b));
            // Positive contributions: x+ w+ (+ b+) and x- w-.
            let pos = part(bl, l, "pos", r, (xp, xn), (wp, wn), bp);
            if beta == 0.0 {
                if alpha == 1.0 {
                    pos
                } else {
                    bl.scale("relevance", pos, alpha)
                }
            } else {
                // Negative contributions: x+ w- (+ b-) and x- w+.
                let bn = l.b.map(|b| bl.point("b_minus", Negative, b));
                let neg = part(bl, l, "neg", r, (xp, xn), (wn, wp), bn);
                let pos = bl.scale("r_pos_scaled", pos, alpha);
                let neg = bl.scale("r_neg_scaled", neg, beta);
                bl.bin("relevance", BinaryOp::Sub, pos, neg)
            }
        }
        Rule::Gamma { gamma } => {
            let g = *gamma;
            let (xp, xn) = split_input(bl, x);
            if xn.is_none()
                && let Some(r) = gamma_non_negative(bl, l, r, g)?
            {
                return Ok(r);
            }
            let wgp = gamma_boost(bl, "w_gamma_plus", w, Positive, g);
            let wgn = gamma_boost(bl, "w_gamma_minus", w, Negative, g);
            let bgp = l.b.map(|b| gamma_boost(bl, "b_gamma_plus", b, Positive, g));
            let bgn =
                l.b.map(|b| gamma_boost(bl, "b_gamma_minus", b, Negative, g));
            let (rp, rn) = split_by_sign_of_z(bl, l, r);
            let pos = part(bl, l, "pos", rp, (xp, xn), (wgp, wgn), bgp);
            let neg = part(bl, l, "neg", rn, (xp, xn), (wgn, wgp), bgn);
            bl.sum("relevance", &[pos, neg])
        }
        Rule::ZBox { low, high } => {
            let lo = l.filled(bl, "low", low)?;
            let hi = l.filled(bl, "high", high)?;
            let wp = bl.point("w_plus", Positive, w);
            let wn = bl.point("w_minus", Negative, w);
            let bp = l.b.map(|b| bl.point("b_plus", Positive, b));
            let bn = l.b.map(|b| bl.point("b_minus", Negative, b));
            let zl = l.forward(bl, "z_low", lo, wp, bp);
            let zh = l.forward(bl, "z_high", hi, wn, bn);
            let z1 = bl.bin("z_box_a", BinaryOp::Sub, l.z, zl);
            let z = bl.bin("z_box", BinaryOp::Sub, z1, zh);
            let q = bl.normalise("q", r, z, STABILIZER);
            let (cx, cl, ch) = box_adjoints(bl, l, q, (w, wp, wn));
            let tx = bl.mul("r_x", x, cx);
            let tl = bl.mul("r_low", lo, cl);
            let th = bl.mul("r_high", hi, ch);
            let d = bl.bin("r_box_a", BinaryOp::Sub, tx, tl);
            bl.bin("relevance", BinaryOp::Sub, d, th)
        }
        Rule::Flat | Rule::WSquare => {
            let ones = l.filled(bl, "ones", &Bound::Scalar(1.0))?;
            // Flat: all weights 1 and no bias; WSquare: w^2 and b^2.
            let (wm, bm) = if *rule == Rule::Flat {
                (bl.point("w_ones", One, w), None)
            } else {
                (
                    bl.point("w_square", Square, w),
                    l.b.map(|b| bl.point("b_square", Square, b)),
                )
            };
            let n = l.forward(bl, "z", ones, wm, bm);
            let q = bl.normalise("q", r, n, STABILIZER);
            l.adjoint(bl, "relevance", q, wm)
        }
        Rule::Pass
        | Rule::GuidedBackprop
        | Rule::Deconvnet
        | Rule::Gate
        | Rule::Uniform
        | Rule::Softmax
        | Rule::AttentionConst => {
            op_bail!("rule {} does not apply to a linear layer", rule.name())
        }
    })
}

/// The gamma rule on a Conv whose input is known non-negative, with one extra convolution
/// instead of two: u = x * w+ is computed, x * w- = z - b - u follows from the forward pass's
/// z, and z± = z + gamma (x * w± + b±) are element-wise. (Each z± adds terms of one sign, so no
/// cancellation enters where its mask selects it.) `None` when the bias is not a constant.
fn gamma_non_negative(
    bl: &mut Builder,
    l: &Linear,
    r: NodeIndex,
    g: f32,
) -> OpResult<Option<NodeIndex>> {
    use Pointwise::{Negative, Positive};
    if !matches!(l.op, Op::Conv(_)) {
        return Ok(None);
    }
    // The bias as [1, C, 1, ...], so it broadcasts over z by channel.
    let bias = match l.b {
        None => None,
        Some(b) => match bl.graph.constant_f32(b) {
            None => return Ok(None),
            Some(t) => {
                let mut shape = vec![1; l.x_shape.len()];
                shape[1] = t.len();
                Some(t.f32s()?.to_vec()).map(|v| (shape, v))
            }
        },
    };
    let (x, w) = (l.x, l.w);
    let wp = bl.point("w_plus", Positive, w);
    let u = l.forward(bl, "u_plus", x, wp, None);
    let konst = |bl: &mut Builder, role: &str, f: fn(f32) -> f32| -> OpResult<Option<NodeIndex>> {
        match &bias {
            None => Ok(None),
            Some((shape, v)) => {
                let t = Tensor::from_f32(shape.clone(), v.iter().map(|&b| f(b)).collect())?;
                Ok(Some(bl.konst(role, t)))
            }
        }
    };
    let b = konst(bl, "b_channel", |b| b)?;
    let bp = konst(bl, "b_plus_channel", |b| b.max(0.0))?;
    let bn = konst(bl, "b_minus_channel", |b| b.min(0.0))?;
    let zb = match b {
        Some(b) => bl.bin("z_minus_b", BinaryOp::Sub, l.z, b),
        None => l.z,
    };
    let un = bl.bin("u_minus", BinaryOp::Sub, zb, u);
    // z± = z + gamma (x w± + b±)
    let boosted = |bl: &mut Builder, tag: &str, part: NodeIndex, bias: Option<NodeIndex>| {
        let with_bias = match bias {
            Some(b) => bl.bin(&format!("u_{tag}_b"), BinaryOp::Add, part, b),
            None => part,
        };
        let scaled = bl.scale(&format!("u_{tag}_scaled"), with_bias, g);
        bl.bin(&format!("z_{tag}"), BinaryOp::Add, l.z, scaled)
    };
    let zp = boosted(bl, "pos", u, bp);
    let zn = boosted(bl, "neg", un, bn);
    let wgp = gamma_boost(bl, "w_gamma_plus", w, Positive, g);
    let wgn = gamma_boost(bl, "w_gamma_minus", w, Negative, g);
    let (rp, rn) = split_by_sign_of_z(bl, l, r);
    let qp = bl.normalise("q_pos", rp, zp, STABILIZER);
    let qn = bl.normalise("q_neg", rn, zn, STABILIZER);
    let cp = l.adjoint(bl, "c_pos_a", qp, wgp);
    let cn = l.adjoint(bl, "c_neg_a", qn, wgn);
    let tp = bl.mul("r_pos", x, cp);
    let tn = bl.mul("r_neg", x, cn);
    Ok(Some(bl.sum("relevance", &[tp, tn])))
}

/// W^T q, W+^T q and W-^T q of the z^B rule. For an ungrouped Conv they are one adjoint with
/// the three weights stacked along the input channels, sliced apart afterwards: the first layer
/// has few input channels, so three adjoints would each be a GEMM of a handful of rows over the
/// whole image (and three im2cols of q); one is three times as tall.
fn box_adjoints(
    bl: &mut Builder,
    l: &Linear,
    q: NodeIndex,
    (w, wp, wn): (NodeIndex, NodeIndex, NodeIndex),
) -> (NodeIndex, NodeIndex, NodeIndex) {
    let conv = match &l.op {
        Op::Conv(c) if c.group == 1 && l.x_shape.len() >= 3 => c.clone(),
        _ => {
            return (
                l.adjoint(bl, "c_x", q, w),
                l.adjoint(bl, "c_low", q, wp),
                l.adjoint(bl, "c_high", q, wn),
            );
        }
    };
    let cin = l.x_shape[1] as i64;
    let stacked = bl.add("w_box", Op::Concat(Concat { axis: 1 }), &[w, wp, wn]);
    let mut shape = l.x_shape.clone();
    shape[1] *= 3;
    let all = bl.add(
        "c_box",
        Op::ConvTranspose(ConvTranspose {
            conv,
            input_shape: shape,
        }),
        &[q, stacked],
    );
    let mut part = |role: &str, k: i64| {
        let slice = Slice {
            starts: vec![k * cin],
            ends: vec![(k + 1) * cin],
            axes: Some(vec![1]),
            steps: None,
        };
        bl.add(role, Op::Slice(slice), &[all])
    };
    (part("c_x", 0), part("c_low", 1), part("c_high", 2))
}

/// v + g part(v): gamma's modified weight (or bias) w + g w+ or w + g w-.
fn gamma_boost(bl: &mut Builder, role: &str, v: NodeIndex, part: Pointwise, g: f32) -> NodeIndex {
    let clamped = bl.point(&format!("{role}.part"), part, v);
    let scaled = bl.scale(&format!("{role}.scaled"), clamped, g);
    bl.bin(role, BinaryOp::Add, v, scaled)
}

/// r where z > 0 and r where z < 0: only those outputs pass relevance through gamma's positive
/// (negative) part.
fn split_by_sign_of_z(bl: &mut Builder, l: &Linear, r: NodeIndex) -> (NodeIndex, NodeIndex) {
    let mp = bl.point("mask_pos", Pointwise::IsPositive, l.z);
    let mn = bl.point("mask_neg", Pointwise::IsNegative, l.z);
    (bl.mul("r_masked_pos", r, mp), bl.mul("r_masked_neg", r, mn))
}

/// x+ and x- of a layer input; x- is `None` when sign analysis proves x >= 0 (then x+ = x).
fn split_input(bl: &mut Builder, x: NodeIndex) -> (NodeIndex, Option<NodeIndex>) {
    if sign::is_non_negative(bl.graph, x) {
        (x, None)
    } else {
        let xp = bl.point("x_plus", Pointwise::Positive, x);
        let xn = bl.point("x_minus", Pointwise::Negative, x);
        (xp, Some(xn))
    }
}

/// The two-term contribution every sign-splitting rule is made of:
/// x+ L^T(q; wa) + x- L^T(q; wb), with q = r / s(L(x+; wa, bias) + L(x-; wb)). Without x- (a
/// non-negative input) the second term is identically zero and is not built.
fn part(
    bl: &mut Builder,
    l: &Linear,
    tag: &str,
    r: NodeIndex,
    (xp, xn): (NodeIndex, Option<NodeIndex>),
    (wa, wb): (NodeIndex, NodeIndex),
    bias: Option<NodeIndex>,
) -> NodeIndex {
    let za = l.forward(bl, &format!("z_{tag}_a"), xp, wa, bias);
    let z = match xn {
        Some(xn) => {
            let zb = l.forward(bl, &format!("z_{tag}_b"), xn, wb, None);
            bl.sum(&format!("z_{tag}"), &[za, zb])
        }
        None => za,
    };
    let q = bl.normalise(&format!("q_{tag}"), r, z, STABILIZER);
    let ca = l.adjoint(bl, &format!("c_{tag}_a"), q, wa);
    let ta = bl.mul(&format!("r_{tag}_a"), xp, ca);
    match xn {
        Some(xn) => {
            let cb = l.adjoint(bl, &format!("c_{tag}_b"), q, wb);
            let tb = bl.mul(&format!("r_{tag}_b"), xn, cb);
            bl.sum(&format!("r_{tag}"), &[ta, tb])
        }
        None => ta,
    }
}

fn epsilon_rule(bl: &mut Builder, l: &Linear, r: NodeIndex, epsilon: f32) -> NodeIndex {
    let q = bl.normalise("q", r, l.z, epsilon);
    let c = l.adjoint(bl, "c", q, l.w);
    bl.mul("relevance", l.x, c)
}

/// Arras et al.'s bias factor on one layer with the epsilon rule: what the bias and the
/// stabiliser absorbed at each output, `(b + eps * sgn0(z)) * R / s(z) = R - (z - b) R / s(z)`,
/// times `bias_factor`, shared equally by the N inputs of that output's fan-in (the adjoint with
/// every weight 1, divided by N; a Conv's zero-padding positions take their shares with them).
pub fn bias_share(
    bl: &mut Builder,
    l: &Linear,
    r: NodeIndex,
    epsilon: f32,
    bias_factor: f32,
) -> OpResult<NodeIndex> {
    let w_shape = bl.graph.fact(l.w).shape.clone();
    let fan_in = match &l.op {
        Op::Conv(_) => numel(&w_shape) / w_shape.first().copied().unwrap_or(1).max(1),
        Op::Gemm(g) if w_shape.len() == 2 => w_shape[usize::from(g.trans_b)],
        Op::MatMul if w_shape.len() == 2 => w_shape[0],
        op => op_bail!(
            "--bias-factor is defined for Conv, Gemm and 2-D MatMul layers, not {}",
            op.name()
        ),
    };
    let q = bl.normalise("bias.q", r, l.z, epsilon);
    let zb = match l.b {
        Some(b) => {
            // A Conv's bias is per channel (axis 1): shaped [C, 1, ...] to broadcast.
            let rank = bl.graph.fact(l.z).shape.len();
            let b = match (&l.op, bl.graph.constant(b).cloned()) {
                (Op::Conv(_), Some(t)) if rank > 2 => {
                    let mut shape = vec![t.shape().iter().product::<usize>()];
                    shape.resize(rank - 1, 1);
                    let t = t.as_ref().clone().reshape(shape)?;
                    bl.konst("bias.per_channel", t)
                }
                _ => b,
            };
            bl.bin("bias.z_without_bias", BinaryOp::Sub, l.z, b)
        }
        None => l.z,
    };
    let kept = bl.mul("bias.kept", zb, q);
    let absorbed = bl.bin("bias.absorbed", BinaryOp::Sub, r, kept);
    let share = bl.scale("bias.share", absorbed, bias_factor / fan_in.max(1) as f32);
    let ones = bl.point("bias.w_ones", Pointwise::One, l.w);
    Ok(l.adjoint(bl, "bias.spread", share, ones))
}
