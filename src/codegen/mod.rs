//! Code generation: the joint forward + relevance graph lowered to native code. Cranelift emits
//! the element-wise kernels (fused rule epilogues, activations, masks), the table-driven moves and
//! the pooling windows; GEMM-shaped work (Conv, ConvTranspose, Gemm, MatMul) calls the `gemm`
//! crate. `lower` turns a graph into steps, `plan` packs their buffers into one arena, and
//! `executable` runs them. Only `codegen/` sees Cranelift types.

pub mod elementwise;
pub mod emit;
pub mod executable;
pub mod gemm;
pub mod guard;
pub mod jit;
pub mod lower;
pub mod plan;
pub mod table;

/// A raw pointer handed to rayon workers within one step: each worker writes a part of what it
/// addresses no other worker touches (reads may be shared), and the step joins them all before
/// it returns. A method reads it, so closures capture the whole `Send` wrapper, not its field.
#[derive(Clone, Copy)]
pub(crate) struct Shared<T>(T);

impl<T: Copy> Shared<T> {
    pub(crate) fn get(self) -> T {
        self.0
    }
}

// SAFETY: see the type's contract; every place that wraps a pointer says which parts each
// worker touches.
unsafe impl<T> Send for Shared<T> {}
// SAFETY: as above.
unsafe impl<T> Sync for Shared<T> {}

pub use elementwise::{Access, Instr, Kernel};
pub use executable::{Executable, Options, Session, compile_forward, default_threads, run_forward};
pub use guard::GuardSide;
pub use jit::{CompiledKernel, Jit};
pub use lower::Request;

#[cfg(test)]
mod tests;
