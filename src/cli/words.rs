//! Words: how `lrpc explain` shows token relevance (coloured in a terminal, `--html`), and
//! `lrpc words MODEL|ARTIFACT --data ids.npy [--labels y.npy] --vocab V --class K [--top 30]
//! [--json]`, the words most relevant for a class over a corpus.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow, bail};
use clap::Args;
use lrpc::io::npy;
use lrpc::ir::tensor::Tensor;
use lrpc::text::{self, TextHeatmap, Vocab, WordStats};
use lrpc::{Explainer, Model, Target};

use super::engine::EngineArgs;
use super::method::MethodArgs;
use super::{ModelArg, ShapeArgs};

/// The vocabulary of `--vocab`, checked against the explainer's embedding.
pub fn vocab(path: &Path, explainer: &Explainer) -> Result<Vocab> {
    let v = Vocab::load(path)?;
    v.check_covers(explainer.spec().embedding_rows, &path.display().to_string())?;
    Ok(v)
}

/// Rows of a (batch, seq) id tensor.
fn id_rows(ids: &Tensor) -> Result<Vec<Vec<i64>>> {
    let shape = ids.shape();
    let seq = *shape
        .last()
        .ok_or_else(|| anyhow!("the token ids have no axes"))?;
    Ok(ids
        .i64s()?
        .chunks(seq.max(1))
        .map(<[i64]>::to_vec)
        .collect())
}

/// The words and per-token relevance of each explained text, padding trimmed.
pub struct Texts {
    pub words: Vec<Vec<String>>,
    pub relevance: Vec<Vec<f32>>,
    pub captions: Vec<String>,
}

/// Texts from token ids and their per-token relevance (batch, seq).
pub fn texts(
    ids: &Tensor,
    per_token: &Tensor,
    vocab: Option<&Vocab>,
    captions: Vec<String>,
) -> Result<Texts> {
    let rows = id_rows(ids)?;
    let seq = rows.first().map_or(0, Vec::len);
    let rel = per_token.f32s()?;
    let mut out = Texts {
        words: Vec::new(),
        relevance: Vec::new(),
        captions,
    };
    for (b, row) in rows.iter().enumerate() {
        let n = vocab.map_or(row.len(), |v| text::trimmed(row, v));
        out.words.push(
            row[..n]
                .iter()
                .map(|&i| vocab.map_or_else(|| i.to_string(), |v| v.word(i)))
                .collect(),
        );
        out.relevance.push(rel[b * seq..b * seq + n].to_vec());
    }
    Ok(out)
}

/// Prints each text: coloured words in a terminal, `word (relevance)` otherwise.
pub fn print(t: &Texts) {
    let colour = std::io::stdout().is_terminal();
    for ((words, rel), caption) in t.words.iter().zip(&t.relevance).zip(&t.captions) {
        println!("{caption}");
        if colour {
            println!("  {}", text::ansi(words, rel));
        } else {
            println!("  {}", text::plain(words, rel));
        }
    }
}

/// Writes the texts as an HTML page (an SVG picture for a `.svg` path), atomically.
pub fn write_html(path: &Path, t: &Texts) -> Result<()> {
    let pages: Vec<TextHeatmap> = t
        .words
        .iter()
        .zip(&t.relevance)
        .zip(&t.captions)
        .map(|((words, relevance), caption)| TextHeatmap {
            words,
            relevance,
            caption: caption.clone(),
        })
        .collect();
    let svg = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("svg"));
    let page = if svg {
        text::svg(&pages)
    } else {
        text::html(&pages)
    };
    lrpc::io::atomic::write_atomically(path, |w| w.write_all(page.as_bytes()))?;
    Ok(())
}

