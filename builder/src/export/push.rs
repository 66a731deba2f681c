//! Pushing a stored image: the manifest a registry should get (a pulled or imported image keeps
//! its own manifest and blobs, so its digest does not change; a built image gets a manifest over
//! compressed layers, made once per diff id), each blob's known source repository offered for a
//! cross-repository mount, then the registry client's push (blobs first, manifest last).
//! Afterwards each blob remembers the repository it was pushed to.

use super::annotations::Annotations;
use super::attestation::{
    has_attestations, store_attestations, AttestationManifest, Subject, REFERENCE_DIGEST,
};
use super::docker::{self, Compression, ImageOptions, MediaTypes};
use crate::events::Event;
use crate::store::{
    compress_layer, fetch_remote_blob, image_platform, index_bytes_with, memoized_or_remote,
    mount_sources, remote_layer, short_digest, LayerRecord, StoreError, StoredImage,
};
use cache::Root;
use registry::manifest::{Descriptor, ImageManifest};
use registry::push::{push_blob, BlobOutcome, PushBlob, PushProgress, PushReport};
use registry::{Client, Digest, Reference};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

#[derive(Debug, Clone)]
pub struct PushOptions {
    pub media_types: MediaTypes,
    pub compression: Compression,
    /// `--annotation`s for the pushed manifest (a pulled image's own manifest is then not
    /// reused: annotations change its digest).
    pub annotations: Annotations,
    /// The names an attested image's statements give it (a build's every pushed name, as
    /// BuildKit's exporter names them all, so each tag gets the same index); empty: the
    /// push's target alone.
    pub subject_names: Vec<String>,
}

impl Default for PushOptions {
    fn default() -> Self {
        PushOptions {
            media_types: MediaTypes::Oci,
            compression: Compression::Gzip,
            annotations: Annotations::default(),
            subject_names: Vec::new(),
        }
    }
}

/// Pushes `image` as `target` (a tag or digest reference).
pub fn push_stored(
    root: &Root,
    client: &Client,
    image: &StoredImage,
    target: &Reference,
    opts: &PushOptions,
    events: &(dyn Fn(Event) + Sync),
) -> Result<PushReport, StoreError> {
    let name = format!("[internal] push {}", target.familiar());
    events(Event::Started { name: name.clone() });
    let started = std::time::Instant::now();
    let result = push_inner(root, client, image, target, opts, &name, events);
    match &result {
        Ok(_) => events(Event::Done {
            name,
            seconds: started.elapsed().as_secs_f64(),
        }),
        Err(e) => events(Event::Failed {
            name,
            message: e.to_string(),
        }),
    }
    result
}

