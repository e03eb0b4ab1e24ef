//! The reference interpreter's forward pass against onnxruntime's outputs on every fixture, and
//! batch > 1 against batch-1 runs.

mod common;

use common::{assert_close, fixture, npy};
use lrpc::Model;
use lrpc::ir::Tensor;
use lrpc::onnx::ImportOptions;

const CASES: &[&str] = &[
    "mlp", "lenet", "residual", "concat", "textcnn", "oldopset", "newopset",
];

fn load(case: &str, batch: Option<usize>) -> Model {
    let options = ImportOptions {
        batch,
        ..ImportOptions::default()
    };
    Model::load(fixture(case, "model.onnx"), &options).unwrap_or_else(|e| panic!("{case}: {e}"))
}

#[test]
fn interpreter_matches_onnxruntime_on_every_fixture() {
    for case in CASES {
        let model = load(case, None);
        let out = model.run(npy(&fixture(case, "input.npy"))).unwrap();
        assert_eq!(out.len(), 1, "{case}: one output");
        assert_close(&out[0], &npy(&fixture(case, "output.npy")), 1e-5, case);
    }
}

#[test]
fn batch_of_three_equals_three_single_runs() {
    // Cases exported with a symbolic batch axis.
    for case in ["mlp", "lenet", "residual", "textcnn"] {
        let x = npy(&fixture(case, "input.npy"));
        let samples: Vec<Tensor> = [1.0f32, -0.5, 2.0]
            .iter()
            .map(|s| {
                Tensor::from_f32(
                    x.shape().to_vec(),
                    x.f32s().unwrap().iter().map(|v| v * s).collect(),
                )
                .unwrap()
            })
            .collect();
        let mut shape = x.shape().to_vec();
        shape[0] = 3;
        let stacked: Vec<f32> = samples
            .iter()
            .flat_map(|t| t.f32s().unwrap().to_vec())
            .collect();
        let batched = load(case, Some(3))
            .run(Tensor::from_f32(shape, stacked).unwrap())
            .unwrap();
        let single = load(case, None);
        let per = batched[0].len() / 3;
        for (i, s) in samples.into_iter().enumerate() {
            let one = single.run(s).unwrap();
            let part = Tensor::from_f32(
                one[0].shape().to_vec(),
                batched[0].f32s().unwrap()[i * per..][..per].to_vec(),
            )
            .unwrap();
            assert_close(&part, &one[0], 1e-6, &format!("{case} sample {i}"));
        }
    }
}

#[test]
fn input_without_batch_axis_is_accepted() {
    let x = npy(&fixture("lenet", "input.npy"));
    let unbatched = x.clone().reshape(x.shape()[1..].to_vec()).unwrap();
    let model = load("lenet", None);
    assert_eq!(model.run(unbatched).unwrap(), model.run(x).unwrap());
}

#[test]
fn batchnorm_is_folded_and_identity_removed() {
    for case in ["lenet", "oldopset"] {
        let model = load(case, None);
        let ops: Vec<&str> = model
            .graph()
            .nodes
            .node_weights()
            .map(|n| n.op.name())
            .collect();
        assert!(
            !ops.contains(&"BatchNormalization"),
            "{case}: BN left in {ops:?}"
        );
        assert!(
            !ops.contains(&"Identity"),
            "{case}: Identity left in {ops:?}"
        );
        // Shape arithmetic (Shape/Gather/...) is folded away.
        assert!(
            !ops.iter()
                .any(|o| ["Shape", "Gather", "Cast", "ConstantOfShape"].contains(o)),
            "{case}: {ops:?}"
        );
    }
}

#[test]
fn trailing_softmax_is_marked() {
    let model = load("mlp", None);
    let out = &model.graph().outputs[0];
    let logits = out.logits.expect("mlp ends in Softmax");
    assert_eq!(model.graph().node(logits).op.name(), "Gemm");
}
