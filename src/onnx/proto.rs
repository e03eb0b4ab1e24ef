//! The prost types generated from `proto/onnx.proto`. Only `src/onnx/` sees them.
#![allow(clippy::all, missing_docs)]

include!(concat!(env!("OUT_DIR"), "/onnx.rs"));
