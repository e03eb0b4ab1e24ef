//! The runtime: a lowered program with its finalized kernels, memory layout and thread pool. One
//! arena per executable is allocated on first use and reused by every later run; a run is two
//! phases (forward, then relevance once the host has written the seed), each a walk over the
//! steps that calls kernels on arena pointers.

use std::sync::{Arc, Mutex, MutexGuard};

use rayon::prelude::*;

use super::Shared;
use super::gemm::{View, matmul};
use super::guard::{GuardSide, Region};
use super::jit::{ElementwiseFn, Jit, TableFn, WindowBackwardFn, WindowForwardFn};
use super::lower::{self, Operand, Program, Request, Step};
use super::plan::{self, Layout};
use crate::error::{Error, Result};
use crate::interp;
use crate::ir::{Graph, NodeIndex, Tensor};

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
}

impl Default for Options {
    fn default() -> Options {
        Options {
            threads: default_threads(),
            guard: None,
            profile: false,
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

/// A graph compiled to native code.
pub struct Executable {
    program: Program,
    entries: Vec<Entry>,
    layout: Layout,
    memory: Mutex<Option<Memory>>,
    pool: rayon::ThreadPool,
    options: Options,
    source: String,
    names: Vec<String>,
    /// Seconds per step, summed over runs, when profiling.
    times: Mutex<Vec<f64>>,
    /// Keeps the kernels mapped; declared last so it is dropped after everything using them.
    _jit: Jit,
}

impl std::fmt::Debug for Executable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executable")
            .field("source", &self.source)
            .field("steps", &self.program.steps.len())
            .field("arena_bytes", &self.arena_bytes())
            .field("threads", &self.options.threads)
            .finish()
    }
}

fn compile_error(graph: &Graph, reason: String) -> Error {
    Error::Graph {
        file: graph.source.clone(),
        reason: format!("code generation failed: {reason}"),
    }
}

impl Executable {
    /// Lowers, plans and compiles `graph` for `request`.
    pub fn compile(graph: &Graph, request: &Request, options: Options) -> Result<Executable> {
        let mut jit = Jit::new().map_err(|e| compile_error(graph, e))?;
        let request = Request {
            threads: options.threads.max(1),
            ..*request
        };
        let program = lower::lower(graph, jit.emitter(), &request)?;
        jit.finalize().map_err(|e| compile_error(graph, e))?;
        let entries = program
            .steps
            .iter()
            .map(|s| {
                let addr = |f| jit.address(f);
                // SAFETY: each FuncId was defined by the `Emitter` method matching the step kind,
                // with the parameter list of the function type it is cast to here (see
                // `emit::Signature`); the code stays mapped while `jit` lives, and the
                // executable owns `jit`.
                unsafe {
                    match s {
                        Step::Elementwise { func, .. } => Entry::Elementwise(
                            std::mem::transmute::<*const u8, ElementwiseFn>(addr(*func)),
                        ),
                        Step::Table { func, .. } => {
                            Entry::Table(std::mem::transmute::<*const u8, TableFn>(addr(*func)))
                        }
                        Step::Window { func, backward, .. } => {
                            if *backward {
                                Entry::WindowBackward(std::mem::transmute::<
                                    *const u8,
                                    WindowBackwardFn,
                                >(addr(
                                    *func,
                                )))
                            } else {
                                Entry::WindowForward(std::mem::transmute::<
                                    *const u8,
                                    WindowForwardFn,
                                >(addr(*func)))
                            }
                        }
                        _ => Entry::None,
                    }
                }
            })
            .collect();
        let layout = plan::plan(&program);
        let threads = options.threads.max(1);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .map_err(|e| compile_error(graph, e.to_string()))?;
        let names: Vec<String> = program
            .origin
            .iter()
            .map(|&n| graph.node(n).name.clone())
            .collect();
        Ok(Executable {
            program,
            entries,
            layout,
            memory: Mutex::new(None),
            pool,
            options: Options { threads, ..options },
            source: graph.source.clone(),
            times: Mutex::new(vec![0.0; names.len()]),
            names,
            _jit: jit,
        })
    }

    /// The lowered program (steps, buffers, constants).
    pub fn program(&self) -> &Program {
        &self.program
    }

