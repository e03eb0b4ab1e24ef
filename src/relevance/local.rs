//! The rules of every node that is not a linear layer: norm for merges and average pools, pass
//! for activations and normalisations, and the gradient (routing for data movement and max
//! pools, f'(x) for activations, scaling for element-wise ops with constants).

use std::sync::Arc;

use petgraph::stable_graph::NodeIndex;

use super::builder::Builder;
use super::composite::LayerKind;
use super::rule::{Rule, STABILIZER};
use crate::error::OpResult;
use crate::ir::ops::util::norm_axis;
use crate::ir::ops::{
    ActivationGrad, BinaryOp, GlobalPoolBackward, LrnBackward, Pointwise, PoolBackward, Reduce,
    ReduceKind, Reshape, Slice, SliceBackward, Transpose,
};
use crate::ir::{Op, Tensor};
use crate::{op_bail, op_ensure};

/// Relevance for each computed input of `n` as (input, relevance) pairs; `kind` is `n`'s
/// classification ([`layer_kind`](super::composite::layer_kind)), which names the operand
/// slots the gate, pass and attention-const rules treat apart.
pub fn propagate(
    bl: &mut Builder,
    n: NodeIndex,
    rule: &Rule,
    kind: LayerKind,
    r: NodeIndex,
) -> OpResult<Vec<(NodeIndex, NodeIndex)>> {
    let ins = bl.graph.inputs_of(n);
    let op = bl.graph.node(n).op.clone();
    let out_shape = bl.graph.fact(n).shape.clone();
    let computed: Vec<(usize, NodeIndex)> = ins
        .iter()
        .copied()
        .enumerate()
        .filter(|&(_, i)| bl.on_path(i))
        .collect();
    let x = ins[0];
    Ok(match (rule, &op) {
        (Rule::Pass, _) => match kind {
            // x times the reciprocal of its deviation (RMSNorm): the deviation held, all of R
            // to x, as for LayerNorm's division.
            LayerKind::Normalised { scale } => {
                let x = ins[1 - scale];
                vec![(x, unbroadcast(bl, "relevance", r, &out_shape, x)?)]
            }
            _ => vec![(computed[0].1, r)],
        },
        (Rule::Norm, Op::Binary(BinaryOp::Add | BinaryOp::Sub) | Op::Sum) => {
            // z = sum of the operands' contributions (a - b contributes -b): R_i = c_i R / s(z).
            let q = bl.normalise("q", r, n, STABILIZER);
            let mut out = vec![];
            for (k, &(slot, i)) in computed.iter().enumerate() {
                let mut c = bl.mul(&format!("contribution{k}"), i, q);
                if op == Op::Binary(BinaryOp::Sub) && slot == 1 {
                    c = bl.scale(&format!("negated{k}"), c, -1.0);
                }
                out.push((
                    i,
                    unbroadcast(bl, &format!("relevance{k}"), c, &out_shape, i)?,
                ));
            }
            out
        }
        (
            Rule::Norm,
            Op::Binary(BinaryOp::Max | BinaryOp::Min | BinaryOp::Pow | BinaryOp::PRelu),
        ) => {
            // A pointwise nonlinearity with a constant: the identity, as for activations.
            vec![(computed[0].1, r)]
        }
        (Rule::Norm, Op::BatchNorm(_) | Op::Binary(BinaryOp::Mul | BinaryOp::Div)) => {
            // An affine map of one computed operand (a per-channel scale and shift, a constant
            // factor or divisor): R_x = x (dy/dx) R / s(y), the constant absorbing its share.
            let q = bl.normalise("q", r, n, STABILIZER);
            let mut out = vec![];
            for (i, g) in gradient(bl, &op, &ins, &computed, q, &out_shape)? {
                out.push((i, bl.mul("relevance", i, g)));
            }
            out
        }
        (Rule::Norm, Op::Resize(_)) => {
            // Linear interpolation is a pool with fixed weights: the same norm rule.
            let q = bl.normalise("q", r, n, STABILIZER);
            let g = resize_adjoint(bl, &op, &ins, q)?;
            vec![(x, bl.mul("relevance", x, g))]
        }
        (Rule::Norm, Op::Pool(_) | Op::GlobalPool(_)) => {
            let q = bl.normalise("q", r, n, STABILIZER);
            let g = pool_adjoint(bl, &op, x, q);
            vec![(x, bl.mul("relevance", x, g))]
        }
        (Rule::Gradient, Op::Softmax(sm)) => {
            // dx = s (g - sum(g s)) over the softmax axis, s the node's own output.
            let gs = bl.mul("gs", r, n);
            let total = softmax_total(bl, sm, &out_shape, gs);
            let rest = bl.bin("rest", BinaryOp::Sub, r, total);
            vec![(x, bl.mul("relevance", n, rest))]
        }
        (Rule::Gradient, _) => gradient(bl, &op, &ins, &computed, r, &out_shape)?,
        (Rule::GuidedBackprop, Op::Activation(a)) => {
            let g = bl.add(
                "grad",
                Op::ActivationGrad(ActivationGrad { activation: *a }),
                &[x, r],
            );
            let m = bl.point("mask", Pointwise::IsPositive, r);
            vec![(x, bl.mul("relevance", g, m))]
        }
        (Rule::Gate, Op::Binary(BinaryOp::Mul)) => {
            let LayerKind::Product { gate: Some(gate) } = kind else {
                op_bail!("the gate rule needs exactly one gate operand")
            };
            let signal = ins[1 - gate];
            vec![(signal, unbroadcast(bl, "relevance", r, &out_shape, signal)?)]
        }
        (Rule::Uniform, Op::Binary(BinaryOp::Mul)) => {
            let mut out = vec![];
            for (k, &(_, i)) in computed.iter().enumerate() {
                let half = bl.scale(&format!("half{k}"), r, 0.5);
                out.push((
                    i,
                    unbroadcast(bl, &format!("relevance{k}"), half, &out_shape, i)?,
                ));
            }
            out
        }
        (Rule::Uniform, Op::MatMul) => {
            // AttnLRP (Proposition 3.3): the epsilon rule on z = sum_k a_ik b_kj, its
            // relevance split evenly between the two factors of every product.
            let (a, b) = (ins[0], ins[1]);
            let twice = bl.scale("twice", n, 2.0);
            let q = bl.normalise("q", r, twice, STABILIZER);
            let (ga, gb) = matmul_adjoints(bl, a, b, q)?;
            let ra = bl.mul("relevance0", a, ga);
            let rb = bl.mul("relevance1", b, gb);
            let (sa, sb) = (adjoint_shape(bl, a, b, 0)?, adjoint_shape(bl, a, b, 1)?);
            vec![
                (a, unbroadcast(bl, "relevance0u", ra, &sa, a)?),
                (b, unbroadcast(bl, "relevance1u", rb, &sb, b)?),
            ]
        }
        (Rule::AttentionConst, Op::MatMul) => {
            // CP-LRP: z = A v with A constant, so the epsilon rule gives v all of z's
            // relevance: R_v = v (A^T (R / s(z))).
            let LayerKind::MatProduct { weights: Some(w) } = kind else {
                op_bail!(
                    "the attention-const rule needs exactly one operand that is attention weights (a Softmax output)"
                )
            };
            let (a, b) = (ins[0], ins[1]);
            let q = bl.normalise("q", r, n, STABILIZER);
            let (ga, gb) = matmul_adjoints(bl, a, b, q)?;
            let (v, g) = if w == 0 { (b, gb) } else { (a, ga) };
            let rv = bl.mul("relevance", v, g);
            let shape = adjoint_shape(bl, a, b, 1 - w)?;
            vec![(v, unbroadcast(bl, "relevance_u", rv, &shape, v)?)]
        }
        (Rule::Softmax, Op::Softmax(sm)) => {
            // R_x = x (R - s sum(R)) over the softmax axis.
            let total = softmax_total(bl, sm, &out_shape, r);
            let share = bl.mul("share", n, total);
            let rest = bl.bin("rest", BinaryOp::Sub, r, share);
            vec![(x, bl.mul("relevance", x, rest))]
        }
        (Rule::Deconvnet, Op::Activation(_)) => {
            vec![(x, bl.point("relevance", Pointwise::Positive, r))]
        }
        (rule, op) => op_bail!("rule {} does not apply to {}", rule.name(), op.name()),
    })
}

