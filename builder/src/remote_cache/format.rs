//! pallet's cache format, read only by [`parse_config`]: an OCI image manifest (never only an
//! index: some registries refuse indexes as cache) whose config, of media type
//! [`CONFIG_MEDIA_TYPE`], maps each cache key to the layers of its result, and whose layers
//! are every blob it names (so a registry's garbage collector keeps them).
//!
//! ```json
//! {"version": 1,
//!  "layers": [{"digest": "sha256:..", "size": 123, "mediaType": "..tar+gzip",
//!              "compression": "gzip", "diffId": "sha256:..", "diffSize": 456}],
//!  "records": [{"key": "step/blake3:..", "layers": [{"layer": 0, "created": "2026-.."}]}],
//!  "mounts": []}
//! ```
//!
//! A record lists the whole layer stack of a step (its base's layers too), as the local
//! cache's records do. `mounts` holds the contents of cache mounts (`mounts=true`, written by
//! `mounts.rs`): each entry a mount key (its id), its chunk blobs and its manifest blob
//! (`store::mount_pack`'s format, parsed there when a mount is restored).
//!
//! Everything read is checked: sizes are capped before anything is fetched, every digest is
//! validated, every index is in range, every key is a step key. Anything else is "not a pallet
//! cache", which the importer turns into one warning.

use codec::Codec;
use registry::manifest::Descriptor;
use registry::Digest;
use serde::{Deserialize, Serialize};

/// The config's media type: what marks a manifest as a pallet cache.
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.pallet.cache.config.v1+json";
/// The manifest annotation an inline cache (`--cache-to type=inline`) rides in: a cache config
/// as JSON text, whose layers are the image's own.
pub const INLINE_ANNOTATION: &str = "dev.pallet.cache.v1";
/// The format version this build writes and reads.
pub const VERSION: u32 = 1;
/// The largest cache config read (a record is ~150 bytes: 100k steps fit).
pub const CONFIG_LIMIT: u64 = 32 << 20;
/// The largest manifest or index.json read.
pub const MANIFEST_LIMIT: u64 = 4 << 20;
const MAX_RECORDS: usize = 200_000;
const MAX_LAYERS: usize = 200_000;
const MAX_STACK: usize = 1_000;
const MAX_KEY: usize = 512;

/// One blob a record points at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CacheLayer {
    pub digest: String,
    pub size: u64,
    pub media_type: String,
    /// The compression's label (`gzip`, `gzip-9`, `zstd-3`, `none`).
    pub compression: String,
    pub diff_id: String,
    pub diff_size: u64,
    /// The layer's path index blob (`store::path_index`), when the exporter wrote one: what
    /// a COPY on top asks instead of fetching the layer. Older caches have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_index: Option<IndexBlob>,
}

/// A path index blob: its digest and size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexBlob {
    pub digest: String,
    pub size: u64,
}

/// A layer of a record's stack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackEntry {
    /// Index into [`CacheConfig::layers`].
    pub layer: usize,
    /// When a build first made the layer (the image's history time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheRecord {
    pub key: String,
    pub layers: Vec<StackEntry>,
    /// The key the steps after this one are keyed by, when not `key`: a step with a content
    /// key (`solver::keys::content`) is filed under its definition key, and the steps after it
    /// under keys made from its content key. Older caches (and readers) have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub downstream: Option<String>,
}

/// A cache mount's contents (`mounts=true`): filled by `mounts::export_mounts`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountEntry {
    /// The mount's key (its id and sharing options).
    pub key: String,
    pub chunks: Vec<Descriptor>,
    /// The packer's own manifest of the mount (opaque here).
    pub manifest: Descriptor,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheConfig {
    pub version: u32,
    pub layers: Vec<CacheLayer>,
    pub records: Vec<CacheRecord>,
    #[serde(default)]
    pub mounts: Vec<MountEntry>,
}

/// Why a manifest or config is not a cache pallet can read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FormatError(pub String);

fn bad(m: impl Into<String>) -> FormatError {
    FormatError(m.into())
}

