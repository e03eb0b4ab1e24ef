//! Data sets for evaluation: a stacked `.npy` (N, ...) held in memory, or a folder of PNG/JPEG
//! images read one sample at a time (never all at once), labelled by sub-folder (the ImageFolder
//! convention: sorted sub-folder names are classes 0, 1, ...) or by a CSV `file,label`.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::io::image::{ImageOptions, is_image};
use crate::ir::{Tensor, TensorData};

/// A folder of images.
#[derive(Clone, Debug)]
pub struct ImageFolder {
    files: Vec<PathBuf>,
    labels: Option<Vec<i64>>,
    options: ImageOptions,
    /// (channels, height, width) of every sample: the model's channels, the first image's
    /// size (or --resize).
    shape: [usize; 3],
}

fn bad(what: &Path, reason: String) -> Error {
    Error::Input {
        what: what.display().to_string(),
        reason,
    }
}

fn images_in(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| bad(dir, e.to_string()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && is_image(p))
        .collect();
    v.sort();
    Ok(v)
}

impl ImageFolder {
    /// Opens `dir` (or the images a CSV `file,label` lists, paths relative to the CSV), decoding
    /// each image to `channels` channels (1: grey, 3: RGB).
    pub fn open(
        dir: &Path,
        csv: Option<&Path>,
        options: ImageOptions,
        channels: usize,
    ) -> Result<Self> {
        if channels != 1 && channels != 3 {
            return Err(bad(
                dir,
                format!("the model takes {channels} channels; images give 1 or 3"),
            ));
        }
        let (files, labels) = match csv {
            Some(csv) => {
                let text = std::fs::read_to_string(csv).map_err(|e| bad(csv, e.to_string()))?;
                let base = csv.parent().unwrap_or(Path::new("."));
                let mut files = Vec::new();
                let mut labels = Vec::new();
                for (i, line) in text.lines().enumerate() {
                    let line = line.trim();
                    if line.is_empty() || (i == 0 && line.starts_with("file")) {
                        continue;
                    }
                    let (f, l) = line.split_once(',').ok_or_else(|| {
                        bad(csv, format!("line {}: '{line}' is not file,label", i + 1))
                    })?;
                    let l: i64 = l.trim().parse().map_err(|_| {
                        bad(
                            csv,
                            format!("line {}: label '{}' is not an integer", i + 1, l.trim()),
                        )
                    })?;
                    files.push(base.join(f.trim()));
                    labels.push(l);
                }
                (files, Some(labels))
            }
            None => {
                let mut classes: Vec<PathBuf> = std::fs::read_dir(dir)
                    .map_err(|e| bad(dir, e.to_string()))?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.is_dir())
                    .collect();
                classes.sort();
                if classes.is_empty() {
                    (images_in(dir)?, None)
                } else {
                    let mut files = Vec::new();
                    let mut labels = Vec::new();
                    for (c, d) in classes.iter().enumerate() {
                        for f in images_in(d)? {
                            files.push(f);
                            labels.push(c as i64);
                        }
                    }
                    (files, Some(labels))
                }
            }
        };
        if files.is_empty() {
            return Err(bad(dir, "holds no PNG or JPEG image".into()));
        }
        let mut folder = ImageFolder {
            files,
            labels,
            options,
            shape: [channels, 0, 0],
        };
        let first = folder.decode(0)?;
        folder.shape = [channels, first.1, first.2];
        Ok(folder)
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Decodes sample `k`: (values, height, width).
    fn decode(&self, k: usize) -> Result<(Vec<f32>, usize, usize)> {
        let path = &self.files[k];
        let (t, _) = crate::io::image::load(path, &self.options)
            .map_err(|e| bad(path, format!("sample {k}: {e}")))?;
        let (h, w) = (t.shape()[2], t.shape()[3]);
        let v = t.f32s().map_err(|e| bad(path, e.0))?;
        Ok(if self.shape[0] == 1 {
            // Grey: the decoded channels are equal for a grey image; take their mean.
            let plane = h * w;
            (
                (0..plane)
                    .map(|i| (v[i] + v[plane + i] + v[2 * plane + i]) / 3.0)
                    .collect(),
                h,
                w,
            )
        } else {
            (v.to_vec(), h, w)
        })
    }

