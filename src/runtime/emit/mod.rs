//! Emission of kernels into any `cranelift_module::Module`: the JIT, and the object module of an
//! explainer object file, use the same code. Every kernel is one function with a fixed signature
//! per kind; shapes, strides and table lengths are baked in as constants. The emitter can also
//! keep each function's machine code and relocations (what an artifact stores).

mod elementwise;
mod loops;
mod table;

use cranelift_codegen::Context;
use cranelift_codegen::binemit::Reloc;
use cranelift_codegen::ir::{AbiParam, ExternalName, FuncRef, Type, types};
use cranelift_codegen::{FinalizedMachReloc, FinalizedRelocTarget};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_module::{FuncId, Linkage, Module};

use super::code::{MachineCode, Patch, Symbol};
use super::elementwise::Kernel;
use super::program::KernelDesc;
use super::table::{TableKernel, WindowKernel};

pub use loops::for_range;

/// The kinds of function this module emits, with their parameter lists (all return nothing;
/// pointers are the target's pointer type, counts and ranges i64).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signature {
    /// (input pointer array, out, start, end).
    Elementwise,
    /// (src, table, out, start, end).
    Table,
    /// (src, table, counts, out, first plane, end plane).
    WindowForward,
    /// (x, dy, table, counts, dx, first plane, end plane).
    WindowBackward,
}

impl Signature {
    fn params(self, ptr: Type) -> Vec<Type> {
        let (pointers, ranges) = match self {
            Signature::Elementwise => (2, 2),
            Signature::Table => (3, 2),
            Signature::WindowForward => (4, 2),
            Signature::WindowBackward => (5, 2),
        };
        let mut p = vec![ptr; pointers];
        p.extend([types::I64; 2].iter().take(ranges));
        p
    }
}

/// Functions every kernel body may call, in the order of [`Symbol::ALL`].
pub struct Imports {
    refs: Vec<FuncRef>,
}

impl Imports {
    /// The function to call for `symbol`.
    pub fn get(&self, symbol: Symbol) -> FuncRef {
        self.refs[symbol as usize]
    }
}

/// Builds kernels into a module; owns the reusable contexts (the cranelift-jit-demo pattern).
pub struct Emitter<M: Module> {
    pub module: M,
    ctx: Context,
    fctx: FunctionBuilderContext,
    /// The imported functions, in the order of [`Symbol::ALL`].
    imports: Vec<FuncId>,
    count: usize,
    /// Prepended to every function's name (object files give each explainer its own).
    names: String,
    /// When set, the machine code of every function defined, in definition order.
    captured: Option<Vec<MachineCode>>,
}

impl<M: Module> Emitter<M> {
    /// Declares the imported libm functions in `module`.
    pub fn new(mut module: M) -> Result<Emitter<M>, String> {
        let mut imports = Vec::new();
        for symbol in Symbol::ALL {
            let (ints, floats) = symbol.params();
            let mut sig = module.make_signature();
            sig.params
                .extend(std::iter::repeat_n(AbiParam::new(types::I32), ints));
            sig.params
                .extend(std::iter::repeat_n(AbiParam::new(types::F32), floats));
            sig.returns.push(AbiParam::new(types::F32));
            let id = module
                .declare_function(symbol.name(), Linkage::Import, &sig)
                .map_err(|e| e.to_string())?;
            imports.push(id);
        }
        Ok(Emitter {
            ctx: module.make_context(),
            module,
            fctx: FunctionBuilderContext::new(),
            imports,
            count: 0,
            names: String::new(),
            captured: None,
        })
    }

    /// Prefixes the names of functions defined from now on (symbols stay local to the module;
    /// the prefix keeps them apart in a linked program's symbol table and debugger).
    pub fn name_with(&mut self, prefix: &str) {
        self.names = prefix.to_string();
    }

    /// Keeps the machine code of every function defined from now on ([`Emitter::take_code`]).
    pub fn capture(&mut self) {
        self.captured = Some(Vec::new());
    }

    /// The machine code captured so far, in definition order.
    pub fn take_code(&mut self) -> Vec<MachineCode> {
        self.captured.take().unwrap_or_default()
    }

