//! Compiled element-wise kernels against their reference semantics, over lengths that are not
//! multiples of the vector width (the scalar tail) and lengths below it, and against the
//! interpreter's ops for the same computation.

use super::*;
use crate::interp;
use crate::ir::ops::{Activation, BinaryOp, Pointwise};
use crate::ir::{Op, Tensor};
use crate::runtime::elementwise::Access;

const LENGTHS: &[usize] = &[0, 1, 3, 4, 5, 8, 17, 1023];

fn data(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2654435761) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            // Include exact zeros: the sign and mask rules treat 0 specially.
            if s.is_multiple_of(11) {
                0.0
            } else {
                (s % 4001) as f32 / 500.0 - 4.0
            }
        })
        .collect()
}

fn check(jit: &mut Jit, kernel: &Kernel, what: &str) {
    let compiled = jit
        .compile(kernel)
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    for &n in LENGTHS {
        let inputs: Vec<Vec<f32>> = kernel
            .inputs
            .iter()
            .enumerate()
            .map(|(k, a)| data(a.required_len(n), 7 + k as u32))
            .collect();
        let refs: Vec<&[f32]> = inputs.iter().map(|v| v.as_slice()).collect();
        let (mut got, mut want) = (vec![f32::NAN; n], vec![0.0; n]);
        compiled.run(&refs, &mut got).unwrap();
        kernel.eval(&refs, &mut want);
        for i in 0..n {
            let (g, w) = (got[i], want[i]);
            let same =
                g == w || (g.is_nan() && w.is_nan()) || (g - w).abs() <= 1e-6 * w.abs().max(1.0);
            assert!(same, "{what} n={n} i={i}: {g} vs {w}");
        }
    }
}

#[test]
fn every_instruction_compiles_and_agrees() {
    let mut jit = Jit::new().unwrap();
    let unary = |i: Instr| Kernel {
        inputs: vec![Access::Full; 1],
        body: vec![Instr::Load(0), i],
        output: 1,
    };
    let pointwise = [
        Pointwise::Stabilize { epsilon: 1e-3 },
        Pointwise::Positive,
        Pointwise::Negative,
        Pointwise::IsPositive,
        Pointwise::IsNegative,
        Pointwise::Square,
        Pointwise::One,
    ];
    for p in pointwise {
        check(&mut jit, &unary(Instr::Pointwise(p, 0)), p.name());
    }
    let activations = [
        Activation::Relu,
        Activation::LeakyRelu { alpha: 0.1 },
        Activation::Clip { min: 0.0, max: 2.0 },
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::HardSigmoid {
            alpha: 0.2,
            beta: 0.5,
        },
        Activation::HardSwish,
        Activation::Elu { alpha: 0.7 },
        Activation::Selu {
            alpha: 1.67,
            gamma: 1.05,
        },
        Activation::Celu { alpha: 2.0 },
        Activation::Softplus,
        Activation::Softsign,
        Activation::Mish,
        Activation::Gelu { tanh: false },
        Activation::Gelu { tanh: true },
        Activation::ThresholdedRelu { alpha: 1.0 },
        Activation::Erf,
        Activation::Exp,
        Activation::Log,
        Activation::Sqrt,
        Activation::Abs,
        Activation::Neg,
        Activation::Reciprocal,
        Activation::Floor,
        Activation::Ceil,
        Activation::Round,
        Activation::RoundStraight,
        Activation::Trunc,
        Activation::NonZero,
        Activation::Not,
        Activation::Sign,
    ];
    for a in activations {
        check(&mut jit, &unary(Instr::Activation(a, 0)), a.name());
        let grad = Kernel {
            inputs: vec![Access::Full; 2],
            body: vec![
                Instr::Load(0),
                Instr::Load(1),
                Instr::ActivationGrad(a, 0, 1),
            ],
            output: 2,
        };
        check(&mut jit, &grad, &format!("{} gradient", a.name()));
    }
    for &op in BinaryOp::ALL {
        let k = Kernel {
            inputs: vec![Access::Full; 2],
            body: vec![Instr::Load(0), Instr::Load(1), Instr::Binary(op, 0, 1)],
            output: 2,
        };
        check(&mut jit, &k, op.name());
    }
    let select = Kernel {
        inputs: vec![Access::Full; 3],
        body: vec![
            Instr::Load(0),
            Instr::Load(1),
            Instr::Load(2),
            Instr::Select(0, 1, 2),
        ],
        output: 3,
    };
    check(&mut jit, &select, "Select");
}

