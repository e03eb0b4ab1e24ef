//! Attention (fixtures/attention, made by fixtures/attention.py): MatMul of two computed
//! tensors and an in-graph Softmax, exported by TorchScript (opset 17) and dynamo (opset 20).
//! AttnLRP's rules (epsilon on linear maps and on the attention matmuls, each factor half; the
//! softmax rule x (R - s sum R); the identity for GELU; the residual adds on their sum; for
//! the ViT, LayerNorm with its deviation held and its shift absorbing, the position embedding
//! absorbing its share) match LXT 2.1's explicit rules, and the gradient matches autograd, on
//! both engines and under guard pages. So do CP-LRP (the attention weights held constant) and
//! attn-lrp-gamma (Zennit's gamma on the patch Conv and the linear layers) on the ViT, and
//! attn-lrp and CP-LRP on a BERT-style encoder of token ids with an attention mask and token
//! types as further inputs, and on a LLaMA-style decoder (RMSNorm written out, einsum
//! attention with a causal mask, SwiGLU); bias-free variants conserve under CP-LRP.

mod common;

use common::{assert_close, fixture, npy, relative_error};
use lrpc::ir::Tensor;
use lrpc::relevance::{Method, Settings};
use lrpc::runtime::GuardSide;
use lrpc::{Engine, ExplainOptions, Explainer, Explanation, Model, Target};

const MODELS: [&str; 2] = ["model_ts.onnx", "model_dynamo.onnx"];
const VITS: [&str; 2] = ["vit_ts.onnx", "vit_dynamo.onnx"];
const BERTS: [&str; 2] = ["bert_ts.onnx", "bert_dynamo.onnx"];
/// The BERT-style encoder's inputs after the explained token ids.
const BERT_OTHERS: [&str; 2] = ["attention_mask", "token_type_ids"];

