//! Gather/scatter and pooling loops over compile-time tables. Padding taps (`NONE`) are read at a
//! clamped index 0 and their value discarded with a select, so no branch sits in the tap loop and
//! no load leaves the plane.

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{InstBuilder, MemFlagsData, Type, Value, types};
use cranelift_frontend::FunctionBuilder;

use super::loops::for_range;
use crate::runtime::table::{Reduce, TableKernel, WindowKernel};

fn params(b: &mut FunctionBuilder) -> Vec<Value> {
    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    b.block_params(entry).to_vec()
}

/// `base + 4 * index` for an i64 index.
fn at(b: &mut FunctionBuilder, base: Value, index: Value) -> Value {
    let offset = b.ins().imul_imm_s(index, 4);
    b.ins().iadd(base, offset)
}

/// Table entry `i` (i32, sign-extended) and whether it is a real index.
fn entry(b: &mut FunctionBuilder, table: Value, i: Value) -> (Value, Value) {
    let addr = at(b, table, i);
    let t = b
        .ins()
        .load(types::I32, MemFlagsData::new().with_notrap(), addr, 0);
    let t = b.ins().sextend(types::I64, t);
    let valid = b.ins().icmp_imm_s(IntCC::SignedGreaterThanOrEqual, t, 0);
    let zero = b.ins().iconst(types::I64, 0);
    (b.ins().select(valid, t, zero), valid)
}

/// (src, table, out, start, end).
pub fn build_table(b: &mut FunctionBuilder, kernel: TableKernel, _ptr: Type) {
    let p = params(b);
    let (src, table, out, start, end) = (p[0], p[1], p[2], p[3], p[4]);
    let flags = MemFlagsData::new().with_notrap();
    for_range(b, start, end, 1, |b, i| match kernel {
        TableKernel::Gather { fill } => {
            let (t, valid) = entry(b, table, i);
            let addr = at(b, src, t);
            let v = b.ins().load(types::F32, flags, addr, 0);
            let fill = b.ins().f32const(fill);
            let v = b.ins().select(valid, v, fill);
            let addr = at(b, out, i);
            b.ins().store(flags, v, addr, 0);
        }
        TableKernel::Scatter => {
            let (t, _) = entry(b, table, i);
            let addr = at(b, src, i);
            let v = b.ins().load(types::F32, flags, addr, 0);
            let addr = at(b, out, t);
            b.ins().store(flags, v, addr, 0);
        }
    });
    b.ins().return_(&[]);
}

/// (src, table, counts, out, first plane, end plane).
pub fn build_window_forward(b: &mut FunctionBuilder, k: &WindowKernel, _ptr: Type) {
    let p = params(b);
    let (src, table, counts, out, p0, p1) = (p[0], p[1], p[2], p[3], p[4], p[5]);
    let flags = MemFlagsData::new().with_notrap();
    let zero = b.ins().iconst(types::I64, 0);
    let outputs = b.ins().iconst(types::I64, k.outputs as i64);
    let taps = b.ins().iconst(types::I64, k.taps as i64);
    if let Reduce::Indices { .. } = k.reduce {
        build_indices(b, k, (src, table, out, p0, p1));
        return;
    }
    let acc = b.declare_var(types::F32);
    for_range(b, p0, p1, 1, |b, plane| {
        let in_base = b.ins().imul_imm_s(plane, k.in_plane as i64);
        let in_base = at(b, src, in_base);
        let out_base = b.ins().imul_imm_s(plane, k.outputs as i64);
        for_range(b, zero, outputs, 1, |b, o| {
            let init = match k.reduce {
                Reduce::Average => 0.0,
                _ => f32::NEG_INFINITY,
            };
            let init = b.ins().f32const(init);
            b.def_var(acc, init);
            let row = b.ins().imul_imm_s(o, k.taps as i64);
            for_range(b, zero, taps, 1, |b, tap| {
                let i = b.ins().iadd(row, tap);
                let (t, valid) = entry(b, table, i);
                let addr = at(b, in_base, t);
                let v = b.ins().load(types::F32, flags, addr, 0);
                let a = b.use_var(acc);
                // Max as compare-and-select (one maxss-like pair, where Cranelift's fmax is a
                // NaN-propagating sequence): a NaN tap is skipped, as Rust's f32::max does in
                // the reference; padding taps are never taken.
                let next = match k.reduce {
                    Reduce::Average => {
                        let s = b.ins().fadd(a, v);
                        b.ins().select(valid, s, a)
                    }
                    _ => {
                        let gt = b.ins().fcmp(FloatCC::GreaterThan, v, a);
                        let take = b.ins().band(gt, valid);
                        b.ins().select(take, v, a)
                    }
                };
                b.def_var(acc, next);
            });
            let mut v = b.use_var(acc);
            if k.reduce == Reduce::Average {
                let addr = at(b, counts, o);
                let c = b.ins().load(types::F32, flags, addr, 0);
                v = b.ins().fdiv(v, c);
            }
            let oi = b.ins().iadd(out_base, o);
            let addr = at(b, out, oi);
            b.ins().store(flags, v, addr, 0);
        });
    });
    b.ins().return_(&[]);
}

