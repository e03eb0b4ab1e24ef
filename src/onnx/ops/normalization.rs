//! LayerNormalization, InstanceNormalization and GroupNormalization, written out as the ops
//! they are made of: mean and variance as Reduce (lowered to pools), centring, division by the
//! standard deviation, the per-channel scale and bias. Relevance then follows from the parts:
//! the centring is a merge (the norm rule), the division by the computed deviation holds the
//! deviation constant (all relevance to the centred value: the identity rule of AttnLRP/LXT for
//! normalisation), the scale and bias are constant element-wise ops.

use std::sync::Arc;

use super::{Imported, NodeCtx, Source};
use crate::ir::ops::{Activation, BinaryOp, Reduce, ReduceKind, Reshape, ShapeOf};
use crate::ir::{Op, Tensor};

/// Builds the decomposition node by node.
struct Parts<'a> {
    ctx: &'a NodeCtx<'a>,
    out: Imported,
}

impl Parts<'_> {
    fn add(&mut self, role: &str, op: Op, inputs: Vec<Source>) -> Source {
        self.out.add(role, op, inputs)
    }

    fn konst(&self, role: &str, t: Tensor) -> Source {
        Source::Const(format!("{}.{role}", self.ctx.node.name), Arc::new(t))
    }

    fn binary(&mut self, role: &str, op: BinaryOp, a: Source, b: Source) -> Source {
        self.add(role, Op::Binary(op), vec![a, b])
    }

    fn reshape(&mut self, role: &str, x: Source, shape: Source) -> Source {
        self.add(
            role,
            Op::Reshape(Reshape { allowzero: false }),
            vec![x, shape],
        )
    }

    fn dims(&self, role: &str, d: &[i64]) -> Result<Source, String> {
        let t = Tensor::from_i64(vec![d.len()], d.to_vec()).map_err(|e| e.0)?;
        Ok(self.konst(role, t))
    }

    /// (x - mean) / sqrt(var + eps) over `axes` (the last node is named `last_role`); also the
    /// mean and the deviation.
    fn normalise(
        &mut self,
        x: Source,
        axes: Vec<i64>,
        epsilon: f32,
        last_role: &str,
    ) -> Result<(Source, Source, Source), String> {
        let mean = |axes: &Vec<i64>| {
            Op::Reduce(Reduce {
                kind: ReduceKind::Mean,
                axes: Some(axes.clone()),
                keepdims: true,
            })
        };
        let m = self.add("mean", mean(&axes), vec![x.clone()]);
        let c = self.binary("centred", BinaryOp::Sub, x, m.clone());
        let two = self.konst("two", Tensor::from_f32(vec![], vec![2.0]).map_err(|e| e.0)?);
        let sq = self.binary("squared", BinaryOp::Pow, c.clone(), two);
        let var = self.add("variance", mean(&axes), vec![sq]);
        let eps = self.konst(
            "epsilon",
            Tensor::from_f32(vec![], vec![epsilon]).map_err(|e| e.0)?,
        );
        let ve = self.binary("variance_eps", BinaryOp::Add, var, eps);
        let sd = self.add("deviation", Op::Activation(Activation::Sqrt), vec![ve]);
        let y = self.binary(last_role, BinaryOp::Div, c, sd.clone());
        Ok((y, m, sd))
    }

    /// y * Scale + B with Scale and B (inputs 1 and 2) reshaped to `dims` (the last node is
    /// named `last_role`).
    fn affine(&mut self, y: Source, dims: &[i64], last_role: &str) -> Result<Source, String> {
        let shape = self.dims("affine_shape", dims)?;
        let scale = self.reshape("scale", Source::Input(1), shape.clone());
        let bias = self.reshape("bias", Source::Input(2), shape);
        let y = self.binary("scaled", BinaryOp::Mul, y, scale);
        Ok(self.binary(last_role, BinaryOp::Add, y, bias))
    }

    fn finish(mut self, y: Source) -> Imported {
        self.out.output(0, &y);
        self.out
    }
}