/// The explained input of a fixture model and its other inputs by name; `prefix` picks
/// another set of BERT inputs (`bert_short_`).
fn inputs(model: &str, prefix: &str) -> (Tensor, Vec<(&'static str, Tensor)>) {
    let load = |file: String| npy(&fixture("attention", &file));
    if model.starts_with("vit") {
        (load("vit_input.npy".into()), vec![])
    } else if model.starts_with("llama") {
        (load("llama_input_ids.npy".into()), vec![])
    } else if model.starts_with("bert") {
        let others = BERT_OTHERS
            .iter()
            .map(|&n| (n, load(format!("{prefix}{n}.npy"))))
            .collect();
        (load(format!("{prefix}input_ids.npy")), others)
    } else {
        (load("input.npy".into()), vec![])
    }
}

fn explainer(model: &str, method: Method, engine: Engine, guard: Option<GuardSide>) -> Explainer {
    let (x, _) = inputs(model, "bert_");
    let options = lrpc::onnx::ImportOptions {
        input_shape: Some(x.shape().to_vec()),
        ..lrpc::onnx::ImportOptions::default()
    };
    let m = Model::load(fixture("attention", model), &options)
        .unwrap_or_else(|e| panic!("{model}: {e}"));
    let options = ExplainOptions {
        engine,
        guard,
        threads: 2,
        ..ExplainOptions::default()
    };
    let name = method.name();
    Explainer::with_options(&m, method, options).unwrap_or_else(|e| panic!("{model} {name}: {e}"))
}

/// Each sample explained for its arg-max (LXT's references use the same targets).
fn explanation(
    model: &str,
    method: Method,
    engine: Engine,
    guard: Option<GuardSide>,
) -> Explanation {
    let name = method.name();
    let (x, others) = inputs(model, "bert_");
    explainer(model, method, engine, guard)
        .explain_with(x, &others, Target::Top)
        .unwrap_or_else(|e| panic!("{model} {name}: {e}"))
}

fn explain(model: &str, method: &str, engine: Engine, guard: Option<GuardSide>) -> Tensor {
    explanation(model, Method::parse(method).unwrap(), engine, guard).relevance
}

fn total(t: &Tensor) -> f32 {
    t.f32s().unwrap().iter().sum()
}

/// Checks `method` on both engines against an LXT reference and the engines against each
/// other; returns the compiled relevance.
fn check_against(model: &str, method: &Method, want: &Tensor, what: &str) -> Tensor {
    let interpreted = explanation(model, method.clone(), Engine::Interpreter, None).relevance;
    let what = format!("{model} {what}");
    assert_close(
        &interpreted,
        want,
        1e-3,
        &format!("{what}: interpreter vs LXT"),
    );
    let compiled = explanation(model, method.clone(), Engine::Compiled, None).relevance;
    assert_close(&compiled, want, 1e-3, &format!("{what}: compiled vs LXT"));
    assert_close(
        &compiled,
        &interpreted,
        1e-5,
        &format!("{what}: compiled vs interpreter"),
    );
    compiled
}

#[test]
fn attention_relevance_matches_lxt() {
    let want = npy(&fixture("attention", "ref_attnlrp.npy"));
    for (model, method) in MODELS
        .iter()
        .flat_map(|m| [(*m, "epsilon"), (*m, "attn-lrp")])
    {
        let interpreted = explain(model, method, Engine::Interpreter, None);
        assert_close(
            &interpreted,
            &want,
            1e-3,
            &format!("{model} {method}: interpreter vs LXT"),
        );
        let compiled = explain(model, method, Engine::Compiled, None);
        let what = format!("{model} {method}");
        assert_close(&compiled, &want, 1e-3, &format!("{what}: compiled vs LXT"));
        assert_close(
            &compiled,
            &interpreted,
            1e-5,
            &format!("{what}: compiled vs interpreter"),
        );
        // The relevance totals LXT's (biases absorb the same share).
        assert!((total(&compiled) - total(&want)).abs() <= 1e-3 * total(&want).abs());
    }
}

#[test]
fn a_vit_with_layernorm_matches_lxt() {
    let want = npy(&fixture("attention", "vit_ref_attnlrp.npy"));
    for model in VITS {
        let interpreted = explain(model, "attn-lrp", Engine::Interpreter, None);
        assert_close(
            &interpreted,
            &want,
            1e-3,
            &format!("{model}: interpreter vs LXT"),
        );
        let compiled = explain(model, "attn-lrp", Engine::Compiled, None);
        assert_close(&compiled, &want, 1e-3, &format!("{model}: compiled vs LXT"));
        assert_close(
            &compiled,
            &interpreted,
            1e-5,
            &format!("{model}: compiled vs interpreter"),
        );
        assert!((total(&compiled) - total(&want)).abs() <= 1e-3 * total(&want).abs());
        // Zennit's convention (constants pass relevance on, LayerNorm's shift included) is not
        // LXT's: the epsilon composite gives another answer here, and the test can tell.
        let zennit_style = explain(model, "epsilon", Engine::Compiled, None);
        assert!(
            relative_error(&zennit_style, &want) > 1e-2,
            "{model}: the composites differ"
        );
    }
}

#[test]
fn attention_gradient_matches_autograd() {
    let want = npy(&fixture("attention", "ref_gradient.npy"));
    for model in MODELS {
        for engine in [Engine::Interpreter, Engine::Compiled] {
            let got = explain(model, "gradient", engine, None);
            assert_close(&got, &want, 1e-5, &format!("{model} {engine:?}: gradient"));
        }
    }
}

#[test]
fn attention_kernels_stay_in_bounds() {
    for model in MODELS
        .iter()
        .chain(&VITS)
        .chain(&BERTS)
        .chain(&["llama_ts.onnx"])
    {
        let reference = explain(model, "attn-lrp", Engine::Interpreter, None);
        for side in [GuardSide::Before, GuardSide::After] {
            let guarded = explain(model, "attn-lrp", Engine::Compiled, Some(side));
            let err = relative_error(&guarded, &reference);
            assert!(err <= 1e-5, "{model} under guard {side:?}: {err:e}");
        }
    }
}

/// Both GELUs as the exporters write them out (exact through Erf, the tanh approximation
/// through Tanh and a cube) become one Gelu at import: the forward matches torch and no Erf or
/// Tanh is left; attn-lrp then passes relevance through unchanged (the identity rule).
#[test]
fn written_out_gelus_are_fused() {
    let x = npy(&fixture("attention", "gelu_input.npy"));
    let want = npy(&fixture("attention", "gelu_output.npy"));
    for model in ["gelu_ts.onnx", "gelu_dynamo.onnx"] {
        let options = lrpc::onnx::ImportOptions {
            input_shape: Some(x.shape().to_vec()),
            ..lrpc::onnx::ImportOptions::default()
        };
        let m = Model::load(fixture("attention", model), &options).unwrap();
        let ops: Vec<String> = m
            .graph()
            .nodes
            .node_indices()
            .map(|n| m.graph().node(n).op.name().to_string())
            .collect();
        assert_eq!(
            ops.iter().filter(|o| *o == "Gelu").count(),
            2,
            "{model}: {ops:?}"
        );
        assert!(
            !ops.iter().any(|o| o == "Erf" || o == "Tanh"),
            "{model}: {ops:?}"
        );
        let y = m.run(x.clone()).unwrap().remove(0);
        assert_close(&y, &want, 1e-6, &format!("{model}: forward"));
        let e = Explainer::new(&m, Method::parse("attn-lrp").unwrap()).unwrap();
        let r = e.explain(x.clone(), Target::Index(7)).unwrap().relevance;
        // The target column 7 is the tanh GELU of x[:, 2]: all its relevance lands there.
        let (r, y) = (r.f32s().unwrap(), y.f32s().unwrap());
        for b in 0..x.shape()[0] {
            for i in 0..5 {
                let expected = if i == 2 { y[b * 10 + 7] } else { 0.0 };
                assert!(
                    (r[b * 5 + i] - expected).abs() <= 1e-6,
                    "{model} row {b} input {i}: {} vs {expected}",
                    r[b * 5 + i]
                );
            }
        }
    }
}

/// CP-LRP (LXT's multi_head_attention_cp) and attn-lrp-gamma (gamma 0.25 on the patch Conv by
/// a rule override, 0.05 on every linear layer) on the ViT.
#[test]
fn vit_cp_lrp_and_gamma_match_lxt() {
    let gamma = Settings {
        method: Some("attn-lrp-gamma".into()),
        gamma: Some(0.05),
        rules: vec!["*onv*=gamma(0.25)".into()],
        ..Settings::default()
    }
    .method()
    .unwrap();
    let cp = Method::parse("cp-lrp").unwrap();
    for model in VITS {
        let export = model.trim_start_matches("vit_").trim_end_matches(".onnx");
        let ort = npy(&fixture("attention", &format!("vit_{export}_ort.npy")));
        let e = explanation(model, cp.clone(), Engine::Compiled, None);
        assert_close(
            &e.logits,
            &ort,
            1e-4,
            &format!("{model}: forward vs onnxruntime"),
        );
        let want = npy(&fixture("attention", "vit_ref_cplrp.npy"));
        let got = check_against(model, &cp, &want, "cp-lrp");
        assert!(
            relative_error(&got, &explain(model, "attn-lrp", Engine::Compiled, None)) > 1e-2,
            "{model}: cp-lrp differs from attn-lrp"
        );
        let want = npy(&fixture("attention", "vit_ref_gamma.npy"));
        let got = check_against(model, &gamma, &want, "attn-lrp-gamma");
        // An artifact keeps the override's own gamma.
        let dir = std::env::temp_dir().join(format!("lrpc-attention-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{model}.lrpx"));
        explainer(model, gamma.clone(), Engine::Compiled, None)
            .save(&path)
            .unwrap();
        let loaded = Explainer::load(&path).unwrap();
        assert_eq!(
            loaded.method().overrides[0].rule,
            lrpc::relevance::Rule::Gamma { gamma: 0.25 }
        );
        let (x, _) = inputs(model, "");
        let again = loaded.explain(x, Target::Top).unwrap().relevance;
        assert_eq!(
            again.f32s().unwrap(),
            got.f32s().unwrap(),
            "{model}: artifact"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// The BERT-style encoder: the forward equals onnxruntime's; attn-lrp and CP-LRP equal LXT's
/// at the word embedding vectors and per token.
#[test]
fn a_bert_encoder_matches_lxt() {
    for model in BERTS {
        let export = model.trim_start_matches("bert_").trim_end_matches(".onnx");
        let ort = npy(&fixture("attention", &format!("bert_{export}_ort.npy")));
        for (method, reference) in [("attn-lrp", "attnlrp"), ("cp-lrp", "cplrp")] {
            let want = npy(&fixture(
                "attention",
                &format!("bert_ref_{reference}_embedding.npy"),
            ));
            let got = check_against(model, &Method::parse(method).unwrap(), &want, method);
            let tokens = npy(&fixture(
                "attention",
                &format!("bert_ref_{reference}_tokens.npy"),
            ));
            assert_close(
                &lrpc::text::per_token(&got).unwrap(),
                &tokens,
                1e-3,
                &format!("{model} {method}: per token"),
            );
            let e = explanation(
                model,
                Method::parse(method).unwrap(),
                Engine::Compiled,
                None,
            );
            assert_close(
                &e.logits,
                &ort,
                1e-4,
                &format!("{model}: forward vs onnxruntime"),
            );
        }
    }
}

/// The sequence axis of the TorchScript export is symbolic: it binds to the data's length
/// (5 tokens), the forward equals onnxruntime's there; a sequence longer than the position
/// table and a mask of another length are refused in one line, naming the node or input.
#[test]
fn bert_sequence_length_binds_and_bad_lengths_are_refused() {
    let model = "bert_ts.onnx";
    let (x, others) = inputs(model, "bert_short_");
    let options = lrpc::onnx::ImportOptions {
        input_shape: Some(x.shape().to_vec()),
        ..lrpc::onnx::ImportOptions::default()
    };
    let m = Model::load(fixture("attention", model), &options).unwrap();
    let e = Explainer::new(&m, Method::parse("attn-lrp").unwrap()).unwrap();
    let got = e.explain_with(x.clone(), &others, Target::Top).unwrap();
    let want = npy(&fixture("attention", "bert_short_ort.npy"));
    assert_close(&got.logits, &want, 1e-4, "5 tokens: forward vs onnxruntime");
    assert_eq!(got.relevance.shape(), &[2, 5, 8]);

    // 9 tokens: the position table has 7 rows.
    let long = Tensor::from_i64(vec![2, 9], vec![1; 18]).unwrap();
    let options = lrpc::onnx::ImportOptions {
        input_shape: Some(vec![2, 9]),
        ..lrpc::onnx::ImportOptions::default()
    };
    let err = Model::load(fixture("attention", model), &options)
        .and_then(|m| {
            let e = Explainer::new(&m, Method::parse("attn-lrp").unwrap())?;
            let others: Vec<(&str, Tensor)> = BERT_OTHERS
                .iter()
                .map(|&n| (n, Tensor::from_i64(vec![2, 9], vec![1; 18]).unwrap()))
                .collect();
            e.explain_with(long, &others, Target::Top)
        })
        .map(|_| ())
        .expect_err("9 tokens through a 7-row position table is refused")
        .to_string();
    assert!(!err.contains('\n'), "one line: {err}");
    assert!(err.contains("Gather"), "names the lookup: {err}");

    // A mask of 6 tokens for 7 token ids.
    let (x, mut others) = inputs(model, "bert_");
    others[0].1 = Tensor::from_i64(vec![2, 6], vec![1; 12]).unwrap();
    let e = explainer(
        model,
        Method::parse("attn-lrp").unwrap(),
        Engine::Compiled,
        None,
    );
    let err = e
        .explain_with(x, &others, Target::Top)
        .map(|_| ())
        .expect_err("a mask of the wrong length is refused")
        .to_string();
    assert!(!err.contains('\n'), "one line: {err}");
    assert!(err.contains("attention_mask"), "names the input: {err}");
}

/// With every bias and bias-like constant (LayerNorm shifts, position and token-type
/// embeddings, the CLS token) zero, CP-LRP conserves: each sample's relevance sums to its
/// logit. attn-lrp does not by design: the softmax rule keeps the share of the attention
/// weights' relevance that its bias-like term takes (docs/rules.md); the test can tell.
#[test]
fn bias_free_encoders_conserve_under_cp_lrp() {
    for model in ["bert_nobias_ts.onnx", "vit_nobias_ts.onnx"] {
        let name = model.trim_end_matches("_ts.onnx");
        let logits = npy(&fixture("attention", &format!("{name}_output.npy")));
        for (method, conserves) in [("cp-lrp", true), ("attn-lrp", false)] {
            let e = explanation(
                model,
                Method::parse(method).unwrap(),
                Engine::Compiled,
                None,
            );
            assert_close(&e.logits, &logits, 1e-4, &format!("{model}: forward"));
            let r = e.relevance.f32s().unwrap();
            let per = r.len() / 2;
            let l = logits.f32s().unwrap();
            for b in 0..2 {
                let sum: f32 = r[b * per..(b + 1) * per].iter().sum();
                let target = l[b * 3..(b + 1) * 3]
                    .iter()
                    .copied()
                    .fold(f32::MIN, f32::max);
                let gap = (sum - target).abs() / target.abs();
                assert_eq!(
                    gap <= 1e-3,
                    conserves,
                    "{model} {method} sample {b}: relevance {sum} for logit {target}"
                );
            }
        }
    }
}

/// A LLaMA-style decoder: RMSNorm as x * rsqrt(mean(x^2) + eps) (TorchScript writes 1 / Sqrt,
/// dynamo Reciprocal of Sqrt) takes the pass rule on x, the einsum attention the matmul rules,
/// SwiGLU the uniform rule: LXT's rms_norm_identity, matmul and mul2. Forcing the uniform rule
/// on the RMSNorm products instead gives another answer, which the comparison can tell.
#[test]
fn a_llama_style_decoder_matches_lxt() {
    let want = npy(&fixture("attention", "llama_ref_attnlrp_embedding.npy"));
    let attn = Method::parse("attn-lrp").unwrap();
    for model in ["llama_ts.onnx", "llama_dynamo.onnx"] {
        check_against(model, &attn, &want, "attn-lrp");
        let export = model.trim_start_matches("llama_").trim_end_matches(".onnx");
        let ort = npy(&fixture("attention", &format!("llama_{export}_ort.npy")));
        let e = explanation(model, attn.clone(), Engine::Compiled, None);
        assert_close(
            &e.logits,
            &ort,
            1e-4,
            &format!("{model}: forward vs onnxruntime"),
        );
    }
    let uniform = Settings {
        method: Some("attn-lrp".into()),
        rules: ["/Mul", "/Mul_3", "/Mul_7"]
            .iter()
            .map(|n| format!("{n}=uniform"))
            .collect(),
        ..Settings::default()
    }
    .method()
    .unwrap();
    let got = explanation("llama_ts.onnx", uniform, Engine::Compiled, None).relevance;
    assert!(
        relative_error(&got, &want) > 0.1,
        "the uniform rule on RMSNorm differs"
    );
}
