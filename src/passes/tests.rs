//! Each pass on a tiny hand-built graph: the IR dump before and after is pinned, and the outputs
//! before and after agree on seeded random inputs.

use std::sync::Arc;

use rand::{RngExt, SeedableRng};

use super::*;
use crate::interp;
use crate::ir::dump::GraphView;
use crate::ir::ops::*;
use crate::ir::{DType, Fact, Graph, NodeIndex, Op, Output, Tensor};

fn random(shape: &[usize], seed: u64) -> Tensor {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let n = shape.iter().product();
    Tensor::from_f32(
        shape.to_vec(),
        (0..n).map(|_| rng.random::<f32>() * 2.0 - 1.0).collect(),
    )
    .unwrap()
}

fn constant(g: &mut Graph, name: &str, t: Tensor) -> NodeIndex {
    g.add(name, Op::Const(Arc::new(t)), &[])
}

fn input(g: &mut Graph, shape: &[usize]) -> NodeIndex {
    let x = g.add("x", Op::Input, &[]);
    g.node_mut(x).fact = Some(Fact::new(DType::F32, shape.to_vec()));
    g.inputs.push(x);
    x
}

fn output(g: &mut Graph, node: NodeIndex) {
    g.outputs.push(Output {
        name: "y".into(),
        node,
        logits: None,
    });
}

fn dump(g: &Graph) -> String {
    GraphView::new(g, &|_| None).to_text()
}

/// Prepares a copy of `g`, checks outputs agree on three random inputs, returns both dumps.
fn prepare_and_compare(g: &Graph, input_shape: &[usize]) -> (String, Graph) {
    let mut before = g.clone();
    InferFacts.run(&mut before).unwrap();
    let mut after = g.clone();
    prepare(&mut after).unwrap();
    for seed in 0..3 {
        let x = random(input_shape, seed);
        let (a, b) = (
            interp::run(&before, &x).unwrap(),
            interp::run(&after, &x).unwrap(),
        );
        for (a, b) in a.iter().zip(&b) {
            let diff = a
                .f32s()
                .unwrap()
                .iter()
                .zip(b.f32s().unwrap())
                .map(|(p, q)| (p - q).abs())
                .fold(0.0, f32::max);
            assert!(diff < 1e-5, "outputs differ by {diff} after prepare");
        }
    }
    (
        format!("--- before\n{}--- after\n{}", dump(&before), dump(&after)),
        after,
    )
}

fn conv(k: usize) -> Op {
    Op::Conv(Conv {
        kernel_shape: Some(vec![k, k]),
        window: Window {
            strides: vec![],
            dilations: vec![],
            pads: vec![1, 1, 1, 1],
            auto_pad: AutoPad::NotSet,
            ceil_mode: false,
        },
        group: 1,
    })
}

fn bn_params(g: &mut Graph, c: usize, seed: u64) -> Vec<NodeIndex> {
    let mut p = vec![];
    for (i, role) in ["scale", "bias", "mean", "var"].iter().enumerate() {
        let mut t = random(&[c], seed + i as u64);
        if *role == "var" {
            t = Tensor::from_f32(
                vec![c],
                t.f32s().unwrap().iter().map(|v| v.abs() + 0.5).collect(),
            )
            .unwrap();
        }
        p.push(constant(g, &format!("bn.{role}"), t));
    }
    p
}

#[test]
fn batchnorm_folds_into_conv_and_gemm() {
    let mut g = Graph::new("tiny", 17);
    let x = input(&mut g, &[1, 2, 5, 5]);
    let w = constant(&mut g, "conv.w", random(&[3, 2, 3, 3], 10));
    let b = constant(&mut g, "conv.b", random(&[3], 11));
    let c = g.add("conv", conv(3), &[x, w, b]);
    let mut ins = vec![c];
    ins.extend(bn_params(&mut g, 3, 20));
    let bn = g.add("bn", Op::BatchNorm(BatchNorm { epsilon: 1e-5 }), &ins);
    let r = g.add("relu", Op::Activation(Activation::Relu), &[bn]);
    let f = g.add("flat", Op::Flatten(Flatten { axis: 1 }), &[r]);
    let w2 = constant(&mut g, "fc.w", random(&[4, 75], 30));
    let b2 = constant(&mut g, "fc.b", random(&[4], 31));
    let fc = g.add(
        "fc",
        Op::Gemm(Gemm {
            alpha: 0.5,
            beta: 2.0,
            trans_a: false,
            trans_b: true,
        }),
        &[f, w2, b2],
    );
    let mut ins = vec![fc];
    ins.extend(bn_params(&mut g, 4, 40));
    let bn2 = g.add("bn2", Op::BatchNorm(BatchNorm { epsilon: 1e-3 }), &ins);
    output(&mut g, bn2);
    let (dumps, after) = prepare_and_compare(&g, &[1, 2, 5, 5]);
    insta::assert_snapshot!("fold_batchnorm", dumps);
    assert!(
        after
            .nodes
            .node_weights()
            .all(|n| !matches!(n.op, Op::BatchNorm(_)))
    );
}

