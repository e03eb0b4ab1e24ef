//! Heatmaps: relevance summed over channels, normalised symmetrically (0 maps to the colour map's
//! centre, +-max|R| to its ends), coloured, optionally laid over the input image, saved as PNG.

use std::path::Path;

use image::{Rgb, RgbImage};

use crate::error::{Error, Result};
use crate::ir::{Tensor, numel};

/// Colour maps, as Zennit defines them (piecewise-linear between stops).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColorMap {
    /// Blue - white - red.
    Bwr,
    /// Cyan - blue - black - red - yellow - white.
    ColdNHot,
    /// Dark blue - light gray - dark red.
    Seismic,
    /// Black - white.
    Gray,
}

impl ColorMap {
    pub fn parse(name: &str) -> Result<ColorMap, String> {
        Ok(match name {
            "bwr" => ColorMap::Bwr,
            "coldnhot" => ColorMap::ColdNHot,
            "seismic" => ColorMap::Seismic,
            "gray" => ColorMap::Gray,
            other => {
                return Err(format!(
                    "unknown colour map '{other}' (known: bwr, coldnhot, seismic, gray)"
                ));
            }
        })
    }

    /// (position in [0, 1], colour) stops; Zennit's index 0x80 is the centre.
    fn stops(self) -> &'static [(f32, [u8; 3])] {
        const MID: f32 = 128.0 / 255.0;
        match self {
            ColorMap::Bwr => &[
                (0.0, [0, 0, 255]),
                (MID, [255, 255, 255]),
                (1.0, [255, 0, 0]),
            ],
            ColorMap::Seismic => &[
                (0.0, [0, 0, 0xd0]),
                (MID, [0xd0, 0xd0, 0xd0]),
                (1.0, [0xd0, 0, 0]),
            ],
            ColorMap::Gray => &[(0.0, [0, 0, 0]), (1.0, [255, 255, 255])],
            ColorMap::ColdNHot => &[
                (0.0, [0, 255, 255]),
                (64.0 / 255.0, [0, 0, 255]),
                (MID, [0, 0, 0]),
                (170.0 / 255.0, [255, 0, 0]),
                (212.0 / 255.0, [255, 255, 0]),
                (1.0, [255, 255, 255]),
            ],
        }
    }

    /// The colour of `t` in [0, 1] (clamped).
    pub fn color(self, t: f32) -> [u8; 3] {
        let t = if t.is_nan() { 0.5 } else { t.clamp(0.0, 1.0) };
        let stops = self.stops();
        let i = stops
            .iter()
            .rposition(|s| s.0 <= t)
            .unwrap_or(0)
            .min(stops.len() - 2);
        let ((a, ca), (b, cb)) = (stops[i], stops[i + 1]);
        let f = if b > a { (t - a) / (b - a) } else { 0.0 };
        let mix = |x: u8, y: u8| (x as f32 + (y as f32 - x as f32) * f).round() as u8;
        [mix(ca[0], cb[0]), mix(ca[1], cb[1]), mix(ca[2], cb[2])]
    }
}

/// The 2-D map of one sample: channels summed; [N, C, H, W] -> H x W, [N, C, T] -> 1 x T,
/// [N, F] -> 1 x F. Returns (rows, cols, values).
pub fn channel_sum(relevance: &Tensor, sample: usize) -> Result<(usize, usize, Vec<f32>)> {
    let s = relevance.shape();
    let err = |reason: String| Error::Input {
        what: "heatmap".into(),
        reason,
    };
    if s.len() < 2 || sample >= s[0] {
        return Err(err(format!("cannot draw relevance of shape {s:?}")));
    }
    let v = relevance.f32s().map_err(|e| err(e.0))?;
    let per = numel(&s[1..]);
    let v = &v[sample * per..][..per];
    let (c, plane) = if s.len() == 2 {
        (1, s[1])
    } else {
        (s[1], numel(&s[2..]))
    };
    let (rows, cols) = match s.len() {
        2 | 3 => (1, plane),
        4 => (s[2], s[3]),
        _ => return Err(err(format!("cannot draw relevance of rank {}", s.len()))),
    };
    let summed = (0..plane)
        .map(|p| (0..c).map(|ch| v[ch * plane + p]).sum())
        .collect();
    Ok((rows, cols, summed))
}

