//! The element-wise kernel body: an f32x4 loop while 4 elements remain (when every instruction
//! and access has a vector form), then a scalar loop for the rest.

use cranelift_codegen::ir::condcodes::FloatCC;
use cranelift_codegen::ir::{FuncRef, InstBuilder, MemFlagsData, Type, Value, types};
use cranelift_frontend::FunctionBuilder;

use super::Imports;
use super::loops::for_range;
use crate::ir::ops::{Activation, BinaryOp, Pointwise};
use crate::runtime::code::{GRADIENT, Symbol};
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
    let m = mask(b, ty, cc, a, x);
    choose(b, ty, m, t, f)
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
            Instr::Binary(op, x, y) => binary(b, ty, op, v[x as usize], v[y as usize], calls),
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
            Instr::Activation(a, x) => activation(b, ty, a, v[x as usize], calls),
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
                    a => {
                        let d = unary_call(b, a, x, GRADIENT, calls);
                        b.ins().fmul(dy, d)
                    }
                }
            }
            Instr::Select(c, x, y) => {
                let (c, x, y) = (v[c as usize], v[x as usize], v[y as usize]);
                let m = mask(b, ty, FloatCC::NotEqual, c, zero);
                choose(b, ty, m, x, y)
            }
        };
        v.push(value);
    }
    v[k.output as usize]
}

/// One binary op on two values.
fn binary(
    b: &mut FunctionBuilder,
    ty: Type,
    op: BinaryOp,
    x: Value,
    y: Value,
    calls: &Imports,
) -> Value {
    let (zero, one) = (konst(b, ty, 0.0), konst(b, ty, 1.0));
    let truth = |b: &mut FunctionBuilder, m: Value| choose(b, ty, m, one, zero);
    let compare = |b: &mut FunctionBuilder, cc: FloatCC| {
        let m = mask(b, ty, cc, x, y);
        choose(b, ty, m, one, zero)
    };
    match op {
        BinaryOp::Add => b.ins().fadd(x, y),
        BinaryOp::Sub => b.ins().fsub(x, y),
        BinaryOp::Mul => b.ins().fmul(x, y),
        BinaryOp::Div => b.ins().fdiv(x, y),
        BinaryOp::Max => b.ins().fmax(x, y),
        BinaryOp::Min => b.ins().fmin(x, y),
        BinaryOp::PRelu => {
            let neg = b.ins().fmul(x, y);
            select(b, ty, FloatCC::GreaterThanOrEqual, x, zero, x, neg)
        }
        BinaryOp::Equal => compare(b, FloatCC::Equal),
        BinaryOp::Less => compare(b, FloatCC::LessThan),
        BinaryOp::LessOrEqual => compare(b, FloatCC::LessThanOrEqual),
        BinaryOp::Greater => compare(b, FloatCC::GreaterThan),
        BinaryOp::GreaterOrEqual => compare(b, FloatCC::GreaterThanOrEqual),
        BinaryOp::And | BinaryOp::Or | BinaryOp::Xor => {
            let (p, q) = (
                mask(b, ty, FloatCC::NotEqual, x, zero),
                mask(b, ty, FloatCC::NotEqual, y, zero),
            );
            let m = match op {
                BinaryOp::And => b.ins().band(p, q),
                BinaryOp::Or => b.ins().bor(p, q),
                _ => b.ins().bxor(p, q),
            };
            truth(b, m)
        }
        BinaryOp::Pow | BinaryOp::Mod | BinaryOp::FMod => {
            let code = b.ins().iconst(types::I32, i64::from(op.code()));
            let call = b.ins().call(calls.get(Symbol::Binary), &[code, x, y]);
            b.inst_results(call)[0]
        }
    }
}