/// The config descriptor of a manifest, when it is a pallet cache's.
pub fn cache_config_of(manifest: &[u8]) -> Result<Descriptor, FormatError> {
    if manifest.len() as u64 > MANIFEST_LIMIT {
        return Err(bad("the manifest is larger than 4 MiB"));
    }
    #[derive(Deserialize)]
    struct Manifest {
        #[serde(rename = "schemaVersion")]
        schema_version: u32,
        #[serde(default, rename = "mediaType")]
        media_type: Option<String>,
        config: Option<Descriptor>,
        #[serde(default)]
        manifests: Option<serde_json::Value>,
    }
    let m: Manifest = serde_json::from_slice(manifest)
        .map_err(|e| bad(format!("the manifest is not an image manifest: {e}")))?;
    if m.manifests.is_some()
        || m.media_type
            .as_deref()
            .is_some_and(|t| t.contains("index") || t.contains("list"))
    {
        return Err(bad("it is an image index, not a pallet cache manifest"));
    }
    if m.schema_version != 2 {
        return Err(bad(format!(
            "schemaVersion {} (expected 2)",
            m.schema_version
        )));
    }
    let config = m.config.ok_or_else(|| bad("the manifest has no config"))?;
    if config.media_type != CONFIG_MEDIA_TYPE {
        return Err(bad(format!(
            "its config is {}, not {CONFIG_MEDIA_TYPE} (an image or another tool's cache)",
            config.media_type
        )));
    }
    if config.size > CONFIG_LIMIT {
        return Err(bad(format!(
            "its config is {} bytes, more than the limit of {} MiB",
            config.size,
            CONFIG_LIMIT >> 20
        )));
    }
    Ok(config)
}

/// The inline cache config of an image manifest, if it carries one.
pub fn inline_config_of(manifest: &[u8]) -> Option<Result<CacheConfig, FormatError>> {
    if manifest.len() as u64 > MANIFEST_LIMIT {
        return None;
    }
    #[derive(Deserialize)]
    struct Manifest {
        #[serde(default)]
        annotations: std::collections::BTreeMap<String, String>,
    }
    let m: Manifest = serde_json::from_slice(manifest).ok()?;
    m.annotations
        .get(INLINE_ANNOTATION)
        .map(|text| parse_config(text.as_bytes()))
}

