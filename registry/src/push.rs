//! Pushing an image: every blob first (HEAD, then a cross-repository mount when the blob is known
//! to live in another repository of the same registry, else an upload), several at once; the
//! manifest last, so a tag never points at missing blobs.

use crate::client::{BlobOpener, Client};
use crate::manifest::Descriptor;
use crate::{Reference, RegistryError};

pub struct PushBlob<'a> {
    pub descriptor: Descriptor,
    pub open: Box<BlobOpener<'a>>,
    /// Repository paths on the target registry that already hold this blob (mount sources).
    pub mount_from: Vec<String>,
}

pub struct PushRequest<'a> {
    /// Where to push (tag, or digest-only).
    pub target: Reference,
    pub manifest_media_type: String,
    pub manifest_bytes: Vec<u8>,
    /// The config blob and the layers.
    pub blobs: Vec<PushBlob<'a>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobOutcome {
    AlreadyThere,
    Mounted,
    Uploaded,
}

#[derive(Debug, Clone)]
pub enum PushProgress {
    BlobStarted { digest: String, size: u64 },
    BlobBytes { digest: String, done: u64, total: u64 },
    BlobDone { digest: String, outcome: BlobOutcome },
    ManifestPushed { reference: String, digest: String },
}

#[derive(Debug, Clone)]
pub struct PushReport {
    pub digest: String,
    pub outcomes: Vec<(String, BlobOutcome)>,
    pub bytes_uploaded: u64,
}

pub fn push_image(
    client: &Client,
    request: &PushRequest<'_>,
    progress: &(dyn Fn(PushProgress) + Sync),
) -> Result<PushReport, RegistryError> {
    let _ = (client, request, progress);
    todo!()
}
