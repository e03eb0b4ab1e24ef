//! The region perturbation study over a data set, as one call ([`run`]): unperturbed
//! predictions and targets, every method's heatmaps in batches, region orders, the perturbed
//! inputs of a chunk of samples run as batches of whole curves through the compiled forward
//! pass, and per method the AOPC with its standard error, the mean curve and its per-step
//! standard error, the mean score and (with labels) the accuracy per step. `lrpc evaluate` is
//! a thin layer over it.

use super::data::Data;
use super::perturbation::{self as pert, Order, Regions};
use super::rng;
use crate::error::{Error, Result};
use crate::ir::Tensor;
use crate::{Engine, Explainer, Forward, Model};

/// What replaces a region.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Perturb {
    /// Uniform noise over the data set's value range, one field per sample (draw k * per + i of
    /// stream `seed` for value i of sample k, shared by every method).
    Uniform,
    /// The data set's per-channel mean.
    Mean,
    Zero,
    /// Token ids: this id (padding for deletion, or the unknown word).
    Id(i64),
}

/// The protocol's settings.
#[derive(Clone, Debug)]
pub struct Protocol {
    /// Region side (positions for 1-D samples and tokens).
    pub patch: usize,
    /// Steps L; `None`: 100 (images) or the fewest words of a document (tokens), at most the
    /// fewest regions.
    pub steps: Option<usize>,
    /// `None`: Arras et al.'s word deletion order, MoRF on correct samples and LeRF on the rest.
    pub order: Option<Order>,
    pub perturb: Perturb,
    /// Token ids: padding positions are never regions.
    pub pad_id: i64,
    /// Score the softmax probability instead of the logit.
    pub probability: bool,
    /// Explain each sample's label (else its unperturbed arg-max).
    pub target_label: bool,
    pub correct_only: bool,
    pub seed: u64,
    /// Each sample's index in the whole data set, for the noise streams (`None`: its index
    /// here): a part of a data set evaluated alone (a Ray block) then draws the same noise as
    /// in the whole.
    pub ids: Option<Vec<u64>>,
    /// The whole data set's value range, for the uniform noise (`None`: this data's).
    pub range: Option<(f32, f32)>,
    /// The whole data set's channel means, for `Perturb::Mean` (`None`: this data's).
    pub means: Option<Vec<f64>>,
}

impl Protocol {
    /// The defaults of `lrpc evaluate` for float data (tokens: patch 1, deletion).
    pub fn new(tokens: bool) -> Protocol {
        Protocol {
            patch: if tokens { 1 } else { 9 },
            steps: None,
            order: Some(Order::Morf),
            perturb: if tokens {
                Perturb::Id(0)
            } else {
                Perturb::Uniform
            },
            pad_id: 0,
            probability: false,
            target_label: false,
            correct_only: false,
            seed: 0,
            ids: None,
            range: None,
            means: None,
        }
    }
}

/// Where a method's heatmaps come from.
pub enum Heatmaps {
    /// One uniform value per position (stream seed + 1, draw k * positions + p).
    Random,
    /// An explainer's relevance, squared for sensitivity.
    Explained {
        explainer: Box<Explainer>,
        square: bool,
    },
}

/// One method's result.
#[derive(Clone, Debug, serde::Serialize)]
pub struct MethodReport {
    pub method: String,
    pub aopc: f64,
    pub se: f64,
    /// Mean f(x_0) - f(x_k), k = 0..=L.
    pub curve: Vec<f64>,
    /// Its standard error per step.
    pub curve_se: Vec<f64>,
    /// Mean f(x_k).
    pub scores: Vec<f64>,
    /// Fraction classified as labelled after each step (with labels).
    pub accuracy: Option<Vec<f64>>,
    /// What each evaluated sample gave, in order (what [`summarise`] makes the rest of).
    #[serde(skip)]
    pub samples: Vec<SampleCurve>,
}

/// One sample's perturbation curve under one method.
#[derive(Clone, Debug, PartialEq)]
pub struct SampleCurve {
    /// f(x_0) - f(x_k), k = 0..=L.
    pub drop: Vec<f32>,
    /// f(x_k).
    pub scores: Vec<f32>,
    /// Whether x_k is classified as labelled (empty without labels).
    pub right: Vec<bool>,
}

