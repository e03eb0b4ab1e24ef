//! Gradients (and epsilon's conservation) through the data-movement and resampling ops whose
//! adjoints relevance uses: Resize nearest and linear, Pad reflect/edge/wrap, Expand, Tile,
//! Split. Each sits between the input and a dense layer; the gradient method's attribution must
//! match central differences of the interpreter's forward pass, interpreted and compiled.

use std::sync::Arc;

use lrpc::ir::ops::resize::{CoordMode, Interpolation, NearestMode, Target};
use lrpc::ir::ops::{Flatten, Pad, PadMode, Reshape, Resize, SplitPart};
use lrpc::ir::{DType, Fact, Graph, Op, Output, Tensor};
use lrpc::relevance::Method;
use lrpc::{Engine, ExplainOptions, Explainer, Model, Target as Class};

const SHAPE: [usize; 4] = [1, 2, 3, 4];
const CLASSES: usize = 3;

fn model(op: Op, args: Vec<Tensor>) -> Model {
    model_after(None, op, args)
}

/// `op` after an optional reshape of the input (to give Expand a size-1 axis to broadcast).
fn model_after(reshape: Option<&[i64]>, op: Op, args: Vec<Tensor>) -> Model {
    let mut g = Graph::new("movement-test", 18);
    let x = g.add("x", Op::Input, &[]);
    g.node_mut(x).fact = Some(Fact::new(DType::F32, SHAPE.to_vec()));
    g.inputs.push(x);
    let mut first = x;
    if let Some(dims) = reshape {
        let shape = g.add("view_shape", Op::Const(Arc::new(ints(dims))), &[]);
        first = g.add(
            "view",
            Op::Reshape(Reshape { allowzero: false }),
            &[x, shape],
        );
    }
    let mut ins = vec![first];
    for (k, a) in args.into_iter().enumerate() {
        ins.push(g.add(format!("arg{k}"), Op::Const(Arc::new(a)), &[]));
    }
    let moved = g.add("moved", op, &ins);
    let flat = g.add("flat", Op::Flatten(Flatten { axis: 1 }), &[moved]);
    // The dense layer's width is the op's output size: run the graph up to it.
    let features = {
        let mut p = g.clone();
        p.outputs.push(Output {
            name: "f".into(),
            node: flat,
            logits: None,
        });
        let m = Model::from_graph(p).unwrap();
        let x = Tensor::from_f32(SHAPE.to_vec(), vec![0.0; SHAPE.iter().product()]).unwrap();
        m.run_interpreted(x).unwrap()[0].shape()[1]
    };
    let w: Vec<f32> = (0..features * CLASSES)
        .map(|i| ((i * 7919 % 61) as f32 - 30.0) / 25.0)
        .collect();
    let w = g.add(
        "w",
        Op::Const(Arc::new(
            Tensor::from_f32(vec![features, CLASSES], w).unwrap(),
        )),
        &[],
    );
    let out = g.add("fc", Op::MatMul, &[flat, w]);
    g.outputs.push(Output {
        name: "out".into(),
        node: out,
        logits: None,
    });
    Model::from_graph(g).unwrap()
}

fn input() -> Vec<f32> {
    (0..SHAPE.iter().product::<usize>())
        .map(|i| ((i * 37 % 23) as f32 - 11.0) / 9.0)
        .collect()
}

fn relevance(m: &Model, method: &str, engine: Engine) -> Vec<f32> {
    let options = ExplainOptions {
        engine,
        ..ExplainOptions::default()
    };
    let x = Tensor::from_f32(SHAPE.to_vec(), input()).unwrap();
    Explainer::with_options(m, Method::parse(method).unwrap(), options)
        .unwrap_or_else(|e| panic!("{method}: {e}"))
        .explain(x, Class::Index(1))
        .unwrap()
        .relevance
        .f32s()
        .unwrap()
        .to_vec()
}

