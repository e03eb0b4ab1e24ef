//! `lrpc bench MODEL --method M [--batch N] [--runs N] [--threads N] [--json]`.

use anyhow::{Result, anyhow};
use clap::Args;
use lrpc::relevance::Method;

use super::ModelArg;
use super::engine::EngineArgs;

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
    #[command(flatten)]
    engine: EngineArgs,
    /// Also time every compiled step and print where the explanation's time goes.
    #[arg(long)]
    profile: bool,
    /// Print one JSON object: compile_s, forward_s, explain_s, peak_rss_mb, threads, batch, method.
    #[arg(long)]
    json: bool,
}

pub fn bench(args: BenchArgs) -> Result<()> {
    if args.batch == 0 || args.runs == 0 {
        return Err(anyhow!("--batch and --runs must be positive"));
    }
    let (engine, threads) = args.engine.engine()?;
    let method = Method::parse(&args.method)?;
    let options = lrpc::bench::BenchOptions {
        batch: args.batch,
        runs: args.runs,
        threads,
        profile: args.profile,
        engine,
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
    if args.profile && !args.json {
        let total: f64 = r.profile.iter().map(|(_, t)| t).sum();
        println!("time per step kind over the warm-up and timed runs ({total:.3} s):");
        for (kind, t) in &r.profile {
            println!(
                "  {kind:16} {t:8.3} s  {:5.1}%",
                100.0 * t / total.max(1e-12)
            );
        }
        println!("slowest steps:");
        for s in &r.slowest {
            println!("  {:16} {:8.3} s  {}", s.kind, s.seconds, s.node);
        }
    }
    Ok(())
}
