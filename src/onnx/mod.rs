//! Decode stage: ONNX bytes -> prost `ModelProto` -> IR [`Graph`]. The only place that sees prost
//! types. Import runs as named phases, one function each: decode, opset, initializers, inputs,
//! node order, node conversion, outputs.

mod attrs;
mod graph;
mod ops;
pub(crate) mod proto;
mod tensor;

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{Error, Result};
use crate::ir::Graph;

pub use ops::supported_ops;

/// Largest tensor (in elements) the importer and shape inference accept by default: 2^30 f32
/// values are 4 GiB, more than any model lrpc targets needs for one activation.
pub const DEFAULT_MAX_ELEMENTS: usize = 1 << 30;

/// How to turn a model file into a static graph.
#[derive(Clone, Debug)]
pub struct ImportOptions {
    /// Size bound to a symbolic first input dimension (the batch); 1 when absent.
    pub batch: Option<usize>,
    /// Sizes for other symbolic input dimensions, by their `dim_param` name.
    pub dims: BTreeMap<String, usize>,
    /// The shape of the data that will be fed to the explained input, with or without the
    /// batch axis: symbolic dimensions not named in `dims` take their size from it.
    pub input_shape: Option<Vec<usize>>,
    /// The same for other inputs, by name.
    pub input_shapes: BTreeMap<String, Vec<usize>>,
    /// The input to explain (default: the first float input, else the first integer input
    /// feeding a Gather, else the first input).
    pub explain_input: Option<String>,
    /// Refuse any tensor with more elements than this (declared dims, folded constants).
    pub max_elements: usize,
    /// Inputs fixed to these values at import, by name: they become constants, so whatever
    /// depends only on them folds (a sample rate that picks an If branch, the scales of a
    /// Resize given as an input).
    pub constants: BTreeMap<String, crate::ir::Tensor>,
    /// Compute the file's SHA-256 on another thread while it is imported (what a saved
    /// artifact records of its source; `Model::source_info` computes it otherwise).
    pub digest: bool,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            batch: None,
            dims: BTreeMap::new(),
            input_shape: None,
            input_shapes: BTreeMap::new(),
            explain_input: None,
            max_elements: DEFAULT_MAX_ELEMENTS,
            constants: BTreeMap::new(),
            digest: false,
        }
    }
}

/// Reads and imports an ONNX file. External data files are looked up beside it.
pub fn load(path: &Path, options: &ImportOptions) -> Result<Graph> {
    load_bytes(read(path)?, path, options)
}

/// Files from this size on are mapped rather than read.
const MAP_FROM: u64 = 1 << 20;

/// A model file's bytes (what [`load_bytes`] imports): mapped when large, so the initializers
/// are copied once (into their tensors) instead of twice; read when small.
pub fn read(path: &Path) -> Result<bytes::Bytes> {
    let io = |cause| Error::Io {
        path: path.to_path_buf(),
        cause,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    if len < MAP_FROM {
        return std::fs::read(path).map(bytes::Bytes::from).map_err(io);
    }
    // SAFETY: a read-only private mapping, released once the import has copied the tensors out.
    // Like any mapping it assumes the file is not truncated meanwhile (reads would then fault);
    // the import only reads it.
    let map = unsafe { memmap2::MmapOptions::new().populate().map(&file) }.map_err(io)?;
    Ok(bytes::Bytes::from_owner(map))
}

/// Imports the bytes of the model file at `path` (external data files are looked up beside
/// it).
pub fn load_bytes(bytes: bytes::Bytes, path: &Path, options: &ImportOptions) -> Result<Graph> {
    let source = path.display().to_string();
    graph::import(bytes, &source, path.parent(), options)
}

/// Imports an ONNX model held in memory; `source` names it in errors. External data is refused.
pub fn from_bytes(bytes: &[u8], source: &str, options: &ImportOptions) -> Result<Graph> {
    graph::import(bytes::Bytes::copy_from_slice(bytes), source, None, options)
}
