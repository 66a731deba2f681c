//! `pallet debug parse|graph`: the frontend's intermediate results, for people and tests.

use super::{input, render, FrontendArgs};
use clap::{Args, Subcommand};
use frontend::lower::{lower, Offline};
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

pub fn run(cmd: DebugCommand) -> Result<ExitCode, String> {
    match cmd {
        DebugCommand::Parse { file } => {
            let bytes = if file == "-" {
                let mut buf = Vec::new();
                std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)
                    .map_err(|e| format!("error: cannot read standard input: {e}\n"))?;
                buf
            } else {
                std::fs::read(&file).map_err(|e| format!("error: cannot read {file}: {e}\n"))?
            };
            let text = String::from_utf8_lossy(&bytes).into_owned();
            let df = frontend::parser::parse(&bytes)
                .map_err(|e| frontend::diagnostic::FrontendError::from(e).render(&file, &text))?;
            print!("{}", frontend::parser::dump(&df));
            Ok(ExitCode::SUCCESS)
        }
        DebugCommand::Graph(args) => {
            if !matches!(args.format.as_str(), "text" | "json") {
                return Err(format!(
                    "error: invalid --format \"{}\": use text or json\n",
                    args.format
                ));
            }
            let mut loaded = input::load(&args.frontend)?;
            super::named_context::apply(
                &args.build_contexts,
                None,
                &mut loaded.options,
                &mut Default::default(),
            )?;
            let lowered = lower(&loaded.parsed, &loaded.options, &Offline)
                .map_err(|e| e.render(&loaded.name, &loaded.text))?;
            if args.format == "json" {
                println!("{}", render::graph_json(&lowered));
            } else {
                render::warnings(&lowered.warnings, &loaded.name);
                print!("{}", render::graph_text(&lowered));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
