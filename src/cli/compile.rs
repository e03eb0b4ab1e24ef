//! `lrpc compile MODEL --method M [params] [--batch N] [--dim NAME=SIZE] [--threads N]
//! [--layers] -o FILE.lrpx [--emit artifact|object]`.

use std::path::PathBuf;

use anyhow::{Result, anyhow};
use clap::{Args, ValueEnum};
use lrpc::{ExplainOptions, Explainer, Model};

use super::method::MethodArgs;
use super::{ModelArg, ShapeArgs};

#[derive(Args, Debug)]
pub struct CompileArgs {
    #[command(flatten)]
    model: ModelArg,
    #[command(flatten)]
    method: MethodArgs,
    #[command(flatten)]
    shapes: ShapeArgs,
    /// Where to write the explainer (.lrpx; with --emit object, an object file .o).
    #[arg(short = 'o', long = "output")]
    output: PathBuf,
    /// What to write: an artifact that `lrpc` and the C library load, or an object file to
    /// link into a program with the static runtime library (nothing is compiled at run time).
    #[arg(long, value_enum, default_value_t = Emit::Artifact)]
    emit: Emit,
    /// Worker threads the convolutions are tiled for (a loader with another count tiles them
    /// again; default: every available core).
    #[arg(long)]
    threads: Option<usize>,
    /// Also sum the relevance arriving at every layer (so `explain --layers` works on it).
    #[arg(long)]
    layers: bool,
    /// Which input to explain when the model has several (see `lrpc explain --help`).
    #[arg(long)]
    explain_input: Option<String>,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Emit {
    Artifact,
    Object,
}

pub fn compile(args: CompileArgs) -> Result<()> {
    if args.threads == Some(0) {
        return Err(anyhow!("--threads must be positive"));
    }
    let method = args.method.method()?;
    let import = lrpc::onnx::ImportOptions {
        digest: true,
        explain_input: args.explain_input.clone(),
        ..args.shapes.options(None)?
    };
    let model = Model::load(&args.model.model, &import)?;
    super::print_notes(&args.model.model, &model);
    let options = ExplainOptions {
        threads: args.threads.unwrap_or_else(lrpc::runtime::default_threads),
        layers: args.layers,
        ..ExplainOptions::default()
    };
    let explainer = Explainer::with_options(&model, method, options)?;
    match args.emit {
        Emit::Artifact => explainer.save(&args.output)?,
        Emit::Object => explainer.save_object(&args.output)?,
    }
    let bytes = std::fs::metadata(&args.output)
        .map(|m| m.len())
        .unwrap_or(0);
    let spec = explainer.spec();
    let kernels: usize = [explainer.executable(), explainer.batched_executable()]
        .into_iter()
        .flatten()
        .map(|e| e.program().kernels.len())
        .sum();
    println!(
        "{}: {} for {}, input {:?}, {} classes, {kernels} kernels, {:.1} MB",
        args.output.display(),
        spec.method,
        args.model.model.display(),
        spec.input().shape,
        spec.classes(),
        bytes as f64 / 1e6
    );
    Ok(())
}
