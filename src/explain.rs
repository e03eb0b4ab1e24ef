//! The explainer: a model and a method compiled into one forward + relevance graph, run on inputs.

use std::collections::HashMap;
use std::sync::Arc;

use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

use crate::codegen::{self, Executable, Request};
use crate::error::{Error, Result};
use crate::interp;
use crate::ir::{NodeIndex, Tensor};
use crate::model::{Engine, Model};
use crate::relevance::{self, GradientMethod, Method, MethodKind, Relevance};

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
    /// logit); empty unless `ExplainOptions::layers` asked for it.
    pub layers: Vec<LayerRelevance>,
}

/// How an explainer is built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExplainOptions {
    pub engine: Engine,
    /// Worker threads of compiled code.
    pub threads: usize,
    /// Compile with guard pages around every buffer (the bounds check; slow, for tests).
    pub guard: Option<codegen::GuardSide>,
    /// Time every compiled step (`Explainer::executable().profile()`).
    pub profile: bool,
    /// Report the relevance arriving at every layer (`Explanation::layers`, the conservation
    /// check); off by default, since summing every layer's relevance costs a pass over it.
    pub layers: bool,
}

impl Default for ExplainOptions {
    fn default() -> ExplainOptions {
        ExplainOptions {
            engine: Engine::Compiled,
            threads: codegen::default_threads(),
            guard: None,
            profile: false,
            layers: false,
        }
    }
}

/// A model prepared to explain with one method.
#[derive(Clone, Debug)]
pub struct Explainer {
    model: Model,
    method: Method,
    options: ExplainOptions,
    joint: Joint,
    /// For SmoothGrad and integrated gradients: the joint graph at batch samples x batch, so all
    /// samples run as one batch (`None` when the model's batch axis is fixed: they then run one
    /// after another).
    batched: Option<Joint>,
}

/// A joint graph and, with the compiled engine, its executable.
#[derive(Clone, Debug)]
struct Joint {
    relevance: Relevance,
    compiled: Option<Arc<Executable>>,
}

impl Joint {
    fn new(relevance: Relevance, options: &ExplainOptions) -> Result<Joint> {
        let compiled = match options.engine {
            Engine::Interpreter => None,
            Engine::Compiled => {
                let r = &relevance;
                let totals: Vec<NodeIndex> = if options.layers {
                    r.layers.iter().map(|l| l.relevance).collect()
                } else {
                    Vec::new()
                };
                let request = Request {
                    outputs: &[r.logits, r.relevance],
                    totals: &totals,
                    late: &[r.seed],
                    threads: options.threads,
                };
                let exe_options = codegen::Options {
                    threads: options.threads,
                    guard: options.guard,
                    profile: options.profile,
                };
                Some(Arc::new(Executable::compile(
                    &r.graph,
                    &request,
                    exe_options,
                )?))
            }
        };
        Ok(Joint {
            relevance,
            compiled,
        })
    }
}

/// Seed of the noise SmoothGrad adds when none is given.
pub const DEFAULT_NOISE_SEED: u64 = 0;

impl Explainer {
    /// Builds the joint graph of `model` and `method` and compiles it.
    pub fn new(model: &Model, method: Method) -> Result<Explainer> {
        Explainer::with_options(model, method, ExplainOptions::default())
    }

    /// Builds the joint graph and prepares it for the engine `options` name.
    pub fn with_options(
        model: &Model,
        method: Method,
        options: ExplainOptions,
    ) -> Result<Explainer> {
        let joint = Joint::new(relevance::build(model.graph(), &method)?, &options)?;
        let samples = match method.kind {
            MethodKind::Gradient(GradientMethod::SmoothGrad { samples, .. }) => samples,
            MethodKind::Gradient(GradientMethod::IntegratedGradients { steps }) => steps,
            _ => 1,
        };
        let batch = model.input_shape().first().copied().unwrap_or(1);
        let batched = if samples > 1 {
            match model.with_batch(samples * batch)? {
                Some(m) => Some(Joint::new(relevance::build(m.graph(), &method)?, &options)?),
                None => None,
            }
        } else {
            None
        };
        Ok(Explainer {
            model: model.clone(),
            method,
            options,
            joint,
            batched,
        })
    }

