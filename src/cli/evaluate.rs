//! `lrpc evaluate MODEL --data D.npy [--labels L.npy] --methods M1,M2,...`: region perturbation
//! (pixel flipping; word deletion for token ids) over a data set, AOPC per method with its
//! standard error, ranked (src/eval/perturbation.rs holds the protocol).

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{Result, anyhow, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use lrpc::Model;
use lrpc::eval::perturbation::Order;
use lrpc::eval::protocol::{self, Perturb, Protocol};

use super::engine::EngineArgs;
use super::method::MethodArgs;
use super::{ModelArg, ShapeArgs};

#[derive(Args, Debug)]
pub struct EvaluateArgs {
    #[command(flatten)]
    model: ModelArg,
    /// The data set: one .npy of stacked samples (N, ...), floats or token ids; or a folder of
    /// PNG/JPEG images, read one batch at a time (labels from its sub-folders, the ImageFolder
    /// convention, or from --labels FILE.csv with lines `file,label`).
    #[arg(long)]
    data: PathBuf,
    /// Integer labels (N,) as .npy (or for an image folder a CSV `file,label`): for --target
    /// label, --correct-only and the accuracy per step.
    #[arg(long)]
    labels: Option<PathBuf>,
    /// Methods to compare, comma-separated: any --method name, `sensitivity` (the squared
    /// gradient) and `random` (a uniform random heatmap, seeded).
    #[arg(
        long,
        default_value = "epsilon-plus-flat,gradient-x-input,sensitivity,random"
    )]
    methods: String,
    /// Side of the square regions (positions along the axis for 1-D samples and token ids)
    /// [default: 9, token ids 1]. A patch that does not divide a side leaves smaller regions at
    /// the far edges.
    #[arg(long)]
    patch: Option<usize>,
    /// Perturbation steps L [default: 100, or the number of regions if fewer; token ids: the
    /// fewest words of a document].
    #[arg(long)]
    steps: Option<usize>,
    /// morf (most relevant first), lerf (least relevant first), or for token ids `arras`:
    /// morf on correctly classified documents, lerf on the others (Arras et al.).
    #[arg(long, default_value = "morf")]
    order: String,
    /// What replaces a region: uniform (noise over the data set's value range, one field per
    /// sample shared by every method), mean (the data set's per-channel mean), zero; token
    /// ids: delete (--pad-id) or unk (--unk-id).
    #[arg(long)]
    perturb: Option<String>,
    /// Token ids: the padding id (deleted words become it; padding is never a region).
    #[arg(long, default_value_t = 0)]
    pad_id: i64,
    /// Token ids: the unknown-word id of --perturb unk.
    #[arg(long, default_value_t = 1)]
    unk_id: i64,
    /// The score f: the target's logit, or its softmax probability.
    #[arg(long, default_value = "logit")]
    score: String,
    /// The explained class: `label` (needs --labels) or `top` (the unperturbed arg-max).
    #[arg(long, default_value = "top")]
    target: String,
    /// Only the correctly classified samples (needs --labels).
    #[arg(long)]
    correct_only: bool,
    /// Seed of the uniform noise and the random heatmaps.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Print one JSON object instead of the table: n, steps, patch, score, order, perturb,
    /// target, and per method its aopc, se, rank, curve (mean f(x_0) - f(x_k), k = 0..L),
    /// scores (mean f(x_k)) and, with --labels, accuracy (per step).
    #[arg(long)]
    json: bool,
    /// Plot the curves (mean f(x_0) - f(x_k) per method, +-1 s.e. band, AOPC in the legend)
    /// to a .png or .svg file.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    #[command(flatten)]
    images: super::images::ImageArgs,
    #[command(flatten)]
    method: MethodArgs,
    #[command(flatten)]
    shapes: ShapeArgs,
    #[command(flatten)]
    engine: EngineArgs,
}

