//! Lowering: every node of a prepared graph becomes a step over buffers, with no interpreter
//! left at run time. Chains of element-wise nodes fuse into one kernel; Conv, Gemm and MatMul and
//! their adjoints become GEMM steps; pools become window kernels; data movement becomes table
//! kernels; reshapes become aliases of their input's buffer. Kernels are described, not emitted:
//! identical descriptions are one kernel, and the runtime compiles (or maps) them.

use std::collections::HashMap;

use crate::error::{Error, OpResult, Result};
use crate::interp;
use crate::ir::ops::gemm::matmul_dims;
use crate::ir::ops::resize::Interpolation;
use crate::ir::ops::{
    Activation, BinaryOp, Concat, Gemm, GlobalPool, Lrn, Op, Plane, Pool, PoolIndices, PoolKind,
};
use crate::ir::{DType, Graph, NodeIndex, Tensor, numel};
use crate::runtime::elementwise::{Access, Instr, Kernel};
use crate::runtime::gemm::{ConvGemm, ConvShape};
use crate::runtime::program::{BufferId, KernelDesc, KernelId, Operand, Port, Program, Step};
use crate::runtime::slab::Slab;
use crate::runtime::table::{NONE, Reduce, TableKernel, WindowKernel};
use crate::{op_bail, op_ensure};

/// What the caller wants from a lowering.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// Nodes whose whole value the host reads.
    pub outputs: &'a [NodeIndex],
    /// Nodes whose sum the host reads (the layer report).
    pub totals: &'a [NodeIndex],
    /// Inputs written after the first phase (the seed); steps that depend on them run second.
    pub late: &'a [NodeIndex],
    /// Worker threads the executable will run with (GEMM tiling and scratch depend on it).
    pub threads: usize,
}

/// The largest tensor a movement table can describe exactly (indices travel as f32 through the
/// interpreter's op when the table is built).
const TABLE_LIMIT: usize = 1 << 24;

struct Lowering<'g> {
    graph: &'g Graph,
    p: Program,
    /// Kernel descriptions already in `p.kernels`, by their debug text (descriptions hold
    /// floats, so they are not `Eq`; the text of equal descriptions is equal).
    kernel_ids: HashMap<String, KernelId>,
    values: HashMap<NodeIndex, Operand>,
    consts: HashMap<NodeIndex, usize>,
    /// Element-wise nodes computed inside their single consumer's kernel.
    fused: HashMap<NodeIndex, NodeIndex>,
    protected: Vec<NodeIndex>,
    threads: usize,
}

/// Lowers `graph` (prepared, all shapes known) as `request` asks.
pub fn lower(graph: &Graph, request: &Request) -> Result<Program> {
    let split;
    let graph = match split_conv_transpose_bias(graph)? {
        Some(g) => {
            split = g;
            &split
        }
        None => graph,
    };
    let order = graph.topo_order().map_err(|cycle| Error::Graph {
        file: graph.source.clone(),
        reason: format!("the graph has a cycle through {} nodes", cycle.len()),
    })?;
    // Seed-dependent nodes run in the second phase; everything else first, in topological order.
    let mut late: HashMap<NodeIndex, bool> = HashMap::new();
    for &n in &order {
        let l = request.late.contains(&n) || graph.inputs_of(n).iter().any(|i| late[i]);
        late.insert(n, l);
    }
    let (first, second): (Vec<NodeIndex>, Vec<NodeIndex>) = order.iter().partition(|n| !late[n]);
    let mut protected: Vec<NodeIndex> = request.outputs.to_vec();
    protected.extend(request.totals);
    let mut l = Lowering {
        graph,
        p: Program {
            threads: request.threads.max(1),
            ..Program::default()
        },
        kernel_ids: HashMap::new(),
        values: HashMap::new(),
        consts: HashMap::new(),
        fused: HashMap::new(),
        protected,
        threads: request.threads.max(1),
    };
    l.decide_fusion(&order);
    for (phase, nodes) in [first, second].into_iter().enumerate() {
        if phase == 1 {
            l.p.split = l.p.steps.len();
        }
        for n in nodes {
            l.node(n).map_err(|e| interp::node_error(graph, n, e))?;
        }
    }
    for &n in request.outputs {
        let v = l.operand(n).map_err(|e| interp::node_error(graph, n, e))?;
        if let Operand::Buffer(b) = v {
            l.p.kept.push(b);
        }
        let port = l.port(n, v);
        l.p.outputs.push(port);
    }
    for &n in request.totals {
        let src = l.operand(n).map_err(|e| interp::node_error(graph, n, e))?;
        let out = l.buffer(1);
        l.push(
            n,
            Step::Total {
                src,
                len: numel(&graph.fact(n).shape),
                out,
            },
        );
        l.p.kept.push(out);
        let port = Port {
            shape: vec![1],
            ..l.port(n, Operand::Buffer(out))
        };
        l.p.totals.push(port);
    }
    // Inputs in the graph's order (lowering met them in topological order).
    let order: Vec<String> = graph
        .inputs
        .iter()
        .map(|&i| graph.node(i).name.clone())
        .collect();
    l.p.inputs
        .sort_by_key(|port| order.iter().position(|n| *n == port.name));
    if cfg!(debug_assertions) {
        crate::runtime::validate::program(&l.p).map_err(|e| Error::Graph {
            file: graph.source.clone(),
            reason: format!("internal error: lowering made an invalid program: {e}"),
        })?;
    }
    Ok(l.p)
}

