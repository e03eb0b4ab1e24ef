//! Element-wise kernels: a straight-line program over f32 inputs, in SSA form (each instruction's
//! operands are earlier instructions), evaluated element by element. An input is read either at
//! the output's index or, for a broadcast operand, at `(i / inner) % period` (a per-channel or
//! trailing-axis vector), so bias, BatchNorm and rule factors need no expanded copy.

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
    /// (c, a, b): a where c is nonzero, else b.
    Select(u32, u32, u32),
}

/// How element i of the output finds its element in one input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    /// Element i.
    Full,
    /// Element `(i / inner) % period`: the input repeats along the outer axes and is constant
    /// along the `inner` innermost elements.
    Periodic { inner: usize, period: usize },
}

impl Access {
    /// The input element read for output element `i`.
    pub fn index(self, i: usize) -> usize {
        match self {
            Access::Full => i,
            Access::Periodic { inner, period } => (i / inner.max(1)) % period.max(1),
        }
    }

    /// Whether 4 consecutive outputs starting at a multiple of 4 read either 4 consecutive
    /// elements or one element 4 times (so the vector loop can load or splat).
    pub fn vectorizable(self) -> bool {
        match self {
            Access::Full => true,
            Access::Periodic { inner, period } => {
                period == 1 || inner.is_multiple_of(4) || (inner == 1 && period.is_multiple_of(4))
            }
        }
    }

    /// How many elements an input read this way over `len` outputs must hold.
    pub fn required_len(self, len: usize) -> usize {
        match self {
            Access::Full => len,
            Access::Periodic { inner, period } => {
                if len == 0 {
                    0
                } else {
                    period.min((len - 1) / inner.max(1) + 1)
                }
            }
        }
    }
}

/// A kernel: out[i] = body evaluated at element i, the value of instruction `output`.
#[derive(Clone, Debug, PartialEq)]
pub struct Kernel {
    /// How each input is read.
    pub inputs: Vec<Access>,
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
                Instr::Load(k) => *k < self.inputs.len(),
                Instr::Const(_) => true,
                Instr::Binary(_, a, b) | Instr::ActivationGrad(_, a, b) => ok(a) && ok(b),
                Instr::Pointwise(_, a) | Instr::Activation(_, a) => ok(a),
                Instr::Select(c, a, b) => ok(c) && ok(a) && ok(b),
            };
            if !valid {
                op_bail!("instruction {i} ({ins:?}) reads a later value or a missing input");
            }
        }
        Ok(())
    }

    /// Whether every instruction has an f32x4 form (functions computed by a call are scalar
    /// only) and every input a vector access.
    pub fn vectorizable(&self) -> bool {
        self.inputs.iter().all(|a| a.vectorizable())
            && self.body.iter().all(|i| match *i {
                Instr::Activation(a, _) => a.vectorizes(),
                Instr::ActivationGrad(a, _, _) => native_gradient(a),
                Instr::Binary(op, _, _) => op.vectorizes(),
                _ => true,
            })
    }

    /// The reference semantics, element by element (what compiled kernels are tested against).
    pub fn eval(&self, inputs: &[&[f32]], out: &mut [f32]) {
        let mut v = vec![0f32; self.body.len()];
        for (i, o) in out.iter_mut().enumerate() {
            for (j, ins) in self.body.iter().enumerate() {
                v[j] = match *ins {
                    Instr::Load(k) => inputs[k][self.inputs[k].index(i)],
                    Instr::Const(c) => c,
                    Instr::Binary(op, a, b) => op.f32(v[a as usize], v[b as usize]),
                    Instr::Pointwise(p, a) => p.apply(v[a as usize]),
                    Instr::Activation(f, a) => f.apply(v[a as usize]),
                    Instr::ActivationGrad(f, x, dy) => {
                        v[dy as usize] * ActivationGrad { activation: f }.derivative(v[x as usize])
                    }
                    Instr::Select(c, a, b) => {
                        if v[c as usize] != 0.0 {
                            v[a as usize]
                        } else {
                            v[b as usize]
                        }
                    }
                };
            }
            *o = v[self.output as usize];
        }
    }
}

/// Whether compiled kernels compute f'(x) of `a` inline (the others call
/// [`crate::runtime::code::lrpc_unaryf`]).
pub fn native_gradient(a: Activation) -> bool {
    matches!(
        a,
        Activation::Relu | Activation::LeakyRelu { .. } | Activation::Clip { .. }
    )
}
