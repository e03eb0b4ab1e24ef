//! What the compiler knows about a value before running anything: dtype, static shape, and the
//! value itself when it is a compile-time constant (which is how constant folding finds its work).

use std::sync::Arc;

use super::tensor::{DType, Tensor};

/// Static knowledge about a node's output.
#[derive(Clone, Debug)]
pub struct Fact {
    pub dtype: DType,
    pub shape: Vec<usize>,
    /// The value, when every input of the node was constant.
    pub value: Option<Arc<Tensor>>,
}

impl Fact {
    /// A fact about a value not known at compile time.
    pub fn new(dtype: DType, shape: Vec<usize>) -> Self {
        Fact {
            dtype,
            shape,
            value: None,
        }
    }

    /// The fact about a known tensor.
    pub fn constant(value: Arc<Tensor>) -> Self {
        Fact {
            dtype: value.dtype(),
            shape: value.shape().to_vec(),
            value: Some(value),
        }
    }

    pub fn rank(&self) -> usize {
        self.shape.len()
    }
}

impl PartialEq for Fact {
    /// Values compare by identity first: shape inference compares every node's fact on every
    /// run, and a weight is usually the same `Arc` (comparing 100M floats each time is what
    /// made VGG16's passes slow).
    fn eq(&self, other: &Fact) -> bool {
        self.dtype == other.dtype
            && self.shape == other.shape
            && match (&self.value, &other.value) {
                (None, None) => true,
                (Some(a), Some(b)) => Arc::ptr_eq(a, b) || a == b,
                _ => false,
            }
    }
}

impl std::fmt::Display for Fact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let dims: Vec<String> = self.shape.iter().map(|d| d.to_string()).collect();
        write!(f, "{}[{}]", self.dtype, dims.join(","))
    }
}
