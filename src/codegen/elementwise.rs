//! Element-wise kernels: a straight-line program over same-length f32 inputs, in SSA form (each
//! instruction's operands are earlier instructions), evaluated element by element.

use crate::error::OpResult;
use crate::ir::ops::{Activation, ActivationGrad, BinaryOp, Pointwise};
use crate::{op_bail, op_ensure};

/// One instruction; operands index earlier instructions.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Instr {
    /// Element i of input k.
    Load(usize),
    Const(f32),
    Binary(BinaryOp, u32, u32),
    Pointwise(Pointwise, u32),
    Activation(Activation, u32),
    /// dy * f'(x): (activation, x, dy).
    ActivationGrad(Activation, u32, u32),
}

/// A kernel: out[i] = body evaluated at element i, the value of instruction `output`.
#[derive(Clone, Debug, PartialEq)]
pub struct Kernel {
    pub inputs: usize,
    pub body: Vec<Instr>,
    pub output: u32,
}

impl Kernel {
    /// Checks operands refer to earlier instructions and loads to existing inputs.
    pub fn validate(&self) -> OpResult<()> {
        op_ensure!(
            !self.body.is_empty(),
            "a kernel needs at least one instruction"
        );
        op_ensure!(
            (self.output as usize) < self.body.len(),
            "output {} is not an instruction",
            self.output
        );
        for (i, ins) in self.body.iter().enumerate() {
            let ok = |a: &u32| (*a as usize) < i;
            let valid = match ins {
                Instr::Load(k) => *k < self.inputs,
                Instr::Const(_) => true,
                Instr::Binary(_, a, b) | Instr::ActivationGrad(_, a, b) => ok(a) && ok(b),
                Instr::Pointwise(_, a) | Instr::Activation(_, a) => ok(a),
            };
            if !valid {
                op_bail!("instruction {i} ({ins:?}) reads a later value or a missing input");
            }
        }
        Ok(())
    }

    /// Whether every instruction has an f32x4 form (exp-based activations are scalar only).
    pub fn vectorizable(&self) -> bool {
        !self.body.iter().any(|i| {
            matches!(
                i,
                Instr::Activation(Activation::Sigmoid | Activation::Tanh, _)
                    | Instr::ActivationGrad(Activation::Sigmoid | Activation::Tanh, _, _)
            )
        })
    }

    /// The reference semantics, element by element (what compiled kernels are tested against).
    pub fn eval(&self, inputs: &[&[f32]], out: &mut [f32]) {
        let mut v = vec![0f32; self.body.len()];
        for (i, o) in out.iter_mut().enumerate() {
            for (j, ins) in self.body.iter().enumerate() {
                v[j] = match *ins {
                    Instr::Load(k) => inputs[k][i],
                    Instr::Const(c) => c,
                    Instr::Binary(op, a, b) => {
                        let (a, b) = (v[a as usize], v[b as usize]);
                        match op {
                            BinaryOp::Add => a + b,
                            BinaryOp::Sub => a - b,
                            BinaryOp::Mul => a * b,
                            BinaryOp::Div => a / b,
                        }
                    }
                    Instr::Pointwise(p, a) => p.apply(v[a as usize]),
                    Instr::Activation(f, a) => f.apply(v[a as usize]),
                    Instr::ActivationGrad(f, x, dy) => {
                        v[dy as usize] * ActivationGrad { activation: f }.derivative(v[x as usize])
                    }
                };
            }
            *o = v[self.output as usize];
        }
    }
}
