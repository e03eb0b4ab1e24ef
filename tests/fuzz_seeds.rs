//! Replays the fuzzers' seed corpus (fuzz/seeds/import: the fixtures and the hostile models) and
//! every saved finding (fuzz/regressions/) through the same steps as the fuzz targets
//! (fuzz/fuzz_targets/): each must load or fail with an error, never panic.

mod common;

use lrpc::ir::Tensor;
use lrpc::onnx::ImportOptions;
use lrpc::relevance::Method;
use lrpc::{Explainer, Model, Target};

/// The `explain` fuzz target's steps: small models run forward and three methods.
fn run_small(path: &str) {
    let options = ImportOptions {
        max_elements: 1 << 12,
        ..ImportOptions::default()
    };
    let Ok(model) = Model::load(path, &options) else {
        return;
    };
    let shape = model.input_shape().to_vec();
    let n: usize = shape.iter().product();
    let x = Tensor::from_f32(
        shape,
        (0..n).map(|i| (i % 7) as f32 * 0.25 - 0.75).collect(),
    )
    .unwrap();
    let _ = model.run(x.clone());
    for method in ["epsilon-gamma-box", "epsilon-plus-flat", "gradient"] {
        if let Ok(e) = Method::parse(method).and_then(|m| Explainer::new(&model, m)) {
            let _ = e.explain(x.clone(), Target::Top);
        }
    }
}

#[test]
fn corpus_replays_without_panics() {
    let mut files = vec![];
    for dir in [
        "fuzz/seeds/import",
        "fuzz/regressions/import",
        "fuzz/regressions/explain",
    ] {
        let Ok(entries) = std::fs::read_dir(common::root().join(dir)) else {
            continue;
        };
        files.extend(entries.filter_map(|e| Some(e.ok()?.path())));
    }
    files.sort();
    assert!(files.len() >= 19, "the seed corpus is missing: {files:?}");
    let (mut loaded, mut refused) = (0, 0);
    for path in &files {
        let bytes = std::fs::read(path).unwrap();
        let options = ImportOptions {
            max_elements: 1 << 16,
            ..ImportOptions::default()
        };
        match Model::from_bytes(bytes, "fuzz.onnx", &options) {
            Ok(model) => {
                loaded += 1;
                let _ = Method::parse("epsilon-gamma-box").and_then(|m| Explainer::new(&model, m));
                run_small(path.to_str().unwrap_or_default());
            }
            Err(_) => refused += 1,
        }
    }
    // The fixtures load and the hostile models are refused.
    assert!(
        loaded >= 8 && refused >= 11,
        "{loaded} loaded, {refused} refused"
    );
}

/// The `artifact` fuzz target's steps (fuzz/src/lib.rs), shared so CI runs what the fuzzer runs.
#[path = "../fuzz/src/lib.rs"]
mod fuzz_steps;

#[test]
fn artifact_corpus_replays_without_panics() {
    let mut files: Vec<std::path::PathBuf> = ["fuzz/seeds/artifact", "fuzz/regressions/artifact"]
        .iter()
        .filter_map(|d| std::fs::read_dir(common::root().join(d)).ok())
        .flat_map(|entries| entries.filter_map(|e| Some(e.ok()?.path())))
        .collect();
    files.sort();
    assert!(
        files.len() >= 5,
        "the artifact seeds are missing: {files:?}"
    );
    // Also artifacts made now, so the replay exercises this build's format even before the
    // seeds are regenerated.
    let dir = tempfile::tempdir().unwrap();
    for (case, method) in [
        ("lenet", "epsilon-gamma-box"),
        ("concat", "integrated-gradients"),
    ] {
        let model = Model::load(
            common::fixture(case, "model.onnx"),
            &ImportOptions::default(),
        )
        .unwrap();
        let e = Explainer::new(&model, Method::parse(method).unwrap()).unwrap();
        let path = dir.path().join(format!("{case}.lrpx"));
        e.save(&path).unwrap();
        files.push(path);
    }
    for path in &files {
        let bytes = std::fs::read(path).unwrap();
        fuzz_steps::artifact(&bytes);
        // Deterministic mutations: one flipped byte at 200 spread positions, then the steps
        // (which reseal the checksums) on each.
        let step = (bytes.len() / 200).max(1);
        for (k, at) in (0..bytes.len()).step_by(step).enumerate() {
            let mut b = bytes.clone();
            b[at] ^= 1 << (k % 8);
            fuzz_steps::artifact(&b);
        }
    }
}
