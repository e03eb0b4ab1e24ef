//! Products of two computed tensors: a gate times a signal (SiLU here, squeeze-excite in
//! EfficientNet/RegNetY/MobileNetV3) gives all relevance to the signal, any other product half to
//! each operand, and gradient methods use the product rule. Checked against the rules written
//! out by hand on a two-layer net, for the interpreter and compiled code.

use std::sync::Arc;

use lrpc::ir::ops::{Activation, BinaryOp};
use lrpc::ir::{DType, Fact, Graph, Op, Output, Tensor};
use lrpc::relevance::Method;
use lrpc::{Engine, ExplainOptions, Explainer, Model, Target};

const IN: usize = 4;
const HID: usize = 5;
const OUT: usize = 3;

fn weights(rows: usize, cols: usize, seed: usize) -> Vec<f32> {
    (0..rows * cols)
        .map(|i| (((i + seed) * 7919 % 97) as f32 - 48.0) / 40.0)
        .collect()
}

/// x -> z = x W1 -> y = z * act(z) -> out = y W2.
fn model(act: Activation) -> Model {
    let mut g = Graph::new("products-test", 17);
    let x = g.add("x", Op::Input, &[]);
    g.node_mut(x).fact = Some(Fact::new(DType::F32, vec![1, IN]));
    g.inputs.push(x);
    let konst = |g: &mut Graph, name: &str, r: usize, c: usize, seed: usize| {
        let t = Tensor::from_f32(vec![r, c], weights(r, c, seed)).unwrap();
        g.add(name, Op::Const(Arc::new(t)), &[])
    };
    let w1 = konst(&mut g, "w1", IN, HID, 1);
    let w2 = konst(&mut g, "w2", HID, OUT, 2);
    let z = g.add("fc1", Op::MatMul, &[x, w1]);
    let a = g.add("act", Op::Activation(act), &[z]);
    let y = g.add("product", Op::Binary(BinaryOp::Mul), &[z, a]);
    let out = g.add("fc2", Op::MatMul, &[y, w2]);
    g.outputs.push(Output {
        name: "out".into(),
        node: out,
        logits: None,
    });
    Model::from_graph(g).unwrap()
}

fn input() -> Vec<f32> {
    vec![0.9, -0.4, 0.3, 1.2]
}

/// (z, act(z), y, out, target).
fn forward(act: Activation) -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>, usize) {
    let (x, w1, w2) = (input(), weights(IN, HID, 1), weights(HID, OUT, 2));
    let z: Vec<f32> = (0..HID)
        .map(|i| (0..IN).map(|j| x[j] * w1[j * HID + i]).sum())
        .collect();
    let a: Vec<f32> = z.iter().map(|&v| act.apply(v)).collect();
    let y: Vec<f32> = z.iter().zip(&a).map(|(p, q)| p * q).collect();
    let out: Vec<f32> = (0..OUT)
        .map(|k| (0..HID).map(|i| y[i] * w2[i * OUT + k]).sum())
        .collect();
    let t = (0..OUT).max_by(|&p, &q| out[p].total_cmp(&out[q])).unwrap();
    (z, a, y, out, t)
}

/// Epsilon LRP with R_z = R_y (the gate rule gives it all to z; the uniform rule gives half to
/// z directly and half through act, which passes it on to z).
fn epsilon_reference(act: Activation) -> Vec<f32> {
    let (x, w1, w2) = (input(), weights(IN, HID, 1), weights(HID, OUT, 2));
    let (z, _, y, out, t) = forward(act);
    let s = |v: f32| v + 1e-6 * if v >= 0.0 { 1.0 } else { -1.0 };
    let r_y: Vec<f32> = (0..HID)
        .map(|i| y[i] * w2[i * OUT + t] * out[t] / s(out[t]))
        .collect();
    (0..IN)
        .map(|j| {
            x[j] * (0..HID)
                .map(|i| w1[j * HID + i] * r_y[i] / s(z[i]))
                .sum::<f32>()
        })
        .collect()
}

/// d out_t / dx by the product rule.
fn gradient_reference(act: Activation) -> Vec<f32> {
    let (w1, w2) = (weights(IN, HID, 1), weights(HID, OUT, 2));
    let (z, a, _, _, t) = forward(act);
    let dy: Vec<f32> = (0..HID)
        .map(|i| {
            let d = lrpc::ir::ops::ActivationGrad { activation: act }.derivative(z[i]);
            w2[i * OUT + t] * (a[i] + z[i] * d)
        })
        .collect();
    (0..IN)
        .map(|j| (0..HID).map(|i| w1[j * HID + i] * dy[i]).sum())
        .collect()
}

/// The input relevance, and the rule the product got.
fn explain(model: &Model, method: &str, engine: Engine) -> (Vec<f32>, String) {
    let options = ExplainOptions {
        engine,
        layers: true,
        ..ExplainOptions::default()
    };
    let x = Tensor::from_f32(vec![1, IN], input()).unwrap();
    let e = Explainer::with_options(model, Method::parse(method).unwrap(), options)
        .unwrap_or_else(|e| panic!("{method}: {e}"))
        .explain(x, Target::Top)
        .unwrap();
    let rule = e
        .layers
        .iter()
        .find(|l| l.name == "product")
        .map(|l| l.rule.clone())
        .unwrap_or_default();
    (e.relevance.f32s().unwrap().to_vec(), rule)
}

