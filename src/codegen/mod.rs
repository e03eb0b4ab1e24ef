//! Code generation: the joint forward + relevance graph lowered to a runtime program. `lower`
//! turns a graph into steps over buffers with their kernels described as data (element-wise
//! chains fused, GEMM-shaped work as GEMM steps, movement and pooling as table kernels); the
//! runtime then compiles or maps the kernels and runs the steps.

pub mod lower;
pub mod object;

pub use lower::Request;

use crate::error::{Error, Result};
use crate::ir::{Graph, NodeIndex, Tensor};
use crate::runtime::{Code, Executable, Options};

/// Lowers `graph` for `request` and compiles its kernels with the JIT.
pub fn compile(graph: &Graph, request: &Request, options: Options) -> Result<Executable> {
    compile_timed(graph, request, options).map(|(e, _)| e)
}

/// Seconds spent in each stage of [`compile`]: lowering, emission (the JIT), and making the
/// executable (checks, tiling, the memory plan).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CompileTimes {
    pub lowering: f64,
    pub emission: f64,
    pub planning: f64,
}

/// [`compile`], with the time of each stage.
pub fn compile_timed(
    graph: &Graph,
    request: &Request,
    options: Options,
) -> Result<(Executable, CompileTimes)> {
    let request = Request {
        threads: options.threads.max(1),
        ..*request
    };
    let t = std::time::Instant::now();
    let program = lower::lower(graph, &request)?;
    let lowering = t.elapsed().as_secs_f64();
    let t = std::time::Instant::now();
    let code = Code::jit(&program.kernels).map_err(|e| Error::Graph {
        file: graph.source.clone(),
        reason: format!("code generation failed: {e}"),
    })?;
    let emission = t.elapsed().as_secs_f64();
    let t = std::time::Instant::now();
    let exe = Executable::new(program, code, options, &graph.source)?;
    let times = CompileTimes {
        lowering,
        emission,
        planning: t.elapsed().as_secs_f64(),
    };
    Ok((exe, times))
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

/// Runs a forward executable made by [`compile_forward`] on a value for each graph input.
pub fn run_forward(exe: &Executable, feeds: &[Tensor]) -> Result<Vec<Tensor>> {
    let mut s = exe.session()?;
    for (port, t) in feeds.iter().enumerate() {
        s.write_tensor(port, t)?;
    }
    s.run_all()?;
    (0..exe.program().outputs.len())
        .map(|o| s.read(o))
        .collect()
}
