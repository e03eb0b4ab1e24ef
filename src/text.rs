//! Words out of token relevance: the vocabulary that maps ids to words, text heatmaps (HTML and
//! ANSI colours, the tutorial's red for positive, blue for negative, white for zero, normalised
//! symmetrically per text), and the most relevant words of a class over a corpus.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use crate::error::{Error, Result};

/// Words by token id.
#[derive(Clone, Debug)]
pub struct Vocab {
    words: Vec<String>,
}

/// The words a tokenizer pads with; trailing ones are left out of displays.
const PAD_WORDS: &[&str] = &["<pad>", "[PAD]", "<PAD>", "<blank>"];

impl Vocab {
    /// Reads `vocab.json` (a list of words in id order, or an object word -> id, as tokenizers
    /// write it) or a text file with one word per line (line k is id k).
    pub fn load(path: &Path) -> Result<Vocab> {
        let bad = |reason: String| Error::Input {
            what: path.display().to_string(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let is_json = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"));
        let words = if is_json {
            let v: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| bad(format!("not JSON: {e}")))?;
            match v {
                serde_json::Value::Array(items) => items
                    .into_iter()
                    .enumerate()
                    .map(|(k, w)| match w {
                        serde_json::Value::String(s) => Ok(s),
                        other => Err(bad(format!("entry {k} is {other}, not a word"))),
                    })
                    .collect::<Result<Vec<_>>>()?,
                serde_json::Value::Object(map) => {
                    let mut words = vec![None; map.len()];
                    for (w, id) in map {
                        let id = id
                            .as_u64()
                            .and_then(|i| usize::try_from(i).ok())
                            .filter(|&i| i < words.len())
                            .ok_or_else(|| {
                                bad(format!(
                                    "'{w}' has id {id}; ids must be 0..{} without gaps",
                                    words.len()
                                ))
                            })?;
                        if words[id].replace(w.clone()).is_some() {
                            return Err(bad(format!("id {id} is given twice (again for '{w}')")));
                        }
                    }
                    words
                        .into_iter()
                        .map(|w| w.expect("every id is filled: as many as entries, none twice"))
                        .collect()
                }
                _ => {
                    return Err(bad(
                        "neither a list of words nor an object word -> id".into()
                    ));
                }
            }
        } else {
            text.lines()
                .map(|l| l.trim_end_matches('\r').to_string())
                .collect()
        };
        if words.is_empty() {
            return Err(bad("holds no words".into()));
        }
        Ok(Vocab { words })
    }

    /// Builds a vocabulary from words in id order.
    pub fn from_words(words: Vec<String>) -> Vocab {
        Vocab { words }
    }

    pub fn len(&self) -> usize {
        self.words.len()
    }

    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// The word of `id` (`#id` past the end, which [`Vocab::check_covers`] rules out).
    pub fn word(&self, id: i64) -> String {
        usize::try_from(id)
            .ok()
            .and_then(|i| self.words.get(i))
            .cloned()
            .unwrap_or_else(|| format!("#{id}"))
    }

    /// Whether `id` is a padding word.
    pub fn is_pad(&self, id: i64) -> bool {
        PAD_WORDS.contains(&self.word(id).as_str())
    }

    /// A vocabulary must name every row of the embedding it is used with.
    pub fn check_covers(&self, rows: usize, what: &str) -> Result<()> {
        if rows > self.words.len() {
            return Err(Error::Input {
                what: what.into(),
                reason: format!(
                    "has {} words, but the model's embedding has {rows} rows",
                    self.words.len()
                ),
            });
        }
        Ok(())
    }
}

/// The tokens of one text up to its last non-padding word.
pub fn trimmed(ids: &[i64], vocab: &Vocab) -> usize {
    ids.iter()
        .rposition(|&i| !vocab.is_pad(i))
        .map_or(0, |p| p + 1)
}

/// RGB of a relevance on the tutorial's scale: `r / scale` in [-1, 1] from blue through white
/// to red.
fn colour(r: f32, scale: f32) -> (u8, u8, u8) {
    let a = if scale > 0.0 {
        (r / scale).clamp(-1.0, 1.0)
    } else {
        0.0
    };
    let fade = (255.0 * (1.0 - a.abs())).round() as u8;
    if a >= 0.0 {
        (255, fade, fade)
    } else {
        (fade, fade, 255)
    }
}

/// The largest |relevance|: the symmetric normalisation.
fn scale(relevance: &[f32]) -> f32 {
    relevance.iter().fold(0.0f32, |m, r| m.max(r.abs()))
}

/// One explained text, for display.
pub struct TextHeatmap<'a> {
    pub words: &'a [String],
    pub relevance: &'a [f32],
    /// What was explained: e.g. "target positive (1), logit 3.52".
    pub caption: String,
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A self-contained HTML page with one coloured paragraph per text.
pub fn html(texts: &[TextHeatmap]) -> String {
    let mut out = String::from(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>lrpc relevance</title>\n\
         <style>body{font-family:sans-serif;max-width:60em;margin:2em auto}\
         p.text{font-size:1.3em;line-height:1.8em}span.w{padding:0.1em 0.2em;border-radius:0.2em}\
         p.caption{color:#555}</style></head><body>\n",
    );
    for t in texts {
        let s = scale(t.relevance);
        let _ = writeln!(
            out,
            "<p class=\"caption\">{}</p>\n<p class=\"text\">",
            escape(&t.caption)
        );
        for (w, &r) in t.words.iter().zip(t.relevance) {
            let (red, green, blue) = colour(r, s);
            let _ = writeln!(
                out,
                "<span class=\"w\" style=\"background:rgb({red},{green},{blue})\" title=\"{r:.4}\">{}</span>",
                escape(w)
            );
        }
        out.push_str("</p>\n");
    }
    out.push_str("</body></html>\n");
    out
}

/// The same texts as an SVG picture (for a README, where HTML styles are stripped): one line
/// per text, its caption above it, words as coloured boxes sized by their length in a
/// monospace font.
pub fn svg(texts: &[TextHeatmap]) -> String {
    const CHAR: f32 = 9.6; // advance of a 16px monospace glyph
    const LINE: f32 = 52.0;
    let width = texts
        .iter()
        .map(|t| {
            let words: usize = t.words.iter().map(|w| w.chars().count() + 1).sum();
            (words as f32 * CHAR).max(t.caption.chars().count() as f32 * 7.5)
        })
        .fold(200.0f32, f32::max)
        + 20.0;
    let height = texts.len() as f32 * LINE + 10.0;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" font-family=\"monospace\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    );
    for (k, t) in texts.iter().enumerate() {
        let top = k as f32 * LINE + 6.0;
        let _ = writeln!(
            out,
            "<text x=\"10\" y=\"{:.1}\" font-size=\"12\" fill=\"#555\">{}</text>",
            top + 12.0,
            escape(&t.caption)
        );
        let s = scale(t.relevance);
        let mut x = 10.0;
        for (w, &r) in t.words.iter().zip(t.relevance) {
            let (red, green, blue) = colour(r, s);
            let len = w.chars().count() as f32 * CHAR;
            let _ = writeln!(
                out,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"24\" rx=\"3\" fill=\"rgb({red},{green},{blue})\"><title>{r:.4}</title></rect><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"16\">{}</text>",
                x - 2.0,
                top + 18.0,
                len + 4.0,
                x,
                top + 36.0,
                escape(w)
            );
            x += len + CHAR;
        }
    }
    out.push_str("</svg>\n");
    out
}

/// The words on 24-bit ANSI backgrounds (black text), for a terminal.
pub fn ansi(words: &[String], relevance: &[f32]) -> String {
    let s = scale(relevance);
    let mut out = String::new();
    for (w, &r) in words.iter().zip(relevance) {
        let (red, green, blue) = colour(r, s);
        let _ = write!(
            out,
            "\x1b[48;2;{red};{green};{blue}m\x1b[38;2;0;0;0m {w} \x1b[0m"
        );
    }
    out
}

/// Plain text: `word (relevance)` per token.
pub fn plain(words: &[String], relevance: &[f32]) -> String {
    words
        .iter()
        .zip(relevance)
        .map(|(w, r)| format!("{w} ({r:+.4})"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Relevance per word over a corpus: the total and the number of occurrences.
#[derive(Clone, Debug, Default)]
pub struct WordStats {
    totals: HashMap<i64, (f64, usize)>,
}

/// One word of [`WordStats::top`].
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct WordRelevance {
    pub word: String,
    pub id: i64,
    /// Mean relevance per occurrence.
    pub mean: f64,
    pub count: usize,
}

impl WordStats {
    /// Adds one text's tokens and their relevance (padding left out).
    pub fn add(&mut self, ids: &[i64], relevance: &[f32], vocab: &Vocab) {
        for (&id, &r) in ids.iter().zip(relevance) {
            if vocab.is_pad(id) {
                continue;
            }
            let e = self.totals.entry(id).or_default();
            e.0 += f64::from(r);
            e.1 += 1;
        }
    }

    /// The `n` words of largest mean relevance among those seen at least `min_count` times
    /// (ties: more occurrences first, then the smaller id).
    pub fn top(&self, n: usize, min_count: usize, vocab: &Vocab) -> Vec<WordRelevance> {
        let mut v: Vec<WordRelevance> = self
            .totals
            .iter()
            .filter(|(_, (_, c))| *c >= min_count.max(1))
            .map(|(&id, &(sum, count))| WordRelevance {
                word: vocab.word(id),
                id,
                mean: sum / count as f64,
                count,
            })
            .collect();
        v.sort_by(|a, b| {
            b.mean
                .total_cmp(&a.mean)
                .then(b.count.cmp(&a.count))
                .then(a.id.cmp(&b.id))
        });
        v.truncate(n);
        v
    }
}

/// The relevance per token, (batch, seq), from the relevance of the embedding vectors
/// (batch, seq, dim): the sum over the embedding axis.
pub fn per_token(relevance: &crate::ir::Tensor) -> Result<crate::ir::Tensor> {
    let shape = relevance.shape();
    let bad = |reason: String| Error::Input {
        what: "relevance".into(),
        reason,
    };
    let (&dim, outer) = shape
        .split_last()
        .ok_or_else(|| bad("the embedding relevance has no axes".into()))?;
    let sums: Vec<f32> = relevance
        .f32s()
        .map_err(|e| bad(e.0))?
        .chunks(dim.max(1))
        .map(|c| c.iter().sum())
        .collect();
    crate::ir::Tensor::from_f32(outer.to_vec(), sums).map_err(|e| bad(e.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vocab() -> Vocab {
        Vocab::from_words(["<pad>", "not", "good", "bad"].map(String::from).to_vec())
    }

    #[test]
    fn colours_are_symmetric_and_white_at_zero() {
        assert_eq!(colour(0.0, 1.0), (255, 255, 255));
        assert_eq!(colour(1.0, 1.0), (255, 0, 0));
        assert_eq!(colour(-1.0, 1.0), (0, 0, 255));
        assert_eq!(colour(0.5, 1.0), (255, 128, 128));
        assert_eq!(colour(-0.5, 1.0), (128, 128, 255));
        // Nothing relevant: all white, no division by zero.
        assert_eq!(colour(0.0, 0.0), (255, 255, 255));
    }

    #[test]
    fn html_escapes_words_and_colours_each() {
        let words = ["<b>".to_string(), "good".to_string()];
        let page = html(&[TextHeatmap {
            words: &words,
            relevance: &[-2.0, 1.0],
            caption: "a & b".into(),
        }]);
        assert!(page.contains("&lt;b&gt;") && !page.contains("<b>"));
        assert!(page.contains("a &amp; b"));
        assert!(
            page.contains("rgb(0,0,255)"),
            "the most negative word is full blue"
        );
        assert!(
            page.contains("rgb(255,128,128)"),
            "half of the scale: light red"
        );
    }

    #[test]
    fn padding_is_trimmed_and_left_out_of_statistics() {
        let v = vocab();
        assert_eq!(trimmed(&[1, 2, 0, 0], &v), 2);
        assert_eq!(trimmed(&[0, 0], &v), 0);
        let mut s = WordStats::default();
        s.add(&[1, 2, 0], &[0.5, 2.0, 9.0], &v);
        s.add(&[3, 2, 0], &[-1.0, 1.0, 9.0], &v);
        let top = s.top(10, 1, &v);
        let words: Vec<&str> = top.iter().map(|w| w.word.as_str()).collect();
        assert_eq!(words, ["good", "not", "bad"]);
        assert_eq!((top[0].mean, top[0].count), (1.5, 2));
        assert_eq!(
            s.top(10, 2, &v).len(),
            1,
            "min_count keeps words seen twice"
        );
    }

    #[test]
    fn vocabularies_load_from_lists_objects_and_lines() {
        let dir = tempfile::tempdir().unwrap();
        let list = dir.path().join("v.json");
        std::fs::write(&list, r#"["<pad>", "a", "b"]"#).unwrap();
        assert_eq!(Vocab::load(&list).unwrap().word(2), "b");
        let object = dir.path().join("o.json");
        std::fs::write(&object, r#"{"b": 2, "<pad>": 0, "a": 1}"#).unwrap();
        let v = Vocab::load(&object).unwrap();
        assert_eq!(
            (v.word(0), v.word(1), v.word(2)),
            ("<pad>".into(), "a".into(), "b".into())
        );
        let gap = dir.path().join("g.json");
        std::fs::write(&gap, r#"{"a": 0, "b": 5}"#).unwrap();
        assert!(
            Vocab::load(&gap)
                .unwrap_err()
                .to_string()
                .contains("without gaps")
        );
        let lines = dir.path().join("v.txt");
        std::fs::write(&lines, "<pad>\nx\ny\n").unwrap();
        let v = Vocab::load(&lines).unwrap();
        assert_eq!((v.len(), v.word(2)), (3, "y".into()));
        assert!(v.check_covers(4, "vocab").is_err());
        assert!(v.check_covers(3, "vocab").is_ok());
    }
}
