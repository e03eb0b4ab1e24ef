//! Subcommand definitions and dispatch.

mod bench;
mod compile;
mod engine;
mod evaluate;
mod explain;
mod images;
mod inputs;
mod inspect;
mod method;
mod regions;
mod run;
mod words;

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
    /// Compile an explainer ahead of time: an artifact (.lrpx) that loads in milliseconds, or an
    /// object file to link into a program (--emit object).
    Compile(Box<compile::CompileArgs>),
    /// Time compilation (or loading), the forward pass and explanations; report peak memory.
    Bench(bench::BenchArgs),
    /// The words most relevant for a class over a corpus of token ids (mean relevance per
    /// occurrence, and count).
    Words(Box<words::WordsArgs>),
    /// Region perturbation (pixel flipping; word deletion for token ids) over a data set: AOPC
    /// per method, with its standard error, ranked.
    Evaluate(Box<evaluate::EvaluateArgs>),
    /// Relevance inside and outside object boxes (context use), or each labelled region's
    /// share of the relevance, per sample and averaged.
    Regions(Box<regions::RegionsArgs>),
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
    /// Fix a model input to the data in a .npy file, as NAME=FILE (repeatable): it becomes a
    /// constant, so what depends only on it folds (a sample rate choosing an If branch).
    #[arg(long = "const", value_name = "NAME=FILE")]
    constants: Vec<String>,
}

impl ShapeArgs {
    /// Import options for these flags, and the shape of the data to be fed, if known.
    fn options(&self, input_shape: Option<&[usize]>) -> Result<ImportOptions> {
        self.options_for(input_shape, &[], None)
    }

    /// Import options for these flags, the shapes of the data to be fed (the explained input's
    /// and the others', by name), and the input to explain.
    fn options_for(
        &self,
        input_shape: Option<&[usize]>,
        others: &[(String, lrpc::ir::Tensor)],
        explain_input: Option<&str>,
    ) -> Result<ImportOptions> {
        let mut options = ImportOptions {
            batch: self.batch,
            input_shape: input_shape.map(<[usize]>::to_vec),
            input_shapes: others
                .iter()
                .map(|(n, t)| (n.clone(), t.shape().to_vec()))
                .collect(),
            explain_input: explain_input.map(str::to_string),
            max_elements: self.max_elements,
            ..ImportOptions::default()
        };
        options.dims = parse_dims(&self.dims)?;
        for c in &self.constants {
            let (name, file) = c
                .split_once('=')
                .ok_or_else(|| anyhow!("--const '{c}' should be NAME=FILE"))?;
            let t = lrpc::io::npy::read(std::path::Path::new(file))?;
            options.constants.insert(name.to_string(), t);
        }
        Ok(options)
    }
}

/// `--dim NAME=SIZE` flags as a map from dimension name to size.
fn parse_dims(dims: &[String]) -> Result<std::collections::BTreeMap<String, usize>> {
    let mut out = std::collections::BTreeMap::new();
    for d in dims {
        let (name, size) = d
            .split_once('=')
            .ok_or_else(|| anyhow!("--dim '{d}' should be NAME=SIZE"))?;
        let size: usize = size
            .parse()
            .map_err(|_| anyhow!("--dim '{d}': '{size}' is not a size"))?;
        out.insert(name.to_string(), size);
    }
    Ok(out)
}

/// A model path argument.
#[derive(Args, Debug, Clone)]
pub struct ModelArg {
    /// The ONNX model file, or an explainer artifact (.lrpx) made by `lrpc compile`.
    model: PathBuf,
}

impl ModelArg {
    /// Whether the argument names an artifact.
    fn is_artifact(&self) -> bool {
        lrpc::runtime::artifact::is_artifact(&self.model)
    }
}

/// Loads the model at `path` for explained data of `shape` and the other inputs' data
/// (`others`), and tells the user what import changed about its meaning.
fn load_model(
    path: &std::path::Path,
    shapes: &ShapeArgs,
    inputs: &inputs::InputArgs,
    shape: &[usize],
    others: &[(String, lrpc::ir::Tensor)],
) -> Result<lrpc::Model> {
    let options = shapes.options_for(Some(shape), others, inputs.explain_input()?.as_deref())?;
    let model = lrpc::Model::load(path, &options)?;
    print_notes(path, &model);
    Ok(model)
}

