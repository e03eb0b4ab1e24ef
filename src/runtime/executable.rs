//! The runtime: a lowered program with its kernel code, memory layout and thread pool. Each
//! session takes an arena from the executable's pool (allocating one on first use), so one
//! executable serves several callers at once and runs allocate nothing; a run is two phases
//! (forward, then relevance once the host has written the seed), each a walk over the steps that
//! calls kernels on arena pointers.

use std::sync::Mutex;

use rayon::prelude::*;

use super::Shared;
use super::code::Code;
use super::gemm::{ConvGemm, View, matmul};
use super::guard::{GuardSide, Region};
use super::jit::{ElementwiseFn, TableFn, WindowBackwardFn, WindowForwardFn};
use super::plan::{self, Layout};
use super::program::{KernelDesc, Operand, Program, Step};
use crate::error::{Error, Result};
use crate::interp;
use crate::ir::Tensor;

/// Below this many elements an element-wise or table step runs on one thread.
const PARALLEL_ELEMENTS: usize = 1 << 15;

/// How an executable is built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// Worker threads (GEMMs, element-wise chunks, pooling planes, im2col rows).
    pub threads: usize,
    /// Give every buffer, constant and table its own mapping with a guard page right after it
    /// (or right before it): any out-of-bounds access by a kernel faults. For tests.
    pub guard: Option<GuardSide>,
    /// Time every step (see [`Executable::profile`]).
    pub profile: bool,
    /// Refuse to run when one arena would take more bytes than this (a hostile artifact can
    /// declare any buffer size).
    pub max_arena_bytes: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            threads: default_threads(),
            guard: None,
            profile: false,
            max_arena_bytes: usize::MAX,
        }
    }
}

/// Where the time of the profiled runs went.
#[derive(Clone, Debug, serde::Serialize)]
pub struct StepTime {
    /// The step kind (conv, conv-transpose, elementwise, ...).
    pub kind: &'static str,
    /// The node the step came from.
    pub node: String,
    /// Seconds summed over every profiled run.
    pub seconds: f64,
    /// Multiply-adds per run of a GEMM-shaped step (0 for others).
    pub multiply_adds: usize,
    /// How many times the step ran.
    pub runs: u64,
}

impl StepTime {
    /// The step's arithmetic rate (2 flops per multiply-add), when it does GEMM-shaped work.
    pub fn gflops(&self) -> Option<f64> {
        (self.multiply_adds > 0 && self.seconds > 0.0)
            .then(|| 2.0 * self.multiply_adds as f64 * self.runs as f64 / self.seconds / 1e9)
    }
}

/// The machine's available parallelism (1 if unknown).
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// A finalized kernel entry point.
#[derive(Clone, Copy)]
enum Entry {
    None,
    Elementwise(ElementwiseFn),
    Table(TableFn),
    WindowForward(WindowForwardFn),
    WindowBackward(WindowBackwardFn),
}

/// A program ready to run: its kernels' code, its convolutions tiled for the thread count, its
/// memory layout and its worker pool.
pub struct Executable {
    program: Program,
    /// The tiling of every Conv / ConvTranspose step (indexed by step).
    convs: Vec<Option<ConvGemm>>,
    entries: Vec<Entry>,
    layout: Layout,
    /// Arenas not in use by a session.
    memories: Mutex<Vec<Memory>>,
    pool: rayon::ThreadPool,
    options: Options,
    source: String,
    /// Seconds per step summed over runs, and the number of runs, when profiling.
    times: Mutex<Vec<(f64, u64)>>,
    /// Keeps the kernels mapped; declared last so it is dropped after everything using them.
    code: Code,
}

impl std::fmt::Debug for Executable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executable")
            .field("source", &self.source)
            .field("steps", &self.program.steps.len())
            .field("kernels", &self.code.len())
            .field("arena_bytes", &self.arena_bytes())
            .field("threads", &self.options.threads)
            .finish()
    }
}

fn runtime_error(source: &str, reason: String) -> Error {
    Error::Graph {
        file: source.to_string(),
        reason,
    }
}