/// Samples per explained batch when the model's batch axis is symbolic.
const EXPLAIN_BATCH: usize = 32;

pub fn evaluate(args: EvaluateArgs) -> Result<()> {
    if args.model.is_artifact() {
        bail!(
            "{}: evaluate takes the ONNX model: it compiles an explainer per method and a forward pass at the batch of whole curves, and an artifact fixes one method and one batch",
            args.model.model.display()
        );
    }
    let what = args.data.display().to_string();
    let data = super::images::open_data(
        &args.model.model,
        &args.shapes,
        &args.data,
        args.labels.as_deref(),
        &args.images,
    )?;
    let n = data.len();
    if n == 0 {
        bail!("{what}: the data set is empty");
    }
    let sample: Vec<usize> = data.sample_shape();
    if sample.is_empty() {
        bail!("{what}: the data must be stacked samples (N, ...)");
    }
    let tokens = data.tokens();
    let labels = super::images::read_labels(args.labels.as_deref(), &data)?;
    if let (Some(p), Some(v)) = (&args.labels, &labels)
        && v.len() != n
    {
        bail!(
            "{}: {} labels for {n} samples in {what}",
            p.display(),
            v.len()
        );
    }
    // The model, for explanations (batch up to EXPLAIN_BATCH) and for the perturbed inputs.
    let eb = EXPLAIN_BATCH.min(n);
    let mut shape = vec![eb];
    shape.extend(&sample);
    let model = Model::load(
        &args.model.model,
        &args.shapes.options_for(Some(&shape), &[], None)?,
    )?;
    super::print_notes(&args.model.model, &model);
    let (engine, threads) = args.engine.engine()?;
    let sample = if model.input_shape().len() == sample.len() + 1 {
        sample
    } else {
        bail!(
            "{what}: samples of shape {sample:?}, but {} takes {:?}",
            args.model.model.display(),
            model.input_shape()
        );
    };
    let order = match args.order.as_str() {
        "arras" if tokens => None,
        "arras" => bail!("--order arras is for token ids (word deletion)"),
        o => Some(Order::parse(o)?),
    };
    let probability = match args.score.as_str() {
        "logit" => false,
        "prob" => true,
        s => bail!("--score '{s}' is neither logit nor prob"),
    };
    let target_label = match args.target.as_str() {
        "top" => false,
        "label" => true,
        t => bail!("--target '{t}' is neither label nor top"),
    };
    let perturb_name = args
        .perturb
        .clone()
        .unwrap_or_else(|| if tokens { "delete" } else { "uniform" }.to_string());
    let perturb = match perturb_name.as_str() {
        "uniform" => Perturb::Uniform,
        "mean" => Perturb::Mean,
        "zero" => Perturb::Zero,
        "delete" => Perturb::Id(args.pad_id),
        "unk" => Perturb::Id(args.unk_id),
        p => bail!(
            "--perturb '{p}' is none of uniform, mean, zero (floats), delete, unk (token ids)"
        ),
    };
    let patch = args.patch.unwrap_or(if tokens { 1 } else { 9 });
    let protocol = Protocol {
        patch,
        steps: args.steps,
        order,
        perturb,
        pad_id: args.pad_id,
        probability,
        target_label,
        correct_only: args.correct_only,
        seed: args.seed,
        ids: None,
        range: None,
        means: None,
    };
    // Methods.
    let names: Vec<String> = args
        .methods
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    if names.is_empty() {
        bail!("--methods names no method");
    }
    let given: Vec<&str> = args.method.given().iter().map(|(f, _)| *f).collect();
    let bounds_given = (given.contains(&"--low"), given.contains(&"--high"));
    let range = if tokens { None } else { Some(data.range()?) };
    let options = lrpc::ExplainOptions {
        engine,
        threads,
        ..lrpc::ExplainOptions::default()
    };
    let mut methods = Vec::with_capacity(names.len());
    for name in &names {
        let h = protocol::heatmaps(name, &model, options, range, bounds_given, |base| {
            let mut a = args.method.clone();
            a.method = Some(base.to_string());
            a.method().map_err(|e| lrpc::Error::Input {
                what: name.clone(),
                reason: e.to_string(),
            })
        })?;
        methods.push((name.clone(), h));
    }
    let bar = if args.quiet || !std::io::stderr().is_terminal() {
        ProgressBar::hidden()
    } else {
        let b = ProgressBar::new((names.len() * n) as u64);
        b.set_style(
            ProgressStyle::with_template(
                "{msg:>24} [{bar:30}] {pos}/{len} samples, {per_sec}, eta {eta}",
            )
            .map_err(|e| anyhow!("progress bar: {e}"))?
            .progress_chars("=> "),
        );
        b
    };
    let mut progress = |name: &str, done: u64, total: u64| {
        bar.set_length(total);
        bar.set_message(name.to_string());
        bar.inc(done);
    };
    let report = protocol::run(
        &model,
        (engine, threads),
        &data,
        labels.as_deref(),
        &methods,
        &protocol,
        &mut progress,
    )?;
    bar.finish_and_clear();
    let (steps, keep_n) = (report.steps, report.n);
    let results = &report.methods;
    if let Some(path) = &args.plot {
        let series: Vec<lrpc::eval::plot::Series> = results
            .iter()
            .map(|m| lrpc::eval::plot::Series {
                name: &m.method,
                aopc: m.aopc,
                mean: &m.curve,
                se: &m.curve_se,
            })
            .collect();
        let title = format!(
            "{} ({keep_n} samples, {}, {perturb_name} perturbation)",
            args.model
                .model
                .file_stem()
                .map_or_else(String::new, |s| s.to_string_lossy().into_owned()),
            args.order,
        );
        let x = if tokens {
            "words removed"
        } else {
            "regions perturbed"
        };
        lrpc::eval::plot::curves(path, &title, x, &series)?;
    }
    // Rank: larger AOPC is better for morf (and arras), smaller for lerf.
    let lower_better = order == Some(Order::Lerf);
    let mut rank: Vec<usize> = (0..results.len()).collect();
    rank.sort_by(|&a, &b| {
        let (x, y) = (results[a].aopc, results[b].aopc);
        if lower_better {
            x.total_cmp(&y)
        } else {
            y.total_cmp(&x)
        }
    });
    let mut ranks = vec![0; results.len()];
    for (r, &i) in rank.iter().enumerate() {
        ranks[i] = r + 1;
    }
    if args.json {
        let methods: Vec<serde_json::Value> = results
            .iter()
            .zip(&ranks)
            .map(|(m, rank)| {
                let mut v = serde_json::json!({
                    "method": m.method, "aopc": m.aopc, "se": m.se, "rank": rank,
                    "curve": m.curve, "curve_se": m.curve_se, "scores": m.scores,
                });
                if let Some(a) = &m.accuracy {
                    v["accuracy"] = serde_json::json!(a);
                }
                v
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({
                "n": keep_n, "steps": steps, "patch": patch, "score": args.score,
                "order": args.order, "perturb": perturb_name, "target": args.target, "methods": methods,
            })
        );
    } else {
        let shape = if tokens || sample.len() == 1 {
            "-position".to_string()
        } else {
            format!("x{patch}")
        };
        println!(
            "AOPC over {keep_n} samples, {steps} steps of {patch}{shape} regions, {} first, {perturb_name} perturbation, score {}:",
            args.order, args.score
        );
        println!(
            "{:>4}  {:<28} {:>12} {:>10}",
            "rank", "method", "AOPC", "s.e."
        );
        for &i in &rank {
            let m = &results[i];
            println!(
                "{:>4}  {:<28} {:>12.5} {:>10.5}",
                ranks[i], m.method, m.aopc, m.se
            );
        }
    }
    Ok(())
}
