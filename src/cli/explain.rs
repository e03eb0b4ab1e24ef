//! `lrpc explain MODEL --input FILE [--method M] [--target K|top] ... [--output R.npy]
//! [--heatmap H.png] [--json] [--layers]`.

use super::engine::EngineArgs;
use std::path::PathBuf;

use anyhow::{Result, anyhow, bail};
use clap::Args;
use lrpc::heatmap::{self, ColorMap, HeatmapOptions};
use lrpc::io::image as img;
use lrpc::io::npy;
use lrpc::ir::tensor::Tensor;
use lrpc::{Explainer, Target};

use super::method::MethodArgs;
use super::{ModelArg, ShapeArgs};

#[derive(Args, Debug)]
pub struct ExplainArgs {
    #[command(flatten)]
    model: ModelArg,
    #[command(flatten)]
    inputs: super::inputs::InputArgs,
    #[command(flatten)]
    method: MethodArgs,
    /// The class to explain: an index, or `top` for the largest logit.
    #[arg(long, default_value = "top")]
    target: String,
    /// Write the relevance (the input's shape) to this float32 .npy file; for token ids, the
    /// relevance per token (batch, seq), summed over the embedding axis.
    #[arg(long)]
    output: Option<PathBuf>,
    /// Token-id inputs: write the relevance of the embedding vectors (batch, seq, dim).
    #[arg(long)]
    output_embedding: Option<PathBuf>,
    /// Write a heatmap PNG of the relevance summed over channels.
    #[arg(long)]
    heatmap: Option<PathBuf>,
    /// Colour map of the heatmap: bwr, coldnhot, seismic or gray.
    #[arg(long, default_value = "bwr")]
    cmap: String,
    /// Lay the heatmap over the input image (image inputs only).
    #[arg(long)]
    overlay: bool,
    /// Compare: another model to explain the same input with (repeatable); with several
    /// models and/or several methods (--method A,B,C) --heatmap writes one grid: a row per
    /// sample, a column per model and method.
    #[arg(long = "model", value_name = "MODEL")]
    models: Vec<PathBuf>,
    /// Token-id inputs: the vocabulary that names the ids (vocab.json, a list or an object
    /// word -> id, or one word per line); the tokens are then printed as words.
    #[arg(long)]
    vocab: Option<PathBuf>,
    /// Token-id inputs: write the texts as coloured words to this HTML page, or SVG picture for
    /// a .svg path (red positive, blue negative, white zero; normalised per text).
    #[arg(long)]
    html: Option<PathBuf>,
    /// Print one JSON object: target, logit, relevance_sum, logits, method (and layers; for
    /// token ids, tokens and token_relevance per sample).
    #[arg(long)]
    json: bool,
    /// Report the relevance arriving at every layer (conservation check).
    #[arg(long)]
    layers: bool,
    #[command(flatten)]
    images: super::images::ImageArgs,
    #[command(flatten)]
    shapes: ShapeArgs,
    #[command(flatten)]
    engine: EngineArgs,
}

