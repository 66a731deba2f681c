//! OCI image manifests and config blobs in the content store: what the store tags an image
//! with (over the uncompressed diffs), and what exports write over compressed blobs.

use super::{LayerRecord, StoreError};
use cache::{BlobInfo, Root};
use graph::image::Image;
use serde::Serialize;

pub const MEDIA_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const MEDIA_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const MEDIA_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub annotations: std::collections::BTreeMap<String, String>,
}

impl Descriptor {
    pub fn new(media_type: &str, blob: &BlobInfo) -> Self {
        Descriptor {
            media_type: media_type.into(),
            digest: blob.digest.clone(),
            size: blob.size,
            annotations: Default::default(),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Manifest<'a> {
    schema_version: u32,
    media_type: &'a str,
    config: Descriptor,
    layers: Vec<Descriptor>,
}

/// The blobs that make up one manifest.
#[derive(Debug, Clone)]
pub struct ManifestBlobs {
    pub manifest: BlobInfo,
    pub config: BlobInfo,
    /// Layer blobs as referenced by the manifest (compressed or not).
    pub layers: Vec<BlobInfo>,
}

/// Stores the config and a manifest whose layers are the given blobs with `layer_media_type`.
pub fn store_manifest(
    root: &Root,
    config: &Image,
    layers: Vec<BlobInfo>,
    layer_media_type: &str,
) -> Result<ManifestBlobs, StoreError> {
    let config_bytes = serde_json::to_vec(config).expect("config serializes");
    let config_blob = root.blobs.put_bytes(&config_bytes)?;
    let manifest = Manifest {
        schema_version: 2,
        media_type: MEDIA_MANIFEST,
        config: Descriptor::new(MEDIA_CONFIG, &config_blob),
        layers: layers
            .iter()
            .map(|l| Descriptor::new(layer_media_type, l))
            .collect(),
    };
    let manifest_blob = root
        .blobs
        .put_bytes(&serde_json::to_vec(&manifest).expect("manifest serializes"))?;
    Ok(ManifestBlobs {
        manifest: manifest_blob,
        config: config_blob,
        layers,
    })
}

/// A manifest over the uncompressed diffs (what the local store tags; no compression cost).
pub fn store_uncompressed(
    root: &Root,
    config: &Image,
    layers: &[LayerRecord],
) -> Result<ManifestBlobs, StoreError> {
    let blobs = layers
        .iter()
        .map(|l| BlobInfo {
            digest: l.diff_id.clone(),
            size: l.size,
        })
        .collect();
    store_manifest(root, config, blobs, MEDIA_LAYER_TAR)
}
