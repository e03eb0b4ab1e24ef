//! Subcommand definitions and dispatch.

mod bench;
mod engine;
mod explain;
mod inspect;
mod method;
mod run;

use std::path::PathBuf;

use anyhow::{Result, anyhow};
use clap::{Args, Parser, Subcommand};
use lrpc::onnx::ImportOptions;

/// Compile a trained network (ONNX) into a fast Layer-wise Relevance Propagation explainer.
#[derive(Parser, Debug)]
#[command(name = "lrpc", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Show the prepared graph: inputs, outputs, and every node with its shape and parameters.
    Inspect(inspect::InspectArgs),
    /// Run the forward pass and print or save the model's own outputs.
    Run(run::RunArgs),
    /// Explain a prediction: relevance (or attribution) at the input, as .npy, heatmap or JSON.
    Explain(Box<explain::ExplainArgs>),
    /// Time compilation, the forward pass and explanations; report peak memory.
    Bench(bench::BenchArgs),
}

/// How to bind the model's symbolic dimensions.
#[derive(Args, Debug, Clone)]
pub struct ShapeArgs {
    /// Batch size bound to a symbolic first input dimension (default: from the input, else 1).
    #[arg(long)]
    batch: Option<usize>,
    /// Size of another symbolic input dimension, as NAME=SIZE (repeatable).
    #[arg(long = "dim", value_name = "NAME=SIZE")]
    dims: Vec<String>,
    /// Refuse models with a tensor of more elements than this (declared or computed).
    #[arg(long, default_value_t = lrpc::onnx::DEFAULT_MAX_ELEMENTS)]
    max_elements: usize,
}

impl ShapeArgs {
    /// Import options for these flags, and the shape of the data to be fed, if known.
    fn options(&self, input_shape: Option<&[usize]>) -> Result<ImportOptions> {
        let mut options = ImportOptions {
            batch: self.batch,
            input_shape: input_shape.map(<[usize]>::to_vec),
            max_elements: self.max_elements,
            ..ImportOptions::default()
        };
        for d in &self.dims {
            let (name, size) = d
                .split_once('=')
                .ok_or_else(|| anyhow!("--dim '{d}' should be NAME=SIZE"))?;
            let size: usize = size
                .parse()
                .map_err(|_| anyhow!("--dim '{d}': '{size}' is not a size"))?;
            options.dims.insert(name.to_string(), size);
        }
        Ok(options)
    }
}

/// A model path argument.
#[derive(Args, Debug, Clone)]
pub struct ModelArg {
    /// The ONNX model file.
    model: PathBuf,
}

/// Runs one parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Inspect(a) => inspect::inspect(a),
        Command::Run(a) => run::run(a),
        Command::Explain(a) => explain::explain(*a),
        Command::Bench(a) => bench::bench(a),
    }
}
