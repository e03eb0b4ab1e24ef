//! `lrpc run MODEL --input X.npy [--output Y.npy] [--json]`: the forward pass only.

use super::engine::EngineArgs;
use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;
use lrpc::io::npy;
use lrpc::ir::Tensor;
use serde::Serialize;

use super::{ModelArg, ShapeArgs};

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    model: ModelArg,
    #[command(flatten)]
    inputs: super::inputs::InputArgs,
    /// Write the (first) output to this .npy file.
    #[arg(long)]
    output: Option<PathBuf>,
    /// Print one JSON object with every output's name, shape and values.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    shapes: ShapeArgs,
    #[command(flatten)]
    engine: EngineArgs,
}

#[derive(Serialize)]
struct OutputJson<'a> {
    name: &'a str,
    shape: &'a [usize],
    values: &'a [f32],
}

/// Outputs up to this many values are printed in full in text mode.
const PRINT_LIMIT: usize = 32;

pub fn run(args: RunArgs) -> Result<()> {
    let path = args.inputs.main()?;
    let others = args.inputs.others()?;
    let input = npy::read(&path)?;
    let what = path.display().to_string();
    let (outputs, names) = if args.model.is_artifact() {
        let mut given = args.shapes.given();
        if let Some(name) = &args.inputs.explain_input()? {
            given.push(("--explain-input", name.clone()));
        }
        let e = super::load_artifact(&args.model, &given, &args.engine)?;
        let input = e.spec().check_input(input, &what)?;
        (
            e.run_with(input, &super::inputs::borrowed(&others))?,
            e.spec().outputs.clone(),
        )
    } else {
        let model = super::load_model(
            &args.model.model,
            &args.shapes,
            &args.inputs,
            input.shape(),
            &others,
        )?;
        let input = model.check_input(input, &what)?;
        let (engine, threads) = args.engine.engine()?;
        let outputs = model.run_forward_with(
            &model.forward(engine, threads)?,
            input,
            &super::inputs::borrowed(&others),
        )?;
        let names = model
            .graph()
            .outputs
            .iter()
            .map(|o| o.name.clone())
            .collect();
        (outputs, names)
    };
    if let Some(path) = &args.output {
        let Some(first) = outputs.first() else {
            bail!("the model produced no output")
        };
        npy::write(path, first)?;
    }
    if args.json {
        let list = outputs
            .iter()
            .zip(&names)
            .map(|(t, name)| {
                let name = name.as_str();
                Ok(OutputJson {
                    name,
                    shape: t.shape(),
                    values: t.f32s()?,
                })
            })
            .collect::<Result<Vec<_>, lrpc::error::OpError>>()?;
        println!("{}", serde_json::json!({ "outputs": list }));
    } else {
        for (t, name) in outputs.iter().zip(&names) {
            print_output(name, t)?;
        }
    }
    Ok(())
}

fn print_output(name: &str, t: &Tensor) -> Result<()> {
    let v = t.f32s()?;
    let argmax = v
        .iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (i, &x)| {
            if x > best.1 { (i, x) } else { best }
        });
    println!(
        "{name}: f32{:?} argmax {} ({:.6})",
        t.shape(),
        argmax.0,
        argmax.1
    );
    if v.len() <= PRINT_LIMIT {
        let items: Vec<String> = v.iter().map(|x| format!("{x:.6}")).collect();
        println!("  [{}]", items.join(", "));
    }
    Ok(())
}
