//! Fuzzes the whole library path on small models: import, preparation, the relevance pass and the
//! reference interpreter running forward and relevance. Tensors are capped at 2^12 elements so
//! every run stays fast; any panic, abort or timeout is a finding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lrpc::ir::Tensor;
use lrpc::onnx::ImportOptions;
use lrpc::relevance::Method;
use lrpc::{Explainer, Model, Target};

fuzz_target!(|data: &[u8]| {
    let options = ImportOptions { max_elements: 1 << 12, ..ImportOptions::default() };
    let Ok(model) = Model::from_bytes(data.to_vec(), "fuzz.onnx", &options) else { return };
    let shape = model.input_shape().to_vec();
    let n: usize = shape.iter().product();
    let Ok(x) = Tensor::from_f32(shape, (0..n).map(|i| (i % 7) as f32 * 0.25 - 0.75).collect()) else { return };
    let _ = model.run(x.clone());
    for method in ["epsilon-gamma-box", "epsilon-plus-flat", "gradient"] {
        if let Ok(e) = Method::parse(method).and_then(|m| Explainer::new(&model, m)) {
            let _ = e.explain(x.clone(), Target::Top);
        }
    }
});