#[test]
fn the_epsilon_rule_epilogue_equals_the_interpreter() {
    // R_in = x * c, c = W^T (R / s(z)): the element-wise part is R / s(z), then x * c.
    let mut jit = Jit::new().unwrap();
    let q = Kernel {
        inputs: vec![Access::Full; 2],
        body: vec![
            Instr::Load(0),
            Instr::Load(1),
            Instr::Pointwise(Pointwise::Stabilize { epsilon: 1e-6 }, 1),
            Instr::Binary(BinaryOp::Div, 0, 2),
        ],
        output: 3,
    };
    let compiled = jit.compile(&q).unwrap();
    let n = 37;
    let (r, z) = (data(n, 1), data(n, 2));
    let mut got = vec![0.0; n];
    compiled.run(&[&r, &z], &mut got).unwrap();
    let t = |v: &[f32]| Tensor::from_f32(vec![n], v.to_vec()).unwrap();
    let s = interp::eval(
        &Op::Pointwise(Pointwise::Stabilize { epsilon: 1e-6 }),
        &[&t(&z)],
    )
    .unwrap();
    let want = interp::eval(&Op::Binary(BinaryOp::Div), &[&t(&r), &s]).unwrap();
    assert_eq!(
        got,
        want.f32s().unwrap(),
        "bitwise equal: same operations in the same order"
    );
}

#[test]
fn mismatched_lengths_and_bad_programs_are_refused() {
    let mut jit = Jit::new().unwrap();
    let bad = Kernel {
        inputs: vec![Access::Full; 1],
        body: vec![Instr::Binary(BinaryOp::Add, 0, 1)],
        output: 0,
    };
    assert!(jit.compile(&bad).is_err(), "reads later values");
    let k = Kernel {
        inputs: vec![Access::Full; 2],
        body: vec![
            Instr::Load(0),
            Instr::Load(1),
            Instr::Binary(BinaryOp::Add, 0, 1),
        ],
        output: 2,
    };
    let c = jit.compile(&k).unwrap();
    let mut out = vec![0.0; 4];
    assert!(c.run(&[&[1.0; 4], &[1.0; 3]], &mut out).is_err());
    assert!(c.run(&[&[1.0; 4]], &mut out).is_err());
}

#[test]
fn periodic_inputs_read_the_broadcast_element() {
    // x * c[channel] + b[last axis]: splatted (inner a multiple of 4), contiguous (inner 1,
    // period a multiple of 4) and scalar (neither) accesses, each in the vector and the tail loop.
    let mut jit = Jit::new().unwrap();
    for (inner, period) in [
        (4, 3),
        (8, 2),
        (1, 4),
        (1, 8),
        (3, 5),
        (1, 1),
        (2, 3),
        (5, 1),
    ] {
        let k = Kernel {
            inputs: vec![
                Access::Full,
                Access::Periodic { inner, period },
                Access::Periodic {
                    inner: 1,
                    period: 4,
                },
            ],
            body: vec![
                Instr::Load(0),
                Instr::Load(1),
                Instr::Binary(BinaryOp::Mul, 0, 1),
                Instr::Load(2),
                Instr::Binary(BinaryOp::Add, 2, 3),
            ],
            output: 4,
        };
        check(
            &mut jit,
            &k,
            &format!("periodic inner {inner} period {period}"),
        );
    }
}

