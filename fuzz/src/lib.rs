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
    let n = e.spec().input_len();
    if n > 0 && n <= 1 << 16 {
        let x: Vec<f32> = (0..n).map(|i| (i % 7) as f32 * 0.25 - 0.75).collect();
        let _ = e.explain_samples(&x, 1, &[]);
        let _ = e.explain_samples(&x, 1, &[Some(0)]);
    }
}