/// A method's report from its samples' curves (in order): AOPC and its standard error, the
/// mean curve and its per-step standard error, the mean score and the accuracy per step.
/// Curves of parts of a data set, concatenated in order, give the whole one's report exactly.
pub fn summarise(method: &str, samples: Vec<SampleCurve>) -> MethodReport {
    let curves: Vec<Vec<f32>> = samples.iter().map(|s| s.drop.clone()).collect();
    let (aopc, se, curve) = pert::aopc(&curves);
    let n = samples.len().max(1) as f64;
    let len = curve.len();
    let scores = (0..len)
        .map(|k| samples.iter().map(|s| f64::from(s.scores[k])).sum::<f64>() / n)
        .collect();
    let labelled = samples.first().is_some_and(|s| !s.right.is_empty());
    let accuracy = labelled.then(|| {
        (0..len)
            .map(|k| samples.iter().filter(|s| s.right[k]).count() as f64 / n)
            .collect()
    });
    MethodReport {
        method: method.to_string(),
        aopc,
        se,
        curve,
        curve_se: super::plot::curve_se(&curves),
        scores,
        accuracy,
        samples,
    }
}

/// The heatmaps of a method as `lrpc evaluate --methods` names them: `random`, `sensitivity`
/// (the squared gradient) or any method name; `method(base)` makes a method with the user's
/// parameters. Unless `bounds_given`, epsilon-gamma-box's z-box bounds are the data's
/// `range` (float data), not -3..3.
pub fn heatmaps(
    name: &str,
    model: &Model,
    options: crate::ExplainOptions,
    range: Option<(f32, f32)>,
    bounds_given: (bool, bool),
    method: impl Fn(&str) -> Result<crate::relevance::Method>,
) -> Result<Heatmaps> {
    if name == "random" {
        return Ok(Heatmaps::Random);
    }
    let (base, square) = if name == "sensitivity" {
        ("gradient", true)
    } else {
        (name, false)
    };
    let mut m = method(base)?;
    if let (Some((lo, hi)), "epsilon-gamma-box") = (range, base) {
        if !bounds_given.0 {
            m.params.low = crate::relevance::Bound::Scalar(lo);
        }
        if !bounds_given.1 {
            m.params.high = crate::relevance::Bound::Scalar(hi);
        }
    }
    let explainer = Explainer::with_options(model, m, options).map_err(|e| Error::Input {
        what: name.to_string(),
        reason: e.to_string(),
    })?;
    Ok(Heatmaps::Explained {
        explainer: Box::new(explainer),
        square,
    })
}

/// The study's result.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Report {
    /// Samples evaluated.
    pub n: usize,
    pub steps: usize,
    pub patch: usize,
    pub methods: Vec<MethodReport>,
    /// The evaluated samples' indices in the data (all, or the correctly classified).
    pub kept: Vec<usize>,
}

/// Input values per batched forward run of perturbed inputs (64 MB of float32).
const CURVE_BATCH_VALUES: usize = 1 << 24;

fn bad(reason: String) -> Error {
    Error::Input {
        what: "evaluate".into(),
        reason,
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

/// Rows of samples through a forward pass in batches of its model's size.
struct Runner<'a> {
    model: &'a Model,
    forward: Forward,
    batch: usize,
    sample: Vec<usize>,
}

/// Values of `rows` samples, floats or token ids.
enum Rows {
    Floats(Vec<f32>),
    Ids(Vec<i64>),
}

impl Runner<'_> {
    fn logits(&self, rows: &Rows) -> Result<Vec<f32>> {
        let per: usize = self.sample.iter().product::<usize>().max(1);
        let n = match rows {
            Rows::Floats(v) => v.len() / per,
            Rows::Ids(v) => v.len() / per,
        };
        let mut out = Vec::new();
        for start in (0..n).step_by(self.batch) {
            let count = self.batch.min(n - start);
            let mut shape = vec![self.batch];
            shape.extend(&self.sample);
            let x = match rows {
                Rows::Floats(v) => {
                    let mut c = v[start * per..(start + count) * per].to_vec();
                    c.resize(self.batch * per, 0.0);
                    Tensor::from_f32(shape, c).map_err(|e| bad(e.0))?
                }
                Rows::Ids(v) => {
                    let mut c = v[start * per..(start + count) * per].to_vec();
                    c.resize(self.batch * per, 0);
                    Tensor::from_i64(shape, c).map_err(|e| bad(e.0))?
                }
            };
            let outs = self.model.run_forward(&self.forward, x)?;
            let l = outs
                .first()
                .ok_or_else(|| bad("the model has no output".into()))?
                .f32s()
                .map_err(|e| bad(e.0))?;
            let classes = l.len() / self.batch;
            out.extend_from_slice(&l[..count * classes]);
        }
        Ok(out)
    }
}

fn sample_rows(data: &Data, ks: &[usize]) -> Result<Rows> {
    Ok(if data.tokens() {
        let mut v = Vec::new();
        for &k in ks {
            v.extend(data.ids(k)?);
        }
        Rows::Ids(v)
    } else {
        let mut v = Vec::new();
        for &k in ks {
            v.extend(data.floats(k)?);
        }
        Rows::Floats(v)
    })
}

