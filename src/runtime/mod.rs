//! The runtime: what runs a lowered program. `program` describes the steps, buffers, constants
//! and kernels as data; `code` holds the kernels' machine code (compiled by the JIT in `jit` from
//! the emitters in `emit`, mapped back from an artifact, or linked in from an object file);
//! `executable` tiles, plans (`plan`) and runs a program; `validate` checks a program before it
//! runs. Nothing here reads ONNX, runs a pass or builds relevance: an explainer loaded from an
//! artifact needs only this module (and the IR's op attribute types).

pub mod artifact;
pub mod code;
pub mod elementwise;
pub mod emit;
pub mod executable;
pub mod explainer;
pub mod gemm;
pub mod guard;
pub mod jit;
pub mod plan;
pub mod program;
pub mod slab;
pub mod table;
pub mod validate;

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

pub use code::Code;
pub use elementwise::{Access, Instr, Kernel};
pub use executable::{Executable, Options, Session, StepTime, default_threads};
pub use guard::GuardSide;
pub use jit::{CompiledKernel, Jit};
pub use program::{KernelDesc, Operand, Port, Program, Step};

#[cfg(test)]
mod tests;
