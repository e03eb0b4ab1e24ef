//! The checks that keep kernels in bounds whatever program they are handed: every index a step
//! holds points at something that exists, every kernel reads only elements its operands have and
//! writes only its outputs, and no step writes what it reads. Lowering produces programs that
//! pass by construction; an artifact's program passes or is refused before anything runs.

use super::elementwise::{Access, Kernel};
use super::gemm::ConvShape;
use super::program::{KernelDesc, Operand, Program, Step};
use super::table::{NONE, Reduce, TableKernel, WindowKernel};
use crate::ir::ops::util::norm_axis;

type Check = Result<(), String>;

/// The largest buffer a program may ask for, in f32 elements (4 TB): far beyond any model,
/// and small enough that sizes and offsets computed from it cannot overflow.
pub const MAX_BUFFER: usize = 1 << 40;

macro_rules! ensure {
    ($cond:expr, $($arg:tt)*) => {
        if !$cond {
            return Err(format!($($arg)*));
        }
    };
}

/// Checks the whole program; the error names the step (index, kind and node) at fault.
pub fn program(p: &Program) -> Check {
    ensure!(
        p.step_names.len() == p.steps.len(),
        "{} step names for {} steps",
        p.step_names.len(),
        p.steps.len()
    );
    ensure!(
        p.split <= p.steps.len(),
        "phase split {} beyond {} steps",
        p.split,
        p.steps.len()
    );
    if let Some(b) = p.buffers.iter().position(|&len| len > MAX_BUFFER) {
        return Err(format!(
            "buffer {b} of {} elements is over the limit of {MAX_BUFFER}",
            p.buffers[b]
        ));
    }
    for (k, desc) in p.kernels.iter().enumerate() {
        kernel(desc).map_err(|e| format!("kernel {k}: {e}"))?;
    }
    for (i, s) in p.steps.iter().enumerate() {
        step(p, s).map_err(|e| format!("step {i} ({}, '{}'): {e}", s.kind(), p.step_names[i]))?;
    }
    for (what, ports) in [
        ("input", &p.inputs),
        ("output", &p.outputs),
        ("total", &p.totals),
    ] {
        for port in ports {
            let len =
                operand(p, port.operand).map_err(|e| format!("{what} '{}': {e}", port.name))?;
            let want = if what == "total" {
                1
            } else {
                checked_numel(&port.shape)?
            };
            ensure!(
                len >= want,
                "{what} '{}' of shape {:?} has a value of {len} elements",
                port.name,
                port.shape
            );
            if what == "input" {
                ensure!(
                    matches!(port.operand, Operand::Buffer(_)) && len == want,
                    "input '{}' must be a buffer of exactly its shape",
                    port.name
                );
            }
        }
    }
    for &b in &p.kept {
        ensure!(b < p.buffers.len(), "kept buffer {b} does not exist");
    }
    Ok(())
}

fn checked_numel(shape: &[usize]) -> Result<usize, String> {
    shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| format!("shape {shape:?} overflows"))
}

fn kernel(desc: &KernelDesc) -> Check {
    match desc {
        KernelDesc::Elementwise(k) => elementwise(k),
        KernelDesc::Table(_) => Ok(()),
        KernelDesc::Window { kernel, backward } => {
            ensure!(
                kernel.in_plane > 0 && kernel.outputs > 0 && kernel.taps > 0,
                "a window kernel needs a non-empty plane, outputs and taps: {kernel:?}"
            );
            if let Reduce::Indices { column_height, .. } = kernel.reduce {
                ensure!(!backward, "an indices window has no backward form");
                ensure!(
                    column_height == 0 || kernel.in_plane.is_multiple_of(column_height),
                    "a column height of {column_height} does not divide a plane of {}",
                    kernel.in_plane
                );
            }
            Ok(())
        }
    }
}

fn elementwise(k: &Kernel) -> Check {
    k.validate().map_err(|e| e.0)?;
    for a in &k.inputs {
        if let Access::Periodic { inner, period } = *a {
            // The emitted code divides by both.
            ensure!(
                inner >= 1 && period >= 1,
                "periodic access with inner {inner} and period {period}"
            );
        }
    }
    Ok(())
}

