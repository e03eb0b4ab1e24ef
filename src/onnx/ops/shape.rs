//! Data-movement and shape-arithmetic ops. Where an opset moved a parameter from an attribute to
//! an input, both forms end up in the same IR op here:
//! Reshape `shape` (attribute before 5), Pad `pads`/`value` (attributes before 11; `paddings` in
//! opset 1), Squeeze/Unsqueeze `axes` (attributes before 13), Slice `starts`/`ends`/`axes`/`steps`
//! (attributes before 10).

use std::sync::Arc;

use super::{Imported, NodeCtx, Source};
use crate::ir::ops::{
    Cast, Concat, Flatten, Gather, Pad, Reshape, ShapeOf, Slice, Squeeze, Transpose, Unsqueeze,
};
use crate::ir::ops::{PadMode, SplitPart};
use crate::ir::{DType, Op, Tensor};

pub fn flatten(ctx: &NodeCtx) -> Result<Imported, String> {
    let axis = ctx.attrs.int_or("axis", 1)?;
    Ok(Imported::first(Op::Flatten(Flatten { axis }), 1))
}

pub fn reshape(ctx: &NodeCtx) -> Result<Imported, String> {
    let allowzero = ctx.attrs.flag("allowzero", false)?;
    let op = Op::Reshape(Reshape { allowzero });
    if ctx.opset < 5 {
        let shape = ctx
            .attrs
            .ints("shape")?
            .ok_or("attribute 'shape' is required")?;
        let t = Tensor::from_i64(vec![shape.len()], shape)?;
        return Ok(Imported::op(
            op,
            vec![Source::Input(0), Source::Const("shape".into(), Arc::new(t))],
        ));
    }
    if !ctx.has_input(1) {
        return Err("input 1 (shape) is required".into());
    }
    Ok(Imported::first(op, 2))
}

pub fn transpose(ctx: &NodeCtx) -> Result<Imported, String> {
    let perm = ctx.attrs.sizes("perm", 0)?;
    Ok(Imported::first(Op::Transpose(Transpose { perm }), 1))
}

pub fn concat(ctx: &NodeCtx) -> Result<Imported, String> {
    let axis = match ctx.attrs.int("axis")? {
        Some(a) => a,
        None if ctx.opset < 4 => 1,
        None => return Err("attribute 'axis' is required".into()),
    };
    let inputs: Vec<Source> = (0..ctx.node.input.len())
        .filter(|&i| ctx.has_input(i))
        .map(Source::Input)
        .collect();
    Ok(Imported::op(Op::Concat(Concat { axis }), inputs))
}

pub fn pad(ctx: &NodeCtx) -> Result<Imported, String> {
    let a = &ctx.attrs;
    let mode = match a.string("mode")?.as_deref().unwrap_or("constant") {
        "constant" => PadMode::Constant,
        "reflect" => PadMode::Reflect,
        "edge" => PadMode::Edge,
        "wrap" => PadMode::Wrap,
        other => return Err(format!("Pad mode '{other}' is not supported")),
    };
    let (pads, value) = if ctx.opset < 11 {
        let name = if ctx.opset < 2 { "paddings" } else { "pads" };
        let pads = a
            .ints(name)?
            .ok_or_else(|| format!("attribute '{name}' is required"))?;
        (pads, a.float_or("value", 0.0)?)
    } else {
        let pads = ctx
            .const_ints(1, "pads")?
            .ok_or("input 1 (pads) is required")?;
        let value = ctx.const_scalar(2, "constant_value")?.unwrap_or(0.0);
        if ctx.has_input(3) {
            return Err("Pad with an 'axes' input is not supported".into());
        }
        (pads, value)
    };
    if let Some(p) = pads.iter().find(|&&p| p < 0) {
        return Err(format!(
            "negative pads (cropping) are not supported, got {p} in {pads:?}"
        ));
    }
    let pads = pads.into_iter().map(|p| p as usize).collect();
    Ok(Imported::first(Op::Pad(Pad { pads, value, mode }), 1))
}

/// Axes from the attribute (old opsets) or the constant input 1 (new opsets).
fn axes(ctx: &NodeCtx, since: i64) -> Result<Option<Vec<i64>>, String> {
    if ctx.opset < since {
        ctx.attrs.ints("axes")
    } else {
        ctx.const_ints(1, "axes")
    }
}

pub fn squeeze(ctx: &NodeCtx) -> Result<Imported, String> {
    let axes = axes(ctx, 13)?;
    Ok(Imported::first(Op::Squeeze(Squeeze { axes }), 1))
}

pub fn unsqueeze(ctx: &NodeCtx) -> Result<Imported, String> {
    let axes = axes(ctx, 13)?.ok_or("axes are required")?;
    Ok(Imported::first(Op::Unsqueeze(Unsqueeze { axes }), 1))
}