fn check(what: &str, m: &Model) {
    let x = input();
    let f = |x: &[f32]| {
        m.run_interpreted(Tensor::from_f32(SHAPE.to_vec(), x.to_vec()).unwrap())
            .unwrap()[0]
            .f32s()
            .unwrap()[1]
    };
    // Every op here is linear in x: central differences are exact up to rounding.
    let fd: Vec<f32> = (0..x.len())
        .map(|j| {
            let (mut p, mut q) = (x.clone(), x.clone());
            p[j] += 0.5;
            q[j] -= 0.5;
            f(&p) - f(&q)
        })
        .collect();
    for engine in [Engine::Interpreter, Engine::Compiled] {
        let g = relevance(m, "gradient", engine);
        for (k, (a, b)) in g.iter().zip(&fd).enumerate() {
            assert!(
                (a - b).abs() <= 1e-3 * b.abs().max(1.0),
                "{what} {engine:?} element {k}: {a} vs {b}"
            );
        }
        let r = relevance(m, "epsilon", engine);
        let total: f32 = r.iter().sum();
        let logit = f(&x);
        assert!(
            (total - logit).abs() <= 1e-3 * logit.abs().max(1.0),
            "{what} {engine:?}: epsilon relevance sums to {total}, the logit is {logit}"
        );
    }
}

fn ints(v: &[i64]) -> Tensor {
    Tensor::from_i64(vec![v.len()], v.to_vec()).unwrap()
}

#[test]
fn movement_and_resampling_gradients_match_differences() {
    for (name, interpolation, coord) in [
        (
            "nearest",
            Interpolation::Nearest(NearestMode::RoundPreferFloor),
            CoordMode::HalfPixel,
        ),
        ("linear", Interpolation::Linear, CoordMode::HalfPixel),
        (
            "linear-align",
            Interpolation::Linear,
            CoordMode::AlignCorners,
        ),
    ] {
        let r = Resize {
            interpolation,
            coord,
            target: Target::Scales(vec![1.0, 1.0, 2.0, 1.5]),
        };
        check(name, &model(Op::Resize(r), vec![]));
    }
    for mode in [
        PadMode::Constant,
        PadMode::Reflect,
        PadMode::Edge,
        PadMode::Wrap,
    ] {
        let p = Pad {
            pads: vec![0, 0, 2, 1, 0, 0, 1, 3],
            // A nonzero border would absorb relevance like a bias; 0 keeps conservation exact.
            value: 0.0,
            mode,
        };
        check(&format!("pad {mode:?}"), &model(Op::Pad(p), vec![]));
    }
    check(
        "expand",
        &model_after(
            Some(&[1, 2, 3, 4, 1]),
            Op::Expand,
            vec![ints(&[1, 1, 1, 2])],
        ),
    );
    check("tile", &model(Op::Tile, vec![ints(&[1, 2, 1, 3])]));
    // ConvTranspose is linear in x with a constant weight: its LRP rules (through the Conv
    // that is its adjoint) and its gradient.
    let conv = lrpc::ir::ops::Conv {
        kernel_shape: Some(vec![2, 3]),
        window: lrpc::ir::ops::Window {
            strides: vec![2, 1],
            dilations: vec![],
            pads: vec![0, 1, 0, 1],
            auto_pad: lrpc::ir::ops::AutoPad::NotSet,
            ceil_mode: false,
        },
        group: 1,
    };
    let w: Vec<f32> = (0..2 * 3 * 2 * 3)
        .map(|i| ((i * 13 % 17) as f32 - 8.0) / 6.0)
        .collect();
    let transpose = Op::ConvTranspose(lrpc::ir::ops::backward::ConvTranspose {
        conv,
        input_shape: vec![1, 3, 6, 4],
    });
    check(
        "conv_transpose",
        &model(
            transpose,
            vec![Tensor::from_f32(vec![2, 3, 2, 3], w).unwrap()],
        ),
    );
    let gather = Op::Gather(lrpc::ir::ops::Gather { axis: 3 });
    check("gather", &model(gather, vec![ints(&[3, 0, 0, 2, 3])]));
    let part = SplitPart {
        axis: 3,
        sizes: Some(vec![1, 3]),
        parts: 2,
        index: 1,
    };
    check("split", &model(Op::SplitPart(part), vec![]));
}
