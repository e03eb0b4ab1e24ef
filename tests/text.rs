//! Text models on token ids (fixtures/text_cnn, fixtures/text_lstm (the ONNX LSTM op),
//! fixtures/text_lstm_unrolled, made by
//! fixtures/text.py and fixtures/lstm_ref.py): relevance and gradients stop at the embedding
//! vectors and match the float64 numpy references (Arras et al.'s rule for the LSTM) per
//! embedding element and per token, on both engines; bad token ids are refused.

mod common;

use common::{assert_close, fixture, npy};
use lrpc::ir::Tensor;
use lrpc::onnx::ImportOptions;
use lrpc::relevance::Method;
use lrpc::{Engine, ExplainOptions, Explainer, Model, Target};

/// The reference files' targets: each row's label.
const TARGETS: [usize; 3] = [0, 0, 1];

fn explainer(case: &str, method: &str, bias_factor: f32, engine: Engine) -> Explainer {
    let options = ImportOptions {
        batch: Some(TARGETS.len()),
        ..ImportOptions::default()
    };
    let model = Model::load(fixture(case, "model.onnx"), &options)
        .unwrap_or_else(|e| panic!("{case}: {e}"));
    let mut m = Method::parse(method).unwrap();
    m.params.epsilon = 1e-3;
    m.params.bias_factor = bias_factor;
    let options = ExplainOptions {
        engine,
        ..ExplainOptions::default()
    };
    Explainer::with_options(&model, m, options).unwrap_or_else(|e| panic!("{case} {method}: {e}"))
}

/// Rows `rows` of a (batch, ...) tensor.
fn rows(t: &Tensor, rows: &[usize]) -> Tensor {
    let per: usize = t.shape()[1..].iter().product();
    let v = t.f32s().unwrap();
    let data = rows
        .iter()
        .flat_map(|&r| v[r * per..(r + 1) * per].iter().copied())
        .collect();
    let mut shape = t.shape().to_vec();
    shape[0] = rows.len();
    Tensor::from_f32(shape, data).unwrap()
}

/// Sums the last axis: per-token relevance from per-element relevance.
fn per_token(t: &Tensor) -> Tensor {
    let dim = *t.shape().last().unwrap();
    let v = t.f32s().unwrap();
    let sums = v.chunks(dim).map(|c| c.iter().sum()).collect();
    Tensor::from_f32(t.shape()[..t.shape().len() - 1].to_vec(), sums).unwrap()
}

/// Explains the fixture's rows for each row's reference target and checks both outputs.
fn check(case: &str, method: &str, reference: &str, bias_factor: f32) {
    let x = npy(&fixture(case, "input.npy"));
    let want_embedding = npy(&fixture(case, &format!("ref_{reference}_embedding.npy")));
    let want_tokens = npy(&fixture(case, &format!("ref_{reference}_tokens.npy")));
    for engine in [Engine::Interpreter, Engine::Compiled] {
        let e = explainer(case, method, bias_factor, engine);
        for target in [0, 1] {
            let picked: Vec<usize> = (0..TARGETS.len())
                .filter(|&r| TARGETS[r] == target)
                .collect();
            let got = e
                .explain(x.clone(), Target::Index(target))
                .unwrap_or_else(|err| panic!("{case} {method}: {err}"))
                .relevance;
            assert_eq!(
                got.shape(),
                want_embedding.shape(),
                "{case}: relevance shape"
            );
            let what =
                format!("{case} {method} (bias factor {bias_factor}) {engine:?} rows {picked:?}");
            assert_close(
                &rows(&got, &picked),
                &rows(&want_embedding, &picked),
                1e-4,
                &format!("{what}: embedding"),
            );
            assert_close(
                &per_token(&rows(&got, &picked)),
                &rows(&want_tokens, &picked),
                1e-4,
                &format!("{what}: tokens"),
            );
        }
    }
}

#[test]
fn word_cnn_matches_the_references() {
    check("text_cnn", "epsilon", "epsilon_bf0", 0.0);
    check("text_cnn", "epsilon", "epsilon_bf1", 1.0);
    check("text_cnn", "gradient", "gradient", 0.0);
    check("text_cnn", "gradient-x-input", "gradient_x_input", 0.0);
}

#[test]
fn unrolled_bilstm_gradients_match_torch() {
    check("text_lstm_unrolled", "gradient", "gradient", 0.0);
    check(
        "text_lstm_unrolled",
        "gradient-x-input",
        "gradient_x_input",
        0.0,
    );
}

#[test]
fn unrolled_bilstm_epsilon_matches_arras_rule() {
    check("text_lstm_unrolled", "epsilon", "epsilon_bf0", 0.0);
}

/// The same network exported as one ONNX LSTM op (imported unrolled by lrpc).
#[test]
fn lstm_op_bilstm_matches_the_references() {
    check("text_lstm", "epsilon", "epsilon_bf0", 0.0);
    check("text_lstm", "gradient", "gradient", 0.0);
    check("text_lstm", "gradient-x-input", "gradient_x_input", 0.0);
}