impl Executable {
    /// Prepares `program` to run with `code` (one entry per kernel, in kernel order): checks
    /// the program, tiles its convolutions for `options.threads`, sizes their scratch, and
    /// plans the arena. `source` names the model in errors.
    pub fn new(
        mut program: Program,
        code: Code,
        options: Options,
        source: &str,
    ) -> Result<Executable> {
        let threads = options.threads.max(1);
        let fail = |reason: String| runtime_error(source, reason);
        if code.len() != program.kernels.len() {
            return Err(fail(format!(
                "the program has {} kernels but {} were compiled",
                program.kernels.len(),
                code.len()
            )));
        }
        // Checked before tiling reads the convolution shapes; tiling then sizes the scratch
        // buffers exactly.
        super::validate::program(&program).map_err(|e| fail(format!("invalid program: {e}")))?;
        let convs = tile(&mut program, threads);
        let entries = program
            .steps
            .iter()
            .map(|s| {
                let Some(k) = s.kernel() else {
                    return Entry::None;
                };
                let (Some(addr), Some(desc)) = (code.address(k), program.kernels.get(k)) else {
                    return Entry::None;
                };
                let addr = addr as *const u8;
                // SAFETY: `code` holds, at index k, a function emitted from `program.kernels[k]`
                // (the contract of every `Code` constructor), whose parameter list is the one
                // of the function type it is cast to here for that description's kind (see
                // `emit::Signature`); `validate` checked the step calls a kernel of that kind;
                // the code stays mapped while the executable owns `code`.
                unsafe {
                    match desc {
                        KernelDesc::Elementwise(_) => {
                            Entry::Elementwise(std::mem::transmute::<*const u8, ElementwiseFn>(
                                addr,
                            ))
                        }
                        KernelDesc::Table(_) => {
                            Entry::Table(std::mem::transmute::<*const u8, TableFn>(addr))
                        }
                        KernelDesc::Window {
                            backward: false, ..
                        } => Entry::WindowForward(
                            std::mem::transmute::<*const u8, WindowForwardFn>(addr),
                        ),
                        KernelDesc::Window { backward: true, .. } => Entry::WindowBackward(
                            std::mem::transmute::<*const u8, WindowBackwardFn>(addr),
                        ),
                    }
                }
            })
            .collect();
        let layout = plan::plan(&program);
        if layout.len.saturating_mul(4) > options.max_arena_bytes {
            return Err(fail(format!(
                "its arena of {} MB is over the limit of {} MB",
                (layout.len * 4) >> 20,
                options.max_arena_bytes >> 20
            )));
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .map_err(|e| fail(e.to_string()))?;
        let steps = program.steps.len();
        Ok(Executable {
            program,
            convs,
            entries,
            layout,
            memories: Mutex::new(Vec::new()),
            pool,
            options: Options { threads, ..options },
            source: source.to_string(),
            times: Mutex::new(vec![(0.0, 0); steps]),
            code,
        })
    }

    /// The program (steps, buffers, constants, kernel descriptions).
    pub fn program(&self) -> &Program {
        &self.program
    }

    /// The model the program came from (for error messages).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The kernels' code.
    pub fn code(&self) -> &Code {
        &self.code
    }

    /// Bytes of the arena the plan packs every buffer into.
    pub fn arena_bytes(&self) -> usize {
        self.layout.len * 4
    }

    /// Bytes the buffers would take without sharing.
    pub fn unshared_bytes(&self) -> usize {
        self.layout.unshared * 4
    }

    /// The memory layout (buffer offsets in f32).
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    pub fn threads(&self) -> usize {
        self.options.threads
    }

    /// Time per step summed over the runs so far, slowest first (empty unless built with
    /// `Options::profile`).
    pub fn profile(&self) -> Vec<StepTime> {
        let times = match self.times.lock() {
            Ok(t) => t.clone(),
            Err(_) => return Vec::new(),
        };
        let mut v: Vec<StepTime> = times
            .iter()
            .enumerate()
            .filter(|(_, t)| t.1 > 0)
            .map(|(s, &(seconds, runs))| StepTime {
                kind: self.program.steps[s].kind(),
                node: self.program.step_names[s].clone(),
                seconds,
                multiply_adds: self.program.steps[s].multiply_adds(),
                runs,
            })
            .collect();
        v.sort_by(|a, b| b.seconds.total_cmp(&a.seconds));
        v
    }

    /// Starts a run: takes an arena from the pool (allocating one when all are in use).
    pub fn session(&self) -> Result<Session<'_>> {
        let spare = self
            .memories
            .lock()
            .map_err(|_| {
                runtime_error(
                    &self.source,
                    "a previous run panicked while holding the executable".into(),
                )
            })?
            .pop();
        let memory = match spare {
            Some(m) => m,
            None => Memory::new(&self.program, &self.layout, self.options.guard)
                .map_err(|e| runtime_error(&self.source, e))?,
        };
        Ok(Session {
            exe: self,
            memory: Some(memory),
        })
    }
}

