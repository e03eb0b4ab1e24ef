//! The explainer: a model and a method compiled into one forward + relevance program, run on
//! inputs. Built from a model (the relevance pass, then lowering and the JIT), or loaded from an
//! artifact (`Explainer::load`: the runtime alone). Either way the same procedure
//! (`runtime::explainer`) picks targets, seeds and averages samples.

use std::collections::HashMap;
use std::sync::Arc;

use std::path::Path;

use crate::codegen::{self, Request};
use crate::error::{Error, Result};
use crate::interp;
use crate::ir::{NodeIndex, Tensor};
use crate::model::{Engine, Model};
use crate::relevance::{self, Bound, GradientMethod, Method, MethodKind, Relevance};
use crate::runtime::artifact::{self, Artifact, CodeSource, MethodInfo, Parts, RuleInfo};
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

/// How an explainer is loaded from an artifact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadOptions {
    /// Worker threads (convolutions are tiled again when this differs from the artifact's).
    pub threads: usize,
    /// Map the stored machine code (default) or compile the kernels again for this CPU.
    pub code: CodeSource,
    /// Time every step (`Explainer::executable().profile()`).
    pub profile: bool,
    /// Refuse an artifact whose arena would take more bytes than this.
    pub max_arena_bytes: usize,
}

impl Default for LoadOptions {
    fn default() -> LoadOptions {
        LoadOptions {
            threads: runtime::default_threads(),
            code: CodeSource::Stored,
            profile: false,
            max_arena_bytes: usize::MAX,
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
    /// Which of the joint graph's layers the program totals (see [`reported`]).
    reported: Vec<usize>,
}

/// The layers whose relevance totals an explanation reports: every layer with
/// `ExplainOptions::layers`, else only the relevance left on recurrent states (always
/// reported: it is what the tokens' relevance does not account for).
fn reported(r: &Relevance, all: bool) -> Vec<usize> {
    (0..r.layers.len())
        .filter(|&k| all || r.layers[k].op == relevance::STATE_OP)
        .collect()
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
    /// Seconds per stage of building it (relevance, lowering, emission, planning).
    stages: Vec<(&'static str, f64)>,
}

/// What an explain program is asked for: logits, relevance, then the model's own outputs.
fn request_outputs(r: &Relevance) -> Vec<NodeIndex> {
    let mut v = vec![r.logits, r.relevance];
    v.extend(r.model_outputs.iter().map(|(_, n)| *n));
    v
}

fn compile_joint(
    r: &Relevance,
    options: &ExplainOptions,
) -> Result<(Executable, codegen::CompileTimes)> {
    let totals: Vec<NodeIndex> = reported(r, options.layers)
        .into_iter()
        .map(|k| r.layers[k].relevance)
        .collect();
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
        ..runtime::Options::default()
    };
    codegen::compile_timed(&r.graph, &request, exe_options)
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
        let start = std::time::Instant::now();
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
            inputs: model.inputs(),
            explained: model.graph().explained,
            logits_shape: g.fact(joint.logits).shape.clone(),
            relevance_shape: g.fact(joint.relevance).shape.clone(),
            // The lookup's table (input 0 of the Gather relevance stops at).
            embedding_rows: if joint.input == g.explained_input() {
                0
            } else {
                g.inputs_of(joint.input)
                    .first()
                    .and_then(|&t| g.fact(t).shape.first().copied())
                    .unwrap_or(0)
            },
            outputs: joint
                .model_outputs
                .iter()
                .map(|(name, _)| name.clone())
                .collect(),
            method: method.name().to_string(),
            sampling,
            layers: reported(&joint, options.layers)
                .into_iter()
                .map(|k| &joint.layers[k])
                .map(|l| Layer {
                    name: l.name.clone(),
                    op: l.op.clone(),
                    rule: l.rule.clone(),
                })
                .collect(),
        };
        let mut stages = vec![("relevance", start.elapsed().as_secs_f64())];
        let compiled = match options.engine {
            Engine::Interpreter => None,
            Engine::Compiled => {
                let mut times = codegen::CompileTimes::default();
                let mut add = |t: codegen::CompileTimes| {
                    times.lowering += t.lowering;
                    times.emission += t.emission;
                    times.planning += t.planning;
                };
                let (main, t) = compile_joint(&joint, &options)?;
                add(t);
                let batched = match &batched {
                    Some(b) => {
                        let (e, t) = compile_joint(b, &options)?;
                        add(t);
                        Some(Arc::new(e))
                    }
                    None => None,
                };
                stages.extend([
                    ("lowering", times.lowering),
                    ("emission", times.emission),
                    ("planning", times.planning),
                ]);
                Some(Compiled {
                    main: Arc::new(main),
                    batched,
                })
            }
        };
        Ok(Explainer {
            spec,
            method,
            options,
            model: Some(model.clone()),
            graphs: Some(Graphs {
                reported: reported(&joint, options.layers),
                joint,
                batched,
            }),
            compiled,
            stages,
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
            stages: Vec::new(),
        }
    }

    /// Seconds per stage of building the explainer from its model: relevance, lowering,
    /// emission, planning (empty for a loaded one).
    pub fn stages(&self) -> &[(&'static str, f64)] {
        &self.stages
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
        self.explain_with(input, &[], target)
    }

    /// Explains `input` for a model with other inputs too: `others` gives their data by name
    /// (they enter the relevance as constants).
    /// Explains one batch with a class per sample (`None`: that sample's arg-max), for inputs
    /// of any element type (token ids included).
    pub fn explain_for(&self, input: Tensor, targets: &[Option<usize>]) -> Result<Explanation> {
        let feeds = self.spec.check_feeds(input, &[])?;
        procedure::explain(
            &*self.evaluator()?,
            &self.spec,
            &feeds,
            Target::Top,
            targets,
        )
    }

    pub fn explain_with(
        &self,
        input: Tensor,
        others: &[(&str, Tensor)],
        target: Target,
    ) -> Result<Explanation> {
        let feeds = self.spec.check_feeds(input, others)?;
        procedure::explain(&*self.evaluator()?, &self.spec, &feeds, target, &[])
    }

    /// Explains `n` samples given as one flat array (`n` times the per-sample input length,
    /// row-major), whatever the explainer's batch: they run in batches of its size, the last
    /// padded with zeros. `targets` is empty (every sample's arg-max) or gives each sample's
    /// class (`None`: its arg-max). The relevance has shape `[n] + sample shape`, the logits
    /// `[n, classes]`.
    pub fn explain_samples(
        &self,
        values: &[f32],
        n: usize,
        targets: &[Option<usize>],
    ) -> Result<Explanation> {
        self.explain_samples_with(values, n, &[], targets)
    }

    /// [`Explainer::explain_samples`] for a model with other inputs: `others` gives each one's
    /// data for all `n` samples (shape `[n] + its sample shape`), by name.
    pub fn explain_samples_with(
        &self,
        values: &[f32],
        n: usize,
        others: &[(&str, Tensor)],
        targets: &[Option<usize>],
    ) -> Result<Explanation> {
        self.explain_rows(Samples::F32(values), n, others, targets)
    }

    /// [`Explainer::explain_samples_with`] for samples of any element type (token ids).
    pub fn explain_rows(
        &self,
        samples: Samples<'_>,
        n: usize,
        others: &[(&str, Tensor)],
        targets: &[Option<usize>],
    ) -> Result<Explanation> {
        let spec = &self.spec;
        if !targets.is_empty() && targets.len() != n {
            return Err(Error::Input {
                what: "targets".into(),
                reason: format!("{} targets for {n} samples", targets.len()),
            });
        }
        let classes = spec.classes();
        let evaluator = self.evaluator()?;
        let mut out = Explanation {
            logits: Tensor::zeros(crate::ir::DType::F32, vec![0]),
            targets: Vec::with_capacity(n),
            target_logits: Vec::with_capacity(n),
            relevance: Tensor::zeros(crate::ir::DType::F32, vec![0]),
            layers: Vec::new(),
        };
        let per_relevance = spec.relevance_len();
        let (mut relevance, mut logits) = (Vec::with_capacity(n * per_relevance), Vec::new());
        self.each_batch(samples, n, others, |start, count, feeds| {
            let fixed: Vec<Option<usize>> = if targets.is_empty() {
                Vec::new()
            } else {
                targets[start..start + count].to_vec()
            };
            let e = procedure::explain(&*evaluator, spec, feeds, Target::Top, &fixed)?;
            relevance.extend_from_slice(
                &e.relevance.f32s().map_err(|e| samples_error(e.0))?[..count * per_relevance],
            );
            logits.extend_from_slice(
                &e.logits.f32s().map_err(|e| samples_error(e.0))?[..count * classes],
            );
            out.targets.extend_from_slice(&e.targets[..count]);
            out.target_logits
                .extend_from_slice(&e.target_logits[..count]);
            Ok(())
        })?;
        out.relevance = Tensor::from_f32(spec.relevance_shape_for(n), relevance)
            .map_err(|e| samples_error(e.0))?;
        out.logits = Tensor::from_f32(vec![n, classes], logits).map_err(|e| samples_error(e.0))?;
        Ok(out)
    }

    /// The explained logits of `n` samples, `[n, classes]`: the explain program's forward
    /// phase alone, in batches of the explainer's size (the last padded with zeros).
    pub fn logits_rows(
        &self,
        samples: Samples<'_>,
        n: usize,
        others: &[(&str, Tensor)],
    ) -> Result<Tensor> {
        let classes = self.spec.classes();
        let evaluator = self.evaluator()?;
        let mut logits = Vec::with_capacity(n * classes);
        self.each_batch(samples, n, others, |_, count, feeds| {
            let mut run = evaluator.start(false)?;
            run.forward(feeds)?;
            logits.extend_from_slice(&run.logits()?[..count * classes]);
            Ok(())
        })?;
        Tensor::from_f32(vec![n, classes], logits).map_err(|e| samples_error(e.0))
    }

    /// Calls `f(start, count, feeds)` for each batch of the `n` samples, the feeds checked and
    /// in the model's input order.
    fn each_batch(
        &self,
        samples: Samples<'_>,
        n: usize,
        others: &[(&str, Tensor)],
        mut f: impl FnMut(usize, usize, &[Tensor]) -> Result<()>,
    ) -> Result<()> {
        let spec = &self.spec;
        let per = spec.input_len();
        if samples.len() != n * per {
            return Err(samples_error(format!(
                "has {} values, not {n} samples of {per} ({:?} per sample)",
                samples.len(),
                &spec.input().shape[1.min(spec.input().shape.len())..]
            )));
        }
        let batch = spec.batch().max(1);
        for start in (0..n).step_by(batch) {
            let count = batch.min(n - start);
            let x = samples
                .batch(
                    start * per,
                    count * per,
                    batch * per,
                    spec.input().shape.clone(),
                )
                .map_err(|e| samples_error(e.0))?;
            let rows_of = others
                .iter()
                .map(|(name, t)| {
                    Ok((
                        *name,
                        rows(t, start, count, batch).map_err(|e| samples_error(e.0))?,
                    ))
                })
                .collect::<Result<Vec<_>>>()?;
            let feeds = spec.check_feeds(x, &rows_of)?;
            f(start, count, &feeds)?;
        }
        Ok(())
    }

    /// SmoothGrad with the given noise (`[samples] + input shape`): the mean of the gradients at
    /// `input + noise[k]`, the target fixed by the noise-free input.
    pub fn explain_smoothgrad(
        &self,
        input: Tensor,
        target: Target,
        noise: &Tensor,
    ) -> Result<Explanation> {
        let feeds = self.spec.check_feeds(input, &[])?;
        procedure::explain_smoothgrad(&*self.evaluator()?, &self.spec, &feeds, target, &[], noise)
    }

    /// The model's own outputs (the forward pass only), by the program that explains.
    pub fn run(&self, input: Tensor) -> Result<Vec<Tensor>> {
        self.run_with(input, &[])
    }

    /// [`Explainer::run`] for a model with other inputs (`others`, by name).
    pub fn run_with(&self, input: Tensor, others: &[(&str, Tensor)]) -> Result<Vec<Tensor>> {
        let feeds = self.spec.check_feeds(input, others)?;
        match (&self.compiled, &self.model) {
            (Some(c), _) => c.run(&self.spec, &feeds),
            (None, Some(m)) => m.run_feeds_interpreted(&feeds),
            (None, None) => Err(Error::Graph {
                file: self.spec.source.clone(),
                reason: "the explainer has neither compiled code nor a model".into(),
            }),
        }
    }
}

impl Explainer {
    /// Saves the compiled explainer as an artifact (`.lrpx`): its programs, their kernels'
    /// machine code, constants and tables, the method and the rule of every node. Written to a
    /// temporary file and renamed, so `path` is either complete or untouched.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let Some(compiled) = &self.compiled else {
            return Err(Error::Input {
                what: path.display().to_string(),
                reason: "an explainer on the interpreter engine has no compiled code to save"
                    .into(),
            });
        };
        let mut programs = vec![&*compiled.main];
        programs.extend(compiled.batched.as_deref());
        artifact::write(path, &self.parts(programs, true)?)
    }

