//! MaxPool and AveragePool over a window, and their global forms. AveragePool divides by the window
//! size when `count_include_pad` is set and by the number of real input positions otherwise. A
//! MaxPool `Indices` output is not supported (the importer refuses it when it is used).

use super::window::{Geometry, Window};
use crate::error::OpResult;
use crate::ir::fact::Fact;
use crate::ir::tensor::DType;
use crate::op_ensure;

/// What a pooling window computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum PoolKind {
    Max,
    Average { count_include_pad: bool },
}

/// MaxPool / AveragePool attributes.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Pool {
    pub kind: PoolKind,
    pub kernel_shape: Vec<usize>,
    pub window: Window,
}

impl Pool {
    pub fn geometry(&self, x: &[usize]) -> OpResult<Geometry> {
        op_ensure!(
            x.len() == self.kernel_shape.len() + 2,
            "input {x:?} must be N x C x {} spatial axes",
            self.kernel_shape.len()
        );
        self.window.resolve(&x[2..], &self.kernel_shape)
    }

    pub fn infer(&self, inputs: &[&Fact]) -> OpResult<Fact> {
        let x = &inputs[0].shape;
        let g = self.geometry(x)?;
        let mut out = vec![x[0], x[1]];
        out.extend(g.output);
        Ok(Fact::new(DType::F32, out))
    }
}

/// GlobalMaxPool / GlobalAveragePool: one value per (n, c), spatial axes kept as size 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum GlobalPool {
    Max,
    Average,
}

impl GlobalPool {
    pub fn infer(self, inputs: &[&Fact]) -> OpResult<Fact> {
        let x = &inputs[0].shape;
        op_ensure!(x.len() >= 3, "input {x:?} must be N x C x spatial...");
        let mut out = x.clone();
        out[2..].iter_mut().for_each(|d| *d = 1);
        Ok(Fact::new(DType::F32, out))
    }
}

/// MaxPool's `Indices` output, and ArgMax/ArgMin once lowered to a pool: the index of each
/// window's first (or, with `last`, last) maximum, as i64.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct PoolIndices {
    /// The MaxPool whose windows are searched.
    pub pool: Pool,
    /// ONNX `storage_order` 1: the index within a plane counts down the columns first (2-D).
    pub column_major: bool,
    /// The index counts from the start of the whole tensor (MaxPool: plane offsets included)
    /// rather than of each plane (ArgMax).
    pub whole_tensor: bool,
    /// Ties go to the last maximum (ArgMax's `select_last_index`).
    pub last: bool,
}

impl PoolIndices {
    pub fn infer(&self, inputs: &[&Fact]) -> OpResult<Fact> {
        let x = &inputs[0].shape;
        op_ensure!(
            !self.column_major || x.len() == 4,
            "storage_order 1 (column-major indices) is defined here for 2-D pools only, got input {x:?}"
        );
        let f = self.pool.infer(inputs)?;
        Ok(Fact::new(DType::I64, f.shape))
    }
}

/// Which of `taps` (indices into `x`) holds the first largest value, or with `last` the last
/// one: the tie rule of MaxPool's gradient and Indices output (PyTorch, onnxruntime) and of
/// ArgMax. None when there is no tap.
pub fn best_tap(x: &[f32], taps: impl IntoIterator<Item = usize>, last: bool) -> Option<usize> {
    let mut best: Option<usize> = None;
    for t in taps {
        if best.is_none_or(|b| if last { x[t] >= x[b] } else { x[t] > x[b] }) {
            best = Some(t);
        }
    }
    best
}