/// Options for [`render`].
#[derive(Clone, Debug)]
pub struct HeatmapOptions {
    pub cmap: ColorMap,
    /// Blend over this image (same size as the map), heat weighted by `alpha`.
    pub overlay: Option<RgbImage>,
    pub alpha: f32,
    /// Draw each value as a square block so the longer side is at least this many pixels.
    pub min_size: u32,
}

impl Default for HeatmapOptions {
    fn default() -> Self {
        HeatmapOptions {
            cmap: ColorMap::Bwr,
            overlay: None,
            alpha: 0.6,
            min_size: 224,
        }
    }
}

/// Renders the heatmap of sample 0.
pub fn render(relevance: &Tensor, opts: &HeatmapOptions) -> Result<RgbImage> {
    render_sample(relevance, 0, opts)
}

/// Renders the heatmap of one sample of a batch.
pub fn render_sample(relevance: &Tensor, sample: usize, opts: &HeatmapOptions) -> Result<RgbImage> {
    let (rows, cols, v) = channel_sum(relevance, sample)?;
    let peak = v.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    let scale = if peak > 0.0 { 1.0 / peak } else { 0.0 };
    let block = (opts.min_size as usize).div_ceil(rows.max(cols)).max(1) as u32;
    let mut img = RgbImage::new(cols as u32 * block, rows as u32 * block);
    for (x, y, px) in img.enumerate_pixels_mut() {
        let (r, c) = ((y / block) as usize, (x / block) as usize);
        let t = 0.5 + 0.5 * v[r * cols + c] * scale;
        let mut rgb = opts.cmap.color(t);
        if let Some(base) = &opts.overlay {
            let bx = (x * base.width()) / (cols as u32 * block);
            let by = (y * base.height()) / (rows as u32 * block);
            let b = base.get_pixel(bx.min(base.width() - 1), by.min(base.height() - 1));
            let gray = (0.299 * b[0] as f32 + 0.587 * b[1] as f32 + 0.114 * b[2] as f32) as u8;
            for channel in &mut rgb {
                let blended = opts.alpha * *channel as f32 + (1.0 - opts.alpha) * gray as f32;
                *channel = blended.round() as u8;
            }
        }
        *px = Rgb(rgb);
    }
    Ok(img)
}

/// Renders and writes a PNG.
pub fn save(path: &Path, relevance: &Tensor, opts: &HeatmapOptions) -> Result<()> {
    let img = render(relevance, opts)?;
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|e| Error::Io {
            path: path.to_path_buf(),
            cause: std::io::Error::other(e.to_string()),
        })?;
    crate::io::write_atomically(path, |w| w.write_all(&png))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bwr_is_blue_white_red() {
        assert_eq!(ColorMap::Bwr.color(0.0), [0, 0, 255]);
        assert_eq!(ColorMap::Bwr.color(128.0 / 255.0), [255, 255, 255]);
        assert_eq!(ColorMap::Bwr.color(1.0), [255, 0, 0]);
        assert_eq!(ColorMap::Gray.color(0.5), [128, 128, 128]);
    }

    #[test]
    fn symmetric_normalisation_and_channel_sum() {
        // Two channels of a 1x2 map: sums are [+2, -1]; +2 is full red, -1 half-way to blue.
        let r = Tensor::from_f32(vec![1, 2, 1, 2], vec![1.0, -0.5, 1.0, -0.5]).unwrap();
        let opts = HeatmapOptions {
            min_size: 2,
            ..HeatmapOptions::default()
        };
        let img = render(&r, &opts).unwrap();
        assert_eq!(img.dimensions(), (2, 1));
        assert_eq!(img.get_pixel(0, 0).0, [255, 0, 0]);
        let p = img.get_pixel(1, 0).0;
        assert!(p[2] == 255 && p[0] > 100 && p[0] < 160, "{p:?}");
    }
}
