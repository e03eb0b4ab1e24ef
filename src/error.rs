//! The one error type of the library. Every variant names where the problem is: the file, and for
//! anything about a node its name and op type, so a user can find it in Netron or the exporter.

use std::path::PathBuf;

/// Result alias used across the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong between reading a model file and producing an output.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing a file failed.
    #[error("{}: {cause}", path.display())]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
    /// The bytes are not a well-formed ONNX protobuf, or the model lacks a required part.
    #[error("{file}: not a valid ONNX model: {reason}")]
    Decode { file: String, reason: String },
    /// An explainer artifact is damaged, of another format version, or made for another CPU.
    #[error("{file}: not a valid lrpc artifact: {reason}")]
    Artifact { file: String, reason: String },
    /// The model's graph is malformed as a whole (names, inputs, outputs, cycles).
    #[error("{file}: {reason}")]
    Graph { file: String, reason: String },
    /// An op lrpc does not implement (or not at this opset / domain).
    #[error("{file}: node '{node}': unsupported op '{op}' (domain '{domain}', opset {opset})")]
    UnsupportedOp {
        file: String,
        node: String,
        op: String,
        domain: String,
        opset: i64,
    },
    /// A node could not be imported: bad attribute, wrong input count, non-constant parameter.
    #[error("{file}: node '{node}' ({op}): {reason}")]
    Import {
        file: String,
        node: String,
        op: String,
        reason: String,
    },
    /// Shape or type inference failed at a node (shape mismatch, bad axis, ...).
    #[error("{file}: node '{node}' ({op}): {reason}")]
    Shape {
        file: String,
        node: String,
        op: String,
        reason: String,
    },
    /// Evaluating a node failed (reference interpreter or constant folding).
    #[error("{file}: node '{node}' ({op}): {reason}")]
    Eval {
        file: String,
        node: String,
        op: String,
        reason: String,
    },
    /// The data a user passed in does not fit the model (shape, dtype, NaN, ...).
    #[error("{what}: {reason}")]
    Input { what: String, reason: String },
}

/// An error from a single op, before the graph-level caller adds file and node context.
///
/// Op code (shape rules, kernels) knows nothing about nodes; the walker that calls it wraps this
/// into an [`Error`] variant with the node's name and op type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct OpError(pub String);

/// Result of op-level code.
pub type OpResult<T> = std::result::Result<T, OpError>;

/// Returns early with an [`OpError`] built by `format!`.
#[macro_export]
macro_rules! op_bail {
    ($($arg:tt)*) => {
        return Err($crate::error::OpError(format!($($arg)*)))
    };
}

/// Returns early with an [`OpError`] unless the condition holds.
#[macro_export]
macro_rules! op_ensure {
    ($cond:expr, $($arg:tt)*) => {
        if !$cond {
            $crate::op_bail!($($arg)*);
        }
    };
}
