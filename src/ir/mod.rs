//! The intermediate representation every later stage works on: tensors, facts, ops and the graph.

pub mod dump;
pub mod fact;
pub mod graph;
pub mod ops;
pub mod tensor;

pub use fact::Fact;
pub use graph::{Edge, Graph, Node, Output};
pub use ops::Op;
pub use petgraph::stable_graph::NodeIndex;
pub use tensor::{DType, Tensor, TensorData, numel, strides};
