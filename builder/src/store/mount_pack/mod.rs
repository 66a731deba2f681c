//! The contents of one `RUN --mount=type=cache` directory as content-addressed chunk blobs and
//! back (issue 17's `mounts=true`): what lets a cache mount travel through a registry so that a
//! small change in a large mount uploads roughly the change.
//!
//! **Format.** A [`MountManifest`] (JSON, media type [`MANIFEST_MEDIA_TYPE`]) lists chunk
//! [`Descriptor`]s. Each chunk is a deterministic tar (the layer writer's headers: numeric
//! owners, whole-second mtimes, PAX records where ustar does not fit) of a run of entries in
//! walk order, compressed with the workspace's codec (gzip by default, zstd or none on request)
//! under the OCI layer media types, so any registry stores it as a layer blob. Files,
//! symlinks and hardlinks are cut into chunks at file boundaries chosen by their paths
//! (`chunker`): adding, removing or changing one file changes the one or two chunks around it
//! and no other. Directories travel in chunks of their own, so the mtime of a parent that
//! gained a file changes a small directory chunk, not the file chunk that starts the parent.
//!
//! **Export** (the cache-remote exporter, for each cache mount the build used):
//! 1. `pack(mount_dir, work_dir, previous, opts)`, where `previous` is the manifest of the
//!    same mount in the cache ref being replaced (already parsed with [`parse_manifest`]), or
//!    `None`. A chunk whose uncompressed tar is in `previous` (same `diffId`, same media type)
//!    is neither compressed nor written again: its descriptor is reused, so an unchanged mount
//!    reads its files once to hash them and writes nothing.
//! 2. Upload [`PackedMount::blobs`] (the chunks written under `work_dir`, each named by its
//!    digest) that the registry does not already hold: HEAD by digest first, then
//!    cross-repository mount. Chunks in [`PackedMount::reused`] were in `previous`; HEAD them
//!    too (another writer may have replaced the ref since).
//! 3. Upload [`PackedMount::manifest_json`] as a blob (digest [`PackedMount::manifest_digest`])
//!    and name it in the cache config's `mounts` entry for this mount, keyed by the mount's id
//!    and sharing. Equal trees give byte-equal manifests on any machine and any run.
//!
//! **Import** (before the first RUN that mounts it): only when the local mount directory
//! does not exist or is empty (a warm local cache wins). Fetch the manifest blob (at most
//! [`MAX_MANIFEST_BYTES`]), [`parse_manifest`] it, then [`unpack`] with a `fetch` that opens
//! each chunk blob by digest. Every chunk is verified (compressed digest and size, tar digest
//! and size) while it is read; the tree is built in a temporary sibling of the destination
//! and renamed into place only when every chunk verified, so a bad chunk leaves nothing.
//! Names are confined as layers' are (no `..`, absolute names, symlinks or hardlinks out),
//! and device nodes are refused.
//!
//! Not carried: xattrs, sockets, fifos and devices (skipped at pack, each with a reason in
//! [`PackedMount::skipped`]), and sub-second mtimes. Knows nothing of registries, builds or
//! where cache mounts live (`solver/ops/cache_mount.rs` names them).
//!
//! Files: `manifest` (the format and its parser), `walk` (the tree as sorted entries),
//! `chunker` (where chunks end), `tar_stream` (a chunk's tar as a reader), `pack`, `restore`.

mod chunker;
mod manifest;
mod pack;
mod restore;
mod tar_stream;
mod walk;

pub use chunker::ChunkParams;
pub use manifest::{
    parse_manifest, Descriptor, MountManifest, RootMeta, MANIFEST_MEDIA_TYPE, MANIFEST_VERSION,
    MAX_CHUNKS, MAX_MANIFEST_BYTES,
};
pub use pack::{pack, PackOptions, PackedMount, Skipped, WrittenBlob};
pub use restore::{unpack, RestoreOptions, RestoreStats};

use std::io;
use std::path::PathBuf;

/// Why a mount could not be packed or restored. Each names the path or chunk and, where the
/// fix is the user's, what to do.
#[derive(Debug, thiserror::Error)]
pub enum MountPackError {
    #[error("reading cache mount {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "cache mount file {} changed while it was packed ({what}); pack again when no step \
         uses the mount",
        path.display()
    )]
    Changed { path: PathBuf, what: String },
    #[error("writing cache mount chunk in {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A manifest that is not ours, too large, of another version, or inconsistent.
    #[error("cache mount manifest refused: {0}")]
    Manifest(String),
    #[error(
        "cache mount {} is not empty: a mount is restored only into an empty directory (a \
         local cache is kept over a remote one)",
        dest.display()
    )]
    NotEmpty { dest: PathBuf },
    #[error("fetching cache mount chunk {digest}: {source}")]
    Fetch {
        digest: String,
        #[source]
        source: io::Error,
    },
    /// A chunk whose bytes are not what its descriptor says (digest, size) or whose tar is bad.
    #[error("cache mount chunk {digest} refused: {reason}; nothing was restored")]
    Chunk { digest: String, reason: String },
    #[error("cache mount chunk {digest}: {source}; nothing was restored")]
    Unpack {
        digest: String,
        #[source]
        source: crate::snapshot::UnpackError,
    },
    #[error("restoring cache mount into {}: {source}", path.display())]
    Restore {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

#[cfg(test)]
mod tests;
