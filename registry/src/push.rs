//! Pushing an image: every blob first (HEAD, then a cross-repository mount when the blob is known
//! to live in another repository of the same registry, else an upload), several at once; the
//! manifest last, so a tag never points at missing blobs.

use crate::client::{BlobOpener, Client};
use crate::manifest::Descriptor;
use crate::{Reference, RegistryError};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

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
    BlobStarted {
        digest: String,
        size: u64,
    },
    BlobBytes {
        digest: String,
        done: u64,
        total: u64,
    },
    BlobDone {
        digest: String,
        outcome: BlobOutcome,
    },
    ManifestPushed {
        reference: String,
        digest: String,
    },
}

#[derive(Debug, Clone)]
pub struct PushReport {
    pub digest: String,
    /// The manifest as the registry got it: its media type and size (for a descriptor).
    pub media_type: String,
    pub size: u64,
    pub outcomes: Vec<(String, BlobOutcome)>,
    pub bytes_uploaded: u64,
}

/// Pushes every blob (up to `max_concurrent` at once), then the manifest, only if every blob
/// is there: a failed push leaves the tag as it was. Returns the manifest's digest.
pub fn push_image(
    client: &Client,
    request: &PushRequest<'_>,
    progress: &(dyn Fn(PushProgress) + Sync),
) -> Result<PushReport, RegistryError> {
    let target = &request.target;
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let results: Mutex<Vec<Option<BlobResult>>> =
        Mutex::new((0..request.blobs.len()).map(|_| None).collect());
    let workers = client
        .config()
        .max_concurrent
        .max(1)
        .min(request.blobs.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                // Stop starting blobs once one failed: the manifest will not be pushed anyway.
                if i >= request.blobs.len() || failed.load(Ordering::SeqCst) {
                    break;
                }
                let result = push_blob(client, target, &request.blobs[i], progress);
                if result.is_err() {
                    failed.store(true, Ordering::SeqCst);
                }
                results.lock().expect("results lock")[i] = Some(result);
            });
        }
    });
    let mut outcomes = Vec::with_capacity(request.blobs.len());
    let mut bytes_uploaded = 0;
    for (blob, result) in request
        .blobs
        .iter()
        .zip(results.into_inner().expect("results lock"))
    {
        match result {
            Some(Ok((outcome, bytes))) => {
                outcomes.push((blob.descriptor.digest.to_string(), outcome));
                bytes_uploaded += bytes;
            }
            Some(Err(e)) => return Err(e),
            // Not started because another blob failed; that error is returned above or below.
            None => {}
        }
    }
    if outcomes.len() != request.blobs.len() {
        return Err(RegistryError::Other(format!(
            "{target}: push stopped before every blob was sent"
        )));
    }
    let digest = client.put_manifest(
        target,
        &request.manifest_media_type,
        &request.manifest_bytes,
    )?;
    progress(PushProgress::ManifestPushed {
        reference: target.to_string(),
        digest: digest.clone(),
    });
    Ok(PushReport {
        digest,
        media_type: request.manifest_media_type.clone(),
        size: request.manifest_bytes.len() as u64,
        outcomes,
        bytes_uploaded,
    })
}

type BlobResult = Result<(BlobOutcome, u64), RegistryError>;

/// One blob: HEAD, else a mount from the first source that has it, else an upload. Returns the
/// outcome and the bytes uploaded. Public for callers that produce blobs one by one
/// (compressing while earlier ones upload); they put the manifest last themselves
/// ([`Client::put_manifest`]), as `push_image` does.
pub fn push_blob(
    client: &Client,
    target: &Reference,
    blob: &PushBlob<'_>,
    progress: &(dyn Fn(PushProgress) + Sync),
) -> Result<(BlobOutcome, u64), RegistryError> {
    let d = &blob.descriptor;
    progress(PushProgress::BlobStarted {
        digest: d.digest.to_string(),
        size: d.size,
    });
    let done = |outcome: BlobOutcome, bytes: u64| {
        progress(PushProgress::BlobDone {
            digest: d.digest.to_string(),
            outcome,
        });
        Ok((outcome, bytes))
    };
    if client.blob_exists(target, &d.digest)? {
        return done(BlobOutcome::AlreadyThere, 0);
    }
    for from in blob
        .mount_from
        .iter()
        .filter(|f| f.as_str() != target.path())
    {
        match client.mount_blob(target, &d.digest, from) {
            Ok(true) => return done(BlobOutcome::Mounted, 0),
            // The registry opened an upload session instead: upload into it.
            Ok(false) => break,
            // Not allowed to read the source, or it is gone: try the next one, then upload.
            Err(e) if e.status().is_some() && !e.is_transient() => continue,
            Err(e) => return Err(e),
        }
    }
    let report = |done: u64| {
        progress(PushProgress::BlobBytes {
            digest: d.digest.to_string(),
            done,
            total: d.size,
        })
    };
    client.upload_blob(target, d, &*blob.open, &report)?;
    done(BlobOutcome::Uploaded, d.size)
}