/// (x, dy, table, counts, dx, first plane, end plane): zeroes each dx plane, then routes each
/// output's gradient to its first largest tap (Max) or spreads it over the real taps (Average).
pub fn build_window_backward(b: &mut FunctionBuilder, k: &WindowKernel, _ptr: Type) {
    let p = params(b);
    let (x, dy, table, counts, dx, p0, p1) = (p[0], p[1], p[2], p[3], p[4], p[5], p[6]);
    let flags = MemFlagsData::new().with_notrap();
    let zero = b.ins().iconst(types::I64, 0);
    let in_plane = b.ins().iconst(types::I64, k.in_plane as i64);
    let outputs = b.ins().iconst(types::I64, k.outputs as i64);
    let taps = b.ins().iconst(types::I64, k.taps as i64);
    for_range(b, p0, p1, 1, |b, plane| {
        let first = b.ins().imul_imm_s(plane, k.in_plane as i64);
        let x_base = at(b, x, first);
        let dx_base = at(b, dx, first);
        let out_base = b.ins().imul_imm_s(plane, k.outputs as i64);
        let fzero = b.ins().f32const(0.0);
        for_range(b, zero, in_plane, 1, |b, i| {
            let addr = at(b, dx_base, i);
            b.ins().store(flags, fzero, addr, 0);
        });
        for_range(b, zero, outputs, 1, |b, o| {
            let oi = b.ins().iadd(out_base, o);
            let addr = at(b, dy, oi);
            let d = b.ins().load(types::F32, flags, addr, 0);
            let row = b.ins().imul_imm_s(o, k.taps as i64);
            match k.reduce {
                Reduce::Max => {
                    let bi = best_tap(b, (table, x_base, row), k.taps, FloatCC::GreaterThan);
                    let found = b.ins().icmp_imm_s(IntCC::SignedGreaterThanOrEqual, bi, 0);
                    let (store, after) = (b.create_block(), b.create_block());
                    b.ins().brif(found, store, &[], after, &[]);
                    b.switch_to_block(store);
                    add_to(b, dx_base, bi, d);
                    b.ins().jump(after, &[]);
                    b.switch_to_block(after);
                }
                // Validation refuses a backward indices kernel.
                Reduce::Indices { .. } => {}
                Reduce::Average => {
                    let addr = at(b, counts, o);
                    let c = b.ins().load(types::F32, flags, addr, 0);
                    let share = b.ins().fdiv(d, c);
                    for_range(b, zero, taps, 1, |b, tap| {
                        let i = b.ins().iadd(row, tap);
                        let (t, valid) = entry(b, table, i);
                        let fz = b.ins().f32const(0.0);
                        let add = b.ins().select(valid, share, fz);
                        add_to(b, dx_base, t, add);
                    });
                }
            }
        });
    });
    b.ins().return_(&[]);
}