/// Pushes a multi-platform image as `target`: each platform's manifest by digest (its blobs
/// first), then the index over them (OCI's, or Docker's manifest list with Docker media types)
/// under `target` last, so the tag never names a manifest the registry lacks. An image with
/// attestations (`--provenance`) goes up the same way, one platform or several: each attested
/// platform's attestation manifest (about the manifest the registry got) by digest after it,
/// listed in the index after the images.
pub fn push_index(
    root: &Root,
    client: &Client,
    image: &StoredImage,
    target: &Reference,
    opts: &PushOptions,
    events: &(dyn Fn(Event) + Sync),
) -> Result<PushReport, StoreError> {
    let children: Vec<StoredImage> = match &image.index {
        Some(index) => index.children.clone(),
        None if !image.attestations.is_empty() => vec![image.clone()],
        None => return push_stored(root, client, image, target, opts, events),
    };
    if opts.media_types != MediaTypes::Oci && has_attestations(image) {
        return Err(StoreError::Layer(docker::NO_DOCKER_ATTESTATIONS.into()));
    }
    let names = match opts.subject_names.is_empty() {
        true => vec![target.to_string()],
        false => opts.subject_names.clone(),
    };
    let mut manifests = Vec::new();
    let mut extra = Vec::new();
    for child in &children {
        let plain = StoredImage {
            attestations: Vec::new(),
            ..child.clone()
        };
        let platform = image_platform(child);
        // Each platform's manifest gets the annotations for every platform and its own.
        let child_opts = PushOptions {
            annotations: opts.annotations.for_platform(&platform.to_string()),
            ..opts.clone()
        };
        let (_, bytes) = manifest_to_push(root, &plain, &child_opts)?;
        let report = push_stored(
            root,
            client,
            &plain,
            &by_digest(target, &sha256(&bytes))?,
            &child_opts,
            events,
        )?;
        if !child.attestations.is_empty() {
            let subject = Subject {
                digest: &report.digest,
                names: &names,
                platform: &platform,
            };
            let made = store_attestations(root, &child.attestations, &subject)?;
            push_attestation_manifest(root, client, target, &made, opts, events)?;
            extra.push(made.entry);
        }
        manifests.push((report.media_type, report.digest, report.size, platform));
    }
    let media_type = match opts.media_types {
        MediaTypes::Oci => registry::manifest::OCI_INDEX,
        MediaTypes::Docker => registry::manifest::DOCKER_LIST,
    };
    let bytes = index_bytes_with(media_type, &manifests, &extra, &opts.annotations.index);
    let digest = client
        .put_manifest(target, media_type, &bytes)
        .map_err(StoreError::registry(format!("pushing {target}")))?;
    events(Event::Log {
        name: format!("[internal] push {}", target.familiar()),
        line: format!(
            "pushed index {digest} ({} platforms, {} attestation manifests) for {target}",
            manifests.len(),
            extra.len()
        ),
    });
    Ok(PushReport {
        digest,
        size: bytes.len() as u64,
        media_type: media_type.to_string(),
        outcomes: Vec::new(),
        bytes_uploaded: 0,
    })
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

/// `target`'s repository at `digest`.
fn by_digest(target: &Reference, digest: &str) -> Result<Reference, StoreError> {
    Reference::parse(&format!("{}@{digest}", target.name())).map_err(|e| StoreError::Reference {
        what: format!("naming {}'s manifest {digest}", target.familiar()),
        source: e,
    })
}

/// Pushes an attestation manifest's blobs (statements and config), then the manifest by
/// digest.
fn push_attestation_manifest(
    root: &Root,
    client: &Client,
    target: &Reference,
    made: &AttestationManifest,
    opts: &PushOptions,
    events: &(dyn Fn(Event) + Sync),
) -> Result<(), StoreError> {
    let name = format!("[internal] push {}", target.familiar());
    let progress = |_: PushProgress| {};
    let compressing = |_: &LayerRecord, _: u64| {};
    let jobs = std::iter::once(&made.blobs.config)
        .chain(&made.blobs.layers)
        .map(|b| descriptor(b).map(BlobJob::Stored))
        .collect::<Result<Vec<_>, _>>()?;
    push_blobs(root, client, target, &jobs, opts, &progress, &compressing)?;
    let bytes = root.blobs.read(&made.blobs.manifest.digest)?;
    let at = by_digest(target, &made.blobs.manifest.digest)?;
    let digest = client
        .put_manifest(&at, &made.entry.media_type, &bytes)
        .map_err(StoreError::registry(format!("pushing {at}")))?;
    events(Event::Log {
        name,
        line: format!(
            "pushed attestation manifest {digest} for {}",
            made.entry.annotations[REFERENCE_DIGEST]
        ),
    });
    Ok(())
}

fn push_inner(
    root: &Root,
    client: &Client,
    image: &StoredImage,
    target: &Reference,
    opts: &PushOptions,
    name: &str,
    events: &(dyn Fn(Event) + Sync),
) -> Result<PushReport, StoreError> {
    let progress = |p: PushProgress| match p {
        PushProgress::BlobBytes {
            digest,
            done,
            total,
        } => events(Event::Transfer {
            name: name.to_string(),
            item: short_digest(&digest),
            done,
            total: Some(total),
        }),
        PushProgress::BlobDone { digest, outcome } => events(Event::Log {
            name: name.to_string(),
            line: format!("{} {}", short_digest(&digest), outcome_text(outcome)),
        }),
        PushProgress::ManifestPushed { reference, digest } => events(Event::Log {
            name: name.to_string(),
            line: format!("pushed manifest {digest} for {reference}"),
        }),
        PushProgress::BlobStarted { .. } => {}
    };
    // Layer compression shows as a transfer of its own (start and end: it is one call).
    let compressing = |layer: &LayerRecord, done: u64| {
        events(Event::Transfer {
            name: name.to_string(),
            item: format!("compressing {}", short_digest(&layer.diff_id)),
            done,
            total: Some(layer.size),
        })
    };
    let before = client.request_counts();
    let jobs = blob_jobs(root, image)?;
    let (outcomes, bytes_uploaded) =
        push_blobs(root, client, target, &jobs, opts, &progress, &compressing)?;
    let (media_type, manifest_bytes) = manifest_to_push(root, image, opts)?;
    let digest = client
        .put_manifest(target, &media_type, &manifest_bytes)
        .map_err(StoreError::registry(format!("pushing {target}")))?;
    progress(PushProgress::ManifestPushed {
        reference: target.to_string(),
        digest: digest.clone(),
    });
    for (blob, _) in &outcomes {
        root.index.set_blob_source(blob, &target.name())?;
    }
    let n = client.request_counts().since(&before);
    // What the push cost the registry (a no-op push: one HEAD per blob and the manifest PUT).
    events(Event::Log {
        name: name.to_string(),
        line: format!(
            "{} requests: {} HEAD, {} GET, {} POST, {} PATCH, {} PUT; {bytes_uploaded} bytes uploaded",
            n.total(),
            n.head,
            n.get,
            n.post,
            n.patch,
            n.put
        ),
    });
    Ok(PushReport {
        digest,
        size: manifest_bytes.len() as u64,
        media_type,
        outcomes,
        bytes_uploaded,
    })
}

/// Pushes every job's blob, a few at a time; returns each blob's digest and how it got there,
/// in job order, and the bytes uploaded. Each blob goes up as soon as it exists: layers
/// compress (on every core) while earlier ones upload. The first failure stops the jobs not
/// yet started.
fn push_blobs(
    root: &Root,
    client: &Client,
    target: &Reference,
    jobs: &[BlobJob],
    opts: &PushOptions,
    progress: &(dyn Fn(PushProgress) + Sync),
    compressing: &(dyn Fn(&LayerRecord, u64) + Sync),
) -> Result<(Vec<(String, BlobOutcome)>, u64), StoreError> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<JobResult>>> =
        Mutex::new((0..jobs.len()).map(|_| None).collect());
    let failed = AtomicBool::new(false);
    let workers = PUSH_CONCURRENCY.clamp(1, jobs.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= jobs.len() || failed.load(Ordering::SeqCst) {
                    return;
                }
                let result = push_job(root, client, target, &jobs[i], opts, progress, compressing);
                if result.is_err() {
                    failed.store(true, Ordering::SeqCst);
                }
                results.lock().expect("results lock")[i] = Some(result);
            });
        }
    });
    let mut outcomes = Vec::new();
    let mut bytes_uploaded = 0;
    for r in results.into_inner().expect("results lock") {
        match r {
            Some(Ok((digest, outcome, bytes))) => {
                outcomes.push((digest, outcome));
                bytes_uploaded += bytes;
            }
            Some(Err(e)) => return Err(e),
            None => {
                return Err(StoreError::Layer(format!(
                    "pushing {target}: stopped before every blob was sent"
                )))
            }
        }
    }
    Ok((outcomes, bytes_uploaded))
}

