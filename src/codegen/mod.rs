//! Code generation with Cranelift. This first slice compiles element-wise kernels (the rule
//! epilogues: stabilise, divide, multiply, masks, activations and their derivatives) into f32x4
//! loops with a scalar tail; GEMM calls, fusion and the memory plan build on it (issue: Cranelift
//! backend). Only `codegen/` (and later `runtime/`) see Cranelift types.

pub mod elementwise;
mod jit;

pub use elementwise::{Instr, Kernel};
pub use jit::{CompiledKernel, Jit};

#[cfg(test)]
mod tests;