/// The most terms one element of a weighted gather sums (a linear Resize adds 2^axes; its
/// adjoint, for an upsampling by s, about (2s)^axes).
const MAX_TERMS: usize = 64;

fn elementwise_op(op: &Op) -> bool {
    matches!(
        op,
        Op::Binary(_)
            | Op::Sum
            | Op::Where
            | Op::Pointwise(_)
            | Op::Activation(_)
            | Op::ActivationGrad(_)
            | Op::BatchNorm(_)
    ) || matches!(op, Op::Cast(c) if c.boolean || c.to == DType::I64)
}

/// Whether compiled code computes `op` exactly on integer values carried as f32 (integers
/// below 2^24, as the inputs are checked to be): not integer division, remainders or powers,
/// which round differently than their f32 forms.
fn exact_on_integers(op: &Op) -> bool {
    !matches!(
        op,
        Op::Binary(BinaryOp::Div | BinaryOp::Mod | BinaryOp::FMod | BinaryOp::Pow)
    )
}

impl Lowering<'_> {
    fn shape(&self, n: NodeIndex) -> &[usize] {
        &self.graph.fact(n).shape
    }

    fn buffer(&mut self, len: usize) -> BufferId {
        self.p.buffers.push(len);
        self.p.buffers.len() - 1
    }

    fn push(&mut self, origin: NodeIndex, step: Step) {
        self.p.steps.push(step);
        self.p.step_names.push(self.graph.node(origin).name.clone());
    }

    /// The kernel `desc` describes (one per distinct description).
    fn kernel(&mut self, desc: KernelDesc) -> OpResult<KernelId> {
        if let KernelDesc::Elementwise(k) = &desc {
            k.validate()?;
        }
        let key = format!("{desc:?}");
        if let Some(&k) = self.kernel_ids.get(&key) {
            return Ok(k);
        }
        self.p.kernels.push(desc);
        let k = self.p.kernels.len() - 1;
        self.kernel_ids.insert(key, k);
        Ok(k)
    }

    /// Node `n`'s value as a port named after it.
    fn port(&self, n: NodeIndex, operand: Operand) -> Port {
        Port {
            name: self.graph.node(n).name.clone(),
            operand,
            shape: self.shape(n).to_vec(),
        }
    }

    fn is_const(&self, n: NodeIndex) -> bool {
        self.graph.constant(n).is_some()
    }

    /// A producer fuses into its consumer when it is element-wise, not read by the host, has
    /// exactly one consuming node which is element-wise too, and has the consumer's shape.
    fn decide_fusion(&mut self, order: &[NodeIndex]) {
        for &n in order {
            let node = self.graph.node(n);
            if !elementwise_op(&node.op) || self.is_const(n) || self.protected.contains(&n) {
                continue;
            }
            let consumers = self.graph.consumers_of(n);
            let Some(&(c, _)) = consumers.first() else {
                continue;
            };
            if consumers.iter().all(|&(x, _)| x == c)
                && elementwise_op(&self.graph.node(c).op)
                && !self.is_const(c)
                && self.shape(c) == self.shape(n)
            {
                self.fused.insert(n, c);
            }
        }
    }

    /// The operand holding node `n`'s value.
    fn operand(&mut self, n: NodeIndex) -> OpResult<Operand> {
        if let Some(&v) = self.values.get(&n) {
            return Ok(v);
        }
        if let Some(&c) = self.consts.get(&n) {
            return Ok(Operand::Const(c));
        }
        let Some(t) = self.graph.constant(n) else {
            op_bail!(
                "node '{}' has no value at this point (internal lowering order error)",
                self.graph.node(n).name
            );
        };
        self.p.consts.push(Slab::from_tensor(t));
        let id = self.p.consts.len() - 1;
        self.consts.insert(n, id);
        Ok(Operand::Const(id))
    }

    fn constant(&mut self, values: Vec<f32>) -> usize {
        self.p.consts.push(Slab::owned(values));
        self.p.consts.len() - 1
    }

    fn table(&mut self, t: Vec<i32>) -> usize {
        self.p.tables.push(Slab::owned(t));
        self.p.tables.len() - 1
    }

    /// A new buffer for node `n`'s value.
    fn define(&mut self, n: NodeIndex) -> BufferId {
        let b = self.buffer(numel(self.shape(n)));
        self.values.insert(n, Operand::Buffer(b));
        b
    }

    fn node(&mut self, n: NodeIndex) -> OpResult<()> {
        let graph = self.graph;
        let node = graph.node(n);
        if self.fused.contains_key(&n) {
            return Ok(());
        }
        if matches!(node.op, Op::Input) {
            let b = self.define(n);
            let port = self.port(n, Operand::Buffer(b));
            self.p.inputs.push(port);
            return Ok(());
        }
        if let Some(t) = graph.constant(n) {
            // Non-f32 constants (shapes, indices) are only read at compile time.
            if t.dtype() == DType::F32 || graph.consumers_of(n).is_empty() {
                self.operand(n)?;
            }
            return Ok(());
        }
        let ins = graph.inputs_of(n);
        let fact = graph.fact(n);
        op_ensure!(
            fact.dtype == DType::F32
                || (elementwise_op(&node.op) && exact_on_integers(&node.op))
                || matches!(node.op, Op::Cast(_) | Op::Identity | Op::Hold)
                || node.op.is_data_movement(),
            "computes a {:?} value at run time; compiled code carries integers as f32 only \
             through element-wise ops, casts and data movement",
            fact.dtype
        );
        match &node.op {
            Op::Input | Op::Const(_) => unreachable!("handled above"),
            op if elementwise_op(op) => self.elementwise(n),
            Op::Flatten(_)
            | Op::Reshape(_)
            | Op::Squeeze(_)
            | Op::Unsqueeze(_)
            | Op::Identity
            | Op::Hold
            | Op::Cast(_) => {
                let v = self.operand(ins[0])?;
                self.values.insert(n, v);
                Ok(())
            }
            Op::Conv(c) => {
                let conv = self.conv_shape(c, self.shape(ins[0]), self.shape(ins[1]))?;
                let (x, w) = (self.operand(ins[0])?, self.operand(ins[1])?);
                let bias = ins.get(2).map(|&b| self.operand(b)).transpose()?;
                let out = self.define(n);
                let scratch = ConvGemm::new(conv, self.threads).forward_scratch();
                let col = (scratch > 0).then(|| self.buffer(scratch));
                self.push(
                    n,
                    Step::Conv {
                        conv,
                        x,
                        w,
                        bias,
                        out,
                        col,
                    },
                );
                Ok(())
            }
            Op::ConvTranspose(c) => {
                let conv = self.conv_shape(&c.conv, &c.input_shape, self.shape(ins[1]))?;
                if let Some((flipped, weights)) = self.flipped(&conv, ins[1])? {
                    // Stride 1: the adjoint is a Conv of dy with the flipped, transposed
                    // weights (made once, here), tiled like any forward Conv.
                    let dy = self.operand(ins[0])?;
                    let w = Operand::Const(self.constant(weights));
                    let out = self.define(n);
                    let scratch = ConvGemm::new(flipped, self.threads).forward_scratch();
                    let col = (scratch > 0).then(|| self.buffer(scratch));
                    self.push(
                        n,
                        Step::Conv {
                            conv: flipped,
                            x: dy,
                            w,
                            bias: None,
                            out,
                            col,
                        },
                    );
                    return Ok(());
                }
                let (dy, w) = (self.operand(ins[0])?, self.operand(ins[1])?);
                let out = self.define(n);
                let scratch = ConvGemm::new(conv, self.threads).backward_scratch();
                let col = (scratch > 0).then(|| self.buffer(scratch));
                self.push(
                    n,
                    Step::ConvTranspose {
                        conv,
                        dy,
                        w,
                        out,
                        col,
                    },
                );
                Ok(())
            }
            Op::Gemm(g) => self.gemm(n, g, &ins),
            Op::MatMul => {
                let (sa, sb) = (self.shape(ins[0]).to_vec(), self.shape(ins[1]).to_vec());
                let d = matmul_dims(&sa, &sb)?;
                let promote = |s: &[usize], row: bool| -> Vec<usize> {
                    match (s.len(), row) {
                        (1, true) => vec![1, s[0]],
                        (1, false) => vec![s[0], 1],
                        _ => s.to_vec(),
                    }
                };
                let (pa, pb) = (promote(&sa, true), promote(&sb, false));
                let ma = interp::broadcast_map(&pa[..pa.len() - 2], &d.batch);
                let mb = interp::broadcast_map(&pb[..pb.len() - 2], &d.batch);
                let (a, b) = (self.operand(ins[0])?, self.operand(ins[1])?);
                let out = self.define(n);
                self.push(
                    n,
                    Step::MatMul {
                        dims: (d.m, d.k, d.n),
                        pairs: ma.into_iter().zip(mb).collect(),
                        a,
                        b,
                        out,
                    },
                );
                Ok(())
            }
            Op::Pool(p) => self.pool(n, p, &ins, false),
            Op::PoolIndices(p) => self.pool_indices(n, p, &ins),
            Op::PoolBackward(p) => self.pool(n, &p.pool, &ins, true),
            Op::GlobalPool(g) => self.global_pool(n, *g, &ins, false),
            Op::GlobalPoolBackward(g) => self.global_pool(n, g.pool, &ins, true),
            Op::Softmax(s) => {
                let x = self.operand(ins[0])?;
                let shape = self.shape(ins[0]).to_vec();
                let out = self.define(n);
                self.push(
                    n,
                    Step::Softmax {
                        op: s.clone(),
                        shape,
                        x,
                        out,
                    },
                );
                Ok(())
            }
            Op::Lrn(lrn) => self.lrn(n, lrn, &ins, false),
            Op::LrnBackward(b) => self.lrn(n, &b.lrn, &ins, true),
            Op::Concat(c) => self.concat(n, c, &ins),
            Op::Gather(g) if graph.constant(ins[1]).is_none() => self.lookup(n, g.axis, &ins),
            Op::Transpose(_)
            | Op::Slice(_)
            | Op::SplitPart(_)
            | Op::DepthSpace(_)
            | Op::Expand
            | Op::Tile
            | Op::Pad(_)
            | Op::Gather(_)
            | Op::SliceBackward(_) => self.movement(n, &ins),
            Op::Resize(r) => {
                let second = ins.get(1).and_then(|&i| graph.constant(i)).map(|t| &**t);
                let r = r.resolve(second)?;
                if matches!(r.interpolation, Interpolation::Nearest(_)) {
                    return self.movement(n, &ins);
                }
                let taps: Vec<(usize, usize, f32)> = r
                    .taps(self.shape(ins[0]))?
                    .into_iter()
                    .map(|t| (t.dst, t.src, t.weight))
                    .collect();
                let src = self.operand(ins[0])?;
                self.weighted_gathers(n, src, taps)
            }
            Op::MovementAdjoint(m) => {
                let table = interp::movement_table(&m.forward, &m.args, &m.input_shape)?;
                let taps = table
                    .into_iter()
                    .enumerate()
                    .filter_map(|(j, src)| src.map(|i| (i, j, 1.0)))
                    .collect();
                let src = self.operand(ins[0])?;
                self.weighted_gathers(n, src, taps)
            }
            Op::ResizeBackward(b) => {
                // The forward taps transposed: each input element sums the outputs it fed.
                let taps: Vec<(usize, usize, f32)> = b
                    .resize
                    .taps(&b.input_shape)?
                    .into_iter()
                    .map(|t| (t.src, t.dst, t.weight))
                    .collect();
                let src = self.operand(ins[0])?;
                self.weighted_gathers(n, src, taps)
            }
            Op::Shape(_) | Op::ConstantOfShape(_) => {
                op_bail!("depends on run-time data; compiled code needs it folded to a constant")
            }
            other => op_bail!("has no lowering for {}", other.name()),
        }
    }

    fn conv_shape(
        &self,
        c: &crate::ir::ops::Conv,
        x: &[usize],
        w: &[usize],
    ) -> OpResult<ConvShape> {
        let g = c.geometry(x, w)?;
        Ok(ConvShape {
            batch: x[0],
            cin: x[1],
            cout: w[0],
            group: c.group,
            plane: Plane::new(&g)?,
        })
    }

    /// For a stride-1 Conv with constant weights whose padding is at most the kernel's extent
    /// (every usual one): the Conv computing its adjoint, and that Conv's weights w'[ci, co, a,
    /// b] = w[co, ci, kh-1-a, kw-1-b] (per group).
    fn flipped(&self, c: &ConvShape, w: NodeIndex) -> OpResult<Option<(ConvShape, Vec<f32>)>> {
        let p = c.plane;
        let (eh, ew) = ((p.kh - 1) * p.dh, (p.kw - 1) * p.dw);
        let fits = p.sh == 1 && p.sw == 1 && p.pt.max(p.pb) <= eh && p.pl.max(p.pr) <= ew;
        let Some(wt) = self.graph.constant(w) else {
            return Ok(None);
        };
        // The flip below is per plane; a 3-D Conv's adjoint takes the general path.
        if !fits || c.direct() || !p.depth.is_flat() {
            // A 1x1 unpadded Conv's adjoint is already one GEMM per tile.
            return Ok(None);
        }
        let ws = wt.f32s()?;
        let (mg, cg, taps) = (c.cout / c.group, c.cin / c.group, p.kh * p.kw);
        let mut flipped = vec![0f32; ws.len()];
        for g in 0..c.group {
            for co in 0..mg {
                for ci in 0..cg {
                    for t in 0..taps {
                        let src = ((g * mg + co) * cg + ci) * taps + t;
                        let dst = ((g * cg + ci) * mg + co) * taps + (taps - 1 - t);
                        flipped[dst] = ws[src];
                    }
                }
            }
        }
        let plane = Plane {
            ih: p.oh,
            iw: p.ow,
            oh: p.ih,
            ow: p.iw,
            pt: eh - p.pt,
            pb: eh - p.pb,
            pl: ew - p.pl,
            pr: ew - p.pr,
            ..p
        };
        let conv = ConvShape {
            batch: c.batch,
            cin: c.cout,
            cout: c.cin,
            group: c.group,
            plane,
        };
        Ok(Some((conv, flipped)))
    }

    fn gemm(&mut self, n: NodeIndex, g: &Gemm, ins: &[NodeIndex]) -> OpResult<()> {
        let (sa, sb) = (self.shape(ins[0]).to_vec(), self.shape(ins[1]).to_vec());
        let (m, k, nn) = g.dims(&sa, &sb)?;
        // Row-major [r, c] read as its transpose has strides (1, c).
        let strides = |s: &[usize], t: bool| if t { (1, s[1]) } else { (s[1], 1) };
        let (a, b) = (self.operand(ins[0])?, self.operand(ins[1])?);
        let c = match ins.get(2) {
            Some(&c) if g.beta != 0.0 => {
                let map = interp::broadcast_map(self.shape(c), &[m, nn]);
                let table = self.table(map.into_iter().map(|i| i as i32).collect());
                Some((self.operand(c)?, table, g.beta))
            }
            _ => None,
        };
        let out = self.define(n);
        self.push(
            n,
            Step::Gemm {
                dims: (m, k, nn),
                a,
                a_strides: strides(&sa, g.trans_a),
                b,
                b_strides: strides(&sb, g.trans_b),
                alpha: g.alpha,
                c,
                out,
            },
        );
        Ok(())
    }

    fn lrn(&mut self, n: NodeIndex, lrn: &Lrn, ins: &[NodeIndex], backward: bool) -> OpResult<()> {
        let x = self.operand(ins[0])?;
        let dy = backward.then(|| self.operand(ins[1])).transpose()?;
        let shape = self.shape(ins[0]).to_vec();
        let out = self.define(n);
        self.push(
            n,
            Step::Lrn {
                op: lrn.clone(),
                shape,
                x,
                dy,
                out,
            },
        );
        Ok(())
    }

    /// A window kernel; `taps` lists, for every output of one plane, its input indices.
    #[allow(clippy::too_many_arguments)]
    fn window(
        &mut self,
        n: NodeIndex,
        ins: &[NodeIndex],
        kernel: WindowKernel,
        table: Vec<i32>,
        counts: Vec<f32>,
        backward: bool,
        planes: usize,
    ) -> OpResult<()> {
        op_ensure!(
            table.len() == kernel.outputs * kernel.taps
                && counts.len() == kernel.outputs
                && kernel.in_plane > 0
                && table
                    .iter()
                    .all(|&t| t == NONE || (t >= 0 && (t as usize) < kernel.in_plane)),
            "internal error: a pooling table does not fit its plane"
        );
        let kernel = self.kernel(KernelDesc::Window { kernel, backward })?;
        let x = self.operand(ins[0])?;
        let dy = backward.then(|| self.operand(ins[1])).transpose()?;
        let table = self.table(table);
        let counts = self.constant(counts);
        let out = self.define(n);
        self.push(
            n,
            Step::Window {
                kernel,
                x,
                dy,
                table,
                counts,
                out,
                planes,
            },
        );
        Ok(())
    }

    /// MaxPool's indices (and lowered ArgMax): the max pool's table with an Indices reduction.
    fn pool_indices(&mut self, n: NodeIndex, p: &PoolIndices, ins: &[NodeIndex]) -> OpResult<()> {
        let x = self.shape(ins[0]).to_vec();
        let pl = Plane::new(&p.pool.geometry(&x)?)?;
        let largest = if p.whole_tensor {
            numel(&x)
        } else {
            pl.ih * pl.iw
        };
        op_ensure!(
            largest <= 1 << 24,
            "indices into {largest} elements are not exact in the f32 that compiled code carries integers in (at most 2^24); run with --backend interp"
        );
        let reduce = Reduce::Indices {
            whole_tensor: p.whole_tensor,
            last: p.last,
            column_height: if p.column_major { pl.ih } else { 0 },
        };
        self.pool_with(n, &p.pool, ins, false, Some(reduce))
    }

    fn pool(&mut self, n: NodeIndex, p: &Pool, ins: &[NodeIndex], backward: bool) -> OpResult<()> {
        self.pool_with(n, p, ins, backward, None)
    }

    fn pool_with(
        &mut self,
        n: NodeIndex,
        p: &Pool,
        ins: &[NodeIndex],
        backward: bool,
        indices: Option<Reduce>,
    ) -> OpResult<()> {
        let x = self.shape(ins[0]).to_vec();
        let pl = Plane::new(&p.geometry(&x)?)?;
        let taps = pl.kh * pl.kw;
        let mut table = Vec::with_capacity(pl.oh * pl.ow * taps);
        let mut counts = Vec::with_capacity(pl.oh * pl.ow);
        for oh in 0..pl.oh {
            for ow in 0..pl.ow {
                let (mut real, mut padded) = (0usize, 0usize);
                for kh in 0..pl.kh {
                    for kw in 0..pl.kw {
                        if pl.in_padding((oh, ow), (kh, kw)) {
                            padded += 1;
                        }
                        match (pl.row(oh, kh), pl.col(ow, kw)) {
                            (Some(ih), Some(iw)) => {
                                real += 1;
                                table.push((ih * pl.iw + iw) as i32);
                            }
                            _ => table.push(NONE),
                        }
                    }
                }
                let count = match p.kind {
                    PoolKind::Average {
                        count_include_pad: true,
                    } => padded,
                    _ => real,
                };
                counts.push(count.max(1) as f32);
            }
        }
        let reduce = indices.unwrap_or(match p.kind {
            PoolKind::Max => Reduce::Max,
            PoolKind::Average { .. } => Reduce::Average,
        });
        let kernel = WindowKernel {
            reduce,
            in_plane: pl.ih * pl.iw,
            outputs: pl.oh * pl.ow,
            taps,
        };
        self.window(n, ins, kernel, table, counts, backward, x[0] * x[1])
    }

    fn global_pool(
        &mut self,
        n: NodeIndex,
        g: GlobalPool,
        ins: &[NodeIndex],
        backward: bool,
    ) -> OpResult<()> {
        let x = self.shape(ins[0]).to_vec();
        let plane = numel(&x[2..]);
        let reduce = match g {
            GlobalPool::Max => Reduce::Max,
            GlobalPool::Average => Reduce::Average,
        };
        let kernel = WindowKernel {
            reduce,
            in_plane: plane,
            outputs: 1,
            taps: plane,
        };
        let table = (0..plane as i32).collect();
        self.window(
            n,
            ins,
            kernel,
            table,
            vec![plane as f32],
            backward,
            x[0] * x[1],
        )
    }

    /// A Gather of computed indices (token ids into an embedding table) as a Lookup step.
    fn lookup(&mut self, n: NodeIndex, axis: i64, ins: &[NodeIndex]) -> OpResult<()> {
        let shape = self.shape(ins[0]).to_vec();
        let axis = crate::ir::ops::util::norm_axis(axis, shape.len())?;
        let ids = self.shape(ins[1]).iter().product();
        let (outer, rows, inner) = (
            shape[..axis].iter().product(),
            shape[axis],
            shape[axis + 1..].iter().product(),
        );
        let data = self.operand(ins[0])?;
        let indices = self.operand(ins[1])?;
        let out = self.define(n);
        self.push(
            n,
            Step::Lookup {
                outer,
                rows,
                inner,
                ids,
                data,
                indices,
                out,
            },
        );
        Ok(())
    }

    /// Builds the gather table of a single-input movement op by running the interpreter's op on
    /// the input's indices (+1, so 0 marks a filled position): the table then means exactly
    /// what the reference op does.
    fn movement(&mut self, n: NodeIndex, ins: &[NodeIndex]) -> OpResult<()> {
        let graph = self.graph;
        let op = &graph.node(n).op;
        let fill = match op {
            Op::Pad(p) => p.value,
            _ => 0.0,
        };
        // movement_table refuses inputs beyond the table limit.
        let shape = self.shape(ins[0]).to_vec();
        let mut args = Vec::with_capacity(ins.len() - 1);
        for &i in &ins[1..] {
            let Some(c) = graph.constant(i) else {
                op_bail!("input {i:?} must be a constant for compiled code");
            };
            args.push(c.clone());
        }
        let table = interp::movement_table(op, &args, &shape)?
            .into_iter()
            .map(|src| src.map_or(-1, |i| i as i32))
            .collect();
        let src = self.operand(ins[0])?;
        self.gather(n, src, table, fill)
    }

    /// out[d] = sum of w * src[s] over the (d, s, w) terms: one gather per term slot (the k-th
    /// term of every output element), then one element-wise weighted sum.
    fn weighted_gathers(
        &mut self,
        n: NodeIndex,
        src: Operand,
        terms: Vec<(usize, usize, f32)>,
    ) -> OpResult<()> {
        let len = numel(self.shape(n));
        let mut count = vec![0usize; len];
        for &(d, _, _) in &terms {
            op_ensure!(d < len, "internal: a term for element {d} of {len}");
            count[d] += 1;
        }
        let slots = count.iter().copied().max().unwrap_or(0).max(1);
        op_ensure!(
            slots <= MAX_TERMS,
            "an output element sums {slots} input elements; compiled code takes at most {MAX_TERMS}"
        );
        op_ensure!(
            len < TABLE_LIMIT,
            "output of {len} elements is too large for a table"
        );
        let mut tables = vec![vec![-1i32; len]; slots];
        let mut weights = vec![vec![0f32; len]; slots];
        count.iter_mut().for_each(|c| *c = 0);
        for (d, s, w) in terms {
            let k = count[d];
            tables[k][d] = s as i32;
            weights[k][d] = w;
            count[d] += 1;
        }
        let mut k = KernelBuilder::default();
        let mut acc = None;
        for (table, w) in tables.into_iter().zip(weights) {
            let gathered = self.buffer(len);
            self.table_step(n, TableKernel::Gather { fill: 0.0 }, src, table, gathered)?;
            let g = k.load(Operand::Buffer(gathered), Access::Full);
            let c = Operand::Const(self.constant(w));
            let c = k.load(c, Access::Full);
            let term = k.push(Instr::Binary(BinaryOp::Mul, g, c));
            acc = Some(match acc {
                None => term,
                Some(a) => k.push(Instr::Binary(BinaryOp::Add, a, term)),
            });
        }
        let kernel = Kernel {
            inputs: k.accesses,
            body: k.body,
            output: acc.unwrap_or(0),
        };
        let kernel = self.kernel(KernelDesc::Elementwise(kernel))?;
        let out = self.define(n);
        self.push(
            n,
            Step::Elementwise {
                kernel,
                inputs: k.operands,
                out,
                len,
            },
        );
        Ok(())
    }

    /// out = gather(src, table) into a new buffer for `n`.
    fn gather(&mut self, n: NodeIndex, src: Operand, table: Vec<i32>, fill: f32) -> OpResult<()> {
        let len = table.len();
        let out = self.define(n);
        op_ensure!(
            self.p.buffers[out] == len,
            "internal error: a table of {len} entries for a value of {}",
            self.p.buffers[out]
        );
        self.table_step(n, TableKernel::Gather { fill }, src, table, out)
    }

    /// A gather or scatter step of `kind` through `table`, from `src` into buffer `out`.
    fn table_step(
        &mut self,
        n: NodeIndex,
        kind: TableKernel,
        src: Operand,
        table: Vec<i32>,
        out: BufferId,
    ) -> OpResult<()> {
        let kernel = self.kernel(KernelDesc::Table(kind))?;
        let len = table.len();
        let table = self.table(table);
        self.push(
            n,
            Step::Table {
                kernel,
                src,
                table,
                out,
                len,
            },
        );
        Ok(())
    }

    /// Concat as one scatter per input; the tables come from the interpreter's Concat of
    /// disjointly numbered inputs, so every output position is written exactly once.
    fn concat(&mut self, n: NodeIndex, c: &Concat, ins: &[NodeIndex]) -> OpResult<()> {
        let mut offsets = vec![0usize];
        let mut args = Vec::with_capacity(ins.len());
        for &i in ins {
            let shape = self.shape(i).to_vec();
            let start = *offsets.last().unwrap_or(&0);
            let len = numel(&shape);
            args.push(Tensor::from_f32(
                shape,
                (start..start + len).map(|v| v as f32).collect(),
            )?);
            offsets.push(start + len);
        }
        let total = *offsets.last().unwrap_or(&0);
        op_ensure!(
            total < TABLE_LIMIT,
            "output of {total} elements is too large for a movement table"
        );
        let refs: Vec<&Tensor> = args.iter().collect();
        let joined = interp::eval(&Op::Concat(c.clone()), &refs)?;
        let mut tables: Vec<Vec<i32>> = offsets
            .windows(2)
            .map(|w| vec![NONE; w[1] - w[0]])
            .collect();
        for (pos, &v) in joined.f32s()?.iter().enumerate() {
            let v = v as usize;
            let k = offsets.partition_point(|&o| o <= v) - 1;
            tables[k][v - offsets[k]] = pos as i32;
        }
        op_ensure!(
            tables
                .iter()
                .flatten()
                .all(|&t| t >= 0 && (t as usize) < total),
            "internal error: a Concat table leaves a position unwritten"
        );
        let out = self.define(n);
        for (&i, t) in ins.iter().zip(tables) {
            let src = self.operand(i)?;
            self.table_step(n, TableKernel::Scatter, src, t, out)?;
        }
        Ok(())
    }

    /// A fused element-wise kernel rooted at `n`.
    fn elementwise(&mut self, n: NodeIndex) -> OpResult<()> {
        let shape = self.shape(n).to_vec();
        let mut k = KernelBuilder::default();
        let output = self.expand(n, &shape, &mut k)?;
        let kernel = Kernel {
            inputs: k.accesses,
            body: k.body,
            output,
        };
        let kernel = self.kernel(KernelDesc::Elementwise(kernel))?;
        let out = self.define(n);
        self.push(
            n,
            Step::Elementwise {
                kernel,
                inputs: k.operands,
                out,
                len: numel(&shape),
            },
        );
        Ok(())
    }

    /// The instruction computing node `n` inside a kernel over `shape`; fused producers are
    /// expanded in place, everything else is loaded.
    fn expand(&mut self, n: NodeIndex, shape: &[usize], k: &mut KernelBuilder) -> OpResult<u32> {
        if let Some(&i) = k.memo.get(&n) {
            return Ok(i);
        }
        let graph = self.graph;
        let node = graph.node(n);
        let ins = graph.inputs_of(n);
        let i = match &node.op {
            Op::Binary(op) => {
                let a = self.expand_child(ins[0], shape, k)?;
                let b = self.expand_child(ins[1], shape, k)?;
                k.push(Instr::Binary(*op, a, b))
            }
            Op::Sum => {
                let mut acc = self.expand_child(ins[0], shape, k)?;
                for &x in &ins[1..] {
                    let b = self.expand_child(x, shape, k)?;
                    acc = k.push(Instr::Binary(BinaryOp::Add, acc, b));
                }
                acc
            }
            Op::Pointwise(p) => {
                let a = self.expand_child(ins[0], shape, k)?;
                k.push(Instr::Pointwise(*p, a))
            }
            Op::Where => {
                let c = self.expand_child(ins[0], shape, k)?;
                let a = self.expand_child(ins[1], shape, k)?;
                let b = self.expand_child(ins[2], shape, k)?;
                k.push(Instr::Select(c, a, b))
            }
            Op::Cast(c) => {
                let a = self.expand_child(ins[0], shape, k)?;
                let f = if c.boolean {
                    Activation::NonZero
                } else {
                    Activation::Trunc
                };
                k.push(Instr::Activation(f, a))
            }
            Op::Activation(f) => {
                let a = self.expand_child(ins[0], shape, k)?;
                k.push(Instr::Activation(*f, a))
            }
            Op::ActivationGrad(g) => {
                let x = self.expand_child(ins[0], shape, k)?;
                let dy = self.expand_child(ins[1], shape, k)?;
                k.push(Instr::ActivationGrad(g.activation, x, dy))
            }
            Op::BatchNorm(bn) => {
                // (x - mean) / sqrt(var + eps) * scale + bias, per channel, as the interpreter
                // computes it (the square root made once, at compile time).
                let x = self.expand_child(ins[0], shape, k)?;
                let param = |i: usize| -> OpResult<Vec<f32>> {
                    let Some(t) = graph.constant(ins[i]) else {
                        op_bail!("BatchNorm parameters must be constants for compiled code");
                    };
                    Ok(t.f32s()?.to_vec())
                };
                let (scale, bias, mean, var) = (param(1)?, param(2)?, param(3)?, param(4)?);
                let denom: Vec<f32> = var.iter().map(|v| (v + bn.epsilon).sqrt()).collect();
                let c = shape.get(1).copied().unwrap_or(1);
                let access = Access::Periodic {
                    inner: numel(shape.get(2..).unwrap_or(&[])),
                    period: c,
                };
                let mut channel = |this: &mut Self, v: Vec<f32>| -> OpResult<u32> {
                    op_ensure!(
                        v.len() == c,
                        "BatchNorm parameter of {} for {c} channels",
                        v.len()
                    );
                    let op = Operand::Const(this.constant(v));
                    Ok(k.load(op, access))
                };
                let m = channel(self, mean)?;
                let d = channel(self, denom)?;
                let s = channel(self, scale)?;
                let b = channel(self, bias)?;
                let centred = k.push(Instr::Binary(BinaryOp::Sub, x, m));
                let normed = k.push(Instr::Binary(BinaryOp::Div, centred, d));
                let scaled = k.push(Instr::Binary(BinaryOp::Mul, normed, s));
                k.push(Instr::Binary(BinaryOp::Add, scaled, b))
            }
            other => op_bail!("internal error: {} is not element-wise", other.name()),
        };
        k.memo.insert(n, i);
        Ok(i)
    }

    fn expand_child(
        &mut self,
        n: NodeIndex,
        shape: &[usize],
        k: &mut KernelBuilder,
    ) -> OpResult<u32> {
        if self.fused.contains_key(&n) && !self.is_const(n) {
            self.expand(n, shape, k)
        } else {
            self.load(n, shape, k)
        }
    }

    /// Loads node `n`'s value, broadcast to `shape`: directly when the broadcast is periodic,
    /// else through a gathered copy.
    fn load(&mut self, n: NodeIndex, shape: &[usize], k: &mut KernelBuilder) -> OpResult<u32> {
        if let Some(&i) = k.memo.get(&n) {
            return Ok(i);
        }
        let from = self.shape(n).to_vec();
        let operand = self.operand(n)?;
        let i = match periodic(&from, shape) {
            Some(access) => k.load(operand, access),
            None => {
                // A general broadcast: materialise it once with a gather.
                let map = interp::broadcast_map(&from, shape);
                op_ensure!(
                    map.len() < TABLE_LIMIT,
                    "broadcast of {} elements is too large",
                    map.len()
                );
                let out = self.buffer(map.len());
                let table = map.into_iter().map(|v| v as i32).collect();
                let kind = TableKernel::Gather { fill: 0.0 };
                self.table_step(n, kind, operand, table, out)?;
                k.load(Operand::Buffer(out), Access::Full)
            }
        };
        k.memo.insert(n, i);
        Ok(i)
    }
}