#[test]
fn table_kernels_equal_their_reference() {
    use super::table::{NONE, Reduce, TableKernel, WindowKernel};
    let mut jit = Jit::new().unwrap();
    let src = data(23, 3);
    for kind in [TableKernel::Gather { fill: 0.5 }, TableKernel::Scatter] {
        let id = jit.emitter().table(kind).unwrap();
        jit.finalize().unwrap();
        // SAFETY (test): the signature of `Emitter::table` is `TableFn`.
        let f = unsafe { std::mem::transmute::<*const u8, super::jit::TableFn>(jit.address(id)) };
        // A permutation with holes for the gather; a permutation for the scatter.
        let table: Vec<i32> = (0..23)
            .map(|i| match kind {
                TableKernel::Gather { .. } if i % 5 == 0 => NONE,
                _ => i * 7 % 23,
            })
            .collect();
        let (mut got, mut want) = (vec![9.0; 23], vec![9.0; 23]);
        // SAFETY (test): every table entry indexes 0..23 of src and out, and both hold 23.
        unsafe { f(src.as_ptr(), table.as_ptr(), got.as_mut_ptr(), 3, 23) };
        kind.eval(&src, &table, &mut want, 3..23);
        assert_eq!(got, want, "{kind:?}");
    }
    // Windows of 4 taps (some padding) over planes of 6, 5 outputs each, 3 planes.
    let table: Vec<i32> = (0..20)
        .map(|i| if i % 7 == 3 { NONE } else { i * 5 % 6 })
        .collect();
    let counts: Vec<f32> = (0..5).map(|o| (o % 3 + 1) as f32).collect();
    let (x, dy) = (data(18, 5), data(15, 6));
    for reduce in [Reduce::Max, Reduce::Average] {
        let k = WindowKernel {
            reduce,
            in_plane: 6,
            outputs: 5,
            taps: 4,
        };
        let fwd = jit.emitter().window(&k, false).unwrap();
        let bwd = jit.emitter().window(&k, true).unwrap();
        jit.finalize().unwrap();
        // SAFETY (test): the signatures of `Emitter::window` are these function types.
        let (f, b): (super::jit::WindowForwardFn, super::jit::WindowBackwardFn) = unsafe {
            (
                std::mem::transmute::<*const u8, super::jit::WindowForwardFn>(jit.address(fwd)),
                std::mem::transmute::<*const u8, super::jit::WindowBackwardFn>(jit.address(bwd)),
            )
        };
        let (mut got, mut want) = (vec![0.0; 15], vec![0.0; 15]);
        // SAFETY (test): 3 planes of 6 inputs and 5 outputs; the table indexes 0..6.
        unsafe {
            f(
                x.as_ptr(),
                table.as_ptr(),
                counts.as_ptr(),
                got.as_mut_ptr(),
                0,
                3,
            )
        };
        k.eval_forward(&x, &table, &counts, &mut want, 0..3);
        assert_eq!(got, want, "{reduce:?} forward");
        let (mut got, mut want) = (vec![7.0; 18], vec![7.0; 18]);
        // SAFETY (test): as above, dx has 3 planes of 6.
        unsafe {
            b(
                x.as_ptr(),
                dy.as_ptr(),
                table.as_ptr(),
                counts.as_ptr(),
                got.as_mut_ptr(),
                1,
                3,
            )
        };
        k.eval_backward(&x, &dy, &table, &counts, &mut want, 1..3);
        assert_eq!(got, want, "{reduce:?} backward");
    }
}

#[test]
fn the_memory_plan_never_overlaps_live_buffers() {
    use super::plan::{lifetimes, plan};
    use super::program::{Operand, Program, Step};
    // A chain of totals (the cheapest step) reading buffer i and writing i + 1, with a few
    // long-lived buffers and varying lengths.
    let mut p = Program::default();
    let n = 40;
    p.buffers = (0..n).map(|i| 1 + (i * 37) % 101).collect();
    for i in 0..n - 1 {
        p.steps.push(Step::Total {
            src: Operand::Buffer(i),
            len: 1,
            out: i + 1,
        });
    }
    p.kept = vec![3, 17, 30];
    let life = lifetimes(&p);
    let layout = plan(&p);
    for a in 0..n {
        for b in a + 1..n {
            let overlap_life = life[a].0 <= life[b].1 && life[b].0 <= life[a].1;
            let (oa, ob) = (layout.offsets[a], layout.offsets[b]);
            let overlap_mem = oa < ob + p.buffers[b] && ob < oa + p.buffers[a];
            assert!(
                !(overlap_life && overlap_mem),
                "buffers {a} and {b} are live together and share memory"
            );
        }
        assert!(layout.offsets[a] + p.buffers[a] <= layout.len);
    }
    assert!(layout.len < layout.unshared, "the plan reuses memory");
}

