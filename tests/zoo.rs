//! torchvision VGG16 and ResNet-50 (random weights, opset 17) against onnxruntime. The models are
//! too large to commit; `fixtures/zoo.py` makes them (see README.md). When absent the test says so
//! and passes, because CI has no PyTorch.

mod common;

use common::{assert_close, fixture, npy};
use lrpc::Model;
use lrpc::onnx::ImportOptions;

fn check(name: &str) {
    let case = format!("zoo/{name}");
    let path = fixture(&case, "model.onnx");
    if !path.exists() {
        eprintln!(
            "skipped: {} is absent; make it with `python fixtures/zoo.py` (see README.md)",
            path.display()
        );
        return;
    }
    let model = Model::load(&path, &ImportOptions::default()).unwrap();
    let out = model.run(npy(&fixture(&case, "input.npy"))).unwrap();
    assert_close(&out[0], &npy(&fixture(&case, "output.npy")), 1e-4, name);
}

#[test]
fn vgg16_matches_onnxruntime() {
    check("vgg16");
}

#[test]
fn resnet50_matches_onnxruntime() {
    check("resnet50");
}