/// Tiles every convolution of `program` for `threads` workers and sizes its scratch buffer.
fn tile(program: &mut Program, threads: usize) -> Vec<Option<ConvGemm>> {
    let mut convs = Vec::with_capacity(program.steps.len());
    let mut scratch: Vec<(usize, usize)> = Vec::new();
    for s in &program.steps {
        convs.push(match s {
            Step::Conv { conv, col, .. } => {
                let g = ConvGemm::new(*conv, threads);
                scratch.extend(col.map(|c| (c, g.forward_scratch())));
                Some(g)
            }
            Step::ConvTranspose { conv, col, .. } => {
                let g = ConvGemm::new(*conv, threads);
                scratch.extend(col.map(|c| (c, g.backward_scratch())));
                Some(g)
            }
            _ => None,
        });
    }
    for &(c, _) in &scratch {
        if let Some(len) = program.buffers.get_mut(c) {
            *len = 0;
        }
    }
    for (c, len) in scratch {
        if let Some(l) = program.buffers.get_mut(c) {
            *l = (*l).max(len);
        }
    }
    program.threads = threads;
    convs
}

/// Where every buffer, constant and table is, as raw pointers into memory the `Memory` owns (or
/// the program's constants, which the executable owns and never mutates).
struct Memory {
    buffers: Vec<*mut f32>,
    consts: Vec<*const f32>,
    tables: Vec<*const i32>,
    /// Per element-wise step: its input pointers (built once, so runs do not allocate).
    inputs: Vec<Vec<*const f32>>,
    _arena: Vec<f32>,
    _regions: Vec<Region>,
}

// SAFETY: the pointers refer to memory owned by this struct (`_arena`, `_regions`) or by the
// executable's program; one session at a time holds a `Memory` (it is taken out of the pool).
unsafe impl Send for Memory {}
// SAFETY: shared references only read the pointer tables; what the pointers address is written
// by kernels of one step at a time, on disjoint ranges (see `Shared`).
unsafe impl Sync for Memory {}

