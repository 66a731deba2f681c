//! `pallet build`: docker build's flags. Today it parses and lowers (so every Dockerfile error
//! shows now), then says plainly that executing the graph is not built yet.

use super::{input, render, FrontendArgs};
use crate::frontend::lower::{lower, Offline};
use clap::Args;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct BuildArgs {
    #[command(flatten)]
    pub frontend: FrontendArgs,
    /// Name and optionally a tag (name:tag)
    #[arg(short = 't', long = "tag")]
    pub tags: Vec<String>,
    /// Output destination (type=oci|docker|local|image,dest=...)
    #[arg(short = 'o', long = "output")]
    pub outputs: Vec<String>,
    /// Progress output: auto, tty, plain, json
    #[arg(long, default_value = "auto")]
    pub progress: String,
    /// Always check for a newer version of base images
    #[arg(long)]
    pub pull: bool,
    /// Push the image after building (needs -t)
    #[arg(long)]
    pub push: bool,
    /// Secret to expose to RUN --mount=type=secret (id=ID,src=PATH or id=ID,env=VAR)
    #[arg(long)]
    pub secret: Vec<String>,
    /// Additional build context (name=path or name=oci-layout://dir)
    #[arg(long = "build-context")]
    pub build_contexts: Vec<String>,
    /// Set a label on the image (KEY=VALUE)
    #[arg(long)]
    pub label: Vec<String>,
    /// Path to an OCI runtime (default: runc on PATH)
    #[arg(long)]
    pub runtime: Option<String>,
    /// Layer compression (gzip, zstd[,level=N])
    #[arg(long)]
    pub compression: Option<String>,
}

pub fn run(args: BuildArgs) -> Result<ExitCode, String> {
    if !matches!(args.progress.as_str(), "auto" | "tty" | "plain" | "json") {
        return Err(format!(
            "error: invalid --progress \"{}\": use auto, tty, plain or json\n",
            args.progress
        ));
    }
    let loaded = input::load(&args.frontend)?;
    let lowered = lower(&loaded.parsed, &loaded.options, &Offline)
        .map_err(|e| e.render(&loaded.name, &loaded.text))?;
    render::warnings(&lowered.warnings, &loaded.name);
    eprintln!(
        "pallet: {} lowers to {} ops for target \"{}\" (stages: {}).",
        loaded.name,
        lowered.graph.vertices.len(),
        lowered.target,
        lowered.stages.join(", ")
    );
    eprintln!(
        "pallet: executing builds is not built yet (solver, runc and the layer store land with the \
         end-to-end build issue): nothing was built and no image was written.\n  \
         `pallet debug graph {}` shows what would run.",
        args.frontend.context
    );
    Ok(ExitCode::from(2))
}
