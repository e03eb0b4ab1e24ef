//! `lrpc inspect MODEL [--format text|json|dot]`.

use anyhow::Result;
use clap::{Args, ValueEnum};
use lrpc::Model;
use lrpc::ir::dump::GraphView;

use super::{ModelArg, ShapeArgs};

#[derive(Args, Debug)]
pub struct InspectArgs {
    #[command(flatten)]
    model: ModelArg,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
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
    let model = Model::load(&args.model.model, &args.shapes.options(None)?)?;
    let view = GraphView::new(model.graph(), &|_| None);
    let text = match args.format {
        Format::Text => view.to_text(),
        Format::Json => view.to_json() + "\n",
        Format::Dot => view.to_dot(),
    };
    print!("{text}");
    Ok(())
}