/// Elements of operand `o`, if it exists.
fn operand(p: &Program, o: Operand) -> Result<usize, String> {
    match o {
        Operand::Buffer(b) => p
            .buffers
            .get(b)
            .copied()
            .ok_or_else(|| format!("buffer {b} does not exist")),
        Operand::Const(c) => p
            .consts
            .get(c)
            .map(|c| c.len())
            .ok_or_else(|| format!("constant {c} does not exist")),
    }
}

fn buffer(p: &Program, b: usize) -> Result<usize, String> {
    operand(p, Operand::Buffer(b))
}

fn table(p: &Program, t: usize) -> Result<&[i32], String> {
    p.tables
        .get(t)
        .map(|t| t.as_slice())
        .ok_or_else(|| format!("table {t} does not exist"))
}

fn kernel_of(p: &Program, k: usize) -> Result<&KernelDesc, String> {
    p.kernels
        .get(k)
        .ok_or_else(|| format!("kernel {k} does not exist"))
}

fn at_least(what: &str, have: usize, need: usize) -> Check {
    ensure!(
        have >= need,
        "{what} holds {have} elements, the step reads or writes {need}"
    );
    Ok(())
}

fn step(p: &Program, s: &Step) -> Check {
    let (reads, writes) = s.operands();
    for &o in &reads {
        operand(p, o)?;
    }
    for &b in &writes {
        buffer(p, b)?;
        ensure!(
            !reads.contains(&Operand::Buffer(b)),
            "buffer {b} is both read and written"
        );
    }
    match s {
        Step::Elementwise {
            kernel,
            inputs,
            out,
            len,
        } => {
            let KernelDesc::Elementwise(k) = kernel_of(p, *kernel)? else {
                return Err("calls a kernel of another kind".into());
            };
            ensure!(
                k.inputs.len() == inputs.len(),
                "the kernel reads {} inputs, the step passes {}",
                k.inputs.len(),
                inputs.len()
            );
            for (a, &o) in k.inputs.iter().zip(inputs) {
                at_least("an input", operand(p, o)?, a.required_len(*len))?;
            }
            at_least("the output", buffer(p, *out)?, *len)
        }
        Step::Table {
            kernel,
            src,
            table: t,
            out,
            len,
        } => {
            let KernelDesc::Table(k) = kernel_of(p, *kernel)? else {
                return Err("calls a kernel of another kind".into());
            };
            let entries = table(p, *t)?;
            at_least("the table", entries.len(), *len)?;
            let (src_len, out_len) = (operand(p, *src)?, buffer(p, *out)?);
            match k {
                TableKernel::Gather { .. } => {
                    at_least("the output", out_len, *len)?;
                    ensure!(
                        entries[..*len]
                            .iter()
                            .all(|&e| e == NONE || (e >= 0 && (e as usize) < src_len)),
                        "a gather table entry lies outside its source of {src_len}"
                    );
                }
                TableKernel::Scatter => {
                    at_least("the source", src_len, *len)?;
                    // Chunks of a scatter run in parallel: entries must be distinct.
                    let mut seen = vec![false; out_len];
                    for &e in &entries[..*len] {
                        ensure!(
                            e >= 0 && (e as usize) < out_len,
                            "a scatter table entry {e} lies outside its output of {out_len}"
                        );
                        ensure!(
                            !std::mem::replace(&mut seen[e as usize], true),
                            "a scatter table writes position {e} twice"
                        );
                    }
                }
            }
            Ok(())
        }
        Step::Window {
            kernel,
            x,
            dy,
            table: t,
            counts,
            out,
            planes,
        } => {
            let KernelDesc::Window {
                kernel: k,
                backward,
            } = kernel_of(p, *kernel)?
            else {
                return Err("calls a kernel of another kind".into());
            };
            ensure!(
                *backward == dy.is_some(),
                "the kernel's direction does not match the step's operands"
            );
            window(p, k, *t, *counts)?;
            let (in_len, out_plane) = (
                k.in_plane
                    .checked_mul(*planes)
                    .ok_or("the input size overflows")?,
                k.outputs
                    .checked_mul(*planes)
                    .ok_or("the output size overflows")?,
            );
            at_least("the input", operand(p, *x)?, in_len)?;
            if let Some(d) = dy {
                at_least("the gradient", operand(p, *d)?, out_plane)?;
                at_least("the output", buffer(p, *out)?, in_len)
            } else {
                at_least("the output", buffer(p, *out)?, out_plane)
            }
        }
        Step::Conv {
            conv,
            x,
            w,
            bias,
            out,
            col,
        } => {
            let (xl, yl, wl) = conv_sizes(conv)?;
            at_least("the input", operand(p, *x)?, xl)?;
            at_least("the weights", operand(p, *w)?, wl)?;
            if let Some(b) = bias {
                at_least("the bias", operand(p, *b)?, conv.cout)?;
            }
            if let Some(c) = col {
                buffer(p, *c)?;
            }
            at_least("the output", buffer(p, *out)?, yl)
        }
        Step::ConvTranspose {
            conv,
            dy,
            w,
            out,
            col,
        } => {
            let (xl, yl, wl) = conv_sizes(conv)?;
            at_least("the gradient", operand(p, *dy)?, yl)?;
            at_least("the weights", operand(p, *w)?, wl)?;
            if let Some(c) = col {
                buffer(p, *c)?;
            }
            at_least("the output", buffer(p, *out)?, xl)
        }
        Step::Gemm {
            dims: (m, k, n),
            a,
            a_strides,
            b,
            b_strides,
            c,
            out,
            ..
        } => {
            let covers = |len: usize, rows: usize, cols: usize, (rs, cs): (usize, usize)| {
                rows == 0
                    || cols == 0
                    || (rows - 1)
                        .checked_mul(rs)
                        .zip((cols - 1).checked_mul(cs))
                        .and_then(|(r, c)| r.checked_add(c))
                        .is_some_and(|last| last < len)
            };
            ensure!(
                covers(operand(p, *a)?, *m, *k, *a_strides),
                "A does not cover {m} x {k} at strides {a_strides:?}"
            );
            ensure!(
                covers(operand(p, *b)?, *k, *n, *b_strides),
                "B does not cover {k} x {n} at strides {b_strides:?}"
            );
            let mn = m.checked_mul(*n).ok_or("m x n overflows")?;
            at_least("the output", buffer(p, *out)?, mn)?;
            if let Some((c, t, _)) = c {
                let cl = operand(p, *c)?;
                let entries = table(p, *t)?;
                ensure!(
                    entries.len() == mn && entries.iter().all(|&e| e >= 0 && (e as usize) < cl),
                    "the broadcast table of C does not fit {m} x {n} over {cl} elements"
                );
            }
            Ok(())
        }
        Step::MatMul {
            dims: (m, k, n),
            pairs,
            a,
            b,
            out,
        } => {
            let (mk, kn, mn) = (
                m.checked_mul(*k).ok_or("m x k overflows")?,
                k.checked_mul(*n).ok_or("k x n overflows")?,
                m.checked_mul(*n).ok_or("m x n overflows")?,
            );
            let (al, bl) = (operand(p, *a)?, operand(p, *b)?);
            for &(ia, ib) in pairs {
                ensure!(
                    (ia + 1).checked_mul(mk).is_some_and(|e| e <= al)
                        && (ib + 1).checked_mul(kn).is_some_and(|e| e <= bl),
                    "batch pair ({ia}, {ib}) lies outside the operands"
                );
            }
            let total = pairs.len().checked_mul(mn).ok_or("the output overflows")?;
            at_least("the output", buffer(p, *out)?, total)
        }
        Step::Softmax { op, shape, x, out } => {
            norm_axis(op.axis, shape.len()).map_err(|e| e.0)?;
            let len = checked_numel(shape)?;
            at_least("the input", operand(p, *x)?, len)?;
            at_least("the output", buffer(p, *out)?, len)
        }
        Step::Lookup {
            outer,
            rows,
            inner,
            ids,
            data,
            indices,
            out,
        } => {
            ensure!(*inner >= 1, "a lookup with empty rows");
            let table = checked_numel(&[*outer, *rows, *inner])?;
            at_least("the table", operand(p, *data)?, table)?;
            at_least("the indices", operand(p, *indices)?, *ids)?;
            at_least(
                "the output",
                buffer(p, *out)?,
                checked_numel(&[*outer, *ids, *inner])?,
            )
        }
        Step::Lrn {
            op,
            shape,
            x,
            dy,
            out,
        } => {
            ensure!(
                shape.len() >= 3 && op.size >= 1 && shape[1] >= 1,
                "LRN over shape {shape:?} with size {}",
                op.size
            );
            let len = checked_numel(shape)?;
            at_least("the input", operand(p, *x)?, len)?;
            if let Some(d) = dy {
                at_least("the gradient", operand(p, *d)?, len)?;
            }
            at_least("the output", buffer(p, *out)?, len)
        }
        Step::Total { src, len, out } => {
            at_least("the source", operand(p, *src)?, *len)?;
            at_least("the output", buffer(p, *out)?, 1)
        }
    }
}