pub fn slice(ctx: &NodeCtx) -> Result<Imported, String> {
    let op = if ctx.opset < 10 {
        let a = &ctx.attrs;
        Slice {
            starts: a.ints("starts")?.ok_or("attribute 'starts' is required")?,
            ends: a.ints("ends")?.ok_or("attribute 'ends' is required")?,
            axes: a.ints("axes")?,
            steps: None,
        }
    } else {
        Slice {
            starts: ctx
                .const_ints(1, "starts")?
                .ok_or("input 1 (starts) is required")?,
            ends: ctx
                .const_ints(2, "ends")?
                .ok_or("input 2 (ends) is required")?,
            axes: ctx.const_ints(3, "axes")?,
            steps: ctx.const_ints(4, "steps")?,
        }
    };
    Ok(Imported::first(Op::Slice(op), 1))
}

pub fn shape(ctx: &NodeCtx) -> Result<Imported, String> {
    let op = ShapeOf {
        start: ctx.attrs.int_or("start", 0)?,
        end: ctx.attrs.int("end")?,
    };
    Ok(Imported::first(Op::Shape(op), 1))
}

pub fn gather(ctx: &NodeCtx) -> Result<Imported, String> {
    let axis = ctx.attrs.int_or("axis", 0)?;
    Ok(Imported::first(Op::Gather(Gather { axis }), 2))
}

/// Maps an ONNX data type code to the IR dtype that represents it.
pub fn dtype_of(code: i64) -> Result<DType, String> {
    use crate::onnx::proto::tensor_proto::DataType as D;
    let d = i32::try_from(code).ok().and_then(|c| D::try_from(c).ok());
    match d {
        Some(D::Float | D::Double | D::Float16 | D::Bfloat16) => Ok(DType::F32),
        Some(
            D::Int64 | D::Int32 | D::Int16 | D::Int8 | D::Uint64 | D::Uint32 | D::Uint16 | D::Uint8,
        ) => Ok(DType::I64),
        Some(other) => Err(format!("type {} is not supported", other.as_str_name())),
        None => Err(format!("unknown data type {code}")),
    }
}

pub fn cast(ctx: &NodeCtx) -> Result<Imported, String> {
    let to = ctx.attrs.int("to")?.ok_or("attribute 'to' is required")?;
    let boolean = to == crate::onnx::proto::tensor_proto::DataType::Bool as i64;
    let to = if boolean {
        DType::I64
    } else {
        dtype_of(to).map_err(|e| format!("Cast to {e}"))?
    };
    Ok(Imported::first(Op::Cast(Cast { to, boolean }), 1))
}

/// Split: sizes from the `split` attribute (opset < 13) or input 1, else `num_outputs` pieces
/// (opset 18) or one piece per output; every output is one SplitPart node.
pub fn split(ctx: &NodeCtx) -> Result<Imported, String> {
    let axis = ctx.attrs.int("axis")?.unwrap_or(0);
    let sizes = if ctx.opset < 13 {
        ctx.attrs.ints("split")?
    } else {
        ctx.const_ints(1, "split")?
    };
    let sizes = sizes
        .map(|s| {
            s.iter()
                .map(|&v| usize::try_from(v).map_err(|_| format!("split size {v} is negative")))
                .collect::<Result<Vec<usize>, String>>()
        })
        .transpose()?;
    let outputs = ctx.node.output.len();
    let parts = match (&sizes, ctx.attrs.int("num_outputs")?) {
        (Some(s), _) => s.len(),
        (None, Some(n)) => usize::try_from(n).map_err(|_| format!("num_outputs {n}"))?,
        (None, None) => outputs,
    };
    if parts != outputs {
        return Err(format!("{parts} parts for {outputs} outputs"));
    }
    let mut out = Imported::new();
    for index in 0..outputs {
        let part = SplitPart {
            axis,
            sizes: sizes.clone(),
            parts,
            index,
        };
        let role = if index == 0 {
            String::new()
        } else {
            format!("part{index}")
        };
        let node = out.add(role, Op::SplitPart(part), vec![Source::Input(0)]);
        out.output(index, &node);
    }
    Ok(out)
}

pub fn expand(_: &NodeCtx) -> Result<Imported, String> {
    Ok(Imported::first(Op::Expand, 2))
}

pub fn tile(_: &NodeCtx) -> Result<Imported, String> {
    Ok(Imported::first(Op::Tile, 2))
}

pub fn range(_: &NodeCtx) -> Result<Imported, String> {
    Ok(Imported::first(Op::Range, 3))
}

