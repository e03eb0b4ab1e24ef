//! The native half of the `lrpc` Python package (`lrpc._lrpc`): an explainer over numpy
//! arrays. The Python half (`python/lrpc/__init__.py`) normalises arguments (one sample or a
//! batch, targets, dtypes) and documents the surface; this module does the work with the GIL
//! released, reading C-contiguous arrays in place.

use std::collections::HashMap;

use lrpc::heatmap::{ColorMap, HeatmapOptions};
use lrpc::ir::Tensor;
use lrpc::relevance::{Bound as Limit, Settings};
use lrpc::{Explainer, LoadOptions, Model, Samples};
use numpy::{IntoPyArray, PyArrayDyn, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;

create_exception!(
    _lrpc,
    LrpcError,
    PyException,
    "An lrpc error: the one-line message the command line prints."
);

fn error(e: impl std::fmt::Display) -> PyErr {
    LrpcError::new_err(e.to_string())
}

/// A model's relevance method with its parameters, as the Python constructor gives them.
#[derive(FromPyObject, Clone)]
enum BoundArg {
    Scalar(f32),
    PerChannel(Vec<f32>),
}

impl From<BoundArg> for Limit {
    fn from(b: BoundArg) -> Limit {
        match b {
            BoundArg::Scalar(v) => Limit::Scalar(v),
            BoundArg::PerChannel(v) => Limit::PerChannel(v),
        }
    }
}

/// Method parameters given by keyword (evaluate's `**method_params`).
#[derive(Default)]
struct MethodParams {
    epsilon: Option<f32>,
    gamma: Option<f32>,
    alpha: Option<f32>,
    bias_factor: Option<f32>,
    low: Option<BoundArg>,
    high: Option<BoundArg>,
    rules: Option<Vec<(String, String)>>,
}

impl MethodParams {
    fn settings(&self, method: Option<String>) -> Settings {
        Settings {
            method,
            epsilon: self.epsilon,
            gamma: self.gamma,
            alpha: self.alpha,
            bias_factor: self.bias_factor,
            low: self.low.clone().map(Limit::from),
            high: self.high.clone().map(Limit::from),
            rules: self
                .rules
                .iter()
                .flatten()
                .map(|(pattern, rule)| format!("{pattern}={rule}"))
                .collect(),
        }
    }

    /// The keywords that were given: what an artifact refuses.
    fn given(&self, method: bool) -> Vec<&'static str> {
        [
            ("method", method),
            ("epsilon", self.epsilon.is_some()),
            ("gamma", self.gamma.is_some()),
            ("alpha", self.alpha.is_some()),
            ("bias_factor", self.bias_factor.is_some()),
            ("low", self.low.is_some()),
            ("high", self.high.is_some()),
            ("rules", self.rules.as_ref().is_some_and(|r| !r.is_empty())),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect()
    }
}

/// An explainer: an ONNX model compiled with one method, or a loaded artifact.
#[pyclass(module = "lrpc._lrpc", frozen)]
struct NativeExplainer {
    inner: Explainer,
    threads: usize,
}

/// Explained-input data of either element type, borrowed from numpy.
#[derive(FromPyObject)]
enum InputArray<'py> {
    F32(PyReadonlyArrayDyn<'py, f32>),
    I64(PyReadonlyArrayDyn<'py, i64>),
}

/// A numpy array as an owned tensor (the other inputs: small, copied once).
fn tensor(name: &str, a: &InputArray<'_>) -> PyResult<Tensor> {
    let bad = |e: lrpc::error::OpError| error(format!("input '{name}': {}", e.0));
    match a {
        InputArray::F32(a) => {
            Tensor::from_f32(a.shape().to_vec(), a.as_array().iter().copied().collect())
                .map_err(bad)
        }
        InputArray::I64(a) => {
            Tensor::from_i64(a.shape().to_vec(), a.as_array().iter().copied().collect())
                .map_err(bad)
        }
    }
}

fn targets_of(targets: Option<Vec<i64>>, classes: usize) -> PyResult<Vec<Option<usize>>> {
    targets
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(k, t)| {
            if t < 0 || t as usize >= classes {
                Err(error(format!(
                    "target {t} of sample {k} is outside the model's {classes} classes"
                )))
            } else {
                Ok(Some(t as usize))
            }
        })
        .collect()
}

fn array<'py>(py: Python<'py>, t: &Tensor) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
    let v = t.f32s().map_err(|e| error(e.0))?.to_vec();
    numpy::ndarray::ArrayD::from_shape_vec(t.shape().to_vec(), v)
        .map(|a| a.into_pyarray(py))
        .map_err(error)
}

