//! `pallet build --explain`: lower against the local store (no pulls), compute every step's
//! cache key as a build would, and report hits and the reasons of misses through the same
//! events a build sends. Runs nothing and writes nothing.

use super::BuildError;
use crate::events::Event;
use crate::exec::Isolation;
use crate::solver::{explain as explain_graph, LocalDir, SolveError, SolveOptions};
use crate::store::StoreResolver;
use cache::Root;
use frontend::ast::Dockerfile;
use frontend::lint::Warning;
use frontend::lower::{lower, LowerOptions};
use std::collections::BTreeMap;

/// What a dry run needs: the parsed Dockerfile, the lowering flags, the directories the
/// build would read, and the Dockerfile's identity in the step history.
pub struct ExplainRequest<'a> {
    pub dockerfile: &'a Dockerfile,
    pub lower: &'a LowerOptions,
    /// A multi-platform build's platforms (each lowered, the graphs merged as the build
    /// merges them); empty: `lower.platform` alone.
    pub platforms: &'a [graph::Platform],
    pub locals: BTreeMap<String, LocalDir>,
    pub dockerfile_path: String,
}

/// What the dry run found: (hits, misses), or why the keys could not be worked out; and
/// lowering's warnings either way.
pub struct Explained {
    pub outcome: Result<(usize, usize), SolveError>,
    pub warnings: Vec<Warning>,
}

pub fn explain(
    root: &Root,
    req: ExplainRequest<'_>,
    events: &(dyn Fn(Event) + Sync),
) -> Result<Explained, BuildError> {
    let images = StoreResolver { root };
    // A SOURCE_DATE_EPOCH stage's URL: the time an earlier build stored, never a fetch.
    let resolver = super::epoch::WithSourceEpochs {
        images: &images,
        root,
        no_cache: false,
        events: &|_| {},
        ssh_default: None,
        offline: true,
    };
    let (graph, roots, warnings) = if req.platforms.len() > 1 {
        let (graph, lowered) =
            super::platforms::lower_all(req.dockerfile, req.lower, req.platforms, &resolver)?;
        let roots = lowered.iter().map(|(_, l)| l.root.clone()).collect();
        let warnings = lowered.into_iter().next().map(|(_, l)| l.warnings);
        (graph, roots, warnings.unwrap_or_default())
    } else {
        let lowered = lower(req.dockerfile, req.lower, &resolver)
            .map_err(|e| BuildError::Frontend(Box::new(e)))?;
        (lowered.graph, vec![lowered.root], lowered.warnings)
    };
    let isolation = Isolation::dry_run();
    let opts = SolveOptions {
        root,
        executor: isolation.executor.as_ref(),
        snapshotter: isolation.snapshotter.as_ref(),
        locals: req.locals,
        no_cache: req.lower.no_cache,
        epoch: None,
        secrets: Default::default(),
        ssh: Default::default(),
        dockerfile: req.dockerfile_path,
        compress: None,
        cache_from: None,
        registry: None,
        cache_mounts: Default::default(),
    };
    Ok(Explained {
        outcome: explain_graph(&graph, &roots, &opts, events),
        warnings,
    })
}