    /// Bytes of the arena the plan packs every buffer into.
    pub fn arena_bytes(&self) -> usize {
        self.layout.len * 4
    }

    /// Bytes the buffers would take without sharing.
    pub fn unshared_bytes(&self) -> usize {
        self.layout.unshared * 4
    }

    pub fn threads(&self) -> usize {
        self.options.threads
    }

    /// Time per step summed over the runs so far, slowest first (empty unless compiled with
    /// `Options::profile`).
    pub fn profile(&self) -> Vec<StepTime> {
        let times = match self.times.lock() {
            Ok(t) => t.clone(),
            Err(_) => return Vec::new(),
        };
        let mut v: Vec<StepTime> = times
            .iter()
            .enumerate()
            .filter(|(_, t)| **t > 0.0)
            .map(|(s, &seconds)| StepTime {
                kind: self.program.steps[s].kind(),
                node: self.names[s].clone(),
                seconds,
            })
            .collect();
        v.sort_by(|a, b| b.seconds.total_cmp(&a.seconds));
        v
    }

    /// Starts a run: takes the executable's memory (allocating it on first use).
    pub fn session(&self) -> Result<Session<'_>> {
        let mut memory = self.memory.lock().map_err(|_| Error::Graph {
            file: self.source.clone(),
            reason: "a previous run panicked while holding the executable".into(),
        })?;
        if memory.is_none() {
            *memory = Some(Memory::new(
                &self.program,
                &self.layout,
                self.options.guard,
            )?);
        }
        Ok(Session { exe: self, memory })
    }
}

/// Where every buffer, constant and table is, as raw pointers into memory the `Memory` owns.
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
// program's constants, which the executable owns and never mutates; access is serialised by
// the executable's mutex.
unsafe impl Send for Memory {}
// SAFETY: shared references only read the pointer tables; what the pointers address is written
// by kernels of one step at a time, on disjoint ranges (see `Shared`).
unsafe impl Sync for Memory {}

