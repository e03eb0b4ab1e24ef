//! The explainer beyond the Zennit comparison: conservation, the layer report, batches, and every
//! way a user can ask for something that cannot be done.

mod common;

use std::sync::Arc;

use common::{fixture, npy};
use lrpc::ir::{Op, Tensor};
use lrpc::onnx::ImportOptions;
use lrpc::relevance::Method;
use lrpc::{Explainer, Model, Target};

fn model(case: &str) -> Model {
    Model::load(fixture(case, "model.onnx"), &ImportOptions::default()).unwrap()
}

/// The model with every Conv/Gemm bias set to zero (after BatchNorm folding).
fn bias_free(case: &str) -> Model {
    let mut g = model(case).graph().clone();
    let layers: Vec<_> = g
        .nodes
        .node_indices()
        .filter(|&n| matches!(g.node(n).op, Op::Conv(_) | Op::Gemm(_)))
        .collect();
    for n in layers {
        if let Some(&b) = g.inputs_of(n).get(2)
            && let Op::Const(t) = &g.node(b).op
        {
            let zeros = Tensor::zeros(t.dtype(), t.shape().to_vec());
            g.node_mut(b).op = Op::Const(Arc::new(zeros));
        }
    }
    Model::from_graph(g).unwrap()
}

fn explain(model: &Model, method: &str, x: Tensor) -> lrpc::Explanation {
    let options = lrpc::ExplainOptions {
        layers: true,
        ..lrpc::ExplainOptions::default()
    };
    Explainer::with_options(model, Method::parse(method).unwrap(), options)
        .unwrap()
        .explain(x, Target::Top)
        .unwrap()
}

#[test]
fn epsilon_conserves_the_logit_on_bias_free_nets() {
    // newopset is left out: Zennit (and lrpc) give Mul/Div by constants the plain gradient,
    // which scales relevance by design.
    for case in ["mlp", "lenet", "residual", "concat", "textcnn", "oldopset"] {
        let m = bias_free(case);
        let e = explain(&m, "epsilon", npy(&fixture(case, "input.npy")));
        let sum: f32 = e.relevance.f32s().unwrap().iter().sum();
        let logit = e.target_logits[0];
        let rel = (sum - logit).abs() / logit.abs();
        assert!(
            rel < 1e-4,
            "{case}: relevance sums to {sum}, logit {logit} (relative {rel:e})"
        );
        // In a chain every layer holds the same total (with branches, only cuts through all of
        // them do).
        let chain = ["mlp", "lenet", "textcnn"].contains(&case);
        for l in e.layers.iter().filter(|_| chain) {
            let r = (l.relevance_sum - logit).abs() / logit.abs();
            assert!(
                r < 1e-4,
                "{case}: layer {} holds {} of {logit}",
                l.name,
                l.relevance_sum
            );
        }
    }
}

#[test]
fn layer_report_starts_at_the_logit() {
    let e = explain(
        &model("lenet"),
        "epsilon-plus",
        npy(&fixture("lenet", "input.npy")),
    );
    let last = e.layers.last().unwrap();
    assert_eq!(last.name, "/classifier/classifier.2/Gemm");
    assert!((last.relevance_sum - e.target_logits[0]).abs() < 1e-6);
    let rules: Vec<&str> = e.layers.iter().map(|l| l.rule.as_str()).collect();
    assert_eq!(rules[0], "zplus");
    assert!(rules.contains(&"gradient") && rules.contains(&"pass"));
}

#[test]
fn batch_items_are_explained_independently() {
    let x = npy(&fixture("textcnn", "input.npy"));
    let flipped = Tensor::from_f32(
        x.shape().to_vec(),
        x.f32s().unwrap().iter().map(|v| -v).collect(),
    )
    .unwrap();
    let mut shape = x.shape().to_vec();
    shape[0] = 2;
    let both: Vec<f32> = x
        .f32s()
        .unwrap()
        .iter()
        .chain(flipped.f32s().unwrap())
        .copied()
        .collect();
    let options = ImportOptions {
        batch: Some(2),
        ..ImportOptions::default()
    };
    let m2 = Model::load(fixture("textcnn", "model.onnx"), &options).unwrap();
    let batched = explain(
        &m2,
        "epsilon-plus-flat",
        Tensor::from_f32(shape, both).unwrap(),
    );
    let m1 = model("textcnn");
    let n = x.len();
    for (i, single) in [x, flipped].into_iter().enumerate() {
        let e = explain(&m1, "epsilon-plus-flat", single);
        assert_eq!(batched.targets[i], e.targets[0]);
        let part = &batched.relevance.f32s().unwrap()[i * n..][..n];
        let diff = part
            .iter()
            .zip(e.relevance.f32s().unwrap())
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(diff < 1e-6, "sample {i} differs by {diff}");
    }
}

