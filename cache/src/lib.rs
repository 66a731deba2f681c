//! pallet's on-disk store: content-addressed blobs (plain files by sha256), the redb index
//! (cache keys, image tags, blob sources), the layout of the store root, and the salvage of a
//! damaged index. Knows nothing of Dockerfiles or builds: keys and records are opaque bytes
//! to it.

pub mod blobs;
pub mod index;
pub mod owners;
pub mod root;
pub mod salvage;

pub use blobs::{BlobInfo, BlobWriter, Blobs};
pub use index::Index;
pub use root::{Root, StoreLock};
pub use salvage::{Salvaged, SalvagedTable};

/// Errors of the store, each naming the path or key at fault.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("invalid digest \"{0}\": expected sha256:<64 lowercase hex digits>")]
    BadDigest(String),
    #[error("blob {digest} not found in the store at {root}")]
    MissingBlob {
        digest: String,
        root: std::path::PathBuf,
    },
    #[error("content does not match its digest: expected {expected}, got {actual}")]
    DigestMismatch { expected: String, actual: String },
    #[error("index {path}: {message}")]
    Index {
        path: std::path::PathBuf,
        message: String,
    },
}
