//! `lrpc evaluate MODEL --data D.npy [--labels L.npy] --methods M1,M2,...`: region perturbation
//! (pixel flipping; word deletion for token ids) over a data set, AOPC per method with its
//! standard error, ranked (src/eval/perturbation.rs holds the protocol).

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{Result, anyhow, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use lrpc::eval::data::{Data, ImageFolder};
use lrpc::eval::perturbation::{self as pert, Order, Regions};
use lrpc::eval::rng;
use lrpc::io::npy;
use lrpc::ir::tensor::{Tensor, TensorData};
use lrpc::relevance::Bound;
use lrpc::relevance::Method;
use lrpc::{Explainer, Forward, Model};

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
    /// Image folders: resize every image to W,H (or N for N,N).
    #[arg(long, value_name = "W,H")]
    resize: Option<String>,
    /// Image folders: per-channel mean subtracted after scaling to [0, 1] (one value or r,g,b).
    #[arg(long, value_name = "R,G,B")]
    mean: Option<String>,
    /// Image folders: per-channel standard deviation divided by (one value or r,g,b).
    #[arg(long, value_name = "R,G,B")]
    std: Option<String>,
    #[command(flatten)]
    method: MethodArgs,
    #[command(flatten)]
    shapes: ShapeArgs,
    #[command(flatten)]
    engine: EngineArgs,
}

impl EvaluateArgs {
    fn image_options(&self) -> Result<lrpc::io::image::ImageOptions> {
        super::explain::image_options(
            self.resize.as_deref(),
            self.mean.as_deref(),
            self.std.as_deref(),
        )
    }
}

/// Samples per explained batch when the model's batch axis is symbolic.
const EXPLAIN_BATCH: usize = 32;

/// Input values per batched forward run of perturbed inputs (64 MB of float32).
const CURVE_BATCH_VALUES: usize = 1 << 24;

/// One sample of the data set as a batch-1 tensor.
fn row(data: &Data, k: usize) -> Result<Tensor> {
    let mut shape = vec![1];
    shape.extend(data.sample_shape());
    Ok(if data.tokens() {
        Tensor::from_i64(shape, data.ids(k)?)?
    } else {
        Tensor::from_f32(shape, data.floats(k)?)?
    })
}

/// Runs `rows` samples (concatenated values, any count) through the forward pass in batches
/// of the model's size; returns the logits of each, `classes` per row.
struct Runner<'a> {
    model: &'a Model,
    forward: Forward,
    batch: usize,
    sample: Vec<usize>,
}

impl Runner<'_> {
    fn logits<T: Copy + Default>(
        &self,
        values: &[T],
        make: impl Fn(Vec<usize>, Vec<T>) -> Result<Tensor>,
    ) -> Result<Vec<f32>> {
        let per: usize = self.sample.iter().product();
        let n = values.len() / per.max(1);
        let mut out = Vec::new();
        for start in (0..n).step_by(self.batch) {
            let count = self.batch.min(n - start);
            let mut chunk = values[start * per..(start + count) * per].to_vec();
            chunk.resize(self.batch * per, T::default());
            let mut shape = vec![self.batch];
            shape.extend(&self.sample);
            let outs = self.model.run_forward(&self.forward, make(shape, chunk)?)?;
            let l = outs
                .first()
                .ok_or_else(|| anyhow!("the model has no output"))?
                .f32s()?;
            let classes = l.len() / self.batch;
            out.extend_from_slice(&l[..count * classes]);
        }
        Ok(out)
    }
}

fn argmax(row: &[f32]) -> usize {
    row.iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &v)| {
            if v > bv { (i, v) } else { (bi, bv) }
        })
        .0
}

/// The heatmaps of one method: per sample, the relevance per position.
enum Heatmaps {
    Random,
    Explained {
        explainer: Box<Explainer>,
        square: bool,
    },
}

