//! Region perturbation (Bach et al. 2015, Samek et al. 2017): sort regions of an input by their
//! relevance, destroy them one after another (most relevant first, or least relevant first),
//! and watch the explained score fall. Everything here works on one sample's values; the
//! caller batches the forward passes.
//!
//! Regions: square `patch` x `patch` blocks of the last two axes for inputs of rank 2 or more
//! per sample (channels share a region); windows of `patch` positions for rank 1 (features,
//! token ids). A patch that does not divide a side leaves smaller regions at the far edges
//! (the grid covers every position; no padding is added to the input). A region's score is the
//! sum of the relevance over it, channels (and an embedding's vector) summed.

use crate::error::{Error, Result};

/// Which regions go first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// Most relevant first: a good heatmap makes the score fall fast (large AOPC).
    Morf,
    /// Least relevant first: a good heatmap keeps the score (small AOPC).
    Lerf,
}

impl Order {
    pub fn parse(s: &str) -> Result<Order> {
        match s {
            "morf" => Ok(Order::Morf),
            "lerf" => Ok(Order::Lerf),
            _ => Err(Error::Input {
                what: "--order".into(),
                reason: format!("'{s}' is neither morf nor lerf"),
            }),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Order::Morf => "morf",
            Order::Lerf => "lerf",
        }
    }
}

/// The regions of one sample: for each, the flat positions (within one channel plane, or
/// along the token axis) it covers.
#[derive(Clone, Debug)]
pub struct Regions {
    /// Positions per region, row-major order of regions.
    cells: Vec<Vec<usize>>,
    /// Values per sample sharing one position (the channels), and positions per channel.
    channels: usize,
    plane: usize,
}

impl Regions {
    /// Regions of a sample of shape `sample` (without the batch axis).
    pub fn new(sample: &[usize], patch: usize) -> Result<Regions> {
        let bad = |reason: String| Error::Input {
            what: "--patch".into(),
            reason,
        };
        if patch == 0 {
            return Err(bad("must be positive".into()));
        }
        let (channels, rows, cols) = match sample {
            [] => {
                return Err(bad(
                    "the samples are scalars; there is nothing to perturb".into()
                ));
            }
            [n] => (1, 1, *n),
            [.., h, w] => (sample[..sample.len() - 2].iter().product(), *h, *w),
        };
        if patch > rows.max(cols) {
            return Err(bad(format!(
                "{patch} is larger than the sample's {rows} x {cols} positions"
            )));
        }
        let (pr, pc) = if sample.len() == 1 {
            (1, patch)
        } else {
            (patch, patch)
        };
        let mut cells = Vec::new();
        for r0 in (0..rows).step_by(pr) {
            for c0 in (0..cols).step_by(pc) {
                let mut cell = Vec::with_capacity(pr * pc);
                for r in r0..(r0 + pr).min(rows) {
                    for c in c0..(c0 + pc).min(cols) {
                        cell.push(r * cols + c);
                    }
                }
                cells.push(cell);
            }
        }
        Ok(Regions {
            cells,
            channels,
            plane: rows * cols,
        })
    }

    pub fn len(&self) -> usize {
        self.cells.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }

    /// Leaves out the regions all of whose positions `skip` says to (padding tokens).
    pub fn without(mut self, skip: impl Fn(usize) -> bool) -> Regions {
        self.cells.retain(|c| !c.iter().all(|&p| skip(p)));
        self
    }

    /// Positions per channel (what [`position_relevance`] sums onto).
    pub fn positions(&self) -> usize {
        self.plane
    }

    /// Each region's relevance: `relevance` holds per-position relevance of one sample
    /// ([`position_relevance`]), [`Regions::positions`] values.
    pub fn scores(&self, relevance: &[f32]) -> Vec<f32> {
        self.cells
            .iter()
            .map(|c| c.iter().map(|&p| relevance[p]).sum())
            .collect()
    }

    /// The regions in the order they are destroyed: by decreasing score for morf (increasing
    /// for lerf); ties keep row-major order.
    pub fn order(&self, scores: &[f32], order: Order) -> Vec<usize> {
        let mut idx: Vec<usize> = (0..self.cells.len()).collect();
        match order {
            Order::Morf => idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a])),
            Order::Lerf => idx.sort_by(|&a, &b| scores[a].total_cmp(&scores[b])),
        }
        idx
    }

    /// Replaces region `r` of `sample` (all channels) with the values of `fill` at the same
    /// places.
    pub fn replace<T: Copy>(&self, sample: &mut [T], fill: &[T], r: usize) {
        for ch in 0..self.channels {
            for &p in &self.cells[r] {
                let i = ch * self.plane + p;
                sample[i] = fill[i];
            }
        }
    }
}

/// Per-position relevance of one sample with `positions` positions: the relevance summed over
/// the channels (channels first: planes of `positions` values), or for token ids over each
/// position's embedding vector (`tokens`: `positions` consecutive vectors).
pub fn position_relevance(relevance: &[f32], positions: usize, tokens: bool) -> Vec<f32> {
    let positions = positions.max(1);
    if tokens {
        let dim = (relevance.len() / positions).max(1);
        return relevance.chunks(dim).map(|c| c.iter().sum()).collect();
    }
    let mut out = vec![0f32; positions];
    for plane in relevance.chunks(positions) {
        for (o, v) in out.iter_mut().zip(plane) {
            *o += v;
        }
    }
    out
}

