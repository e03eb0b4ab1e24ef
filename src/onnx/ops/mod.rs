//! One importer per ONNX op, and the registry that maps op types to them. The registry checks the
//! opset range and input count in one place, so an importer only reads attributes and picks its
//! inputs.

mod constant;
mod conv;
mod einsum;
mod elementwise;
mod gemm;
mod norm;
mod normalization;
mod pool;
mod quantize;
mod recurrent;
mod shape;

use std::collections::HashMap;
use std::ops::RangeInclusive;
use std::sync::Arc;

use super::attrs::Attrs;
use super::proto::NodeProto;
use crate::ir::{Op, Tensor};

/// Where one IR input of an imported node comes from.
#[derive(Clone)]
pub enum Source {
    /// The ONNX node's input at this position.
    Input(usize),
    /// A constant the importer made (from an attribute in old opsets, or a parameter of a
    /// decomposition), named `{node}.{role}`.
    Const(String, Arc<Tensor>),
    /// An earlier node of the same import (`Imported::nodes[k]`).
    Node(usize),
}

/// One IR node an importer makes: named after the ONNX node (`role` empty) or `{node}.{role}`.
pub struct ImportedNode {
    pub role: String,
    pub op: Op,
    pub inputs: Vec<Source>,
}

/// What an importer makes of a node: IR nodes in creation order, and for each ONNX output
/// position the node that provides it (`None` where lrpc does not compute that output). Most
/// ops are one node; an op with several outputs (Split) or a decomposition (HardSwish, LSTM)
/// is several, which keeps every IR node single-output.
pub struct Imported {
    pub nodes: Vec<ImportedNode>,
    pub outputs: Vec<Option<usize>>,
    /// What the import changed about the model's meaning, for the user (recorded in
    /// [`crate::ir::Graph::notes`] with the node's name).
    pub notes: Vec<String>,
    /// (ONNX input position, largest value): an integer operand that, when it is a model
    /// input, must not exceed the value (checked on the data, [`crate::ir::Graph::input_limits`]).
    pub limits: Vec<(usize, i64)>,
}

impl Imported {
    /// One op over `inputs`, providing output 0.
    pub fn op(op: Op, inputs: Vec<Source>) -> Self {
        Imported {
            nodes: vec![ImportedNode {
                role: String::new(),
                op,
                inputs,
            }],
            outputs: vec![Some(0)],
            notes: Vec::new(),
            limits: Vec::new(),
        }
    }

    /// The op over the ONNX inputs `0..n` (leaving out trailing absent optional inputs).
    pub fn first(op: Op, n: usize) -> Self {
        Imported::op(op, (0..n).map(Source::Input).collect())
    }

    /// An empty import, to build node by node.
    pub fn new() -> Self {
        Imported {
            nodes: Vec::new(),
            outputs: Vec::new(),
            notes: Vec::new(),
            limits: Vec::new(),
        }
    }

    /// Adds a node (`role` empty for the one named exactly as the ONNX node); returns its source.
    pub fn add(&mut self, role: impl Into<String>, op: Op, inputs: Vec<Source>) -> Source {
        self.nodes.push(ImportedNode {
            role: role.into(),
            op,
            inputs,
        });
        Source::Node(self.nodes.len() - 1)
    }

    /// Makes `source` (a node of this import) ONNX output `pos`.
    pub fn output(&mut self, pos: usize, source: &Source) {
        if let Source::Node(k) = source {
            if self.outputs.len() <= pos {
                self.outputs.resize(pos + 1, None);
            }
            self.outputs[pos] = Some(*k);
        }
    }
}

impl Default for Imported {
    fn default() -> Self {
        Imported::new()
    }
}

/// What an importer sees of a node.
pub struct NodeCtx<'a> {
    pub node: &'a NodeProto,
    pub opset: i64,
    pub attrs: Attrs<'a>,
    /// Initializers and outputs of `Constant` nodes, by name.
    pub consts: &'a HashMap<String, Arc<Tensor>>,
    /// The shapes of every input (absent ones empty), for the ops in [`NEEDS_SHAPE`] (empty for
    /// the others).
    pub input_shapes: Vec<Vec<usize>>,
    /// The ONNX element type of initializers, `Constant` outputs and graph inputs, by name.
    pub types: &'a HashMap<String, i32>,
    /// The op types reading each value of the model ("graph output" for its outputs).
    pub uses: &'a HashMap<String, Vec<String>>,
}

