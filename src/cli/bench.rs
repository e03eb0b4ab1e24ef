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
    /// Worker threads. The reference interpreter is single-threaded, so only 1 is accepted until
    /// the compiled backend lands.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Print one JSON object: compile_s, forward_s, explain_s, peak_rss_mb, threads, batch, method.
    #[arg(long)]
    json: bool,
}

pub fn bench(args: BenchArgs) -> Result<()> {
    if args.threads != 1 {
        return Err(anyhow!(
            "--threads {}: the interpreter runs on one thread",
            args.threads
        ));
    }
    if args.batch == 0 || args.runs == 0 {
        return Err(anyhow!("--batch and --runs must be positive"));
    }
    let method = Method::parse(&args.method)?;
    let r = lrpc::bench::bench(&args.model.model, method, args.batch, args.runs)?;
    if args.json {
        println!("{}", serde_json::to_string(&r)?);
    } else {
        println!(
            "{} batch {} ({} engine, {} thread, median of {} runs): compile {:.3} s, forward {:.3} s, explain {:.3} s, peak RSS {}",
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
