//! `pallet completion bash|zsh|fish`: shell completion scripts generated from the CLI's own
//! definition (clap_complete), so they never fall behind the flags.

use super::error::CliError;
use super::Cli;
use clap::CommandFactory;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct CompletionArgs {
    /// The shell to write a completion script for
    pub shell: clap_complete::Shell,
}

pub fn completion(args: CompletionArgs) -> Result<ExitCode, CliError> {
    let mut cmd = Cli::command();
    clap_complete::generate(args.shell, &mut cmd, "pallet", &mut std::io::stdout());
    Ok(ExitCode::SUCCESS)
}
