//! The one question that flows back up the pipeline: "what is the config of this base image?"
//! Lowering asks it (a base's Env, WorkingDir, User, Shell, ONBUILD); the store and the
//! registry client answer it. The contract lives here, beside the graph and image types, so
//! that the frontend and the store both depend on it and not on each other.

use crate::image::Image;
use crate::Platform;
use std::collections::HashMap;

/// A base image's config as the local store (or a registry) knows it.
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    /// The reference to pin, e.g. `docker.io/library/python:3.10-slim@sha256:...`.
    pub reference: String,
    pub image: Image,
}

/// Why a resolver could not answer (a failed pull, an unreadable store): what it was asked
/// and the cause. Shows as the cause's message (lowering puts the base's name before it).
#[derive(Debug, thiserror::Error)]
#[error("{source}")]
pub struct ResolveError {
    pub reference: String,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

impl ResolveError {
    pub fn new(
        reference: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> ResolveError {
        ResolveError {
            reference: reference.into(),
            source: source.into(),
        }
    }
}

/// Answers "what is the config of this image?" for a normalized reference and platform.
/// `Ok(None)`: not known (offline, not pulled); lowering goes on with an empty config.
pub trait ImageResolver {
    fn resolve(
        &self,
        reference: &str,
        platform: &Platform,
    ) -> Result<Option<ResolvedImage>, ResolveError>;

    /// The second question, asked only for `SOURCE_DATE_EPOCH=<stage>`: the time a remote
    /// source gives the build (BuildKit's source-only stage). `Ok(None)`: the source has no
    /// time (no `Last-Modified`, not an archive), or this resolver cannot fetch (offline),
    /// which lowers as if SOURCE_DATE_EPOCH were unset, as BuildKit does without a client.
    fn source_epoch(&self, source: &EpochSource) -> Result<Option<i64>, ResolveError> {
        let _ = source;
        Ok(None)
    }
}

/// The one remote source of a `SOURCE_DATE_EPOCH` stage (`FROM scratch` with ARGs and one
/// `ADD`), whose time becomes SOURCE_DATE_EPOCH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EpochSource {
    /// `ADD [--checksum=DIGEST] URL`: the response's `Last-Modified`, else the latest mtime
    /// of a regular file in the body when it is a (compressed) tar archive.
    Http {
        url: String,
        checksum: Option<String>,
    },
    /// `ADD [--checksum=SHA] GIT_URL`: the committer time of the commit `reference` names
    /// (the remote's HEAD when empty).
    Git {
        remote: String,
        reference: String,
        checksum: Option<String>,
    },
}

/// A resolver that knows nothing: every base lowers with an empty config.
pub struct Offline;

impl ImageResolver for Offline {
    fn resolve(&self, _: &str, _: &Platform) -> Result<Option<ResolvedImage>, ResolveError> {
        Ok(None)
    }
}

/// A resolver over a fixed set of images, keyed by normalized reference (tests, fixtures).
#[derive(Default)]
pub struct MemoryResolver(pub HashMap<String, ResolvedImage>);

impl ImageResolver for MemoryResolver {
    fn resolve(
        &self,
        reference: &str,
        _: &Platform,
    ) -> Result<Option<ResolvedImage>, ResolveError> {
        Ok(self.0.get(reference).cloned())
    }
}
