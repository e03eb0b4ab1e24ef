//! Explaining with a two-phase program: run the forward phase, pick the target from the logits,
//! write the seed, run the relevance phase, read the relevance. SmoothGrad and integrated
//! gradients average over sample points, run as one batch when a batched program exists. The
//! procedure is written once over [`Phases`], so the compiled runtime and the reference
//! interpreter (in the api) explain in exactly the same way.

use std::sync::Arc;

use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

use super::executable::{Executable, Session};
use crate::error::{Error, Result};
use crate::ir::{Tensor, numel};

/// Which output to explain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The largest logit of each sample.
    Top,
    /// A fixed class index (flat index into one sample's logits).
    Index(usize),
}

/// Relevance arriving at one layer's output (the conservation report).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct LayerRelevance {
    pub name: String,
    pub op: String,
    pub rule: String,
    /// Sum over the whole batch.
    pub relevance_sum: f32,
}

/// What one explanation produced.
#[derive(Clone, Debug)]
pub struct Explanation {
    /// The explained values (pre-softmax when the model ends in Softmax), batch included.
    pub logits: Tensor,
    /// The explained class of each sample.
    pub targets: Vec<usize>,
    /// The logit of each sample's target.
    pub target_logits: Vec<f32>,
    /// Relevance (or attribution) at the input, the input's shape.
    pub relevance: Tensor,
    /// Relevance at every layer's output, in forward order (for LRP it should stay near the
    /// logit); empty unless the explainer was built to report it.
    pub layers: Vec<LayerRelevance>,
}

/// How the attribution of one input is made from evaluations of the program.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Sampling {
    /// One evaluation at the input.
    Once,
    /// The mean gradient over `samples` noisy copies (noise sd = `noise_level` * (max - min) of
    /// each sample; the last copy is noise-free, as in Zennit).
    SmoothGrad { samples: usize, noise_level: f32 },
    /// Zero baseline: the mean gradient at alpha * input for alpha in linspace(1/n, 1, n),
    /// times the input.
    Integrated { steps: usize },
}

impl Sampling {
    /// Evaluations per input.
    pub fn points(self) -> usize {
        match self {
            Sampling::Once => 1,
            Sampling::SmoothGrad { samples, .. } => samples,
            Sampling::Integrated { steps } => steps,
        }
    }
}

/// A layer whose relevance the program sums (the order of the program's totals).
#[derive(Clone, Debug, PartialEq)]
pub struct Layer {
    pub name: String,
    pub op: String,
    pub rule: String,
}

/// What an explainer takes and gives, independent of how it runs.
#[derive(Clone, Debug, PartialEq)]
pub struct Spec {
    /// The model it explains (for error messages).
    pub source: String,
    /// The explained input's name and static shape (batch included).
    pub input_name: String,
    pub input_shape: Vec<usize>,
    /// The explained logits' shape (batch included).
    pub logits_shape: Vec<usize>,
    /// The model's own outputs, readable after the forward phase (ports 2.. of the program).
    pub outputs: Vec<String>,
    /// The method's name.
    pub method: String,
    pub sampling: Sampling,
    /// Layers the program reports totals of (empty when built without the report).
    pub layers: Vec<Layer>,
}

impl Spec {
    /// Logits per sample.
    pub fn classes(&self) -> usize {
        let batch = self.logits_shape.first().copied().unwrap_or(1).max(1);
        numel(&self.logits_shape) / batch
    }

    /// Input values per sample.
    pub fn input_len(&self) -> usize {
        let batch = self.input_shape.first().copied().unwrap_or(1).max(1);
        numel(&self.input_shape) / batch
    }

    /// The batch size the explainer was built for.
    pub fn batch(&self) -> usize {
        self.input_shape.first().copied().unwrap_or(1)
    }

    /// Checks data against the input: the exact shape, or the shape without its leading batch
    /// axis of 1 (which is then added); every value finite. `what` names the data in errors.
    pub fn check_input(&self, input: Tensor, what: &str) -> Result<Tensor> {
        check_input(&self.input_shape, &self.source, input, what)
    }
}

