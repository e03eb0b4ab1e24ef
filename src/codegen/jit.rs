//! The JIT owner: one long-lived `JITModule` and reusable codegen/builder contexts (the pattern of
//! cranelift-jit-demo). `compile` holds the order-sensitive steps in one place: declare, build,
//! define, clear, finalize, get the pointer.

use cranelift_codegen::Context;
use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{
    AbiParam, Block, FuncRef, InstBuilder, MemFlagsData, Type, Value, types,
};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{FuncId, Linkage, Module, default_libcall_names};

use super::elementwise::{Instr, Kernel};
use crate::ir::ops::{Activation, BinaryOp, Pointwise};

extern "C" fn lrpc_expf(x: f32) -> f32 {
    x.exp()
}

extern "C" fn lrpc_tanhf(x: f32) -> f32 {
    x.tanh()
}

/// Compiles kernels to native code; compiled kernels live as long as the `Jit`.
pub struct Jit {
    module: JITModule,
    ctx: Context,
    fctx: FunctionBuilderContext,
    exp: FuncId,
    tanh: FuncId,
    count: usize,
}

/// Signature of every element-wise kernel: (input pointers, output pointer, element count).
type KernelFn = unsafe extern "C" fn(*const *const f32, *mut f32, u64);

/// A compiled element-wise kernel.
pub struct CompiledKernel<'jit> {
    f: KernelFn,
    inputs: usize,
    _jit: std::marker::PhantomData<&'jit Jit>,
}

impl Jit {
    /// A JIT for the host CPU.
    pub fn new() -> Result<Jit, String> {
        let mut flags = settings::builder();
        for (k, v) in [
            ("use_colocated_libcalls", "false"),
            ("is_pic", "false"),
            ("opt_level", "speed"),
        ] {
            flags.set(k, v).map_err(|e| e.to_string())?;
        }
        let isa = cranelift_native::builder()
            .map_err(|e| e.to_string())?
            .finish(settings::Flags::new(flags))
            .map_err(|e| e.to_string())?;
        let mut builder = JITBuilder::with_isa(isa, default_libcall_names());
        builder.symbol("lrpc_expf", lrpc_expf as *const u8);
        builder.symbol("lrpc_tanhf", lrpc_tanhf as *const u8);
        let mut module = JITModule::new(builder);
        let mut unary = module.make_signature();
        unary.params.push(AbiParam::new(types::F32));
        unary.returns.push(AbiParam::new(types::F32));
        let exp = module
            .declare_function("lrpc_expf", Linkage::Import, &unary)
            .map_err(|e| e.to_string())?;
        let tanh = module
            .declare_function("lrpc_tanhf", Linkage::Import, &unary)
            .map_err(|e| e.to_string())?;
        Ok(Jit {
            ctx: module.make_context(),
            module,
            fctx: FunctionBuilderContext::new(),
            exp,
            tanh,
            count: 0,
        })
    }

    /// Compiles `kernel` (validated first).
    pub fn compile(&mut self, kernel: &Kernel) -> Result<CompiledKernel<'_>, String> {
        kernel.validate().map_err(|e| e.0)?;
        let ptr = self.module.target_config().pointer_type();
        let mut sig = self.module.make_signature();
        sig.params.extend([
            AbiParam::new(ptr),
            AbiParam::new(ptr),
            AbiParam::new(types::I64),
        ]);
        let name = format!("elementwise_{}", self.count);
        self.count += 1;
        let id = self
            .module
            .declare_function(&name, Linkage::Local, &sig)
            .map_err(|e| e.to_string())?;
        self.ctx.func.signature = sig;
        {
            let mut b = FunctionBuilder::new(&mut self.ctx.func, &mut self.fctx);
            let calls = Calls {
                exp: self.module.declare_func_in_func(self.exp, b.func),
                tanh: self.module.declare_func_in_func(self.tanh, b.func),
            };
            build(&mut b, kernel, ptr, &calls);
            b.finalize(self.module.target_config());
        }
        self.module
            .define_function(id, &mut self.ctx)
            .map_err(|e| format!("{e:?}"))?;
        self.module.clear_context(&mut self.ctx);
        self.module
            .finalize_definitions()
            .map_err(|e| e.to_string())?;
        let code = self.module.get_finalized_function(id);
        Ok(CompiledKernel {
            // SAFETY: `code` is the entry of the function just defined with signature
            // (ptr, ptr, i64) -> (), which is `KernelFn` under the host calling convention
            // Cranelift uses for `make_signature`; it stays mapped while `self.module` lives,
            // and the returned kernel borrows `self`.
            f: unsafe { std::mem::transmute::<*const u8, KernelFn>(code) },
            inputs: kernel.inputs,
            _jit: std::marker::PhantomData,
        })
    }
}