/// The inputs of one sample's curve: the sample, then after each of the first `steps` regions
/// of `order` replaced by `fill` (cumulatively): `steps + 1` samples, concatenated.
pub fn curve_inputs<T: Copy>(
    sample: &[T],
    fill: &[T],
    regions: &Regions,
    order: &[usize],
    steps: usize,
) -> Vec<T> {
    let mut out = Vec::with_capacity(sample.len() * (steps + 1));
    let mut x = sample.to_vec();
    out.extend_from_slice(&x);
    for &r in order.iter().take(steps) {
        regions.replace(&mut x, fill, r);
        out.extend_from_slice(&x);
    }
    out
}

/// The explained score of each row of `logits` (`classes` per row): the target's logit, or
/// its softmax probability.
pub fn scores(logits: &[f32], classes: usize, target: usize, probability: bool) -> Vec<f32> {
    logits
        .chunks(classes.max(1))
        .map(|row| {
            if probability {
                let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let z: f32 = row.iter().map(|v| (v - m).exp()).sum();
                (row[target] - m).exp() / z
            } else {
                row[target]
            }
        })
        .collect()
}

/// AOPC over samples: each curve holds f(x_0) - f(x_k) for k = 0..=L; a sample's AOPC is the
/// curve's mean. Returns (mean, standard error over samples, mean curve).
pub fn aopc(curves: &[Vec<f32>]) -> (f64, f64, Vec<f64>) {
    let n = curves.len();
    if n == 0 {
        return (f64::NAN, f64::NAN, Vec::new());
    }
    let per: Vec<f64> = curves
        .iter()
        .map(|c| c.iter().map(|&v| f64::from(v)).sum::<f64>() / c.len().max(1) as f64)
        .collect();
    let mean = per.iter().sum::<f64>() / n as f64;
    let se = if n > 1 {
        let var = per.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        (var / n as f64).sqrt()
    } else {
        0.0
    };
    let len = curves[0].len();
    let curve = (0..len)
        .map(|k| curves.iter().map(|c| f64::from(c[k])).sum::<f64>() / n as f64)
        .collect();
    (mean, se, curve)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_tile_the_plane_with_smaller_edge_regions() {
        let r = Regions::new(&[2, 5, 5], 2).unwrap();
        assert_eq!(r.len(), 9);
        assert_eq!(r.cells[0], vec![0, 1, 5, 6]);
        assert_eq!(r.cells[2], vec![4, 9], "the right edge: one column wide");
        assert_eq!(r.cells[8], vec![24]);
        let t = Regions::new(&[7], 3).unwrap();
        assert_eq!(t.cells, vec![vec![0, 1, 2], vec![3, 4, 5], vec![6]]);
        assert!(Regions::new(&[4, 4], 5).is_err());
        assert!(Regions::new(&[4, 4], 0).is_err());
    }

    #[test]
    fn the_order_is_stable_and_replacement_covers_every_channel() {
        let r = Regions::new(&[2, 2, 2], 1).unwrap();
        let scores = [1.0, 3.0, 3.0, -1.0];
        assert_eq!(r.order(&scores, Order::Morf), vec![1, 2, 0, 3]);
        assert_eq!(r.order(&scores, Order::Lerf), vec![3, 0, 1, 2]);
        let x = [1, 2, 3, 4, 5, 6, 7, 8];
        let fill = [0; 8];
        let c = curve_inputs(&x, &fill, &r, &[1, 2], 2);
        assert_eq!(&c[..8], &x);
        assert_eq!(&c[8..16], &[1, 0, 3, 4, 5, 0, 7, 8]);
        assert_eq!(&c[16..], &[1, 0, 0, 4, 5, 0, 0, 8]);
    }

    #[test]
    fn relevance_is_summed_over_channels_or_embeddings() {
        // (2 channels, 1 x 2): per position 1 + 3, 2 + 4.
        assert_eq!(
            position_relevance(&[1.0, 2.0, 3.0, 4.0], 2, false),
            vec![4.0, 6.0]
        );
        // Tokens: (seq 2, dim 2) against ids (seq 2).
        assert_eq!(
            position_relevance(&[1.0, 2.0, 3.0, 4.0], 2, true),
            vec![3.0, 7.0]
        );
    }

    #[test]
    fn aopc_is_the_mean_of_curve_means_with_its_standard_error() {
        let (m, se, curve) = aopc(&[vec![0.0, 1.0, 2.0], vec![0.0, 3.0, 6.0]]);
        assert!((m - 2.0).abs() < 1e-12);
        // Per-sample AOPC 1 and 3: sd sqrt(2), se 1.
        assert!((se - 1.0).abs() < 1e-12);
        assert_eq!(curve, vec![0.0, 2.0, 4.0]);
        let p = scores(&[0.0, 0.0, 1.0, 1.0], 2, 1, true);
        assert!((p[0] - 0.5).abs() < 1e-6 && (p[1] - 0.5).abs() < 1e-6);
    }
}