/// Checks `input` against a model input of shape `want` (see [`Spec::check_input`]).
pub fn check_input(want: &[usize], source: &str, input: Tensor, what: &str) -> Result<Tensor> {
    let err = |reason: String| Error::Input {
        what: what.into(),
        reason,
    };
    let input = if input.shape() == want {
        input
    } else if want.first() == Some(&1) && input.shape() == &want[1..] {
        input.reshape(want.to_vec()).map_err(|e| err(e.0))?
    } else {
        return Err(err(format!(
            "has shape {:?}, but {source} expects {want:?}",
            input.shape()
        )));
    };
    let values = input.f32s().map_err(|e| err(e.0))?;
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(err(format!(
            "holds a non-finite value ({}) at flat index {i}",
            values[i]
        )));
    }
    Ok(input)
}

/// One evaluation of a two-phase program (the input written, then the seed).
pub trait Phases {
    /// Writes the input and runs everything that does not need the seed.
    fn forward(&mut self, x: &[f32]) -> Result<()>;
    /// The explained logits after `forward`.
    fn logits(&self) -> Result<Vec<f32>>;
    /// Writes the seed and runs the relevance phase.
    fn backward(&mut self, seed: &[f32]) -> Result<()>;
    /// The relevance at the input after `backward`.
    fn relevance(&self) -> Result<Vec<f32>>;
    /// The total of layer `k` after `backward`, if reported.
    fn total(&self, k: usize) -> Option<f32>;
}

/// What makes evaluations: one for the explainer's batch, and optionally one for `points`
/// times that batch (so the sample points of one input run as a single batch).
pub trait Evaluator {
    fn start(&self, batched: bool) -> Result<Box<dyn Phases + '_>>;
    /// Whether a batched evaluation exists.
    fn batched(&self) -> bool;
}

/// Seed of the noise SmoothGrad adds when none is given.
pub const DEFAULT_NOISE_SEED: u64 = 0;

/// Explains `x` (already checked against the spec) for `target`, or for the class `fixed`
/// gives a sample (`Some`) where it gives one.
pub fn explain(
    e: &dyn Evaluator,
    spec: &Spec,
    x: &Tensor,
    target: Target,
    fixed: &[Option<usize>],
) -> Result<Explanation> {
    match spec.sampling {
        Sampling::SmoothGrad {
            samples,
            noise_level,
        } => {
            let noise = smoothgrad_noise(x, samples, noise_level, DEFAULT_NOISE_SEED)?;
            explain_smoothgrad(e, spec, x, target, fixed, &noise)
        }
        Sampling::Integrated { steps } => {
            let steps = steps.max(1);
            let values = f32s(x, "input")?;
            let points = (0..steps)
                .map(|k| {
                    let alpha = linspace_at(1.0 / steps as f32, 1.0, steps, k);
                    values.iter().map(|a| a * alpha).collect()
                })
                .collect::<Vec<Vec<f32>>>();
            average(e, spec, x, target, fixed, &points, Some(values))
        }
        Sampling::Once => once(e, spec, x, target, fixed, false),
    }
}

/// SmoothGrad with the given noise (`[samples] + input shape`): the mean of the gradients at
/// `input + noise[k]`, the target fixed by the noise-free input.
pub fn explain_smoothgrad(
    e: &dyn Evaluator,
    spec: &Spec,
    x: &Tensor,
    target: Target,
    fixed: &[Option<usize>],
    noise: &Tensor,
) -> Result<Explanation> {
    let n = x.len();
    let samples = noise.len() / n.max(1);
    if noise.len() != samples * n || samples == 0 {
        return Err(input_error(
            "noise",
            format!(
                "has {} values, not a whole number of inputs of {n}",
                noise.len()
            ),
        ));
    }
    let noise = f32s(noise, "noise")?;
    let values = f32s(x, "input")?;
    let points: Vec<Vec<f32>> = (0..samples)
        .map(|k| {
            values
                .iter()
                .zip(&noise[k * n..][..n])
                .map(|(a, b)| a + b)
                .collect()
        })
        .collect();
    average(e, spec, x, target, fixed, &points, None)
}

fn f32s<'t>(t: &'t Tensor, what: &str) -> Result<&'t [f32]> {
    t.f32s().map_err(|e| input_error(what, e.0))
}

