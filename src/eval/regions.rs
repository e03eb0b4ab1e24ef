//! Relevance pooled over regions of an image: inside and outside an object's box and the
//! context use outside / inside (Lapuschkin et al. 2016), and each labelled region's share of the
//! total (the face-region tables of Seibold et al. 2018). `h` is one sample's relevance summed
//! over channels (row-major H x W), accumulated in float64; "positive" uses h+ = max(h, 0).

use serde::Serialize;

/// A signed and a positive-only value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Pair {
    pub signed: f64,
    pub positive: f64,
}

/// The same, where a ratio may be undefined (a zero denominator): `None`, JSON `null`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Ratio {
    pub signed: Option<f64>,
    pub positive: Option<f64>,
}

/// A box `[x0, y0, x1, y1)`: columns x0..x1, rows y0..y1.
pub type Box4 = [usize; 4];

/// Inside / outside a box.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BoxStats {
    pub inside: Pair,
    pub outside: Pair,
    pub inside_pixels: usize,
    pub outside_pixels: usize,
    /// outside / inside.
    pub context_use: Ratio,
    /// (outside / outside_pixels) / (inside / inside_pixels).
    pub context_use_per_pixel: Ratio,
}

fn ratio(a: f64, b: f64) -> Option<f64> {
    (b != 0.0).then(|| a / b)
}

/// Per-channel-summed relevance of one sample: `relevance` holds C planes of `h * w` values.
pub fn channel_sum(relevance: &[f32], plane: usize) -> Vec<f64> {
    let mut h = vec![0f64; plane];
    for p in relevance.chunks(plane.max(1)) {
        for (o, &v) in h.iter_mut().zip(p) {
            *o += f64::from(v);
        }
    }
    h
}

/// The box statistics of `h` (`width` columns) for box `b` (already checked to fit).
pub fn box_stats(h: &[f64], width: usize, b: Box4) -> BoxStats {
    let [x0, y0, x1, y1] = b;
    let (mut inside, mut outside) = (Pair::default(), Pair::default());
    let mut inside_pixels = 0;
    for (i, &v) in h.iter().enumerate() {
        let (y, x) = (i / width, i % width);
        let t = if (x0..x1).contains(&x) && (y0..y1).contains(&y) {
            inside_pixels += 1;
            &mut inside
        } else {
            &mut outside
        };
        t.signed += v;
        t.positive += v.max(0.0);
    }
    let outside_pixels = h.len() - inside_pixels;
    let per = |o: f64, i: f64| {
        ratio(
            o / outside_pixels.max(1) as f64,
            i / inside_pixels.max(1) as f64,
        )
    };
    BoxStats {
        inside,
        outside,
        inside_pixels,
        outside_pixels,
        context_use: Ratio {
            signed: ratio(outside.signed, inside.signed),
            positive: ratio(outside.positive, inside.positive),
        },
        context_use_per_pixel: Ratio {
            signed: per(outside.signed, inside.signed),
            positive: per(outside.positive, inside.positive),
        },
    }
}

/// Each label's share of the total relevance: `mask` holds one label per pixel of `h`;
/// returns (label, share) for `labels`, signed and positive-only.
pub fn shares(h: &[f64], mask: &[u8], labels: &[u8]) -> Vec<(u8, Ratio)> {
    let total_signed: f64 = h.iter().sum();
    let total_positive: f64 = h.iter().map(|v| v.max(0.0)).sum();
    labels
        .iter()
        .map(|&l| {
            let (mut s, mut p) = (0.0, 0.0);
            for (&v, &m) in h.iter().zip(mask) {
                if m == l {
                    s += v;
                    p += v.max(0.0);
                }
            }
            (
                l,
                Ratio {
                    signed: ratio(s, total_signed),
                    positive: ratio(p, total_positive),
                },
            )
        })
        .collect()
}

/// Mean, standard error and count of the defined values.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Summary {
    pub mean: Option<f64>,
    pub se: Option<f64>,
    pub count: usize,
}

pub fn summary(values: impl IntoIterator<Item = Option<f64>>) -> Summary {
    let v: Vec<f64> = values.into_iter().flatten().collect();
    let n = v.len();
    if n == 0 {
        return Summary {
            mean: None,
            se: None,
            count: 0,
        };
    }
    let mean = v.iter().sum::<f64>() / n as f64;
    let se = (n > 1).then(|| {
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        (var / n as f64).sqrt()
    });
    Summary {
        mean: Some(mean),
        se,
        count: n,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn box_and_shares_pool_the_right_pixels() {
        // 2 x 3 image; box = column 1..3 of row 0.
        let h = [1.0, 2.0, -1.0, 4.0, 0.0, 3.0];
        let s = box_stats(&h, 3, [1, 0, 3, 1]);
        assert_eq!((s.inside.signed, s.inside.positive), (1.0, 2.0));
        assert_eq!((s.outside.signed, s.outside.positive), (8.0, 8.0));
        assert_eq!((s.inside_pixels, s.outside_pixels), (2, 4));
        assert_eq!(s.context_use.signed, Some(8.0));
        assert_eq!(
            s.context_use_per_pixel.positive,
            Some((8.0 / 4.0) / (2.0 / 2.0))
        );
        let zero = box_stats(&[0.0, 1.0], 2, [0, 0, 1, 1]);
        assert_eq!(
            zero.context_use.signed, None,
            "nothing inside: undefined, not infinite"
        );
        let sh = shares(&h, &[0, 1, 1, 0, 2, 2], &[0, 1, 2]);
        assert_eq!(sh[0].1.signed, Some(5.0 / 9.0));
        assert_eq!(sh[1].1.positive, Some(2.0 / 10.0));
        let m = summary([Some(1.0), None, Some(3.0)]);
        assert_eq!((m.mean, m.count), (Some(2.0), 2));
    }
}