#[test]
fn batchnorm_with_a_shared_producer_stays() {
    let mut g = Graph::new("tiny", 17);
    let x = input(&mut g, &[1, 2, 4, 4]);
    let w = constant(&mut g, "conv.w", random(&[2, 2, 3, 3], 1));
    let c = g.add("conv", conv(3), &[x, w]);
    let mut ins = vec![c];
    ins.extend(bn_params(&mut g, 2, 2));
    let bn = g.add("bn", Op::BatchNorm(BatchNorm { epsilon: 1e-5 }), &ins);
    let add = g.add("add", Op::Binary(BinaryOp::Add), &[bn, c]);
    output(&mut g, add);
    let (_, after) = prepare_and_compare(&g, &[1, 2, 4, 4]);
    assert!(
        after
            .nodes
            .node_weights()
            .any(|n| matches!(n.op, Op::BatchNorm(_)))
    );
}

#[test]
fn shape_arithmetic_folds_to_a_constant_reshape() {
    // x.view(x.size(0), -1) as PyTorch exports it.
    let mut g = Graph::new("tiny", 17);
    let x = input(&mut g, &[2, 3, 4]);
    let relu = g.add("relu", Op::Activation(Activation::Relu), &[x]);
    let shape = g.add(
        "shape",
        Op::Shape(ShapeOf {
            start: 0,
            end: None,
        }),
        &[relu],
    );
    let zero = constant(&mut g, "zero", Tensor::from_i64(vec![], vec![0]).unwrap());
    let n = g.add("gather", Op::Gather(Gather { axis: 0 }), &[shape, zero]);
    let n1 = g.add(
        "unsqueeze",
        Op::Unsqueeze(Unsqueeze { axes: vec![0] }),
        &[n],
    );
    let minus = constant(
        &mut g,
        "minus_one",
        Tensor::from_i64(vec![1], vec![-1]).unwrap(),
    );
    let cat = g.add("concat", Op::Concat(Concat { axis: 0 }), &[n1, minus]);
    let reshape = g.add(
        "reshape",
        Op::Reshape(Reshape { allowzero: false }),
        &[relu, cat],
    );
    let id = g.add("dropout", Op::Identity, &[reshape]);
    output(&mut g, id);
    let (dumps, after) = prepare_and_compare(&g, &[2, 3, 4]);
    insta::assert_snapshot!("fold_shape_arithmetic", dumps);
    let ops: Vec<&str> = after.nodes.node_weights().map(|n| n.op.name()).collect();
    assert_eq!(ops.len(), 4, "{ops:?}"); // input, relu, const shape, reshape
    assert_eq!(after.node(after.outputs[0].node).op.name(), "Reshape");
}

#[test]
fn inference_errors_name_the_node() {
    let mut g = Graph::new("tiny.onnx", 17);
    let x = input(&mut g, &[1, 3]);
    let w = constant(&mut g, "w", random(&[4, 2], 0));
    let m = g.add("mm", Op::MatMul, &[x, w]);
    output(&mut g, m);
    let err = prepare(&mut g).unwrap_err().to_string();
    assert_eq!(
        err,
        "tiny.onnx: node 'mm' (MatMul): inner dimensions differ: [1, 3] x [4, 2]"
    );
}

#[test]
fn oversized_constants_are_refused_before_allocation() {
    let mut g = Graph::new("tiny.onnx", 17);
    g.max_elements = 1000;
    let x = input(&mut g, &[1, 3]);
    let s = constant(
        &mut g,
        "dims",
        Tensor::from_i64(vec![2], vec![100_000, 100_000]).unwrap(),
    );
    let big = g.add(
        "big",
        Op::ConstantOfShape(ConstantOfShape {
            value: Arc::new(Tensor::from_f32(vec![], vec![1.0]).unwrap()),
        }),
        &[s],
    );
    let add = g.add("add", Op::Binary(BinaryOp::Add), &[x, big]);
    output(&mut g, add);
    let err = prepare(&mut g).unwrap_err().to_string();
    assert!(
        err.contains("node 'big' (ConstantOfShape)") && err.contains("over the limit of 1000"),
        "{err}"
    );
}