/// One activation on a value: inline where it has a vector form, else a call.
fn activation(
    b: &mut FunctionBuilder,
    ty: Type,
    a: Activation,
    x: Value,
    calls: &Imports,
) -> Value {
    let (zero, one) = (konst(b, ty, 0.0), konst(b, ty, 1.0));
    let clamp01 = |b: &mut FunctionBuilder, z: Value| {
        let m = b.ins().fmax(z, zero);
        b.ins().fmin(m, one)
    };
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
        Activation::HardSigmoid { alpha, beta } => {
            let (p, q) = (konst(b, ty, alpha), konst(b, ty, beta));
            let m = b.ins().fmul(p, x);
            let z = b.ins().fadd(m, q);
            clamp01(b, z)
        }
        Activation::HardSwish => {
            let (six, half) = (konst(b, ty, 6.0), konst(b, ty, 0.5));
            let d = b.ins().fdiv(x, six);
            let z = b.ins().fadd(d, half);
            let g = clamp01(b, z);
            b.ins().fmul(x, g)
        }
        Activation::ThresholdedRelu { alpha } => {
            let t = konst(b, ty, alpha);
            select(b, ty, FloatCC::GreaterThan, x, t, x, zero)
        }
        Activation::Abs => b.ins().fabs(x),
        Activation::Neg => b.ins().fneg(x),
        Activation::Sqrt => b.ins().sqrt(x),
        Activation::Reciprocal => b.ins().fdiv(one, x),
        Activation::Softsign => {
            let m = b.ins().fabs(x);
            let d = b.ins().fadd(one, m);
            b.ins().fdiv(x, d)
        }
        Activation::Floor => b.ins().floor(x),
        Activation::Ceil => b.ins().ceil(x),
        Activation::Round | Activation::RoundStraight => b.ins().nearest(x),
        Activation::Trunc => b.ins().trunc(x),
        Activation::NonZero => select(b, ty, FloatCC::NotEqual, x, zero, one, zero),
        Activation::Not => select(b, ty, FloatCC::Equal, x, zero, one, zero),
        Activation::Sigmoid => sigmoid(b, x, one, calls),
        Activation::Tanh => call1(b, calls.get(Symbol::Tanh), x),
        Activation::Gelu { tanh: false } => {
            // 0.5 x (1 + erf_rational(x / sqrt 2)), in the interpreter's order of operations.
            let k = konst(b, ty, std::f32::consts::FRAC_1_SQRT_2);
            let t = b.ins().fmul(x, k);
            let e = erf_rational(b, ty, t);
            let half = konst(b, ty, 0.5);
            let hx = b.ins().fmul(half, x);
            let one = konst(b, ty, 1.0);
            let s = b.ins().fadd(one, e);
            b.ins().fmul(hx, s)
        }
        a => unary_call(b, a, x, 0, calls),
    }
}

/// [`crate::ir::ops::elementwise::erf_rational`], lane-wise.
fn erf_rational(b: &mut FunctionBuilder, ty: Type, x: Value) -> Value {
    use crate::ir::ops::elementwise::{ERF_CLAMP, ERF_DENOMINATOR, ERF_NUMERATOR};
    let (hi, lo) = (konst(b, ty, ERF_CLAMP), konst(b, ty, -ERF_CLAMP));
    let c = b.ins().fmin(x, hi);
    let c = b.ins().fmax(c, lo);
    let x2 = b.ins().fmul(c, c);
    let horner = |b: &mut FunctionBuilder, coefficients: &[f32]| {
        let (last, rest) = coefficients.split_last().expect("coefficients");
        let mut acc = konst(b, ty, *last);
        for &a in rest.iter().rev() {
            let m = b.ins().fmul(acc, x2);
            let k = konst(b, ty, a);
            acc = b.ins().fadd(m, k);
        }
        acc
    };
    let p = horner(b, &ERF_NUMERATOR);
    let q = horner(b, &ERF_DENOMINATOR);
    let cp = b.ins().fmul(c, p);
    b.ins().fdiv(cp, q)
}

/// `lrpc_unaryf(code | flags, params, x)`: f(x), or f'(x) with [`GRADIENT`].
fn unary_call(
    b: &mut FunctionBuilder,
    a: Activation,
    x: Value,
    flags: u32,
    calls: &Imports,
) -> Value {
    let p = a.params();
    let code = b.ins().iconst(types::I32, i64::from(a.code() | flags));
    let p0 = b.ins().f32const(p.first().copied().unwrap_or(0.0));
    let p1 = b.ins().f32const(p.get(1).copied().unwrap_or(0.0));
    let call = b.ins().call(calls.get(Symbol::Unary), &[code, p0, p1, x]);
    b.inst_results(call)[0]
}

/// Lane-wise truth of `cc(a, x)` as a mask (all ones where it holds).
fn mask(b: &mut FunctionBuilder, ty: Type, cc: FloatCC, a: Value, x: Value) -> Value {
    let m = b.ins().fcmp(cc, a, x);
    if ty.is_vector() {
        b.ins().bitcast(ty, MemFlagsData::new(), m)
    } else {
        m
    }
}

/// `mask ? t : f` lane-wise, for a mask from [`mask`].
fn choose(b: &mut FunctionBuilder, ty: Type, m: Value, t: Value, f: Value) -> Value {
    if ty.is_vector() {
        b.ins().bitselect(m, t, f)
    } else {
        b.ins().select(m, t, f)
    }
}

/// 1 / (1 + exp(-x)), scalar.
fn sigmoid(b: &mut FunctionBuilder, x: Value, one: Value, calls: &Imports) -> Value {
    let neg = b.ins().fneg(x);
    let e = call1(b, calls.get(Symbol::Exp), neg);
    let d = b.ins().fadd(one, e);
    b.ins().fdiv(one, d)
}