/// Scans each window for its first (or last) largest tap, as the backward Max does, and stores
/// that tap's index (see `Reduce::index`) as an f32 integer, -1 for a window of padding only.
fn build_indices(
    b: &mut FunctionBuilder,
    k: &WindowKernel,
    p: (Value, Value, Value, Value, Value),
) {
    let (src, table, out, p0, p1) = p;
    let Reduce::Indices {
        whole_tensor,
        last,
        column_height,
    } = k.reduce
    else {
        return;
    };
    let flags = MemFlagsData::new().with_notrap();
    let zero = b.ins().iconst(types::I64, 0);
    let outputs = b.ins().iconst(types::I64, k.outputs as i64);
    for_range(b, p0, p1, 1, |b, plane| {
        let first = b.ins().imul_imm_s(plane, k.in_plane as i64);
        let x_base = at(b, src, first);
        let out_base = b.ins().imul_imm_s(plane, k.outputs as i64);
        for_range(b, zero, outputs, 1, |b, o| {
            let row = b.ins().imul_imm_s(o, k.taps as i64);
            let cc = if last {
                FloatCC::GreaterThanOrEqual
            } else {
                FloatCC::GreaterThan
            };
            let bi = best_tap(b, (table, x_base, row), k.taps, cc);
            let none = b.ins().iconst(types::I64, -1);
            let found = b.ins().icmp_imm_s(IntCC::SignedGreaterThanOrEqual, bi, 0);
            let mut index = bi;
            if let Some(width) = k.in_plane.checked_div(column_height) {
                // A positive constant divisor: sdiv and srem cannot trap.
                let width = b.ins().iconst(types::I64, (width as i64).max(1));
                let r = b.ins().sdiv(bi, width);
                let c = b.ins().srem(bi, width);
                let c = b.ins().imul_imm_s(c, column_height as i64);
                index = b.ins().iadd(c, r);
            }
            if whole_tensor {
                index = b.ins().iadd(index, first);
            }
            let index = b.ins().select(found, index, none);
            let v = b.ins().fcvt_from_sint(types::F32, index);
            let oi = b.ins().iadd(out_base, o);
            let addr = at(b, out, oi);
            b.ins().store(flags, v, addr, 0);
        });
    });
    b.ins().return_(&[]);
}

/// The table index of the window's best tap (the first real tap, then any that beats the best
/// so far by `cc`), or -1 when every tap is padding; given (table, plane base, the window's
/// first table entry).
fn best_tap(
    b: &mut FunctionBuilder,
    (table, x_base, row): (Value, Value, Value),
    taps: usize,
    cc: FloatCC,
) -> Value {
    let flags = MemFlagsData::new().with_notrap();
    let best = b.declare_var(types::I64);
    let best_v = b.declare_var(types::F32);
    let none = b.ins().iconst(types::I64, -1);
    b.def_var(best, none);
    let ninf = b.ins().f32const(f32::NEG_INFINITY);
    b.def_var(best_v, ninf);
    let zero = b.ins().iconst(types::I64, 0);
    let taps = b.ins().iconst(types::I64, taps as i64);
    for_range(b, zero, taps, 1, |b, tap| {
        let i = b.ins().iadd(row, tap);
        let (t, valid) = entry(b, table, i);
        let addr = at(b, x_base, t);
        let v = b.ins().load(types::F32, flags, addr, 0);
        let (bi, bv) = (b.use_var(best), b.use_var(best_v));
        let beats = b.ins().fcmp(cc, v, bv);
        let unset = b.ins().icmp_imm_s(IntCC::SignedLessThan, bi, 0);
        let better = b.ins().bor(beats, unset);
        let take = b.ins().band(better, valid);
        let nbi = b.ins().select(take, t, bi);
        let nbv = b.ins().select(take, v, bv);
        b.def_var(best, nbi);
        b.def_var(best_v, nbv);
    });
    b.use_var(best)
}

/// base[i] += v.
fn add_to(b: &mut FunctionBuilder, base: Value, i: Value, v: Value) {
    let flags = MemFlagsData::new().with_notrap();
    let addr = at(b, base, i);
    let old = b.ins().load(types::F32, flags, addr, 0);
    let new = b.ins().fadd(old, v);
    b.ins().store(flags, new, addr, 0);
}
