//! The element-wise kernel body: an f32x4 loop while 4 elements remain (when every instruction
//! and access has a vector form), then a scalar loop for the rest.

use cranelift_codegen::ir::condcodes::FloatCC;
use cranelift_codegen::ir::{FuncRef, InstBuilder, MemFlagsData, Type, Value, types};
use cranelift_frontend::FunctionBuilder;

use super::Imports;
use super::loops::for_range;
use crate::ir::ops::{Activation, BinaryOp, Pointwise};
use crate::runtime::elementwise::{Access, Instr, Kernel};

/// Parameters: (input pointer array, out, start, end); elements start..end are written, each
/// input read where its `Access` says. `start` must be a multiple of 4 for periodic inputs.
pub fn build(b: &mut FunctionBuilder, k: &Kernel, ptr: Type, calls: &Imports) {
    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    let params = b.block_params(entry).to_vec();
    let (inputs, out, start, end) = (params[0], params[1], params[2], params[3]);
    let flags = MemFlagsData::new().with_notrap();
    let bases: Vec<Value> = (0..k.inputs.len())
        .map(|i| b.ins().load(ptr, flags, inputs, (i * 8) as i32))
        .collect();
    let mut i = start;
    let widths: &[i64] = if k.vectorizable() { &[4, 1] } else { &[1] };
    for &width in widths {
        let ty = if width == 4 { types::F32X4 } else { types::F32 };
        i = for_range(b, i, end, width, |b, i| {
            let loads: Vec<Value> = bases
                .iter()
                .zip(&k.inputs)
                .map(|(&base, &access)| load(b, base, access, i, ty))
                .collect();
            let value = emit(b, k, &loads, ty, calls);
            let offset = b.ins().imul_imm_s(i, 4);
            let addr = b.ins().iadd(out, offset);
            b.ins().store(flags, value, addr, 0);
        });
    }
    b.ins().return_(&[]);
}

/// Loads the element(s) of one input for output element `i` (and the 3 after it for vectors).
fn load(b: &mut FunctionBuilder, base: Value, access: Access, i: Value, ty: Type) -> Value {
    let flags = MemFlagsData::new().with_notrap();
    let (index, splat) = match access {
        Access::Full => (i, false),
        Access::Periodic { period: 1, .. } => (b.ins().iconst(types::I64, 0), true),
        Access::Periodic { inner, period } => {
            let q = if inner > 1 {
                b.ins().udiv_imm_u(i, inner as i64)
            } else {
                i
            };
            (b.ins().urem_imm_u(q, period as i64), inner > 1)
        }
    };
    let offset = b.ins().imul_imm_s(index, 4);
    let addr = b.ins().iadd(base, offset);
    if ty.is_vector() && splat {
        let v = b.ins().load(types::F32, flags, addr, 0);
        b.ins().splat(ty, v)
    } else {
        b.ins().load(ty, flags, addr, 0)
    }
}

/// A constant of type `ty` (splatted for vectors).
fn konst(b: &mut FunctionBuilder, ty: Type, v: f32) -> Value {
    let c = b.ins().f32const(v);
    if ty.is_vector() {
        b.ins().splat(ty, c)
    } else {
        c
    }
}

/// `cond(a, b) ? t : f` lane-wise.
fn select(
    b: &mut FunctionBuilder,
    ty: Type,
    cc: FloatCC,
    a: Value,
    x: Value,
    t: Value,
    f: Value,
) -> Value {
    let mask = b.ins().fcmp(cc, a, x);
    if ty.is_vector() {
        let mask = b.ins().bitcast(ty, MemFlagsData::new(), mask);
        b.ins().bitselect(mask, t, f)
    } else {
        b.ins().select(mask, t, f)
    }
}

/// One scalar call per lane (only scalar kernels use the libm functions).
fn call1(b: &mut FunctionBuilder, f: FuncRef, x: Value) -> Value {
    let call = b.ins().call(f, &[x]);
    b.inst_results(call)[0]
}