impl Memory {
    fn new(
        p: &Program,
        layout: &Layout,
        guard: Option<GuardSide>,
    ) -> std::result::Result<Memory, String> {
        let mut regions = Vec::new();
        let mut arena = Vec::new();
        let (buffers, consts, tables): (Vec<*mut f32>, Vec<*const f32>, Vec<*const i32>) =
            match guard {
                None => {
                    arena.try_reserve_exact(layout.len).map_err(|_| {
                        format!(
                            "cannot allocate the {} MB arena",
                            (layout.len * 4).div_ceil(1 << 20)
                        )
                    })?;
                    arena.resize(layout.len, 0f32);
                    let base = arena.as_mut_ptr();
                    // SAFETY: the plan places every buffer inside 0..layout.len.
                    let buffers = layout
                        .offsets
                        .iter()
                        .map(|&o| unsafe { base.add(o) })
                        .collect();
                    let consts = p.consts.iter().map(|c| c.as_slice().as_ptr()).collect();
                    let tables = p.tables.iter().map(|t| t.as_slice().as_ptr()).collect();
                    (buffers, consts, tables)
                }
                Some(side) => {
                    let mut region = |bytes: &[u8],
                                      len: usize|
                     -> std::result::Result<*mut u8, String> {
                        let r = Region::new(len, side)
                            .map_err(|e| format!("guarded allocation failed: {e}"))?;
                        let ptr = r.data();
                        // SAFETY: the region holds `len` >= bytes.len() writable bytes.
                        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), ptr, bytes.len()) };
                        regions.push(r);
                        Ok(ptr)
                    };
                    let buffers = p
                        .buffers
                        .iter()
                        .map(|&l| region(&vec![0u8; l * 4], l * 4).map(|p| p.cast::<f32>()))
                        .collect::<std::result::Result<_, _>>()?;
                    let consts = p
                        .consts
                        .iter()
                        .map(|c| {
                            let bytes: &[u8] = bytemuck::cast_slice(c.as_slice());
                            region(bytes, bytes.len()).map(|p| p.cast::<f32>().cast_const())
                        })
                        .collect::<std::result::Result<_, _>>()?;
                    let tables = p
                        .tables
                        .iter()
                        .map(|t| {
                            let bytes: &[u8] = bytemuck::cast_slice(t.as_slice());
                            region(bytes, bytes.len()).map(|p| p.cast::<i32>().cast_const())
                        })
                        .collect::<std::result::Result<_, _>>()?;
                    (buffers, consts, tables)
                }
            };
        let resolve = |o: &Operand| match *o {
            Operand::Buffer(b) => buffers[b].cast_const(),
            Operand::Const(c) => consts[c],
        };
        let inputs = p
            .steps
            .iter()
            .map(|s| match s {
                Step::Elementwise { inputs, .. } => inputs.iter().map(resolve).collect(),
                _ => Vec::new(),
            })
            .collect();
        Ok(Memory {
            buffers,
            consts,
            tables,
            inputs,
            _arena: arena,
            _regions: regions,
        })
    }
}

/// One run of an executable: write inputs, run the first phase, read, write the late inputs,
/// run the second phase, read. Dropping it returns its arena to the executable.
pub struct Session<'e> {
    exe: &'e Executable,
    memory: Option<Memory>,
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        if let (Some(m), Ok(mut pool)) = (self.memory.take(), self.exe.memories.lock()) {
            pool.push(m);
        }
    }
}

