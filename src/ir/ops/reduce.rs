//! The Reduce family (ReduceSum, ReduceMean, ReduceMax, ReduceMin, ReduceProd, ReduceL1,
//! ReduceL2, ReduceLogSumExp, ReduceSumSquare) over a set of axes. The interpreter evaluates
//! every kind (so shape arithmetic and constants fold); for computed values the `LowerReduce`
//! pass rewrites it into ops compiled code and the relevance pass already know.

use super::util::norm_axis;
use crate::error::OpResult;
use crate::ir::fact::Fact;
use crate::op_ensure;

/// Which reduction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum ReduceKind {
    Sum,
    Mean,
    Max,
    Min,
    Prod,
    L1,
    L2,
    LogSumExp,
    SumSquare,
}

impl ReduceKind {
    pub fn name(self) -> &'static str {
        match self {
            ReduceKind::Sum => "ReduceSum",
            ReduceKind::Mean => "ReduceMean",
            ReduceKind::Max => "ReduceMax",
            ReduceKind::Min => "ReduceMin",
            ReduceKind::Prod => "ReduceProd",
            ReduceKind::L1 => "ReduceL1",
            ReduceKind::L2 => "ReduceL2",
            ReduceKind::LogSumExp => "ReduceLogSumExp",
            ReduceKind::SumSquare => "ReduceSumSquare",
        }
    }

    /// The reduction of `values` (f64, as the accumulations are done).
    pub fn apply(self, values: impl Iterator<Item = f64>) -> f64 {
        let mut n = 0usize;
        let mut acc = match self {
            ReduceKind::Max => f64::NEG_INFINITY,
            ReduceKind::Min => f64::INFINITY,
            ReduceKind::Prod => 1.0,
            _ => 0.0,
        };
        for v in values {
            n += 1;
            acc = match self {
                ReduceKind::Sum | ReduceKind::Mean => acc + v,
                ReduceKind::Max if v.is_nan() || acc.is_nan() => f64::NAN,
                ReduceKind::Min if v.is_nan() || acc.is_nan() => f64::NAN,
                ReduceKind::Max => acc.max(v),
                ReduceKind::Min => acc.min(v),
                ReduceKind::Prod => acc * v,
                ReduceKind::L1 => acc + v.abs(),
                ReduceKind::L2 | ReduceKind::SumSquare => acc + v * v,
                ReduceKind::LogSumExp => acc + v.exp(),
            };
        }
        match self {
            ReduceKind::Mean => acc / n as f64,
            ReduceKind::L2 => acc.sqrt(),
            ReduceKind::LogSumExp => acc.ln(),
            _ => acc,
        }
    }
}

/// A reduction over `axes` (None: every axis), keeping them as size 1 when `keepdims`.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Reduce {
    pub kind: ReduceKind,
    pub axes: Option<Vec<i64>>,
    pub keepdims: bool,
}

impl Reduce {
    /// The reduced axes, normalised and sorted, for an input of `rank`.
    pub fn axes(&self, rank: usize) -> OpResult<Vec<usize>> {
        let mut axes = match &self.axes {
            None => (0..rank).collect(),
            Some(a) => a
                .iter()
                .map(|&a| norm_axis(a, rank))
                .collect::<OpResult<Vec<_>>>()?,
        };
        axes.sort_unstable();
        let before = axes.len();
        axes.dedup();
        op_ensure!(axes.len() == before, "axes {:?} repeat an axis", self.axes);
        Ok(axes)
    }

    /// The output shape for an input of `shape`.
    pub fn output_shape(&self, shape: &[usize]) -> OpResult<Vec<usize>> {
        let axes = self.axes(shape.len())?;
        Ok(shape
            .iter()
            .enumerate()
            .filter_map(|(a, &d)| match (axes.contains(&a), self.keepdims) {
                (false, _) => Some(d),
                (true, true) => Some(1),
                (true, false) => None,
            })
            .collect())
    }

    pub fn infer(&self, inputs: &[&Fact]) -> OpResult<Fact> {
        let x = &inputs[0].shape;
        let axes = self.axes(x.len())?;
        op_ensure!(
            !matches!(self.kind, ReduceKind::Max | ReduceKind::Min)
                || axes.iter().all(|&a| x[a] > 0),
            "{} over an empty axis has no value",
            self.kind.name()
        );
        Ok(Fact::new(inputs[0].dtype, self.output_shape(x)?))
    }
}

/// ArgMax / ArgMin along one axis (i64 indices), `keepdims` as for the reductions; ties go to
/// the first extremum unless `last` (`select_last_index`).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ArgExtremum {
    pub min: bool,
    pub axis: i64,
    pub keepdims: bool,
    pub last: bool,
}

impl ArgExtremum {
    pub fn name(&self) -> &'static str {
        if self.min { "ArgMin" } else { "ArgMax" }
    }

    /// The normalised axis and the output shape for an input of `shape`.
    pub fn output_shape(&self, shape: &[usize]) -> OpResult<(usize, Vec<usize>)> {
        let axis = norm_axis(self.axis, shape.len())?;
        op_ensure!(
            shape[axis] > 0,
            "{} over an empty axis has no value",
            self.name()
        );
        let mut out = shape.to_vec();
        if self.keepdims {
            out[axis] = 1;
        } else {
            out.remove(axis);
        }
        Ok((axis, out))
    }

    pub fn infer(&self, inputs: &[&Fact]) -> OpResult<Fact> {
        let (_, shape) = self.output_shape(&inputs[0].shape)?;
        Ok(Fact::new(crate::ir::DType::I64, shape))
    }

    /// Whether `v` beats the best value so far (`best`), in this op's sense and tie rule.
    pub fn better(&self, v: f64, best: f64) -> bool {
        let (v, best) = if self.min { (-v, -best) } else { (v, best) };
        if self.last { v >= best } else { v > best }
    }
}
