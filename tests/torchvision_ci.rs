//! CI-sized torchvision architectures (fixtures/torchvision_ci/, made by benches/coverage.py
//! --reduced): the forward pass matches onnxruntime within 1e-4 (relative to the largest
//! output), compiled and interpreted; epsilon, epsilon-plus-flat and gradient explain each with
//! finite, non-zero relevance, and compiled code agrees with the interpreter.

mod common;

use common::{fixture, npy, relative_error};
use lrpc::onnx::ImportOptions;
use lrpc::relevance::Method;
use lrpc::{Engine, ExplainOptions, Explainer, Model, Target};

const MODELS: &[&str] = &[
    "mobilenet_v3_small",
    "efficientnet_b0",
    "regnet_y_400mf",
    "convnext_tiny",
    "lraspp_mobilenet_v3_large",
];

fn case(model: &str) -> String {
    format!("torchvision_ci/{model}")
}

#[test]
fn forward_matches_onnxruntime() {
    for m in MODELS {
        let model = Model::load(fixture(&case(m), "model.onnx"), &ImportOptions::default())
            .unwrap_or_else(|e| panic!("{m}: {e}"));
        let x = npy(&fixture(&case(m), "input.npy"));
        let want = npy(&fixture(&case(m), "output.npy"));
        let compiled = model.run(x.clone()).unwrap_or_else(|e| panic!("{m}: {e}"));
        let err = relative_error(&compiled[0], &want);
        assert!(err <= 1e-4, "{m}: compiled forward differs by {err:e}");
        let interpreted = model.run_interpreted(x).unwrap();
        let err = relative_error(&interpreted[0], &want);
        assert!(err <= 1e-4, "{m}: interpreted forward differs by {err:e}");
    }
}

#[test]
fn three_methods_explain_every_architecture() {
    for m in MODELS {
        let model = Model::load(fixture(&case(m), "model.onnx"), &ImportOptions::default())
            .unwrap_or_else(|e| panic!("{m}: {e}"));
        let x = npy(&fixture(&case(m), "input.npy"));
        for method in ["epsilon", "epsilon-plus-flat", "gradient"] {
            let run = |engine| {
                let options = ExplainOptions {
                    engine,
                    ..ExplainOptions::default()
                };
                Explainer::with_options(&model, Method::parse(method).unwrap(), options)
                    .unwrap_or_else(|e| panic!("{m} {method}: {e}"))
                    .explain(x.clone(), Target::Top)
                    .unwrap_or_else(|e| panic!("{m} {method}: {e}"))
                    .relevance
            };
            let compiled = run(Engine::Compiled);
            let r = compiled.f32s().unwrap();
            assert!(
                r.iter().all(|v| v.is_finite()),
                "{m} {method}: non-finite relevance"
            );
            assert!(
                r.iter().any(|&v| v != 0.0),
                "{m} {method}: all relevance is zero"
            );
            let interpreted = run(Engine::Interpreter);
            let err = relative_error(&compiled, &interpreted);
            assert!(
                err <= 1e-3,
                "{m} {method}: compiled and interpreted differ by {err:e}"
            );
        }
    }
}
