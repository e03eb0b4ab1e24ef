//! Resize (opset 10-19) and Upsample: nearest and (multi)linear interpolation, every coordinate
//! transformation mode but tf_crop_and_resize, as a list of taps: each output element is a
//! weighted sum of input elements. The interpreter, compiled code (gathers and a weighted sum)
//! and the adjoint used by relevance and gradients all read the same taps.

use crate::error::OpResult;
use crate::ir::fact::Fact;
use crate::ir::tensor::{Tensor, numel, strides};
use crate::{op_bail, op_ensure};

/// How output coordinates map back to input coordinates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum CoordMode {
    HalfPixel,
    HalfPixelSymmetric,
    PytorchHalfPixel,
    AlignCorners,
    Asymmetric,
}

/// How a fractional input coordinate picks an element in nearest mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum NearestMode {
    RoundPreferFloor,
    RoundPreferCeil,
    Floor,
    Ceil,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Interpolation {
    Nearest(NearestMode),
    Linear,
}

/// The output size: given sizes, or scales (output = floor(input * scale)); or either read
/// from the op's second input once it is constant (computed from shapes, say).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub enum Target {
    Scales(Vec<f32>),
    Sizes(Vec<usize>),
    ScalesInput,
    SizesInput,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Resize {
    pub interpolation: Interpolation,
    pub coord: CoordMode,
    pub target: Target,
}

/// The (input index, weight) pairs of one output coordinate on one axis.
type AxisTaps = Vec<(usize, f64)>;

/// One term of an output element: input element `src` times `weight`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tap {
    pub dst: usize,
    pub src: usize,
    pub weight: f32,
}

impl Resize {
    /// This Resize with its target read from `second` (the op's second input), if it takes one.
    pub fn resolve(&self, second: Option<&Tensor>) -> OpResult<Resize> {
        let target = match (&self.target, second) {
            (Target::ScalesInput, Some(t)) => {
                Target::Scales(t.cast(crate::ir::DType::F32).f32s()?.to_vec())
            }
            (Target::SizesInput, Some(t)) => Target::Sizes(
                t.i64s()?
                    .iter()
                    .map(|&v| {
                        usize::try_from(v)
                            .map_err(|_| crate::error::OpError(format!("size {v} is negative")))
                    })
                    .collect::<OpResult<_>>()?,
            ),
            (Target::ScalesInput | Target::SizesInput, None) => {
                op_bail!("the scales or sizes are computed at run time; lrpc needs them constant")
            }
            (t, _) => t.clone(),
        };
        Ok(Resize {
            target,
            ..self.clone()
        })
    }

    /// Per axis (output size, scale).
    fn axes(&self, x: &[usize]) -> OpResult<Vec<(usize, f64)>> {
        match &self.target {
            Target::Scales(s) => {
                op_ensure!(
                    s.len() == x.len(),
                    "{} scales for an input of rank {}",
                    s.len(),
                    x.len()
                );
                s.iter()
                    .zip(x)
                    .map(|(&s, &d)| {
                        op_ensure!(s > 0.0 && s.is_finite(), "scale {s} must be positive");
                        let out = (d as f64 * f64::from(s)).floor();
                        op_ensure!(
                            (1.0..1e9).contains(&out),
                            "output size {out} from scale {s}"
                        );
                        Ok((out as usize, f64::from(s)))
                    })
                    .collect()
            }
            Target::Sizes(z) => {
                op_ensure!(
                    z.len() == x.len(),
                    "{} sizes for an input of rank {}",
                    z.len(),
                    x.len()
                );
                z.iter()
                    .zip(x)
                    .map(|(&o, &d)| {
                        op_ensure!(o > 0 && d > 0, "sizes must be positive");
                        Ok((o, o as f64 / d as f64))
                    })
                    .collect()
            }
            Target::ScalesInput | Target::SizesInput => {
                op_bail!("internal: Resize used before its target was resolved")
            }
        }
    }

    /// The same resampling as a chain of resizes that each change one axis (linear and nearest
    /// interpolation are separable), with each one's input shape: an adjoint of a large
    /// upsampling then sums (2 scale) terms per axis instead of (2 scale)^axes.
    pub fn per_axis(&self, x: &[usize]) -> OpResult<Vec<(Resize, Vec<usize>)>> {
        let axes = self.axes(x)?;
        let mut shape = x.to_vec();
        let mut chain = Vec::new();
        for (a, &(out, scale)) in axes.iter().enumerate() {
            if out == x[a] && (scale - 1.0).abs() < 1e-12 {
                continue;
            }
            let target = match &self.target {
                Target::Scales(s) => Target::Scales(
                    (0..x.len())
                        .map(|i| if i == a { s[a] } else { 1.0 })
                        .collect(),
                ),
                _ => {
                    let mut sizes = shape.clone();
                    sizes[a] = out;
                    Target::Sizes(sizes)
                }
            };
            let step = Resize {
                target,
                ..self.clone()
            };
            chain.push((step, shape.clone()));
            shape[a] = out;
        }
        Ok(chain)
    }

