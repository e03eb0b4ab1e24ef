//! `lrpc bench MODEL --method M [--batch N] [--runs N] [--threads N] [--json]`.

use anyhow::{Result, anyhow};
use clap::Args;
use lrpc::relevance::Method;

use super::ModelArg;

#[derive(Args, Debug)]
pub struct BenchArgs {
    #[command(flatten)]
    model: ModelArg,
    /// The method to time (see `lrpc explain --help`).
    #[arg(long, default_value = "epsilon-plus")]
    method: String,
    /// Batch size (for models with a symbolic batch axis).
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Timed runs; medians are reported.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Worker threads of compiled code (default: every available core).
    #[arg(long)]
    threads: Option<usize>,
    /// Time the reference interpreter instead of compiled code (single-threaded).
    #[arg(long)]
    interpreter: bool,
    /// Print one JSON object: compile_s, forward_s, explain_s, peak_rss_mb, threads, batch, method.
    #[arg(long)]
    json: bool,
}

pub fn bench(args: BenchArgs) -> Result<()> {
    if args.batch == 0 || args.runs == 0 || args.threads == Some(0) {
        return Err(anyhow!("--batch, --runs and --threads must be positive"));
    }
    if args.interpreter && args.threads.is_some_and(|t| t != 1) {
        return Err(anyhow!("--interpreter runs on one thread; drop --threads"));
    }
    let method = Method::parse(&args.method)?;
    let options = lrpc::bench::BenchOptions {
        batch: args.batch,
        runs: args.runs,
        threads: args.threads.unwrap_or_else(lrpc::codegen::default_threads),
        engine: if args.interpreter {
            lrpc::Engine::Interpreter
        } else {
            lrpc::Engine::Compiled
        },
    };
    let r = lrpc::bench::bench(&args.model.model, method, options)?;
    if args.json {
        println!("{}", serde_json::to_string(&r)?);
    } else {
        println!(
            "{} batch {} ({} engine, {} threads, median of {} runs): compile {:.3} s, forward {:.3} s, explain {:.3} s, peak RSS {}",
            r.method,
            r.batch,
            r.engine,
            r.threads,
            r.runs,
            r.compile_s,
            r.forward_s,
            r.explain_s,
            r.peak_rss_mb
                .map_or("n/a".to_string(), |m| format!("{m:.0} MB"))
        );
    }
    Ok(())
}
