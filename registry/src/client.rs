//! One registry client for a process: connection pools per registry (TLS roots, plain HTTP
//! where allowed), auth (anonymous, basic, bearer tokens cached per scope), retries with backoff,
//! and the distribution API calls. Thread-safe: share one `Client` across threads.

use crate::manifest::Descriptor;
use crate::{DockerConfig, Reference, RegistryConfig, RegistryError};
use std::io::{Read, Write};

pub struct Client {
    _private: (),
}

/// A manifest or index as fetched: its bytes, media type and sha256 digest.
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    pub bytes: Vec<u8>,
    pub media_type: String,
    pub digest: String,
}

/// Opens a blob's content from the start (called again for each retry).
pub type BlobOpener<'a> = dyn Fn() -> std::io::Result<Box<dyn Read + Send>> + Send + Sync + 'a;

/// Requests made, by method (the no-op push benchmark counts them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestCounts {
    pub get: usize,
    pub head: usize,
    pub post: usize,
    pub put: usize,
    pub patch: usize,
}

impl Client {
    pub fn new(config: RegistryConfig, credentials: DockerConfig) -> Client {
        let _ = (config, credentials);
        todo!()
    }

    /// GET /v2/ with the given credentials (or the stored ones): `pallet login` checks them.
    pub fn check_login(
        &self,
        registry: &str,
        credential: Option<&crate::Credential>,
    ) -> Result<(), RegistryError> {
        let _ = (registry, credential);
        todo!()
    }

    /// The manifest or index a tag or digest names (accepts OCI and Docker media types).
    /// With a digest reference the content's digest is verified.
    pub fn get_manifest(&self, reference: &Reference) -> Result<FetchedManifest, RegistryError> {
        let _ = reference;
        todo!()
    }

    /// HEAD: the digest a tag points at now, None if the tag does not exist.
    pub fn head_manifest(&self, reference: &Reference) -> Result<Option<String>, RegistryError> {
        let _ = reference;
        todo!()
    }

    /// Streams a blob into `sink`, verifying size and sha256 before returning Ok; a broken
    /// connection resumes with a Range request. `progress(bytes_so_far)`.
    pub fn fetch_blob(
        &self,
        repository: &Reference,
        blob: &Descriptor,
        sink: &mut dyn Write,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<(), RegistryError> {
        let _ = (repository, blob, sink, progress);
        todo!()
    }

    /// HEAD /v2/<name>/blobs/<digest>.
    pub fn blob_exists(&self, repository: &Reference, digest: &str) -> Result<bool, RegistryError> {
        let _ = (repository, digest);
        todo!()
    }

    /// Cross-repository mount from `from_repository` (a path on the same registry). Ok(false)
    /// when the registry started an upload instead (the caller then uploads).
    pub fn mount_blob(
        &self,
        repository: &Reference,
        digest: &str,
        from_repository: &str,
    ) -> Result<bool, RegistryError> {
        let _ = (repository, digest, from_repository);
        todo!()
    }

    /// Uploads a blob (monolithic PUT when small, chunked PATCHes when large), retrying with a
    /// fresh upload session.
    pub fn upload_blob(
        &self,
        repository: &Reference,
        blob: &Descriptor,
        open: &BlobOpener<'_>,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<(), RegistryError> {
        let _ = (repository, blob, open, progress);
        todo!()
    }

    /// PUT a manifest under the reference's tag (or digest); returns the digest.
    pub fn put_manifest(
        &self,
        reference: &Reference,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<String, RegistryError> {
        let _ = (reference, media_type, bytes);
        todo!()
    }

    pub fn request_counts(&self) -> RequestCounts {
        todo!()
    }
}