impl Memory {
    fn new(p: &Program, layout: &Layout, guard: Option<GuardSide>) -> Result<Memory> {
        let mut regions = Vec::new();
        let mut arena = Vec::new();
        let (buffers, consts, tables): (Vec<*mut f32>, Vec<*const f32>, Vec<*const i32>) =
            match guard {
                None => {
                    arena = vec![0f32; layout.len];
                    let base = arena.as_mut_ptr();
                    // SAFETY: the plan places every buffer inside 0..layout.len.
                    let buffers = layout
                        .offsets
                        .iter()
                        .map(|&o| unsafe { base.add(o) })
                        .collect();
                    let consts = p.consts.iter().map(const_ptr).collect();
                    let tables = p.tables.iter().map(|t| t.as_ptr()).collect();
                    (buffers, consts, tables)
                }
                Some(side) => {
                    let mut region = |bytes: &[u8], len: usize| -> Result<*mut u8> {
                        let r = Region::new(len, side).map_err(|e| Error::Graph {
                            file: String::new(),
                            reason: format!("guarded allocation failed: {e}"),
                        })?;
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
                        .collect::<Result<_>>()?;
                    let consts = p
                        .consts
                        .iter()
                        .map(|c| {
                            let v = c.f32s().unwrap_or(&[]);
                            let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_ne_bytes()).collect();
                            region(&bytes, bytes.len()).map(|p| p.cast::<f32>().cast_const())
                        })
                        .collect::<Result<_>>()?;
                    let tables = p
                        .tables
                        .iter()
                        .map(|t| {
                            let bytes: Vec<u8> = t.iter().flat_map(|x| x.to_ne_bytes()).collect();
                            region(&bytes, bytes.len()).map(|p| p.cast::<i32>().cast_const())
                        })
                        .collect::<Result<_>>()?;
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

fn const_ptr(t: &Arc<Tensor>) -> *const f32 {
    t.f32s().map_or(std::ptr::null(), |s| s.as_ptr())
}

/// One run of an executable: write inputs, run the first phase, read, write the late inputs,
/// run the second phase, read.
pub struct Session<'e> {
    exe: &'e Executable,
    memory: MutexGuard<'e, Option<Memory>>,
}

impl Session<'_> {
    fn memory(&self) -> &Memory {
        self.memory
            .as_ref()
            .expect("Executable::session allocates the memory before creating a session")
    }

    fn input_error(&self, reason: String) -> Error {
        Error::Input {
            what: "input".into(),
            reason,
        }
    }

    /// Copies `value` into the buffer of graph input `node`.
    pub fn write(&mut self, node: NodeIndex, value: &Tensor) -> Result<()> {
        let p = &self.exe.program;
        let Some(&(_, b)) = p.inputs.iter().find(|(n, _)| *n == node) else {
            return Err(self.input_error(format!("{node:?} is not an input of the executable")));
        };
        let v = value
            .f32s()
            .map_err(|e| self.input_error(e.0.to_string()))?;
        if v.len() != p.buffers[b] {
            return Err(self.input_error(format!(
                "has {} values, the compiled input takes {}",
                v.len(),
                p.buffers[b]
            )));
        }
        let dst = self.memory().buffers[b];
        // SAFETY: the buffer holds p.buffers[b] == v.len() elements and no kernel is running
        // (the session holds the memory exclusively).
        unsafe { std::ptr::copy_nonoverlapping(v.as_ptr(), dst, v.len()) };
        Ok(())
    }

    /// Runs the steps that do not need the late inputs.
    pub fn run_first(&mut self) -> Result<()> {
        self.run(0..self.exe.program.split)
    }

    /// Runs the steps that need the late inputs (the seed).
    pub fn run_second(&mut self) -> Result<()> {
        self.run(self.exe.program.split..self.exe.program.steps.len())
    }

    /// Runs every step (for graphs without late inputs).
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
                    node: exe.names[s].clone(),
                    op: exe.program.steps[s].kind().into(),
                    reason,
                })?;
                if let (Some(t), Ok(mut times)) = (start, exe.times.lock()) {
                    times[s] += t.elapsed().as_secs_f64();
                }
            }
            Ok(())
        })
    }

    /// The value of output `node`.
    pub fn read(&self, node: NodeIndex) -> Result<Tensor> {
        let p = &self.exe.program;
        let Some((operand, shape)) = p.outputs.get(&node) else {
            return Err(self.input_error(format!("{node:?} is not an output of the executable")));
        };
        let values = self.exe.slice(self.memory(), *operand).to_vec();
        Tensor::from_f32(shape.clone(), values).map_err(|e| self.input_error(e.0))
    }

    /// The sum of the values of `node`, when it was asked for as a total.
    pub fn total(&self, node: NodeIndex) -> Option<f32> {
        let b = *self.exe.program.totals.get(&node)?;
        Some(self.exe.slice(self.memory(), Operand::Buffer(b))[0])
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
        match o {
            Operand::Buffer(b) => self.program.buffers[b],
            Operand::Const(c) => self.program.consts[c].len(),
        }
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
                    conv,
                    x,
                    w,
                    bias,
                    out,
                    col,
                },
                _,
            ) => {
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
                    conv,
                    dy,
                    w,
                    out,
                    col,
                },
                _,
            ) => {
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
                    let (cv, t) = (self.slice(m, *c), &self.program.tables[*table]);
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
            (Step::Total { src, len, out }, _) => {
                let total: f32 = self.slice(m, *src)[..*len].iter().sum();
                self.slice_mut(m, *out)[0] = total;
            }
            (step, _) => return Err(format!("no kernel for the {} step", step.kind())),
        }
        Ok(())
    }
}

/// Compiles a graph for a plain forward run: every graph output is read back.
pub fn compile_forward(graph: &Graph, options: Options) -> Result<Executable> {
    let outputs: Vec<NodeIndex> = graph.outputs.iter().map(|o| o.node).collect();
    Executable::compile(
        graph,
        &Request {
            outputs: &outputs,
            totals: &[],
            late: &[],
            threads: options.threads,
        },
        options,
    )
}

/// Runs a forward executable on its single input.
pub fn run_forward(exe: &Executable, graph: &Graph, input: &Tensor) -> Result<Vec<Tensor>> {
    let mut s = exe.session()?;
    s.write(graph.inputs[0], input)?;
    s.run_all()?;
    graph.outputs.iter().map(|o| s.read(o.node)).collect()
}