#[test]
fn conv_tiles_and_splits_equal_the_interpreter() {
    use super::gemm::{ConvGemm, ConvShape, Split};
    use crate::ir::ops::{AutoPad, Conv, ConvTranspose, Plane, Window};
    // (batch, cin, cout, group, h, w, k, stride, dilation, pads)
    let cases = [
        (1, 3, 4, 1, 9, 11, 3, 1, 1, [1, 1, 1, 1]),
        (2, 4, 6, 2, 8, 7, 2, 2, 1, [0, 1, 1, 0]),
        (1, 2, 3, 1, 10, 10, 3, 1, 2, [2, 0, 1, 2]),
        (3, 6, 6, 6, 5, 9, 3, 2, 1, [1, 1, 0, 0]),
        (1, 5, 7, 1, 6, 6, 1, 1, 1, [0, 0, 0, 0]),
        (2, 4, 4, 1, 7, 5, 1, 2, 1, [0, 0, 0, 0]),
    ];
    for (i, &(n, cin, cout, group, h, w, k, s, d, pads)) in cases.iter().enumerate() {
        let conv = Conv {
            kernel_shape: None,
            window: Window {
                strides: vec![s, s],
                dilations: vec![d, d],
                pads: pads.to_vec(),
                auto_pad: AutoPad::NotSet,
                ceil_mode: false,
            },
            group,
        };
        let xs = vec![n, cin, h, w];
        let ws = vec![cout, cin / group, k, k];
        let x = Tensor::from_f32(xs.clone(), data(n * cin * h * w, 1 + i as u32)).unwrap();
        let wt = Tensor::from_f32(ws.clone(), data(ws.iter().product(), 2 + i as u32)).unwrap();
        let b = Tensor::from_f32(vec![cout], data(cout, 3)).unwrap();
        let y = interp::eval(&Op::Conv(conv.clone()), &[&x, &wt, &b]).unwrap();
        let dy = Tensor::from_f32(y.shape().to_vec(), data(y.len(), 4 + i as u32)).unwrap();
        let adjoint = ConvTranspose {
            conv: conv.clone(),
            input_shape: xs.clone(),
        };
        let dx = interp::eval(&Op::ConvTranspose(adjoint), &[&dy, &wt]).unwrap();
        let plane = Plane::new(&conv.geometry(&xs, &ws).unwrap()).unwrap();
        let p = y.shape()[2] * y.shape()[3];
        for threads in [1, 2, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            for split in [
                Split::Positions { cols: 1 },
                Split::Positions { cols: 7 },
                Split::Positions { cols: p },
                Split::Channels,
                Split::Images { images: 1 },
                Split::Images { images: 2 },
                Split::Images { images: n.max(1) },
            ] {
                let g = ConvGemm {
                    split,
                    ..ConvGemm::new(
                        ConvShape {
                            batch: n,
                            cin,
                            cout,
                            group,
                            plane,
                        },
                        threads,
                    )
                };
                let mut got = vec![f32::NAN; y.len()];
                let mut scratch = vec![f32::NAN; g.forward_scratch().max(g.backward_scratch())];
                pool.install(|| {
                    g.forward(
                        x.f32s().unwrap(),
                        wt.f32s().unwrap(),
                        Some(b.f32s().unwrap()),
                        &mut got,
                        &mut scratch,
                    )
                });
                let close = |a: &[f32], b: &[f32]| {
                    let scale = b.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
                    a.iter().zip(b).all(|(x, y)| (x - y).abs() <= 1e-5 * scale)
                };
                assert!(
                    close(&got, y.f32s().unwrap()),
                    "case {i} {split:?} x{threads} forward"
                );
                let mut got = vec![f32::NAN; dx.len()];
                pool.install(|| {
                    g.backward(
                        dy.f32s().unwrap(),
                        wt.f32s().unwrap(),
                        &mut got,
                        &mut scratch,
                    )
                });
                assert!(
                    close(&got, dx.f32s().unwrap()),
                    "case {i} x{threads} adjoint"
                );
            }
        }
    }
}