    /// Defines the kernel `desc` describes.
    pub fn kernel(&mut self, desc: &KernelDesc) -> Result<FuncId, String> {
        match desc {
            KernelDesc::Elementwise(k) => self.elementwise(k),
            KernelDesc::Table(t) => self.table(*t),
            KernelDesc::Window { kernel, backward } => self.window(kernel, *backward),
        }
    }

    /// Defines an element-wise kernel (validated first).
    pub fn elementwise(&mut self, kernel: &Kernel) -> Result<FuncId, String> {
        kernel.validate().map_err(|e| e.0)?;
        self.define("elementwise", Signature::Elementwise, |b, ptr, imports| {
            elementwise::build(b, kernel, ptr, imports)
        })
    }

    /// Defines a gather or scatter kernel.
    pub fn table(&mut self, kernel: TableKernel) -> Result<FuncId, String> {
        self.define("table", Signature::Table, |b, ptr, _| {
            table::build_table(b, kernel, ptr)
        })
    }

    /// Defines a pooling kernel (forward or adjoint).
    pub fn window(&mut self, kernel: &WindowKernel, backward: bool) -> Result<FuncId, String> {
        let sig = if backward {
            Signature::WindowBackward
        } else {
            Signature::WindowForward
        };
        self.define("window", sig, |b, ptr, _| {
            if backward {
                table::build_window_backward(b, kernel, ptr)
            } else {
                table::build_window_forward(b, kernel, ptr)
            }
        })
    }

    /// The order-sensitive steps in one place: declare, build, define, clear.
    fn define(
        &mut self,
        prefix: &str,
        signature: Signature,
        body: impl FnOnce(&mut FunctionBuilder, Type, &Imports),
    ) -> Result<FuncId, String> {
        let ptr = self.module.target_config().pointer_type();
        let mut sig = self.module.make_signature();
        sig.params
            .extend(signature.params(ptr).into_iter().map(AbiParam::new));
        let name = format!("{}{prefix}_{}", self.names, self.count);
        self.count += 1;
        let id = self
            .module
            .declare_function(&name, Linkage::Local, &sig)
            .map_err(|e| e.to_string())?;
        self.ctx.func.signature = sig;
        {
            let mut b = FunctionBuilder::new(&mut self.ctx.func, &mut self.fctx);
            let imports = Imports {
                refs: self
                    .imports
                    .iter()
                    .map(|&id| self.module.declare_func_in_func(id, b.func))
                    .collect(),
            };
            body(&mut b, ptr, &imports);
            b.seal_all_blocks();
            b.finalize(self.module.target_config());
        }
        let defined = self
            .module
            .define_function(id, &mut self.ctx)
            .map_err(|e| format!("{e:?}"))
            .and_then(|()| self.record());
        self.module.clear_context(&mut self.ctx);
        defined?;
        Ok(id)
    }

    /// Keeps the code just compiled in `ctx`, when capturing: its bytes and, for each call to
    /// an imported function, where its address goes.
    fn record(&mut self) -> Result<(), String> {
        let Some(captured) = self.captured.as_mut() else {
            return Ok(());
        };
        let code = self
            .ctx
            .compiled_code()
            .ok_or("the function was defined but its code is not in the context")?;
        let names = self.ctx.func.params.user_named_funcs();
        let symbol = |r: &FinalizedMachReloc| -> Result<Symbol, String> {
            let FinalizedRelocTarget::ExternalName(ExternalName::User(name)) = &r.target else {
                return Err(format!("unexpected relocation target {:?}", r.target));
            };
            let index = names
                .get(*name)
                .map(|n| n.index)
                .ok_or("a relocation names an undeclared function")?;
            self.imports
                .iter()
                .position(|id| id.as_u32() == index)
                .map(|k| Symbol::ALL[k])
                .ok_or_else(|| format!("a relocation names function {index}, not an import"))
        };
        let mut patches = Vec::new();
        for r in code.buffer.relocs() {
            if r.kind != Reloc::Abs8 {
                return Err(format!(
                    "relocation of kind {} cannot be stored (only absolute 8-byte addresses)",
                    r.kind
                ));
            }
            patches.push(Patch {
                offset: r.offset,
                symbol: symbol(r)?,
                addend: r.addend,
            });
        }
        captured.push(MachineCode {
            bytes: code.buffer.data().to_vec(),
            patches,
        });
        Ok(())
    }
}
