//! Each op on small inputs whose answers are worked out by hand (or by a second, independent
//! formulation), including the odd cases: padding, strides, dilation, groups, ceil mode,
//! broadcasting, negative axes and indices.

use std::sync::Arc;

use super::eval;
use crate::ir::ops::*;
use crate::ir::{Op, Tensor};

fn t(shape: &[usize], v: &[f32]) -> Tensor {
    Tensor::from_f32(shape.to_vec(), v.to_vec()).unwrap()
}

fn ti(shape: &[usize], v: &[i64]) -> Tensor {
    Tensor::from_i64(shape.to_vec(), v.to_vec()).unwrap()
}

fn iota(shape: &[usize]) -> Tensor {
    let n = shape.iter().product::<usize>();
    t(shape, &(0..n).map(|i| i as f32).collect::<Vec<_>>())
}

fn run(op: Op, inputs: &[&Tensor]) -> Tensor {
    eval(&op, inputs).unwrap_or_else(|e| panic!("{}: {e}", op.name()))
}

fn window(strides: &[usize], dilations: &[usize], pads: &[usize], ceil_mode: bool) -> Window {
    Window {
        strides: strides.to_vec(),
        dilations: dilations.to_vec(),
        pads: pads.to_vec(),
        auto_pad: AutoPad::NotSet,
        ceil_mode,
    }
}

/// Direct definition of a 1-D convolution, independent of the interpreter's loop order.
fn conv1d_direct(
    x: &[f32],
    w: &[f32],
    k: usize,
    stride: usize,
    dil: usize,
    pad: (usize, usize),
) -> Vec<f32> {
    let n = x.len() as isize;
    let out = (x.len() + pad.0 + pad.1 - (k - 1) * dil - 1) / stride + 1;
    (0..out)
        .map(|o| {
            (0..k)
                .map(|j| {
                    let i = (o * stride + j * dil) as isize - pad.0 as isize;
                    if (0..n).contains(&i) {
                        w[j] * x[i as usize]
                    } else {
                        0.0
                    }
                })
                .sum()
        })
        .collect()
}

#[test]
fn conv1d_with_stride_dilation_and_asymmetric_padding() {
    let x: Vec<f32> = (0..11).map(|i| (i as f32 * 0.7).sin()).collect();
    let w = [0.5, -1.0, 2.0];
    let conv = Conv {
        kernel_shape: None,
        window: window(&[2], &[2], &[3, 1], false),
        group: 1,
    };
    let y = run(Op::Conv(conv), &[&t(&[1, 1, 11], &x), &t(&[1, 1, 3], &w)]);
    let want = conv1d_direct(&x, &w, 3, 2, 2, (3, 1));
    assert_eq!(y.shape(), &[1, 1, want.len()]);
    for (a, b) in y.f32s().unwrap().iter().zip(&want) {
        assert!((a - b).abs() < 1e-6, "{a} vs {b}");
    }
}

#[test]
fn grouped_conv2d_equals_separate_convs() {
    // Two groups of one input channel each: output channel g sees only input channel g.
    let x = iota(&[1, 2, 3, 3]);
    let w = t(&[2, 1, 2, 2], &[1.0, 0.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0]);
    let b = t(&[2], &[10.0, -10.0]);
    let conv = Conv {
        kernel_shape: Some(vec![2, 2]),
        window: window(&[], &[], &[], false),
        group: 2,
    };
    let y = run(Op::Conv(conv), &[&x, &w, &b]);
    assert_eq!(y.shape(), &[1, 2, 2, 2]);
    // Channel 0: x[i,j] + x[i+1,j+1] + 10 over 0..9; channel 1: x[i,j+1] + x[i+1,j] - 10 over 9..18.
    assert_eq!(
        y.f32s().unwrap(),
        &[14.0, 16.0, 20.0, 22.0, 12.0, 14.0, 18.0, 20.0]
    );
}

