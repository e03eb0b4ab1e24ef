//! The explainer: a model and a method compiled into one forward + relevance program, run on
//! inputs. Built from a model (the relevance pass, then lowering and the JIT), or loaded from an
//! artifact (`Explainer::load`: the runtime alone). Either way the same procedure
//! (`runtime::explainer`) picks targets, seeds and averages samples.

use std::collections::HashMap;
use std::sync::Arc;

use crate::codegen::{self, Request};
use crate::error::{Error, Result};
use crate::interp;
use crate::ir::{NodeIndex, Tensor};
use crate::model::{Engine, Model};
use crate::relevance::{self, GradientMethod, Method, MethodKind, Relevance};
use crate::runtime::explainer::{self as procedure, Compiled, Evaluator, Layer, Phases, Spec};
use crate::runtime::{self, Executable, GuardSide};

pub use crate::runtime::explainer::{
    DEFAULT_NOISE_SEED, Explanation, LayerRelevance, Sampling, Target, smoothgrad_noise,
};

/// How an explainer is built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExplainOptions {
    pub engine: Engine,
    /// Worker threads of compiled code.
    pub threads: usize,
    /// Compile with guard pages around every buffer (the bounds check; slow, for tests).
    pub guard: Option<GuardSide>,
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
            threads: runtime::default_threads(),
            guard: None,
            profile: false,
            layers: false,
        }
    }
}

/// The joint graphs of an explainer built from a model.
#[derive(Clone, Debug)]
struct Graphs {
    joint: Relevance,
    /// For SmoothGrad and integrated gradients: the joint graph at batch samples x batch, so all
    /// samples run as one batch (`None` when the model's batch axis is fixed: they then run one
    /// after another).
    batched: Option<Relevance>,
}

/// A model prepared to explain with one method.
#[derive(Clone, Debug)]
pub struct Explainer {
    spec: Spec,
    method: Method,
    options: ExplainOptions,
    /// The model and joint graphs (absent for an explainer loaded from an artifact).
    model: Option<Model>,
    graphs: Option<Graphs>,
    /// The compiled programs (absent with the interpreter engine).
    compiled: Option<Compiled>,
}

/// What an explain program is asked for: logits, relevance, then the model's own outputs.
fn request_outputs(r: &Relevance) -> Vec<NodeIndex> {
    let mut v = vec![r.logits, r.relevance];
    v.extend(r.model_outputs.iter().map(|(_, n)| *n));
    v
}

fn compile_joint(r: &Relevance, options: &ExplainOptions) -> Result<Executable> {
    let totals: Vec<NodeIndex> = if options.layers {
        r.layers.iter().map(|l| l.relevance).collect()
    } else {
        Vec::new()
    };
    let outputs = request_outputs(r);
    let request = Request {
        outputs: &outputs,
        totals: &totals,
        late: &[r.seed],
        threads: options.threads,
    };
    let exe_options = runtime::Options {
        threads: options.threads,
        guard: options.guard,
        profile: options.profile,
    };
    codegen::compile(&r.graph, &request, exe_options)
}