/// The sum of `t` over the axes a Softmax of output `shape` normalises (opset < 13: every
/// axis from `axis` on), kept for broadcasting.
fn softmax_total(
    bl: &mut Builder,
    sm: &crate::ir::ops::Softmax,
    shape: &[usize],
    t: NodeIndex,
) -> NodeIndex {
    let rank = shape.len() as i64;
    let axis = if sm.axis < 0 { sm.axis + rank } else { sm.axis };
    let axes = if sm.coerce_2d {
        (axis..rank).collect()
    } else {
        vec![axis]
    };
    bl.add(
        "total",
        Op::Reduce(Reduce {
            kind: ReduceKind::Sum,
            axes: Some(axes),
            keepdims: true,
        }),
        &[t],
    )
}

/// `t` with its last two axes swapped.
fn swap_last(bl: &mut Builder, role: &str, t: NodeIndex) -> OpResult<NodeIndex> {
    let rank = bl.graph.fact(t).shape.len();
    op_ensure!(
        rank >= 2,
        "MatMul of two computed tensors needs operands of rank 2 or more, got rank {rank}"
    );
    let mut perm: Vec<usize> = (0..rank).collect();
    perm.swap(rank - 2, rank - 1);
    Ok(bl.add(role, Op::Transpose(Transpose { perm: Some(perm) }), &[t]))
}