impl CompiledKernel<'_> {
    /// Runs the kernel over equal-length inputs into `out`.
    pub fn run(&self, inputs: &[&[f32]], out: &mut [f32]) -> Result<(), String> {
        if inputs.len() != self.inputs || inputs.iter().any(|i| i.len() != out.len()) {
            return Err(format!(
                "kernel takes {} inputs of the output's length {}, got lengths {:?}",
                self.inputs,
                out.len(),
                inputs.iter().map(|i| i.len()).collect::<Vec<_>>()
            ));
        }
        let ptrs: Vec<*const f32> = inputs.iter().map(|i| i.as_ptr()).collect();
        // SAFETY: the generated loop reads elements 0..len of each of `self.inputs` input
        // pointers and writes elements 0..len of `out` (4 at a time while 4 remain, then one at a
        // time), and every slice was just checked to hold exactly `out.len()` elements.
        unsafe { (self.f)(ptrs.as_ptr(), out.as_mut_ptr(), out.len() as u64) };
        Ok(())
    }
}

struct Calls {
    exp: FuncRef,
    tanh: FuncRef,
}

/// entry -> vector loop (4 lanes while i + 4 <= n; only when every instruction has a vector
/// form) -> scalar loop (while i < n) -> return. Both loops carry i as a block parameter.
fn build(b: &mut FunctionBuilder, k: &Kernel, ptr: Type, calls: &Calls) {
    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    let exit = b.create_block();
    let lanes: &[i64] = if k.vectorizable() { &[4, 1] } else { &[1] };
    let loops: Vec<(Block, Block)> = lanes
        .iter()
        .map(|_| {
            let (head, body) = (b.create_block(), b.create_block());
            b.append_block_param(head, types::I64);
            b.append_block_param(body, types::I64);
            (head, body)
        })
        .collect();
    b.switch_to_block(entry);
    let params = b.block_params(entry).to_vec();
    let (inputs, out, n) = (params[0], params[1], params[2]);
    let flags = MemFlagsData::trusted();
    let bases: Vec<Value> = (0..k.inputs)
        .map(|i| b.ins().load(ptr, flags, inputs, (i * 8) as i32))
        .collect();
    let zero = b.ins().iconst(types::I64, 0);
    b.ins().jump(loops[0].0, &[zero.into()]);
    for (stage, (&width, &(head, body))) in lanes.iter().zip(&loops).enumerate() {
        b.switch_to_block(head);
        let i = b.block_params(head)[0];
        let end = b.ins().iadd_imm_s(i, width);
        let fits = b.ins().icmp(IntCC::SignedLessThanOrEqual, end, n);
        match loops.get(stage + 1) {
            // Leftover elements go to the next, narrower loop.
            Some(&(next, _)) => b.ins().brif(fits, body, &[i.into()], next, &[i.into()]),
            None => b.ins().brif(fits, body, &[i.into()], exit, &[]),
        };
        b.switch_to_block(body);
        let i = b.block_params(body)[0];
        let offset = b.ins().imul_imm_s(i, 4);
        let ty = if width == 4 { types::F32X4 } else { types::F32 };
        let loads: Vec<Value> = bases
            .iter()
            .map(|&base| {
                let addr = b.ins().iadd(base, offset);
                b.ins().load(ty, flags, addr, 0)
            })
            .collect();
        let value = emit(b, k, &loads, ty, calls);
        let addr = b.ins().iadd(out, offset);
        b.ins().store(flags, value, addr, 0);
        let next_i = b.ins().iadd_imm_s(i, width);
        b.ins().jump(head, &[next_i.into()]);
    }
    b.switch_to_block(exit);
    b.ins().return_(&[]);
    b.seal_all_blocks();
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

fn emit(b: &mut FunctionBuilder, k: &Kernel, loads: &[Value], ty: Type, calls: &Calls) -> Value {
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
fn sigmoid(b: &mut FunctionBuilder, x: Value, one: Value, calls: &Calls) -> Value {
    let neg = b.ins().fneg(x);
    let e = call1(b, calls.exp, neg);
    let d = b.ins().fadd(one, e);
    b.ins().fdiv(one, d)
}
