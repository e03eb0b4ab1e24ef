//! What the compiler knows about a value before running anything: dtype, static shape, and the
//! value itself when it is a compile-time constant (which is how constant folding finds its work).

use std::sync::Arc;

use super::tensor::{DType, Tensor};

/// Static knowledge about a node's output.
#[derive(Clone, Debug, PartialEq)]
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

impl std::fmt::Display for Fact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let dims: Vec<String> = self.shape.iter().map(|d| d.to_string()).collect();
        write!(f, "{}[{}]", self.dtype, dims.join(","))
    }
}
