//! The library's front door for a loaded network: import, prepare, and run it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::codegen;
use crate::error::Result;
use crate::interp;
use crate::ir::{Graph, Tensor};
use crate::onnx::{self, ImportOptions};
use crate::passes;
use crate::runtime;
use crate::runtime::explainer::{InputSpec, Sampling, Spec};

/// What evaluates a graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// Native code from the Cranelift backend (the default).
    Compiled,
    /// The reference interpreter (the oracle compiled code is tested against).
    Interpreter,
}

/// A model's forward pass prepared for one engine: compiled once, run on many inputs.
#[derive(Debug)]
pub enum Forward {
    Compiled(Box<runtime::Executable>),
    Interpreter,
}

/// Where a model came from, so it can be imported again at another batch size.
#[derive(Clone, Debug)]
enum Origin {
    File(PathBuf),
    Bytes(Arc<Vec<u8>>, String),
    /// Built in memory; cannot be re-imported.
    Graph,
}

/// A network imported from ONNX and brought into canonical form.
#[derive(Clone, Debug)]
pub struct Model {
    graph: Graph,
    origin: Origin,
    options: ImportOptions,
    /// Seconds spent decoding and in the passes when it was loaded.
    stages: Vec<(&'static str, f64)>,
    /// The file's SHA-256, computing on another thread (`ImportOptions::digest`).
    digest: Option<Arc<Digest>>,
}

/// A SHA-256 being computed on another thread.
#[derive(Debug)]
struct Digest {
    worker: std::sync::Mutex<Option<std::thread::JoinHandle<Vec<u8>>>>,
    value: std::sync::OnceLock<Vec<u8>>,
    size: u64,
}

impl Digest {
    fn start(bytes: bytes::Bytes) -> Digest {
        let size = bytes.len() as u64;
        let worker = std::thread::spawn(move || sha256(&bytes));
        Digest {
            worker: std::sync::Mutex::new(Some(worker)),
            value: std::sync::OnceLock::new(),
            size,
        }
    }

    fn get(&self) -> Option<Vec<u8>> {
        if let Some(v) = self.value.get() {
            return Some(v.clone());
        }
        let worker = self.worker.lock().ok()?.take()?;
        let v = worker.join().ok()?;
        Some(self.value.get_or_init(|| v).clone())
    }
}

fn sha256(bytes: &[u8]) -> Vec<u8> {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes).to_vec()
}

impl Model {
    /// Imports and prepares an ONNX file.
    pub fn load(path: impl AsRef<Path>, options: &ImportOptions) -> Result<Model> {
        let t = std::time::Instant::now();
        let bytes = onnx::read(path.as_ref())?;
        let digest = options
            .digest
            .then(|| Arc::new(Digest::start(bytes.clone())));
        let graph = onnx::load_bytes(bytes, path.as_ref(), options)?;
        let decode = t.elapsed().as_secs_f64();
        let mut m = Model::from_graph(graph)?;
        m.stages.insert(0, ("decode", decode));
        m.digest = digest;
        m.origin = Origin::File(path.as_ref().to_path_buf());
        m.options = options.clone();
        Ok(m)
    }

    /// Imports and prepares an ONNX model held in memory; `source` names it in errors.
    pub fn from_bytes(bytes: Vec<u8>, source: &str, options: &ImportOptions) -> Result<Model> {
        let mut m = Model::from_graph(onnx::from_bytes(&bytes, source, options)?)?;
        m.origin = Origin::Bytes(Arc::new(bytes), source.to_string());
        m.options = options.clone();
        Ok(m)
    }

    /// Prepares an already imported graph.
    pub fn from_graph(mut graph: Graph) -> Result<Model> {
        let t = std::time::Instant::now();
        passes::prepare(&mut graph)?;
        Ok(Model {
            graph,
            origin: Origin::Graph,
            options: ImportOptions::default(),
            stages: vec![("passes", t.elapsed().as_secs_f64())],
            digest: None,
        })
    }