/// Runs the study of `methods` (name, heatmaps) on `data` with `model` (whose batch is the
/// explainers' batch). `progress(method, samples just done, total)` is called as samples
/// finish; the total counts every method's evaluated samples.
pub fn run(
    model: &Model,
    (engine, threads): (Engine, usize),
    data: &Data,
    labels: Option<&[i64]>,
    methods: &[(String, Heatmaps)],
    p: &Protocol,
    progress: &mut dyn FnMut(&str, u64, u64),
) -> Result<Report> {
    let n = data.len();
    let sample = data.sample_shape();
    let tokens = data.tokens();
    let per: usize = sample.iter().product();
    let model_batch = model.input_shape().first().copied().unwrap_or(1).max(1);
    if let Some(l) = labels
        && l.len() != n
    {
        return Err(bad(format!("{} labels for {n} samples", l.len())));
    }
    if let Some(ids) = &p.ids
        && ids.len() != n
    {
        return Err(bad(format!("{} sample ids for {n} samples", ids.len())));
    }
    let id = |k: usize| -> u64 { p.ids.as_ref().map_or(k as u64, |v| v[k]) };
    let runner = Runner {
        model,
        forward: model.forward(engine, threads)?,
        batch: model_batch,
        sample: sample.clone(),
    };
    // Unperturbed predictions, streamed in the model's batches.
    let mut base = Vec::new();
    let all: Vec<usize> = (0..n).collect();
    for ks in all.chunks(model_batch) {
        base.extend(runner.logits(&sample_rows(data, ks)?)?);
    }
    let classes = base.len() / n.max(1);
    let predicted: Vec<usize> = base.chunks(classes.max(1)).map(argmax).collect();
    if let Some(l) = labels
        && let Some(k) = l.iter().position(|&v| v < 0 || v as usize >= classes)
    {
        return Err(bad(format!(
            "labels: sample {k} has label {} outside the model's {classes} classes",
            l[k]
        )));
    }
    let targets: Vec<usize> = match (p.target_label, labels) {
        (false, _) => predicted.clone(),
        (true, Some(l)) => l.iter().map(|&v| v as usize).collect(),
        (true, None) => return Err(bad("--target label needs --labels".into())),
    };
    let correct: Vec<bool> = match labels {
        Some(l) => (0..n).map(|k| predicted[k] as i64 == l[k]).collect(),
        None => vec![true; n],
    };
    if p.correct_only && labels.is_none() {
        return Err(bad("--correct-only needs --labels".into()));
    }
    let keep: Vec<usize> = (0..n).filter(|&k| !p.correct_only || correct[k]).collect();
    if keep.is_empty() {
        return Err(bad("no sample is classified correctly".into()));
    }
    // Regions (token ids: every non-padding word), steps.
    let grid = Regions::new(&sample, p.patch)?;
    let regions_of = |k: usize| -> Regions {
        match data.ids(k) {
            Ok(row) if tokens => grid.clone().without(|q| row[q] == p.pad_id),
            _ => grid.clone(),
        }
    };
    let fewest = keep.iter().map(|&k| regions_of(k).len()).min().unwrap_or(0);
    let steps = p
        .steps
        .unwrap_or(if tokens { fewest } else { 100.min(fewest) });
    if let Some(&k) = keep.iter().find(|&&k| regions_of(k).len() < steps) {
        return Err(bad(format!(
            "--steps {steps} is beyond the {} regions of sample {k} (patch {} on {sample:?})",
            regions_of(k).len(),
            p.patch
        )));
    }
    // What replaces a region, made per sample when needed.
    let fill = match (tokens, p.perturb) {
        (false, Perturb::Uniform) => {
            let (lo, hi) = match p.range {
                Some(r) => r,
                None => data.range()?,
            };
            (Some((f64::from(lo), f64::from(hi))), Vec::new())
        }
        (false, Perturb::Mean) => {
            let means = match &p.means {
                Some(m) => m.clone(),
                None => data.channel_means()?,
            };
            let plane = per / means.len().max(1);
            (None, (0..per).map(|i| means[i / plane] as f32).collect())
        }
        (false, Perturb::Zero) => (None, vec![0.0; per]),
        (false, Perturb::Id(_)) => {
            return Err(bad(
                "--perturb delete/unk is for token ids; float data takes uniform, mean or zero"
                    .into(),
            ));
        }
        (true, Perturb::Id(_)) => (None, Vec::new()),
        (true, _) => return Err(bad("token ids take --perturb delete or unk".into())),
    };
    let fill_of = |k: usize| -> Vec<f32> {
        match fill.0 {
            Some((lo, hi)) => (0..per)
                .map(|i| {
                    let draw = rng::uniform(p.seed, id(k) * per as u64 + i as u64);
                    (lo + (hi - lo) * draw) as f32
                })
                .collect(),
            None => fill.1.clone(),
        }
    };
    let fill_id = match p.perturb {
        Perturb::Id(id) => id,
        _ => p.pad_id,
    };
    let positions = grid.positions();
    // The perturbed inputs run in batches of a chunk's whole curves (L + 1 rows per sample),
    // capped at CURVE_BATCH_VALUES values; a fixed-batch model runs at its own batch.
    let chunk_samples = model_batch;
    let chunk_rows = chunk_samples * (steps + 1);
    let curve_batch = chunk_rows.min((CURVE_BATCH_VALUES / per.max(1)).max(1));
    let bigger = if curve_batch > model_batch {
        model.with_batch(curve_batch)?
    } else {
        None
    };
    let curve_model = bigger.as_ref().unwrap_or(model);
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
    let mut reports = Vec::with_capacity(methods.len());
    for (name, h) in methods {
        let mut samples = Vec::with_capacity(keep.len());
        for chunk in keep.chunks(chunk_samples) {
            let maps: Vec<Vec<f32>> = match h {
                Heatmaps::Random => chunk
                    .iter()
                    .map(|&k| {
                        (0..positions)
                            .map(|q| {
                                rng::uniform(
                                    p.seed.wrapping_add(1),
                                    id(k) * positions as u64 + q as u64,
                                ) as f32
                            })
                            .collect()
                    })
                    .collect(),
                Heatmaps::Explained { explainer, square } => {
                    let x = match sample_rows(data, chunk)? {
                        Rows::Floats(mut v) => {
                            v.resize(model_batch * per, 0.0);
                            let mut s = vec![model_batch];
                            s.extend(&sample);
                            Tensor::from_f32(s, v).map_err(|e| bad(e.0))?
                        }
                        Rows::Ids(mut v) => {
                            v.resize(model_batch * per, 0);
                            let mut s = vec![model_batch];
                            s.extend(&sample);
                            Tensor::from_i64(s, v).map_err(|e| bad(e.0))?
                        }
                    };
                    let t: Vec<Option<usize>> = chunk
                        .iter()
                        .map(|&k| Some(targets[k]))
                        .chain(std::iter::repeat(None))
                        .take(model_batch)
                        .collect();
                    let e = explainer.explain_for(x, &t)?;
                    let r = e.relevance.f32s().map_err(|e| bad(e.0))?;
                    let each = r.len() / model_batch;
                    (0..chunk.len())
                        .map(|b| {
                            let mut v = r[b * each..(b + 1) * each].to_vec();
                            if *square {
                                v.iter_mut().for_each(|x| *x *= *x);
                            }
                            pert::position_relevance(&v, positions, tokens)
                        })
                        .collect()
                }
            };
            let mut rows = if tokens {
                Rows::Ids(Vec::new())
            } else {
                Rows::Floats(Vec::new())
            };
            for (&k, map) in chunk.iter().zip(&maps) {
                let regions = regions_of(k);
                let order = match p.order {
                    Some(o) => o,
                    None if correct[k] => Order::Morf,
                    None => Order::Lerf,
                };
                let o = regions.order(&regions.scores(map), order);
                match &mut rows {
                    Rows::Ids(v) => {
                        let fill = vec![fill_id; per];
                        v.extend(pert::curve_inputs(
                            &data.ids(k)?,
                            &fill,
                            &regions,
                            &o,
                            steps,
                        ));
                    }
                    Rows::Floats(v) => {
                        v.extend(pert::curve_inputs(
                            &data.floats(k)?,
                            &fill_of(k),
                            &regions,
                            &o,
                            steps,
                        ));
                    }
                }
            }
            let logits = curve_runner.logits(&rows)?;
            for (j, &k) in chunk.iter().enumerate() {
                let rows = &logits[j * (steps + 1) * classes..(j + 1) * (steps + 1) * classes];
                let f = pert::scores(rows, classes, targets[k], p.probability);
                let right = match labels {
                    Some(l) => rows
                        .chunks(classes)
                        .map(|row| argmax(row) as i64 == l[k])
                        .collect(),
                    None => Vec::new(),
                };
                samples.push(SampleCurve {
                    drop: f.iter().map(|&fk| f[0] - fk).collect(),
                    scores: f,
                    right,
                });
            }
            progress(
                name,
                chunk.len() as u64,
                (keep.len() * methods.len()) as u64,
            );
        }
        reports.push(summarise(name, samples));
    }
    Ok(Report {
        n: keep.len(),
        steps,
        patch: p.patch,
        methods: reports,
        kept: keep,
    })
}
