//! Gemm (Y = alpha * A' B' + beta * C, A and B 2-D, C unidirectionally broadcast to Y) and MatMul
//! (numpy matmul: batched over leading axes, 1-D operands promoted and the axis dropped again).

use super::util::broadcast;
use crate::error::OpResult;
use crate::ir::fact::Fact;
use crate::ir::tensor::DType;
use crate::op_ensure;

/// Gemm attributes.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Gemm {
    pub alpha: f32,
    pub beta: f32,
    pub trans_a: bool,
    pub trans_b: bool,
}

impl Gemm {
    /// (m, k, n) of the product for operand shapes `a` and `b`.
    pub fn dims(&self, a: &[usize], b: &[usize]) -> OpResult<(usize, usize, usize)> {
        op_ensure!(
            a.len() == 2 && b.len() == 2,
            "A {a:?} and B {b:?} must be 2-D"
        );
        let (m, k) = if self.trans_a {
            (a[1], a[0])
        } else {
            (a[0], a[1])
        };
        let (k2, n) = if self.trans_b {
            (b[1], b[0])
        } else {
            (b[0], b[1])
        };
        op_ensure!(
            k == k2,
            "inner dimensions differ: A {a:?} (trans_a {}) and B {b:?} (trans_b {})",
            self.trans_a,
            self.trans_b
        );
        Ok((m, k, n))
    }

    pub fn infer(&self, inputs: &[&Fact]) -> OpResult<Fact> {
        let (m, _, n) = self.dims(&inputs[0].shape, &inputs[1].shape)?;
        if let Some(c) = inputs.get(2) {
            let b = broadcast(&c.shape, &[m, n])?;
            op_ensure!(
                b == [m, n],
                "C {:?} does not broadcast to [{m}, {n}]",
                c.shape
            );
        }
        Ok(Fact::new(DType::F32, vec![m, n]))
    }
}

/// What a MatMul computes: `batch` products of [m, k] x [k, n], giving `output`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MatMulDims {
    pub output: Vec<usize>,
    pub batch: Vec<usize>,
    pub m: usize,
    pub k: usize,
    pub n: usize,
}

/// MatMul's output shape and the batched product it computes.
pub fn matmul_dims(a: &[usize], b: &[usize]) -> OpResult<MatMulDims> {
    op_ensure!(
        !a.is_empty() && !b.is_empty(),
        "MatMul operands must not be scalars"
    );
    let a2: Vec<usize> = if a.len() == 1 {
        vec![1, a[0]]
    } else {
        a.to_vec()
    };
    let b2: Vec<usize> = if b.len() == 1 {
        vec![b[0], 1]
    } else {
        b.to_vec()
    };
    let (m, k) = (a2[a2.len() - 2], a2[a2.len() - 1]);
    let (k2, n) = (b2[b2.len() - 2], b2[b2.len() - 1]);
    op_ensure!(k == k2, "inner dimensions differ: {a:?} x {b:?}");
    let batch = broadcast(&a2[..a2.len() - 2], &b2[..b2.len() - 2])?;
    let mut out = batch.clone();
    if a.len() > 1 {
        out.push(m);
    }
    if b.len() > 1 {
        out.push(n);
    }
    Ok(MatMulDims {
        output: out,
        batch,
        m,
        k,
        n,
    })
}

/// Shape rule of MatMul.
pub fn infer_matmul(inputs: &[&Fact]) -> OpResult<Fact> {
    let dims = matmul_dims(&inputs[0].shape, &inputs[1].shape)?;
    Ok(Fact::new(DType::F32, dims.output))
}
