//! Code generation: the joint forward + relevance graph lowered to a runtime program. `lower`
//! turns a graph into steps over buffers with their kernels described as data (element-wise
//! chains fused, GEMM-shaped work as GEMM steps, movement and pooling as table kernels); the
//! runtime then compiles or maps the kernels and runs the steps.

pub mod lower;

pub use lower::Request;

use crate::error::{Error, Result};
use crate::ir::{Graph, NodeIndex, Tensor};
use crate::runtime::{Code, Executable, Options};

/// Lowers `graph` for `request` and compiles its kernels with the JIT.
pub fn compile(graph: &Graph, request: &Request, options: Options) -> Result<Executable> {
    let request = Request {
        threads: options.threads.max(1),
        ..*request
    };
    let program = lower::lower(graph, &request)?;
    let code = Code::jit(&program.kernels).map_err(|e| Error::Graph {
        file: graph.source.clone(),
        reason: format!("code generation failed: {e}"),
    })?;
    Executable::new(program, code, options, &graph.source)
}

/// Compiles a graph for a plain forward run: every graph output is read back.
pub fn compile_forward(graph: &Graph, options: Options) -> Result<Executable> {
    let outputs: Vec<NodeIndex> = graph.outputs.iter().map(|o| o.node).collect();
    compile(
        graph,
        &Request {
            outputs: &outputs,
            totals: &[],
            late: &[],
            threads: options.threads,
        },
        options,
    )
}

/// Runs a forward executable made by [`compile_forward`] on its single input.
pub fn run_forward(exe: &Executable, input: &Tensor) -> Result<Vec<Tensor>> {
    let mut s = exe.session()?;
    s.write(
        0,
        input.f32s().map_err(|e| Error::Input {
            what: "input".into(),
            reason: e.0,
        })?,
    )?;
    s.run_all()?;
    (0..exe.program().outputs.len())
        .map(|o| s.read(o))
        .collect()
}