#[derive(Args, Debug)]
pub struct WordsArgs {
    #[command(flatten)]
    model: ModelArg,
    /// Token ids of the corpus: an int .npy (documents, seq).
    #[arg(long)]
    data: PathBuf,
    /// Labels (documents,): only documents of --class are explained.
    #[arg(long)]
    labels: Option<PathBuf>,
    /// The vocabulary: vocab.json (a list, or an object word -> id) or one word per line.
    #[arg(long)]
    vocab: PathBuf,
    /// The class whose relevance is explained.
    #[arg(long)]
    class: usize,
    /// How many words to list.
    #[arg(long, default_value_t = 30)]
    top: usize,
    /// Leave out words seen fewer times than this.
    #[arg(long, default_value_t = 1)]
    min_count: usize,
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

/// Documents per explained batch when the model's batch axis is symbolic.
const DOCUMENTS_PER_BATCH: usize = 64;

pub fn words(args: WordsArgs) -> Result<()> {
    let data = npy::read(&args.data)?;
    let rows = id_rows(&data)
        .map_err(|e| anyhow!("{}: {e} (token ids must be integers)", args.data.display()))?;
    let seq = data.shape().last().copied().unwrap_or(0);
    if data.shape().len() != 2 || rows.is_empty() {
        bail!(
            "{}: token ids must have shape (documents, seq), got {:?}",
            args.data.display(),
            data.shape()
        );
    }
    let keep: Vec<usize> = match &args.labels {
        None => (0..rows.len()).collect(),
        Some(p) => {
            let labels = npy::read(p)?;
            let l = labels
                .i64s()
                .map_err(|_| anyhow!("{}: labels must be integers", p.display()))?;
            if l.len() != rows.len() {
                bail!(
                    "{}: {} labels for {} documents",
                    p.display(),
                    l.len(),
                    rows.len()
                );
            }
            (0..rows.len())
                .filter(|&k| l[k] == args.class as i64)
                .collect()
        }
    };
    if keep.is_empty() {
        bail!("no document is labelled {}", args.class);
    }
    // Documents per explained batch (--batch binds a symbolic batch axis to another size).
    let batch = DOCUMENTS_PER_BATCH.min(keep.len());
    let explainer = if args.model.is_artifact() {
        let mut given = args.method.given();
        given.extend(args.shapes.given());
        super::load_artifact(&args.model, &given, &args.engine)?
    } else {
        let model = Model::load(
            &args.model.model,
            &args.shapes.options_for(Some(&[batch, seq]), &[], None)?,
        )?;
        super::print_notes(&args.model.model, &model);
        let (engine, threads) = args.engine.engine()?;
        let options = lrpc::ExplainOptions {
            engine,
            threads,
            ..lrpc::ExplainOptions::default()
        };
        let method = match args.method.method.as_deref() {
            // Words are read from token relevance: the epsilon rule is the text default.
            None => {
                let mut a = args.method.clone();
                a.method = Some("epsilon".into());
                a.method()?
            }
            Some(_) => args.method.method()?,
        };
        Explainer::with_options(&model, method, options)?
    };
    if !explainer.spec().relevance_at_embedding() {
        bail!(
            "{}: its explained input '{}' is not token ids",
            args.model.model.display(),
            explainer.spec().input().name
        );
    }
    let vocab = vocab(&args.vocab, &explainer)?;
    let run = explainer.spec().batch().max(1);
    let classes = explainer.spec().classes();
    if args.class >= classes {
        bail!(
            "--class {} is out of range: the model has {classes} classes",
            args.class
        );
    }
    let mut stats = WordStats::default();
    for chunk in keep.chunks(run) {
        let mut ids: Vec<i64> = chunk.iter().flat_map(|&k| rows[k].clone()).collect();
        // Pad the last batch with copies of its first document (their relevance is dropped).
        while ids.len() < run * seq {
            ids.extend_from_slice(&rows[chunk[0]]);
        }
        let x = Tensor::from_i64(vec![run, seq], ids)?;
        let e = explainer.explain(x, Target::Index(args.class))?;
        let dim = *e.relevance.shape().last().unwrap_or(&1);
        let rel = e.relevance.f32s()?;
        for (b, &k) in chunk.iter().enumerate() {
            let tokens: Vec<f32> = rel[b * seq * dim..(b + 1) * seq * dim]
                .chunks(dim.max(1))
                .map(|c| c.iter().sum())
                .collect();
            stats.add(&rows[k], &tokens, &vocab);
        }
    }
    let top = stats.top(args.top, args.min_count, &vocab);
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "class": args.class,
                "documents": keep.len(),
                "method": explainer.method().name(),
                "words": top,
            })
        );
    } else {
        println!(
            "the {} words most relevant for class {} ({} documents, {}; mean relevance per occurrence)",
            top.len(),
            args.class,
            keep.len(),
            explainer.method().name()
        );
        println!(
            "{:>4}  {:<20} {:>10} {:>7}",
            "rank", "word", "mean", "count"
        );
        for (k, w) in top.iter().enumerate() {
            println!(
                "{:>4}  {:<20} {:>10.4} {:>7}",
                k + 1,
                w.word,
                w.mean,
                w.count
            );
        }
    }
    Ok(())
}
