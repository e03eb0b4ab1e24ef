//! Compiled element-wise kernels against their reference semantics, over lengths that are not
//! multiples of the vector width (the scalar tail) and lengths below it, and against the
//! interpreter's ops for the same computation.

use super::*;
use crate::interp;
use crate::ir::ops::{Activation, BinaryOp, Pointwise};
use crate::ir::{Op, Tensor};

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
        let inputs: Vec<Vec<f32>> = (0..kernel.inputs).map(|k| data(n, 7 + k as u32)).collect();
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
        inputs: 1,
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
    ];
    for a in activations {
        check(&mut jit, &unary(Instr::Activation(a, 0)), a.name());
        let grad = Kernel {
            inputs: 2,
            body: vec![
                Instr::Load(0),
                Instr::Load(1),
                Instr::ActivationGrad(a, 0, 1),
            ],
            output: 2,
        };
        check(&mut jit, &grad, &format!("{} gradient", a.name()));
    }
    for op in [BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div] {
        let k = Kernel {
            inputs: 2,
            body: vec![Instr::Load(0), Instr::Load(1), Instr::Binary(op, 0, 1)],
            output: 2,
        };
        check(&mut jit, &k, op.name());
    }
}

#[test]
fn the_epsilon_rule_epilogue_equals_the_interpreter() {
    // R_in = x * c, c = W^T (R / s(z)): the element-wise part is R / s(z), then x * c.
    let mut jit = Jit::new().unwrap();
    let q = Kernel {
        inputs: 2,
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
        inputs: 1,
        body: vec![Instr::Binary(BinaryOp::Add, 0, 1)],
        output: 0,
    };
    assert!(jit.compile(&bad).is_err(), "reads later values");
    let k = Kernel {
        inputs: 2,
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
