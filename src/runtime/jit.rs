//! The JIT: an `Emitter` over a `JITModule`, plus the typed entry points of finalized kernels.
//! This file, `code.rs` and the executable's calls into kernels are the only places that hold
//! `unsafe` for generated code.

use cranelift_codegen::settings::{self, Configurable};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{FuncId, default_libcall_names};

use super::code::Symbol;
use super::elementwise::Kernel;
use super::emit::Emitter;

/// (input pointer array, out, start, end).
pub type ElementwiseFn = unsafe extern "C" fn(*const *const f32, *mut f32, i64, i64);
/// (src, table, out, start, end).
pub type TableFn = unsafe extern "C" fn(*const f32, *const i32, *mut f32, i64, i64);
/// (src, table, counts, out, first plane, end plane).
pub type WindowForwardFn =
    unsafe extern "C" fn(*const f32, *const i32, *const f32, *mut f32, i64, i64);
/// (x, dy, table, counts, dx, first plane, end plane).
pub type WindowBackwardFn =
    unsafe extern "C" fn(*const f32, *const f32, *const i32, *const f32, *mut f32, i64, i64);

/// Compiles kernels to native code for the host CPU; finalized code stays mapped as long as the
/// `Jit` lives (Cranelift's JIT memory is released only when the module is freed).
pub struct Jit {
    emitter: Emitter<JITModule>,
}

// SAFETY: after `finalize` the module is only read (function addresses) and kept alive so the
// code stays mapped; generated code holds no thread-local state, so sharing the owner between
// threads that call the finalized functions is sound.
unsafe impl Send for Jit {}
// SAFETY: as above; `&Jit` exposes no mutation.
unsafe impl Sync for Jit {}

/// The host CPU as Cranelift targets it, optimising for speed; `pic` for object files that a
/// system linker places.
pub fn host_isa(pic: bool) -> Result<cranelift_codegen::isa::OwnedTargetIsa, String> {
    let mut flags = settings::builder();
    for (k, v) in [
        ("use_colocated_libcalls", "false"),
        ("is_pic", if pic { "true" } else { "false" }),
        ("opt_level", "speed"),
    ] {
        flags.set(k, v).map_err(|e| e.to_string())?;
    }
    cranelift_native::builder()
        .map_err(|e| e.to_string())?
        .finish(settings::Flags::new(flags))
        .map_err(|e| e.to_string())
}

/// The target triple and the CPU features Cranelift enables on this machine (the boolean ISA
/// flags that are on, e.g. `has_avx2`): what generated code may assume.
pub fn host_target() -> Result<(String, Vec<String>), String> {
    let isa = host_isa(false)?;
    let features = isa
        .isa_flags()
        .iter()
        .filter(|v| v.as_bool() == Some(true))
        .map(|v| v.name.to_string())
        .collect();
    Ok((isa.triple().to_string(), features))
}

impl Jit {
    /// A JIT for the host CPU, optimising for speed.
    pub fn new() -> Result<Jit, String> {
        let isa = host_isa(false)?;
        let mut builder = JITBuilder::with_isa(isa, default_libcall_names());
        for symbol in Symbol::ALL {
            builder.symbol(symbol.name(), symbol.address() as *const u8);
        }
        Ok(Jit {
            emitter: Emitter::new(JITModule::new(builder))?,
        })
    }

    /// Where kernels are defined.
    pub fn emitter(&mut self) -> &mut Emitter<JITModule> {
        &mut self.emitter
    }

    /// Links everything defined so far; call before taking addresses.
    pub fn finalize(&mut self) -> Result<(), String> {
        self.emitter
            .module
            .finalize_definitions()
            .map_err(|e| e.to_string())
    }

    /// The address of a finalized function.
    pub fn address(&self, id: FuncId) -> *const u8 {
        self.emitter.module.get_finalized_function(id)
    }

    /// Defines, finalizes and returns one element-wise kernel (for tests and small uses).
    pub fn compile(&mut self, kernel: &Kernel) -> Result<CompiledKernel<'_>, String> {
        let id = self.emitter.elementwise(kernel)?;
        self.finalize()?;
        Ok(CompiledKernel {
            // SAFETY: `id` was defined by `Emitter::elementwise`, whose signature (ptr, ptr, i64,
            // i64) -> () is `ElementwiseFn` under the host calling convention `make_signature`
            // uses; the code stays mapped while `self` lives and the kernel borrows `self`.
            f: unsafe { std::mem::transmute::<*const u8, ElementwiseFn>(self.address(id)) },
            kernel: kernel.clone(),
            _jit: std::marker::PhantomData,
        })
    }
}

/// A compiled element-wise kernel borrowed from its `Jit`.
pub struct CompiledKernel<'jit> {
    f: ElementwiseFn,
    kernel: Kernel,
    _jit: std::marker::PhantomData<&'jit Jit>,
}

impl CompiledKernel<'_> {
    /// Runs the kernel into `out`; each input must hold what its access reads over `out.len()`.
    pub fn run(&self, inputs: &[&[f32]], out: &mut [f32]) -> Result<(), String> {
        let n = out.len();
        let fits = inputs.len() == self.kernel.inputs.len()
            && inputs
                .iter()
                .zip(&self.kernel.inputs)
                .all(|(i, a)| i.len() >= a.required_len(n));
        if !fits {
            return Err(format!(
                "kernel reads {:?} over {n} elements, got input lengths {:?}",
                self.kernel.inputs,
                inputs.iter().map(|i| i.len()).collect::<Vec<_>>()
            ));
        }
        let ptrs: Vec<*const f32> = inputs.iter().map(|i| i.as_ptr()).collect();
        // SAFETY: the generated loop reads, for each output element i in 0..n, element
        // `access.index(i)` of each input, which is below `required_len(n)` and so inside the
        // slices just checked, and writes elements 0..n of `out`.
        unsafe { (self.f)(ptrs.as_ptr(), out.as_mut_ptr(), 0, n as i64) };
        Ok(())
    }
}
