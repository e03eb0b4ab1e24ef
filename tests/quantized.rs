//! Quantised models as onnxruntime's tools write them (fixtures/quantized, made by
//! fixtures/quantized.py): the QDQ model runs as its fake quantisation, matching onnxruntime;
//! the dynamically quantised one runs and explains as the float network with dequantised
//! weights (model_dequantised.onnx), and says so in the graph's notes.

mod common;

use common::{assert_close, npy, root};
use lrpc::ir::Tensor;
use lrpc::onnx::ImportOptions;
use lrpc::relevance::Method;
use lrpc::{Engine, ExplainOptions, Explainer, Model, Target};

fn path(name: &str) -> std::path::PathBuf {
    root().join("fixtures/quantized").join(name)
}

fn load(model: &str) -> Model {
    Model::load(
        path(&format!("model_{model}.onnx")),
        &ImportOptions::default(),
    )
    .unwrap_or_else(|e| panic!("{model}: {e}"))
}

fn forward(model: &Model, engine: Engine) -> Tensor {
    let x = npy(&path("input.npy"));
    let f = model.forward(engine, 1).unwrap();
    model.run_forward_with(&f, x, &[]).unwrap().remove(0)
}

fn explain(model: &Model, method: &str, engine: Engine) -> Tensor {
    let options = ExplainOptions {
        engine,
        ..ExplainOptions::default()
    };
    Explainer::with_options(model, Method::parse(method).unwrap(), options)
        .unwrap_or_else(|e| panic!("{method}: {e}"))
        .explain(npy(&path("input.npy")), Target::Top)
        .unwrap_or_else(|e| panic!("{method}: {e}"))
        .relevance
}

#[test]
fn qdq_pairs_run_as_fake_quantisation() {
    let m = load("qdq");
    let want = npy(&path("out_qdq.npy"));
    for engine in [Engine::Interpreter, Engine::Compiled] {
        assert_close(
            &forward(&m, engine),
            &want,
            1e-4,
            &format!("qdq {engine:?}"),
        );
    }
    // Not the float network's answer: the quantisation is really there.
    let float = npy(&path("out_float.npy"));
    let got = forward(&m, Engine::Interpreter);
    let diff = got
        .f32s()
        .unwrap()
        .iter()
        .zip(float.f32s().unwrap())
        .fold(0f32, |d, (a, b)| d.max((a - b).abs()));
    assert!(diff > 1e-3, "qdq output equals the float one ({diff})");
    for method in ["epsilon", "epsilon-plus-flat", "gradient"] {
        let a = explain(&m, method, Engine::Interpreter);
        let b = explain(&m, method, Engine::Compiled);
        assert_close(&b, &a, 1e-4, &format!("qdq {method} compiled"));
        let v = a.f32s().unwrap();
        assert!(v.iter().all(|x| x.is_finite()), "qdq {method}: not finite");
        // The straight-through rounding keeps the gradient from vanishing.
        assert!(v.iter().any(|&x| x != 0.0), "qdq {method}: all zero");
    }
}

#[test]
fn dynamic_quantisation_is_explained_as_the_dequantised_float_network() {
    let m = load("dynamic");
    let notes = &m.graph().notes;
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(notes[0].contains("DynamicQuantizeLinear"), "{notes:?}");
    let reference = load("dequantised");
    assert!(reference.graph().notes.is_empty());
    let want = npy(&path("out_dequantised.npy"));
    for engine in [Engine::Interpreter, Engine::Compiled] {
        assert_close(
            &forward(&m, engine),
            &want,
            1e-5,
            &format!("dynamic {engine:?}"),
        );
        for method in ["epsilon", "epsilon-gamma-box", "gradient"] {
            assert_close(
                &explain(&m, method, engine),
                &explain(&reference, method, engine),
                1e-4,
                &format!("dynamic {method} {engine:?}"),
            );
        }
    }
}