/// Averages the attribution over `points` (each the input's length), optionally multiplied by
/// `times`; logits and targets are those of `x`.
fn average(
    e: &dyn Evaluator,
    spec: &Spec,
    x: &Tensor,
    target: Target,
    fixed: &[Option<usize>],
    points: &[Vec<f32>],
    times: Option<&[f32]>,
) -> Result<Explanation> {
    let mut base = once(e, spec, x, target, fixed, false)?;
    let mut sum = vec![0f32; x.len()];
    let mut add = |r: &[f32]| {
        for (s, v) in sum.iter_mut().zip(r) {
            *s += v / points.len() as f32;
        }
    };
    if e.batched() {
        let stacked: Vec<f32> = points.iter().flatten().copied().collect();
        let mut shape = x.shape().to_vec();
        if let Some(b) = shape.first_mut() {
            *b *= points.len();
        }
        let stacked = Tensor::from_f32(shape, stacked).map_err(|e| input_error("input", e.0))?;
        let targets: Vec<Option<usize>> = base.targets.iter().map(|&t| Some(t)).collect();
        let r = once(
            e,
            spec,
            &stacked,
            Target::Top,
            &targets.repeat(points.len()),
            true,
        )?;
        f32s(&r.relevance, "relevance")?
            .chunks(x.len())
            .for_each(&mut add);
    } else {
        for p in points {
            let point = Tensor::from_f32(x.shape().to_vec(), p.clone())
                .map_err(|e| input_error("input", e.0))?;
            let targets: Vec<Option<usize>> = base.targets.iter().map(|&t| Some(t)).collect();
            let r = once(e, spec, &point, Target::Top, &targets, false)?;
            add(f32s(&r.relevance, "relevance")?);
        }
    }
    if let Some(t) = times {
        sum.iter_mut().zip(t).for_each(|(s, v)| *s *= v);
    }
    base.relevance =
        Tensor::from_f32(x.shape().to_vec(), sum).map_err(|e| input_error("relevance", e.0))?;
    base.layers.clear();
    Ok(base)
}

/// One forward + relevance evaluation; `fixed` targets, when given, override `target`.
fn once(
    e: &dyn Evaluator,
    spec: &Spec,
    x: &Tensor,
    target: Target,
    fixed: &[Option<usize>],
    batched: bool,
) -> Result<Explanation> {
    let mut run = e.start(batched)?;
    run.forward(f32s(x, "input")?)?;
    let lv = run.logits()?;
    let batch = x.shape().first().copied().unwrap_or(1).max(1);
    let per = lv.len() / batch;
    let mut logits_shape = spec.logits_shape.clone();
    if let Some(b) = logits_shape.first_mut() {
        *b = batch;
    }
    let mut targets = Vec::with_capacity(batch);
    for b in 0..batch {
        let row = &lv[b * per..][..per];
        let t = match (fixed.get(b).copied().flatten(), target) {
            (Some(t), _) => t,
            (None, Target::Index(t)) => t,
            (None, Target::Top) => argmax(row),
        };
        if t >= per {
            return Err(Error::Input {
                what: "target".into(),
                reason: format!(
                    "{t} is out of range: the model has {per} outputs (0..{})",
                    per.saturating_sub(1)
                ),
            });
        }
        targets.push(t);
    }
    let mut seed = vec![0f32; lv.len()];
    for (b, &t) in targets.iter().enumerate() {
        seed[b * per + t] = 1.0;
    }
    run.backward(&seed)?;
    let relevance = Tensor::from_f32(x.shape().to_vec(), run.relevance()?)
        .map_err(|e| input_error("relevance", e.0))?;
    let layers = if batched {
        Vec::new()
    } else {
        spec.layers
            .iter()
            .enumerate()
            .map(|(k, l)| LayerRelevance {
                name: l.name.clone(),
                op: l.op.clone(),
                rule: l.rule.clone(),
                relevance_sum: run.total(k).unwrap_or(f32::NAN),
            })
            .collect()
    };
    let target_logits = targets
        .iter()
        .enumerate()
        .map(|(b, &t)| lv[b * per + t])
        .collect();
    Ok(Explanation {
        logits: Tensor::from_f32(logits_shape, lv).map_err(|e| input_error("logits", e.0))?,
        targets,
        target_logits,
        relevance,
        layers,
    })
}