impl Session<'_> {
    fn memory(&self) -> &Memory {
        self.memory
            .as_ref()
            .expect("a session holds its memory until it is dropped")
    }

    fn input_error(&self, reason: String) -> Error {
        Error::Input {
            what: "input".into(),
            reason,
        }
    }

    /// Copies `values` into the buffer of input port `input`.
    pub fn write(&mut self, input: usize, values: &[f32]) -> Result<()> {
        let p = &self.exe.program;
        let Some(port) = p.inputs.get(input) else {
            return Err(self.input_error(format!("the executable has no input {input}")));
        };
        let Operand::Buffer(b) = port.operand else {
            return Err(self.input_error(format!("input '{}' is not a buffer", port.name)));
        };
        if values.len() != p.buffers[b] {
            return Err(self.input_error(format!(
                "has {} values, the compiled input '{}' takes {}",
                values.len(),
                port.name,
                p.buffers[b]
            )));
        }
        let dst = self.memory().buffers[b];
        // SAFETY: the buffer holds p.buffers[b] == values.len() elements and no kernel is
        // running (the session owns its memory).
        unsafe { std::ptr::copy_nonoverlapping(values.as_ptr(), dst, values.len()) };
        Ok(())
    }

    /// Copies a tensor into input port `input`: f32 as it is, integers as the f32 values
    /// compiled code carries them in (exact below 2^24, which input checks enforce).
    pub fn write_tensor(&mut self, input: usize, t: &Tensor) -> Result<()> {
        match t.f32s() {
            Ok(v) => self.write(input, v),
            Err(_) => {
                let v: Vec<f32> = t
                    .i64s()
                    .map_err(|e| self.input_error(e.0))?
                    .iter()
                    .map(|&x| x as f32)
                    .collect();
                self.write(input, &v)
            }
        }
    }

    /// Runs the steps that do not need the late inputs.
    pub fn run_first(&mut self) -> Result<()> {
        self.run(0..self.exe.program.split)
    }

    /// Runs the steps that need the late inputs (the seed).
    pub fn run_second(&mut self) -> Result<()> {
        self.run(self.exe.program.split..self.exe.program.steps.len())
    }

    /// Runs every step (for programs without late inputs).
    pub fn run_all(&mut self) -> Result<()> {
        self.run(0..self.exe.program.steps.len())
    }

    fn run(&mut self, steps: std::ops::Range<usize>) -> Result<()> {
        let exe = self.exe;
        let memory = self.memory();
        exe.pool.install(|| {
            for s in steps {
                let start = exe.options.profile.then(std::time::Instant::now);
                exe.step(memory, s).map_err(|reason| Error::Eval {
                    file: exe.source.clone(),
                    node: exe.program.step_names[s].clone(),
                    op: exe.program.steps[s].kind().into(),
                    reason,
                })?;
                if let (Some(t), Ok(mut times)) = (start, exe.times.lock()) {
                    times[s].0 += t.elapsed().as_secs_f64();
                    times[s].1 += 1;
                }
            }
            Ok(())
        })
    }

    /// The values of output port `output`.
    pub fn output(&self, output: usize) -> Result<&[f32]> {
        let p = &self.exe.program;
        let Some(port) = p.outputs.get(output) else {
            return Err(self.input_error(format!("the executable has no output {output}")));
        };
        Ok(self.exe.slice(self.memory(), port.operand))
    }

    /// Output port `output` as a tensor of its shape.
    pub fn read(&self, output: usize) -> Result<Tensor> {
        let values = self.output(output)?.to_vec();
        let shape = self.exe.program.outputs[output].shape.clone();
        Tensor::from_f32(shape, values).map_err(|e| self.input_error(e.0))
    }

    /// The sum asked for as total `t`.
    pub fn total(&self, t: usize) -> Option<f32> {
        let port = self.exe.program.totals.get(t)?;
        self.exe.slice(self.memory(), port.operand).first().copied()
    }
}

/// Splits 0..len into chunks of at least `min` whose starts are multiples of 4, as a parallel
/// iterator of (start, end) (nothing is allocated).
fn chunks(
    len: usize,
    threads: usize,
    min: usize,
) -> impl IndexedParallelIterator<Item = (usize, usize)> {
    let size = if threads <= 1 || len < 2 * min {
        len.max(1)
    } else {
        let pieces = (threads * 4).min(len / min).max(1);
        len.div_ceil(pieces).next_multiple_of(4)
    };
    (0..len.div_ceil(size))
        .into_par_iter()
        .map(move |c| (c * size, ((c + 1) * size).min(len)))
}

impl Executable {
    fn len(&self, o: Operand) -> usize {
        self.program.operand_len(o)
    }

    fn ptr(&self, m: &Memory, o: Operand) -> *const f32 {
        match o {
            Operand::Buffer(b) => m.buffers[b].cast_const(),
            Operand::Const(c) => m.consts[c],
        }
    }

