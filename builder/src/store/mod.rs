//! The local image and layer store on top of `cache::Root`: layers kept as uncompressed diff
//! blobs (digest = diff id) plus their unpacked snapshot dirs, images as tag records (config,
//! layer list and manifest digest), `pallet import` of a root file tree, and the
//! `ImageResolver` that lets lowering read a local image's config.
//!
//! Its modules are private; this file is its API:
//! - `layers`: snapshot dirs, step dirs, diffs written from them, layer records;
//! - `layer_forms`: which forms of a layer the store holds (diff blob, snapshot, a pulled
//!   compressed blob) and reading one as a tar;
//! - `compressed`: a layer's compressed blobs, made once and remembered;
//! - `manifest`: the config and manifest blobs an image is tagged with;
//! - `index`: multi-platform images (one image per platform under a tag, an OCI index);
//! - `import`, `oci_import`, `pull`: images in from a root tar, an OCI layout, a registry;
//! - `remote_forms`: layers known by descriptor whose blob is in a remote build cache, fetched
//!   only when their bytes are needed;
//! - `resolve`: lowering's view of images (store first, then the registry);
//! - `durability`: what a crash may lose and how the next command recovers it;
//! - `doctor`: the index checked, and rebuilt from what verifies when it is damaged;
//! - `leftovers`: what killed runs left in tmp/ and as pending snapshots, found by their pid;
//! - `prune`: dropping the build cache and unused layers, and disk usage;
//! - `mount_pack` (public): a cache mount's contents as content-addressed chunk blobs and
//!   back, for a remote cache (`mounts=true`).
//!
//! It knows layers and images, not Dockerfiles, graphs or exports.

mod compressed;
mod doctor;
mod durability;
mod image_records;
mod import;
mod index;
mod layer_forms;
mod layers;
mod leftovers;
mod manifest;
pub mod markers;
pub mod mount_pack;
mod oci_import;
pub mod path_index;
mod prune;
mod pull;
mod remote_forms;
mod resolve;

pub use compressed::{
    compress_layer, compress_layers, memoized, memoized_or_remote, mount_sources, remember,
};
pub use doctor::{doctor, DoctorReport};
pub use durability::{close_and_settle, recover_after_restart, settle_now, Recovery};
pub use leftovers::{
    find_leftovers, remove_leftovers, remove_own_temporaries, sweep_leftovers, Leftovers,
};
pub use manifest::{
    store_manifest, store_uncompressed, Descriptor, ManifestBlobs, MEDIA_CONFIG, MEDIA_INDEX,
    MEDIA_LAYER_GZIP, MEDIA_LAYER_TAR, MEDIA_MANIFEST,
};
pub use prune::{disk_usage, prune, tree_size, unmount_below, DiskUsage, PruneReport};

pub use import::import_rootfs;
pub use index::{
    for_platform, image_platform, index_bytes, index_bytes_with, platform_fits, platform_json,
    platforms, put_index, store_index, with_children, IndexExtra, StoredIndex,
};
pub use layer_forms::{finish_layer, has_layer, layer_size, open_layer, stored_at};
pub use layers::{
    adopt_upper, commit_upper, created_at, created_now, ensure_snapshot, settle_snapshot,
    snapshot_path, step_dir, write_diff, LayerRecord, PENDING_PREFIX,
};
pub use oci_import::import_oci_layout;
pub use pull::{pull_image, registry_platform, store_name, PullProgress};
pub use remote_forms::{
    fetch_path_index, fetch_remote, fetch_remote_blob, layout_blob_path, record_remote,
    remote_layer, RemoteLayer, RemoteSource,
};
pub use resolve::RegistryResolver;

use crate::snapshot::UnpackError;
use cache::{CacheError, Root};
use codec::CodecError;
use graph::image::Image;
use graph::resolve::{ImageResolver, ResolveError, ResolvedImage};
use graph::Platform;
use registry::{DigestError, ReferenceError, RegistryError};
use serde::{Deserialize, Serialize};

/// A tagged image in the local store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredImage {
    /// Normalized reference (`docker.io/library/busybox:latest`).
    pub name: String,
    /// Digest of the manifest the image was last exported or imported with.
    pub manifest_digest: String,
    pub config_digest: String,
    pub config: Image,
    /// Layer diff ids, bottom first (same as `config.rootfs.diff_ids`).
    pub layers: Vec<String>,
    /// For pulled images: the digest the registry's tag pointed at (an index or a manifest),
    /// which `--pull` compares to decide whether to pull again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo_digest: Option<String>,
    /// A multi-platform image: its index and one image per platform (the fields above are the
    /// default platform's; see `index`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<StoredIndex>,
    /// in-toto attestations of this image (a build's `--provenance`): each export or push
    /// wraps them in a statement whose subject is the manifest it writes, under an index
    /// (see `export::attestation`). A multi-platform image has them on its children.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attestations: Vec<Attestation>,
}

