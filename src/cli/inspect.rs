//! `lrpc inspect MODEL [--format text|json|dot]`.

use anyhow::{Result, anyhow};
use clap::{Args, ValueEnum};
use lrpc::Model;
use lrpc::ir::dump::GraphView;
use lrpc::relevance::{self, Method};

use super::{ModelArg, ShapeArgs};

#[derive(Args, Debug)]
pub struct InspectArgs {
    #[command(flatten)]
    model: ModelArg,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Show the rule this method gives each node.
    #[arg(long)]
    method: Option<String>,
    /// Force a rule on nodes whose name matches a glob: PATTERN=RULE (repeatable; with --method).
    #[arg(long = "rule", value_name = "PATTERN=RULE")]
    rules: Vec<String>,
    #[command(flatten)]
    shapes: ShapeArgs,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum Format {
    Text,
    Json,
    Dot,
}

pub fn inspect(args: InspectArgs) -> Result<()> {
    if args.model.is_artifact() {
        let mut given: Vec<(&'static str, String)> = args.shapes.given();
        if let Some(m) = &args.method {
            given.push(("--method", m.clone()));
        }
        given.extend(args.rules.iter().map(|r| ("--rule", r.clone())));
        if let Some((flag, value)) = given.first() {
            return Err(anyhow!(
                "{}: {flag} {value}: an artifact's method, rules and shapes were fixed when it was compiled; inspect shows them",
                args.model.model.display()
            ));
        }
        let summary = lrpc::runtime::artifact::Artifact::open(&args.model.model)?.summary()?;
        match args.format {
            Format::Text => print!("{}", summary.to_text()),
            Format::Json => println!("{}", serde_json::to_string(&summary)?),
            Format::Dot => {
                return Err(anyhow!(
                    "{}: --format dot shows a model's graph; an artifact holds a compiled program (use text or json)",
                    args.model.model.display()
                ));
            }
        }
        return Ok(());
    }
    let model = Model::load(&args.model.model, &args.shapes.options(None)?)?;
    super::print_notes(&args.model.model, &model);
    let rules = match &args.method {
        Some(name) => {
            let mut method = Method::parse(name)?;
            for r in &args.rules {
                method.add_override(r)?;
            }
            relevance::rules(model.graph(), &method)?
        }
        None if !args.rules.is_empty() => return Err(anyhow!("--rule needs --method")),
        None => Default::default(),
    };
    let view = GraphView::new(model.graph(), &|n| rules.get(&n).map(|r| r.to_string()));
    let text = match args.format {
        Format::Text => view.to_text(),
        Format::Json => view.to_json() + "\n",
        Format::Dot => view.to_dot(),
    };
    print!("{text}");
    Ok(())
}