#[test]
fn smoothgrad_is_reproducible_and_integrated_gradients_completes() {
    let m = model("mlp");
    let x = npy(&fixture("mlp", "input.npy"));
    let a = explain(&m, "smoothgrad", x.clone());
    let b = explain(&m, "smoothgrad", x.clone());
    assert_eq!(a.relevance, b.relevance);
    let one_batch = |case: &str| {
        Explainer::new(&model(case), Method::parse("smoothgrad").unwrap())
            .unwrap()
            .runs_samples_as_one_batch()
    };
    assert!(one_batch("mlp"), "mlp has a symbolic batch axis");
    assert!(!one_batch("concat"), "concat's batch axis is fixed at 1");
    // Integrated gradients from a zero baseline: attributions sum to about f(x) - f(0).
    let ig = explain(&m, "integrated-gradients", x.clone());
    let zero = Tensor::zeros(lrpc::ir::DType::F32, x.shape().to_vec());
    let at_zero = explain(&m, "gradient", zero);
    let t = ig.targets[0];
    let f0 = at_zero.logits.f32s().unwrap()[t];
    let sum: f32 = ig.relevance.f32s().unwrap().iter().sum();
    let gap = ig.target_logits[0] - f0;
    assert!(
        (sum - gap).abs() < 0.05 * gap.abs().max(0.1),
        "IG sums to {sum}, f(x) - f(0) = {gap}"
    );
}

