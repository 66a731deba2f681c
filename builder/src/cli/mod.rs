//! The `pallet` command line: parses arguments and calls the library. No build logic lives
//! here; every subcommand is a few lines over `frontend`, `graph` and (later) the solver.

mod build;
mod debug;
mod input;
mod render;

use clap::{Args, Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(name = "pallet", version, about = "Daemonless container image builder (Dockerfile -> OCI image)", long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Commands,
}

#[derive(Subcommand, Debug)]
enum Commands {
    /// Build an image from a Dockerfile (docker build's flags)
    #[command(
        after_help = "Examples:\n  pallet build -t app:latest .\n  pallet build -f docker/train.Dockerfile --target runtime --build-arg PYVER=3.11 ."
    )]
    Build(build::BuildArgs),
    /// Inspect what the frontend makes of a Dockerfile
    #[command(subcommand)]
    Debug(debug::DebugCommand),
}

/// Flags shared by `build` and `debug graph`: what decides the graph.
#[derive(Args, Debug, Clone)]
pub struct FrontendArgs {
    /// Name of the Dockerfile (default: CONTEXT/Dockerfile; `-` reads standard input)
    #[arg(short = 'f', long = "file")]
    pub file: Option<String>,
    /// Set a build-time variable (KEY=VALUE, or KEY to take it from the environment)
    #[arg(long = "build-arg", value_name = "KEY=VALUE")]
    pub build_args: Vec<String>,
    /// The stage to build
    #[arg(long)]
    pub target: Option<String>,
    /// Target platform (os/arch[/variant]); default: the host's
    #[arg(long)]
    pub platform: Option<String>,
    /// Do not use the cache when building
    #[arg(long)]
    pub no_cache: bool,
    /// Build context directory
    #[arg(value_name = "CONTEXT")]
    pub context: String,
}

/// Runs the CLI; returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Commands::Build(args) => build::run(args),
        Commands::Debug(cmd) => debug::run(cmd),
    };
    match result {
        Ok(code) => code,
        Err(report) => {
            eprint!("{report}");
            if !report.ends_with('\n') {
                eprintln!();
            }
            ExitCode::from(1)
        }
    }
}