fn assert_close(got: &[f32], want: &[f32], what: &str) {
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
    for (g, w) in got.iter().zip(want) {
        assert!(
            (g - w).abs() <= 1e-4 * scale.max(1e-6),
            "{what}: {got:?} vs {want:?}"
        );
    }
}

#[test]
fn gates_and_products_follow_their_rules() {
    for (act, rule) in [(Activation::Sigmoid, "gate"), (Activation::Tanh, "uniform")] {
        let m = model(act);
        for engine in [Engine::Interpreter, Engine::Compiled] {
            let what = format!("{rule} {engine:?}");
            let (relevance, chosen) = explain(&m, "epsilon", engine);
            assert_eq!(chosen, rule, "{what}");
            assert_close(&relevance, &epsilon_reference(act), &what);
            let (gradient, chosen) = explain(&m, "gradient", engine);
            assert_eq!(chosen, "gradient", "{what}");
            assert_close(
                &gradient,
                &gradient_reference(act),
                &format!("{what} gradient"),
            );
        }
    }
}

/// x -> z = x W1 -> LayerNorm written out (mean, centre, variance, sqrt, divide) -> out = y W2.
fn layer_norm_model() -> Model {
    use lrpc::ir::ops::{Reduce, ReduceKind};
    let mut g = Graph::new("layernorm-test", 17);
    let x = g.add("x", Op::Input, &[]);
    g.node_mut(x).fact = Some(Fact::new(DType::F32, vec![1, IN]));
    g.inputs.push(x);
    let konst = |g: &mut Graph, name: &str, t: Tensor| g.add(name, Op::Const(Arc::new(t)), &[]);
    let w1 = konst(
        &mut g,
        "w1",
        Tensor::from_f32(vec![IN, HID], weights(IN, HID, 1)).unwrap(),
    );
    let w2 = konst(
        &mut g,
        "w2",
        Tensor::from_f32(vec![HID, OUT], weights(HID, OUT, 2)).unwrap(),
    );
    let two = konst(&mut g, "two", Tensor::from_f32(vec![], vec![2.0]).unwrap());
    let eps = konst(&mut g, "eps", Tensor::from_f32(vec![], vec![1e-5]).unwrap());
    let mean = |axes| {
        Op::Reduce(Reduce {
            kind: ReduceKind::Mean,
            axes,
            keepdims: true,
        })
    };
    let z = g.add("fc1", Op::MatMul, &[x, w1]);
    let m = g.add("mean", mean(Some(vec![-1])), &[z]);
    let c = g.add("centre", Op::Binary(BinaryOp::Sub), &[z, m]);
    let sq = g.add("square", Op::Binary(BinaryOp::Pow), &[c, two]);
    let v = g.add("variance", mean(Some(vec![-1])), &[sq]);
    let ve = g.add("variance_eps", Op::Binary(BinaryOp::Add), &[v, eps]);
    let d = g.add("std", Op::Activation(Activation::Sqrt), &[ve]);
    let y = g.add("normed", Op::Binary(BinaryOp::Div), &[c, d]);
    let out = g.add("fc2", Op::MatMul, &[y, w2]);
    g.outputs.push(Output {
        name: "out".into(),
        node: out,
        logits: None,
    });
    Model::from_graph(g).unwrap()
}

#[test]
fn a_written_out_layer_norm_conserves_and_has_the_right_gradient() {
    let m = layer_norm_model();
    let x = input();
    let out = |x: &[f32]| {
        m.run_interpreted(Tensor::from_f32(vec![1, IN], x.to_vec()).unwrap())
            .unwrap()[0]
            .f32s()
            .unwrap()
            .to_vec()
    };
    let base = out(&x);
    let t = (0..OUT)
        .max_by(|&p, &q| base[p].total_cmp(&base[q]))
        .unwrap();
    // Central differences in f32, so a loose tolerance.
    let h = 1e-2;
    let fd: Vec<f32> = (0..IN)
        .map(|j| {
            let (mut p, mut q) = (x.clone(), x.clone());
            p[j] += h;
            q[j] -= h;
            (out(&p)[t] - out(&q)[t]) / (2.0 * h)
        })
        .collect();
    for engine in [Engine::Interpreter, Engine::Compiled] {
        let (relevance, _) = explain(&m, "epsilon", engine);
        let total: f32 = relevance.iter().sum();
        assert!(
            (total - base[t]).abs() <= 1e-3 * base[t].abs().max(1.0),
            "{engine:?}: relevance sums to {total}, the logit is {}",
            base[t]
        );
        let (gradient, _) = explain(&m, "gradient", engine);
        for (g, f) in gradient.iter().zip(&fd) {
            assert!(
                (g - f).abs() <= 2e-2 * f.abs().max(0.1),
                "{engine:?}: {gradient:?} vs {fd:?}"
            );
        }
    }
}