/// A pushed blob's digest, how it got there and the bytes uploaded.
type JobResult = Result<(String, BlobOutcome, u64), StoreError>;

/// Blobs pushed at once (each may also compress on every core).
const PUSH_CONCURRENCY: usize = 3;

/// One blob to push: one that exists, or a layer to compress first.
enum BlobJob {
    Stored(Descriptor),
    Compress(LayerRecord),
}

/// The blobs of the push: a pulled or imported image's own (config and compressed layers), or
/// a built image's config and its layers, compressed as asked (memoized per diff id).
fn blob_jobs(root: &Root, image: &StoredImage) -> Result<Vec<BlobJob>, StoreError> {
    if let Some((_, bytes)) = own_manifest(root, image) {
        let m: ImageManifest =
            serde_json::from_slice(&bytes).map_err(|source| StoreError::Json {
                what: format!("the manifest of {} is not valid", image.name),
                source,
            })?;
        let mut jobs = vec![BlobJob::Stored(m.config)];
        jobs.extend(m.layers.into_iter().map(BlobJob::Stored));
        return Ok(jobs);
    }
    let config = root.blobs.put_bytes(&docker::stored_config(root, image))?;
    let mut jobs = vec![BlobJob::Stored(descriptor(&config)?)];
    jobs.extend(
        docker::stored_layers(root, image)?
            .into_iter()
            .map(BlobJob::Compress),
    );
    Ok(jobs)
}

fn descriptor(blob: &cache::BlobInfo) -> Result<Descriptor, StoreError> {
    Ok(Descriptor {
        // Blob uploads carry no media type; the manifest has the real ones.
        media_type: "application/octet-stream".into(),
        digest: Digest::parse(&blob.digest).map_err(|source| StoreError::Digest {
            what: "a stored blob".into(),
            source,
        })?,
        size: blob.size,
        platform: None,
        annotations: None,
    })
}