/// For z = a b (batched): the adjoints g b^T and a^T g of an incoming `g`, at the broadcast
/// batch shape (reduce them with [`unbroadcast`] to each operand's).
fn matmul_adjoints(
    bl: &mut Builder,
    a: NodeIndex,
    b: NodeIndex,
    g: NodeIndex,
) -> OpResult<(NodeIndex, NodeIndex)> {
    let bt = swap_last(bl, "b_t", b)?;
    let at = swap_last(bl, "a_t", a)?;
    let ga = bl.add("adjoint0", Op::MatMul, &[g, bt]);
    let gb = bl.add("adjoint1", Op::MatMul, &[at, g]);
    Ok((ga, gb))
}

/// The shape of operand `slot`'s adjoint for a MatMul of `a` and `b`: the broadcast batch
/// axes, then the operand's own last two.
fn adjoint_shape(bl: &Builder, a: NodeIndex, b: NodeIndex, slot: usize) -> OpResult<Vec<usize>> {
    let (sa, sb) = (
        bl.graph.fact(a).shape.clone(),
        bl.graph.fact(b).shape.clone(),
    );
    op_ensure!(
        sa.len() >= 2 && sb.len() >= 2,
        "MatMul of two computed tensors needs operands of rank 2 or more, got {sa:?} and {sb:?}"
    );
    let mut batch = crate::ir::ops::util::broadcast(&sa[..sa.len() - 2], &sb[..sb.len() - 2])?;
    let own = if slot == 0 { &sa } else { &sb };
    batch.extend_from_slice(&own[own.len() - 2..]);
    Ok(batch)
}

fn pool_adjoint(bl: &mut Builder, op: &Op, x: NodeIndex, q: NodeIndex) -> NodeIndex {
    match op {
        Op::Pool(p) => bl.add(
            "adjoint",
            Op::PoolBackward(PoolBackward { pool: p.clone() }),
            &[x, q],
        ),
        Op::GlobalPool(p) => bl.add(
            "adjoint",
            Op::GlobalPoolBackward(GlobalPoolBackward { pool: *p }),
            &[x, q],
        ),
        _ => unreachable!("called for pools only"),
    }
}