#[test]
fn max_pool_ceil_mode_and_padding() {
    let x = iota(&[1, 1, 1, 5]);
    let pool = |ceil, pads: &[usize]| Pool {
        kind: PoolKind::Max,
        kernel_shape: vec![1, 2],
        window: window(&[1, 2], &[], pads, ceil),
    };
    assert_eq!(
        run(Op::Pool(pool(false, &[])), &[&x]).f32s().unwrap(),
        &[1.0, 3.0]
    );
    assert_eq!(
        run(Op::Pool(pool(true, &[])), &[&x]).f32s().unwrap(),
        &[1.0, 3.0, 4.0]
    );
    assert_eq!(
        run(Op::Pool(pool(false, &[0, 1, 0, 1])), &[&x])
            .f32s()
            .unwrap(),
        &[0.0, 2.0, 4.0]
    );
}

#[test]
fn average_pool_count_include_pad() {
    let x = t(&[1, 1, 1, 3], &[3.0, 6.0, 9.0]);
    let pool = |include| Pool {
        kind: PoolKind::Average {
            count_include_pad: include,
        },
        kernel_shape: vec![1, 2],
        window: window(&[1, 2], &[], &[0, 1, 0, 0], false),
    };
    // Windows: [pad, 3], [6, 9].
    assert_eq!(
        run(Op::Pool(pool(false)), &[&x]).f32s().unwrap(),
        &[3.0, 7.5]
    );
    assert_eq!(
        run(Op::Pool(pool(true)), &[&x]).f32s().unwrap(),
        &[1.5, 7.5]
    );
}

#[test]
fn global_pools() {
    let x = t(&[1, 2, 2], &[1.0, -3.0, 5.0, 7.0]);
    assert_eq!(
        run(Op::GlobalPool(GlobalPool::Max), &[&x]).f32s().unwrap(),
        &[1.0, 7.0]
    );
    let avg = run(Op::GlobalPool(GlobalPool::Average), &[&x]);
    assert_eq!(
        (avg.shape(), avg.f32s().unwrap()),
        (&[1usize, 2, 1][..], &[-1.0f32, 6.0][..])
    );
}

#[test]
fn gemm_transposes_alpha_beta_and_broadcast_c() {
    let a = t(&[2, 1], &[1.0, 2.0]); // A' = [[1, 2]] with trans_a
    let b = t(&[3, 2], &[1.0, 0.0, 0.0, 1.0, 1.0, 1.0]); // B' = b^T, 2 x 3
    let c = t(&[3], &[1.0, 2.0, 3.0]);
    let g = Gemm {
        alpha: 2.0,
        beta: 0.5,
        trans_a: true,
        trans_b: true,
    };
    let y = run(Op::Gemm(g), &[&a, &b, &c]);
    assert_eq!(y.shape(), &[1, 3]);
    assert_eq!(y.f32s().unwrap(), &[2.5, 5.0, 7.5]);
}

#[test]
fn matmul_broadcasts_batch_and_promotes_vectors() {
    let a = iota(&[2, 2, 3]);
    let b = t(&[3], &[1.0, 0.0, -1.0]);
    let y = run(Op::MatMul, &[&a, &b]);
    assert_eq!(
        (y.shape(), y.f32s().unwrap()),
        (&[2usize, 2][..], &[-2.0f32, -2.0, -2.0, -2.0][..])
    );
    let w = t(&[3, 1], &[1.0, 1.0, 1.0]);
    let y = run(Op::MatMul, &[&a, &w]);
    assert_eq!(y.f32s().unwrap(), &[3.0, 12.0, 21.0, 30.0]);
}

#[test]
fn broadcasting_binaries_on_f32_and_i64() {
    let y = run(
        Op::Binary(BinaryOp::Sub),
        &[&iota(&[2, 3]), &t(&[2, 1], &[1.0, 10.0])],
    );
    assert_eq!(y.f32s().unwrap(), &[-1.0, 0.0, 1.0, -7.0, -6.0, -5.0]);
    let y = run(
        Op::Binary(BinaryOp::Div),
        &[&ti(&[2], &[7, -7]), &ti(&[], &[2])],
    );
    assert_eq!(y.i64s().unwrap(), &[3, -3]);
    assert!(
        eval(
            &Op::Binary(BinaryOp::Div),
            &[&ti(&[1], &[1]), &ti(&[1], &[0])]
        )
        .is_err()
    );
    assert!(eval(&Op::Binary(BinaryOp::Add), &[&iota(&[2, 3]), &iota(&[2])]).is_err());
    let s = run(Op::Sum, &[&iota(&[2]), &t(&[1], &[1.0]), &iota(&[2])]);
    assert_eq!(s.f32s().unwrap(), &[1.0, 3.0]);
}