/// Ops whose later inputs the importer reads as constants (pads, axes, sizes, bounds): when
/// one is computed (from the input's shape, typically), the importer folds it first.
pub const FOLDED_INPUTS: &[&str] = &[
    "Pad",
    "Split",
    "Clip",
    "Slice",
    "Squeeze",
    "Unsqueeze",
    "ReduceSum",
    "ReduceMean",
    "ReduceMax",
    "ReduceMin",
    "ReduceProd",
    "ReduceL1",
    "ReduceL2",
    "ReduceLogSumExp",
    "ReduceSumSquare",
    // Weights an exporter reshapes from a constant (silero's Unsqueeze of W, R, B).
    "LSTM",
    "GRU",
    "RNN",
];

/// Ops whose import needs the shape of their first input (their decomposition depends on its
/// rank, ConvTranspose on its sizes); the importer infers shapes over the graph so far.
pub const NEEDS_SHAPE: &[&str] = &[
    "LayerNormalization",
    "InstanceNormalization",
    "GroupNormalization",
    "ConvTranspose",
    "Einsum",
    "QuantizeLinear",
    "DequantizeLinear",
    "MatMulInteger",
    "ConvInteger",
    "LSTM",
    "GRU",
    "RNN",
];

impl NodeCtx<'_> {
    /// The shape of input 0, for the ops in [`NEEDS_SHAPE`] (None for the others).
    pub fn input_shape(&self) -> Option<&Vec<usize>> {
        self.input_shapes.first()
    }

    /// Whether input `i` is present (ONNX marks an absent optional input with an empty name).
    pub fn has_input(&self, i: usize) -> bool {
        self.node.input.get(i).is_some_and(|n| !n.is_empty())
    }

    /// Number of inputs up to the last present one.
    pub fn present_inputs(&self) -> usize {
        (0..self.node.input.len())
            .rev()
            .find(|&i| self.has_input(i))
            .map_or(0, |i| i + 1)
    }

    /// The constant value of input `i`, `None` when the input is absent; an error when it is
    /// computed, because lrpc needs this parameter at compile time.
    pub fn const_input(&self, i: usize, role: &str) -> Result<Option<Arc<Tensor>>, String> {
        if !self.has_input(i) {
            return Ok(None);
        }
        let name = &self.node.input[i];
        self.consts.get(name).cloned().map(Some).ok_or_else(|| {
            format!(
                "{role} (input {i}, '{name}') must be a constant initializer or Constant output"
            )
        })
    }

    /// A constant i64 vector input (axes, pads, starts...).
    pub fn const_ints(&self, i: usize, role: &str) -> Result<Option<Vec<i64>>, String> {
        match self.const_input(i, role)? {
            None => Ok(None),
            Some(t) => Ok(Some(
                t.i64s()
                    .map_err(|_| format!("{role} (input {i}) must be integers"))?
                    .to_vec(),
            )),
        }
    }

    /// A constant scalar f32 input (Clip bounds, Pad value).
    pub fn const_scalar(&self, i: usize, role: &str) -> Result<Option<f32>, String> {
        match self.const_input(i, role)? {
            None => Ok(None),
            Some(t) if t.len() == 1 => Ok(Some(match t.data() {
                crate::ir::TensorData::F32(v) => v[0],
                crate::ir::TensorData::I64(v) => v[0] as f32,
            })),
            Some(t) => Err(format!(
                "{role} (input {i}) must be a scalar, got shape {:?}",
                t.shape()
            )),
        }
    }
}

type ImportFn = fn(&NodeCtx) -> Result<Imported, String>;

/// One registry entry.
struct Importer {
    op_type: &'static str,
    /// Oldest opset version lrpc reads this op at.
    since: i64,
    /// How many inputs the node may list (absent optional ones included).
    inputs: RangeInclusive<usize>,
    import: ImportFn,
}

const MANY: usize = usize::MAX;