fn push_job(
    root: &Root,
    client: &Client,
    target: &Reference,
    job: &BlobJob,
    opts: &PushOptions,
    progress: &(dyn Fn(PushProgress) + Sync),
    compressing: &(dyn Fn(&LayerRecord, u64) + Sync),
) -> JobResult {
    let d = match job {
        BlobJob::Stored(d) => d.clone(),
        BlobJob::Compress(layer) => {
            let c = opts.compression.layers();
            // Shown as compressing only when it is (a pulled base layer has its blob already).
            let blob = match memoized_or_remote(root, layer, &c)? {
                Some(blob) => blob,
                None => {
                    compressing(layer, 0);
                    let blob = compress_layer(root, layer, &c)?;
                    compressing(layer, layer.size);
                    blob
                }
            };
            descriptor(&blob)?
        }
    };
    let path = root.blobs.path(&d.digest)?;
    // A layer a remote cache holds (its bytes never fetched): HEAD and mount need no bytes;
    // only an upload fetches it, once.
    let remote = match job {
        BlobJob::Compress(layer) if !path.is_file() => remote_layer(root, &layer.diff_id)
            .filter(|r| r.blob == d.digest.as_str())
            .map(|_| layer.diff_id.clone()),
        _ => None,
    };
    if !path.is_file() && remote.is_none() {
        return Err(StoreError::Layer(format!(
            "blob {} is missing from the store: pull or build the image again",
            d.digest
        )));
    }
    let opened = path.clone();
    let blob = PushBlob {
        descriptor: d.clone(),
        open: Box::new(move || {
            if let Some(diff_id) = &remote {
                fetch_remote_blob(root, Some(client), diff_id, &|_| {})
                    .map_err(std::io::Error::other)?;
            }
            let f = std::fs::File::open(&opened)?;
            Ok(Box::new(std::io::BufReader::with_capacity(1 << 20, f))
                as Box<dyn std::io::Read + Send>)
        }),
        mount_from: mount_sources(root, &d.digest, target)?,
    };
    let (outcome, bytes) = match push_blob(client, target, &blob, progress) {
        Ok(pushed) => pushed,
        // The stored blob does not hash to its name (the client hashes what it sends and
        // stops before the manifest): say which layer, and clear the way to a good push.
        Err(e @ registry::RegistryError::DigestMismatch { .. }) => {
            return Err(damaged_blob(&path, job, &d.digest, target, &e))
        }
        Err(e) => return Err(StoreError::registry(format!("pushing {target}"))(e)),
    };
    Ok((d.digest.to_string(), outcome, bytes))
}

/// The error for a stored blob found damaged while pushing it. A compressed copy made here
/// (a built layer's) is removed, so that the next push compresses the layer again from its
/// diff blob; any other blob is the store's only copy: `pallet doctor` says what is lost.
fn damaged_blob(
    path: &std::path::Path,
    job: &BlobJob,
    digest: &Digest,
    target: &Reference,
    e: &registry::RegistryError,
) -> StoreError {
    match job {
        BlobJob::Compress(layer) => {
            let removed = std::fs::remove_file(path).is_ok();
            StoreError::Layer(format!(
                "pushing {target}: layer {} is damaged in the store: its compressed blob {digest} \
                 does not hash to its digest ({e}); nothing was tagged{}",
                layer.diff_id,
                if removed {
                    "; the damaged copy was removed: push again to compress the layer anew"
                } else {
                    ""
                }
            ))
        }
        BlobJob::Stored(_) => StoreError::Layer(format!(
            "pushing {target}: blob {digest} is damaged in the store ({e}); nothing was tagged; \
             run `pallet doctor`, then pull or build the image again"
        )),
    }
}

/// A pulled or imported image's own manifest, when its layers are compressed blobs we hold.
fn own_manifest(root: &Root, image: &StoredImage) -> Option<(String, Vec<u8>)> {
    let bytes = root.blobs.read(&image.manifest_digest).ok()?;
    let m = serde_json::from_slice::<ImageManifest>(&bytes).ok()?;
    let compressed = m
        .layers
        .iter()
        .all(|l| !l.media_type.ends_with(".tar") && root.blobs.contains(&l.digest));
    if !(compressed && !m.layers.is_empty() && root.blobs.contains(&m.config.digest)) {
        return None;
    }
    let media_type = m
        .media_type
        .clone()
        .unwrap_or_else(|| registry::manifest::OCI_MANIFEST.to_string());
    Some((media_type, bytes))
}

/// The manifest (media type, bytes) to push: a pulled or imported image's own manifest when its
/// layers are compressed blobs we hold; otherwise one over compressed layers (the compression
/// memo makes this free once `push_job` compressed them).
fn manifest_to_push(
    root: &Root,
    image: &StoredImage,
    opts: &PushOptions,
) -> Result<(String, Vec<u8>), StoreError> {
    if opts.annotations.manifest.is_empty() {
        if let Some(own) = own_manifest(root, image) {
            return Ok(own);
        }
    }
    let layers = docker::stored_layers(root, image)?;
    let config = docker::stored_config(root, image);
    let exported = docker::store_push_image(
        root,
        &config,
        &layers,
        &ImageOptions {
            names: Vec::new(),
            media_types: opts.media_types,
            compression: opts.compression,
            annotations: opts.annotations.clone(),
        },
    )?;
    let bytes = root.blobs.read(&exported.blobs.manifest.digest)?;
    Ok((exported.media_type.to_string(), bytes))
}

fn outcome_text(o: BlobOutcome) -> &'static str {
    match o {
        BlobOutcome::AlreadyThere => "already exists",
        BlobOutcome::Mounted => "mounted",
        BlobOutcome::Uploaded => "pushed",
    }
}