#[test]
fn activations() {
    let x = t(&[4], &[-2.0, -0.5, 0.5, 8.0]);
    let act = |a| run(Op::Activation(a), &[&x]).f32s().unwrap().to_vec();
    assert_eq!(act(Activation::Relu), [0.0, 0.0, 0.5, 8.0]);
    assert_eq!(
        act(Activation::LeakyRelu { alpha: 0.1 }),
        [-0.2, -0.05, 0.5, 8.0]
    );
    assert_eq!(
        act(Activation::Clip { min: 0.0, max: 6.0 }),
        [0.0, 0.0, 0.5, 6.0]
    );
    assert!((act(Activation::Sigmoid)[2] - 0.622_459_3).abs() < 1e-6);
    assert!((act(Activation::Tanh)[1] + 0.462_117_16).abs() < 1e-6);
}

#[test]
fn batch_norm_lrn_softmax() {
    let x = t(&[1, 2, 1], &[1.0, 2.0]);
    let p = |a, b| t(&[2], &[a, b]);
    let y = run(
        Op::BatchNorm(BatchNorm { epsilon: 0.0 }),
        &[&x, &p(2.0, 1.0), &p(0.5, 0.0), &p(1.0, 0.0), &p(4.0, 1.0)],
    );
    assert_eq!(y.f32s().unwrap(), &[0.5, 2.0]);
    // LRN size 2 window for channel c is {c, c+1}... per ONNX: c - 0 ..= c + 1.
    let y = run(
        Op::Lrn(Lrn {
            size: 2,
            alpha: 2.0,
            beta: 1.0,
            bias: 1.0,
        }),
        &[&x],
    );
    assert_eq!(y.f32s().unwrap(), &[1.0 / 6.0, 2.0 / 5.0]);
    let s = run(
        Op::Softmax(Softmax {
            axis: 0,
            coerce_2d: false,
        }),
        &[&t(&[2, 1], &[0.0, 0.0])],
    );
    assert_eq!(s.f32s().unwrap(), &[0.5, 0.5]);
    // Opset < 13 form: axis 1 of [1, 2, 1] flattens to one row of two.
    let s = run(
        Op::Softmax(Softmax {
            axis: 1,
            coerce_2d: true,
        }),
        &[&t(&[1, 2, 1], &[1.0, 1.0])],
    );
    assert_eq!(s.f32s().unwrap(), &[0.5, 0.5]);
}

#[test]
fn data_movement() {
    let x = iota(&[2, 3]);
    let y = run(Op::Transpose(Transpose { perm: None }), &[&x]);
    assert_eq!(
        (y.shape(), y.f32s().unwrap()),
        (&[3usize, 2][..], &[0.0f32, 3.0, 1.0, 4.0, 2.0, 5.0][..])
    );
    let y = run(
        Op::Concat(Concat { axis: -1 }),
        &[&x, &t(&[2, 1], &[9.0, 8.0])],
    );
    assert_eq!(y.f32s().unwrap(), &[0.0, 1.0, 2.0, 9.0, 3.0, 4.0, 5.0, 8.0]);
    let y = run(
        Op::Pad(Pad {
            pads: vec![0, 1, 1, 0],
            value: -1.0,
            mode: PadMode::Constant,
        }),
        &[&x],
    );
    assert_eq!(y.shape(), &[3, 4]);
    assert_eq!(&y.f32s().unwrap()[..5], &[-1.0, 0.0, 1.0, 2.0, -1.0]);
    let slice = Slice {
        starts: vec![-1],
        ends: vec![i64::MIN],
        axes: Some(vec![1]),
        steps: Some(vec![-2]),
    };
    let y = run(Op::Slice(slice), &[&x]);
    assert_eq!(
        (y.shape(), y.f32s().unwrap()),
        (&[2usize, 2][..], &[2.0f32, 0.0, 5.0, 3.0][..])
    );
    let y = run(Op::Gather(Gather { axis: 1 }), &[&x, &ti(&[], &[-1])]);
    assert_eq!(
        (y.shape(), y.f32s().unwrap()),
        (&[2usize][..], &[2.0f32, 5.0][..])
    );
    assert!(eval(&Op::Gather(Gather { axis: 1 }), &[&x, &ti(&[1], &[3])]).is_err());
    let y = run(
        Op::Reshape(Reshape { allowzero: false }),
        &[&x, &ti(&[2], &[0, -1])],
    );
    assert_eq!(y.shape(), &[2, 3]);
    let y = run(Op::Unsqueeze(Unsqueeze { axes: vec![-1, 0] }), &[&x]);
    assert_eq!(y.shape(), &[1, 2, 3, 1]);
    let y = run(Op::Flatten(Flatten { axis: 0 }), &[&x]);
    assert_eq!(y.shape(), &[1, 6]);
}

