//! `lrpc explain` and `lrpc words` on token ids, end to end: words printed with their
//! relevance, the HTML page of coloured words, the per-token .npy, the words list of a class,
//! the relevance left on the initial states in `--json`, and one-line refusals of bad input.

mod common;

use std::process::Command;

use common::{npy, root};

fn lrpc(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_lrpc"))
        .args(args)
        .current_dir(root())
        .env_clear()
        .output()
        .expect("the lrpc binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const LSTM: &str = "fixtures/text_lstm/model.onnx";
const INPUT: &str = "fixtures/text_lstm/input.npy";
const VOCAB: &str = "fixtures/text/vocab.json";

#[test]
fn explain_prints_words_and_writes_html_and_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("t.html");
    let tokens = dir.path().join("t.npy");
    let (code, out, err) = lrpc(&[
        "explain",
        LSTM,
        "--input",
        INPUT,
        "--method",
        "epsilon",
        "--epsilon",
        "0.001",
        "--vocab",
        VOCAB,
        "--html",
        html.to_str().unwrap(),
        "--output",
        tokens.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    // Not a terminal: plain `word (relevance)`, padding trimmed.
    assert!(out.contains("neither (+"), "{out}");
    assert!(!out.contains("<pad>"), "{out}");
    let page = std::fs::read_to_string(&html).unwrap();
    assert_eq!(
        page.matches("<span").count(),
        5 + 7 + 6,
        "one span per word"
    );
    assert!(
        page.contains("rgb(255,0,0)"),
        "each text's most relevant word is full red"
    );
    assert!(page.contains("&lt;unk&gt;"), "words are escaped");
    let t = npy(&tokens);
    assert_eq!(t.shape(), [3, 16], "per-token relevance");
}

#[test]
fn json_reports_the_relevance_left_on_the_initial_states() {
    let (code, out, err) = lrpc(&[
        "explain",
        LSTM,
        "--input",
        INPUT,
        "--method",
        "epsilon",
        "--epsilon",
        "0.001",
        "--bias-factor",
        "1",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let states = v["left_on_states"].as_array().expect("left_on_states");
    assert_eq!(states.len(), 4, "{out}");
    let left = v["left_on_states_sum"].as_f64().unwrap();
    let logits: f64 = v["target_logits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_f64().unwrap())
        .sum();
    let rel = v["relevance_sum"].as_f64().unwrap();
    assert!(
        ((rel + left - logits) / logits).abs() < 1e-4,
        "tokens {rel} + states {left} != logits {logits}"
    );
}

#[test]
fn words_lists_the_most_relevant_words_of_a_class() {
    let (code, out, err) = lrpc(&[
        "words",
        LSTM,
        "--data",
        "fixtures/text/test_ids.npy",
        "--labels",
        "fixtures/text/test_labels.npy",
        "--vocab",
        VOCAB,
        "--class",
        "1",
        "--top",
        "5",
        "--epsilon",
        "0.001",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let words = v["words"].as_array().unwrap();
    assert_eq!(words.len(), 5);
    let labels = npy(&root().join("fixtures/text/test_labels.npy"));
    let positive = labels.i64s().unwrap().iter().filter(|&&l| l == 1).count();
    assert_eq!(v["documents"].as_u64().unwrap() as usize, positive);
    let means: Vec<f64> = words.iter().map(|w| w["mean"].as_f64().unwrap()).collect();
    assert!(means.windows(2).all(|p| p[0] >= p[1]), "sorted: {means:?}");
    assert!(means[0] > 0.0);
    let (code, table, err) = lrpc(&[
        "words",
        LSTM,
        "--data",
        "fixtures/text/test_ids.npy",
        "--vocab",
        VOCAB,
        "--class",
        "1",
        "--top",
        "3",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(table.lines().count(), 2 + 3, "{table}");
}

#[test]
fn bad_token_input_is_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let short = dir.path().join("short.txt");
    std::fs::write(&short, "<pad>\nthe\n").unwrap();
    let long = dir.path().join("long.npy");
    lrpc::io::npy::write(
        &long,
        &lrpc::ir::Tensor::from_i64(vec![1, 20], vec![2; 20]).unwrap(),
    )
    .unwrap();
    let floats = dir.path().join("f.npy");
    lrpc::io::npy::write(
        &floats,
        &lrpc::ir::Tensor::from_f32(vec![1, 16], vec![1.0; 16]).unwrap(),
    )
    .unwrap();
    for (args, says) in [
        (
            vec![
                "explain",
                LSTM,
                "--input",
                INPUT,
                "--vocab",
                short.to_str().unwrap(),
            ],
            "has 2 words",
        ),
        (
            vec!["explain", LSTM, "--input", floats.to_str().unwrap()],
            "integers for ids",
        ),
        // The exported model's sequence axis is static (16).
        (
            vec!["explain", LSTM, "--input", long.to_str().unwrap()],
            "expects [1, 16]",
        ),
        (
            vec![
                "explain",
                "fixtures/mlp/model.onnx",
                "--input",
                "fixtures/mlp/input.npy",
                "--vocab",
                VOCAB,
            ],
            "not token ids",
        ),
        (
            vec![
                "words",
                LSTM,
                "--data",
                "fixtures/text/test_ids.npy",
                "--vocab",
                VOCAB,
                "--class",
                "7",
            ],
            "out of range",
        ),
    ] {
        let (code, out, err) = lrpc(&args);
        assert_eq!(code, 1, "{args:?}: {out}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

/// `--json` on token ids gives each sample's tokens and their relevance: the per-token values
/// `--output` writes, for a BERT-style encoder with its mask and token types as further inputs.
#[test]
fn json_gives_token_relevance_for_an_encoder_with_several_inputs() {
    let dir = std::env::temp_dir().join(format!("lrpc-json-tokens-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("tokens.npy");
    let a = "fixtures/attention";
    let (ids, mask, types) = (
        format!("{a}/bert_input_ids.npy"),
        format!("attention_mask={a}/bert_attention_mask.npy"),
        format!("token_type_ids={a}/bert_token_type_ids.npy"),
    );
    let (code, stdout, stderr) = lrpc(&[
        "explain",
        &format!("{a}/bert_ts.onnx"),
        "--input",
        &ids,
        "--input",
        &mask,
        "--input",
        &types,
        "--method",
        "attn-lrp",
        "--json",
        "--output",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    let js: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    let rel: Vec<Vec<f64>> = serde_json::from_value(js["token_relevance"].clone()).unwrap();
    let tokens: Vec<Vec<String>> = serde_json::from_value(js["tokens"].clone()).unwrap();
    assert_eq!((rel.len(), rel[0].len()), (2, 7));
    assert_eq!(tokens[1][5], "0", "the padded ids are listed");
    let written = lrpc::io::npy::read(&out).unwrap();
    let flat: Vec<f64> = rel.concat();
    for (j, w) in flat.iter().zip(written.f32s().unwrap()) {
        assert!((*j as f32 - w).abs() <= 1e-7, "{j} vs {w}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `lrpc bench` on a model with further inputs (mask, token types: fed ones) and a symbolic
/// sequence axis bound by `--dim`; without `--dim` it says which dimension to give.
#[test]
fn bench_binds_the_sequence_and_feeds_the_other_inputs() {
    let model = "fixtures/attention/bert_ts.onnx";
    let (code, stdout, stderr) = lrpc(&[
        "bench", model, "--method", "cp-lrp", "--batch", "2", "--dim", "seq=7", "--runs", "1",
        "--json",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let js: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(js["method"], "cp-lrp");
    assert_eq!(js["batch"], 2);
    let (code, _, stderr) = lrpc(&["bench", model, "--batch", "2", "--runs", "1"]);
    assert_ne!(code, 0);
    assert!(stderr.contains("--dim seq=SIZE"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}
