//! Replays the fuzzer's seed corpus (fuzz/seeds/import: the fixtures and the hostile models) and
//! every saved finding (fuzz/regressions/import) through the same steps as the fuzz target
//! (fuzz/fuzz_targets/import.rs): each must load or fail with an error, never panic.

mod common;

use lrpc::onnx::ImportOptions;
use lrpc::relevance::Method;
use lrpc::{Explainer, Model};

#[test]
fn corpus_replays_without_panics() {
    let mut files = vec![];
    for dir in ["fuzz/seeds/import", "fuzz/regressions/import"] {
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
