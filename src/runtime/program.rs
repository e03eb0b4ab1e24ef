//! A lowered program: steps over buffers, constants and index tables, with the kernels the steps
//! call described as data. It names nothing of the graph it came from (ports and steps carry
//! plain names), so an explainer loaded from an artifact runs it without the importer, the passes
//! or the relevance pass.

use super::elementwise::Kernel;
use super::gemm::ConvShape;
use super::slab::Slab;
use super::table::{TableKernel, WindowKernel};
use crate::ir::ops::{Lrn, Softmax};

/// Index of a buffer (an arena region the plan places).
pub type BufferId = usize;
/// Index of a kernel in [`Program::kernels`].
pub type KernelId = usize;

/// Where a step reads a value from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operand {
    Buffer(BufferId),
    /// A compile-time constant (weights, modified weights, per-channel factors).
    Const(usize),
}

/// A kernel a step calls, as the description it is emitted from.
#[derive(Clone, Debug, PartialEq)]
pub enum KernelDesc {
    Elementwise(Kernel),
    Table(TableKernel),
    Window {
        kernel: WindowKernel,
        backward: bool,
    },
}

impl KernelDesc {
    /// A short name for reports.
    pub fn kind(&self) -> &'static str {
        match self {
            KernelDesc::Elementwise(_) => "elementwise",
            KernelDesc::Table(_) => "table",
            KernelDesc::Window { .. } => "window",
        }
    }
}

/// One unit of work, in program order.
#[derive(Clone, Debug)]
pub enum Step {
    /// A fused element-wise kernel over `len` elements.
    Elementwise {
        kernel: KernelId,
        inputs: Vec<Operand>,
        out: BufferId,
        len: usize,
    },
    /// A gather (or one input's scatter of a Concat) through table `table`.
    Table {
        kernel: KernelId,
        src: Operand,
        table: usize,
        out: BufferId,
        len: usize,
    },
    /// A pooling window (forward reads `x`; backward reads `x` and `dy`); `counts` is the
    /// constant of per-output divisors.
    Window {
        kernel: KernelId,
        x: Operand,
        dy: Option<Operand>,
        table: usize,
        counts: usize,
        out: BufferId,
        planes: usize,
    },
    /// y = conv(x, w) + bias; `col` is the im2col scratch (sized for the executable's threads).
    Conv {
        conv: ConvShape,
        x: Operand,
        w: Operand,
        bias: Option<Operand>,
        out: BufferId,
        col: Option<BufferId>,
    },
    /// dx = conv^T(dy, w).
    ConvTranspose {
        conv: ConvShape,
        dy: Operand,
        w: Operand,
        out: BufferId,
        col: Option<BufferId>,
    },
    /// out[m, n] = alpha * A B (+ beta * C broadcast through table `c.1`).
    Gemm {
        dims: (usize, usize, usize),
        a: Operand,
        a_strides: (usize, usize),
        b: Operand,
        b_strides: (usize, usize),
        alpha: f32,
        c: Option<(Operand, usize, f32)>,
        out: BufferId,
    },
    /// Batched out[i] = A[ia] B[ib] over the broadcast batch pairs.
    MatMul {
        dims: (usize, usize, usize),
        pairs: Vec<(usize, usize)>,
        a: Operand,
        b: Operand,
        out: BufferId,
    },
    Softmax {
        op: Softmax,
        shape: Vec<usize>,
        x: Operand,
        out: BufferId,
    },
    Lrn {
        op: Lrn,
        shape: Vec<usize>,
        x: Operand,
        dy: Option<Operand>,
        out: BufferId,
    },
    /// An embedding lookup (Gather whose indices are computed): out[o, i, k] =
    /// data[o, ids[i], k] over `outer` x `ids` x `inner`, with `rows` rows on the gathered axis.
    /// The ids are integers carried as f32; a negative id counts from the end, one outside
    /// [-rows, rows) stops the run with an error.
    Lookup {
        outer: usize,
        rows: usize,
        inner: usize,
        ids: usize,
        data: Operand,
        indices: Operand,
        out: BufferId,
    },
    /// out[0] = sum of `len` elements of `src` (the layer report).
    Total {
        src: Operand,
        len: usize,
        out: BufferId,
    },
}

