//! The operations of the IR: one enum with typed attributes, one file per op family holding the
//! attribute struct and its shape rule. Adding an op means a variant here, its file, and the
//! exhaustive matches that the compiler then points at (interpreter, relevance, lowering).

pub mod backward;
pub mod conv;
pub mod elementwise;
pub mod gemm;
pub mod norm;
pub mod pool;
pub mod reduce;
pub mod resize;
pub mod shape;
pub mod util;
pub mod window;

use std::ops::RangeInclusive;
use std::sync::Arc;

pub use backward::{
    ActivationGrad, ConvTranspose, GlobalPoolBackward, LrnBackward, Pointwise, PoolBackward,
    SliceBackward,
};
pub use conv::Conv;
pub use elementwise::{Activation, BinaryOp, erf};
pub use gemm::Gemm;
pub use norm::{BatchNorm, Lrn, Softmax};
pub use pool::{GlobalPool, Pool, PoolIndices, PoolKind};
pub use reduce::{ArgExtremum, Reduce, ReduceKind};
pub use resize::{Resize, ResizeBackward};
pub use shape::{
    Cast, Concat, ConstantOfShape, DepthSpace, Expand, Flatten, Gather, Pad, PadMode, Range,
    Reshape, ScatterNd, ShapeOf, Slice, SplitPart, Squeeze, Tile, Transpose, Unsqueeze,
};
pub use window::{AutoPad, Depth, Geometry, Plane, Window};

use super::fact::Fact;
use super::tensor::{DType, Tensor};
use crate::error::OpResult;
use crate::{op_bail, op_ensure};

/// One IR operation. Every op has exactly one output.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// The model input; its fact is set by the importer.
    Input,
    /// A compile-time constant (initializer, `Constant`, or a folded subgraph).
    Const(Arc<Tensor>),
    Conv(Conv),
    Gemm(Gemm),
    MatMul,
    Binary(BinaryOp),
    Sum,
    Reduce(Reduce),
    SplitPart(SplitPart),
    ScatterNd(ScatterNd),
    DepthSpace(DepthSpace),
    Resize(Resize),
    ResizeBackward(ResizeBackward),
    /// Expand(x, shape).
    Expand,
    /// Tile(x, repeats).
    Tile,
    /// Range(start, limit, delta).
    Range,
    /// Where(condition, x, y): x where the condition is nonzero, else y (broadcasting).
    Where,
    Activation(Activation),
    Pool(Pool),
    PoolIndices(PoolIndices),
    ArgExtremum(ArgExtremum),
    GlobalPool(GlobalPool),
    BatchNorm(BatchNorm),
    Lrn(Lrn),
    Softmax(Softmax),
    Flatten(Flatten),
    Reshape(Reshape),
    Transpose(Transpose),
    Concat(Concat),
    Pad(Pad),
    Squeeze(Squeeze),
    Unsqueeze(Unsqueeze),
    Slice(Slice),
    Shape(ShapeOf),
    Gather(Gather),
    Cast(Cast),
    ConstantOfShape(ConstantOfShape),
    /// Identity and Dropout; removed by canonicalisation.
    Identity,
    /// An identity the passes do not fold: a constant recurrent state (a zero initial h or c)
    /// kept as an operand, so that the relevance rules see it as an input of its layer
    /// (Arras et al.'s bias factor counts it; relevance reaching it is reported as left on the
    /// state). The relevance pass releases it before folding.
    Hold,
    // Ops the relevance pass creates (see `backward.rs`).
    ConvTranspose(ConvTranspose),
    PoolBackward(PoolBackward),
    GlobalPoolBackward(GlobalPoolBackward),
    SliceBackward(SliceBackward),
    ActivationGrad(ActivationGrad),
    LrnBackward(LrnBackward),
    MovementAdjoint(backward::MovementAdjoint),
    Pointwise(Pointwise),
}