#[test]
fn shape_arithmetic() {
    let x = iota(&[2, 3, 4]);
    let s = run(
        Op::Shape(ShapeOf {
            start: -2,
            end: None,
        }),
        &[&x],
    );
    assert_eq!(s.i64s().unwrap(), &[3, 4]);
    let c = run(
        Op::Cast(Cast {
            to: crate::ir::DType::F32,
            boolean: false,
        }),
        &[&s],
    );
    assert_eq!(c.f32s().unwrap(), &[3.0, 4.0]);
    let signs = Tensor::from_f32(vec![3], vec![-0.5, 0.0, 2.0]).unwrap();
    let b = run(
        Op::Cast(Cast {
            to: crate::ir::DType::I64,
            boolean: true,
        }),
        &[&signs],
    );
    assert_eq!(b.i64s().unwrap(), &[1, 0, 1]);
    let fill = ConstantOfShape {
        value: Arc::new(Tensor::from_f32(vec![], vec![2.5]).unwrap()),
    };
    let y = run(Op::ConstantOfShape(fill), &[&s]);
    assert_eq!((y.shape(), y.f32s().unwrap()[11]), (&[3usize, 4][..], 2.5));
}

fn seeded(shape: &[usize], seed: u32) -> Tensor {
    // A small deterministic generator; the values only need to be irregular.
    let n = shape.iter().product::<usize>();
    let mut s = seed.wrapping_mul(2654435761).wrapping_add(12345);
    let v = (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s % 2001) as f32 / 1000.0 - 1.0
        })
        .collect::<Vec<_>>();
    t(shape, &v)
}

fn dot(a: &Tensor, b: &Tensor) -> f64 {
    a.f32s()
        .unwrap()
        .iter()
        .zip(b.f32s().unwrap())
        .map(|(x, y)| *x as f64 * *y as f64)
        .sum()
}

/// <A x, dy> == <x, A^T dy>: the defining property of an adjoint, on odd geometries.
#[test]
fn conv_transpose_is_the_adjoint_of_conv() {
    let cases = [
        // (x shape, w shape, strides, dilations, pads, group)
        (
            vec![2, 4, 7, 5],
            vec![6, 2, 3, 2],
            vec![2, 1],
            vec![1, 2],
            vec![1, 0, 2, 1],
            2,
        ),
        (
            vec![1, 3, 9, 9],
            vec![5, 3, 4, 4],
            vec![3, 2],
            vec![1, 1],
            vec![0, 2, 1, 0],
            1,
        ),
        (
            vec![1, 2, 11],
            vec![4, 1, 3],
            vec![2],
            vec![3],
            vec![2, 1],
            2,
        ),
    ];
    for (k, (xs, ws, strides, dilations, pads, group)) in cases.into_iter().enumerate() {
        let conv = Conv {
            kernel_shape: None,
            window: Window {
                strides,
                dilations,
                pads,
                auto_pad: AutoPad::NotSet,
                ceil_mode: false,
            },
            group,
        };
        let (x, w) = (seeded(&xs, 1 + k as u32), seeded(&ws, 7 + k as u32));
        let y = run(Op::Conv(conv.clone()), &[&x, &w]);
        let dy = seeded(y.shape(), 13 + k as u32);
        let dx = run(
            Op::ConvTranspose(ConvTranspose {
                conv,
                input_shape: xs.clone(),
            }),
            &[&dy, &w],
        );
        assert_eq!(dx.shape(), xs.as_slice());
        let (lhs, rhs) = (dot(&y, &dy), dot(&x, &dx));
        assert!(
            (lhs - rhs).abs() < 1e-4 * lhs.abs().max(1.0),
            "case {k}: {lhs} vs {rhs}"
        );
    }
}