/// [-1, 1, ..., 1] of rank `r - 1`: a per-channel vector broadcast over N x C x D1... .
fn per_channel(r: usize) -> Vec<i64> {
    let mut dims = vec![-1i64];
    dims.extend(std::iter::repeat_n(1, r - 2));
    dims
}

fn rank(ctx: &NodeCtx) -> Result<usize, String> {
    ctx.input_shape()
        .map(Vec::len)
        .ok_or_else(|| "the input's rank is not known at import".to_string())
}

fn epsilon(ctx: &NodeCtx) -> Result<f32, String> {
    ctx.attrs.float_or("epsilon", 1e-5)
}

/// Y = (X - mean) / sqrt(var + eps) * Scale + B over the axes from `axis` on.
pub fn layer_norm(ctx: &NodeCtx) -> Result<Imported, String> {
    let r = rank(ctx)? as i64;
    let axis = ctx.attrs.int("axis")?.unwrap_or(-1);
    let axis = if axis < 0 { axis + r } else { axis };
    if !(0..r).contains(&axis) {
        return Err(format!("axis {axis} is outside a rank-{r} input"));
    }
    let mut p = Parts {
        ctx,
        out: Imported::new(),
    };
    let has_bias = ctx.has_input(2);
    let (y, mean, sd) = p.normalise(
        Source::Input(0),
        (axis..r).collect(),
        epsilon(ctx)?,
        "normalised",
    )?;
    let role = if has_bias { "scaled" } else { "" };
    let mut y = p.binary(role, BinaryOp::Mul, y, Source::Input(1));
    if has_bias {
        y = p.binary("", BinaryOp::Add, y, Source::Input(2));
    }
    // The optional outputs: the mean and the inverse deviation.
    let inv = p.add(
        "inv_std_dev",
        Op::Activation(Activation::Reciprocal),
        vec![sd],
    );
    let mut out = p.finish(y);
    out.output(1, &mean);
    out.output(2, &inv);
    Ok(out)
}

/// Per (sample, channel) over the spatial axes; Scale and B per channel.
pub fn instance_norm(ctx: &NodeCtx) -> Result<Imported, String> {
    let r = rank(ctx)?;
    if r < 3 {
        return Err(format!(
            "the input has rank {r}; InstanceNormalization needs N x C x D1..."
        ));
    }
    let mut p = Parts {
        ctx,
        out: Imported::new(),
    };
    let (y, _, _) = p.normalise(
        Source::Input(0),
        (2..r as i64).collect(),
        epsilon(ctx)?,
        "normalised",
    )?;
    let y = p.affine(y, &per_channel(r), "")?;
    Ok(p.finish(y))
}

/// Channels in `num_groups` groups, each normalised over its channels and the spatial axes;
/// Scale and B per channel (opset 21) or per group (opset 18, as that version specified).
pub fn group_norm(ctx: &NodeCtx) -> Result<Imported, String> {
    let r = rank(ctx)?;
    if r < 3 {
        return Err(format!(
            "the input has rank {r}; GroupNormalization needs N x C x D1..."
        ));
    }
    let groups = ctx
        .attrs
        .int("num_groups")?
        .ok_or("attribute 'num_groups' is required")?;
    if groups < 1 {
        return Err(format!("num_groups {groups} must be positive"));
    }
    let mut p = Parts {
        ctx,
        out: Imported::new(),
    };
    let grouped_shape = p.dims("grouped_shape", &[0, groups, -1])?;
    let grouped = p.reshape("grouped", Source::Input(0), grouped_shape);
    let (mut y, _, _) = p.normalise(grouped, vec![2], epsilon(ctx)?, "normalised")?;
    let per_group = ctx.opset < 21;
    if per_group {
        y = p.affine(y, &[-1, 1], "shifted")?;
    }
    let x_shape = p.add(
        "input_shape",
        Op::Shape(ShapeOf {
            start: 0,
            end: None,
        }),
        vec![Source::Input(0)],
    );
    let role = if per_group { "" } else { "ungrouped" };
    y = p.reshape(role, y, x_shape);
    if !per_group {
        y = p.affine(y, &per_channel(r), "")?;
    }
    Ok(p.finish(y))
}