/// Resize (opset 10: scales, asymmetric; 11+: roi, scales, sizes and the coordinate modes) and
/// Upsample (scales as attribute to opset 8, input from 9).
pub fn resize(ctx: &NodeCtx) -> Result<Imported, String> {
    use crate::ir::ops::resize::{CoordMode, Interpolation, NearestMode, Target};
    let a = &ctx.attrs;
    let upsample = ctx.node.op_type == "Upsample";
    let legacy = upsample || ctx.opset < 11;
    let mode = a.string("mode")?.unwrap_or_else(|| "nearest".into());
    let interpolation = match mode.as_str() {
        "nearest" if legacy => Interpolation::Nearest(NearestMode::Floor),
        "nearest" => Interpolation::Nearest(
            match a
                .string("nearest_mode")?
                .as_deref()
                .unwrap_or("round_prefer_floor")
            {
                "round_prefer_floor" => NearestMode::RoundPreferFloor,
                "round_prefer_ceil" => NearestMode::RoundPreferCeil,
                "floor" => NearestMode::Floor,
                "ceil" => NearestMode::Ceil,
                other => return Err(format!("unknown nearest_mode '{other}'")),
            },
        ),
        "linear" | "bilinear" => Interpolation::Linear,
        other => return Err(format!("mode '{other}' is not supported (nearest, linear)")),
    };
    let coord = if legacy {
        CoordMode::Asymmetric
    } else {
        match a
            .string("coordinate_transformation_mode")?
            .as_deref()
            .unwrap_or("half_pixel")
        {
            "half_pixel" => CoordMode::HalfPixel,
            "half_pixel_symmetric" => CoordMode::HalfPixelSymmetric,
            "pytorch_half_pixel" => CoordMode::PytorchHalfPixel,
            "align_corners" => CoordMode::AlignCorners,
            "asymmetric" => CoordMode::Asymmetric,
            other => {
                return Err(format!(
                    "coordinate_transformation_mode '{other}' is not supported"
                ));
            }
        }
    };
    if a.int("antialias")?.unwrap_or(0) != 0 {
        return Err("antialias=1 is not supported".into());
    }
    if a.has("axes") {
        return Err(
            "the 'axes' attribute is not supported (give scales or sizes for every axis)".into(),
        );
    }
    if a.string("keep_aspect_ratio_policy")?
        .is_some_and(|p| p != "stretch")
    {
        return Err("keep_aspect_ratio_policy other than 'stretch' is not supported".into());
    }
    // Scales or sizes are read once they fold to constants (they are often computed from the
    // input's shape); an empty constant marks an input as absent.
    let empty = |i: usize| {
        ctx.consts
            .get(&ctx.node.input[i])
            .is_some_and(|t| t.is_empty())
    };
    let given = |i: usize| ctx.has_input(i) && !empty(i);
    let (target, second) = if upsample && ctx.opset < 9 {
        let s = a
            .floats("scales")?
            .ok_or("attribute 'scales' is required")?;
        (Target::Scales(s), None)
    } else if legacy {
        (Target::ScalesInput, Some(1))
    } else if given(3) {
        (Target::SizesInput, Some(3))
    } else if given(2) {
        (Target::ScalesInput, Some(2))
    } else {
        return Err("give scales or sizes".into());
    };
    let op = Op::Resize(crate::ir::ops::Resize {
        interpolation,
        coord,
        target,
    });
    let mut inputs = vec![Source::Input(0)];
    inputs.extend(second.map(Source::Input));
    Ok(Imported::op(op, inputs))
}

/// Size: the element count, as the product of the Shape (both fold once shapes are known).
pub fn size(_: &NodeCtx) -> Result<Imported, String> {
    let mut out = Imported::new();
    let shape = out.add(
        "shape",
        Op::Shape(ShapeOf {
            start: 0,
            end: None,
        }),
        vec![Source::Input(0)],
    );
    let count = crate::ir::ops::Reduce {
        kind: crate::ir::ops::ReduceKind::Prod,
        axes: None,
        keepdims: false,
    };
    let n = out.add("", Op::Reduce(count), vec![shape]);
    out.output(0, &n);
    Ok(out)
}

fn depth_space(ctx: &NodeCtx, to_depth: bool) -> Result<Imported, String> {
    let b = ctx
        .attrs
        .int("blocksize")?
        .ok_or("attribute 'blocksize' is required")?;
    let blocksize = usize::try_from(b)
        .ok()
        .filter(|&b| b > 0)
        .ok_or_else(|| format!("blocksize {b} must be positive"))?;
    let crd = match ctx.attrs.string("mode")?.as_deref() {
        None | Some("DCR") => false,
        Some("CRD") if !to_depth => true,
        Some(other) => return Err(format!("mode '{other}' is not supported")),
    };
    let op = Op::DepthSpace(crate::ir::ops::DepthSpace {
        blocksize,
        crd,
        to_depth,
    });
    Ok(Imported::first(op, 1))
}

pub fn depth_to_space(ctx: &NodeCtx) -> Result<Imported, String> {
    depth_space(ctx, false)
}

pub fn space_to_depth(ctx: &NodeCtx) -> Result<Imported, String> {
    depth_space(ctx, true)
}

pub fn scatter_nd(ctx: &NodeCtx) -> Result<Imported, String> {
    use crate::ir::ops::BinaryOp;
    let reduction = match ctx.attrs.string("reduction")?.as_deref() {
        None | Some("none") => None,
        Some("add") => Some(BinaryOp::Add),
        Some("mul") => Some(BinaryOp::Mul),
        Some("max") => Some(BinaryOp::Max),
        Some("min") => Some(BinaryOp::Min),
        Some(other) => return Err(format!("reduction '{other}' is not supported")),
    };
    Ok(Imported::first(
        Op::ScatterNd(crate::ir::ops::ScatterNd { reduction }),
        3,
    ))
}
