//! Image inputs and data sets: the `--resize/--mean/--std` flags (explain's image input,
//! evaluate's and regions' image folders), and the data sets evaluate and regions read (a
//! folder of images or a stacked .npy) with their labels.

use std::path::Path;

use anyhow::{Result, anyhow, bail};
use clap::Args;
use lrpc::Model;
use lrpc::eval::data::{Data, ImageFolder};
use lrpc::io::image::ImageOptions;
use lrpc::io::npy;

use super::ShapeArgs;

/// How image files become model input.
#[derive(Args, Debug, Clone)]
pub struct ImageArgs {
    /// Images: resize to W,H (or N for N,N).
    #[arg(long, value_name = "W,H")]
    resize: Option<String>,
    /// Images: per-channel mean subtracted after scaling to [0, 1] (one value or r,g,b).
    #[arg(long, value_name = "R,G,B")]
    mean: Option<String>,
    /// Images: per-channel standard deviation divided by (one value or r,g,b).
    #[arg(long, value_name = "R,G,B")]
    std: Option<String>,
}

fn triple(text: &str, flag: &str) -> Result<[f32; 3]> {
    let v: Vec<f32> = text
        .split(',')
        .map(|x| {
            x.trim()
                .parse::<f32>()
                .map_err(|_| anyhow!("--{flag} '{text}': '{x}' is not a number"))
        })
        .collect::<Result<_>>()?;
    match v.as_slice() {
        [a] => Ok([*a; 3]),
        [a, b, c] => Ok([*a, *b, *c]),
        _ => Err(anyhow!("--{flag} takes one or three numbers, got '{text}'")),
    }
}

impl ImageArgs {
    /// The options these flags give.
    pub fn options(&self) -> Result<ImageOptions> {
        let resize = match &self.resize {
            None => None,
            Some(r) => {
                let v: Vec<u32> = r
                    .split(',')
                    .map(|x| {
                        x.trim()
                            .parse()
                            .map_err(|_| anyhow!("--resize '{r}': '{x}' is not a size"))
                    })
                    .collect::<Result<_>>()?;
                match v.as_slice() {
                    [n] => Some((*n, *n)),
                    [w, h] => Some((*w, *h)),
                    _ => return Err(anyhow!("--resize takes N or W,H, got '{r}'")),
                }
            }
        };
        Ok(ImageOptions {
            resize,
            mean: self
                .mean
                .as_deref()
                .map(|m| triple(m, "mean"))
                .transpose()?,
            std: self.std.as_deref().map(|s| triple(s, "std")).transpose()?,
        })
    }
}

/// `--labels` when it is a CSV (`file,label`, for an image folder).
pub fn csv_labels(labels: Option<&Path>) -> Option<&Path> {
    labels.filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv")))
}

/// The data set at `data`: a folder of images (streamed; grey or RGB as `model`'s channels
/// say, labelled by sub-folder or by the CSV `labels`), or a stacked .npy.
pub fn open_data(
    model: &Path,
    shapes: &ShapeArgs,
    data: &Path,
    labels: Option<&Path>,
    images: &ImageArgs,
) -> Result<Data> {
    if !data.is_dir() {
        return Ok(Data::Array(npy::read(data)?));
    }
    let probe = Model::load(model, &shapes.options_for(None, &[], None)?)?;
    let channels = match probe.input_shape() {
        [_, c, _, _] => *c,
        s => bail!(
            "{}: a folder of images needs a model taking (N, C, H, W), not {s:?}",
            data.display()
        ),
    };
    Ok(Data::Folder(ImageFolder::open(
        data,
        csv_labels(labels),
        images.options()?,
        channels,
    )?))
}

/// The labels: a `--labels` .npy of integers, else what the data set carries (its sub-folders
/// or the CSV). Callers check the count.
pub fn read_labels(labels: Option<&Path>, data: &Data) -> Result<Option<Vec<i64>>> {
    match labels {
        Some(p) if csv_labels(Some(p)).is_none() => Ok(Some(
            npy::read(p)?
                .i64s()
                .map_err(|_| anyhow!("{}: labels must be integers", p.display()))?
                .to_vec(),
        )),
        _ => Ok(data.labels()),
    }
}