fn emit(b: &mut FunctionBuilder, k: &Kernel, loads: &[Value], ty: Type, calls: &Imports) -> Value {
    let mut v: Vec<Value> = Vec::with_capacity(k.body.len());
    for ins in &k.body {
        let zero = konst(b, ty, 0.0);
        let one = konst(b, ty, 1.0);
        let value = match *ins {
            Instr::Load(i) => loads[i],
            Instr::Const(c) => konst(b, ty, c),
            Instr::Binary(op, x, y) => {
                let (x, y) = (v[x as usize], v[y as usize]);
                match op {
                    BinaryOp::Add => b.ins().fadd(x, y),
                    BinaryOp::Sub => b.ins().fsub(x, y),
                    BinaryOp::Mul => b.ins().fmul(x, y),
                    BinaryOp::Div => b.ins().fdiv(x, y),
                }
            }
            Instr::Pointwise(p, x) => {
                let x = v[x as usize];
                match p {
                    Pointwise::Stabilize { epsilon } => {
                        let (pos, neg) = (konst(b, ty, epsilon), konst(b, ty, -epsilon));
                        let s = select(b, ty, FloatCC::GreaterThanOrEqual, x, zero, pos, neg);
                        b.ins().fadd(x, s)
                    }
                    Pointwise::Positive => b.ins().fmax(x, zero),
                    Pointwise::Negative => b.ins().fmin(x, zero),
                    Pointwise::IsPositive => {
                        select(b, ty, FloatCC::GreaterThan, x, zero, one, zero)
                    }
                    Pointwise::IsNegative => select(b, ty, FloatCC::LessThan, x, zero, one, zero),
                    Pointwise::Square => b.ins().fmul(x, x),
                    Pointwise::One => one,
                }
            }
            Instr::Activation(a, x) => {
                let x = v[x as usize];
                match a {
                    Activation::Relu => b.ins().fmax(x, zero),
                    Activation::LeakyRelu { alpha } => {
                        let s = konst(b, ty, alpha);
                        let neg = b.ins().fmul(x, s);
                        select(b, ty, FloatCC::GreaterThanOrEqual, x, zero, x, neg)
                    }
                    Activation::Clip { min, max } => {
                        let (lo, hi) = (konst(b, ty, min), konst(b, ty, max));
                        let m = b.ins().fmax(x, lo);
                        b.ins().fmin(m, hi)
                    }
                    Activation::Sigmoid => sigmoid(b, x, one, calls),
                    Activation::Tanh => call1(b, calls.tanh, x),
                }
            }
            Instr::ActivationGrad(a, x, dy) => {
                let (x, dy) = (v[x as usize], v[dy as usize]);
                match a {
                    Activation::Relu => select(b, ty, FloatCC::GreaterThan, x, zero, dy, zero),
                    Activation::LeakyRelu { alpha } => {
                        let s = konst(b, ty, alpha);
                        let scaled = b.ins().fmul(dy, s);
                        select(b, ty, FloatCC::GreaterThan, x, zero, dy, scaled)
                    }
                    Activation::Clip { min, max } => {
                        let (lo, hi) = (konst(b, ty, min), konst(b, ty, max));
                        let above = select(b, ty, FloatCC::GreaterThan, x, lo, dy, zero);
                        select(b, ty, FloatCC::LessThan, x, hi, above, zero)
                    }
                    Activation::Sigmoid => {
                        let s = sigmoid(b, x, one, calls);
                        let t = b.ins().fsub(one, s);
                        let d = b.ins().fmul(s, t);
                        b.ins().fmul(dy, d)
                    }
                    Activation::Tanh => {
                        let t = call1(b, calls.tanh, x);
                        let t2 = b.ins().fmul(t, t);
                        let d = b.ins().fsub(one, t2);
                        b.ins().fmul(dy, d)
                    }
                }
            }
        };
        v.push(value);
    }
    v[k.output as usize]
}

/// 1 / (1 + exp(-x)), scalar.
fn sigmoid(b: &mut FunctionBuilder, x: Value, one: Value, calls: &Imports) -> Value {
    let neg = b.ins().fneg(x);
    let e = call1(b, calls.exp, neg);
    let d = b.ins().fadd(one, e);
    b.ins().fdiv(one, d)
}