impl Step {
    /// Operands read, then buffers written.
    pub fn operands(&self) -> (Vec<Operand>, Vec<BufferId>) {
        match self {
            Step::Elementwise { inputs, out, .. } => (inputs.clone(), vec![*out]),
            Step::Table { src, out, .. } => (vec![*src], vec![*out]),
            Step::Window {
                x, dy, counts, out, ..
            } => (
                [*x, Operand::Const(*counts)]
                    .into_iter()
                    .chain(*dy)
                    .collect(),
                vec![*out],
            ),
            Step::Conv {
                x,
                w,
                bias,
                out,
                col,
                ..
            } => (
                [*x, *w].into_iter().chain(*bias).collect(),
                std::iter::once(*out).chain(*col).collect(),
            ),
            Step::ConvTranspose {
                dy, w, out, col, ..
            } => (vec![*dy, *w], std::iter::once(*out).chain(*col).collect()),
            Step::Gemm { a, b, c, out, .. } => (
                [*a, *b].into_iter().chain(c.map(|c| c.0)).collect(),
                vec![*out],
            ),
            Step::MatMul { a, b, out, .. } => (vec![*a, *b], vec![*out]),
            Step::Softmax { x, out, .. } => (vec![*x], vec![*out]),
            Step::Lrn { x, dy, out, .. } => (std::iter::once(*x).chain(*dy).collect(), vec![*out]),
            Step::Lookup {
                data, indices, out, ..
            } => (vec![*data, *indices], vec![*out]),
            Step::Total { src, out, .. } => (vec![*src], vec![*out]),
        }
    }

    /// The kernel the step calls, if it calls an emitted one.
    pub fn kernel(&self) -> Option<KernelId> {
        match self {
            Step::Elementwise { kernel, .. }
            | Step::Table { kernel, .. }
            | Step::Window { kernel, .. } => Some(*kernel),
            _ => None,
        }
    }

    /// A short name for reports.
    pub fn kind(&self) -> &'static str {
        match self {
            Step::Elementwise { .. } => "elementwise",
            Step::Table { .. } => "table",
            Step::Window { .. } => "window",
            Step::Conv { .. } => "conv",
            Step::ConvTranspose { .. } => "conv-transpose",
            Step::Gemm { .. } => "gemm",
            Step::MatMul { .. } => "matmul",
            Step::Softmax { .. } => "softmax",
            Step::Lrn { .. } => "lrn",
            Step::Lookup { .. } => "lookup",
            Step::Total { .. } => "total",
        }
    }

    /// Multiply-adds of a GEMM-shaped step (0 for others), for GFLOP/s reports.
    pub fn multiply_adds(&self) -> usize {
        match self {
            Step::Conv { conv, .. } | Step::ConvTranspose { conv, .. } => conv.multiply_adds(),
            Step::Gemm { dims, .. } => dims.0 * dims.1 * dims.2,
            Step::MatMul { dims, pairs, .. } => dims.0 * dims.1 * dims.2 * pairs.len(),
            _ => 0,
        }
    }
}

/// A value the host writes or reads: its buffer (or constant) and shape.
#[derive(Clone, Debug, PartialEq)]
pub struct Port {
    pub name: String,
    pub operand: Operand,
    pub shape: Vec<usize>,
}

/// A lowered graph: steps over buffers and constants, ready for the memory plan.
#[derive(Clone, Debug, Default)]
pub struct Program {
    /// Length (f32 elements) of each buffer. Conv scratch buffers are sized for `threads` and
    /// resized when an executable runs with another count.
    pub buffers: Vec<usize>,
    pub consts: Vec<Slab<f32>>,
    pub tables: Vec<Slab<i32>>,
    pub kernels: Vec<KernelDesc>,
    pub steps: Vec<Step>,
    /// Which node each step came from (for error messages and reports).
    pub step_names: Vec<String>,
    /// Steps before this index do not depend on the late inputs (the seed).
    pub split: usize,
    /// What the host writes, in the order the graph lists its inputs (always buffers).
    pub inputs: Vec<Port>,
    /// What the host reads back, in the order they were asked for.
    pub outputs: Vec<Port>,
    /// Layer totals: one-element buffers holding the sum of a node's value.
    pub totals: Vec<Port>,
    /// Buffers that must survive to the end of the run.
    pub kept: Vec<BufferId>,
    /// The worker count the scratch buffers were sized for.
    pub threads: usize,
}

impl Program {
    /// Elements of operand `o`.
    pub fn operand_len(&self, o: Operand) -> usize {
        match o {
            Operand::Buffer(b) => self.buffers[b],
            Operand::Const(c) => self.consts[c].len(),
        }
    }
}