/// How a method samples its evaluations.
pub fn sampling(method: &Method) -> Sampling {
    match method.kind {
        MethodKind::Gradient(GradientMethod::SmoothGrad {
            samples,
            noise_level,
        }) => Sampling::SmoothGrad {
            samples,
            noise_level,
        },
        MethodKind::Gradient(GradientMethod::IntegratedGradients { steps }) => {
            Sampling::Integrated { steps }
        }
        _ => Sampling::Once,
    }
}

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
        let joint = relevance::build(model.graph(), &method)?;
        let sampling = sampling(&method);
        let batch = model.input_shape().first().copied().unwrap_or(1);
        let batched = if sampling.points() > 1 {
            match model.with_batch(sampling.points() * batch)? {
                Some(m) => Some(relevance::build(m.graph(), &method)?),
                None => None,
            }
        } else {
            None
        };
        let g = &joint.graph;
        let spec = Spec {
            source: g.source.clone(),
            input_name: g.node(joint.input).name.clone(),
            input_shape: g.fact(joint.input).shape.clone(),
            logits_shape: g.fact(joint.logits).shape.clone(),
            outputs: joint
                .model_outputs
                .iter()
                .map(|(name, _)| name.clone())
                .collect(),
            method: method.name().to_string(),
            sampling,
            layers: if options.layers {
                joint
                    .layers
                    .iter()
                    .map(|l| Layer {
                        name: l.name.clone(),
                        op: l.op.clone(),
                        rule: l.rule.clone(),
                    })
                    .collect()
            } else {
                Vec::new()
            },
        };
        let compiled = match options.engine {
            Engine::Interpreter => None,
            Engine::Compiled => Some(Compiled {
                main: Arc::new(compile_joint(&joint, &options)?),
                batched: batched
                    .as_ref()
                    .map(|b| compile_joint(b, &options).map(Arc::new))
                    .transpose()?,
            }),
        };
        Ok(Explainer {
            spec,
            method,
            options,
            model: Some(model.clone()),
            graphs: Some(Graphs { joint, batched }),
            compiled,
        })
    }

    /// An explainer from its parts (what the artifact loader assembles).
    pub(crate) fn from_parts(
        spec: Spec,
        method: Method,
        options: ExplainOptions,
        compiled: Compiled,
    ) -> Explainer {
        Explainer {
            spec,
            method,
            options,
            model: None,
            graphs: None,
            compiled: Some(compiled),
        }
    }

    pub fn method(&self) -> &Method {
        &self.method
    }

    /// What the explainer takes and gives (input and logits shapes, method, layers).
    pub fn spec(&self) -> &Spec {
        &self.spec
    }

    /// The model it was built from (`None` when loaded from an artifact).
    pub fn model(&self) -> Option<&Model> {
        self.model.as_ref()
    }

    /// Whether SmoothGrad / integrated-gradients samples run as one batch (the model's batch axis
    /// is symbolic) rather than one after another.
    pub fn runs_samples_as_one_batch(&self) -> bool {
        match (&self.compiled, &self.graphs) {
            (Some(c), _) => c.batched.is_some(),
            (None, Some(g)) => g.batched.is_some(),
            (None, None) => false,
        }
    }

    /// The joint forward + relevance graph (`None` when loaded from an artifact).
    pub fn relevance(&self) -> Option<&Relevance> {
        self.graphs.as_ref().map(|g| &g.joint)
    }

    /// The executable of the joint graph (`None` with the interpreter engine).
    pub fn executable(&self) -> Option<&Executable> {
        self.compiled.as_ref().map(|c| &*c.main)
    }

    /// The executable of the batched joint graph of sample-averaging methods, if any.
    pub fn batched_executable(&self) -> Option<&Executable> {
        self.compiled.as_ref().and_then(|c| c.batched.as_deref())
    }

    pub fn options(&self) -> &ExplainOptions {
        &self.options
    }

    fn evaluator(&self) -> Result<Box<dyn Evaluator + '_>> {
        match (&self.compiled, &self.graphs) {
            (Some(c), _) => Ok(Box::new(c.clone())),
            (None, Some(g)) => Ok(Box::new(Interpreted(g))),
            (None, None) => Err(Error::Graph {
                file: self.spec.source.clone(),
                reason: "the explainer has neither compiled code nor a graph".into(),
            }),
        }
    }

    /// Explains `input` (with or without the batch axis) for `target`. SmoothGrad draws its noise
    /// from a generator seeded with [`DEFAULT_NOISE_SEED`], so results are reproducible.
    pub fn explain(&self, input: Tensor, target: Target) -> Result<Explanation> {
        let x = self.spec.check_input(input, "input")?;
        procedure::explain(&*self.evaluator()?, &self.spec, &x, target)
    }

    /// SmoothGrad with the given noise (`[samples] + input shape`): the mean of the gradients at
    /// `input + noise[k]`, the target fixed by the noise-free input.
    pub fn explain_smoothgrad(
        &self,
        input: Tensor,
        target: Target,
        noise: &Tensor,
    ) -> Result<Explanation> {
        let x = self.spec.check_input(input, "input")?;
        procedure::explain_smoothgrad(&*self.evaluator()?, &self.spec, &x, target, noise)
    }

    /// The model's own outputs (the forward pass only), by the program that explains.
    pub fn run(&self, input: Tensor) -> Result<Vec<Tensor>> {
        let x = self.spec.check_input(input, "input")?;
        match (&self.compiled, &self.model) {
            (Some(c), _) => c.run(&self.spec, &x),
            (None, Some(m)) => m.run_interpreted(x),
            (None, None) => Err(Error::Graph {
                file: self.spec.source.clone(),
                reason: "the explainer has neither compiled code nor a model".into(),
            }),
        }
    }
}

/// The reference interpreter as an evaluator.
struct Interpreted<'g>(&'g Graphs);

struct InterpretedRun<'g> {
    joint: &'g Relevance,
    values: HashMap<NodeIndex, Arc<Tensor>>,
}

impl Evaluator for Interpreted<'_> {
    fn start(&self, batched: bool) -> Result<Box<dyn Phases + '_>> {
        let joint = match (&self.0.batched, batched) {
            (Some(b), true) => b,
            _ => &self.0.joint,
        };
        Ok(Box::new(InterpretedRun {
            joint,
            values: HashMap::new(),
        }))
    }

    fn batched(&self) -> bool {
        self.0.batched.is_some()
    }
}

impl InterpretedRun<'_> {
    fn value(&self, n: NodeIndex, what: &str) -> Result<Vec<f32>> {
        let v = self.values.get(&n).ok_or_else(|| Error::Input {
            what: what.into(),
            reason: "not computed".into(),
        })?;
        Ok(v.f32s()
            .map_err(|e| Error::Input {
                what: what.into(),
                reason: e.0,
            })?
            .to_vec())
    }

    fn set(&mut self, n: NodeIndex, values: &[f32]) -> Result<()> {
        let shape = self.joint.graph.fact(n).shape.clone();
        let t = Tensor::from_f32(shape, values.to_vec()).map_err(|e| Error::Input {
            what: "input".into(),
            reason: e.0,
        })?;
        self.values.insert(n, Arc::new(t));
        interp::evaluate(&self.joint.graph, &mut self.values)
    }
}

impl Phases for InterpretedRun<'_> {
    fn forward(&mut self, x: &[f32]) -> Result<()> {
        self.set(self.joint.input, x)
    }
    fn logits(&self) -> Result<Vec<f32>> {
        self.value(self.joint.logits, "logits")
    }
    fn backward(&mut self, seed: &[f32]) -> Result<()> {
        self.set(self.joint.seed, seed)
    }
    fn relevance(&self) -> Result<Vec<f32>> {
        self.value(self.joint.relevance, "relevance")
    }
    fn total(&self, k: usize) -> Option<f32> {
        let n = self.joint.layers.get(k)?.relevance;
        self.values
            .get(&n)
            .and_then(|v| v.f32s().ok().map(|s| s.iter().sum()))
    }
}