/// Parses and checks a cache config.
pub fn parse_config(bytes: &[u8]) -> Result<CacheConfig, FormatError> {
    if bytes.len() as u64 > CONFIG_LIMIT {
        return Err(bad("the cache config is too large"));
    }
    #[derive(Deserialize)]
    struct Versioned {
        version: u32,
    }
    let v: Versioned = serde_json::from_slice(bytes)
        .map_err(|e| bad(format!("the cache config is not valid: {e}")))?;
    if v.version != VERSION {
        return Err(bad(format!(
            "cache format version {} (this pallet reads version {VERSION})",
            v.version
        )));
    }
    let c: CacheConfig = serde_json::from_slice(bytes)
        .map_err(|e| bad(format!("the cache config is not valid: {e}")))?;
    if c.records.len() > MAX_RECORDS || c.layers.len() > MAX_LAYERS {
        return Err(bad("the cache config has too many records or layers"));
    }
    for l in &c.layers {
        Digest::parse(&l.digest).map_err(|e| bad(format!("layer digest: {e}")))?;
        let diff = Digest::parse(&l.diff_id).map_err(|e| bad(format!("diff id: {e}")))?;
        if !diff.as_str().starts_with("sha256:") {
            return Err(bad(format!("diff id {} is not sha256", l.diff_id)));
        }
        let codec = Codec::of_media_type(&l.media_type).map_err(|_| {
            bad(format!(
                "layer media type {} is not a layer's",
                l.media_type
            ))
        })?;
        if matches!(codec, Codec::Plain) && l.digest != l.diff_id {
            return Err(bad(format!(
                "uncompressed layer {} has diff id {}",
                l.digest, l.diff_id
            )));
        }
        if let Some(i) = &l.path_index {
            Digest::parse(&i.digest).map_err(|e| bad(format!("path index digest: {e}")))?;
            if i.size > crate::store::path_index::BLOB_LIMIT {
                return Err(bad(format!("path index {} is too large", i.digest)));
            }
        }
        if l.compression.is_empty()
            || l.compression.len() > 16
            || !l
                .compression
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(bad(format!("compression label {:?}", l.compression)));
        }
    }
    for r in &c.records {
        if !r.key.starts_with("step/") || r.key.len() > MAX_KEY {
            return Err(bad(format!("{:?} is not a step's cache key", r.key)));
        }
        if let Some(d) = &r.downstream {
            if !d.starts_with("step/") || d.len() > MAX_KEY {
                return Err(bad(format!(
                    "record {}: {d:?} is not a step's cache key",
                    r.key
                )));
            }
        }
        if r.layers.len() > MAX_STACK {
            return Err(bad(format!("record {} has too many layers", r.key)));
        }
        if let Some(e) = r.layers.iter().find(|e| e.layer >= c.layers.len()) {
            return Err(bad(format!(
                "record {} names layer {} of {}",
                r.key,
                e.layer,
                c.layers.len()
            )));
        }
    }
    for m in &c.mounts {
        if m.key.len() > MAX_KEY {
            return Err(bad("a mount key is too long"));
        }
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer() -> CacheLayer {
        CacheLayer {
            digest: format!("sha256:{}", "a".repeat(64)),
            size: 10,
            media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
            compression: "gzip".into(),
            diff_id: format!("sha256:{}", "b".repeat(64)),
            diff_size: 20,
            path_index: Some(IndexBlob {
                digest: format!("sha256:{}", "c".repeat(64)),
                size: 30,
            }),
        }
    }

    fn config() -> CacheConfig {
        CacheConfig {
            version: VERSION,
            layers: vec![layer()],
            records: vec![CacheRecord {
                downstream: None,
                key: "step/blake3:00".into(),
                layers: vec![StackEntry {
                    layer: 0,
                    created: None,
                }],
            }],
            mounts: Vec::new(),
        }
    }

    #[test]
    fn round_trips() {
        let c = config();
        assert_eq!(parse_config(&serde_json::to_vec(&c).unwrap()).unwrap(), c);
        let mut c = config();
        c.records[0].downstream = Some("step/blake3:11".into());
        let bytes = serde_json::to_vec(&c).unwrap();
        assert_eq!(parse_config(&bytes).unwrap(), c);
        // Without it, no field at all: older readers see what they always saw.
        let plain = serde_json::to_string(&config()).unwrap();
        assert!(!plain.contains("downstream"), "{plain}");
    }

    #[test]
    fn refuses_what_is_not_checked() {
        let mut c = config();
        c.records[0].layers[0].layer = 1;
        assert!(parse_config(&serde_json::to_vec(&c).unwrap()).is_err());
        let mut c = config();
        c.layers[0].digest = "sha256:../../etc/passwd".into();
        assert!(parse_config(&serde_json::to_vec(&c).unwrap()).is_err());
        let mut c = config();
        c.layers[0].path_index.as_mut().unwrap().digest = "sha256:zz".into();
        assert!(parse_config(&serde_json::to_vec(&c).unwrap()).is_err());
        let mut c = config();
        c.records[0].key = "compressed/gzip/x".into();
        assert!(parse_config(&serde_json::to_vec(&c).unwrap()).is_err());
        let mut c = config();
        c.records[0].downstream = Some("compressed/gzip/x".into());
        let e = parse_config(&serde_json::to_vec(&c).unwrap()).unwrap_err();
        assert!(e.0.contains("not a step's cache key"), "{e}");
        let mut c = config();
        c.version = 2;
        let e = parse_config(&serde_json::to_vec(&c).unwrap()).unwrap_err();
        assert!(e.0.contains("version 2"), "{e}");
        assert!(parse_config(b"{\"version\":1}").is_err());
    }

    #[test]
    fn an_image_manifest_is_not_a_cache() {
        let image = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
            "config":{"mediaType":"application/vnd.oci.image.config.v1+json",
            "digest":"sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","size":2},
            "layers":[]}"#;
        let e = cache_config_of(image).unwrap_err();
        assert!(e.0.contains("not application/vnd.pallet.cache"), "{e}");
        let index = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;
        assert!(cache_config_of(index).unwrap_err().0.contains("index"));
    }
}
