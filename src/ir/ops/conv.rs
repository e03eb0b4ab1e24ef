//! Conv: N-D convolution over NC(spatial...) inputs, weight [M, C/group, k...], optional bias [M].
//! Opsets 1 and 11 differ only in defaults the importer fills in; `kernel_shape` may be absent
//! (taken from the weight).

use super::window::{Geometry, Window};
use crate::error::OpResult;
use crate::ir::fact::Fact;
use crate::ir::tensor::DType;
use crate::op_ensure;

/// Convolution attributes.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Conv {
    /// From the model, if it states it; it must then agree with the weight.
    pub kernel_shape: Option<Vec<usize>>,
    pub window: Window,
    pub group: usize,
}

impl Conv {
    /// Resolves the geometry for input shape `x` and weight shape `w`, checking channel counts.
    pub fn geometry(&self, x: &[usize], w: &[usize]) -> OpResult<Geometry> {
        op_ensure!(
            x.len() >= 3,
            "input must be N x C x spatial..., got shape {x:?}"
        );
        op_ensure!(
            w.len() == x.len(),
            "weight shape {w:?} does not match input rank {}",
            x.len()
        );
        op_ensure!(self.group > 0, "group must be positive");
        op_ensure!(
            x[1] == w[1] * self.group,
            "input has {} channels but weight {w:?} with group {} expects {}",
            x[1],
            self.group,
            w[1] * self.group
        );
        op_ensure!(
            w[0].is_multiple_of(self.group),
            "output channels {} are not divisible by group {}",
            w[0],
            self.group
        );
        if let Some(k) = &self.kernel_shape {
            op_ensure!(
                k[..] == w[2..],
                "kernel_shape {k:?} disagrees with weight shape {w:?}"
            );
        }
        self.window.resolve(&x[2..], &w[2..])
    }

    pub fn infer(&self, inputs: &[&Fact]) -> OpResult<Fact> {
        let (x, w) = (&inputs[0].shape, &inputs[1].shape);
        let g = self.geometry(x, w)?;
        if let Some(b) = inputs.get(2) {
            op_ensure!(
                b.shape == [w[0]],
                "bias shape {:?} should be [{}]",
                b.shape,
                w[0]
            );
        }
        let mut out = vec![x[0], w[0]];
        out.extend(g.output);
        Ok(Fact::new(DType::F32, out))
    }
}