    /// What an artifact of this explainer holds.
    fn parts<'a>(&'a self, programs: Vec<&'a Executable>, code: bool) -> Result<Parts<'a>> {
        let source = match &self.model {
            Some(m) => m.source_info()?,
            None => Default::default(),
        };
        let rules = match &self.graphs {
            Some(g) => g
                .joint
                .layers
                .iter()
                .map(|l| RuleInfo {
                    node: l.name.clone(),
                    op: l.op.clone(),
                    rule: l.rule.clone(),
                })
                .collect(),
            None => Vec::new(),
        };
        Ok(Parts {
            source,
            method: method_info(&self.method),
            spec: &self.spec,
            programs,
            rules,
            code,
        })
    }

    /// Writes an explainer object file (`.o`): every kernel compiled to a function, the
    /// artifact (without stored code) as data, and the entry symbol `lrpc_explainer_<stem>`,
    /// with a C header declaring it beside the object (`<stem>.h`). Linked into a program with
    /// the static runtime library, the explainer needs no compiler and no executable memory.
    pub fn save_object(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let fail = |reason: String| Error::Graph {
            file: path.display().to_string(),
            reason,
        };
        let Some(compiled) = &self.compiled else {
            return Err(fail(
                "an explainer on the interpreter engine has no compiled code".into(),
            ));
        };
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "explainer".into());
        let symbol = codegen::object::entry_symbol(&stem);
        let mut programs = vec![&*compiled.main];
        programs.extend(compiled.batched.as_deref());
        let parts = self.parts(programs.clone(), false)?;
        let bytes = artifact::to_bytes(&parts).map_err(&fail)?;
        let kernels: Vec<&[runtime::KernelDesc]> =
            programs.iter().map(|e| &e.program().kernels[..]).collect();
        let object = codegen::object::emit(&symbol, &kernels, bytes).map_err(&fail)?;
        crate::io::write_atomically(path, |w| w.write_all(&object))?;
        let header = path.with_extension("h");
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let text = codegen::object::header(&symbol, &name);
        crate::io::write_atomically(&header, |w| w.write_all(text.as_bytes()))
    }

    /// The explainer an object file links in: its embedded artifact and, per program, the
    /// addresses of its kernels.
    ///
    /// # Safety
    /// `kernels` must be the object file's own table: the functions it emitted from the
    /// kernel descriptions of `artifact`, in order.
    pub unsafe fn from_object(
        artifact: &'static [u8],
        kernels: Vec<Vec<usize>>,
        threads: usize,
    ) -> Result<Explainer> {
        let a = Artifact::from_static(artifact, Path::new("<linked explainer>"))?;
        Explainer::from_artifact(
            &a,
            LoadOptions {
                threads,
                code: CodeSource::Linked(kernels.into()),
                ..LoadOptions::default()
            },
        )
    }

    /// Loads an artifact made by [`Explainer::save`] (or `lrpc compile`), with the default
    /// options: every core, the stored machine code.
    pub fn load(path: impl AsRef<Path>) -> Result<Explainer> {
        Explainer::load_with(path, LoadOptions::default())
    }

    /// Loads an artifact: maps it, checks every checksum, rebuilds the programs around the
    /// mapped constants and tables, and maps (or recompiles) the kernels. No ONNX decoding, no
    /// pass and no relevance construction runs.
    pub fn load_with(path: impl AsRef<Path>, options: LoadOptions) -> Result<Explainer> {
        let a = Artifact::open(path.as_ref())?;
        Explainer::from_artifact(&a, options)
    }

    /// The explainer held by an opened artifact.
    pub fn from_artifact(a: &Artifact, options: LoadOptions) -> Result<Explainer> {
        let spec = a.spec()?;
        let method = method_from_info(&a.method()?)?;
        let exe_options = runtime::Options {
            threads: options.threads,
            guard: None,
            profile: options.profile,
            max_arena_bytes: options.max_arena_bytes,
        };
        let source = a.path().display().to_string();
        let mut executables = (0..a.programs()).map(|k| {
            let (program, code) = a.program(k, &options.code)?;
            Executable::new(program, code, exe_options, &source).map(Arc::new)
        });
        let main = executables.next().ok_or_else(|| Error::Artifact {
            file: source.clone(),
            reason: "it holds no program".into(),
        })??;
        let batched = executables.next().transpose()?;
        let explain_options = ExplainOptions {
            engine: Engine::Compiled,
            threads: main.threads(),
            guard: None,
            profile: options.profile,
            layers: !spec.layers.is_empty(),
        };
        Ok(Explainer::from_parts(
            spec,
            method,
            explain_options,
            Compiled { main, batched },
        ))
    }
}

