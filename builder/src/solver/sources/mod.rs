//! Sources: the vertices that bring a file tree into the build rather than compute one.
//! Each has a typed request built from its graph op (no source sees the vertex or re-matches
//! the op):
//! - scratch: an empty tree;
//! - local (the main context, a `--build-context NAME=DIR`): a directory read in place;
//! - image: a stored image's layers, its pinned manifest checked;
//! - http (`ADD <url>`) and git (`ADD <git remote>`): fetched, committed as one layer, cached
//!   by content ([`http`], [`git`]).
//!
//! Sources need no cache record of their own but http and git's: the store or the context is
//! the source of truth.

mod git;
mod http;
mod image;

pub(crate) use git::{commit_time_for_epoch, redact_git_url};
pub use git::{GitError, GitFailure};
pub(crate) use http::content_for_epoch;
pub use http::HttpError;

use super::{stored, CacheKey, Output, SolveError, SolveOptions};
use crate::events::Event;
use crate::store::StoreError;
use graph::Source;

/// Why a source could not bring its tree in.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(
        "image {name} is not in the local store (removed during the build?): pull it with \
         `pallet pull {name}` or build again"
    )]
    ImageNotStored { name: String },
    #[error(
        "image {name} changed during the build (expected {expected}, found {found}): build again"
    )]
    ImageChanged {
        name: String,
        expected: String,
        found: String,
    },
    #[error("layer {diff_id} of {name} is missing from the store: pull or import the image again")]
    LayerMissing { diff_id: String, name: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    /// `ADD <url>`.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// `ADD <git remote>`.
    #[error(transparent)]
    Git(#[from] GitError),
}

/// What a source step needs besides its request.
pub(super) struct SourceStep<'a> {
    /// The progress name.
    pub name: &'a str,
    /// The vertex's own cache key (a digest of its definition), used where the result does
    /// not depend on fetched content.
    pub key: CacheKey,
    /// `--no-cache` applies to it: fetch again.
    pub no_cache: bool,
    pub opts: &'a SolveOptions<'a>,
    pub events: &'a (dyn Fn(Event) + Sync),
}

/// How a source's result came about, for the step history.
pub(super) enum Provenance {
    /// Scratch or a local directory: nothing to remember.
    Given,
    /// An image already in the store: a cache hit.
    Stored,
    /// Fetched (or found by content) now: a step that ran.
    Fetched,
}

/// Brings in the tree of `source`.
pub(super) fn run(
    source: &Source,
    step: SourceStep<'_>,
) -> Result<(Output, CacheKey, Provenance), SolveError> {
    match source {
        Source::Scratch => Ok((Output::Layers(Vec::new()), step.key, Provenance::Given)),
        Source::Local { name, .. } => {
            step.opts
                .local(name)
                .map_err(|e| SolveError::step(step.name, e))?;
            Ok((Output::Local(name.clone()), step.key, Provenance::Given))
        }
        Source::Image { reference, .. } => {
            let layers = image::layers(step.opts.root, reference)
                .map_err(|e| SolveError::step(step.name, e))?;
            (step.events)(Event::Cached {
                name: step.name.to_string(),
            });
            Ok((stored(layers), step.key, Provenance::Stored))
        }
        Source::Http {
            url,
            filename,
            checksum,
        } => {
            let request = http::Request {
                url,
                filename,
                checksum: checksum.as_deref(),
            };
            let (layers, key) = http::run(&request, &step)?;
            Ok((stored(layers), key, Provenance::Fetched))
        }
        Source::Git {
            remote,
            reference,
            subdir,
            keep_git_dir,
            checksum,
            skip_submodules,
        } => {
            let request = git::Request {
                remote,
                reference,
                subdir,
                keep_git_dir: *keep_git_dir,
                checksum: checksum.as_deref(),
                submodules: !*skip_submodules,
            };
            let (layers, key) = git::run(&request, &step)?;
            Ok((stored(layers), key, Provenance::Fetched))
        }
    }
}
