//! The fuzz targets' steps, shared with the seed replay in lrpc's tests (tests/fuzz_seeds.rs
//! includes this file), so CI runs exactly what the fuzzer runs.

use std::path::Path;

use lrpc::runtime::artifact::{Artifact, CodeSource, testing};
use lrpc::{Explainer, LoadOptions};

/// The `artifact` target: load `data` as it is, then resealed; explain a sample when it loads.
pub fn artifact(data: &[u8]) {
    let name = Path::new("fuzz.lrpx");
    let _ = Artifact::from_vec(data, name);
    let Some(resealed) = testing::rewrite(data, |_| {}) else {
        return;
    };
    let Ok(a) = Artifact::from_vec(&resealed, name) else {
        return;
    };
    let _ = a.summary();
    let options = LoadOptions {
        threads: 1,
        code: CodeSource::Recompile,
        profile: false,
        max_arena_bytes: 64 << 20,
    };
    let Ok(e) = Explainer::from_artifact(&a, options) else {
        return;
    };
    let spec = e.spec();
    let n = spec.input_len();
    let small = |shape: &[usize]| shape.iter().product::<usize>() <= 1 << 16;
    if n > 0 && spec.inputs.iter().all(|i| small(&i.shape)) {
        let x: Vec<f32> = (0..n).map(|i| (i % 7) as f32 * 0.25 - 0.75).collect();
        // Zeros for every other input, one sample of each.
        let others: Vec<(&str, lrpc::ir::Tensor)> = spec
            .inputs
            .iter()
            .enumerate()
            .filter(|&(k, _)| k != spec.explained)
            .map(|(_, i)| {
                let mut shape = i.shape.clone();
                if let Some(b) = shape.first_mut() {
                    *b = 1;
                }
                (i.name.as_str(), lrpc::ir::Tensor::zeros(i.dtype, shape))
            })
            .collect();
        let _ = e.explain_samples_with(&x, 1, &others, &[]);
        let _ = e.explain_samples_with(&x, 1, &others, &[Some(0)]);
    }
}
