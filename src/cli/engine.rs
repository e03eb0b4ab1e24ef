//! `--threads N` and `--interpreter`: which engine runs a model, shared by run, explain and bench.

use anyhow::{Result, anyhow};
use clap::Args;
use lrpc::Engine;

#[derive(Args, Debug)]
pub struct EngineArgs {
    /// Worker threads of compiled code (default: every available core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Run the reference interpreter instead of compiled code (one thread, slow: the oracle).
    #[arg(long)]
    pub interpreter: bool,
    /// With an artifact: compile its kernels again for this CPU instead of mapping the machine
    /// code it stores (for a CPU that lacks features the stored code assumes).
    #[arg(long)]
    pub recompile: bool,
}

impl EngineArgs {
    /// The engine and its thread count.
    pub fn engine(&self) -> Result<(Engine, usize)> {
        match (self.interpreter, self.threads) {
            (_, Some(0)) => Err(anyhow!("--threads must be positive")),
            (true, Some(t)) if t != 1 => Err(anyhow!(
                "--interpreter runs on one thread; drop --threads {t}"
            )),
            (true, _) => Ok((Engine::Interpreter, 1)),
            (false, t) => Ok((
                Engine::Compiled,
                t.unwrap_or_else(lrpc::runtime::default_threads),
            )),
        }
    }
}
