//! Dense row-major tensors. f32 is the only dtype that reaches the compiled code; i64 exists for the
//! shape arithmetic exporters emit (Shape -> Gather -> Concat -> Reshape), which constant folding
//! removes before codegen.

use crate::error::OpResult;
use crate::{op_bail, op_ensure};

/// Element type of a tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    F32,
    I64,
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DType::F32 => "f32",
            DType::I64 => "i64",
        })
    }
}

/// The elements of a tensor.
#[derive(Clone, Debug, PartialEq)]
pub enum TensorData {
    F32(Vec<f32>),
    I64(Vec<i64>),
}

/// A dense row-major tensor; the element count always equals the product of the shape.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    shape: Vec<usize>,
    data: TensorData,
}

/// Number of elements of a shape (1 for a scalar).
pub fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// Row-major strides of a shape, in elements.
pub fn strides(shape: &[usize]) -> Vec<usize> {
    let mut strides = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        strides[i] = strides[i + 1] * shape[i + 1];
    }
    strides
}

impl Tensor {
    /// An f32 tensor; fails when the data length does not match the shape.
    pub fn from_f32(shape: Vec<usize>, data: Vec<f32>) -> OpResult<Self> {
        op_ensure!(
            numel(&shape) == data.len(),
            "shape {shape:?} needs {} elements, got {}",
            numel(&shape),
            data.len()
        );
        Ok(Tensor {
            shape,
            data: TensorData::F32(data),
        })
    }

    /// An i64 tensor; fails when the data length does not match the shape.
    pub fn from_i64(shape: Vec<usize>, data: Vec<i64>) -> OpResult<Self> {
        op_ensure!(
            numel(&shape) == data.len(),
            "shape {shape:?} needs {} elements, got {}",
            numel(&shape),
            data.len()
        );
        Ok(Tensor {
            shape,
            data: TensorData::I64(data),
        })
    }

    /// A tensor of `shape` filled with zeros of `dtype`.
    pub fn zeros(dtype: DType, shape: Vec<usize>) -> Self {
        let n = numel(&shape);
        let data = match dtype {
            DType::F32 => TensorData::F32(vec![0.0; n]),
            DType::I64 => TensorData::I64(vec![0; n]),
        };
        Tensor { shape, data }
    }

    /// Builds a tensor of the same dtype as `self` from data of the right length.
    pub(crate) fn with_data(shape: Vec<usize>, data: TensorData) -> OpResult<Self> {
        match data {
            TensorData::F32(v) => Tensor::from_f32(shape, v),
            TensorData::I64(v) => Tensor::from_i64(shape, v),
        }
    }

    /// The tensor `times` times over along a new leading block (`[b, ...]` becomes
    /// `[times * b, ...]`; a scalar becomes a vector).
    pub fn repeat_outer(&self, times: usize) -> OpResult<Tensor> {
        let mut shape = self.shape.clone();
        match shape.first_mut() {
            Some(b) => *b *= times,
            None => shape.push(times),
        }
        match &self.data {
            TensorData::F32(v) => Tensor::from_f32(shape, v.repeat(times)),
            TensorData::I64(v) => Tensor::from_i64(shape, v.repeat(times)),
        }
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    pub fn len(&self) -> usize {
        numel(&self.shape)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn dtype(&self) -> DType {
        match self.data {
            TensorData::F32(_) => DType::F32,
            TensorData::I64(_) => DType::I64,
        }
    }

    pub fn data(&self) -> &TensorData {
        &self.data
    }

    /// The f32 elements; an error for an i64 tensor.
    pub fn f32s(&self) -> OpResult<&[f32]> {
        match &self.data {
            TensorData::F32(v) => Ok(v),
            TensorData::I64(_) => op_bail!("expected an f32 tensor, got i64"),
        }
    }

    /// The i64 elements; an error for an f32 tensor.
    pub fn i64s(&self) -> OpResult<&[i64]> {
        match &self.data {
            TensorData::I64(v) => Ok(v),
            TensorData::F32(_) => op_bail!("expected an i64 tensor, got f32"),
        }
    }

    /// The same elements under another shape with the same element count.
    pub fn reshape(mut self, shape: Vec<usize>) -> OpResult<Self> {
        op_ensure!(
            numel(&shape) == self.len(),
            "cannot reshape {:?} ({} elements) to {shape:?}",
            self.shape,
            self.len()
        );
        self.shape = shape;
        Ok(self)
    }

    /// Element-wise conversion to `dtype` (f32 -> i64 truncates toward zero, as ONNX Cast does).
    pub fn cast(&self, dtype: DType) -> Tensor {
        let data = match (&self.data, dtype) {
            (TensorData::F32(v), DType::I64) => {
                TensorData::I64(v.iter().map(|&x| x as i64).collect())
            }
            (TensorData::I64(v), DType::F32) => {
                TensorData::F32(v.iter().map(|&x| x as f32).collect())
            }
            (data, _) => data.clone(),
        };
        Tensor {
            shape: self.shape.clone(),
            data,
        }
    }

    /// 1 (as i64) where the element is nonzero, else 0: ONNX's cast to bool.
    pub fn nonzero(&self) -> Tensor {
        let data = match &self.data {
            TensorData::F32(v) => v.iter().map(|&x| i64::from(x != 0.0)).collect(),
            TensorData::I64(v) => v.iter().map(|&x| i64::from(x != 0)).collect(),
        };
        Tensor {
            shape: self.shape.clone(),
            data: TensorData::I64(data),
        }
    }

    /// Gathers elements by flat source index into a new tensor of `shape`.
    pub(crate) fn gather_flat(&self, shape: Vec<usize>, index: &[usize]) -> OpResult<Tensor> {
        let data = match &self.data {
            TensorData::F32(v) => TensorData::F32(index.iter().map(|&i| v[i]).collect()),
            TensorData::I64(v) => TensorData::I64(index.iter().map(|&i| v[i]).collect()),
        };
        Tensor::with_data(shape, data)
    }
}
