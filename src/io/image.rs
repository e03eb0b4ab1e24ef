//! Images as model inputs: decode PNG/JPEG, resize, scale to [0, 1], normalise per channel with
//! mean/std, lay out as [1, 3, H, W].

use std::path::Path;

use image::RgbImage;
use image::imageops::FilterType;

use crate::error::{Error, Result};
use crate::ir::Tensor;

/// How to turn an image into an input tensor.
#[derive(Clone, Debug, Default)]
pub struct ImageOptions {
    /// Target (width, height); the image's own size when absent.
    pub resize: Option<(u32, u32)>,
    /// Per-channel mean subtracted after scaling to [0, 1] (default 0).
    pub mean: Option<[f32; 3]>,
    /// Per-channel standard deviation divided by (default 1).
    pub std: Option<[f32; 3]>,
}

/// Whether a path names an image lrpc decodes (by extension).
pub fn is_image(path: &Path) -> bool {
    matches!(
        path.extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Some("png" | "jpg" | "jpeg")
    )
}

/// Loads an image as ([1, 3, H, W] tensor, the resized RGB image for overlays).
pub fn load(path: &Path, opts: &ImageOptions) -> Result<(Tensor, RgbImage)> {
    let err = |reason: String| Error::Input {
        what: path.display().to_string(),
        reason,
    };
    let img = image::open(path).map_err(|e| err(format!("cannot decode the image: {e}")))?;
    let img = match opts.resize {
        Some((w, h)) if w > 0 && h > 0 => img.resize_exact(w, h, FilterType::Triangle),
        Some(_) => return Err(err("--resize needs positive sizes".into())),
        None => img,
    };
    let rgb = img.to_rgb8();
    let (w, h) = (rgb.width() as usize, rgb.height() as usize);
    let mean = opts.mean.unwrap_or([0.0; 3]);
    let std = opts.std.unwrap_or([1.0; 3]);
    if std.iter().any(|&s| s == 0.0 || !s.is_finite()) {
        return Err(err(format!("--std must be non-zero, got {std:?}")));
    }
    let mut data = vec![0f32; 3 * w * h];
    for (x, y, p) in rgb.enumerate_pixels() {
        for c in 0..3 {
            let v = p[c] as f32 / 255.0;
            data[(c * h + y as usize) * w + x as usize] = (v - mean[c]) / std[c];
        }
    }
    let t = Tensor::from_f32(vec![1, 3, h, w], data).map_err(|e| err(e.0))?;
    Ok((t, rgb))
}
