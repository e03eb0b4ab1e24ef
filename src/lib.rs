//! lrpc compiles a trained network (ONNX) into a fast Layer-wise Relevance Propagation explainer.
//!
//! The pipeline, one module a stage (see docs/architecture.md): [`onnx`] decodes a model into the
//! [`ir`] graph, [`interp`] evaluates any op (the oracle), [`passes`] bring the graph to canonical
//! form, and [`model`] ties them together for users.

pub mod alloc;
pub mod bench;
pub mod codegen;
pub mod error;
pub mod eval;
pub mod explain;
pub mod heatmap;
pub mod interp;
pub mod io;
pub mod ir;
pub mod model;
pub mod onnx;
pub mod passes;
pub mod relevance;
pub mod runtime;
pub mod text;

pub use error::{Error, Result};
pub use explain::{ExplainOptions, Explainer, Explanation, LoadOptions, Samples, Target};
pub use model::{Engine, Forward, Model};