fn error(case: &str, method: &str, rules: &[&str], x: Tensor, target: Target) -> String {
    let m = model(case);
    let mut method = match Method::parse(method) {
        Ok(m) => m,
        Err(e) => return e.to_string(),
    };
    for r in rules {
        if let Err(e) = method.add_override(r) {
            return e.to_string();
        }
    }
    match Explainer::new(&m, method).and_then(|e| e.explain(x, target)) {
        Ok(_) => panic!("{case}: expected an error"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn refusals_say_what_is_wrong() {
    let x = npy(&fixture("lenet", "input.npy"));
    let mut nan = x.f32s().unwrap().to_vec();
    nan[3] = f32::INFINITY;
    let nan = Tensor::from_f32(x.shape().to_vec(), nan).unwrap();
    let wrong = Tensor::zeros(lrpc::ir::DType::F32, vec![1, 1, 27, 28]);
    let cases: Vec<(String, &str)> = vec![
        (
            error("lenet", "epsilon", &[], x.clone(), Target::Index(10)),
            "target: 10 is out of range: the model has 10 outputs (0..9)",
        ),
        (
            error("lenet", "epsilon", &[], nan, Target::Top),
            "non-finite value (inf) at flat index 3",
        ),
        (
            error("lenet", "epsilon", &[], wrong, Target::Top),
            "has shape [1, 1, 27, 28], but",
        ),
        (
            error("lenet", "lrp-magic", &[], x.clone(), Target::Top),
            "unknown method 'lrp-magic'",
        ),
        (
            error("lenet", "epsilon", &["*=sorcery"], x.clone(), Target::Top),
            "unknown rule 'sorcery'",
        ),
        (
            error(
                "lenet",
                "epsilon",
                &["/features/features.2/Relu=zplus"],
                x.clone(),
                Target::Top,
            ),
            "node '/features/features.2/Relu' (Relu): rule 'zplus' from '/features/features.2/Relu=zplus': it needs a Conv, Gemm or MatMul with constant weights",
        ),
        (
            error(
                "mlp",
                "epsilon-gamma-box",
                &[],
                npy(&fixture("mlp", "input.npy")),
                Target::Top,
            ),
            "this model has no Conv",
        ),
    ];
    for (got, want) in cases {
        assert!(got.contains(want), "'{got}' lacks '{want}'");
    }
}

/// A Softmax inside the network takes AttnLRP's rule: R_x = x (R - s sum R).
#[test]
fn a_softmax_inside_the_network_takes_the_softmax_rule() {
    use lrpc::ir::ops::{Activation, Softmax};
    use lrpc::ir::{DType, Fact, Graph, Output};
    let mut g = Graph::new("mid_softmax.onnx", 17);
    let x = g.add("x", Op::Input, &[]);
    g.node_mut(x).fact = Some(Fact::new(DType::F32, vec![1, 4]));
    g.inputs.push(x);
    let s = g.add(
        "sm",
        Op::Softmax(Softmax {
            axis: -1,
            coerce_2d: false,
        }),
        &[x],
    );
    let r = g.add("relu", Op::Activation(Activation::Relu), &[s]);
    g.outputs.push(Output {
        name: "y".into(),
        node: r,
        logits: None,
    });
    let m = Model::from_graph(g).unwrap();
    let x = [0.5f32, -1.0, 2.0, 0.25];
    let input = lrpc::ir::Tensor::from_f32(vec![1, 4], x.to_vec()).unwrap();
    let e = Explainer::new(&m, Method::parse("epsilon").unwrap())
        .unwrap()
        .explain(input, Target::Top)
        .unwrap();
    let z: f32 = x.iter().map(|v| v.exp()).sum();
    let s: Vec<f32> = x.iter().map(|v| v.exp() / z).collect();
    // Top is index 2; the relevance there is s_2 (the ReLU passes it).
    let want: Vec<f32> = (0..4)
        .map(|i| x[i] * (if i == 2 { s[2] } else { 0.0 } - s[i] * s[2]))
        .collect();
    let got = e.relevance.f32s().unwrap();
    for (g, w) in got.iter().zip(&want) {
        assert!((g - w).abs() < 1e-6, "{got:?} vs {want:?}");
    }
}

/// A model with a second input: the explained one is named or the first float input; the other
/// enters the relevance as a constant (here output = input + input2: relevance passes to input).
#[test]
fn other_inputs_are_data_the_relevance_treats_as_constants() {
    use lrpc::ir::Tensor;
    let path = common::root().join("fixtures/bad/two_inputs.onnx");
    let x = Tensor::from_f32(vec![1, 4], vec![1.0, -2.0, 3.0, 0.5]).unwrap();
    let other = Tensor::from_f32(vec![1, 4], vec![0.25; 4]).unwrap();
    for (explain, named) in [(None, "input2"), (Some("input2"), "input")] {
        let options = ImportOptions {
            explain_input: explain.map(str::to_string),
            ..ImportOptions::default()
        };
        let model = Model::load(&path, &options).unwrap();
        let e = Explainer::new(&model, Method::parse("gradient").unwrap()).unwrap();
        assert!(
            e.explain(x.clone(), Target::Index(2)).is_err(),
            "the other input's data is required"
        );
        let out = e
            .explain_with(x.clone(), &[(named, other.clone())], Target::Index(2))
            .unwrap();
        // d(input + input2)[2] / d(explained) = one-hot at 2.
        assert_eq!(out.relevance.f32s().unwrap(), &[0.0, 0.0, 1.0, 0.0]);
        // Either way the sum is x[2] + 0.25.
        assert_eq!(out.target_logits[0], 3.25);
        // Unknown names and wrong types are refused by name.
        let err = e
            .explain_with(
                x.clone(),
                &[(named, other.clone()), ("nope", other.clone())],
                Target::Top,
            )
            .unwrap_err()
            .to_string();
        assert!(err.contains("'nope'"), "{err}");
        let ints = Tensor::from_i64(vec![1, 4], vec![1; 4]).unwrap();
        let err = e
            .explain_with(x.clone(), &[(named, ints)], Target::Top)
            .unwrap_err()
            .to_string();
        assert!(err.contains("takes f32"), "{err}");
    }
}