#[test]
fn pool_and_slice_adjoints() {
    let x = seeded(&[1, 2, 7, 6], 3);
    for kind in [
        PoolKind::Average {
            count_include_pad: false,
        },
        PoolKind::Average {
            count_include_pad: true,
        },
    ] {
        let pool = Pool {
            kind,
            kernel_shape: vec![3, 2],
            window: window(&[2, 2], &[], &[1, 0, 1, 1], true),
        };
        let y = run(Op::Pool(pool.clone()), &[&x]);
        let dy = seeded(y.shape(), 5);
        let dx = run(Op::PoolBackward(PoolBackward { pool }), &[&x, &dy]);
        assert!((dot(&y, &dy) - dot(&x, &dx)).abs() < 1e-4, "{kind:?}");
    }
    // MaxPool routes each gradient to one position: the total is kept.
    let pool = Pool {
        kind: PoolKind::Max,
        kernel_shape: vec![2, 2],
        window: window(&[2, 2], &[], &[], true),
    };
    let dy = seeded(run(Op::Pool(pool.clone()), &[&x]).shape(), 9);
    let dx = run(Op::PoolBackward(PoolBackward { pool }), &[&x, &dy]);
    let total = |t: &Tensor| t.f32s().unwrap().iter().sum::<f32>();
    assert!((total(&dx) - total(&dy)).abs() < 1e-5);
    let slice = Slice {
        starts: vec![5, 1],
        ends: vec![0, 6],
        axes: Some(vec![2, 3]),
        steps: Some(vec![-2, 2]),
    };
    let y = run(Op::Slice(slice.clone()), &[&x]);
    let dy = seeded(y.shape(), 11);
    let dx = run(
        Op::SliceBackward(SliceBackward {
            slice,
            input_shape: x.shape().to_vec(),
        }),
        &[&dy],
    );
    assert!((dot(&y, &dy) - dot(&x, &dx)).abs() < 1e-5);
}

#[test]
fn activation_derivatives_and_pointwise_rules() {
    let x = t(&[5], &[-1.0, 0.0, 0.5, 6.0, 7.0]);
    let g = t(&[5], &[1.0; 5]);
    let d = |a| {
        run(
            Op::ActivationGrad(ActivationGrad { activation: a }),
            &[&x, &g],
        )
        .f32s()
        .unwrap()
        .to_vec()
    };
    assert_eq!(d(Activation::Relu), [0.0, 0.0, 1.0, 1.0, 1.0]);
    assert_eq!(
        d(Activation::Clip { min: 0.0, max: 6.0 }),
        [0.0, 0.0, 1.0, 0.0, 0.0]
    );
    assert_eq!(
        d(Activation::LeakyRelu { alpha: 0.1 }),
        [0.1, 0.1, 1.0, 1.0, 1.0]
    );
    let s = run(
        Op::Pointwise(Pointwise::Stabilize { epsilon: 0.5 }),
        &[&t(&[3], &[-1.0, 0.0, 1.0])],
    );
    assert_eq!(s.f32s().unwrap(), &[-1.5, 0.5, 1.5], "sgn0(0) = +1");
}

#[test]
fn lrn_backward_matches_finite_differences() {
    let lrn = Lrn {
        size: 3,
        alpha: 0.3,
        beta: 0.75,
        bias: 1.0,
    };
    let x = seeded(&[1, 5, 2, 1], 21);
    let g = seeded(&[1, 5, 2, 1], 22);
    let dx = run(Op::LrnBackward(LrnBackward { lrn: lrn.clone() }), &[&x, &g]);
    let f = |x: &Tensor| dot(&run(Op::Lrn(lrn.clone()), &[x]), &g);
    let h = 1e-3f32;
    for i in 0..x.len() {
        let bump = |d: f32| {
            let mut v = x.f32s().unwrap().to_vec();
            v[i] += d;
            t(x.shape(), &v)
        };
        let numeric = (f(&bump(h)) - f(&bump(-h))) / (2.0 * h as f64);
        let analytic = dx.f32s().unwrap()[i] as f64;
        assert!(
            (numeric - analytic).abs() < 2e-3,
            "element {i}: {numeric} vs {analytic}"
        );
    }
}