/// An in-toto predicate kept with an image until an export or push gives it its subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attestation {
    /// `https://slsa.dev/provenance/v1`, `https://slsa.dev/provenance/v0.2`.
    pub predicate_type: String,
    /// The predicate as JSON text.
    pub predicate: String,
}

/// What the store fails with. Each variant with a cause names what was being done (`what`)
/// and keeps the cause typed (see the convention in the solver's doc).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Cache(#[from] CacheError),
    /// A layer or image that is missing, inconsistent or refused; the message says which
    /// and what to do (there is no underlying cause).
    #[error("{0}")]
    Layer(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("image record for {name} is corrupt: {message}")]
    Corrupt { name: String, message: String },
    /// Unpacking a layer's tar (`what`: which layer, and where to).
    #[error("{what}: {source}")]
    Unpack {
        what: String,
        #[source]
        source: UnpackError,
    },
    /// Decompressing a layer blob.
    #[error("{what}: {source}")]
    Codec {
        what: String,
        #[source]
        source: CodecError,
    },
    /// A blob the store was writing or checking (`what`: which).
    #[error("{what}: {source}")]
    Blob {
        what: String,
        #[source]
        source: CacheError,
    },
    /// The registry, while pulling or pushing (`what`: which reference).
    #[error("{what}: {source}")]
    Registry {
        what: String,
        #[source]
        source: Box<RegistryError>,
    },
    #[error("{what}: {source}")]
    Reference {
        what: String,
        #[source]
        source: ReferenceError,
    },
    /// A digest that is not `algorithm:hex` of the right length (from a record or a file).
    #[error("{what}: {source}")]
    Digest {
        what: String,
        #[source]
        source: DigestError,
    },
    /// A config or manifest that is not valid JSON (`what`: which).
    #[error("{what}: {source}")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    /// An image the store lacks (`key`) and could not pull.
    #[error("{key} is not in the local store, and pulling it failed: {source}")]
    PullFailed {
        key: String,
        #[source]
        source: Box<StoreError>,
    },
}

impl StoreError {
    /// A registry failure while doing `what`.
    pub(crate) fn registry(what: impl Into<String>) -> impl FnOnce(RegistryError) -> StoreError {
        let what = what.into();
        move |e| StoreError::Registry {
            what,
            source: Box::new(e),
        }
    }
}

/// Looks up a tag (a normalized reference).
pub fn get_image(root: &Root, name: &str) -> Result<Option<StoredImage>, StoreError> {
    let Some(bytes) = root.index.get_tag(name)? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| StoreError::Corrupt {
            name: name.into(),
            message: e.to_string(),
        })
}

pub fn put_image(root: &Root, image: &StoredImage) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec(image).expect("image record serializes");
    // Re-tagging the same image (a no-op rebuild) writes nothing: a commit costs fsyncs.
    if root.index.get_tag(&image.name)?.as_deref() != Some(bytes.as_slice()) {
        root.index.put_tag(&image.name, &bytes)?;
    }
    // The copy `pallet doctor` restores the tag from if the index is damaged (written after
    // the index: see image_records).
    image_records::write(&root.path, &image.name, &bytes).map_err(|source| StoreError::Io {
        what: format!(
            "keeping the record of image {} beside the index",
            image.name
        ),
        source,
    })
}

/// Removes the tag `name` (its record beside the index first: see image_records).
pub fn remove_image(root: &Root, name: &str) -> Result<bool, StoreError> {
    image_records::remove(&root.path, name).map_err(|source| StoreError::Io {
        what: format!("removing the record of image {name}"),
        source,
    })?;
    Ok(root.index.delete_tag(name)?)
}

pub fn list_images(root: &Root) -> Result<Vec<StoredImage>, StoreError> {
    let mut out = Vec::new();
    for (name, bytes) in root.index.list_tags()? {
        out.push(
            serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
                name,
                message: e.to_string(),
            })?,
        );
    }
    Ok(out)
}

/// Lowering's view of the local store: a tag's config, pinned by its manifest digest.
pub struct StoreResolver<'a> {
    pub root: &'a Root,
}

impl ImageResolver for StoreResolver<'_> {
    fn resolve(
        &self,
        reference: &str,
        platform: &Platform,
    ) -> Result<Option<ResolvedImage>, ResolveError> {
        let name = reference.split('@').next().unwrap_or(reference);
        let image = get_image(self.root, name).map_err(|e| ResolveError::new(name, e))?;
        // A multi-platform image answers with the platform's image, as the build's resolver.
        let image = image.map(|img| for_platform(&img, platform).unwrap_or(img));
        Ok(image.map(|img| ResolvedImage {
            reference: format!("{name}@{}", img.manifest_digest),
            image: img.config,
        }))
    }
}

/// `sha256:0123456789ab`: the first 12 hex digits, as progress output shows a blob.
pub fn short_digest(d: &str) -> String {
    let hex = d.strip_prefix("sha256:").unwrap_or(d);
    format!("sha256:{}", &hex[..hex.len().min(12)])
}