/// Port numbers of an explain program: inputs (model input, seed), outputs (logits,
/// relevance, then the model's own outputs).
pub mod ports {
    pub const INPUT: usize = 0;
    pub const SEED: usize = 1;
    pub const LOGITS: usize = 0;
    pub const RELEVANCE: usize = 1;
    pub const MODEL_OUTPUTS: usize = 2;
}

/// The compiled evaluator: the explain program, and the batched one for sample points.
#[derive(Clone, Debug)]
pub struct Compiled {
    pub main: Arc<Executable>,
    pub batched: Option<Arc<Executable>>,
}

struct CompiledRun<'e>(Session<'e>);

impl Phases for CompiledRun<'_> {
    fn forward(&mut self, x: &[f32]) -> Result<()> {
        self.0.write(ports::INPUT, x)?;
        self.0.run_first()
    }
    fn logits(&self) -> Result<Vec<f32>> {
        Ok(self.0.output(ports::LOGITS)?.to_vec())
    }
    fn backward(&mut self, seed: &[f32]) -> Result<()> {
        self.0.write(ports::SEED, seed)?;
        self.0.run_second()
    }
    fn relevance(&self) -> Result<Vec<f32>> {
        Ok(self.0.output(ports::RELEVANCE)?.to_vec())
    }
    fn total(&self, k: usize) -> Option<f32> {
        self.0.total(k)
    }
}

impl Evaluator for Compiled {
    fn start(&self, batched: bool) -> Result<Box<dyn Phases + '_>> {
        let exe = match (&self.batched, batched) {
            (Some(b), true) => b,
            _ => &self.main,
        };
        Ok(Box::new(CompiledRun(exe.session()?)))
    }

    fn batched(&self) -> bool {
        self.batched.is_some()
    }
}

impl Compiled {
    /// Runs the forward phase only and returns the model's own outputs.
    pub fn run(&self, spec: &Spec, x: &Tensor) -> Result<Vec<Tensor>> {
        let mut s = self.main.session()?;
        s.write(ports::INPUT, f32s(x, "input")?)?;
        s.run_first()?;
        (0..spec.outputs.len())
            .map(|k| s.read(ports::MODEL_OUTPUTS + k))
            .collect()
    }
}

fn input_error(what: &str, reason: String) -> Error {
    Error::Input {
        what: what.into(),
        reason,
    }
}

fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

/// Element `k` of linspace(start, end, n), computed as torch does for float32.
fn linspace_at(start: f32, end: f32, n: usize, k: usize) -> f32 {
    if n == 1 {
        return start;
    }
    let step = (end - start) / (n - 1) as f32;
    // torch fills the second half from the end to keep it exact there.
    if k < n / 2 {
        start + step * k as f32
    } else {
        end - step * (n - 1 - k) as f32
    }
}

/// SmoothGrad's noise for `x`: `samples` draws of N(0, sd^2) with sd = `level` * (max - min) of
/// each sample; the last draw is zero (Zennit's convention). Shape `[samples] + x.shape`.
pub fn smoothgrad_noise(x: &Tensor, samples: usize, level: f32, seed: u64) -> Result<Tensor> {
    let values = f32s(x, "input")?;
    let batch = x.shape().first().copied().unwrap_or(1).max(1);
    let per = values.len() / batch;
    let sd: Vec<f32> = (0..batch)
        .map(|b| {
            let s = &values[b * per..][..per];
            let (lo, hi) = s
                .iter()
                .fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), &v| {
                    (l.min(v), h.max(v))
                });
            level * (hi - lo)
        })
        .collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut noise = Vec::with_capacity(samples * values.len());
    for k in 0..samples {
        for i in 0..values.len() {
            let z: f32 = StandardNormal.sample(&mut rng);
            noise.push(if k + 1 == samples {
                0.0
            } else {
                z * sd[i / per]
            });
        }
    }
    let mut shape = vec![samples];
    shape.extend_from_slice(x.shape());
    Tensor::from_f32(shape, noise).map_err(|e| input_error("noise", e.0))
}
