//! `lrpc regions MODEL --data D.npy --method M (--boxes boxes.csv | --masks DIR) [--labels L]
//! [--mask-names names.json] [--limit N] [--json]`: relevance inside and outside each sample's
//! box and the context use, or each labelled region's share (src/eval/regions.rs).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow, bail};
use clap::Args;
use lrpc::eval::regions::{self, Box4, BoxStats, Ratio};
use lrpc::ir::tensor::Tensor;
use lrpc::{Explainer, Model};

use super::engine::EngineArgs;
use super::method::MethodArgs;
use super::{ModelArg, ShapeArgs};

#[derive(Args, Debug)]
pub struct RegionsArgs {
    #[command(flatten)]
    model: ModelArg,
    /// Images: one float .npy of stacked samples (N, C, H, W) or (N, H, W), or a folder of
    /// PNG/JPEG images read one batch at a time (the order of --labels FILE.csv, else sorted
    /// names; box and mask indexes count in that order).
    #[arg(long)]
    data: PathBuf,
    /// Integer labels (N,) as .npy, or for an image folder a CSV `file,label`: the explained
    /// class of each sample (default: its arg-max; an image folder's sub-folders).
    #[arg(long)]
    labels: Option<PathBuf>,
    /// A CSV `index,x0,y0,x1,y1` (pixels; x the column; x1, y1 exclusive) of object boxes.
    #[arg(long, conflicts_with = "masks")]
    boxes: Option<PathBuf>,
    /// A folder of label masks `<index>.png` (8-bit grey, one integer per region, the
    /// image's size).
    #[arg(long)]
    masks: Option<PathBuf>,
    /// Names of the mask labels: a JSON object {"0": "background", ...} [default: the
    /// folder's mask_names.json or names.json, else the numbers].
    #[arg(long)]
    mask_names: Option<PathBuf>,
    #[command(flatten)]
    images: super::images::ImageArgs,
    /// Only the first N samples.
    #[arg(long)]
    limit: Option<usize>,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    method: MethodArgs,
    #[command(flatten)]
    shapes: ShapeArgs,
    #[command(flatten)]
    engine: EngineArgs,
}

fn read_boxes(path: &Path, n: usize, (h, w): (usize, usize)) -> Result<Vec<Box4>> {
    let text = std::fs::read_to_string(path).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    let mut boxes: Vec<Option<Box4>> = vec![None; n];
    for (line_no, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || (line_no == 0 && line.starts_with("index")) {
            continue;
        }
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        let nums: Option<Vec<usize>> = f.iter().map(|v| v.parse().ok()).collect();
        let (Some(v), 5) = (nums, f.len()) else {
            bail!(
                "{}: line {}: '{line}' is not index,x0,y0,x1,y1 (non-negative integers)",
                path.display(),
                line_no + 1
            );
        };
        let (k, b) = (v[0], [v[1], v[2], v[3], v[4]]);
        if k >= n {
            continue;
        }
        if b[0] >= b[2] || b[1] >= b[3] || b[2] > w || b[3] > h {
            bail!(
                "{}: sample {k}: box x {}..{}, y {}..{} is empty or outside the {w} x {h} image",
                path.display(),
                b[0],
                b[2],
                b[1],
                b[3]
            );
        }
        boxes[k] = Some(b);
    }
    boxes
        .into_iter()
        .enumerate()
        .map(|(k, b)| b.ok_or_else(|| anyhow!("{}: no box for sample {k}", path.display())))
        .collect()
}

fn read_mask(dir: &Path, k: usize, (h, w): (usize, usize)) -> Result<Vec<u8>> {
    let path = dir.join(format!("{k}.png"));
    let img = image::open(&path).map_err(|e| anyhow!("{}: sample {k}: {e}", path.display()))?;
    let g = img.to_luma8();
    if (g.height() as usize, g.width() as usize) != (h, w) {
        bail!(
            "{}: sample {k}: the mask is {} x {}, the image {w} x {h}",
            path.display(),
            g.width(),
            g.height()
        );
    }
    Ok(g.into_raw())
}

fn mask_names(args: &RegionsArgs, dir: &Path) -> Result<BTreeMap<u8, String>> {
    let path = match &args.mask_names {
        Some(p) => Some(p.clone()),
        None => ["mask_names.json", "names.json"]
            .iter()
            .map(|f| dir.join(f))
            .chain(dir.parent().map(|p| p.join("mask_names.json")))
            .find(|p| p.exists()),
    };
    let Some(path) = path else {
        return Ok(BTreeMap::new());
    };
    let text = std::fs::read_to_string(&path).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    let v: BTreeMap<String, String> = serde_json::from_str(&text)
        .map_err(|e| anyhow!("{}: not an object of label -> name: {e}", path.display()))?;
    v.into_iter()
        .map(|(k, name)| {
            let l: u8 = k
                .parse()
                .map_err(|_| anyhow!("{}: label '{k}' is not 0..255", path.display()))?;
            Ok((l, name))
        })
        .collect()
}