impl NativeExplainer {
    /// Runs `f` on the samples of `x` (C-contiguous: checked by the caller) with the GIL
    /// released.
    fn with_samples<T: Send>(
        &self,
        py: Python<'_>,
        x: &InputArray<'_>,
        inputs: HashMap<String, InputArray<'_>>,
        f: impl FnOnce(&Explainer, Samples<'_>, usize, &[(&str, Tensor)]) -> lrpc::Result<T> + Send,
    ) -> PyResult<T> {
        let spec = self.inner.spec();
        let per = spec.input_len().max(1);
        let others: Vec<(String, Tensor)> = inputs
            .iter()
            .map(|(n, a)| Ok((n.clone(), tensor(n, a)?)))
            .collect::<PyResult<_>>()?;
        let borrowed: Vec<(&str, Tensor)> = others
            .iter()
            .map(|(n, t)| (n.as_str(), t.clone()))
            .collect();
        let samples = match x {
            InputArray::F32(a) => Samples::F32(a.as_slice().map_err(error)?),
            InputArray::I64(a) => Samples::I64(a.as_slice().map_err(error)?),
        };
        let n = x_len(x) / per;
        let inner = &self.inner;
        py.detach(|| f(inner, samples, n, &borrowed)).map_err(error)
    }
}

fn x_len(x: &InputArray<'_>) -> usize {
    match x {
        InputArray::F32(a) => a.len(),
        InputArray::I64(a) => a.len(),
    }
}

#[pymethods]
impl NativeExplainer {
    #[new]
    #[pyo3(signature = (model, method=None, epsilon=None, gamma=None, alpha=None, bias_factor=None, low=None, high=None, rules=None, batch=None, dims=None, explain_input=None, input_shapes=None, threads=None, interpreter=false, recompile=false))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        model: std::path::PathBuf,
        method: Option<String>,
        epsilon: Option<f32>,
        gamma: Option<f32>,
        alpha: Option<f32>,
        bias_factor: Option<f32>,
        low: Option<BoundArg>,
        high: Option<BoundArg>,
        rules: Option<Vec<(String, String)>>,
        batch: Option<usize>,
        dims: Option<HashMap<String, usize>>,
        explain_input: Option<String>,
        input_shapes: Option<HashMap<String, Vec<usize>>>,
        threads: Option<usize>,
        interpreter: bool,
        recompile: bool,
    ) -> PyResult<NativeExplainer> {
        let threads = match threads {
            Some(0) => return Err(error("threads must be positive")),
            Some(t) => t,
            None => lrpc::runtime::default_threads(),
        };
        let params = MethodParams {
            epsilon,
            gamma,
            alpha,
            bias_factor,
            low,
            high,
            rules,
        };
        let method_given = method.is_some();
        let settings = params.settings(method);
        let shape_given: Vec<&str> = [
            ("batch", batch.is_some()),
            ("dims", dims.as_ref().is_some_and(|d| !d.is_empty())),
            ("explain_input", explain_input.is_some()),
            ("interpreter", interpreter),
        ]
        .into_iter()
        .filter_map(|(n, set)| set.then_some(n))
        .collect();
        let inner = py.detach(|| -> PyResult<Explainer> {
            if lrpc::runtime::artifact::is_artifact(&model) {
                let e = Explainer::load_with(
                    &model,
                    LoadOptions {
                        threads,
                        code: if recompile {
                            lrpc::runtime::artifact::CodeSource::Recompile
                        } else {
                            lrpc::runtime::artifact::CodeSource::Stored
                        },
                        ..LoadOptions::default()
                    },
                )
                .map_err(error)?;
                let mut given = params.given(method_given);
                given.extend(shape_given);
                if let Some(name) = given.first() {
                    return Err(error(format!(
                        "{}: {name}: the artifact fixed this when it was compiled (method {}, input {:?}); compile the model again to change it",
                        model.display(),
                        e.method().name(),
                        e.spec().input().shape
                    )));
                }
                return Ok(e);
            }
            let options = lrpc::onnx::ImportOptions {
                batch,
                dims: dims.unwrap_or_default().into_iter().collect(),
                input_shapes: input_shapes.unwrap_or_default().into_iter().collect(),
                explain_input,
                ..lrpc::onnx::ImportOptions::default()
            };
            let m = Model::load(&model, &options).map_err(error)?;
            let explain = lrpc::ExplainOptions {
                engine: if interpreter {
                    lrpc::Engine::Interpreter
                } else {
                    lrpc::Engine::Compiled
                },
                threads: if interpreter { 1 } else { threads },
                ..lrpc::ExplainOptions::default()
            };
            let method = settings.method().map_err(error)?;
            Explainer::with_options(&m, method, explain).map_err(error)
        })?;
        Ok(NativeExplainer { inner, threads })
    }

