//! Einsum, lowered at import to Transpose/Reshape/ReduceSum/MatMul/Mul: every case of
//! fixtures/einsum (made by fixtures/einsum.py, numpy.einsum checked against onnxruntime) runs
//! right, interpreted and compiled, with every operand fed and with the operands after the
//! first fixed as constants; and an Einsum with a constant weight is a linear layer that the
//! epsilon rule explains with conservation, whichever side the weight is written on.

mod common;

use common::{assert_close, npy, root};
use lrpc::ir::Tensor;
use lrpc::onnx::ImportOptions;
use lrpc::relevance::Method;
use lrpc::{Engine, ExplainOptions, Explainer, Model, Target};

struct Case {
    name: String,
    dir: std::path::PathBuf,
    inputs: Vec<Tensor>,
    want: Tensor,
}

fn cases() -> Vec<Case> {
    let base = root().join("fixtures/einsum");
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(base.join("cases.json")).expect("cases.json"))
            .expect("cases.json parses");
    let cases = index["cases"].as_array().expect("cases");
    assert!(
        cases.len() >= 10,
        "fixtures/einsum has {} cases",
        cases.len()
    );
    cases
        .iter()
        .map(|c| {
            let name = c["case"].as_str().expect("case").to_string();
            let dir = base.join(&name);
            let n = c["shapes"].as_array().map_or(0, Vec::len);
            let inputs = (0..n)
                .map(|i| npy(&dir.join(format!("in_{i}.npy"))))
                .collect();
            let want = npy(&dir.join("out_0.npy"));
            Case {
                name,
                dir,
                inputs,
                want,
            }
        })
        .collect()
}

fn constants(case: &Case) -> ImportOptions {
    ImportOptions {
        constants: (1..case.inputs.len())
            .map(|i| (format!("x{i}"), case.inputs[i].clone()))
            .collect(),
        ..ImportOptions::default()
    }
}

#[test]
fn every_equation_matches_numpy_interpreted_and_compiled() {
    for case in cases() {
        let what = &case.name;
        let path = case.dir.join("model.onnx");
        let model =
            Model::load(&path, &ImportOptions::default()).unwrap_or_else(|e| panic!("{what}: {e}"));
        let got = model
            .run_feeds_interpreted(&case.inputs)
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_close(&got[0], &case.want, 1e-5, &format!("{what} interpreted"));
        let forward = model
            .forward(Engine::Compiled, 1)
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        let others: Vec<(String, Tensor)> = (1..case.inputs.len())
            .map(|i| (format!("x{i}"), case.inputs[i].clone()))
            .collect();
        let others: Vec<(&str, Tensor)> = others
            .iter()
            .map(|(n, t)| (n.as_str(), t.clone()))
            .collect();
        let got = model
            .run_forward_with(&forward, case.inputs[0].clone(), &others)
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_close(&got[0], &case.want, 1e-5, &format!("{what} compiled"));

        let fixed = Model::load(&path, &constants(&case)).unwrap_or_else(|e| panic!("{what}: {e}"));
        let got = fixed
            .run_feeds_interpreted(&case.inputs[..1])
            .unwrap_or_else(|e| panic!("{what} constants: {e}"));
        assert_close(&got[0], &case.want, 1e-5, &format!("{what} constants"));
    }
}

#[test]
fn a_weighted_einsum_is_a_linear_layer_that_conserves_relevance() {
    let all = cases();
    // (case, the operand explained; the other is the weight, fixed as a constant)
    for (name, explained) in [("weight_right", 0), ("weight_left", 1)] {
        let case = all.iter().find(|c| c.name == name).expect(name);
        let weight = 1 - explained;
        let options = ImportOptions {
            constants: [(format!("x{weight}"), case.inputs[weight].clone())].into(),
            ..ImportOptions::default()
        };
        let model = Model::load(case.dir.join("model.onnx"), &options)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        for engine in [Engine::Interpreter, Engine::Compiled] {
            let opts = ExplainOptions {
                engine,
                ..ExplainOptions::default()
            };
            let e = Explainer::with_options(&model, Method::parse("epsilon").unwrap(), opts)
                .unwrap_or_else(|e| panic!("{name}: {e}"))
                .explain(case.inputs[explained].clone(), Target::Top)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let total: f32 = e.relevance.f32s().unwrap().iter().sum();
            let score = e.target_logits[0];
            assert!(
                (total - score).abs() <= 1e-4 * score.abs().max(1.0),
                "{name} {engine:?}: relevance sums to {total}, the score is {score}"
            );
            let want = case.want.f32s().unwrap();
            let top = want.iter().fold(f32::MIN, |m, &v| m.max(v));
            assert!(
                (score - top).abs() <= 1e-5 * top.abs().max(1.0),
                "{name}: top score"
            );
        }
    }
}