/// The ordinary derivative of `op`, applied to the incoming gradient `r`.
fn gradient(
    bl: &mut Builder,
    op: &Op,
    ins: &[NodeIndex],
    computed: &[(usize, NodeIndex)],
    r: NodeIndex,
    out_shape: &[usize],
) -> OpResult<Vec<(NodeIndex, NodeIndex)>> {
    let x = ins[0];
    let x_shape = bl.graph.fact(x).shape.clone();
    Ok(match op {
        Op::Activation(a) => {
            let g = bl.add(
                "relevance",
                Op::ActivationGrad(ActivationGrad { activation: *a }),
                &[x, r],
            );
            vec![(x, g)]
        }
        Op::Pool(_) | Op::GlobalPool(_) => {
            let g = pool_adjoint(bl, op, x, r);
            vec![(x, g)]
        }
        Op::MatMul if computed.len() == 2 => {
            let (a, b) = (ins[0], ins[1]);
            let (ga, gb) = matmul_adjoints(bl, a, b, r)?;
            let (sa, sb) = (adjoint_shape(bl, a, b, 0)?, adjoint_shape(bl, a, b, 1)?);
            vec![
                (a, unbroadcast(bl, "gradient0", ga, &sa, a)?),
                (b, unbroadcast(bl, "gradient1", gb, &sb, b)?),
            ]
        }
        Op::Binary(_) | Op::Sum => {
            let mut out = vec![];
            for &(slot, i) in computed {
                let other = ins.get(1 - slot.min(1)).copied();
                let g = match op {
                    Op::Binary(BinaryOp::Add) | Op::Sum => r,
                    Op::Binary(BinaryOp::Sub) if slot == 0 => r,
                    Op::Binary(BinaryOp::Sub) => bl.scale("relevance", r, -1.0),
                    // The product rule: d(ab)/da = b, whether b is computed or constant.
                    Op::Binary(BinaryOp::Mul) => match other {
                        Some(c) => bl.mul(&format!("relevance{slot}"), r, c),
                        None => op_bail!("Mul lacks an operand"),
                    },
                    Op::Binary(BinaryOp::Div) if slot == 0 => bl.div("relevance", r, ins[1]),
                    // d(a/b)/db = -a / b^2 = -(a/b) / b.
                    Op::Binary(BinaryOp::Div) => {
                        let q = bl.div("quotient", r, ins[1]);
                        let y = bl.div("ratio", q, ins[1]);
                        let t = bl.mul("scaled", y, ins[0]);
                        bl.scale("relevance", t, -1.0)
                    }
                    Op::Binary(
                        b @ (BinaryOp::Max | BinaryOp::Min | BinaryOp::PRelu | BinaryOp::Pow),
                    ) if computed.len() == 1
                        && (slot == 0 || matches!(b, BinaryOp::Max | BinaryOp::Min)) =>
                    {
                        elementwise_gradient(bl, *b, slot, ins[0], ins[1], r)?
                    }
                    Op::Binary(b) => op_bail!(
                        "{} with {} has no gradient rule",
                        b.name(),
                        if computed.len() > 1 {
                            "two computed operands"
                        } else {
                            "a computed second operand"
                        }
                    ),
                    _ => op_bail!("{} has no gradient rule", op.name()),
                };
                out.push((
                    i,
                    unbroadcast(bl, &format!("gradient{slot}"), g, out_shape, i)?,
                ));
            }
            out
        }
        Op::BatchNorm(b) => {
            let params: Option<Vec<Arc<Tensor>>> = ins[1..]
                .iter()
                .map(|&i| bl.graph.constant(i).cloned())
                .collect();
            let Some(p) = params else {
                op_bail!("BatchNormalization with computed parameters has no gradient rule")
            };
            let (scale, var) = (p[0].f32s()?, p[3].f32s()?);
            let c = scale.len();
            let factor: Vec<f32> = scale
                .iter()
                .zip(var)
                .map(|(s, v)| s / (v + b.epsilon).sqrt())
                .collect();
            let mut shape = vec![c];
            shape.extend(std::iter::repeat_n(1, x_shape.len().saturating_sub(2)));
            let f = bl.konst("factor", Tensor::from_f32(shape, factor)?);
            let g = bl.mul("relevance", r, f);
            vec![(x, g)]
        }
        Op::Flatten(_) | Op::Reshape(_) | Op::Squeeze(_) | Op::Unsqueeze(_) => {
            let dims: Vec<i64> = x_shape.iter().map(|&d| d as i64).collect();
            let shape = bl.konst("shape", Tensor::from_i64(vec![dims.len()], dims)?);
            let g = bl.add(
                "relevance",
                Op::Reshape(Reshape { allowzero: false }),
                &[r, shape],
            );
            vec![(x, g)]
        }
        Op::Transpose(t) => {
            let perm = t.perm(x_shape.len())?;
            let mut inverse = vec![0; perm.len()];
            for (i, &p) in perm.iter().enumerate() {
                inverse[p] = i;
            }
            let g = bl.add(
                "relevance",
                Op::Transpose(Transpose {
                    perm: Some(inverse),
                }),
                &[r],
            );
            vec![(x, g)]
        }
        Op::Concat(c) => {
            let axis = norm_axis(c.axis, out_shape.len())?;
            let mut offset = 0i64;
            let mut out = vec![];
            for (slot, &i) in ins.iter().enumerate() {
                let len = bl.graph.fact(i).shape[axis] as i64;
                if bl.on_path(i) {
                    let slice = Slice {
                        starts: vec![offset],
                        ends: vec![offset + len],
                        axes: Some(vec![axis as i64]),
                        steps: None,
                    };
                    out.push((
                        i,
                        bl.add(&format!("relevance{slot}"), Op::Slice(slice), &[r]),
                    ));
                }
                offset += len;
            }
            out
        }
        Op::Gather(_) => {
            let Some(indices) = ins.get(1).and_then(|&i| bl.graph.constant(i)).cloned() else {
                op_bail!("Gather with computed indices has no gradient rule");
            };
            vec![(x, movement_adjoint(bl, op, vec![indices], &x_shape, r))]
        }
        Op::DepthSpace(_) => vec![(x, movement_adjoint(bl, op, vec![], &x_shape, r))],
        Op::Pad(p) if p.mode != crate::ir::ops::PadMode::Constant => {
            vec![(x, movement_adjoint(bl, op, vec![], &x_shape, r))]
        }
        Op::Pad(p) => {
            let n = x_shape.len();
            let slice = Slice {
                starts: p.pads[..n].iter().map(|&b| b as i64).collect(),
                ends: (0..n).map(|a| (p.pads[a] + x_shape[a]) as i64).collect(),
                axes: None,
                steps: None,
            };
            let g = bl.add("relevance", Op::Slice(slice), &[r]);
            vec![(x, g)]
        }
        Op::Slice(_) | Op::SplitPart(_) => {
            let slice = match op {
                Op::SplitPart(p) => p.to_slice(&x_shape)?,
                Op::Slice(s) => s.clone(),
                _ => unreachable!("matched above"),
            };
            let back = SliceBackward {
                slice,
                input_shape: x_shape.clone(),
            };
            let g = bl.add("relevance", Op::SliceBackward(back), &[r]);
            vec![(x, g)]
        }
        Op::Lrn(l) => {
            let g = bl.add(
                "relevance",
                Op::LrnBackward(LrnBackward { lrn: l.clone() }),
                &[x, r],
            );
            vec![(x, g)]
        }
        Op::Identity | Op::Hold => vec![(x, r)],
        Op::Resize(_) => vec![(x, resize_adjoint(bl, op, ins, r)?)],
        // Every input element is read wherever it was broadcast to: the sum over those places.
        Op::Expand => vec![(x, unbroadcast(bl, "relevance", r, out_shape, x)?)],
        Op::Tile => {
            // View the output as [r0, d0, r1, d1, ...] and sum over the repeats.
            let mut view = vec![];
            for (&o, &d) in out_shape.iter().zip(&x_shape) {
                view.extend([(o / d.max(1)) as i64, d as i64]);
            }
            let v = bl.konst("tiles", Tensor::from_i64(vec![view.len()], view)?);
            let t = bl.add("tiled", Op::Reshape(Reshape { allowzero: false }), &[r, v]);
            let axes = (0..x_shape.len()).map(|a| 2 * a as i64).collect();
            let reduce = Reduce {
                kind: ReduceKind::Sum,
                axes: Some(axes),
                keepdims: false,
            };
            vec![(x, bl.add("relevance", Op::Reduce(reduce), &[t]))]
        }
        Op::Where => {
            // The condition only selects; relevance flows to the operand it selected.
            let zero = bl.konst("zero", Tensor::from_f32(vec![], vec![0.0])?);
            let mut out = vec![];
            for &(slot, i) in computed.iter().filter(|(slot, _)| *slot > 0) {
                let (t, f) = if slot == 1 { (r, zero) } else { (zero, r) };
                let g = bl.add(&format!("selected{slot}"), Op::Where, &[ins[0], t, f]);
                out.push((
                    i,
                    unbroadcast(bl, &format!("relevance{slot}"), g, out_shape, i)?,
                ));
            }
            out
        }
        other => op_bail!("{} has no gradient rule", other.name()),
    })
}