    pub fn method(&self) -> &Method {
        &self.method
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    /// Whether SmoothGrad / integrated-gradients samples run as one batch (the model's batch axis
    /// is symbolic) rather than one after another.
    pub fn runs_samples_as_one_batch(&self) -> bool {
        self.batched.is_some()
    }

    /// The joint forward + relevance graph.
    pub fn relevance(&self) -> &Relevance {
        &self.joint.relevance
    }

    /// The executable of the joint graph (`None` with the interpreter engine).
    pub fn executable(&self) -> Option<&Executable> {
        self.joint.compiled.as_deref()
    }

    pub fn options(&self) -> &ExplainOptions {
        &self.options
    }

    /// Explains `input` (with or without the batch axis) for `target`. SmoothGrad draws its noise
    /// from a generator seeded with [`DEFAULT_NOISE_SEED`], so results are reproducible.
    pub fn explain(&self, input: Tensor, target: Target) -> Result<Explanation> {
        let x = self.model.check_input(input, "input")?;
        match self.method.kind {
            MethodKind::Gradient(GradientMethod::SmoothGrad {
                samples,
                noise_level,
            }) => {
                let noise = smoothgrad_noise(&x, samples, noise_level, DEFAULT_NOISE_SEED)?;
                self.explain_smoothgrad(x, target, &noise)
            }
            MethodKind::Gradient(GradientMethod::IntegratedGradients { steps }) => {
                self.explain_integrated(x, target, steps)
            }
            _ => self.run(&x, target),
        }
    }

    /// SmoothGrad with the given noise (`[samples] + input shape`): the mean of the gradients at
    /// `input + noise[k]`, the target fixed by the noise-free input.
    pub fn explain_smoothgrad(
        &self,
        input: Tensor,
        target: Target,
        noise: &Tensor,
    ) -> Result<Explanation> {
        let x = self.model.check_input(input, "input")?;
        let n = x.len();
        let samples = noise.len() / n.max(1);
        if noise.len() != samples * n || samples == 0 {
            return Err(Error::Input {
                what: "noise".into(),
                reason: format!(
                    "has {} values, not a whole number of inputs of {n}",
                    noise.len()
                ),
            });
        }
        let noise = noise.f32s().map_err(|e| input_error("noise", e.0))?;
        let points = (0..samples)
            .map(|k| {
                let v = x
                    .f32s()?
                    .iter()
                    .zip(&noise[k * n..][..n])
                    .map(|(a, b)| a + b)
                    .collect();
                Tensor::from_f32(x.shape().to_vec(), v)
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| input_error("noise", e.0))?;
        self.average(&x, target, &points, None)
    }

    /// Integrated gradients from the zero baseline: the mean gradient at alpha * input for alpha
    /// in linspace(1/steps, 1, steps), times the input.
    fn explain_integrated(&self, x: Tensor, target: Target, steps: usize) -> Result<Explanation> {
        let steps = steps.max(1);
        let points = (0..steps)
            .map(|k| {
                let alpha = linspace_at(1.0 / steps as f32, 1.0, steps, k);
                let v = x.f32s()?.iter().map(|a| a * alpha).collect();
                Tensor::from_f32(x.shape().to_vec(), v)
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| input_error("input", e.0))?;
        self.average(&x, target, &points, Some(&x))
    }

    /// Averages the attribution over `points`, optionally multiplied by `times`; logits and
    /// targets are those of `x`.
    fn average(
        &self,
        x: &Tensor,
        target: Target,
        points: &[Tensor],
        times: Option<&Tensor>,
    ) -> Result<Explanation> {
        let mut base = self.run(x, target)?;
        let mut sum = vec![0f32; x.len()];
        let mut add = |r: &[f32]| {
            for (s, v) in sum.iter_mut().zip(r) {
                *s += v / points.len() as f32;
            }
        };
        let relevance = |e: &Explanation| -> Result<Vec<f32>> {
            Ok(e.relevance
                .f32s()
                .map_err(|e| input_error("relevance", e.0))?
                .to_vec())
        };
        match &self.batched {
            Some(joint) => {
                let mut stacked = Vec::with_capacity(x.len() * points.len());
                for p in points {
                    stacked.extend_from_slice(p.f32s().map_err(|e| input_error("input", e.0))?);
                }
                let mut shape = x.shape().to_vec();
                shape[0] *= points.len();
                let stacked =
                    Tensor::from_f32(shape, stacked).map_err(|e| input_error("input", e.0))?;
                let targets = base.targets.repeat(points.len());
                let e = self.run_joint(joint, &stacked, Target::Top, &targets)?;
                relevance(&e)?.chunks(x.len()).for_each(&mut add);
            }
            None => {
                for p in points {
                    let e = self.run_joint(&self.joint, p, Target::Top, &base.targets)?;
                    add(&relevance(&e)?);
                }
            }
        }
        if let Some(t) = times {
            let t = t.f32s().map_err(|e| input_error("input", e.0))?;
            sum.iter_mut().zip(t).for_each(|(s, v)| *s *= v);
        }
        base.relevance =
            Tensor::from_f32(x.shape().to_vec(), sum).map_err(|e| input_error("relevance", e.0))?;
        base.layers.clear();
        Ok(base)
    }

    fn run(&self, x: &Tensor, target: Target) -> Result<Explanation> {
        self.run_joint(&self.joint, x, target, &[])
    }

    /// One forward + relevance evaluation; `fixed` targets, when given, override `target`.
    fn run_joint(
        &self,
        joint: &Joint,
        x: &Tensor,
        target: Target,
        fixed: &[usize],
    ) -> Result<Explanation> {
        let j = &joint.relevance;
        let mut engine = match &joint.compiled {
            Some(exe) => Run::Compiled(exe.session()?),
            None => Run::Interpreter(HashMap::new()),
        };
        engine.forward(j, x)?;
        let logits = engine.read(j.logits, "logits")?;
        let batch = logits.shape().first().copied().unwrap_or(1).max(1);
        let per = logits.len() / batch;
        let lv = logits
            .f32s()
            .map_err(|e| input_error("logits", e.0))?
            .to_vec();
        let mut targets = Vec::with_capacity(batch);
        for b in 0..batch {
            let row = &lv[b * per..][..per];
            let t = match (fixed.get(b), target) {
                (Some(&t), _) => t,
                (None, Target::Index(t)) => t,
                (None, Target::Top) => argmax(row),
            };
            if t >= per {
                return Err(Error::Input {
                    what: "target".into(),
                    reason: format!(
                        "{t} is out of range: the model has {per} outputs (0..{})",
                        per - 1
                    ),
                });
            }
            targets.push(t);
        }
        let mut seed = vec![0f32; logits.len()];
        for (b, &t) in targets.iter().enumerate() {
            seed[b * per + t] = 1.0;
        }
        let seed = Tensor::from_f32(logits.shape().to_vec(), seed)
            .map_err(|e| input_error("seed", e.0))?;
        engine.backward(j, &seed)?;
        let relevance = engine.read(j.relevance, "relevance")?;
        let traced = if self.options.layers {
            &j.layers[..]
        } else {
            &[]
        };
        let layers = traced
            .iter()
            .map(|l| LayerRelevance {
                name: l.name.clone(),
                op: l.op.clone(),
                rule: l.rule.clone(),
                relevance_sum: engine.total(l.relevance).unwrap_or(f32::NAN),
            })
            .collect();
        let target_logits = targets
            .iter()
            .enumerate()
            .map(|(b, &t)| lv[b * per + t])
            .collect();
        Ok(Explanation {
            logits,
            targets,
            target_logits,
            relevance,
            layers,
        })
    }
}

/// One explanation's evaluation state on either engine.
enum Run<'e> {
    Compiled(codegen::Session<'e>),
    Interpreter(HashMap<NodeIndex, Arc<Tensor>>),
}

impl Run<'_> {
    fn forward(&mut self, j: &Relevance, x: &Tensor) -> Result<()> {
        match self {
            Run::Compiled(s) => {
                s.write(j.input, x)?;
                s.run_first()
            }
            Run::Interpreter(values) => {
                values.insert(j.input, Arc::new(x.clone()));
                interp::evaluate(&j.graph, values)
            }
        }
    }

    fn backward(&mut self, j: &Relevance, seed: &Tensor) -> Result<()> {
        match self {
            Run::Compiled(s) => {
                s.write(j.seed, seed)?;
                s.run_second()
            }
            Run::Interpreter(values) => {
                values.insert(j.seed, Arc::new(seed.clone()));
                interp::evaluate(&j.graph, values)
            }
        }
    }

    fn read(&self, n: NodeIndex, what: &str) -> Result<Tensor> {
        match self {
            Run::Compiled(s) => s.read(n),
            Run::Interpreter(values) => values
                .get(&n)
                .map(|v| Tensor::clone(v))
                .ok_or_else(|| input_error(what, "not computed".into())),
        }
    }

    fn total(&self, n: NodeIndex) -> Option<f32> {
        match self {
            Run::Compiled(s) => s.total(n),
            Run::Interpreter(values) => values
                .get(&n)
                .and_then(|v| v.f32s().ok().map(|s| s.iter().sum())),
        }
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
    let values = x.f32s().map_err(|e| input_error("input", e.0))?;
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