    /// Explains `x` (C-contiguous, batch axis included): (relevance, logits, targets), plus
    /// the per-token relevance for token ids (else None).
    #[pyo3(signature = (x, targets=None, inputs=None))]
    #[allow(clippy::type_complexity)]
    fn explain<'py>(
        &self,
        py: Python<'py>,
        x: InputArray<'py>,
        targets: Option<Vec<i64>>,
        inputs: Option<HashMap<String, InputArray<'py>>>,
    ) -> PyResult<(
        Bound<'py, PyArrayDyn<f32>>,
        Bound<'py, PyArrayDyn<f32>>,
        Vec<i64>,
        Option<Bound<'py, PyArrayDyn<f32>>>,
    )> {
        let targets = targets_of(targets, self.inner.spec().classes())?;
        let e = self.with_samples(py, &x, inputs.unwrap_or_default(), |ex, s, n, others| {
            ex.explain_rows(s, n, others, &targets)
        })?;
        let tokens = if self.inner.spec().relevance_at_embedding() {
            Some(array(
                py,
                &lrpc::text::per_token(&e.relevance).map_err(error)?,
            )?)
        } else {
            None
        };
        Ok((
            array(py, &e.relevance)?,
            array(py, &e.logits)?,
            e.targets.iter().map(|&t| t as i64).collect(),
            tokens,
        ))
    }

    /// The explained logits of `x` (C-contiguous, batch axis included).
    #[pyo3(signature = (x, inputs=None))]
    fn forward<'py>(
        &self,
        py: Python<'py>,
        x: InputArray<'py>,
        inputs: Option<HashMap<String, InputArray<'py>>>,
    ) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
        let logits =
            self.with_samples(py, &x, inputs.unwrap_or_default(), |ex, s, n, others| {
                ex.logits_rows(s, n, others)
            })?;
        array(py, &logits)
    }

    /// Saves the compiled explainer as an artifact (written whole or not at all).
    fn save(&self, py: Python<'_>, path: std::path::PathBuf) -> PyResult<()> {
        py.detach(|| self.inner.save(&path)).map_err(error)
    }

    #[getter]
    fn method(&self) -> String {
        self.inner.method().name().to_string()
    }

    /// The explained input's shape, batch included.
    #[getter]
    fn input_shape(&self) -> Vec<usize> {
        self.inner.spec().input().shape.clone()
    }

    /// Its element type: "float32" or "int64" (token ids).
    #[getter]
    fn input_dtype(&self) -> &'static str {
        match self.inner.spec().input().dtype {
            lrpc::ir::DType::F32 => "float32",
            _ => "int64",
        }
    }

    #[getter]
    fn input_name(&self) -> String {
        self.inner.spec().input().name.clone()
    }

    /// The other inputs (name, element type, shape), given to `explain` by name.
    #[getter]
    fn other_inputs(&self) -> Vec<(String, &'static str, Vec<usize>)> {
        let spec = self.inner.spec();
        spec.inputs
            .iter()
            .enumerate()
            .filter(|(k, _)| *k != spec.explained)
            .map(|(_, i)| {
                let dtype = if i.dtype == lrpc::ir::DType::F32 {
                    "float32"
                } else {
                    "int64"
                };
                (i.name.clone(), dtype, i.shape.clone())
            })
            .collect()
    }

    #[getter]
    fn classes(&self) -> usize {
        self.inner.spec().classes()
    }

    /// Samples per compiled run.
    #[getter]
    fn batch(&self) -> usize {
        self.inner.spec().batch()
    }

    #[getter]
    fn threads(&self) -> usize {
        self.threads
    }

    /// The relevance's shape per batch, batch included.
    #[getter]
    fn relevance_shape(&self) -> Vec<usize> {
        self.inner.spec().relevance_shape.clone()
    }

    /// Whether the samples run as one batch (`False` for a bare recurrent op).
    #[getter]
    fn batched(&self) -> bool {
        self.inner.spec().batched()
    }
}

