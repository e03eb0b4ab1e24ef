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

pub use elementwise::{Access, Instr, Kernel};
pub use executable::{Executable, Options, Session, compile_forward, default_threads, run_forward};
pub use guard::GuardSide;
pub use jit::{CompiledKernel, Jit};
pub use lower::Request;

#[cfg(test)]
mod tests;