pub fn explain(args: ExplainArgs) -> Result<()> {
    let target = match args.target.as_str() {
        "top" => Target::Top,
        t => Target::Index(
            t.parse()
                .map_err(|_| anyhow!("--target '{t}' is neither a class index nor 'top'"))?,
        ),
    };
    let cmap = ColorMap::parse(&args.cmap).map_err(|e| anyhow!(e))?;
    let path = args.inputs.main()?;
    let others = args.inputs.others()?;
    let (input, picture) = if img::is_image(&path) {
        let (t, rgb) = img::load(&path, &args.images.options()?)?;
        (t, Some(rgb))
    } else {
        (npy::read(&path)?, None)
    };
    if args.overlay && picture.is_none() {
        return Err(anyhow!(
            "--overlay needs an image input, got {}",
            path.display()
        ));
    }
    let methods: Vec<String> = args
        .method
        .method
        .as_deref()
        .unwrap_or(super::method::DEFAULT_METHOD)
        .split(',')
        .map(|m| m.trim().to_string())
        .filter(|m| !m.is_empty())
        .collect();
    if methods.len() > 1 || !args.models.is_empty() {
        return compare(&args, input, picture, &methods, target, cmap);
    }
    let explainer = if args.model.is_artifact() {
        let mut given = args.method.given();
        given.extend(args.shapes.given());
        if let Some(name) = &args.inputs.explain_input()? {
            given.push(("--explain-input", name.clone()));
        }
        let e = super::load_artifact(&args.model, &given, &args.engine)?;
        if args.layers && e.spec().layers.is_empty() {
            super::refuse_fixed(
                &args.model.model,
                &[("--layers", String::new())],
                super::held_by(&e),
            )?;
        }
        e
    } else {
        let model = super::load_model(
            &args.model.model,
            &args.shapes,
            &args.inputs,
            input.shape(),
            &others,
        )?;
        let (engine, threads) = args.engine.engine()?;
        let options = lrpc::ExplainOptions {
            engine,
            threads,
            layers: args.layers,
            ..lrpc::ExplainOptions::default()
        };
        Explainer::with_options(&model, args.method.method()?, options)?
    };
    let input = explainer
        .spec()
        .check_input(input, &path.display().to_string())?;
    let input_ids = explainer
        .spec()
        .relevance_at_embedding()
        .then(|| input.clone());
    let e = explainer.explain_with(input, &super::inputs::borrowed(&others), target)?;
    let at_embedding = explainer.spec().relevance_at_embedding();
    if !at_embedding && (args.vocab.is_some() || args.html.is_some()) {
        bail!(
            "--vocab and --html show token ids as words; the explained input '{}' is not token ids",
            explainer.spec().input().name
        );
    }
    if at_embedding && args.heatmap.is_some() {
        bail!(
            "--heatmap draws images; the explained input '{}' is token ids (write --output instead)",
            explainer.spec().input().name
        );
    }
    if let Some(path) = &args.output {
        if at_embedding {
            npy::write(path, &lrpc::text::per_token(&e.relevance)?)?;
        } else {
            npy::write(path, &e.relevance)?;
        }
    }
    if let Some(path) = &args.output_embedding {
        if !at_embedding {
            bail!(
                "--output-embedding: the explained input '{}' is not token ids; its relevance is written by --output",
                explainer.spec().input().name
            );
        }
        npy::write(path, &e.relevance)?;
    }
    if let Some(path) = &args.heatmap {
        let opts = HeatmapOptions {
            cmap,
            overlay: if args.overlay { picture } else { None },
            ..HeatmapOptions::default()
        };
        heatmap::save(path, &e.relevance, &opts)?;
    }
    let texts = if let Some(ids) = &input_ids {
        let vocab = args
            .vocab
            .as_deref()
            .map(|p| super::words::vocab(p, &explainer))
            .transpose()?;
        let captions = e
            .targets
            .iter()
            .zip(&e.target_logits)
            .enumerate()
            .map(|(b, (t, l))| format!("sample {b}: target {t} (logit {l:.4})"))
            .collect();
        let t = super::words::texts(
            ids,
            &lrpc::text::per_token(&e.relevance)?,
            vocab.as_ref(),
            captions,
        )?;
        if let Some(path) = &args.html {
            super::words::write_html(path, &t)?;
        }
        Some(t)
    } else {
        None
    };
    let relevance_sum: f32 = e.relevance.f32s()?.iter().sum();
    let states: Vec<_> = e
        .layers
        .iter()
        .filter(|l| l.op == lrpc::relevance::STATE_OP)
        .collect();
    let states_sum: f32 = states.iter().map(|l| l.relevance_sum).sum();
    let logits = e.logits.f32s()?;
    if args.json {
        let mut out = serde_json::json!({
            "method": explainer.method().name(),
            "target": e.targets[0],
            "logit": e.target_logits[0],
            "relevance_sum": relevance_sum,
            "logits": logits,
        });
        if e.targets.len() > 1 {
            out["targets"] = serde_json::json!(e.targets);
            out["target_logits"] = serde_json::json!(e.target_logits);
        }
        if args.layers {
            out["layers"] = serde_json::json!(e.layers);
        }
        if let Some(t) = &texts {
            // Token ids: each sample's tokens (words with --vocab, else the ids) and their
            // relevance (summed over the embedding).
            out["tokens"] = serde_json::json!(t.words);
            out["token_relevance"] = serde_json::json!(t.relevance);
        }
        if !states.is_empty() {
            out["left_on_states"] = serde_json::json!(
                states
                    .iter()
                    .map(|l| serde_json::json!({"state": l.name, "relevance": l.relevance_sum}))
                    .collect::<Vec<_>>()
            );
            out["left_on_states_sum"] = serde_json::json!(states_sum);
        }
        println!("{out}");
    } else {
        println!(
            "method {}: target {} (logit {:.6}), relevance sum {:.6}",
            explainer.method().name(),
            e.targets[0],
            e.target_logits[0],
            relevance_sum
        );
        if let Some(t) = &texts {
            super::words::print(t);
        }
        if states.iter().any(|l| l.relevance_sum != 0.0) && !args.layers {
            println!("relevance left on the initial states: {states_sum:.6}");
            for l in &states {
                println!("  {:<40} {:>12.6}", l.name, l.relevance_sum);
            }
        }
        if args.layers {
            for l in &e.layers {
                println!(
                    "  {:<40} {:<18} {:<22} {:>12.6}",
                    l.name, l.op, l.rule, l.relevance_sum
                );
            }
        }
    }
    Ok(())
}

