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
