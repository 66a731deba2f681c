//! The manifest of a packed cache mount: what it holds, and the parser that never trusts one
//! (size cap, version, media types, digests, sizes and counts checked before anything is
//! fetched).

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::MountPackError;

/// Media type of the manifest blob.
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.pallet.cache-mount.v1+json";
/// The one format version this code reads and writes.
pub const MANIFEST_VERSION: u32 = 1;
/// Largest manifest read (room for [`MAX_CHUNKS`] descriptors of about 270 bytes).
pub const MAX_MANIFEST_BYTES: usize = 8 << 20;
/// Most chunks a manifest may list (about 160 GiB of mount at the default chunk size).
pub const MAX_CHUNKS: usize = 16_384;
/// Largest chunk (compressed or not) a manifest may declare: a large file is a chunk alone.
const MAX_CHUNK_BYTES: u64 = 64 << 30;

/// What a chunk blob may be: a tar layer, plain, gzip or zstd.
const CHUNK_MEDIA_TYPES: [&str; 3] = [
    codec::MEDIA_OCI_TAR,
    codec::MEDIA_OCI_GZIP,
    codec::MEDIA_OCI_ZSTD,
];

/// One chunk blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Descriptor {
    /// An OCI layer media type (`...tar`, `...tar+gzip`, `...tar+zstd`).
    pub media_type: String,
    /// sha256 of the blob as stored and uploaded.
    pub digest: String,
    /// Bytes of the blob.
    pub size: u64,
    /// sha256 of the uncompressed tar (what `pack` matches against a previous manifest).
    pub diff_id: String,
    /// Bytes of the uncompressed tar.
    pub tar_size: u64,
    /// Entries in the tar.
    pub entries: u64,
}

/// The mount directory's own metadata (its mtime is not kept: it changes with every entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RootMeta {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// A packed cache mount. Serialized with [`MountManifest::to_json`], deterministic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MountManifest {
    pub media_type: String,
    pub version: u32,
    pub root: RootMeta,
    /// Chunks in restore order: file chunks in walk order, then directory chunks.
    pub chunks: Vec<Descriptor>,
    /// Entries in all chunks.
    pub entries: u64,
    /// Bytes of file content in all chunks.
    pub content_size: u64,
}

impl MountManifest {
    /// The manifest blob: compact JSON, fields in a fixed order (equal manifests, equal bytes).
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a manifest always serializes")
    }

    /// `sha256:` digest of [`to_json`](Self::to_json).
    pub fn digest(&self) -> String {
        sha256_digest(&self.to_json())
    }

    /// Bytes of all chunk blobs.
    pub fn blob_bytes(&self) -> u64 {
        self.chunks.iter().map(|c| c.size).sum()
    }
}

pub(super) fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Reads a manifest that came from elsewhere (a registry, a cache directory). Refuses one
/// larger than [`MAX_MANIFEST_BYTES`], not JSON of this shape, of another media type or
/// version, with more than [`MAX_CHUNKS`] chunks, a digest that is not `sha256:` and 64
/// lowercase hex digits, a chunk media type that is not a tar layer, a size of 0 or over the
/// cap, a tar size that is not whole 512-byte blocks, or a root mode with file-type bits.
pub fn parse_manifest(bytes: &[u8]) -> Result<MountManifest, MountPackError> {
    let bad = |msg: String| MountPackError::Manifest(msg);
    if bytes.len() > MAX_MANIFEST_BYTES {
        return Err(bad(format!(
            "{} bytes, over the {MAX_MANIFEST_BYTES}-byte limit",
            bytes.len()
        )));
    }
    // The media type and version first, so another kind or a newer version says so rather
    // than failing on a field it has.
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Head {
        media_type: Option<String>,
        version: Option<u64>,
    }
    let head: Head = serde_json::from_slice(bytes)
        .map_err(|e| bad(format!("not a cache mount manifest (invalid JSON: {e})")))?;
    match head.media_type.as_deref() {
        Some(MANIFEST_MEDIA_TYPE) => {}
        other => {
            return Err(bad(format!(
                "media type {other:?}, expected {MANIFEST_MEDIA_TYPE:?}"
            )))
        }
    }
    if head.version != Some(MANIFEST_VERSION as u64) {
        return Err(bad(format!(
            "version {:?}; this pallet reads version {MANIFEST_VERSION} (export the cache \
             again with this pallet)",
            head.version
        )));
    }
    let manifest: MountManifest =
        serde_json::from_slice(bytes).map_err(|e| bad(format!("invalid: {e}")))?;
    validate(&manifest)?;
    Ok(manifest)
}

/// The checks of [`parse_manifest`] on an already typed manifest.
pub(super) fn validate(m: &MountManifest) -> Result<(), MountPackError> {
    let bad = |msg: String| Err(MountPackError::Manifest(msg));
    if m.media_type != MANIFEST_MEDIA_TYPE || m.version != MANIFEST_VERSION {
        return bad(format!(
            "media type {:?} version {}, expected {MANIFEST_MEDIA_TYPE:?} version \
             {MANIFEST_VERSION}",
            m.media_type, m.version
        ));
    }
    if m.root.mode & !0o7777 != 0 {
        return bad(format!("root mode {:o} has bits beyond 07777", m.root.mode));
    }
    if m.chunks.len() > MAX_CHUNKS {
        return bad(format!(
            "{} chunks, over the limit of {MAX_CHUNKS}",
            m.chunks.len()
        ));
    }
    for (i, c) in m.chunks.iter().enumerate() {
        let at = format!("chunk {i}");
        if !CHUNK_MEDIA_TYPES.contains(&c.media_type.as_str()) {
            return bad(format!(
                "{at}: media type {:?} is not a tar layer",
                c.media_type
            ));
        }
        for (name, d) in [("digest", &c.digest), ("diffId", &c.diff_id)] {
            if !is_sha256(d) {
                return bad(format!(
                    "{at}: {name} {d:?} is not sha256: and 64 lowercase hex digits"
                ));
            }
        }
        if c.size == 0 || c.size > MAX_CHUNK_BYTES || c.tar_size > MAX_CHUNK_BYTES {
            return bad(format!(
                "{at}: size {} / tar size {} outside 1..={MAX_CHUNK_BYTES}",
                c.size, c.tar_size
            ));
        }
        if c.tar_size < 1024 || c.tar_size % 512 != 0 {
            return bad(format!(
                "{at}: tar size {} is not whole 512-byte blocks with a trailer",
                c.tar_size
            ));
        }
        if c.media_type == codec::MEDIA_OCI_TAR && (c.size != c.tar_size || c.digest != c.diff_id) {
            return bad(format!(
                "{at}: an uncompressed chunk whose size or digest differs from its tar's"
            ));
        }
    }
    Ok(())
}

pub(super) fn is_sha256(d: &str) -> bool {
    d.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}