pub fn regions(args: RegionsArgs) -> Result<()> {
    if args.model.is_artifact() {
        bail!(
            "{}: regions takes the ONNX model (it explains at the data's batch; an artifact fixes its batch)",
            args.model.model.display()
        );
    }
    let what = args.data.display().to_string();
    let data = super::images::open_data(
        &args.model.model,
        &args.shapes,
        &args.data,
        args.labels.as_deref(),
        &args.images,
    )?;
    if data.tokens() {
        bail!("{what}: regions are for images; the data holds token ids");
    }
    let mut shape = vec![data.len()];
    shape.extend(data.sample_shape());
    if shape.len() < 3 || shape[0] == 0 {
        bail!("{what}: images must be stacked as (N, C, H, W) or (N, H, W), got {shape:?}");
    }
    let n = args.limit.unwrap_or(shape[0]).min(shape[0]);
    let (h, w) = (shape[shape.len() - 2], shape[shape.len() - 1]);
    let per: usize = shape[1..].iter().product();
    let labels = super::images::read_labels(args.labels.as_deref(), &data)?;
    if let (Some(p), Some(v)) = (&args.labels, &labels)
        && v.len() < n
    {
        bail!("{}: {} labels for {n} samples", p.display(), v.len());
    }
    let boxes = match &args.boxes {
        Some(p) => Some(read_boxes(p, n, (h, w))?),
        None => None,
    };
    let masks = match &args.masks {
        Some(dir) => Some(
            (0..n)
                .map(|k| read_mask(dir, k, (h, w)))
                .collect::<Result<Vec<_>>>()?,
        ),
        None => None,
    };
    if boxes.is_none() && masks.is_none() {
        bail!("give --boxes boxes.csv or --masks DIR");
    }
    let batch = 32.min(n);
    let mut in_shape = vec![batch];
    in_shape.extend(&shape[1..]);
    let model = Model::load(
        &args.model.model,
        &args.shapes.options_for(Some(&in_shape), &[], None)?,
    )?;
    super::print_notes(&args.model.model, &model);
    let (engine, threads) = args.engine.engine()?;
    let options = lrpc::ExplainOptions {
        engine,
        threads,
        ..lrpc::ExplainOptions::default()
    };
    let explainer = Explainer::with_options(&model, args.method.method()?, options)?;
    let mb = explainer.spec().batch().max(1);
    let classes = explainer.spec().classes();
    let mut rows = Vec::with_capacity(n);
    for start in (0..n).step_by(mb) {
        let count = mb.min(n - start);
        let mut chunk = Vec::with_capacity(mb * per);
        for k in start..start + count {
            chunk.extend(data.floats(k)?);
        }
        chunk.resize(mb * per, 0.0);
        let mut s = vec![mb];
        s.extend(&shape[1..]);
        let targets: Vec<Option<usize>> = (0..mb)
            .map(|b| {
                labels
                    .as_ref()
                    .filter(|_| b < count)
                    .map(|l| l[start + b])
                    .map(|t| {
                        usize::try_from(t)
                            .ok()
                            .filter(|&t| t < classes)
                            .ok_or_else(|| {
                                anyhow!(
                                    "labels: sample {} has label {t} outside 0..{classes}",
                                    start + b
                                )
                            })
                    })
                    .transpose()
            })
            .collect::<Result<_>>()?;
        let e = explainer.explain_for(Tensor::from_f32(s, chunk)?, &targets)?;
        let r = e.relevance.f32s()?;
        for b in 0..count {
            let k = start + b;
            let hmap = regions::channel_sum(&r[b * per..(b + 1) * per], h * w);
            rows.push((k, e.targets[b], e.target_logits[b], hmap));
        }
    }
    let names = match &args.masks {
        Some(dir) => mask_names(&args, dir)?,
        None => BTreeMap::new(),
    };
    let labels_seen: Vec<u8> = match &masks {
        Some(m) => {
            let mut l: Vec<u8> = names.keys().copied().collect();
            for mask in m {
                for &v in mask {
                    if !l.contains(&v) {
                        l.push(v);
                    }
                }
            }
            l.sort_unstable();
            l
        }
        None => Vec::new(),
    };
    let name_of = |l: u8| names.get(&l).cloned().unwrap_or_else(|| l.to_string());
    let mut images = Vec::with_capacity(n);
    let mut box_rows: Vec<BoxStats> = Vec::new();
    let mut share_rows: Vec<Vec<(u8, Ratio)>> = Vec::new();
    for (k, target, logit, hmap) in &rows {
        let mut item = serde_json::json!({
            "index": k, "target": target, "logit": logit,
            "relevance_sum": hmap.iter().sum::<f64>(),
            "positive_sum": hmap.iter().map(|v| v.max(0.0)).sum::<f64>(),
        });
        if let Some(b) = &boxes {
            let s = regions::box_stats(hmap, w, b[*k]);
            item["box"] = serde_json::json!(b[*k]);
            item["stats"] = serde_json::to_value(&s)?;
            box_rows.push(s);
        }
        if let Some(m) = &masks {
            let sh = regions::shares(hmap, &m[*k], &labels_seen);
            let mut signed = serde_json::Map::new();
            let mut positive = serde_json::Map::new();
            for (l, r) in &sh {
                signed.insert(name_of(*l), serde_json::json!(r.signed));
                positive.insert(name_of(*l), serde_json::json!(r.positive));
            }
            item["share"] = serde_json::json!({"signed": signed, "positive": positive});
            share_rows.push(sh);
        }
        images.push(item);
    }
    let mut mean = serde_json::Map::new();
    if !box_rows.is_empty() {
        let s = |f: &dyn Fn(&BoxStats) -> Option<f64>| {
            serde_json::to_value(regions::summary(box_rows.iter().map(f)))
        };
        mean.insert(
            "context_use".into(),
            serde_json::json!({"signed": s(&|b| b.context_use.signed)?, "positive": s(&|b| b.context_use.positive)?}),
        );
        mean.insert(
            "context_use_per_pixel".into(),
            serde_json::json!({
                "signed": s(&|b| b.context_use_per_pixel.signed)?,
                "positive": s(&|b| b.context_use_per_pixel.positive)?,
            }),
        );
    }
    if !share_rows.is_empty() {
        let mut signed = serde_json::Map::new();
        let mut positive = serde_json::Map::new();
        for (j, &l) in labels_seen.iter().enumerate() {
            signed.insert(
                name_of(l),
                serde_json::to_value(regions::summary(share_rows.iter().map(|r| r[j].1.signed)))?,
            );
            positive.insert(
                name_of(l),
                serde_json::to_value(regions::summary(share_rows.iter().map(|r| r[j].1.positive)))?,
            );
        }
        mean.insert(
            "share".into(),
            serde_json::json!({"signed": signed, "positive": positive}),
        );
    }
    if args.json {
        println!(
            "{}",
            serde_json::json!({"method": explainer.method().name(), "n": n, "images": images, "mean": mean})
        );
        return Ok(());
    }
    let fmt = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |x| format!("{x:.4}"));
    println!(
        "{} over {n} samples ({}):",
        if boxes.is_some() {
            "context use"
        } else {
            "region shares"
        },
        explainer.method().name()
    );
    if !box_rows.is_empty() {
        println!(
            "{:>6} {:>7} {:>11} {:>11} {:>12} {:>12}",
            "index", "target", "inside", "outside", "context", "context+"
        );
        for ((k, t, ..), s) in rows.iter().zip(&box_rows) {
            println!(
                "{k:>6} {t:>7} {:>11.4} {:>11.4} {:>12} {:>12}",
                s.inside.signed,
                s.outside.signed,
                fmt(s.context_use.signed),
                fmt(s.context_use.positive)
            );
        }
        let c = regions::summary(box_rows.iter().map(|b| b.context_use.signed));
        let p = regions::summary(box_rows.iter().map(|b| b.context_use.positive));
        println!(
            "mean context use: signed {} (s.e. {}, {} samples), positive {} (s.e. {}, {} samples)",
            fmt(c.mean),
            fmt(c.se),
            c.count,
            fmt(p.mean),
            fmt(p.se),
            p.count
        );
    }
    if !share_rows.is_empty() {
        let header: Vec<String> = labels_seen
            .iter()
            .map(|&l| format!("{:>12}", name_of(l)))
            .collect();
        println!("{:>6} {:>7} {}", "index", "target", header.join(" "));
        for ((k, t, ..), sh) in rows.iter().zip(&share_rows) {
            let cells: Vec<String> = sh
                .iter()
                .map(|(_, r)| format!("{:>12}", fmt(r.signed)))
                .collect();
            println!("{k:>6} {t:>7} {}", cells.join(" "));
        }
        let cells: Vec<String> = (0..labels_seen.len())
            .map(|j| {
                format!(
                    "{:>12}",
                    fmt(regions::summary(share_rows.iter().map(|r| r[j].1.signed)).mean)
                )
            })
            .collect();
        println!("{:>6} {:>7} {}", "mean", "", cells.join(" "));
    }
    Ok(())
}
