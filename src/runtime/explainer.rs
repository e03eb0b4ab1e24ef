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
use crate::ir::{DType, Tensor, numel};

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

/// One input of the model: its name, element type (integers and bools are `I64`) and static
/// shape (batch included).
#[derive(Clone, Debug, PartialEq)]
pub struct InputSpec {
    pub name: String,
    pub dtype: DType,
    pub shape: Vec<usize>,
    /// The largest value an integer input may hold, and why ([`crate::ir::Graph::input_limits`]).
    pub limit: Option<(i64, String)>,
}

/// Integer inputs travel through compiled code as f32, exact below this magnitude.
pub const MAX_EXACT_INT: i64 = 1 << 24;

/// What an explainer takes and gives, independent of how it runs.
#[derive(Clone, Debug, PartialEq)]
pub struct Spec {
    /// The model it explains (for error messages).
    pub source: String,
    /// The model's inputs, in its order (the program's input ports, before the seed).
    pub inputs: Vec<InputSpec>,
    /// Which input is explained; the others are data the relevance treats as constants.
    pub explained: usize,
    /// The explained logits' shape (batch included).
    pub logits_shape: Vec<usize>,
    /// The relevance's shape (batch included): the explained input's, or for token ids the
    /// embedding vectors' (batch, tokens, dim).
    pub relevance_shape: Vec<usize>,
    /// Rows of the embedding table the token ids index (0 unless the input is token ids): a
    /// vocabulary for the words must have at least this many entries.
    pub embedding_rows: usize,
    /// The model's own outputs, readable after the forward phase (ports 2.. of the program).
    pub outputs: Vec<String>,
    /// The method's name.
    pub method: String,
    pub sampling: Sampling,
    /// Layers the program reports totals of (empty when built without the report).
    pub layers: Vec<Layer>,
}

impl Spec {
    /// The explained input.
    pub fn input(&self) -> &InputSpec {
        &self.inputs[self.explained]
    }

    /// Whether axis 0 of the explained input and of the logits is one batch of samples (the
    /// usual case). A model whose output's first axis is another (a bare recurrent op: X
    /// [seq, batch, in] and Y_h [directions, batch, hidden]) is explained as one sample.
    pub fn batched(&self) -> bool {
        self.logits_shape.first() == self.input().shape.first()
    }

    /// Logits per sample.
    pub fn classes(&self) -> usize {
        numel(&self.logits_shape) / self.batch().max(1)
    }

    /// Explained-input values per sample.
    pub fn input_len(&self) -> usize {
        numel(&self.input().shape) / self.batch().max(1)
    }

    /// Relevance values per sample.
    pub fn relevance_len(&self) -> usize {
        numel(&self.relevance_shape) / self.batch().max(1)
    }

    /// The relevance's shape for `batch` samples.
    pub fn relevance_shape_for(&self, batch: usize) -> Vec<usize> {
        let mut shape = self.relevance_shape.clone();
        if self.batched()
            && let Some(b) = shape.first_mut()
        {
            *b = batch;
        }
        shape
    }

    /// Whether relevance stops at embedding vectors rather than at the explained input.
    pub fn relevance_at_embedding(&self) -> bool {
        self.relevance_shape != self.input().shape
    }

    /// The batch size the explainer was built for (1 when not [`Spec::batched`]).
    pub fn batch(&self) -> usize {
        if self.batched() {
            self.input().shape.first().copied().unwrap_or(1)
        } else {
            1
        }
    }

    /// Checks data for the explained input (see [`check_input`]).
    /// Token ids (relevance stopping at an embedding) must also be non-negative: ONNX's Gather
    /// would count a negative id from the table's end, which no tokenizer means.
    pub fn check_input(&self, input: Tensor, what: &str) -> Result<Tensor> {
        let input = check_input(self.input(), &self.source, input, what)?;
        if self.relevance_at_embedding()
            && let Ok(ids) = input.i64s()
            && let Some(i) = ids.iter().position(|&v| v < 0)
        {
            return Err(Error::Input {
                what: what.into(),
                reason: format!(
                    "holds the token id {} at flat index {i}; token ids of {} must be non-negative",
                    ids[i], self.source
                ),
            });
        }
        Ok(input)
    }

