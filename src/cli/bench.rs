//! `lrpc bench MODEL --method M [--batch N] [--runs N] [--threads N] [--json]`.

use anyhow::{Result, anyhow};
use clap::Args;

use super::ModelArg;
use super::engine::EngineArgs;
use super::method::MethodArgs;

#[derive(Args, Debug)]
pub struct BenchArgs {
    #[command(flatten)]
    model: ModelArg,
    #[command(flatten)]
    method: MethodArgs,
    /// Batch size (for models with a symbolic batch axis).
    #[arg(long)]
    batch: Option<usize>,
    /// Size of another symbolic input dimension, as NAME=SIZE (repeatable): a sequence length.
    #[arg(long = "dim", value_name = "NAME=SIZE")]
    dims: Vec<String>,
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
    if args.batch == Some(0) || args.runs == 0 {
        return Err(anyhow!("--batch and --runs must be positive"));
    }
    let (engine, threads) = args.engine.engine()?;
    let options = lrpc::bench::BenchOptions {
        batch: args.batch.unwrap_or(1),
        dims: super::parse_dims(&args.dims)?,
        runs: args.runs,
        threads,
        profile: args.profile,
        engine,
        recompile: args.engine.recompile,
    };
    let r = if args.model.is_artifact() {
        if !args.dims.is_empty() {
            return Err(anyhow!(
                "--dim: an artifact's shapes are fixed when it is compiled (lrpc compile --dim)"
            ));
        }
        let mut given = args.method.given();
        if let Some(b) = args.batch {
            given.push(("--batch", b.to_string()));
        }
        // Checks the flags against what the artifact holds; the benchmark loads it again.
        drop(super::load_artifact(&args.model, &given, &args.engine)?);
        lrpc::bench::bench_artifact(&args.model.model, options)?
    } else {
        lrpc::bench::bench(&args.model.model, args.method.method()?, options)?
    };
    if args.json {
        println!("{}", serde_json::to_string(&r)?);
    } else {
        let made = match r.load_s {
            Some(l) => format!("load {l:.4} s"),
            None => format!("compile {:.3} s", r.compile_s),
        };
        println!(
            "{} batch {} ({} engine, {} threads, median of {} runs): {made}, forward {:.3} s, explain {:.3} s, peak RSS {}",
            r.method,
            r.batch,
            r.engine,
            r.threads,
            r.runs,
            r.forward_s,
            r.explain_s,
            r.peak_rss_mb
                .map_or("n/a".to_string(), |m| format!("{m:.0} MB"))
        );
    }
    if args.profile && !args.json {
        let stages: Vec<String> = r
            .stages
            .iter()
            .map(|(k, t)| format!("{k} {t:.3} s"))
            .collect();
        println!(
            "{}: {}",
            if r.load_s.is_some() {
                "load"
            } else {
                "compile"
            },
            stages.join(", ")
        );
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
            let rate = s
                .gflops()
                .map_or(String::new(), |g| format!("{g:6.1} GFLOP/s"));
            println!("  {:16} {:8.3} s {rate:>15}  {}", s.kind, s.seconds, s.node);
        }
    }
    Ok(())
}
