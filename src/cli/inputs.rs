//! `--input FILE` (the explained input), `--input NAME=FILE` (another model input, repeatable)
//! and `--explain-input NAME`: the data flags shared by run and explain.

use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow};
use clap::Args;
use lrpc::io::npy;
use lrpc::ir::Tensor;

#[derive(Args, Debug, Clone)]
pub struct InputArgs {
    /// The explained input's data (a .npy file, or for explain an image); NAME=FILE gives the
    /// data of another model input by name (repeatable): a mask, lengths, token types.
    #[arg(long = "input", value_name = "[NAME=]FILE", required = true)]
    inputs: Vec<String>,
    /// Which input to explain when the model has several (default: the first float input, else
    /// the first integer input that feeds a Gather, else the first).
    #[arg(long)]
    pub explain_input: Option<String>,
}

/// The data of the other inputs, by name.
pub type Others = Vec<(String, Tensor)>;

impl InputArgs {
    /// The explained input's file, and the other inputs' (name, file).
    fn split(&self) -> Result<(PathBuf, Vec<(String, PathBuf)>)> {
        let mut main = None;
        let mut others = Vec::new();
        for spec in &self.inputs {
            // NAME=FILE where NAME looks like a tensor name (no path separator) and FILE is not
            // itself a path that exists with the '=' in it.
            let named = spec.split_once('=').filter(|(name, _)| {
                !name.is_empty() && !name.contains('/') && !Path::new(spec).exists()
            });
            match named {
                Some((name, file)) => others.push((name.to_string(), PathBuf::from(file))),
                None if main.is_none() => main = Some(PathBuf::from(spec)),
                None => {
                    return Err(anyhow!(
                        "--input given twice without a name ('{}' and '{spec}'); name the other model inputs: --input NAME=FILE",
                        main.as_ref()
                            .map(|p: &PathBuf| p.display().to_string())
                            .unwrap_or_default()
                    ));
                }
            }
        }
        let main = main.ok_or_else(|| {
            anyhow!(
                "--input FILE is missing: the data of the explained input (others are NAME=FILE)"
            )
        })?;
        Ok((main, others))
    }

    /// The explained input's file.
    pub fn main(&self) -> Result<PathBuf> {
        Ok(self.split()?.0)
    }

    /// The other inputs' data, read from their .npy files.
    pub fn others(&self) -> Result<Others> {
        self.split()?
            .1
            .into_iter()
            .map(|(name, file)| Ok((name, npy::read(&file)?)))
            .collect()
    }
}

/// `others` as the library takes them.
pub fn borrowed(others: &Others) -> Vec<(&str, Tensor)> {
    others
        .iter()
        .map(|(n, t)| (n.as_str(), t.clone()))
        .collect()
}