/// The relevance per token: the embedding relevance (batch, seq, dim) summed over its last axis.
/// Several models and/or methods on the same input: one grid picture (`--heatmap`), a row per
/// sample and a column per model and method, every cell in the same colour map, each
/// normalised to its own largest |relevance|.
fn compare(
    args: &ExplainArgs,
    input: Tensor,
    picture: Option<image::RgbImage>,
    methods: &[String],
    target: Target,
    cmap: ColorMap,
) -> Result<()> {
    let Some(out) = &args.heatmap else {
        bail!("comparing several models or methods writes one grid: give --heatmap GRID.png");
    };
    if args.output.is_some() || args.output_embedding.is_some() || args.html.is_some() {
        bail!("comparing several models or methods writes only the --heatmap grid (and --json)");
    }
    let mut models = vec![args.model.model.clone()];
    models.extend(args.models.iter().cloned());
    let others = args.inputs.others()?;
    let mut columns = Vec::new();
    let mut cells: Vec<Vec<image::RgbImage>> = Vec::new();
    let mut report = Vec::new();
    for path in &models {
        if lrpc::runtime::artifact::is_artifact(path) {
            bail!(
                "{}: comparing takes ONNX models (an artifact fixes its method)",
                path.display()
            );
        }
        let model = super::load_model(path, &args.shapes, &args.inputs, input.shape(), &others)?;
        let (engine, threads) = args.engine.engine()?;
        for m in methods {
            let mut a = args.method.clone();
            a.method = Some(m.clone());
            let options = lrpc::ExplainOptions {
                engine,
                threads,
                ..lrpc::ExplainOptions::default()
            };
            let e = Explainer::with_options(&model, a.method()?, options)
                .map_err(|e| anyhow!("{} with {m}: {e}", path.display()))?;
            if e.spec().relevance_at_embedding() {
                bail!(
                    "{}: the grid draws images; its input is token ids",
                    path.display()
                );
            }
            let x = e
                .spec()
                .check_input(input.clone(), &path.display().to_string())?;
            let r = e.explain_with(x, &super::inputs::borrowed(&others), target)?;
            let stem = path
                .file_stem()
                .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
            let stem = if stem == "model" {
                path.parent()
                    .and_then(|p| p.file_name())
                    .map_or(stem.clone(), |s| s.to_string_lossy().into_owned())
            } else {
                stem
            };
            columns.push(format!("{stem} / {m}"));
            let samples = r.targets.len();
            let opts = HeatmapOptions {
                cmap,
                overlay: if args.overlay { picture.clone() } else { None },
                min_size: 160,
                ..HeatmapOptions::default()
            };
            for b in 0..samples {
                if cells.len() <= b {
                    cells.push(Vec::new());
                }
                cells[b].push(heatmap::render_sample(&r.relevance, b, &opts)?);
            }
            report.push(serde_json::json!({
                "model": path.display().to_string(), "method": m, "targets": r.targets,
                "target_logits": r.target_logits,
                "relevance_sum": r.relevance.f32s()?.iter().sum::<f32>(),
            }));
        }
    }
    let rows: Vec<(String, Vec<image::RgbImage>)> = cells
        .into_iter()
        .enumerate()
        .map(|(b, c)| (format!("sample {b}"), c))
        .collect();
    lrpc::eval::plot::grid(out, &columns, &rows)?;
    if args.json {
        println!(
            "{}",
            serde_json::json!({ "grid": out.display().to_string(), "cells": report })
        );
    } else {
        println!(
            "grid {}: {} samples x {} columns ({})",
            out.display(),
            rows.len(),
            columns.len(),
            columns.join(", ")
        );
    }
    Ok(())
}