#[rustfmt::skip]
static REGISTRY: &[Importer] = &[
    Importer { op_type: "Conv", since: 1, inputs: 2..=3, import: conv::conv },
    Importer { op_type: "Gemm", since: 1, inputs: 2..=3, import: gemm::gemm },
    Importer { op_type: "MatMul", since: 1, inputs: 2..=2, import: gemm::matmul },
    Importer { op_type: "Add", since: 1, inputs: 2..=2, import: elementwise::add },
    Importer { op_type: "Sub", since: 1, inputs: 2..=2, import: elementwise::sub },
    Importer { op_type: "Mul", since: 1, inputs: 2..=2, import: elementwise::mul },
    Importer { op_type: "Div", since: 1, inputs: 2..=2, import: elementwise::div },
    Importer { op_type: "Sum", since: 1, inputs: 1..=MANY, import: elementwise::sum },
    Importer { op_type: "Relu", since: 1, inputs: 1..=1, import: elementwise::relu },
    Importer { op_type: "LeakyRelu", since: 1, inputs: 1..=1, import: elementwise::leaky_relu },
    Importer { op_type: "Clip", since: 1, inputs: 1..=3, import: elementwise::clip },
    Importer { op_type: "Sigmoid", since: 1, inputs: 1..=1, import: elementwise::sigmoid },
    Importer { op_type: "Tanh", since: 1, inputs: 1..=1, import: elementwise::tanh },
    Importer { op_type: "MaxPool", since: 1, inputs: 1..=1, import: pool::max_pool },
    Importer { op_type: "ArgMax", since: 1, inputs: 1..=1, import: pool::arg_max },
    Importer { op_type: "ArgMin", since: 1, inputs: 1..=1, import: pool::arg_min },
    Importer { op_type: "AveragePool", since: 1, inputs: 1..=1, import: pool::average_pool },
    Importer { op_type: "GlobalMaxPool", since: 1, inputs: 1..=1, import: pool::global_max_pool },
    Importer { op_type: "GlobalAveragePool", since: 1, inputs: 1..=1, import: pool::global_average_pool },
    Importer { op_type: "BatchNormalization", since: 1, inputs: 5..=5, import: norm::batch_norm },
    Importer { op_type: "LRN", since: 1, inputs: 1..=1, import: norm::lrn },
    Importer { op_type: "Softmax", since: 1, inputs: 1..=1, import: norm::softmax },
    Importer { op_type: "Flatten", since: 1, inputs: 1..=1, import: shape::flatten },
    Importer { op_type: "Reshape", since: 1, inputs: 1..=2, import: shape::reshape },
    Importer { op_type: "Transpose", since: 1, inputs: 1..=1, import: shape::transpose },
    Importer { op_type: "Concat", since: 1, inputs: 1..=MANY, import: shape::concat },
    Importer { op_type: "Pad", since: 1, inputs: 1..=4, import: shape::pad },
    Importer { op_type: "Squeeze", since: 1, inputs: 1..=2, import: shape::squeeze },
    Importer { op_type: "Unsqueeze", since: 1, inputs: 1..=2, import: shape::unsqueeze },
    Importer { op_type: "Slice", since: 1, inputs: 1..=5, import: shape::slice },
    Importer { op_type: "Shape", since: 1, inputs: 1..=1, import: shape::shape },
    Importer { op_type: "Gather", since: 1, inputs: 2..=2, import: shape::gather },
    Importer { op_type: "Cast", since: 6, inputs: 1..=1, import: shape::cast },
    Importer { op_type: "Constant", since: 1, inputs: 0..=0, import: constant::constant },
    Importer { op_type: "ConstantOfShape", since: 9, inputs: 1..=1, import: constant::constant_of_shape },
    Importer { op_type: "Dropout", since: 1, inputs: 1..=3, import: constant::dropout },
    Importer { op_type: "Identity", since: 1, inputs: 1..=1, import: constant::identity },
    Importer { op_type: "ScatterND", since: 11, inputs: 3..=3, import: shape::scatter_nd },
    Importer { op_type: "DepthToSpace", since: 1, inputs: 1..=1, import: shape::depth_to_space },
    Importer { op_type: "SpaceToDepth", since: 1, inputs: 1..=1, import: shape::space_to_depth },
    Importer { op_type: "ConvTranspose", since: 1, inputs: 2..=3, import: conv::conv_transpose },
    Importer { op_type: "Size", since: 1, inputs: 1..=1, import: shape::size },
    Importer { op_type: "LayerNormalization", since: 17, inputs: 2..=3, import: normalization::layer_norm },
    Importer { op_type: "InstanceNormalization", since: 6, inputs: 3..=3, import: normalization::instance_norm },
    Importer { op_type: "GroupNormalization", since: 18, inputs: 3..=3, import: normalization::group_norm },
    Importer { op_type: "Resize", since: 10, inputs: 1..=4, import: shape::resize },
    Importer { op_type: "Upsample", since: 7, inputs: 1..=2, import: shape::resize },
    Importer { op_type: "Split", since: 2, inputs: 1..=2, import: shape::split },
    Importer { op_type: "Expand", since: 8, inputs: 2..=2, import: shape::expand },
    Importer { op_type: "Tile", since: 6, inputs: 2..=2, import: shape::tile },
    Importer { op_type: "Range", since: 11, inputs: 3..=3, import: shape::range },
    Importer { op_type: "ReduceSum", since: 1, inputs: 1..=2, import: norm::reduce_sum },
    Importer { op_type: "ReduceMean", since: 1, inputs: 1..=2, import: norm::reduce_mean },
    Importer { op_type: "ReduceMax", since: 1, inputs: 1..=2, import: norm::reduce_max },
    Importer { op_type: "ReduceMin", since: 1, inputs: 1..=2, import: norm::reduce_min },
    Importer { op_type: "ReduceProd", since: 1, inputs: 1..=2, import: norm::reduce_prod },
    Importer { op_type: "ReduceL1", since: 1, inputs: 1..=2, import: norm::reduce_l1 },
    Importer { op_type: "ReduceL2", since: 1, inputs: 1..=2, import: norm::reduce_l2 },
    Importer { op_type: "ReduceLogSumExp", since: 1, inputs: 1..=2, import: norm::reduce_log_sum_exp },
    Importer { op_type: "ReduceSumSquare", since: 1, inputs: 1..=2, import: norm::reduce_sum_square },
    Importer { op_type: "Max", since: 6, inputs: 1..=MANY, import: elementwise::max },
    Importer { op_type: "Min", since: 6, inputs: 1..=MANY, import: elementwise::min },
    Importer { op_type: "Mean", since: 6, inputs: 1..=MANY, import: elementwise::mean },
    Importer { op_type: "Pow", since: 7, inputs: 2..=2, import: elementwise::pow },
    Importer { op_type: "PRelu", since: 7, inputs: 2..=2, import: elementwise::prelu },
    Importer { op_type: "Mod", since: 10, inputs: 2..=2, import: elementwise::modulo },
    Importer { op_type: "Equal", since: 7, inputs: 2..=2, import: elementwise::equal },
    Importer { op_type: "Less", since: 7, inputs: 2..=2, import: elementwise::less },
    Importer { op_type: "LessOrEqual", since: 12, inputs: 2..=2, import: elementwise::less_or_equal },
    Importer { op_type: "Greater", since: 7, inputs: 2..=2, import: elementwise::greater },
    Importer { op_type: "GreaterOrEqual", since: 12, inputs: 2..=2, import: elementwise::greater_or_equal },
    Importer { op_type: "And", since: 7, inputs: 2..=2, import: elementwise::and },
    Importer { op_type: "Or", since: 7, inputs: 2..=2, import: elementwise::or },
    Importer { op_type: "Xor", since: 7, inputs: 2..=2, import: elementwise::xor },
    Importer { op_type: "Not", since: 1, inputs: 1..=1, import: elementwise::not },
    Importer { op_type: "Where", since: 9, inputs: 3..=3, import: elementwise::where_ },
    Importer { op_type: "HardSigmoid", since: 6, inputs: 1..=1, import: elementwise::hard_sigmoid },
    Importer { op_type: "HardSwish", since: 14, inputs: 1..=1, import: elementwise::hard_swish },
    Importer { op_type: "Elu", since: 6, inputs: 1..=1, import: elementwise::elu },
    Importer { op_type: "Selu", since: 6, inputs: 1..=1, import: elementwise::selu },
    Importer { op_type: "Celu", since: 12, inputs: 1..=1, import: elementwise::celu },
    Importer { op_type: "ThresholdedRelu", since: 10, inputs: 1..=1, import: elementwise::thresholded_relu },
    Importer { op_type: "Softplus", since: 1, inputs: 1..=1, import: elementwise::softplus },
    Importer { op_type: "Softsign", since: 1, inputs: 1..=1, import: elementwise::softsign },
    Importer { op_type: "Mish", since: 18, inputs: 1..=1, import: elementwise::mish },
    Importer { op_type: "Gelu", since: 20, inputs: 1..=1, import: elementwise::gelu },
    Importer { op_type: "Erf", since: 9, inputs: 1..=1, import: elementwise::erf },
    Importer { op_type: "Exp", since: 6, inputs: 1..=1, import: elementwise::exp },
    Importer { op_type: "Log", since: 6, inputs: 1..=1, import: elementwise::log },
    Importer { op_type: "Sqrt", since: 6, inputs: 1..=1, import: elementwise::sqrt },
    Importer { op_type: "Abs", since: 6, inputs: 1..=1, import: elementwise::abs },
    Importer { op_type: "Neg", since: 6, inputs: 1..=1, import: elementwise::neg },
    Importer { op_type: "Reciprocal", since: 6, inputs: 1..=1, import: elementwise::reciprocal },
    Importer { op_type: "Floor", since: 6, inputs: 1..=1, import: elementwise::floor },
    Importer { op_type: "Ceil", since: 6, inputs: 1..=1, import: elementwise::ceil },
    Importer { op_type: "Round", since: 11, inputs: 1..=1, import: elementwise::round },
    Importer { op_type: "Sign", since: 9, inputs: 1..=1, import: elementwise::sign },
    Importer { op_type: "Einsum", since: 12, inputs: 1..=MANY, import: einsum::einsum },
    Importer { op_type: "LSTM", since: 7, inputs: 3..=8, import: recurrent::lstm },
    Importer { op_type: "GRU", since: 7, inputs: 3..=6, import: recurrent::gru },
    Importer { op_type: "RNN", since: 7, inputs: 3..=6, import: recurrent::rnn },
    Importer { op_type: "QuantizeLinear", since: 10, inputs: 2..=3, import: quantize::quantize_linear },
    Importer { op_type: "DequantizeLinear", since: 10, inputs: 2..=3, import: quantize::dequantize_linear },
    Importer { op_type: "DynamicQuantizeLinear", since: 11, inputs: 1..=1, import: quantize::dynamic_quantize_linear },
    Importer { op_type: "MatMulInteger", since: 10, inputs: 2..=4, import: quantize::matmul_integer },
    Importer { op_type: "ConvInteger", since: 10, inputs: 2..=4, import: quantize::conv_integer },
];