/// Compiled ConvTranspose has no bias (its kernels are the Conv adjoint's, shared with the
/// relevance graphs): a ConvTranspose with a bias becomes the bare ConvTranspose and an Add of
/// the bias per output channel, which fuses into an element-wise kernel. The original node
/// becomes the Add, so the request's node indices still name the same values.
fn split_conv_transpose_bias(graph: &Graph) -> Result<Option<Graph>> {
    let biased: Vec<NodeIndex> = graph
        .nodes
        .node_indices()
        .filter(|&n| {
            matches!(graph.node(n).op, Op::ConvTranspose(_)) && graph.inputs_of(n).len() == 3
        })
        .collect();
    if biased.is_empty() {
        return Ok(None);
    }
    let mut g = graph.clone();
    for n in biased {
        let ins = g.inputs_of(n);
        let node = g.node(n).clone();
        let fact = g.fact(n).clone();
        let bare = g.add(
            format!("{}.unbiased", node.name),
            node.op.clone(),
            &ins[..2],
        );
        g.node_mut(bare).fact = Some(crate::ir::Fact::new(DType::F32, fact.shape.clone()));
        let mut shape = vec![1usize; fact.shape.len()];
        if let Some(c) = shape.get_mut(1) {
            *c = fact.shape[1];
        }
        let bias = g
            .constant(ins[2])
            .ok_or_else(|| "the bias is computed, not constant".to_string())
            .and_then(|t| {
                let v = t.f32s().map_err(|e| e.0)?.to_vec();
                Tensor::from_f32(shape.clone(), v).map_err(|e| e.0)
            })
            .map_err(|reason| Error::Graph {
                file: g.source.clone(),
                reason: format!("node '{}' (ConvTranspose): {reason}", node.name),
            })?;
        let b = g.add(
            format!("{}.bias", node.name),
            Op::Const(std::sync::Arc::new(bias)),
            &[],
        );
        g.node_mut(b).fact = Some(crate::ir::Fact::new(DType::F32, shape));
        g.node_mut(n).op = Op::Binary(BinaryOp::Add);
        g.set_inputs(n, &[bare, b]);
    }
    Ok(Some(g))
}

