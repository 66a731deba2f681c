//! What `pallet build` shows around the solver: `--explain` (a dry run against the cache,
//! reported through the same printers as a build), the final summary of a build, and the name
//! a Dockerfile's steps are remembered by (cache-miss reasons compare with their last build).

use super::error::CliError;
use super::input::Loaded;
use super::render;
use crate::build::{self, BuildError, BuildResult, ExplainRequest, LocalDir};
use crate::progress::{self, Mode, Summary};
use crate::store::layer_size;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

/// The Dockerfile's identity for step history: its absolute path (stdin: the context's).
pub(super) fn dockerfile_identity(loaded: &Loaded, context: &str) -> String {
    let context = std::fs::canonicalize(context).unwrap_or_else(|_| PathBuf::from(context));
    if loaded.name == "<stdin>" {
        return format!("<stdin>@{}", context.display());
    }
    std::fs::canonicalize(&loaded.name)
        .unwrap_or_else(|_| PathBuf::from(&loaded.name))
        .display()
        .to_string()
}

/// `pallet build --explain`: lower against the local store, compute every key, report hits and
/// the reasons of misses. Runs nothing, writes nothing.
pub(super) fn run(
    root: &cache::Root,
    loaded: &Loaded,
    context: &str,
    locals: BTreeMap<String, LocalDir>,
    mode: Mode,
) -> Result<ExitCode, CliError> {
    let started = Instant::now();
    let printer = progress::stderr_printer(mode);
    let req = ExplainRequest {
        dockerfile: &loaded.parsed,
        lower: &loaded.options,
        platforms: &loaded.platforms,
        locals,
        dockerfile_path: dockerfile_identity(loaded, context),
    };
    let explained = match build::explain(root, req, &|e| printer.event(e)) {
        Ok(explained) => explained,
        Err(BuildError::Frontend(e)) => return Err(loaded.error(*e)),
        Err(e) => return Err(e.into()),
    };
    printer.finish(&Summary {
        dry_run: true,
        seconds: started.elapsed().as_secs_f64(),
        error: explained.outcome.as_ref().err().map(|e| e.to_string()),
        ..Summary::default()
    });
    render::warnings(&explained.warnings, &loaded.name);
    explained.outcome?;
    Ok(ExitCode::SUCCESS)
}

/// The summary of a finished (or failed) build.
pub(super) fn summary(
    root: &cache::Root,
    result: &Result<BuildResult, BuildError>,
    started: Instant,
) -> Summary {
    let seconds = started.elapsed().as_secs_f64();
    match result {
        Ok(done) => {
            let size = done
                .image
                .layers
                .iter()
                .filter_map(|d| layer_size(root, d).ok())
                .sum();
            Summary {
                image: (!done.image.name.is_empty()).then(|| done.image.name.clone()),
                // A multi-platform build's is its index's.
                digest: Some(
                    done.image
                        .index
                        .as_ref()
                        .map_or(done.image.manifest_digest.clone(), |i| i.digest.clone()),
                ),
                size: Some(size),
                layers: Some(done.image.layers.len()),
                seconds,
                ..Summary::default()
            }
        }
        Err(e) => Summary {
            seconds,
            error: Some(e.to_string()),
            ..Summary::default()
        },
    }
}
