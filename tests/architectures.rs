//! The classic ImageNet architectures, CI-sized (fixtures/arch.py: reduced width, the original
//! blocks), in old and new ONNX forms. One test per architecture: forward equals onnxruntime to
//! 1e-4, and every method explains with finite, non-zero relevance; epsilon conserves the logit on
//! the bias-free variants.

mod common;

use common::{assert_close, fixture, npy};
use lrpc::ir::Tensor;
use lrpc::onnx::ImportOptions;
use lrpc::relevance::{METHOD_NAMES, Method};
use lrpc::{Explainer, Model, Target};

fn load(name: &str) -> Model {
    let path = fixture(&format!("arch/{name}"), "model.onnx");
    Model::load(path, &ImportOptions::default()).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn input(name: &str) -> Tensor {
    npy(&fixture(&format!("arch/{name}"), "input.npy"))
}

fn check(name: &str) {
    let model = load(name);
    let out = model
        .run(input(name))
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let reference = npy(&fixture(&format!("arch/{name}"), "output.npy"));
    assert_close(&out[0], &reference, 1e-4, name);
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

macro_rules! architectures {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                check(stringify!($name));
            }
        )*
    };
}

architectures!(
    alexnet,
    alexnet_opset7,
    zfnet,
    vgg,
    vgg_nobias,
    resnet,
    resnet_nobias,
    densenet,
    googlenet,
    inception_v2,
    squeezenet,
    shufflenet,
    mobilenet_v2,
    mobilenet_v2_opset8,
);

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

#[test]
fn batchnorm_written_as_mul_add_is_folded_into_the_convs() {
    // inception_v2 stores its 69 BatchNorms as Mul/Add with Unsqueeze'd constants.
    let model = load("inception_v2");
    let left: Vec<&str> = model
        .graph()
        .nodes
        .node_weights()
        .map(|n| n.op.name())
        .filter(|op| ["Mul", "Add", "BatchNormalization", "Unsqueeze"].contains(op))
        .collect();
    assert!(left.is_empty(), "not folded: {left:?}");
}