/// The heatmap of one sample's relevance ((C, H, W), (H, W) or (1, C, H, W)), summed over
/// channels and coloured as the command line's --heatmap: (H', W', 3) uint8.
#[pyfunction]
#[pyo3(signature = (relevance, cmap="bwr", min_size=224))]
fn heatmap<'py>(
    py: Python<'py>,
    relevance: PyReadonlyArrayDyn<'py, f32>,
    cmap: &str,
    min_size: u32,
) -> PyResult<Bound<'py, PyArrayDyn<u8>>> {
    let cmap = ColorMap::parse(cmap).map_err(error)?;
    let mut shape = relevance.shape().to_vec();
    match shape.len() {
        2 => shape.splice(0..0, [1, 1]).for_each(drop),
        3 => shape.insert(0, 1),
        4 if shape[0] == 1 => {}
        _ => {
            return Err(error(format!(
                "heatmap: relevance of shape {shape:?}: give one sample, (H, W), (C, H, W) or (1, C, H, W)"
            )));
        }
    }
    let t = Tensor::from_f32(shape, relevance.as_array().iter().copied().collect())
        .map_err(|e| error(e.0))?;
    if let Some(i) = t
        .f32s()
        .map_err(|e| error(e.0))?
        .iter()
        .position(|v| !v.is_finite())
    {
        return Err(error(format!(
            "heatmap: the relevance holds a non-finite value at flat index {i}"
        )));
    }
    let opts = HeatmapOptions {
        cmap,
        min_size,
        ..HeatmapOptions::default()
    };
    let img = lrpc::heatmap::render(&t, &opts).map_err(error)?;
    let (w, h) = (img.width() as usize, img.height() as usize);
    let a = numpy::ndarray::ArrayD::from_shape_vec(vec![h, w, 3], img.into_raw()).map_err(error)?;
    Ok(a.into_pyarray(py))
}

/// Per-sample results of a method (what a Ray block hands back to be summarised).
#[derive(serde::Serialize, serde::Deserialize)]
struct SampleRows {
    drop: Vec<Vec<f32>>,
    scores: Vec<Vec<f32>>,
    right: Vec<Vec<bool>>,
}

fn sample_rows(samples: &[lrpc::eval::protocol::SampleCurve]) -> SampleRows {
    SampleRows {
        drop: samples.iter().map(|s| s.drop.clone()).collect(),
        scores: samples.iter().map(|s| s.scores.clone()).collect(),
        right: samples.iter().map(|s| s.right.clone()).collect(),
    }
}

