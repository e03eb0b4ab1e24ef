//! The prost types generated from `proto/explainer.proto`. Only `runtime/artifact/` sees them.
#![allow(clippy::all, missing_docs)]

include!(concat!(env!("OUT_DIR"), "/lrpc.artifact.rs"));
