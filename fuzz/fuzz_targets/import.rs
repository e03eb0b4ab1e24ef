//! Fuzzes the importer and graph preparation: arbitrary bytes as an ONNX model must give a model
//! or an error, never a panic, an abort, or an allocation past the element limit. Models that
//! load are also given to the relevance pass.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lrpc::onnx::ImportOptions;
use lrpc::relevance::Method;
use lrpc::{Explainer, Model};

fuzz_target!(|data: &[u8]| {
    // A small limit keeps every run fast and bounds memory.
    let options = ImportOptions { max_elements: 1 << 16, ..ImportOptions::default() };
    if let Ok(model) = Model::from_bytes(data.to_vec(), "fuzz.onnx", &options) {
        let _ = Method::parse("epsilon-gamma-box").and_then(|m| Explainer::new(&model, m));
    }
});