/// The periodic access reading a `from`-shaped value broadcast to `to`, if there is one: the
/// value's non-unit axes must be one contiguous block equal to `to`'s.
pub fn periodic(from: &[usize], to: &[usize]) -> Option<Access> {
    if from.len() > to.len() {
        return None;
    }
    let mut f = vec![1; to.len() - from.len()];
    f.extend_from_slice(from);
    if f == to {
        return Some(Access::Full);
    }
    let kept: Vec<usize> = (0..to.len()).filter(|&a| f[a] != 1).collect();
    let Some((&first, &last)) = kept.first().zip(kept.last()) else {
        return Some(Access::Periodic {
            inner: 1,
            period: 1,
        });
    };
    let block_matches = (first..=last).all(|a| f[a] == to[a]);
    block_matches.then(|| Access::Periodic {
        inner: numel(&to[last + 1..]),
        period: numel(&to[first..=last]),
    })
}

#[derive(Default)]
struct KernelBuilder {
    body: Vec<Instr>,
    accesses: Vec<Access>,
    operands: Vec<Operand>,
    memo: HashMap<NodeIndex, u32>,
}

impl KernelBuilder {
    fn push(&mut self, i: Instr) -> u32 {
        self.body.push(i);
        (self.body.len() - 1) as u32
    }

    fn load(&mut self, operand: Operand, access: Access) -> u32 {
        let k = match self
            .operands
            .iter()
            .zip(&self.accesses)
            .position(|(&o, &a)| o == operand && a == access)
        {
            Some(k) => k,
            None => {
                self.operands.push(operand);
                self.accesses.push(access);
                self.operands.len() - 1
            }
        };
        self.push(Instr::Load(k))
    }
}
