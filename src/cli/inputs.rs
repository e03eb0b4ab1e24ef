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
    /// the first integer input that feeds a Gather, else the first). When every --input is
    /// NAME=FILE, the explained one is this, else the first float array given, else the first.
    #[arg(long)]
    explain_input: Option<String>,
}

/// The flags resolved: which file is the explained input's, and (when it was given by name)
/// which input that is.
struct Split {
    main: PathBuf,
    main_name: Option<String>,
    others: Vec<(String, PathBuf)>,
}

/// The data of the other inputs, by name.
pub type Others = Vec<(String, Tensor)>;

impl InputArgs {
    /// The explained input's file, and the other inputs' (name, file).
    fn split(&self) -> Result<Split> {
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
        if let Some(main) = main {
            return Ok(Split {
                main,
                main_name: None,
                others,
            });
        }
        // Every input named: the explained one is --explain-input's, else the first float array.
        let pick = match &self.explain_input {
            Some(name) => others.iter().position(|(n, _)| n == name).ok_or_else(|| {
                anyhow!("--explain-input {name}: no --input {name}=FILE gives its data")
            })?,
            None => {
                let mut float = None;
                for (k, (_, file)) in others.iter().enumerate() {
                    if npy::read(file)?.dtype() == lrpc::ir::DType::F32 {
                        float = Some(k);
                        break;
                    }
                }
                // No float data: the first given (an integer input of ids, say).
                float.unwrap_or(0)
            }
        };
        let (name, main) = others.remove(pick);
        Ok(Split {
            main,
            main_name: Some(name),
            others,
        })
    }

    /// The explained input's file.
    pub fn main(&self) -> Result<PathBuf> {
        Ok(self.split()?.main)
    }

    /// Which input to explain, if the flags say (--explain-input, or the named input the
    /// explained data came from).
    pub fn explain_input(&self) -> Result<Option<String>> {
        Ok(match &self.explain_input {
            Some(n) => Some(n.clone()),
            None => self.split()?.main_name,
        })
    }

    /// The other inputs' data, read from their .npy files.
    pub fn others(&self) -> Result<Others> {
        self.split()?
            .others
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
