//! Each importer with every optional attribute absent (the spec's defaults must appear), and the
//! opset forms that moved a parameter between attribute and input.

use std::collections::HashMap;
use std::sync::Arc;

use super::{ImportError, Imported, NodeCtx, Source, import};
use crate::ir::ops::*;
use crate::ir::{Op, Tensor};
use crate::onnx::attrs::Attrs;
use crate::onnx::proto::attribute_proto::AttributeType;
use crate::onnx::proto::{AttributeProto, NodeProto};

/// An attribute value for [`node`].
enum A {
    I(i64),
    F(f32),
    Is(&'static [i64]),
    S(&'static str),
}

fn node(op: &str, inputs: &[&str], attrs: &[(&str, A)]) -> NodeProto {
    let attribute = attrs
        .iter()
        .map(|(name, v)| {
            let mut a = AttributeProto {
                name: name.to_string(),
                ..Default::default()
            };
            match v {
                A::I(i) => (a.i, a.r#type) = (*i, AttributeType::Int as i32),
                A::F(f) => (a.f, a.r#type) = (*f, AttributeType::Float as i32),
                A::Is(v) => (a.ints, a.r#type) = (v.to_vec(), AttributeType::Ints as i32),
                A::S(s) => (a.s, a.r#type) = (s.as_bytes().to_vec(), AttributeType::String as i32),
            }
            a
        })
        .collect();
    NodeProto {
        op_type: op.into(),
        name: "n".into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec!["y".into()],
        attribute,
        ..Default::default()
    }
}

fn consts() -> HashMap<String, Arc<Tensor>> {
    let mut c = HashMap::new();
    let i = |v: Vec<i64>| Arc::new(Tensor::from_i64(vec![v.len()], v).unwrap());
    c.insert("axes".to_string(), i(vec![0, 2]));
    c.insert("pads".to_string(), i(vec![0, 1, 0, 2]));
    c.insert("starts".to_string(), i(vec![1]));
    c.insert("ends".to_string(), i(vec![-1]));
    c.insert(
        "lo".to_string(),
        Arc::new(Tensor::from_f32(vec![], vec![-1.0]).unwrap()),
    );
    c.insert(
        "hi".to_string(),
        Arc::new(Tensor::from_f32(vec![], vec![6.0]).unwrap()),
    );
    c
}

fn run(n: &NodeProto, opset: i64) -> Result<Imported, String> {
    let consts = consts();
    let (types, uses) = (HashMap::new(), HashMap::new());
    let ctx = NodeCtx {
        node: n,
        opset,
        attrs: Attrs::new(n)?,
        consts: &consts,
        input_shapes: vec![vec![1, 3, 8, 8]],
        types: &types,
        uses: &uses,
    };
    import(&ctx).map_err(|e| match e {
        ImportError::Unsupported => "unsupported".to_string(),
        ImportError::Invalid(r) => r,
    })
}

fn op(n: NodeProto, opset: i64) -> Op {
    let mut imported = run(&n, opset).unwrap_or_else(|e| panic!("{}: {e}", n.op_type));
    assert_eq!(imported.nodes.len(), 1, "{} imports as one node", n.op_type);
    imported.nodes.remove(0).op
}

#[test]
fn defaults_when_attributes_are_absent() {
    let no_window = Window {
        strides: vec![],
        dilations: vec![],
        pads: vec![],
        auto_pad: AutoPad::NotSet,
        ceil_mode: false,
    };
    assert_eq!(
        op(node("Conv", &["x", "w"], &[]), 17),
        Op::Conv(Conv {
            kernel_shape: None,
            window: no_window.clone(),
            group: 1
        })
    );
    assert_eq!(
        op(node("Gemm", &["a", "b"], &[]), 17),
        Op::Gemm(Gemm {
            alpha: 1.0,
            beta: 1.0,
            trans_a: false,
            trans_b: false
        })
    );
    assert_eq!(
        op(node("LeakyRelu", &["x"], &[]), 17),
        Op::Activation(Activation::LeakyRelu { alpha: 0.01 })
    );
    assert_eq!(
        op(node("Clip", &["x"], &[]), 17),
        Op::Activation(Activation::Clip {
            min: f32::NEG_INFINITY,
            max: f32::INFINITY
        })
    );
    assert_eq!(
        op(
            node("AveragePool", &["x"], &[("kernel_shape", A::Is(&[2, 2]))]),
            17
        ),
        Op::Pool(Pool {
            kind: PoolKind::Average {
                count_include_pad: false
            },
            kernel_shape: vec![2, 2],
            window: no_window
        })
    );
    assert_eq!(
        op(
            node("BatchNormalization", &["x", "s", "b", "m", "v"], &[]),
            15
        ),
        Op::BatchNorm(BatchNorm { epsilon: 1e-5 })
    );
    assert_eq!(
        op(node("LRN", &["x"], &[("size", A::I(5))]), 17),
        Op::Lrn(Lrn {
            size: 5,
            alpha: 1e-4,
            beta: 0.75,
            bias: 1.0
        })
    );
    assert_eq!(
        op(node("Flatten", &["x"], &[]), 17),
        Op::Flatten(Flatten { axis: 1 })
    );
    assert_eq!(
        op(node("Transpose", &["x"], &[]), 17),
        Op::Transpose(Transpose { perm: None })
    );
    assert_eq!(
        op(node("Gather", &["x", "i"], &[]), 17),
        Op::Gather(Gather { axis: 0 })
    );
    assert_eq!(
        op(node("Shape", &["x"], &[]), 17),
        Op::Shape(ShapeOf {
            start: 0,
            end: None
        })
    );
    assert_eq!(
        op(node("Squeeze", &["x"], &[]), 17),
        Op::Squeeze(Squeeze { axes: None })
    );
    assert_eq!(
        op(node("Reshape", &["x", "s"], &[]), 17),
        Op::Reshape(Reshape { allowzero: false })
    );
    assert_eq!(op(node("Dropout", &["x"], &[]), 17), Op::Identity);
    let Op::ConstantOfShape(c) = op(node("ConstantOfShape", &["s"], &[]), 17) else {
        panic!()
    };
    assert_eq!(c.value.f32s().unwrap(), &[0.0]);
}

#[test]
fn old_opset_attributes_are_read_or_refused() {
    // Dropout's is_test (opset < 7) and ratio change nothing at inference.
    assert_eq!(
        op(
            node(
                "Dropout",
                &["x"],
                &[("is_test", A::I(1)), ("ratio", A::F(0.5))]
            ),
            6
        ),
        Op::Identity
    );
    // BatchNormalization's spatial (opset < 9): 1 is the only form lrpc computes.
    let bn = node(
        "BatchNormalization",
        &["x", "s", "b", "m", "v"],
        &[("spatial", A::I(1))],
    );
    assert_eq!(op(bn, 7), Op::BatchNorm(BatchNorm { epsilon: 1e-5 }));
    let bn = node(
        "BatchNormalization",
        &["x", "s", "b", "m", "v"],
        &[("spatial", A::I(0))],
    );
    assert!(run(&bn, 7).err().unwrap().contains("spatial=0"));
}

#[test]
fn softmax_axis_default_changed_in_opset_13() {
    assert_eq!(
        op(node("Softmax", &["x"], &[]), 11),
        Op::Softmax(Softmax {
            axis: 1,
            coerce_2d: true
        })
    );
    assert_eq!(
        op(node("Softmax", &["x"], &[]), 13),
        Op::Softmax(Softmax {
            axis: -1,
            coerce_2d: false
        })
    );
}

#[test]
fn parameters_moved_from_attributes_to_inputs() {
    let clip = Op::Activation(Activation::Clip {
        min: -1.0,
        max: 6.0,
    });
    assert_eq!(
        op(
            node("Clip", &["x"], &[("min", A::F(-1.0)), ("max", A::F(6.0))]),
            6
        ),
        clip
    );
    assert_eq!(op(node("Clip", &["x", "lo", "hi"], &[]), 11), clip);
    let sq = Op::Squeeze(Squeeze {
        axes: Some(vec![0, 2]),
    });
    assert_eq!(
        op(node("Squeeze", &["x"], &[("axes", A::Is(&[0, 2]))]), 11),
        sq
    );
    assert_eq!(op(node("Squeeze", &["x", "axes"], &[]), 13), sq);
    let pad = Op::Pad(Pad {
        pads: vec![0, 1, 0, 2],
        value: 0.0,
        mode: PadMode::Constant,
    });
    assert_eq!(
        op(node("Pad", &["x"], &[("pads", A::Is(&[0, 1, 0, 2]))]), 2),
        pad
    );
    assert_eq!(
        op(
            node("Pad", &["x"], &[("paddings", A::Is(&[0, 1, 0, 2]))]),
            1
        ),
        pad
    );
    assert_eq!(op(node("Pad", &["x", "pads"], &[]), 11), pad);
    let slice = |axes| {
        Op::Slice(Slice {
            starts: vec![1],
            ends: vec![-1],
            axes,
            steps: None,
        })
    };
    assert_eq!(
        op(
            node(
                "Slice",
                &["x"],
                &[("starts", A::Is(&[1])), ("ends", A::Is(&[-1]))]
            ),
            9
        ),
        slice(None)
    );
    assert_eq!(
        op(node("Slice", &["x", "starts", "ends"], &[]), 13),
        slice(None)
    );
    // Reshape's shape attribute (opset < 5) becomes a constant input.
    let r = run(&node("Reshape", &["x"], &[("shape", A::Is(&[1, -1]))]), 1).unwrap();
    assert!(
        matches!(r.nodes[0].inputs.as_slice(), [Source::Input(0), Source::Const(role, t)] if role == "shape" && t.i64s().unwrap() == [1, -1])
    );
}

#[test]
fn refusals_name_the_problem() {
    let cases: &[(NodeProto, i64, &str)] = &[
        // Einsum over the one input of shape [1, 3, 8, 8].
        (
            node("Einsum", &["x"], &[("equation", A::S("ij->i"))]),
            17,
            "names 2 axes, its input has 4",
        ),
        (
            node("Einsum", &["x"], &[("equation", A::S("abcd->e"))]),
            17,
            "output letter 'e'",
        ),
        (
            node("Einsum", &["x"], &[("equation", A::S("abcd,ab->a"))]),
            17,
            "2 input terms for 1 inputs",
        ),
        (
            node("Einsum", &["x"], &[("equation", A::S("abcc->a"))]),
            17,
            "(a diagonal)",
        ),
        (
            node("Einsum", &["x"], &[("equation", A::S("......->"))]),
            17,
            "more than one ellipsis",
        ),
        (
            node("Einsum", &["x"], &[("equation", A::S("ab1d->a"))]),
            17,
            "not a letter",
        ),
        (
            node("Conv", &["x", "w"], &[("strides", A::Is(&[0]))]),
            17,
            "must be positive",
        ),
        (
            node("Conv", &["x", "w"], &[("auto_pad", A::S("SIDEWAYS"))]),
            17,
            "unknown value 'SIDEWAYS'",
        ),
        (
            node("Conv", &["x", "w"], &[("group", A::I(0))]),
            17,
            "'group' must be positive",
        ),
        (
            node("Conv", &["x", "w"], &[("group", A::F(2.0))]),
            17,
            "should be INT, found FLOAT",
        ),
        (
            node("Gemm", &["a", "b"], &[("transA", A::I(2))]),
            17,
            "must be 0 or 1",
        ),
        (
            node("Pad", &["x", "pads"], &[("mode", A::S("mirror"))]),
            17,
            "'mirror' is not supported",
        ),
        (
            node("Squeeze", &["x", "computed"], &[]),
            13,
            "must be a constant",
        ),
        (node("Unsqueeze", &["x"], &[]), 11, "axes are required"),
        (
            node(
                "BatchNormalization",
                &["x", "s", "b", "m", "v"],
                &[("training_mode", A::I(1))],
            ),
            15,
            "training mode",
        ),
        (
            node("MaxPool", &["x"], &[]),
            17,
            "'kernel_shape' is required",
        ),
        (node("Relu", &["x", "y"], &[]), 17, "takes 1 inputs, got 2"),
        (
            node("Cast", &["x"], &[("to", A::I(8))]),
            17,
            "STRING is not supported",
        ),
        (node("NoSuchOp", &["x"], &[]), 17, "unsupported"),
    ];
    for (n, opset, want) in cases {
        let err = match run(n, *opset) {
            Ok(_) => panic!("{} {:?} should be refused", n.op_type, n.attribute),
            Err(e) => e,
        };
        assert!(err.contains(want), "{}: '{err}' lacks '{want}'", n.op_type);
    }
}