pub fn evaluate(args: EvaluateArgs) -> Result<()> {
    let what = args.data.display().to_string();
    let csv = args
        .labels
        .as_deref()
        .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv")));
    let data = if args.data.is_dir() {
        // The model's channels decide grey or RGB decoding.
        let probe = Model::load(
            &args.model.model,
            &args.shapes.options_for(None, &[], None)?,
        )?;
        let channels = match probe.input_shape() {
            [_, c, _, _] => *c,
            s => bail!("{what}: a folder of images needs a model taking (N, C, H, W), not {s:?}"),
        };
        Data::Folder(ImageFolder::open(
            &args.data,
            csv,
            args.image_options()?,
            channels,
        )?)
    } else {
        Data::Array(npy::read(&args.data)?)
    };
    let n = data.len();
    if n == 0 {
        bail!("{what}: the data set is empty");
    }
    let sample: Vec<usize> = data.sample_shape();
    if sample.is_empty() {
        bail!("{what}: the data must be stacked samples (N, ...)");
    }
    let tokens = data.tokens();
    let labels: Option<Vec<i64>> = match &args.labels {
        None => data.labels(),
        Some(_) if csv.is_some() => data.labels(),
        Some(p) => {
            let l = npy::read(p)?;
            let v = l
                .i64s()
                .map_err(|_| anyhow!("{}: labels must be integers", p.display()))?
                .to_vec();
            if v.len() != n {
                bail!(
                    "{}: {} labels for {n} samples in {what}",
                    p.display(),
                    v.len()
                );
            }
            Some(v)
        }
    };
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
    let model_batch = model.input_shape().first().copied().unwrap_or(1).max(1);
    let sample = if model.input_shape().len() == sample.len() + 1 {
        sample
    } else {
        bail!(
            "{what}: samples of shape {sample:?}, but {} takes {:?}",
            args.model.model.display(),
            model.input_shape()
        );
    };
    let runner = Runner {
        model: &model,
        forward: model.forward(engine, threads)?,
        batch: model_batch,
        sample: sample.clone(),
    };
    let steps_given = args.steps;
    let order_all = match args.order.as_str() {
        "arras" if tokens => None,
        "arras" => bail!("--order arras is for token ids (word deletion)"),
        o => Some(Order::parse(o)?),
    };
    let probability = match args.score.as_str() {
        "logit" => false,
        "prob" => true,
        s => bail!("--score '{s}' is neither logit nor prob"),
    };
    // Unperturbed forward (streamed in the model's batches): targets, correctness.
    let mut base = Vec::new();
    for start in (0..n).step_by(model_batch) {
        let end = (start + model_batch).min(n);
        if tokens {
            let mut v = Vec::new();
            for k in start..end {
                v.extend(data.ids(k)?);
            }
            base.extend(runner.logits(&v, |s, d| Ok(Tensor::from_i64(s, d)?))?);
        } else {
            let mut v = Vec::new();
            for k in start..end {
                v.extend(data.floats(k)?);
            }
            base.extend(runner.logits(&v, |s, d| Ok(Tensor::from_f32(s, d)?))?);
        }
    }
    let classes = base.len() / n;
    let predicted: Vec<usize> = base.chunks(classes).map(argmax).collect();
    if let Some(l) = &labels
        && let Some(k) = l.iter().position(|&v| v < 0 || v as usize >= classes)
    {
        bail!(
            "labels: sample {k} has label {} outside the model's {classes} classes",
            l[k]
        );
    }
    let targets: Vec<usize> = match (args.target.as_str(), &labels) {
        ("top", _) => predicted.clone(),
        ("label", Some(l)) => l.iter().map(|&v| v as usize).collect(),
        ("label", None) => bail!("--target label needs --labels"),
        (t, _) => bail!("--target '{t}' is neither label nor top"),
    };
    let correct: Vec<bool> = match &labels {
        Some(l) => (0..n).map(|k| predicted[k] as i64 == l[k]).collect(),
        None => vec![true; n],
    };
    if args.correct_only && labels.is_none() {
        bail!("--correct-only needs --labels");
    }
    let keep: Vec<usize> = (0..n)
        .filter(|&k| !args.correct_only || correct[k])
        .collect();
    if keep.is_empty() {
        bail!("no sample is classified correctly");
    }
    // Regions (token ids: every non-padding word), steps.
    let patch = args.patch.unwrap_or(if tokens { 1 } else { 9 });
    let grid = Regions::new(&sample, patch)?;
    let per: usize = sample.iter().product();
    let regions_of = |k: usize| -> Regions {
        match data.ids(k) {
            Ok(row) if tokens => grid.clone().without(|p| row[p] == args.pad_id),
            _ => grid.clone(),
        }
    };
    let fewest = keep.iter().map(|&k| regions_of(k).len()).min().unwrap_or(0);
    // Given steps beyond a sample's regions are an error; the default stops at the fewest.
    let steps = steps_given.unwrap_or(if tokens { fewest } else { 100.min(fewest) });
    if let Some(&k) = keep.iter().find(|&&k| regions_of(k).len() < steps) {
        bail!(
            "--steps {steps} is beyond the {} regions of sample {k} (patch {patch} on {sample:?})",
            regions_of(k).len()
        );
    }
    // What replaces a region: one field per sample, shared by every method.
    let perturb = args.perturb.clone().unwrap_or_else(|| {
        if tokens {
            "delete".into()
        } else {
            "uniform".into()
        }
    });
    // uniform: draw k * per + i of stream `seed` for value i of row k (fixtures/aopc_ref.py);
    // mean: the per-channel mean; zero. Made per sample when needed, not held for all.
    enum Fill {
        Uniform(f64, f64),
        Field(Vec<f32>),
        Ids,
    }
    let fill = match (tokens, perturb.as_str()) {
        (false, "uniform") => {
            let (lo, hi) = data.range()?;
            Fill::Uniform(f64::from(lo), f64::from(hi))
        }
        (false, "mean") => {
            let means = data.channel_means()?;
            let plane = per / means.len().max(1);
            Fill::Field((0..per).map(|i| means[i / plane] as f32).collect())
        }
        (false, "zero") => Fill::Field(vec![0.0; per]),
        (false, p) => bail!("--perturb '{p}': float data takes uniform, mean or zero"),
        (true, "delete" | "unk") => Fill::Ids,
        (true, p) => bail!("--perturb '{p}': token ids take delete or unk"),
    };
    let fill_of = |k: usize| -> Vec<f32> {
        match &fill {
            Fill::Uniform(lo, hi) => (0..per)
                .map(|i| (lo + (hi - lo) * rng::uniform(args.seed, (k * per + i) as u64)) as f32)
                .collect(),
            Fill::Field(v) => v.clone(),
            Fill::Ids => Vec::new(),
        }
    };
    let fill_id = if perturb == "unk" {
        args.unk_id
    } else {
        args.pad_id
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
    let mut heatmaps = Vec::with_capacity(names.len());
    for name in &names {
        let h = match name.as_str() {
            "random" => Heatmaps::Random,
            m => {
                let (base, square) = if m == "sensitivity" {
                    ("gradient", true)
                } else {
                    (m, false)
                };
                let mut a = args.method.clone();
                a.method = Some(base.to_string());
                let mut method: Method = a.method()?;
                // The z-box bounds default to the data set's range (not -3..3).
                let given: Vec<&str> = args.method.given().iter().map(|(f, _)| *f).collect();
                if !tokens && base == "epsilon-gamma-box" {
                    let (lo, hi) = data.range()?;
                    if !given.contains(&"--low") {
                        method.params.low = Bound::Scalar(lo);
                    }
                    if !given.contains(&"--high") {
                        method.params.high = Bound::Scalar(hi);
                    }
                }
                let options = lrpc::ExplainOptions {
                    engine,
                    threads,
                    ..lrpc::ExplainOptions::default()
                };
                Heatmaps::Explained {
                    explainer: Box::new(
                        Explainer::with_options(&model, method, options)
                            .map_err(|e| anyhow!("{name}: {e}"))?,
                    ),
                    square,
                }
            }
        };
        heatmaps.push(h);
    }
    let bar = if args.quiet || !std::io::stderr().is_terminal() {
        ProgressBar::with_draw_target(
            Some((names.len() * keep.len()) as u64),
            ProgressDrawTarget::hidden(),
        )
    } else {
        let b = ProgressBar::new((names.len() * keep.len()) as u64);
        b.set_style(
            ProgressStyle::with_template(
                "{msg:>24} [{bar:30}] {pos}/{len} samples, {per_sec}, eta {eta}",
            )
            .map_err(|e| anyhow!("progress bar: {e}"))?
            .progress_chars("=> "),
        );
        b
    };
    let positions = grid.positions();
    // The perturbed inputs run in batches of a chunk's whole curves (L + 1 rows per sample),
    // capped at CURVE_BATCH_VALUES input values per run; a fixed-batch model runs at its own.
    let chunk_rows = eb.min(model_batch).max(1) * (steps + 1);
    let curve_batch = chunk_rows.min((CURVE_BATCH_VALUES / per.max(1)).max(1));
    let bigger = if curve_batch > model_batch {
        model.with_batch(curve_batch)?
    } else {
        None
    };
    let curve_model = bigger.as_ref().unwrap_or(&model);
    let curve_runner = Runner {
        model: curve_model,
        forward: curve_model.forward(engine, threads)?,
        batch: curve_model
            .input_shape()
            .first()
            .copied()
            .unwrap_or(1)
            .max(1),
        sample: sample.clone(),
    };
    let mut results = Vec::new();
    let mut curve_ses = Vec::new();
    for (name, h) in names.iter().zip(&heatmaps) {
        bar.set_message(name.clone());
        let mut curves = Vec::with_capacity(keep.len());
        let mut score_sums = vec![0f64; steps + 1];
        let mut right = vec![0usize; steps + 1];
        for chunk in keep.chunks(eb.min(model_batch).max(1)) {
            // Relevance per position for the chunk's samples.
            let maps: Vec<Vec<f32>> = match h {
                Heatmaps::Random => chunk
                    .iter()
                    .map(|&k| {
                        // Stream seed + 1, draw k * positions + p.
                        (0..positions)
                            .map(|p| {
                                rng::uniform(args.seed.wrapping_add(1), (k * positions + p) as u64)
                                    as f32
                            })
                            .collect()
                    })
                    .collect(),
                Heatmaps::Explained { explainer, square } => {
                    let mut x = Vec::with_capacity(model_batch);
                    for &k in chunk {
                        x.push(row(&data, k)?);
                    }
                    let mut rels = Vec::new();
                    for (sub, xs) in chunk.chunks(model_batch).zip(x.chunks(model_batch)) {
                        let batch = stack(xs, model_batch)?;
                        let t: Vec<Option<usize>> = sub
                            .iter()
                            .map(|&k| Some(targets[k]))
                            .chain(std::iter::repeat(None))
                            .take(model_batch)
                            .collect();
                        let e = explainer.explain_for(batch, &t)?;
                        let r = e.relevance.f32s()?;
                        let each = r.len() / model_batch;
                        for b in 0..sub.len() {
                            let mut v = r[b * each..(b + 1) * each].to_vec();
                            if *square {
                                v.iter_mut().for_each(|x| *x *= *x);
                            }
                            rels.push(pert::position_relevance(&v, positions, tokens));
                        }
                    }
                    rels
                }
            };
            // Every perturbed input of the chunk's samples, then one batched forward run.
            let orders: Vec<(Regions, Vec<usize>)> = chunk
                .iter()
                .zip(&maps)
                .map(|(&k, map)| {
                    let regions = regions_of(k);
                    let order = match order_all {
                        Some(o) => o,
                        None if correct[k] => Order::Morf,
                        None => Order::Lerf,
                    };
                    let o = regions.order(&regions.scores(map), order);
                    (regions, o)
                })
                .collect();
            let logits = if tokens {
                let fill = vec![fill_id; per];
                let mut inputs = Vec::with_capacity(chunk.len() * (steps + 1) * per);
                for (&k, (regions, o)) in chunk.iter().zip(&orders) {
                    inputs.extend(pert::curve_inputs(&data.ids(k)?, &fill, regions, o, steps));
                }
                curve_runner.logits(&inputs, |s, d| Ok(Tensor::from_i64(s, d)?))?
            } else {
                let mut inputs = Vec::with_capacity(chunk.len() * (steps + 1) * per);
                for (&k, (regions, o)) in chunk.iter().zip(&orders) {
                    inputs.extend(pert::curve_inputs(
                        &data.floats(k)?,
                        &fill_of(k),
                        regions,
                        o,
                        steps,
                    ));
                }
                curve_runner.logits(&inputs, |s, d| Ok(Tensor::from_f32(s, d)?))?
            };
            for (j, &k) in chunk.iter().enumerate() {
                let rows = &logits[j * (steps + 1) * classes..(j + 1) * (steps + 1) * classes];
                let f = pert::scores(rows, classes, targets[k], probability);
                for (s, &v) in score_sums.iter_mut().zip(&f) {
                    *s += f64::from(v);
                }
                curves.push(f.iter().map(|&fk| f[0] - fk).collect::<Vec<f32>>());
                if let Some(l) = &labels {
                    for (s, row) in rows.chunks(classes).enumerate() {
                        right[s] += usize::from(argmax(row) as i64 == l[k]);
                    }
                }
                bar.inc(1);
            }
        }
        let (aopc, se, curve) = pert::aopc(&curves);
        curve_ses.push(lrpc::eval::plot::curve_se(&curves));
        let accuracy: Option<Vec<f64>> = labels.as_ref().map(|_| {
            right
                .iter()
                .map(|&r| r as f64 / keep.len() as f64)
                .collect()
        });
        let mean_score: Vec<f64> = score_sums.iter().map(|s| s / keep.len() as f64).collect();
        results.push((name.clone(), aopc, se, curve, accuracy, mean_score));
    }
    bar.finish_and_clear();
    if let Some(path) = &args.plot {
        let series: Vec<lrpc::eval::plot::Series> = results
            .iter()
            .zip(&curve_ses)
            .map(
                |((name, aopc, _, curve, ..), se)| lrpc::eval::plot::Series {
                    name,
                    aopc: *aopc,
                    mean: curve,
                    se,
                },
            )
            .collect();
        let title = format!(
            "{} ({} samples, {}, {} perturbation)",
            args.model
                .model
                .file_stem()
                .map_or_else(String::new, |s| s.to_string_lossy().into_owned()),
            keep.len(),
            args.order,
            perturb
        );
        let x = if tokens {
            "words removed"
        } else {
            "regions perturbed"
        };
        lrpc::eval::plot::curves(path, &title, x, &series)?;
    }
    // Rank: larger AOPC is better for morf (and arras), smaller for lerf.
    let lower_better = order_all == Some(Order::Lerf);
    let mut rank: Vec<usize> = (0..results.len()).collect();
    rank.sort_by(|&a, &b| {
        let (x, y) = (results[a].1, results[b].1);
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
            .map(|((name, aopc, se, curve, acc, score), rank)| {
                let mut m = serde_json::json!({"method": name, "aopc": aopc, "se": se, "rank": rank, "curve": curve, "scores": score});
                if let Some(a) = acc {
                    m["accuracy"] = serde_json::json!(a);
                }
                m
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({
                "n": keep.len(), "steps": steps, "patch": patch, "score": args.score,
                "order": args.order, "perturb": perturb, "target": args.target, "methods": methods,
            })
        );
    } else {
        println!(
            "AOPC over {} samples, {steps} steps of {patch}{} regions, {} first, {} perturbation, score {}:",
            keep.len(),
            if tokens || sample.len() == 1 {
                "-position"
            } else {
                "x{patch}"
            }
            .replace("{patch}", &patch.to_string()),
            args.order,
            perturb,
            args.score
        );
        println!(
            "{:>4}  {:<28} {:>12} {:>10}",
            "rank", "method", "AOPC", "s.e."
        );
        for &i in &rank {
            let (name, aopc, se, ..) = &results[i];
            println!("{:>4}  {:<28} {:>12.5} {:>10.5}", ranks[i], name, aopc, se);
        }
    }
    Ok(())
}

/// Stacks batch-1 rows into one batch of `batch` rows (padded with zeros).
fn stack(rows: &[Tensor], batch: usize) -> Result<Tensor> {
    let mut shape = rows[0].shape().to_vec();
    shape[0] = batch;
    Ok(match rows[0].data() {
        TensorData::F32(_) => {
            let mut v = Vec::new();
            for r in rows {
                v.extend_from_slice(r.f32s()?);
            }
            v.resize(shape.iter().product(), 0.0);
            Tensor::from_f32(shape, v)?
        }
        TensorData::I64(_) => {
            let mut v = Vec::new();
            for r in rows {
                v.extend_from_slice(r.i64s()?);
            }
            v.resize(shape.iter().product(), 0);
            Tensor::from_i64(shape, v)?
        }
    })
}
