//! The classic ImageNet architectures, CI-sized (fixtures/arch.py: reduced width, the original
//! blocks), in old and new ONNX forms: forward equals onnxruntime, every method explains
//! with finite relevance, and epsilon conserves the logit on the bias-free variants.

mod common;

use common::{assert_close, fixture, npy};
use lrpc::onnx::ImportOptions;
use lrpc::relevance::{METHOD_NAMES, Method};
use lrpc::{Explainer, Model, Target};

const ARCHITECTURES: &[&str] = &[
    "alexnet",
    "alexnet_opset7",
    "zfnet",
    "vgg",
    "vgg_nobias",
    "resnet",
    "resnet_nobias",
    "densenet",
    "googlenet",
    "inception_v2",
    "squeezenet",
    "shufflenet",
    "mobilenet_v2",
    "mobilenet_v2_opset8",
];

fn load(name: &str) -> Model {
    let case = format!("arch/{name}");
    Model::load(fixture(&case, "model.onnx"), &ImportOptions::default())
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn input(name: &str) -> lrpc::ir::Tensor {
    npy(&fixture(&format!("arch/{name}"), "input.npy"))
}

#[test]
fn forward_matches_onnxruntime() {
    for name in ARCHITECTURES {
        let out = load(name)
            .run(input(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let reference = npy(&fixture(&format!("arch/{name}"), "output.npy"));
        assert_close(&out[0], &reference, 1e-4, name);
    }
}

#[test]
fn every_method_explains_with_finite_relevance() {
    for name in ARCHITECTURES {
        let model = load(name);
        for method in METHOD_NAMES {
            let explainer = Explainer::new(&model, Method::parse(method).unwrap())
                .unwrap_or_else(|e| panic!("{name} {method}: {e}"));
            let e = explainer
                .explain(input(name), Target::Top)
                .unwrap_or_else(|e| panic!("{name} {method}: {e}"));
            let r = e.relevance.f32s().unwrap();
            assert!(
                r.iter().all(|v| v.is_finite()),
                "{name} {method}: non-finite relevance"
            );
            assert!(
                r.iter().any(|&v| v != 0.0),
                "{name} {method}: all-zero relevance"
            );
        }
    }
}

#[test]
fn epsilon_conserves_on_bias_free_variants() {
    for name in ["vgg_nobias", "resnet_nobias"] {
        let e = Explainer::new(&load(name), Method::parse("epsilon").unwrap())
            .unwrap()
            .explain(input(name), Target::Top)
            .unwrap();
        let sum: f32 = e.relevance.f32s().unwrap().iter().sum();
        let logit = e.target_logits[0];
        let rel = (sum - logit).abs() / logit.abs();
        assert!(
            rel < 1e-4,
            "{name}: relevance sums to {sum}, logit {logit} (relative {rel:e})"
        );
    }
}