/// Why a node could not be imported.
pub enum ImportError {
    /// No importer for this op type (or not at this opset).
    Unsupported,
    /// The importer refused the node, with a reason.
    Invalid(String),
}

/// Imports one node of the default domain at `opset`.
pub fn import(ctx: &NodeCtx) -> Result<Imported, ImportError> {
    let op_type = ctx.node.op_type.as_str();
    let entry = REGISTRY
        .iter()
        .find(|e| e.op_type == op_type && ctx.opset >= e.since)
        .ok_or(ImportError::Unsupported)?;
    let n = ctx.node.input.len();
    if !entry.inputs.contains(&n) {
        let expected = match (*entry.inputs.start(), *entry.inputs.end()) {
            (a, b) if a == b => a.to_string(),
            (a, MANY) => format!("at least {a}"),
            (a, b) => format!("{a} to {b}"),
        };
        return Err(ImportError::Invalid(format!(
            "takes {expected} inputs, got {n}"
        )));
    }
    (entry.import)(ctx).map_err(ImportError::Invalid)
}

/// The op types lrpc imports, sorted.
pub fn supported_ops() -> Vec<&'static str> {
    let mut v: Vec<&str> = REGISTRY.iter().map(|e| e.op_type).collect();
    v.sort_unstable();
    v
}

#[cfg(test)]
mod tests;