    /// Seconds per stage of loading: decode, passes.
    pub fn stages(&self) -> &[(&'static str, f64)] {
        &self.stages
    }

    /// The same model imported again with batch size `batch`, when its ONNX input has a symbolic
    /// batch axis (shapes are static, so a new batch size means a new graph); `None` when it
    /// cannot be (a fixed batch axis, or a model built in memory).
    pub fn with_batch(&self, batch: usize) -> Result<Option<Model>> {
        let options = ImportOptions {
            batch: Some(batch),
            input_shape: None,
            digest: false,
            ..self.options.clone()
        };
        let m = match &self.origin {
            Origin::File(path) => Model::load(path, &options)?,
            Origin::Bytes(bytes, source) => Model::from_bytes(bytes.to_vec(), source, &options)?,
            Origin::Graph => return Ok(None),
        };
        Ok((m.input_shape().first() == Some(&batch)).then_some(m))
    }

    /// The model file's name, size and SHA-256 (what an artifact records of its source). Reads
    /// the file again: the digest is only needed when an explainer is saved.
    pub fn source_info(&self) -> Result<runtime::artifact::SourceInfo> {
        if let (Origin::File(path), Some(sha256)) =
            (&self.origin, self.digest.as_ref().and_then(|d| d.get()))
        {
            return Ok(runtime::artifact::SourceInfo {
                file: path.display().to_string(),
                sha256,
                size: self.digest.as_ref().map_or(0, |d| d.size),
            });
        }
        let (file, bytes): (String, std::borrow::Cow<[u8]>) = match &self.origin {
            Origin::File(path) => (
                path.display().to_string(),
                std::fs::read(path)
                    .map_err(|cause| crate::Error::Io {
                        path: path.clone(),
                        cause,
                    })?
                    .into(),
            ),
            Origin::Bytes(bytes, source) => (source.clone(), bytes.as_slice().into()),
            Origin::Graph => (self.graph.source.clone(), Vec::new().into()),
        };
        Ok(runtime::artifact::SourceInfo {
            file,
            sha256: sha256(&bytes),
            size: bytes.len() as u64,
        })
    }

    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// The model's inputs in its order: name, element type, static shape.
    pub fn inputs(&self) -> Vec<InputSpec> {
        self.graph
            .inputs
            .iter()
            .map(|&n| {
                let f = self.graph.fact(n);
                let name = self.graph.node(n).name.clone();
                InputSpec {
                    limit: self.graph.input_limits.get(&name).cloned(),
                    name,
                    dtype: f.dtype,
                    shape: f.shape.clone(),
                }
            })
            .collect()
    }

    /// The static shape of the explained input (batch included).
    pub fn input_shape(&self) -> &[usize] {
        &self.graph.fact(self.graph.explained_input()).shape
    }

    /// Checks a user's data against the explained input: the exact input shape, or the shape
    /// without its leading batch axis of 1 (which is then added); the element type; every value
    /// finite. `what` names the data in errors (a file name, say).
    pub fn check_input(&self, input: Tensor, what: &str) -> Result<Tensor> {
        let inputs = self.inputs();
        runtime::explainer::check_input(
            &inputs[self.graph.explained.min(inputs.len().saturating_sub(1))],
            &self.graph.source,
            input,
            what,
        )
    }

    /// Checks the explained input `x` and the other inputs' data (by name); all of them in
    /// the model's input order.
    pub fn check_feeds(&self, x: Tensor, others: &[(&str, Tensor)]) -> Result<Vec<Tensor>> {
        self.spec().check_feeds(x, others)
    }

    /// The inputs as an explainer's spec sees them (nothing explained yet: no logits).
    fn spec(&self) -> Spec {
        Spec {
            source: self.graph.source.clone(),
            inputs: self.inputs(),
            explained: self.graph.explained,
            logits_shape: Vec::new(),
            relevance_shape: Vec::new(),
            embedding_rows: 0,
            outputs: Vec::new(),
            method: String::new(),
            sampling: Sampling::Once,
            layers: Vec::new(),
        }
    }

    /// Runs the forward pass with compiled code on every core; returns the model's outputs.
    /// (Compiles on every call: to run many inputs, keep a [`Model::forward`].)
    pub fn run(&self, input: Tensor) -> Result<Vec<Tensor>> {
        let forward = self.forward(Engine::Compiled, runtime::default_threads())?;
        self.run_forward(&forward, input)
    }

    /// Runs the forward pass with the reference interpreter.
    pub fn run_interpreted(&self, input: Tensor) -> Result<Vec<Tensor>> {
        self.run_forward(&Forward::Interpreter, input)
    }

    /// Runs the reference interpreter on every input (checked, in the model's order).
    pub fn run_feeds_interpreted(&self, feeds: &[Tensor]) -> Result<Vec<Tensor>> {
        interp::run_feeds(&self.graph, feeds)
    }

    /// Prepares the forward pass for `engine` (compiles it, for the compiled engine).
    pub fn forward(&self, engine: Engine, threads: usize) -> Result<Forward> {
        Ok(match engine {
            Engine::Interpreter => Forward::Interpreter,
            Engine::Compiled => Forward::Compiled(Box::new(codegen::compile_forward(
                &self.graph,
                runtime::Options {
                    threads,
                    ..runtime::Options::default()
                },
            )?)),
        })
    }

    /// Runs a prepared forward pass on `input`; returns the model's outputs.
    pub fn run_forward(&self, forward: &Forward, input: Tensor) -> Result<Vec<Tensor>> {
        self.run_forward_with(forward, input, &[])
    }

    /// Runs a prepared forward pass on the explained input and the other inputs' data.
    pub fn run_forward_with(
        &self,
        forward: &Forward,
        input: Tensor,
        others: &[(&str, Tensor)],
    ) -> Result<Vec<Tensor>> {
        let feeds = self.check_feeds(input, others)?;
        match forward {
            Forward::Interpreter => interp::run_feeds(&self.graph, &feeds),
            Forward::Compiled(exe) => codegen::run_forward(exe, &feeds),
        }
    }
}