impl Op {
    /// The op's name as ONNX spells it (a pool reports MaxPool/AveragePool).
    pub fn name(&self) -> &'static str {
        match self {
            Op::Input => "Input",
            Op::Const(_) => "Const",
            Op::Conv(_) => "Conv",
            Op::Gemm(_) => "Gemm",
            Op::MatMul => "MatMul",
            Op::Binary(b) => b.name(),
            Op::Sum => "Sum",
            Op::Where => "Where",
            Op::Reduce(r) => r.kind.name(),
            Op::SplitPart(_) => "Split",
            Op::ScatterNd(_) => "ScatterND",
            Op::DepthSpace(d) if d.to_depth => "SpaceToDepth",
            Op::DepthSpace(_) => "DepthToSpace",
            Op::Resize(_) => "Resize",
            Op::ResizeBackward(_) => "ResizeBackward",
            Op::Expand => "Expand",
            Op::Tile => "Tile",
            Op::Range => "Range",
            Op::Activation(a) => a.name(),
            Op::Pool(p) => match p.kind {
                PoolKind::Max => "MaxPool",
                PoolKind::Average { .. } => "AveragePool",
            },
            Op::PoolIndices(_) => "MaxPoolIndices",
            Op::ArgExtremum(a) => a.name(),
            Op::GlobalPool(GlobalPool::Max) => "GlobalMaxPool",
            Op::GlobalPool(GlobalPool::Average) => "GlobalAveragePool",
            Op::BatchNorm(_) => "BatchNormalization",
            Op::Lrn(_) => "LRN",
            Op::Softmax(_) => "Softmax",
            Op::Flatten(_) => "Flatten",
            Op::Reshape(_) => "Reshape",
            Op::Transpose(_) => "Transpose",
            Op::Concat(_) => "Concat",
            Op::Pad(_) => "Pad",
            Op::Squeeze(_) => "Squeeze",
            Op::Unsqueeze(_) => "Unsqueeze",
            Op::Slice(_) => "Slice",
            Op::Shape(_) => "Shape",
            Op::Gather(_) => "Gather",
            Op::Cast(_) => "Cast",
            Op::ConstantOfShape(_) => "ConstantOfShape",
            Op::Identity => "Identity",
            Op::Hold => "Hold",
            Op::ConvTranspose(_) => "ConvTranspose",
            Op::PoolBackward(p) => match p.pool.kind {
                PoolKind::Max => "MaxPoolBackward",
                PoolKind::Average { .. } => "AveragePoolBackward",
            },
            Op::GlobalPoolBackward(p) => match p.pool {
                GlobalPool::Max => "GlobalMaxPoolBackward",
                GlobalPool::Average => "GlobalAveragePoolBackward",
            },
            Op::SliceBackward(_) => "SliceBackward",
            Op::ActivationGrad(_) => "ActivationGrad",
            Op::LrnBackward(_) => "LRNBackward",
            Op::MovementAdjoint(m) => match m.forward.name() {
                "Pad" => "PadBackward",
                _ => "MovementAdjoint",
            },
            Op::Pointwise(p) => p.name(),
        }
    }

    /// How many inputs the op takes.
    pub fn arity(&self) -> RangeInclusive<usize> {
        match self {
            Op::Input | Op::Const(_) => 0..=0,
            Op::Conv(_) | Op::Gemm(_) | Op::ConvTranspose(_) => 2..=3,
            Op::Where | Op::Range | Op::ScatterNd(_) => 3..=3,
            Op::Expand | Op::Tile => 2..=2,
            Op::MatMul
            | Op::Binary(_)
            | Op::Reshape(_)
            | Op::Gather(_)
            | Op::PoolBackward(_)
            | Op::GlobalPoolBackward(_)
            | Op::ActivationGrad(_)
            | Op::LrnBackward(_) => 2..=2,
            Op::Sum | Op::Concat(_) => 1..=usize::MAX,
            Op::BatchNorm(_) => 5..=5,
            Op::Activation(_)
            | Op::Pool(_)
            | Op::PoolIndices(_)
            | Op::ArgExtremum(_)
            | Op::GlobalPool(_)
            | Op::Lrn(_)
            | Op::Softmax(_)
            | Op::Flatten(_)
            | Op::Transpose(_)
            | Op::Pad(_)
            | Op::Squeeze(_)
            | Op::Unsqueeze(_)
            | Op::Slice(_)
            | Op::Shape(_)
            | Op::Cast(_)
            | Op::ConstantOfShape(_)
            | Op::Identity
            | Op::Hold
            | Op::SliceBackward(_)
            | Op::Reduce(_)
            | Op::SplitPart(_)
            | Op::DepthSpace(_)
            | Op::ResizeBackward(_)
            | Op::MovementAdjoint(_)
            | Op::Pointwise(_) => 1..=1,
            Op::Resize(_) => 1..=2,
        }
    }

    /// Whether the op only moves data (so relevance and gradients are routed, not computed).
    pub fn is_data_movement(&self) -> bool {
        matches!(
            self,
            Op::Flatten(_)
                | Op::Reshape(_)
                | Op::Transpose(_)
                | Op::Concat(_)
                | Op::Pad(_)
                | Op::Squeeze(_)
                | Op::Unsqueeze(_)
                | Op::Slice(_)
                | Op::SplitPart(_)
                | Op::DepthSpace(_)
                | Op::Expand
                | Op::Tile
                | Op::Identity
                | Op::Hold
        )
    }

    /// Output fact from input facts: the op's shape rule, after arity and dtype checks.
    pub fn infer(&self, inputs: &[&Fact]) -> OpResult<Fact> {
        let arity = self.arity();
        op_ensure!(
            arity.contains(&inputs.len()),
            "takes {} inputs, got {}",
            describe_arity(&arity),
            inputs.len()
        );
        let needs_f32 = !matches!(
            self,
            Op::Input
                | Op::Const(_)
                | Op::Binary(_)
                | Op::Sum
                | Op::Where
                | Op::Reduce(_)
                | Op::ArgExtremum(_)
                | Op::Resize(_)
                | Op::Pad(_)
                | Op::SplitPart(_)
                | Op::DepthSpace(_)
                | Op::ScatterNd(_)
                | Op::Expand
                | Op::Tile
                | Op::Range
                | Op::Activation(_)
                | Op::Gather(_)
                | Op::Shape(_)
                | Op::Cast(_)
                | Op::ConstantOfShape(_)
                | Op::Reshape(_)
                | Op::Concat(_)
                | Op::Squeeze(_)
                | Op::Unsqueeze(_)
                | Op::Slice(_)
                | Op::Flatten(_)
                | Op::Transpose(_)
                | Op::Identity
                | Op::Hold
        );
        if needs_f32 {
            for (i, f) in inputs.iter().enumerate() {
                op_ensure!(
                    f.dtype == DType::F32,
                    "input {i} must be f32, got {}",
                    f.dtype
                );
            }
        }
        match self {
            Op::Input => op_bail!("an Input has its fact set at import"),
            Op::Const(t) => Ok(Fact::constant(t.clone())),
            Op::Conv(c) => c.infer(inputs),
            Op::Gemm(g) => g.infer(inputs),
            Op::MatMul => gemm::infer_matmul(inputs),
            Op::Binary(b) => b.infer(inputs),
            Op::Sum => elementwise::infer_broadcast(inputs),
            Op::Where => elementwise::infer_where(inputs),
            Op::Reduce(r) => r.infer(inputs),
            Op::SplitPart(p) => p.infer(inputs),
            Op::ScatterNd(s) => s.infer(inputs),
            Op::DepthSpace(d) => d.infer(inputs),
            Op::Resize(r) => r.infer(inputs),
            Op::ResizeBackward(r) => r.infer(inputs),
            Op::Expand => Expand.infer(inputs),
            Op::Tile => Tile.infer(inputs),
            Op::Range => Range.infer(inputs),
            Op::Activation(a) => a.infer(inputs),
            Op::Pool(p) => p.infer(inputs),
            Op::PoolIndices(p) => p.infer(inputs),
            Op::ArgExtremum(a) => a.infer(inputs),
            Op::GlobalPool(p) => p.infer(inputs),
            Op::BatchNorm(b) => b.infer(inputs),
            Op::Lrn(l) => l.infer(inputs),
            Op::Softmax(s) => s.infer(inputs),
            Op::Flatten(f) => f.infer(inputs),
            Op::Reshape(r) => r.infer(inputs),
            Op::Transpose(t) => t.infer(inputs),
            Op::Concat(c) => c.infer(inputs),
            Op::Pad(p) => p.infer(inputs),
            Op::Squeeze(s) => s.infer(inputs),
            Op::Unsqueeze(u) => u.infer(inputs),
            Op::Slice(s) => s.infer(inputs),
            Op::Shape(s) => s.infer(inputs),
            Op::Gather(g) => g.infer(inputs),
            Op::Cast(c) => c.infer(inputs),
            Op::ConstantOfShape(c) => c.infer(inputs),
            Op::Identity | Op::Hold => Ok(Fact::new(inputs[0].dtype, inputs[0].shape.clone())),
            Op::ConvTranspose(c) => c.infer(inputs),
            Op::PoolBackward(p) => p.infer(inputs),
            Op::GlobalPoolBackward(p) => p.infer(inputs),
            Op::SliceBackward(s) => s.infer(inputs),
            Op::ActivationGrad(a) => a.infer(inputs),
            Op::LrnBackward(l) => l.infer(inputs),
            Op::MovementAdjoint(m) => m.infer(inputs),
            Op::Pointwise(_) => Ok(Fact::new(DType::F32, inputs[0].shape.clone())),
        }
    }

    /// The op's attributes as (name, value) text pairs, in a fixed order, for dumps.
    pub fn attributes(&self) -> Vec<(&'static str, String)> {
        fn list<T: std::fmt::Display>(v: &[T]) -> String {
            let items: Vec<String> = v.iter().map(|x| x.to_string()).collect();
            format!("[{}]", items.join(","))
        }
        fn window(w: &Window, out: &mut Vec<(&'static str, String)>) {
            if !w.strides.is_empty() {
                out.push(("strides", list(&w.strides)));
            }
            if !w.dilations.is_empty() {
                out.push(("dilations", list(&w.dilations)));
            }
            if !w.pads.is_empty() {
                out.push(("pads", list(&w.pads)));
            }
            if w.auto_pad != AutoPad::NotSet {
                out.push(("auto_pad", format!("{:?}", w.auto_pad)));
            }
            if w.ceil_mode {
                out.push(("ceil_mode", "1".into()));
            }
        }
        let mut out = Vec::new();
        match self {
            Op::Conv(c) => {
                if let Some(k) = &c.kernel_shape {
                    out.push(("kernel_shape", list(k)));
                }
                window(&c.window, &mut out);
                if c.group != 1 {
                    out.push(("group", c.group.to_string()));
                }
            }
            Op::Gemm(g) => {
                out.push(("alpha", format!("{}", g.alpha)));
                out.push(("beta", format!("{}", g.beta)));
                out.push(("trans_a", (g.trans_a as u8).to_string()));
                out.push(("trans_b", (g.trans_b as u8).to_string()));
            }
            Op::Activation(Activation::LeakyRelu { alpha }) => {
                out.push(("alpha", alpha.to_string()))
            }
            Op::Activation(Activation::Clip { min, max }) => {
                out.push(("min", min.to_string()));
                out.push(("max", max.to_string()));
            }
            Op::Pool(p) => {
                out.push(("kernel_shape", list(&p.kernel_shape)));
                window(&p.window, &mut out);
                if let PoolKind::Average {
                    count_include_pad: true,
                } = p.kind
                {
                    out.push(("count_include_pad", "1".into()));
                }
            }
            Op::BatchNorm(b) => out.push(("epsilon", format!("{:e}", b.epsilon))),
            Op::Lrn(l) => {
                out.push(("size", l.size.to_string()));
                out.push(("alpha", format!("{:e}", l.alpha)));
                out.push(("beta", l.beta.to_string()));
                out.push(("bias", l.bias.to_string()));
            }
            Op::Softmax(s) => {
                out.push(("axis", s.axis.to_string()));
                if s.coerce_2d {
                    out.push(("coerce_2d", "1".into()));
                }
            }
            Op::Flatten(f) => out.push(("axis", f.axis.to_string())),
            Op::Reshape(r) if r.allowzero => out.push(("allowzero", "1".into())),
            Op::Transpose(Transpose { perm: Some(p) }) => out.push(("perm", list(p))),
            Op::Concat(c) => out.push(("axis", c.axis.to_string())),
            Op::Pad(p) => {
                out.push(("pads", list(&p.pads)));
                if p.value != 0.0 {
                    out.push(("value", p.value.to_string()));
                }
            }
            Op::Squeeze(Squeeze { axes: Some(a) }) => out.push(("axes", list(a))),
            Op::Unsqueeze(u) => out.push(("axes", list(&u.axes))),
            Op::Slice(s) => {
                out.push(("starts", list(&s.starts)));
                out.push(("ends", list(&s.ends)));
                if let Some(a) = &s.axes {
                    out.push(("axes", list(a)));
                }
                if let Some(st) = &s.steps {
                    out.push(("steps", list(st)));
                }
            }
            Op::Shape(s) => {
                if s.start != 0 {
                    out.push(("start", s.start.to_string()));
                }
                if let Some(e) = s.end {
                    out.push(("end", e.to_string()));
                }
            }
            Op::Gather(g) => out.push(("axis", g.axis.to_string())),
            Op::Cast(c) => out.push((
                "to",
                if c.boolean {
                    "bool".into()
                } else {
                    c.to.to_string()
                },
            )),
            Op::Pointwise(Pointwise::Stabilize { epsilon }) => {
                out.push(("epsilon", format!("{epsilon:e}")))
            }
            Op::ActivationGrad(a) => out.push(("activation", a.activation.name().into())),
            Op::ConvTranspose(c) => {
                out.extend(Op::Conv(c.conv.clone()).attributes());
                out.push(("input_shape", list(&c.input_shape)));
            }
            Op::PoolBackward(p) => out.extend(Op::Pool(p.pool.clone()).attributes()),
            Op::PoolIndices(p) => {
                out.extend(Op::Pool(p.pool.clone()).attributes());
                if p.column_major {
                    out.push(("storage_order", "1".into()));
                }
            }
            Op::ArgExtremum(a) => {
                out.push(("axis", a.axis.to_string()));
                out.push(("keepdims", (a.keepdims as u8).to_string()));
                if a.last {
                    out.push(("select_last_index", "1".into()));
                }
            }
            Op::SliceBackward(s) => {
                out.extend(Op::Slice(s.slice.clone()).attributes());
                out.push(("input_shape", list(&s.input_shape)));
            }
            _ => {}
        }
        out
    }
}

fn describe_arity(r: &RangeInclusive<usize>) -> String {
    match (*r.start(), *r.end()) {
        (a, b) if a == b => a.to_string(),
        (a, usize::MAX) => format!("at least {a}"),
        (a, b) => format!("{a} to {b}"),
    }
}