/// The region perturbation study (`lrpc evaluate`) on stacked samples `x`; returns its report
/// as JSON (with each method's per-sample curves when `samples`).
#[pyfunction]
#[pyo3(signature = (model, x, labels, methods, patch, steps, order, perturb, score, target, correct_only, seed, pad_id, ids, value_range, means, batch, threads, samples, epsilon=None, gamma=None, alpha=None, bias_factor=None, low=None, high=None, rules=None))]
#[allow(clippy::too_many_arguments)]
fn evaluate(
    py: Python<'_>,
    model: std::path::PathBuf,
    x: InputArray<'_>,
    labels: Option<Vec<i64>>,
    methods: Vec<String>,
    patch: Option<usize>,
    steps: Option<usize>,
    order: &str,
    perturb: Option<String>,
    score: &str,
    target: &str,
    correct_only: bool,
    seed: u64,
    pad_id: i64,
    ids: Option<Vec<u64>>,
    value_range: Option<(f32, f32)>,
    means: Option<Vec<f64>>,
    batch: Option<usize>,
    threads: Option<usize>,
    samples: bool,
    epsilon: Option<f32>,
    gamma: Option<f32>,
    alpha: Option<f32>,
    bias_factor: Option<f32>,
    low: Option<BoundArg>,
    high: Option<BoundArg>,
    rules: Option<Vec<(String, String)>>,
) -> PyResult<String> {
    let method_params = MethodParams {
        epsilon,
        gamma,
        alpha,
        bias_factor,
        low,
        high,
        rules,
    };
    use lrpc::eval::perturbation::Order;
    use lrpc::eval::protocol::{self, Perturb, Protocol};
    let data = lrpc::eval::data::Data::Array(tensor("x", &x)?);
    let n = data.len();
    if n == 0 {
        return Err(error("evaluate: the data set is empty"));
    }
    let tokens = data.tokens();
    let order = match order {
        "arras" if tokens => None,
        "arras" => {
            return Err(error(
                "evaluate: order 'arras' is for token ids (word deletion)",
            ));
        }
        o => Some(Order::parse(o).map_err(error)?),
    };
    let probability = match score {
        "logit" => false,
        "prob" => true,
        s => {
            return Err(error(format!(
                "evaluate: score '{s}' is neither logit nor prob"
            )));
        }
    };
    let target_label = match target {
        "top" => false,
        "label" => true,
        t => {
            return Err(error(format!(
                "evaluate: target '{t}' is neither label nor top"
            )));
        }
    };
    let perturb = match perturb
        .as_deref()
        .unwrap_or(if tokens { "delete" } else { "uniform" })
    {
        "uniform" => Perturb::Uniform,
        "mean" => Perturb::Mean,
        "zero" => Perturb::Zero,
        "delete" => Perturb::Id(pad_id),
        p if p.starts_with("id:") => Perturb::Id(
            p[3..]
                .parse()
                .map_err(|_| error(format!("evaluate: perturb '{p}': not an id")))?,
        ),
        p => {
            return Err(error(format!(
                "evaluate: perturb '{p}' is none of uniform, mean, zero (floats), delete, id:N (token ids)"
            )));
        }
    };
    let protocol = Protocol {
        patch: patch.unwrap_or(if tokens { 1 } else { 9 }),
        steps,
        order,
        perturb,
        pad_id,
        probability,
        target_label,
        correct_only,
        seed,
        ids,
        range: value_range,
        means,
    };
    let threads = match threads {
        Some(0) => return Err(error("threads must be positive")),
        Some(t) => t,
        None => lrpc::runtime::default_threads(),
    };
    let settings = method_params.settings(None);
    let bounds_given = (settings.low.is_some(), settings.high.is_some());
    // The command line's batch by default; a given one exactly (parts of a data set evaluated
    // apart then run the same programs as the whole).
    let mut shape = vec![batch.unwrap_or(32.min(n))];
    shape.extend(data.sample_shape());
    let json = py.detach(|| -> PyResult<String> {
        let options = lrpc::onnx::ImportOptions {
            input_shape: Some(shape),
            ..lrpc::onnx::ImportOptions::default()
        };
        let m = Model::load(&model, &options).map_err(error)?;
        let range = match (tokens, value_range) {
            (true, _) => None,
            (false, Some(r)) => Some(r),
            (false, None) => Some(data.range().map_err(error)?),
        };
        let explain = lrpc::ExplainOptions {
            threads,
            ..lrpc::ExplainOptions::default()
        };
        let heatmaps = methods
            .iter()
            .map(|name| {
                let h = protocol::heatmaps(name, &m, explain, range, bounds_given, |base| {
                    method_params
                        .settings(Some(base.to_string()))
                        .method()
                        .map_err(|e| lrpc::Error::Input {
                            what: name.clone(),
                            reason: e.to_string(),
                        })
                })
                .map_err(error)?;
                Ok((name.clone(), h))
            })
            .collect::<PyResult<Vec<_>>>()?;
        let report = protocol::run(
            &m,
            (lrpc::Engine::Compiled, threads),
            &data,
            labels.as_deref(),
            &heatmaps,
            &protocol,
            &mut |_, _, _| {},
        )
        .map_err(error)?;
        let mut v = serde_json::to_value(&report).map_err(error)?;
        if samples && let Some(list) = v["methods"].as_array_mut() {
            for (j, m) in report.methods.iter().enumerate() {
                list[j]["samples"] =
                    serde_json::to_value(sample_rows(&m.samples)).map_err(error)?;
            }
        }
        serde_json::to_string(&v).map_err(error)
    })?;
    Ok(json)
}

