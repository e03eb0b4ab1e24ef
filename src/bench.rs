//! Timing an explainer: compile time, forward and explain medians over several runs, and peak
//! memory, on a seeded random input of the model's shape (what `lrpc bench` prints).

use std::path::Path;
use std::time::Instant;

use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, StandardNormal};

use crate::error::{Error, Result};
use crate::ir::Tensor;
use crate::onnx::ImportOptions;
use crate::relevance::Method;
use crate::runtime;
use crate::{Engine, ExplainOptions, Explainer, Model, Target};

/// What `bench` measures.
#[derive(Clone, Debug, serde::Serialize)]
pub struct BenchReport {
    pub method: String,
    pub batch: usize,
    pub threads: usize,
    pub runs: usize,
    /// Import, preparation, building the joint graph and compiling it (0 for an artifact).
    pub compile_s: f64,
    /// For an artifact: the median time to load it (map, check, rebuild, map the code) with a
    /// warm page cache.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_s: Option<f64>,
    /// Seconds per stage of compiling (decode, passes, relevance, lowering, emission,
    /// planning) or of loading (open, programs).
    pub stages: Vec<(String, f64)>,
    /// Median forward pass.
    pub forward_s: f64,
    /// Median explanation (forward + relevance).
    pub explain_s: f64,
    /// The process's peak resident memory, when the OS reports it.
    pub peak_rss_mb: Option<f64>,
    /// Which engine ran the graph.
    pub engine: &'static str,
    /// The explain executable's arena (every intermediate value, packed by the memory plan).
    pub arena_mb: Option<f64>,
    /// What the same buffers would take without the plan's sharing.
    pub unshared_mb: Option<f64>,
    /// With `--profile`: seconds per step kind over the timed runs, slowest first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub profile: Vec<(String, f64)>,
    /// With `--profile`: the slowest steps.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub slowest: Vec<runtime::StepTime>,
}

/// What to measure.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    pub batch: usize,
    /// Sizes of other symbolic input dimensions, by name (a sequence length).
    pub dims: std::collections::BTreeMap<String, usize>,
    /// Timed runs (after one untimed warm-up run that also allocates the arenas).
    pub runs: usize,
    pub threads: usize,
    pub engine: Engine,
    /// Time every compiled step of the explanation (reported in `BenchReport::profile`).
    pub profile: bool,
    /// For an artifact: compile its kernels again instead of mapping the stored code.
    pub recompile: bool,
}

/// Measures `method` on the model at `path`.
pub fn bench(path: &Path, method: Method, o: BenchOptions) -> Result<BenchReport> {
    let runs = o.runs.max(1);
    let start = Instant::now();
    let options = ImportOptions {
        batch: Some(o.batch),
        dims: o.dims.clone(),
        ..ImportOptions::default()
    };
    let model = Model::load(path, &options)?;
    let explain_options = ExplainOptions {
        engine: o.engine,
        threads: o.threads,
        guard: None,
        profile: o.profile,
        layers: false,
    };
    let explainer = Explainer::with_options(&model, method, explain_options)?;
    let compile_s = start.elapsed().as_secs_f64();
    let forward = model.forward(o.engine, o.threads)?;
    let x = bench_input(explainer.spec())?;
    let owned = other_inputs(explainer.spec())?;
    let others = named(&owned);
    let forward_s = median(runs, || {
        model
            .run_forward_with(&forward, x.clone(), &others)
            .map(|_| ())
    })?;
    let stages = model
        .stages()
        .iter()
        .chain(explainer.stages())
        .map(|&(k, t)| (k.to_string(), t))
        .collect();
    report(
        &explainer,
        (&x, &others),
        o,
        compile_s,
        None,
        forward_s,
        stages,
    )
}

/// Measures the explainer an artifact holds: loading (median of `runs` loads after one that
/// warms the page cache), the forward pass and explanations.
pub fn bench_artifact(path: &Path, o: BenchOptions) -> Result<BenchReport> {
    let runs = o.runs.max(1);
    let load = || {
        let t = Instant::now();
        let a = crate::runtime::artifact::Artifact::open(path)?;
        let opened = t.elapsed().as_secs_f64();
        let e = Explainer::from_artifact(
            &a,
            crate::LoadOptions {
                threads: o.threads,
                code: if o.recompile {
                    crate::runtime::artifact::CodeSource::Recompile
                } else {
                    crate::runtime::artifact::CodeSource::Stored
                },
                profile: o.profile,
                ..Default::default()
            },
        )?;
        Ok::<_, Error>((e, opened, t.elapsed().as_secs_f64()))
    };
    load()?;
    let mut loads = Vec::with_capacity(runs);
    let mut last = None;
    for _ in 0..runs {
        let (e, opened, total) = load()?;
        loads.push((total, opened));
        last = Some(e);
    }
    let explainer = last.ok_or_else(|| Error::Input {
        what: "bench".into(),
        reason: "no run".into(),
    })?;
    loads.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (load_s, opened) = loads[loads.len() / 2];
    let x = bench_input(explainer.spec())?;
    let owned = other_inputs(explainer.spec())?;
    let others = named(&owned);
    let forward_s = median(runs, || explainer.run_with(x.clone(), &others).map(|_| ()))?;
    let stages = vec![
        ("open".to_string(), opened),
        ("programs".to_string(), load_s - opened),
    ];
    report(
        &explainer,
        (&x, &others),
        o,
        0.0,
        Some(load_s),
        forward_s,
        stages,
    )
}