    /// Operand `o` as a slice.
    fn slice<'m>(&self, m: &'m Memory, o: Operand) -> &'m [f32] {
        let len = self.len(o);
        if len == 0 {
            return &[];
        }
        // SAFETY: every operand pointer addresses `len` initialised f32 (buffers are zeroed
        // at allocation); during a step the planner guarantees no buffer written by the step
        // overlaps one it reads.
        unsafe { std::slice::from_raw_parts(self.ptr(m, o), len) }
    }

    /// Buffer `b` as a mutable slice.
    #[allow(clippy::mut_from_ref)]
    fn slice_mut<'m>(&self, m: &'m Memory, b: usize) -> &'m mut [f32] {
        let len = self.program.buffers[b];
        if len == 0 {
            return &mut [];
        }
        // SAFETY: as for `slice`; a step writes each of its output buffers through exactly one
        // such slice, disjoint from everything it reads (the plan gives simultaneously live
        // buffers disjoint ranges).
        unsafe { std::slice::from_raw_parts_mut(m.buffers[b], len) }
    }

    fn conv(&self, s: usize) -> std::result::Result<&ConvGemm, String> {
        self.convs[s]
            .as_ref()
            .ok_or_else(|| "internal error: a convolution step without its tiling".to_string())
    }

    fn step(&self, m: &Memory, s: usize) -> std::result::Result<(), String> {
        let threads = self.options.threads;
        match (&self.program.steps[s], self.entries[s]) {
            (Step::Elementwise { out, len, .. }, Entry::Elementwise(f)) => {
                let ins = Shared(m.inputs[s].as_ptr());
                let out = Shared(m.buffers[*out]);
                chunks(*len, threads, PARALLEL_ELEMENTS).for_each(|(a, b)| {
                    // SAFETY: lowering sized every input for `len` outputs under its access
                    // and the output buffer for `len`; chunks are disjoint and start at
                    // multiples of 4, as periodic vector loads need.
                    unsafe { f(ins.get(), out.get(), a as i64, b as i64) }
                });
            }
            (
                Step::Table {
                    src,
                    table,
                    out,
                    len,
                    ..
                },
                Entry::Table(f),
            ) => {
                let src = Shared(self.ptr(m, *src));
                let t = Shared(m.tables[*table]);
                let out = Shared(m.buffers[*out]);
                // Gathers write chunk a..b; a scatter's chunk a..b writes table[a..b], positions
                // no other chunk writes (Concat tables are permutations).
                chunks(*len, threads, PARALLEL_ELEMENTS).for_each(|(a, b)| {
                    // SAFETY: lowering checked every table entry against the buffer it
                    // indexes (source for gathers, output for scatters) and sized the table
                    // to `len`; a scatter's entries are distinct, so chunks write disjoint
                    // positions.
                    unsafe { f(src.get(), t.get(), out.get(), a as i64, b as i64) }
                });
            }
            (
                Step::Window {
                    x,
                    dy,
                    table,
                    counts,
                    out,
                    planes,
                    ..
                },
                entry,
            ) => {
                let x = Shared(self.ptr(m, *x));
                let dy = Shared(dy.map_or(std::ptr::null(), |d| self.ptr(m, d)));
                let t = Shared(m.tables[*table]);
                let c = Shared(m.consts[*counts]);
                let out = Shared(m.buffers[*out]);
                chunks(*planes, threads, 4).for_each(|(a, b)| {
                    // SAFETY: the table indexes one plane of the input and was checked
                    // against it; planes a..b of x, dy and out exist (lowering sized them from
                    // the same shapes); chunks cover disjoint planes.
                    unsafe {
                        match entry {
                            Entry::WindowForward(f) => {
                                f(x.get(), t.get(), c.get(), out.get(), a as i64, b as i64)
                            }
                            Entry::WindowBackward(f) => f(
                                x.get(),
                                dy.get(),
                                t.get(),
                                c.get(),
                                out.get(),
                                a as i64,
                                b as i64,
                            ),
                            _ => {}
                        }
                    }
                });
            }
            (
                Step::Conv {
                    x,
                    w,
                    bias,
                    out,
                    col,
                    ..
                },
                _,
            ) => {
                let conv = self.conv(s)?;
                let bias = bias.map(|b| self.slice(m, b));
                let col = col.map_or(&mut [][..], |c| self.slice_mut(m, c));
                conv.forward(
                    self.slice(m, *x),
                    self.slice(m, *w),
                    bias,
                    self.slice_mut(m, *out),
                    col,
                );
            }
            (
                Step::ConvTranspose {
                    dy, w, out, col, ..
                },
                _,
            ) => {
                let conv = self.conv(s)?;
                let col = col.map_or(&mut [][..], |c| self.slice_mut(m, c));
                conv.backward(
                    self.slice(m, *dy),
                    self.slice(m, *w),
                    self.slice_mut(m, *out),
                    col,
                );
            }
            (
                Step::Gemm {
                    dims,
                    a,
                    a_strides,
                    b,
                    b_strides,
                    alpha,
                    c,
                    out,
                },
                _,
            ) => {
                let dst = self.slice_mut(m, *out);
                if let Some((c, table, beta)) = c {
                    let (cv, t) = (self.slice(m, *c), self.program.tables[*table].as_slice());
                    for (d, &i) in dst.iter_mut().zip(t) {
                        *d = beta * cv[i as usize];
                    }
                }
                let lhs = View {
                    data: self.slice(m, *a),
                    rs: a_strides.0,
                    cs: a_strides.1,
                };
                let rhs = View {
                    data: self.slice(m, *b),
                    rs: b_strides.0,
                    cs: b_strides.1,
                };
                matmul(threads, *dims, dst, c.is_some(), lhs, rhs, *alpha);
            }
            (
                Step::MatMul {
                    dims: (mm, k, n),
                    pairs,
                    a,
                    b,
                    out,
                },
                _,
            ) => {
                let (av, bv, dst) = (
                    self.slice(m, *a),
                    self.slice(m, *b),
                    self.slice_mut(m, *out),
                );
                for (i, &(ia, ib)) in pairs.iter().enumerate() {
                    let lhs = View {
                        data: &av[ia * mm * k..][..mm * k],
                        rs: *k,
                        cs: 1,
                    };
                    let rhs = View {
                        data: &bv[ib * k * n..][..k * n],
                        rs: *n,
                        cs: 1,
                    };
                    let d = &mut dst[i * mm * n..][..mm * n];
                    matmul(threads, (*mm, *k, *n), d, false, lhs, rhs, 1.0);
                }
            }
            (Step::Softmax { op, shape, x, out }, _) => {
                interp::norm::softmax_into(op, shape, self.slice(m, *x), self.slice_mut(m, *out))
                    .map_err(|e| e.0)?;
            }
            (
                Step::Lrn {
                    op,
                    shape,
                    x,
                    dy,
                    out,
                },
                _,
            ) => {
                let (xs, o) = (self.slice(m, *x), self.slice_mut(m, *out));
                match dy {
                    Some(d) => interp::norm::lrn_backward_into(op, shape, xs, self.slice(m, *d), o),
                    None => interp::norm::lrn_into(op, shape, xs, o),
                }
            }
            (
                Step::Lookup {
                    outer,
                    rows,
                    inner,
                    ids,
                    data,
                    indices,
                    out,
                },
                _,
            ) => {
                let (dv, iv, dst) = (
                    self.slice(m, *data),
                    self.slice(m, *indices),
                    self.slice_mut(m, *out),
                );
                lookup((*outer, *rows, *inner), &iv[..*ids], dv, dst)?;
            }
            (Step::Total { src, len, out }, _) => {
                let total: f32 = self.slice(m, *src)[..*len].iter().sum();
                self.slice_mut(m, *out)[0] = total;
            }
            (step, _) => return Err(format!("no kernel for the {} step", step.kind())),
        }
        Ok(())
    }
}

/// The Lookup step: rows of `data` (outer x rows x inner) picked by integer ids carried as f32.
/// Validation has checked that `data` holds outer * rows * inner values and `dst` outer * ids *
/// inner, so only the ids, which the run computes, are checked here.
fn lookup(
    (outer, rows, inner): (usize, usize, usize),
    ids: &[f32],
    data: &[f32],
    dst: &mut [f32],
) -> Result<(), String> {
    let mut picked = Vec::with_capacity(ids.len());
    for (i, &id) in ids.iter().enumerate() {
        let row = if id < 0.0 { id + rows as f32 } else { id };
        if !(row >= 0.0 && row < rows as f32 && row.fract() == 0.0) {
            return Err(format!(
                "index {id} at flat position {i} lies outside the {rows} rows of the lookup table"
            ));
        }
        picked.push(row as usize);
    }
    for o in 0..outer {
        let table = &data[o * rows * inner..][..rows * inner];
        let out = &mut dst[o * ids.len() * inner..][..ids.len() * inner];
        for (chunk, &row) in out.chunks_exact_mut(inner.max(1)).zip(&picked) {
            chunk.copy_from_slice(&table[row * inner..][..inner]);
        }
    }
    Ok(())
}