    pub fn output_shape(&self, x: &[usize]) -> OpResult<Vec<usize>> {
        Ok(self.axes(x)?.into_iter().map(|(o, _)| o).collect())
    }

    /// The input coordinate of output coordinate `o` on an axis of `len` elements.
    fn source(&self, o: usize, len: usize, out_len: usize, scale: f64) -> f64 {
        let o = o as f64;
        match self.coord {
            CoordMode::HalfPixel => (o + 0.5) / scale - 0.5,
            CoordMode::HalfPixelSymmetric => {
                let adjustment = out_len as f64 / (scale * len as f64);
                let center = len as f64 / 2.0;
                center * (1.0 - adjustment) + (o + 0.5) / scale - 0.5
            }
            CoordMode::PytorchHalfPixel if out_len > 1 => (o + 0.5) / scale - 0.5,
            CoordMode::PytorchHalfPixel => 0.0,
            // The resized length before rounding down (ONNX's reference: len * scale).
            CoordMode::AlignCorners if out_len > 1 => {
                o * (len as f64 - 1.0) / (len as f64 * scale - 1.0)
            }
            CoordMode::AlignCorners => 0.0,
            CoordMode::Asymmetric => o / scale,
        }
    }

    /// Per axis and output coordinate, the (input index, weight) pairs.
    fn axis_taps(&self, x: &[usize]) -> OpResult<Vec<Vec<AxisTaps>>> {
        let axes = self.axes(x)?;
        Ok(axes
            .iter()
            .zip(x)
            .map(|(&(out, scale), &len)| {
                let last = len as i64 - 1;
                let clamp = |i: i64| i.clamp(0, last) as usize;
                (0..out)
                    .map(|o| {
                        let c = self.source(o, len, out, scale);
                        match self.interpolation {
                            Interpolation::Nearest(m) => {
                                let f = c.floor();
                                let frac = c - f;
                                let i = match m {
                                    NearestMode::RoundPreferFloor if frac <= 0.5 => f,
                                    NearestMode::RoundPreferCeil if frac < 0.5 => f,
                                    NearestMode::RoundPreferFloor
                                    | NearestMode::RoundPreferCeil => f + 1.0,
                                    NearestMode::Floor => f,
                                    NearestMode::Ceil => c.ceil(),
                                };
                                vec![(clamp(i as i64), 1.0)]
                            }
                            Interpolation::Linear => {
                                let c = c.clamp(0.0, last as f64);
                                let f = c.floor();
                                let r = c - f;
                                let i = f as i64;
                                if r == 0.0 {
                                    vec![(clamp(i), 1.0)]
                                } else {
                                    vec![(clamp(i), 1.0 - r), (clamp(i + 1), r)]
                                }
                            }
                        }
                    })
                    .collect()
            })
            .collect())
    }

    /// Every tap, grouped by output element in row-major order.
    pub fn taps(&self, x: &[usize]) -> OpResult<Vec<Tap>> {
        let per_axis = self.axis_taps(x)?;
        let out = self.output_shape(x)?;
        op_ensure!(numel(&out) < 1 << 31, "output of {} elements", numel(&out));
        let st = strides(x);
        let mut taps = Vec::new();
        let mut index = vec![0usize; out.len()];
        for dst in 0..numel(&out) {
            // The product of the axes' tap lists.
            let mut terms: Vec<(usize, f64)> = vec![(0, 1.0)];
            for (a, &i) in index.iter().enumerate() {
                let stride = st[a];
                terms = terms
                    .iter()
                    .flat_map(|&(s, w)| {
                        per_axis[a][i]
                            .iter()
                            .map(move |&(j, v)| (s + j * stride, w * v))
                    })
                    .collect();
            }
            taps.extend(terms.into_iter().map(|(src, w)| Tap {
                dst,
                src,
                weight: w as f32,
            }));
            for a in (0..out.len()).rev() {
                index[a] += 1;
                if index[a] < out[a] {
                    break;
                }
                index[a] = 0;
            }
        }
        Ok(taps)
    }

    pub fn infer(&self, inputs: &[&Fact]) -> OpResult<Fact> {
        if inputs[0].dtype != crate::ir::DType::F32 {
            op_bail!("Resize needs an f32 input");
        }
        let r = self.resolve(inputs.get(1).and_then(|f| f.value.as_deref()))?;
        Ok(Fact::new(
            inputs[0].dtype,
            r.output_shape(&inputs[0].shape)?,
        ))
    }
}

/// The adjoint of a Resize: each input element gets the weighted sum of the output elements it
/// contributed to (inputs [dy]; the forward input's shape is fixed).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ResizeBackward {
    pub resize: Resize,
    pub input_shape: Vec<usize>,
}

impl ResizeBackward {
    pub fn infer(&self, inputs: &[&Fact]) -> OpResult<Fact> {
        let out = self.resize.output_shape(&self.input_shape)?;
        op_ensure!(
            inputs[0].shape == out,
            "dy {:?} is not the Resize output {out:?}",
            inputs[0].shape
        );
        Ok(Fact::new(crate::ir::DType::F32, self.input_shape.clone()))
    }
}