/// `feeds`: the explained input's data and the other inputs'.
fn report(
    explainer: &Explainer,
    (x, others): (&Tensor, &[(&str, Tensor)]),
    o: BenchOptions,
    compile_s: f64,
    load_s: Option<f64>,
    forward_s: f64,
    stages: Vec<(String, f64)>,
) -> Result<BenchReport> {
    let runs = o.runs.max(1);
    let explain_s = median(runs, || {
        explainer
            .explain_with(x.clone(), others, Target::Top)
            .map(|_| ())
    })?;
    let steps = explainer
        .executable()
        .map(|e| e.profile())
        .unwrap_or_default();
    Ok(BenchReport {
        method: explainer.method().name().to_string(),
        batch: explainer.spec().batch(),
        threads: match o.engine {
            Engine::Compiled => o.threads,
            Engine::Interpreter => 1,
        },
        runs,
        compile_s,
        load_s,
        stages,
        forward_s,
        explain_s,
        peak_rss_mb: peak_rss_mb(),
        engine: match o.engine {
            Engine::Compiled => "compiled",
            Engine::Interpreter => "interpreter",
        },
        arena_mb: explainer.executable().map(|e| e.arena_bytes() as f64 / 1e6),
        unshared_mb: explainer
            .executable()
            .map(|e| e.unshared_bytes() as f64 / 1e6),
        profile: by_kind(&steps),
        slowest: steps.into_iter().take(60).collect(),
    })
}

/// Seconds per step kind, slowest first.
fn by_kind(steps: &[runtime::StepTime]) -> Vec<(String, f64)> {
    let mut kinds: Vec<(String, f64)> = Vec::new();
    for s in steps {
        match kinds.iter_mut().find(|(k, _)| k == s.kind) {
            Some((_, t)) => *t += s.seconds,
            None => kinds.push((s.kind.to_string(), s.seconds)),
        }
    }
    kinds.sort_by(|a, b| b.1.total_cmp(&a.1));
    kinds
}

/// The explained input's bench data: standard-normal floats, or for token ids uniform ids
/// over the embedding's rows, from a fixed seed.
fn bench_input(spec: &crate::runtime::explainer::Spec) -> Result<Tensor> {
    let shape = &spec.input().shape;
    if spec.relevance_at_embedding() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(42);
        let rows = spec.embedding_rows.max(1) as i64;
        let v = (0..shape.iter().product())
            .map(|_| rng.random_range(0..rows))
            .collect();
        return Tensor::from_i64(shape.to_vec(), v).map_err(|e| Error::Input {
            what: "bench input".into(),
            reason: e.0,
        });
    }
    random_input(shape)
}

/// The data of the model's other inputs: ones (an attention mask that keeps every token, token
/// type 1, a length mask that keeps every step).
fn other_inputs(spec: &crate::runtime::explainer::Spec) -> Result<Vec<(String, Tensor)>> {
    let bad = |e: crate::error::OpError| Error::Input {
        what: "bench input".into(),
        reason: e.0,
    };
    spec.inputs
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != spec.explained)
        .map(|(_, input)| {
            let n = input.shape.iter().product();
            let t = match input.dtype {
                crate::ir::DType::F32 => Tensor::from_f32(input.shape.clone(), vec![1.0; n]),
                _ => Tensor::from_i64(input.shape.clone(), vec![1; n]),
            };
            Ok((input.name.clone(), t.map_err(bad)?))
        })
        .collect()
}

/// `(name, data)` pairs as the explain and run calls take them.
fn named(others: &[(String, Tensor)]) -> Vec<(&str, Tensor)> {
    others
        .iter()
        .map(|(n, t)| (n.as_str(), t.clone()))
        .collect()
}

/// Standard-normal values from a fixed seed.
fn random_input(shape: &[usize]) -> Result<Tensor> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    let n = shape.iter().product();
    let v = (0..n).map(|_| StandardNormal.sample(&mut rng)).collect();
    Tensor::from_f32(shape.to_vec(), v).map_err(|e| Error::Input {
        what: "bench input".into(),
        reason: e.0,
    })
}

/// The median of `runs` timed calls after one untimed warm-up call.
fn median(runs: usize, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    f()?;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        f()?;
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// VmHWM from /proc/self/status (Linux), in MB.
pub fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}