/// r times the derivative of `op(a, b)` in operand `slot` (the other operand constant): a
/// mask for Max/Min (where that operand is the one chosen), the slope for PRelu's negative
/// part, b a^(b-1) for Pow.
fn elementwise_gradient(
    bl: &mut Builder,
    op: BinaryOp,
    slot: usize,
    a: NodeIndex,
    b: NodeIndex,
    r: NodeIndex,
) -> OpResult<NodeIndex> {
    let zero = bl.konst("zero", Tensor::from_f32(vec![], vec![0.0])?);
    Ok(match (op, slot) {
        (BinaryOp::Max, 0) | (BinaryOp::Min, 1) => {
            let m = bl.bin("chosen", BinaryOp::GreaterOrEqual, a, b);
            bl.add("relevance", Op::Where, &[m, r, zero])
        }
        (BinaryOp::Max, _) | (BinaryOp::Min, _) => {
            let m = bl.bin("chosen", BinaryOp::GreaterOrEqual, a, b);
            bl.add("relevance", Op::Where, &[m, zero, r])
        }
        (BinaryOp::PRelu, _) => {
            let m = bl.bin("positive", BinaryOp::GreaterOrEqual, a, zero);
            let neg = bl.mul("negative", r, b);
            bl.add("relevance", Op::Where, &[m, r, neg])
        }
        (BinaryOp::Pow, _) => {
            let b = match bl.graph.constant(b) {
                Some(t) if t.dtype() != crate::ir::DType::F32 => {
                    let t = t.cast(crate::ir::DType::F32);
                    bl.konst("exponent_f32", t)
                }
                _ => b,
            };
            let one = bl.konst("one", Tensor::from_f32(vec![], vec![1.0])?);
            let e = bl.bin("exponent", BinaryOp::Sub, b, one);
            let p = bl.bin("power", BinaryOp::Pow, a, e);
            let d = bl.mul("derivative", p, b);
            bl.mul("relevance", r, d)
        }
        _ => op_bail!("{} has no gradient rule", op.name()),
    })
}

