//! ONNX LSTM, GRU and RNN (fixtures/rnn, made by fixtures/rnn_sweep.py: a seeded sweep over
//! direction, layout, sequence_lens, initial states, peepholes, clip, linear_before_reset, with
//! some operands as graph inputs): every output the case uses matches onnxruntime (or the onnx
//! reference implementation where onnxruntime lacks the form) within 1e-5 relative, on the
//! interpreter and compiled code; with Arras et al.'s rule and bias factor 1, the relevance of X
//! plus the relevance left on the initial states is the explained output, for every case;
//! fixtures/rnn_bad's activation lists are refused by name.

mod common;

use std::collections::BTreeMap;

use common::{assert_close, npy, root};
use lrpc::onnx::ImportOptions;
use lrpc::relevance::{Method, STATE_OP};
use lrpc::{Engine, ExplainOptions, Explainer, Model, Target};

fn meta(path: &std::path::Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

#[test]
fn recurrent_ops_match_onnxruntime_on_the_sweep() {
    let dir = root().join("fixtures/rnn");
    let cases = meta(&dir.join("cases.json"));
    let cases = cases["cases"].as_object().expect("cases");
    assert!(cases.len() >= 30, "{} cases", cases.len());
    let mut ops = BTreeMap::new();
    for (name, _) in cases {
        let case = dir.join(name);
        let m = meta(&case.join("meta.json"));
        let inputs = m["graph_inputs"].as_object().unwrap();
        let load = |k: &str| npy(&case.join(inputs[k]["file"].as_str().unwrap()));
        let x = load("X");
        let options = ImportOptions {
            input_shape: Some(x.shape().to_vec()),
            explain_input: Some("X".into()),
            input_shapes: inputs
                .iter()
                .filter(|(k, _)| *k != "X")
                .map(|(k, _)| (k.clone(), load(k).shape().to_vec()))
                .collect(),
            ..ImportOptions::default()
        };
        let model = Model::load(case.join("model.onnx"), &options)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let others: Vec<(String, lrpc::ir::Tensor)> = inputs
            .keys()
            .filter(|k| *k != "X")
            .map(|k| (k.clone(), load(k)))
            .collect();
        let others: Vec<(&str, lrpc::ir::Tensor)> = others
            .iter()
            .map(|(k, t)| (k.as_str(), t.clone()))
            .collect();
        for engine in [Engine::Interpreter, Engine::Compiled] {
            let f = model
                .forward(engine, 1)
                .unwrap_or_else(|e| panic!("{name} {engine:?}: {e}"));
            let got = model
                .run_forward_with(&f, x.clone(), &others)
                .unwrap_or_else(|e| panic!("{name} {engine:?}: {e}"));
            let outputs = m["graph_outputs"].as_object().unwrap();
            assert_eq!(got.len(), outputs.len(), "{name}: outputs");
            // The model's outputs, in its order (the JSON object is sorted by name).
            for (k, o) in model.graph().outputs.iter().enumerate() {
                let out = &o.name;
                let spec = &outputs[out.as_str()];
                let want = npy(&case.join(spec["file"].as_str().unwrap()));
                let g = got[k].clone();
                let g = if g.shape() == want.shape() {
                    g
                } else {
                    panic!("{name} {out}: shape {:?} != {:?}", g.shape(), want.shape())
                };
                assert_close(&g, &want, 1e-5, &format!("{name} {engine:?} {out}"));
            }
        }
        // Conservation: every rule of the cell conserves at bias factor 1.
        let mut method = Method::parse("epsilon").unwrap();
        method.params.epsilon = 1e-3;
        method.params.bias_factor = 1.0;
        for engine in [Engine::Interpreter, Engine::Compiled] {
            let options = ExplainOptions {
                engine,
                ..ExplainOptions::default()
            };
            let e = Explainer::with_options(&model, method.clone(), options)
                .unwrap_or_else(|err| panic!("{name} {engine:?}: {err}"));
            let got = e
                .explain_with(x.clone(), &others, Target::Top)
                .unwrap_or_else(|err| panic!("{name} {engine:?}: {err}"));
            let inputs: f32 = got.relevance.f32s().unwrap().iter().sum();
            let states: f32 = got
                .layers
                .iter()
                .filter(|l| l.op == STATE_OP)
                .map(|l| l.relevance_sum)
                .sum();
            let want: f32 = got.target_logits.iter().sum();
            assert!(
                (inputs + states - want).abs() <= 1e-4 * want.abs().max(1e-3),
                "{name} {engine:?}: X {inputs} + states {states} != explained {want}"
            );
        }
        *ops.entry(m["op"].as_str().unwrap_or("?").to_string())
            .or_insert(0) += 1;
    }
    println!("recurrent sweep: {ops:?}");
}

#[test]
fn other_activation_lists_are_refused_by_name() {
    let dir = root().join("fixtures/rnn_bad");
    let m = meta(&dir.join("meta.json"));
    for (name, case) in m["models"].as_object().unwrap() {
        let err = Model::load(
            dir.join(case["file"].as_str().unwrap()),
            &ImportOptions::default(),
        )
        .err()
        .unwrap_or_else(|| panic!("{name}: accepted"))
        .to_string();
        let op = case["op"].as_str().unwrap();
        let first = case["attributes"]["activations"][0].as_str().unwrap();
        assert!(err.contains(op), "{name}: {err}");
        assert!(err.contains("activation"), "{name}: {err}");
        // The first non-default name in the list is the one named.
        let named = case["attributes"]["activations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| err.contains(&format!("'{}'", a.as_str().unwrap())));
        assert!(named, "{name} ({first}...): {err}");
        assert_eq!(err.lines().count(), 1, "{name}: {err}");
    }
}

#[test]
fn sequence_lens_beyond_the_sequence_is_refused() {
    let case = root().join("fixtures/rnn/rnn_lens_inputs");
    let x = npy(&case.join("in_X.npy"));
    let model = Model::load(
        case.join("model.onnx"),
        &ImportOptions {
            input_shape: Some(x.shape().to_vec()),
            explain_input: Some("X".into()),
            ..ImportOptions::default()
        },
    )
    .unwrap();
    let lens = npy(&case.join("in_sequence_lens.npy"));
    let mut v = lens.i64s().unwrap().to_vec();
    v[1] = x.shape()[0] as i64 + 1;
    let bad = lrpc::ir::Tensor::from_i64(lens.shape().to_vec(), v).unwrap();
    let f = model.forward(Engine::Compiled, 1).unwrap();
    let err = model
        .run_forward_with(&f, x, &[("sequence_lens", bad)])
        .expect_err("sequence_lens past the sequence")
        .to_string();
    assert!(
        err.contains("sequence_lens") && err.contains("at most 5"),
        "{err}"
    );
}