/// A method as the artifact stores it.
fn method_info(m: &Method) -> MethodInfo {
    let bound = |b: &Bound| match b {
        Bound::Scalar(v) => (vec![*v], false),
        Bound::PerChannel(v) => (v.clone(), true),
    };
    let (samples, noise_level, steps) = match m.kind {
        MethodKind::Gradient(GradientMethod::SmoothGrad {
            samples,
            noise_level,
        }) => (samples, noise_level, 0),
        MethodKind::Gradient(GradientMethod::IntegratedGradients { steps }) => (0, 0.0, steps),
        _ => (0, 0.0, 0),
    };
    let p = &m.params;
    MethodInfo {
        name: m.name().to_string(),
        epsilon: p.epsilon,
        gamma: p.gamma,
        low: bound(&p.low),
        high: bound(&p.high),
        alpha: p.alpha,
        beta: p.beta,
        overrides: m
            .overrides
            .iter()
            .map(|o| {
                (
                    o.pattern.clone(),
                    o.rule.name().to_string(),
                    o.rule.to_string(),
                )
            })
            .collect(),
        samples,
        noise_level,
        steps,
        bias_factor: p.bias_factor,
    }
}

/// The method an artifact was compiled with (for display: the rules are compiled in).
fn method_from_info(i: &MethodInfo) -> Result<Method> {
    let mut m = Method::parse(&i.name)?;
    let bound = |(v, per_channel): &(Vec<f32>, bool)| match (v.as_slice(), per_channel) {
        ([one], false) => Bound::Scalar(*one),
        _ => Bound::PerChannel(v.clone()),
    };
    m.params.epsilon = i.epsilon;
    m.params.gamma = i.gamma;
    m.params.low = bound(&i.low);
    m.params.high = bound(&i.high);
    m.params.alpha = i.alpha;
    m.params.beta = i.beta;
    m.params.bias_factor = i.bias_factor;
    for (pattern, rule, text) in &i.overrides {
        // The text keeps a rule's own parameters (`gamma(0.05)`); a rule whose parameters
        // came from the method (zbox's bounds) is given by name.
        if m.add_override(&format!("{pattern}={text}")).is_err() {
            m.add_override(&format!("{pattern}={rule}"))?;
        }
    }
    Ok(m)
}