/// Summarises per-sample curves (from several `evaluate(..., samples=True)` calls,
/// concatenated in order) into one method's report, as JSON.
#[pyfunction]
fn summarise(method: &str, samples_json: &str) -> PyResult<String> {
    let rows: SampleRows = serde_json::from_str(samples_json).map_err(error)?;
    if rows.drop.len() != rows.scores.len()
        || (!rows.right.is_empty() && rows.right.len() != rows.drop.len())
    {
        return Err(error("summarise: the per-sample lists differ in length"));
    }
    let samples = rows
        .drop
        .into_iter()
        .zip(rows.scores)
        .enumerate()
        .map(|(k, (drop, scores))| lrpc::eval::protocol::SampleCurve {
            drop,
            scores,
            right: rows.right.get(k).cloned().unwrap_or_default(),
        })
        .collect();
    serde_json::to_string(&lrpc::eval::protocol::summarise(method, samples)).map_err(error)
}

/// One sample's relevance summed over channels: (height, width, values).
fn plane(relevance: &PyReadonlyArrayDyn<'_, f32>) -> PyResult<(usize, usize, Vec<f64>)> {
    let shape = relevance.shape();
    let (h, w) = match shape {
        [h, w] | [_, h, w] | [1, _, h, w] => (*h, *w),
        s => {
            return Err(error(format!(
                "relevance of shape {s:?}: give one sample, (H, W), (C, H, W) or (1, C, H, W)"
            )));
        }
    };
    let v: Vec<f32> = relevance.as_array().iter().copied().collect();
    Ok((h, w, lrpc::eval::regions::channel_sum(&v, h * w)))
}

/// Relevance inside and outside a box (x0, y0, x1, y1; pixels, end exclusive) and the
/// context use (outside / inside, Lapuschkin et al. 2016), as `lrpc regions --boxes`: JSON.
#[pyfunction]
fn context_use(relevance: PyReadonlyArrayDyn<'_, f32>, bbox: [usize; 4]) -> PyResult<String> {
    let (h, w, v) = plane(&relevance)?;
    let [x0, y0, x1, y1] = bbox;
    if x0 >= x1 || y0 >= y1 || x1 > w || y1 > h {
        return Err(error(format!(
            "box {bbox:?} is not (x0, y0, x1, y1) with x0 < x1 <= {w} and y0 < y1 <= {h}"
        )));
    }
    serde_json::to_string(&lrpc::eval::regions::box_stats(&v, w, bbox)).map_err(error)
}

/// The share of the relevance on each labelled region of a mask (H, W) (Seibold et al. 2018),
/// as `lrpc regions --masks`: JSON [[label, {signed, positive}], ...].
#[pyfunction]
fn region_shares(
    relevance: PyReadonlyArrayDyn<'_, f32>,
    mask: PyReadonlyArrayDyn<'_, u8>,
    labels: Vec<u8>,
) -> PyResult<String> {
    let (h, w, v) = plane(&relevance)?;
    if mask.shape() != [h, w] {
        return Err(error(format!(
            "the mask has shape {:?}, the relevance's plane is ({h}, {w})",
            mask.shape()
        )));
    }
    let m: Vec<u8> = mask.as_array().iter().copied().collect();
    serde_json::to_string(&lrpc::eval::regions::shares(&v, &m, &labels)).map_err(error)
}

/// The method names `method=` accepts.
#[pyfunction]
fn methods() -> Vec<&'static str> {
    lrpc::relevance::METHOD_NAMES.to_vec()
}

#[pymodule]
fn _lrpc(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<NativeExplainer>()?;
    m.add_function(wrap_pyfunction!(heatmap, m)?)?;
    m.add_function(wrap_pyfunction!(methods, m)?)?;
    m.add_function(wrap_pyfunction!(evaluate, m)?)?;
    m.add_function(wrap_pyfunction!(summarise, m)?)?;
    m.add_function(wrap_pyfunction!(context_use, m)?)?;
    m.add_function(wrap_pyfunction!(region_shares, m)?)?;
    m.add("LrpcError", m.py().get_type::<LrpcError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