    /// Sample `k`'s values, checked against the folder's sample size.
    pub fn sample(&self, k: usize) -> Result<Vec<f32>> {
        let (v, h, w) = self.decode(k)?;
        if (h, w) != (self.shape[1], self.shape[2]) {
            return Err(bad(
                &self.files[k],
                format!(
                    "sample {k} is {w} x {h}, the first image {} x {}; give --resize W,H",
                    self.shape[2], self.shape[1]
                ),
            ));
        }
        Ok(v)
    }
}

/// A data set to evaluate on.
#[derive(Clone, Debug)]
pub enum Data {
    Array(Tensor),
    Folder(ImageFolder),
}

impl Data {
    pub fn len(&self) -> usize {
        match self {
            Data::Array(t) => t.shape().first().copied().unwrap_or(0),
            Data::Folder(f) => f.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// One sample's shape (no batch axis).
    pub fn sample_shape(&self) -> Vec<usize> {
        match self {
            Data::Array(t) => t.shape()[1..].to_vec(),
            Data::Folder(f) => f.shape.to_vec(),
        }
    }

    /// Whether the samples are token ids.
    pub fn tokens(&self) -> bool {
        matches!(self, Data::Array(t) if matches!(t.data(), TensorData::I64(_)))
    }

    /// Labels the data set carries (image sub-folders, a CSV).
    pub fn labels(&self) -> Option<Vec<i64>> {
        match self {
            Data::Array(_) => None,
            Data::Folder(f) => f.labels.clone(),
        }
    }

    /// Sample `k` as floats (token ids: refused).
    pub fn floats(&self, k: usize) -> Result<Vec<f32>> {
        match self {
            Data::Array(t) => {
                let per = t.len() / self.len().max(1);
                let v = t.f32s().map_err(|e| Error::Input {
                    what: "data".into(),
                    reason: e.0,
                })?;
                Ok(v[k * per..(k + 1) * per].to_vec())
            }
            Data::Folder(f) => f.sample(k),
        }
    }

    /// Sample `k` as token ids.
    pub fn ids(&self, k: usize) -> Result<Vec<i64>> {
        match self {
            Data::Array(t) => {
                let per = t.len() / self.len().max(1);
                let v = t.i64s().map_err(|e| Error::Input {
                    what: "data".into(),
                    reason: e.0,
                })?;
                Ok(v[k * per..(k + 1) * per].to_vec())
            }
            Data::Folder(_) => Err(Error::Input {
                what: "data".into(),
                reason: "images are not token ids".into(),
            }),
        }
    }

    /// The smallest and largest value over every sample (a pass over the data for a folder).
    pub fn range(&self) -> Result<(f32, f32)> {
        let mut r = (f32::INFINITY, f32::NEG_INFINITY);
        for k in 0..self.len() {
            for v in self.floats(k)? {
                r = (r.0.min(v), r.1.max(v));
            }
        }
        Ok(r)
    }

    /// The mean of each channel (the sample's first axis for rank 3 and more, else one) over the
    /// data set, in float64.
    pub fn channel_means(&self) -> Result<Vec<f64>> {
        let shape = self.sample_shape();
        let per: usize = shape.iter().product();
        let channels = if shape.len() >= 3 { shape[0] } else { 1 };
        let plane = per / channels.max(1);
        let mut sums = vec![0f64; channels];
        for k in 0..self.len() {
            let v = self.floats(k)?;
            for (c, s) in sums.iter_mut().enumerate() {
                *s += v[c * plane..(c + 1) * plane]
                    .iter()
                    .map(|&x| f64::from(x))
                    .sum::<f64>();
            }
        }
        let count = (self.len() * plane).max(1) as f64;
        Ok(sums.into_iter().map(|s| s / count).collect())
    }
}
