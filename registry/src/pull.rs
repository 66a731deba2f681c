//! Resolving what to pull: tag or digest -> (index ->) the platform's manifest -> config. Layer
//! downloads are the caller's (`Client::fetch_blob` into its own sinks, several at once).

use crate::client::Client;
use crate::manifest::{self, Descriptor, ImageIndex, ImageManifest, Platform};
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
    let top = client.get_manifest(reference)?;
    let (manifest_digest, fetched) = if manifest::is_index_media_type(&top.media_type) {
        let index: ImageIndex = parse(reference, &top.bytes)?;
        let chosen =
            choose_platform(&index, platform).ok_or_else(|| RegistryError::PlatformNotFound {
                reference: reference.to_string(),
                wanted: platform.to_string(),
                available: runnable(&index).map(|(_, p)| p.to_string()).collect(),
            })?;
        let by_digest = with_digest(reference, &chosen.digest)?;
        let fetched = client.get_manifest(&by_digest)?;
        (chosen.digest.to_string(), fetched)
    } else {
        (top.digest.clone(), top.clone())
    };
    if !manifest::is_manifest_media_type(&fetched.media_type) {
        return Err(RegistryError::InvalidManifest {
            target: format!("{}@{manifest_digest}", reference.name()),
            message: format!(
                "media type {} is not an image manifest (pallet reads OCI and Docker v2 schema 2)",
                fetched.media_type
            ),
        });
    }
    let manifest: ImageManifest = parse(reference, &fetched.bytes)?;
    if manifest.config.size > CONFIG_LIMIT {
        return Err(RegistryError::InvalidManifest {
            target: format!("{}@{manifest_digest}", reference.name()),
            message: format!(
                "its config is {} bytes, over pallet's limit of {} MiB for an image config",
                manifest.config.size,
                CONFIG_LIMIT >> 20
            ),
        });
    }
    let mut config_bytes = Vec::with_capacity(manifest.config.size as usize);
    client.fetch_blob(reference, &manifest.config, &mut config_bytes, &|_| {})?;
    Ok(ResolvedImage {
        reference: reference.clone(),
        digest: top.digest,
        manifest_digest,
        manifest_media_type: fetched.media_type,
        manifest_bytes: fetched.bytes,
        manifest,
        config_bytes,
    })
}

/// The largest image config pulled (configs are a few KB; one with a long history, a few
/// hundred). A manifest may claim any size: the buffer is sized by it.
const CONFIG_LIMIT: u64 = 8 << 20;

/// `reference`'s repository at `digest`.
pub fn with_digest(reference: &Reference, digest: &str) -> Result<Reference, RegistryError> {
    Reference::parse(&format!("{}@{digest}", reference.name()))
        .map_err(|e| RegistryError::Other(format!("{}: bad digest in index: {e}", reference)))
}

fn parse<T: serde::de::DeserializeOwned>(
    reference: &Reference,
    bytes: &[u8],
) -> Result<T, RegistryError> {
    serde_json::from_slice(bytes).map_err(|e| RegistryError::InvalidManifest {
        target: reference.to_string(),
        message: e.to_string(),
    })
}

/// Index entries that are images (not attestations), with their platform.
fn runnable(index: &ImageIndex) -> impl Iterator<Item = (&Descriptor, &Platform)> {
    index.manifests.iter().filter_map(|d| {
        let attestation = d
            .annotations
            .as_ref()
            .and_then(|a| a.get("vnd.docker.reference.type"))
            .is_some_and(|t| t == "attestation-manifest");
        let p = d.platform.as_ref()?;
        (!attestation && !p.is_unknown()).then_some((d, p))
    })
}

/// The entry for `wanted`: an exact match after normalization; without a wanted variant, the
/// first entry with the same os and architecture.
pub fn choose_platform<'a>(index: &'a ImageIndex, wanted: &Platform) -> Option<&'a Descriptor> {
    if let Some((d, _)) = runnable(index).find(|(_, p)| p.matches(wanted)) {
        return Some(d);
    }
    if wanted.variant.is_some() {
        return None;
    }
    let w = wanted.normalized();
    runnable(index)
        .find(|(_, p)| {
            let p = p.normalized();
            p.os == w.os && p.architecture == w.architecture
        })
        .map(|(d, _)| d)
}