/// Rows `start..start + count` of `t` (along its first axis), zero-padded to `batch` rows.
fn rows(t: &Tensor, start: usize, count: usize, batch: usize) -> crate::error::OpResult<Tensor> {
    let n = t.shape().first().copied().unwrap_or(1).max(1);
    let per = t.len() / n;
    let mut shape = t.shape().to_vec();
    if let Some(b) = shape.first_mut() {
        *b = batch;
    }
    crate::op_ensure!(
        start + count <= n,
        "has {n} samples; samples {start}..{} were asked for",
        start + count
    );
    let samples = match t.data() {
        crate::ir::TensorData::F32(v) => Samples::F32(v),
        crate::ir::TensorData::I64(v) => Samples::I64(v),
    };
    samples.batch(start * per, count * per, batch * per, shape)
}

/// Samples of the explained input, flat and row-major (`n` times the per-sample length).
#[derive(Clone, Copy, Debug)]
pub enum Samples<'a> {
    F32(&'a [f32]),
    /// Token ids (or other integer data).
    I64(&'a [i64]),
}

impl Samples<'_> {
    /// How many values there are.
    pub fn len(&self) -> usize {
        match self {
            Samples::F32(v) => v.len(),
            Samples::I64(v) => v.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Values `start..start + count` as a tensor of `shape`, padded with zeros to `padded`.
    fn batch(
        &self,
        start: usize,
        count: usize,
        padded: usize,
        shape: Vec<usize>,
    ) -> crate::error::OpResult<Tensor> {
        match self {
            Samples::F32(v) => {
                let mut r = v[start..start + count].to_vec();
                r.resize(padded, 0.0);
                Tensor::from_f32(shape, r)
            }
            Samples::I64(v) => {
                let mut r = v[start..start + count].to_vec();
                r.resize(padded, 0);
                Tensor::from_i64(shape, r)
            }
        }
    }
}

fn samples_error(reason: String) -> Error {
    Error::Input {
        what: "input".into(),
        reason,
    }
}

/// The reference interpreter as an evaluator.
struct Interpreted<'g>(&'g Graphs);

struct InterpretedRun<'g> {
    joint: &'g Relevance,
    reported: &'g [usize],
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
            reported: &self.0.reported,
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
    fn forward(&mut self, inputs: &[Tensor]) -> Result<()> {
        for (&n, t) in self.joint.graph.inputs.iter().zip(inputs) {
            self.values.insert(n, Arc::new(t.clone()));
        }
        interp::evaluate(&self.joint.graph, &mut self.values)
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
        let n = self.joint.layers.get(*self.reported.get(k)?)?.relevance;
        self.values
            .get(&n)
            .and_then(|v| v.f32s().ok().map(|s| s.iter().sum()))
    }
}