/// Tells the user on stderr what import changed about the model's meaning.
fn print_notes(path: &std::path::Path, model: &lrpc::Model) {
    for note in &model.graph().notes {
        eprintln!("note: {}: {note}", path.display());
    }
}

/// Loads the artifact `model` names, refusing every flag in `given` (flags the artifact fixed
/// when it was compiled) with a message naming the flag and what the artifact holds.
fn load_artifact(
    model: &ModelArg,
    given: &[(&'static str, String)],
    engine: &engine::EngineArgs,
) -> Result<lrpc::Explainer> {
    let threads = match engine.threads {
        Some(0) => return Err(anyhow!("--threads must be positive")),
        Some(t) => t,
        None => lrpc::runtime::default_threads(),
    };
    let options = lrpc::LoadOptions {
        threads,
        code: if engine.recompile {
            lrpc::runtime::artifact::CodeSource::Recompile
        } else {
            lrpc::runtime::artifact::CodeSource::Stored
        },
        ..lrpc::LoadOptions::default()
    };
    let e = lrpc::Explainer::load_with(&model.model, options)?;
    let mut given = given.to_vec();
    if engine.interpreter {
        given.push(("--interpreter", String::new()));
    }
    refuse_fixed(&model.model, &given, held_by(&e))?;
    Ok(e)
}

/// Runs one parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Inspect(a) => inspect::inspect(a),
        Command::Run(a) => run::run(a),
        Command::Explain(a) => explain::explain(*a),
        Command::Compile(a) => compile::compile(*a),
        Command::Bench(a) => bench::bench(a),
        Command::Words(a) => words::words(*a),
        Command::Evaluate(a) => evaluate::evaluate(*a),
        Command::Regions(a) => regions::regions(*a),
    }
}

impl ShapeArgs {
    /// The flags given on the command line, as (flag, value): what an artifact refuses.
    fn given(&self) -> Vec<(&'static str, String)> {
        let mut v: Vec<(&'static str, String)> = Vec::new();
        if let Some(b) = self.batch {
            v.push(("--batch", b.to_string()));
        }
        for d in &self.dims {
            v.push(("--dim", d.clone()));
        }
        for c in &self.constants {
            v.push(("--const", c.clone()));
        }
        if self.max_elements != lrpc::onnx::DEFAULT_MAX_ELEMENTS {
            v.push(("--max-elements", self.max_elements.to_string()));
        }
        v
    }
}

/// Refuses flags that an artifact fixed when it was compiled: `given` lists (flag, value) the
/// user passed, `held` says what the artifact holds for each flag.
fn refuse_fixed(
    artifact: &std::path::Path,
    given: &[(&'static str, String)],
    held: impl Fn(&str) -> String,
) -> Result<()> {
    match given.first() {
        None => Ok(()),
        Some((flag, value)) => {
            let given = if value.is_empty() {
                flag.to_string()
            } else {
                format!("{flag} {value}")
            };
            Err(anyhow!(
                "{}: {given}: the artifact fixed this when it was compiled ({}); compile the model again to change it",
                artifact.display(),
                held(flag)
            ))
        }
    }
}

/// What an artifact holds for a flag it fixed, for `refuse_fixed`'s messages.
fn held_by(e: &lrpc::Explainer) -> impl Fn(&str) -> String + '_ {
    move |flag| {
        let m = e.method();
        let p = &m.params;
        match flag {
            "--method" => format!("method {}", m.name()),
            "--epsilon" => format!("epsilon {:e}", p.epsilon),
            "--gamma" => format!("gamma {}", p.gamma),
            "--low" => format!("low {}", p.low),
            "--high" => format!("high {}", p.high),
            "--alpha" => format!("alpha {}", p.alpha),
            "--bias-factor" => format!("bias factor {}", p.bias_factor),
            "--rule" if m.overrides.is_empty() => "no rule overrides".to_string(),
            "--rule" => {
                let o: Vec<String> = m
                    .overrides
                    .iter()
                    .map(|o| format!("{}={}", o.pattern, o.rule.name()))
                    .collect();
                format!("rules {}", o.join(" "))
            }
            "--batch" => format!("batch {}", e.spec().batch()),
            "--dim" => format!("input shape {:?}", e.spec().input().shape),
            "--layers" => "compiled without --layers".to_string(),
            "--interpreter" => "compiled code only".to_string(),
            "--explain-input" => format!("explained input '{}'", e.spec().input().name),
            _ => "a compiled value".to_string(),
        }
    }
}