#[test]
fn bad_token_ids_are_refused() {
    let x = npy(&fixture("text_cnn", "input.npy"));
    let ids = x.i64s().unwrap().to_vec();
    for engine in [Engine::Interpreter, Engine::Compiled] {
        let e = explainer("text_cnn", "epsilon", 0.0, engine);
        for (bad, says) in [(5000, "5000"), (-2, "non-negative")] {
            let mut v = ids.clone();
            v[3] = bad;
            let t = Tensor::from_i64(x.shape().to_vec(), v).unwrap();
            let err = e
                .explain(t, Target::Top)
                .expect_err("a bad token id must be refused")
                .to_string();
            assert!(err.contains(says), "{engine:?}, id {bad}: {err}");
        }
        // Float data for an id input is refused too.
        let f = Tensor::from_f32(x.shape().to_vec(), vec![1.0; ids.len()]).unwrap();
        let err = e
            .explain(f, Target::Top)
            .expect_err("float ids")
            .to_string();
        assert!(err.contains("integers for ids"), "{engine:?}: {err}");
    }
}

#[test]
fn token_explainers_round_trip_through_artifacts() {
    let dir = tempfile::tempdir().unwrap();
    for (case, bias_factor) in [("text_cnn", 1.0), ("text_lstm_unrolled", 0.0)] {
        let x = npy(&fixture(case, "input.npy"));
        let e = explainer(case, "epsilon", bias_factor, Engine::Compiled);
        let path = dir.path().join(format!("{case}.lrpx"));
        e.save(&path).unwrap_or_else(|err| panic!("{case}: {err}"));
        let loaded = Explainer::load(&path).unwrap_or_else(|err| panic!("{case}: {err}"));
        let (want, got) = (
            e.explain(x.clone(), Target::Index(0)).unwrap(),
            loaded.explain(x, Target::Index(0)).unwrap(),
        );
        assert_eq!(got.relevance.shape(), want.relevance.shape(), "{case}");
        let bits =
            |t: &Tensor| -> Vec<u32> { t.f32s().unwrap().iter().map(|v| v.to_bits()).collect() };
        assert_eq!(
            bits(&got.relevance),
            bits(&want.relevance),
            "{case}: artifact relevance"
        );
    }
}

#[test]
fn bilstm_bias_factor_one_matches_and_conserves_with_the_initial_states() {
    for case in ["text_lstm", "text_lstm_unrolled"] {
        check(case, "epsilon", "epsilon_bf1", 1.0);
        // One row at a time: the states' totals are per explanation.
        let x = npy(&fixture(case, "input.npy"));
        let initial = npy(&fixture(case, "ref_epsilon_bf1_initial.npy"));
        let (dims, init) = (initial.shape().to_vec(), initial.f32s().unwrap().to_vec());
        let per_row: usize = dims[1..].iter().product();
        let model = Model::load(fixture(case, "model.onnx"), &ImportOptions::default()).unwrap();
        let mut m = Method::parse("epsilon").unwrap();
        m.params.epsilon = 1e-3;
        m.params.bias_factor = 1.0;
        let e = Explainer::new(&model, m).unwrap();
        for (row, &target) in TARGETS.iter().enumerate() {
            let ids = x.i64s().unwrap()[row * 16..(row + 1) * 16].to_vec();
            let got = e
                .explain(
                    Tensor::from_i64(vec![1, 16], ids).unwrap(),
                    Target::Index(target),
                )
                .unwrap();
            let states: Vec<(String, f32)> = got
                .layers
                .iter()
                .filter(|l| l.op == lrpc::relevance::STATE_OP)
                .map(|l| (l.name.clone(), l.relevance_sum))
                .collect();
            assert_eq!(
                states.len(),
                4,
                "{case}: h and c of two directions: {states:?}"
            );
            let left: f32 = states.iter().map(|s| s.1).sum();
            let want_left: f32 = init[row * per_row..(row + 1) * per_row].iter().sum();
            let tokens: f32 = got.relevance.f32s().unwrap().iter().sum();
            let logit = got.target_logits[0];
            assert!(
                ((tokens + left - logit) / logit).abs() <= 1e-4,
                "{case} row {row}: tokens {tokens} + states {left} != logit {logit}"
            );
            assert!(
                (left - want_left).abs() <= 1e-4 * logit.abs(),
                "{case} row {row}: states {left} != reference {want_left}"
            );
            if case == "text_lstm" {
                // (direction, state) blocks of d values, named d{k}.h_init / d{k}.c_init.
                for (k, (dir, state)) in [(0, "h"), (0, "c"), (1, "h"), (1, "c")].iter().enumerate()
                {
                    let name = format!("d{dir}.{state}_init");
                    let (_, v) = states
                        .iter()
                        .find(|s| s.0.ends_with(&name))
                        .unwrap_or_else(|| panic!("{case}: no state {name} in {states:?}"));
                    let d = dims[3];
                    let want: f32 = init[row * per_row + k * d..][..d].iter().sum();
                    assert!(
                        (v - want).abs() <= 1e-4 * logit.abs(),
                        "{case} row {row} {name}: {v} != {want}"
                    );
                }
            }
        }
    }
}
