//! `pallet debug parse|graph`: the frontend's intermediate results, for people and tests.

use super::error::{CliError, Context};
use super::{input, named_context, render, FrontendArgs};
use clap::{Args, Subcommand};
use frontend::diagnostic::FrontendError;
use frontend::lower::{lower, Offline};
use frontend::parser;
use std::io::Read;
use std::process::ExitCode;

#[derive(Subcommand, Debug)]
pub enum DebugCommand {
    /// Print the parsed AST in BuildKit's golden-file format
    #[command(
        after_help = "Examples:\n  pallet debug parse Dockerfile\n  echo 'FROM scratch' | pallet debug parse -"
    )]
    Parse {
        /// The Dockerfile (`-` for standard input)
        file: String,
    },
    /// Print the lowered graph: ops, inputs, metadata and the target's image config
    #[command(
        after_help = "Examples:\n  pallet debug graph .\n  pallet debug graph -f train.Dockerfile --target runtime --format json ."
    )]
    Graph(GraphArgs),
}

#[derive(Args, Debug)]
pub struct GraphArgs {
    #[command(flatten)]
    pub frontend: FrontendArgs,
    /// Output format: text or json
    #[arg(long, default_value = "text")]
    pub format: String,
    /// Additional build context, as for build: NAME=DIR or NAME=docker-image://REF
    #[arg(long = "build-context", value_name = "NAME=DIR|docker-image://REF")]
    pub build_contexts: Vec<String>,
}

pub fn run(cmd: DebugCommand) -> Result<ExitCode, CliError> {
    match cmd {
        DebugCommand::Parse { file } => parse(&file),
        DebugCommand::Graph(args) => graph(args),
    }
}

/// `pallet debug parse FILE`: the AST in BuildKit's golden-file format.
fn parse(file: &str) -> Result<ExitCode, CliError> {
    let bytes = if file == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .context("cannot read standard input")?;
        buf
    } else {
        std::fs::read(file).with_context(|| format!("cannot read {file}"))?
    };
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let df = parser::parse(&bytes)
        .map_err(|e| input::dockerfile_error(FrontendError::from(e), file, &text))?;
    print!("{}", parser::dump(&df));
    Ok(ExitCode::SUCCESS)
}

/// `pallet debug graph`: the lowered graph, as text or JSON.
fn graph(args: GraphArgs) -> Result<ExitCode, CliError> {
    if !matches!(args.format.as_str(), "text" | "json") {
        return Err(CliError::msg(format!(
            "invalid --format \"{}\": use text or json",
            args.format
        )));
    }
    let mut loaded = input::load(&args.frontend)?;
    named_context::apply(
        &args.build_contexts,
        None,
        &mut loaded.options,
        &mut Default::default(),
    )?;
    let lowered = lower(&loaded.parsed, &loaded.options, &Offline).map_err(|e| loaded.error(e))?;
    if args.format == "json" {
        println!("{}", render::graph_json(&lowered));
    } else {
        render::warnings(&lowered.warnings, &loaded.name);
        print!("{}", render::graph_text(&lowered));
    }
    Ok(ExitCode::SUCCESS)
}