/// `t` (of the node's output shape `from`; new nodes have no facts yet) summed over the axes along which `operand` was broadcast,
/// and shaped like `operand`: what a broadcast operand's relevance or gradient is.
fn unbroadcast(
    bl: &mut Builder,
    role: &str,
    t: NodeIndex,
    from: &[usize],
    operand: NodeIndex,
) -> OpResult<NodeIndex> {
    let to = bl.graph.fact(operand).shape.clone();
    if from == to.as_slice() {
        return Ok(t);
    }
    op_ensure!(
        to.len() <= from.len(),
        "operand {to:?} has more axes than the output {from:?}"
    );
    let offset = from.len() - to.len();
    let axes: Vec<i64> = (0..from.len())
        .filter(|&a| a < offset || (to[a - offset] == 1 && from[a] != 1))
        .map(|a| a as i64)
        .collect();
    let summed = bl.add(
        &format!("{role}_sum"),
        Op::Reduce(Reduce {
            kind: ReduceKind::Sum,
            axes: Some(axes),
            keepdims: true,
        }),
        &[t],
    );
    let dims: Vec<i64> = to.iter().map(|&d| d as i64).collect();
    let shape = bl.konst(
        &format!("{role}_shape"),
        Tensor::from_i64(vec![dims.len()], dims)?,
    );
    Ok(bl.add(
        role,
        Op::Reshape(Reshape { allowzero: false }),
        &[summed, shape],
    ))
}

/// A^T g for the Resize `op` (its scales or sizes read from the constant second input).
fn resize_adjoint(
    bl: &mut Builder,
    op: &Op,
    ins: &[NodeIndex],
    g: NodeIndex,
) -> OpResult<NodeIndex> {
    let Op::Resize(r) = op else {
        op_bail!("internal: not a Resize");
    };
    let second = ins.get(1).and_then(|&i| bl.graph.constant(i)).cloned();
    let resize = r.resolve(second.as_deref())?;
    let input_shape = bl.graph.fact(ins[0]).shape.clone();
    // One axis at a time, last axis first: the adjoint of the separable chain.
    let mut g = g;
    let chain = resize.per_axis(&input_shape)?;
    for (k, (step, shape)) in chain.into_iter().enumerate().rev() {
        g = bl.add(
            &format!("adjoint{k}"),
            Op::ResizeBackward(crate::ir::ops::ResizeBackward {
                resize: step,
                input_shape: shape,
            }),
            &[g],
        );
    }
    Ok(g)
}

/// The adjoint of the movement op `op` (with its constant `args`) applied to `r`: each input
/// element sums the output elements that read it.
fn movement_adjoint(
    bl: &mut Builder,
    op: &Op,
    args: Vec<Arc<Tensor>>,
    x_shape: &[usize],
    r: NodeIndex,
) -> NodeIndex {
    let adjoint = crate::ir::ops::backward::MovementAdjoint {
        forward: Box::new(op.clone()),
        args,
        input_shape: x_shape.to_vec(),
    };
    bl.add("relevance", Op::MovementAdjoint(adjoint), &[r])
}
