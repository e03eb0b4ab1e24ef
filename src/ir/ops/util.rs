//! Small shape helpers shared by several ops' shape rules and kernels.

use crate::error::OpResult;
use crate::{op_bail, op_ensure};

/// Maps an ONNX axis (negative counts from the end) into `0..rank`.
pub fn norm_axis(axis: i64, rank: usize) -> OpResult<usize> {
    let r = rank as i64;
    op_ensure!(
        (-r..r).contains(&axis),
        "axis {axis} is out of range for rank {rank}"
    );
    Ok(if axis < 0 {
        (axis + r) as usize
    } else {
        axis as usize
    })
}

/// Like [`norm_axis`] but allows `axis == rank` (insertion points, Flatten).
pub fn norm_axis_inclusive(axis: i64, rank: usize) -> OpResult<usize> {
    let r = rank as i64;
    op_ensure!(
        (-r..=r).contains(&axis),
        "axis {axis} is out of range for rank {rank}"
    );
    Ok(if axis < 0 {
        (axis + r) as usize
    } else {
        axis as usize
    })
}

/// Multidirectional (numpy) broadcasting of two shapes.
pub fn broadcast(a: &[usize], b: &[usize]) -> OpResult<Vec<usize>> {
    let n = a.len().max(b.len());
    let mut out = vec![0; n];
    for (i, o) in out.iter_mut().enumerate() {
        let da = if i + a.len() >= n {
            a[i + a.len() - n]
        } else {
            1
        };
        let db = if i + b.len() >= n {
            b[i + b.len() - n]
        } else {
            1
        };
        *o = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => op_bail!("shapes {a:?} and {b:?} do not broadcast"),
        };
    }
    Ok(out)
}

/// Converts i64 values that must be non-negative sizes (dims, counts) into usize.
pub fn to_sizes(values: &[i64], what: &str) -> OpResult<Vec<usize>> {
    values
        .iter()
        .map(|&v| {
            op_ensure!(v >= 0, "{what} must not be negative, got {values:?}");
            Ok(v as usize)
        })
        .collect()
}