    /// Checks the explained input `x` and the data given for every other input, by name;
    /// returns all of them in the model's input order.
    pub fn check_feeds(&self, x: Tensor, others: &[(&str, Tensor)]) -> Result<Vec<Tensor>> {
        let mut feeds = Vec::with_capacity(self.inputs.len());
        for (k, spec) in self.inputs.iter().enumerate() {
            if k == self.explained {
                feeds.push(self.check_input(x.clone(), "input")?);
                continue;
            }
            let Some((_, t)) = others.iter().find(|(n, _)| *n == spec.name) else {
                return Err(Error::Input {
                    what: format!("input '{}'", spec.name),
                    reason: format!(
                        "{} also takes '{}' ({} {:?}); give its data (--input {}=FILE)",
                        self.source, spec.name, spec.dtype, spec.shape, spec.name
                    ),
                });
            };
            feeds.push(check_input(
                spec,
                &self.source,
                t.clone(),
                &format!("input '{}'", spec.name),
            )?);
        }
        if let Some((name, _)) = others
            .iter()
            .find(|(n, _)| !self.inputs.iter().any(|i| i.name == *n) || *n == self.input().name)
        {
            return Err(Error::Input {
                what: format!("input '{name}'"),
                reason: format!(
                    "{} has no other input of that name (its inputs: {})",
                    self.source,
                    self.inputs
                        .iter()
                        .map(|i| i.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
        Ok(feeds)
    }
}

/// Checks `input` against a model input: the exact shape, or the shape without its leading
/// batch axis of 1 (which is then added); the element type (float data for a float input,
/// integer data for an integer one, within what compiled code carries exactly); every value
/// finite. `what` names the data in errors.
pub fn check_input(spec: &InputSpec, source: &str, input: Tensor, what: &str) -> Result<Tensor> {
    let want = spec.shape.as_slice();
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
    match (spec.dtype, input.dtype()) {
        (DType::F32, DType::F32) => {
            let values = input.f32s().map_err(|e| err(e.0))?;
            if let Some(i) = values.iter().position(|v| !v.is_finite()) {
                return Err(err(format!(
                    "holds a non-finite value ({}) at flat index {i}",
                    values[i]
                )));
            }
        }
        (DType::I64, DType::I64) => {
            let values = input.i64s().map_err(|e| err(e.0))?;
            if let Some(i) = values.iter().position(|v| v.abs() >= MAX_EXACT_INT) {
                return Err(err(format!(
                    "holds {} at flat index {i}; integer inputs must lie within +-2^24",
                    values[i]
                )));
            }
            if let Some((max, why)) = &spec.limit
                && let Some(i) = values.iter().position(|v| v > max)
            {
                return Err(err(format!(
                    "holds {} at flat index {i}, more than {max} ({why})",
                    values[i]
                )));
            }
        }
        (want, got) => {
            return Err(err(format!(
                "holds {got} values, but input '{}' of {source} takes {want} (integers for ids and masks, floats otherwise)",
                spec.name
            )));
        }
    }
    Ok(input)
}

/// One evaluation of a two-phase program (the inputs written, then the seed).
pub trait Phases {
    /// Writes every model input (in the model's order) and runs everything that does not need
    /// the seed.
    fn forward(&mut self, inputs: &[Tensor]) -> Result<()>;
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

/// Explains the model inputs `feeds` (checked against the spec, in the model's order) for
/// `target`, or for the class `fixed` gives a sample (`Some`) where it gives one.
pub fn explain(
    e: &dyn Evaluator,
    spec: &Spec,
    feeds: &[Tensor],
    target: Target,
    fixed: &[Option<usize>],
) -> Result<Explanation> {
    let x = explained(spec, feeds)?;
    match spec.sampling {
        Sampling::SmoothGrad {
            samples,
            noise_level,
        } => {
            let noise = smoothgrad_noise(x, samples, noise_level, DEFAULT_NOISE_SEED)?;
            explain_smoothgrad(e, spec, feeds, target, fixed, &noise)
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
            average(e, spec, feeds, target, fixed, &points, Some(values))
        }
        Sampling::Once => once(e, spec, feeds, target, fixed, false),
    }
}

/// The explained input among the feeds.
fn explained<'f>(spec: &Spec, feeds: &'f [Tensor]) -> Result<&'f Tensor> {
    feeds.get(spec.explained).ok_or_else(|| {
        input_error(
            "input",
            format!("{} inputs given for {}", feeds.len(), spec.inputs.len()),
        )
    })
}

/// SmoothGrad with the given noise (`[samples] + input shape`): the mean of the gradients at
/// `input + noise[k]`, the target fixed by the noise-free input.
pub fn explain_smoothgrad(
    e: &dyn Evaluator,
    spec: &Spec,
    feeds: &[Tensor],
    target: Target,
    fixed: &[Option<usize>],
    noise: &Tensor,
) -> Result<Explanation> {
    let x = explained(spec, feeds)?;
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
    average(e, spec, feeds, target, fixed, &points, None)
}

fn f32s<'t>(t: &'t Tensor, what: &str) -> Result<&'t [f32]> {
    t.f32s().map_err(|e| input_error(what, e.0))
}

/// Averages the attribution over `points` (each the input's length), optionally multiplied by
/// `times`; logits and targets are those of `x`.
fn average(
    e: &dyn Evaluator,
    spec: &Spec,
    feeds: &[Tensor],
    target: Target,
    fixed: &[Option<usize>],
    points: &[Vec<f32>],
    times: Option<&[f32]>,
) -> Result<Explanation> {
    let x = explained(spec, feeds)?;
    let mut base = once(e, spec, feeds, target, fixed, false)?;
    // The feeds with the explained input replaced by `values` (and every other input repeated
    // `times` along the batch axis, for the batched program).
    let with = |values: Vec<f32>, times: usize| -> Result<Vec<Tensor>> {
        feeds
            .iter()
            .enumerate()
            .map(|(k, t)| {
                let mut shape = t.shape().to_vec();
                if let Some(b) = shape.first_mut() {
                    *b *= times;
                }
                if k == spec.explained {
                    return Tensor::from_f32(shape, values.clone());
                }
                t.repeat_outer(times)
            })
            .collect::<Result<_, _>>()
            .map_err(|e| input_error("input", e.0))
    };
    let mut sum = vec![0f32; x.len()];
    let mut add = |r: &[f32]| {
        for (s, v) in sum.iter_mut().zip(r) {
            *s += v / points.len() as f32;
        }
    };
    if e.batched() {
        let stacked = with(points.iter().flatten().copied().collect(), points.len())?;
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
            let point = with(p.clone(), 1)?;
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
    feeds: &[Tensor],
    target: Target,
    fixed: &[Option<usize>],
    batched: bool,
) -> Result<Explanation> {
    let x = explained(spec, feeds)?;
    let mut run = e.start(batched)?;
    run.forward(feeds)?;
    let lv = run.logits()?;
    let batch = if spec.batched() {
        x.shape().first().copied().unwrap_or(1).max(1)
    } else {
        1
    };
    let per = lv.len() / batch;
    let mut logits_shape = spec.logits_shape.clone();
    if spec.batched()
        && let Some(b) = logits_shape.first_mut()
    {
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
    let relevance = Tensor::from_f32(spec.relevance_shape_for(batch), run.relevance()?)
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

/// Port numbers of an explain program: inputs (the model's, in its order, then the seed),
/// outputs (logits, relevance, then the model's own outputs).
pub mod ports {
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

/// A compiled evaluation; the seed's port follows the model's inputs.
struct CompiledRun<'e> {
    session: Session<'e>,
    seed: usize,
}

impl Phases for CompiledRun<'_> {
    fn forward(&mut self, inputs: &[Tensor]) -> Result<()> {
        for (port, t) in inputs.iter().enumerate() {
            self.session.write_tensor(port, t)?;
        }
        self.session.run_first()
    }
    fn logits(&self) -> Result<Vec<f32>> {
        Ok(self.session.output(ports::LOGITS)?.to_vec())
    }
    fn backward(&mut self, seed: &[f32]) -> Result<()> {
        self.session.write(self.seed, seed)?;
        self.session.run_second()
    }
    fn relevance(&self) -> Result<Vec<f32>> {
        Ok(self.session.output(ports::RELEVANCE)?.to_vec())
    }
    fn total(&self, k: usize) -> Option<f32> {
        self.session.total(k)
    }
}

impl Evaluator for Compiled {
    fn start(&self, batched: bool) -> Result<Box<dyn Phases + '_>> {
        let exe = match (&self.batched, batched) {
            (Some(b), true) => b,
            _ => &self.main,
        };
        let seed = exe.program().inputs.len().saturating_sub(1);
        Ok(Box::new(CompiledRun {
            session: exe.session()?,
            seed,
        }))
    }

    fn batched(&self) -> bool {
        self.batched.is_some()
    }
}

impl Compiled {
    /// Runs the forward phase only on the model inputs `feeds` (in its order) and returns the
    /// model's own outputs.
    pub fn run(&self, spec: &Spec, feeds: &[Tensor]) -> Result<Vec<Tensor>> {
        let mut s = self.main.session()?;
        for (port, t) in feeds.iter().enumerate() {
            s.write_tensor(port, t)?;
        }
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