fn window(p: &Program, k: &WindowKernel, t: usize, counts: usize) -> Check {
    let entries = table(p, t)?;
    let want = k
        .outputs
        .checked_mul(k.taps)
        .ok_or("the window table overflows")?;
    ensure!(
        entries.len() == want,
        "the window table has {} entries for {} outputs of {} taps",
        entries.len(),
        k.outputs,
        k.taps
    );
    ensure!(
        entries
            .iter()
            .all(|&e| e == NONE || (e >= 0 && (e as usize) < k.in_plane)),
        "a window table entry lies outside its plane of {}",
        k.in_plane
    );
    at_least("the counts", operand(p, Operand::Const(counts))?, k.outputs)
}

/// (input, output, weight) element counts of a convolution whose geometry is consistent.
fn conv_sizes(c: &ConvShape) -> Result<(usize, usize, usize), String> {
    let q = &c.plane;
    ensure!(
        c.group >= 1 && c.cin.is_multiple_of(c.group) && c.cout.is_multiple_of(c.group),
        "{} input and {} output channels in {} groups",
        c.cin,
        c.cout,
        c.group
    );
    ensure!(
        q.kh >= 1 && q.kw >= 1 && q.sh >= 1 && q.sw >= 1 && q.dh >= 1 && q.dw >= 1,
        "kernel, strides and dilations must be positive: {q:?}"
    );
    let d = &q.depth;
    ensure!(
        d.i >= 1 && d.o >= 1 && d.k >= 1 && d.s >= 1 && d.d >= 1,
        "depth, its kernel, stride and dilation must be positive: {q:?}"
    );
    ensure!(
        q.ih.is_multiple_of(d.i) && q.oh.is_multiple_of(d.o) && q.kh.is_multiple_of(d.k),
        "rows {} / {} / {} are not whole planes of depth {} / {} / {}",
        q.ih,
        q.oh,
        q.kh,
        d.i,
        d.o,
        d.k
    );
    let (hi, ho, hk) = q.heights();
    for (input, before, after, kernel, dilation, stride, output) in [
        (d.i, d.pb, d.pe, d.k, d.d, d.s, d.o),
        (hi, q.pt, q.pb, hk, q.dh, q.sh, ho),
        (q.iw, q.pl, q.pr, q.kw, q.dw, q.sw, q.ow),
    ] {
        let fits = || -> Option<bool> {
            let padded = input.checked_add(before)?.checked_add(after)?;
            let extent = (kernel - 1).checked_mul(dilation)?.checked_add(1)?;
            Some(
                padded <= MAX_BUFFER
                    && padded >= extent
                    && output == (padded - extent) / stride + 1,
            )
        };
        ensure!(
            fits() == Some(true),
            "output size {output} does not follow from input {input}, padding ({before}, {after}), kernel {kernel}, dilation {dilation}, stride {stride}"
        );
    }
    let dims = |v: &[usize]| checked_numel(v);
    Ok((
        dims(&[c.batch, c.cin, q.ih, q.iw])?,
        dims(&[c.batch, c.cout, q.oh, q.ow])?,
        dims(&[c.cout, c.cin / c.group, q.kh, q.kw])?,
    ))
}
