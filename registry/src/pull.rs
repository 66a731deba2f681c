//! Resolving what to pull: tag or digest -> (index ->) the platform's manifest -> config. Layer
//! downloads are the caller's (`Client::fetch_blob` into its own sinks, several at once).

use crate::client::Client;
use crate::manifest::{ImageManifest, Platform};
use crate::{Reference, RegistryError};

#[derive(Debug, Clone)]
pub struct ResolvedImage {
    /// The reference as asked (normalized).
    pub reference: Reference,
    /// Digest of what the reference points at (an index or a manifest): docker's repo digest.
    pub digest: String,
    /// Digest of the platform's image manifest (== `digest` when there is no index).
    pub manifest_digest: String,
    pub manifest_media_type: String,
    pub manifest_bytes: Vec<u8>,
    pub manifest: ImageManifest,
    /// The config blob, digest-verified.
    pub config_bytes: Vec<u8>,
}

/// Fetches the manifest (choosing `platform` from an index: os, architecture, variant with
/// containerd's defaults, e.g. arm64 = arm64/v8) and the config. An index without the platform is
/// an error that lists the platforms it has.
pub fn resolve(
    client: &Client,
    reference: &Reference,
    platform: &Platform,
) -> Result<ResolvedImage, RegistryError> {
    let _ = (client, reference, platform);
    todo!()
}
