//! A whole build: lower the Dockerfile against the local store, solve the graph, assemble the
//! image config (diff ids, history times), tag it in the store, and write the requested
//! outputs. The CLI calls this; it holds no Dockerfile or runc logic of its own.

mod outputs;

pub use outputs::{parse_output, OutputSpec};

use crate::export::{compress, manifest};
use crate::frontend::ast::Dockerfile;
use crate::frontend::diagnostic::FrontendError;
use crate::frontend::lint::Warning;
use crate::frontend::lower::{lower, LowerOptions};
use crate::solver::{solve, Event, SolveError, SolveOptions};
use crate::store::{put_image, LayerRecord, StoreError, StoreResolver, StoredImage};
use cache::Root;
use std::path::PathBuf;

pub struct BuildRequest<'a> {
    pub dockerfile: &'a Dockerfile,
    pub lower: LowerOptions,
    pub context_dir: PathBuf,
    pub ignore: Option<crate::frontend::dockerignore::Matcher>,
    /// Normalized references to tag the result with.
    pub tags: Vec<String>,
    pub outputs: Vec<OutputSpec>,
    pub runtime: PathBuf,
    /// `--secret` sources by id (values are read when a step mounts them, never stored).
    pub secrets: std::collections::HashMap<String, crate::solver::SecretSource>,
    /// Clamp layer file times to SOURCE_DATE_EPOCH when it is set (`--rewrite-timestamp`).
    pub rewrite_timestamp: bool,
}

pub struct BuildResult {
    pub image: StoredImage,
    pub warnings: Vec<Warning>,
    pub stages: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{0}")]
    Frontend(Box<FrontendError>),
    #[error(transparent)]
    Solve(#[from] SolveError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Output(String),
}

pub fn build(
    root: &Root,
    req: &BuildRequest,
    events: &(dyn Fn(Event) + Sync),
) -> Result<BuildResult, BuildError> {
    let lowered = lower(req.dockerfile, &req.lower, &StoreResolver { root })
        .map_err(|e| BuildError::Frontend(Box::new(e)))?;
    let opts = SolveOptions {
        root,
        runtime: req.runtime.clone(),
        context_dir: req.context_dir.clone(),
        ignore: req.ignore.clone(),
        no_cache: req.lower.no_cache,
        epoch: lowered.epoch.filter(|_| req.rewrite_timestamp),
        secrets: req.secrets.clone(),
    };
    let layers = solve(&lowered.graph, &lowered.root, &opts, events)?;
    let config = finish_config(lowered.image.clone(), &layers, lowered.epoch);
    let stored = crate::export::manifest::store_uncompressed(root, &config, &layers)?;
    let name = req.tags.first().cloned().unwrap_or_default();
    let image = StoredImage {
        name: name.clone(),
        manifest_digest: stored.manifest.digest.clone(),
        config_digest: stored.config.digest.clone(),
        config: config.clone(),
        layers: layers.iter().map(|l| l.diff_id.clone()).collect(),
    };
    for tag in &req.tags {
        put_image(
            root,
            &StoredImage {
                name: tag.clone(),
                ..image.clone()
            },
        )?;
    }
    for out in &req.outputs {
        write_output(
            root,
            out,
            &config,
            &layers,
            req.tags.first().map(String::as_str),
            lowered.epoch,
        )?;
    }
    Ok(BuildResult {
        image,
        warnings: lowered.warnings,
        stages: lowered.stages,
    })
}

/// Sets the diff ids and the times BuildKit's exporter fills in (SOURCE_DATE_EPOCH or now).
pub fn finish_config(
    mut config: crate::image::Image,
    layers: &[LayerRecord],
    epoch: Option<i64>,
) -> crate::image::Image {
    let now = epoch.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
    });
    let created = crate::frontend::lower::rfc3339(now);
    config.rootfs.kind = "layers".into();
    config.rootfs.diff_ids = layers.iter().map(|l| l.diff_id.clone()).collect();
    for h in &mut config.history {
        if h.created.is_none() {
            h.created = Some(created.clone());
        }
    }
    config.created = Some(created);
    config
}

fn write_output(
    root: &Root,
    out: &OutputSpec,
    config: &crate::image::Image,
    layers: &[LayerRecord],
    tag: Option<&str>,
    epoch: Option<i64>,
) -> Result<(), BuildError> {
    match out {
        OutputSpec::Oci { dest, tar } => {
            let compressed = compress::gzip_layers(root, layers)?;
            let m = manifest::store_manifest(root, config, compressed, manifest::MEDIA_LAYER_GZIP)?;
            if *tar {
                let mut file = std::fs::File::create(dest)
                    .map_err(|e| BuildError::Output(format!("creating {}: {e}", dest.display())))?;
                crate::export::write_layout_tar(
                    root,
                    &m,
                    tag,
                    &mut file,
                    epoch.unwrap_or(0).max(0) as u64,
                )?;
                file.sync_all()
                    .map_err(|e| BuildError::Output(format!("writing {}: {e}", dest.display())))?;
            } else {
                crate::export::write_layout_dir(root, &m, tag, dest)?;
            }
            Ok(())
        }
    }
}
