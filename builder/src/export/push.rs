//! Pushing a stored image: the manifest a registry should get (a pulled or imported image keeps
//! its own manifest and blobs, so its digest does not change; a built image gets a manifest over
//! compressed layers, made once per diff id), each blob's known source repository offered for a
//! cross-repository mount, then the registry client's push (blobs first, manifest last).
//! Afterwards each blob remembers the repository it was pushed to.

use super::docker::{self, Compression, ImageOptions, MediaTypes};
use crate::solver::Event;
use crate::store::{StoreError, StoredImage};
use cache::Root;
use registry::manifest::{Descriptor, ImageManifest};
use registry::push::{push_image, PushBlob, PushProgress, PushReport, PushRequest};
use registry::{Client, Reference};

#[derive(Debug, Clone)]
pub struct PushOptions {
    pub media_types: MediaTypes,
    pub compression: Compression,
}

impl Default for PushOptions {
    fn default() -> Self {
        PushOptions {
            media_types: MediaTypes::Oci,
            compression: Compression::Gzip,
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

fn push_inner(
    root: &Root,
    client: &Client,
    image: &StoredImage,
    target: &Reference,
    opts: &PushOptions,
    name: &str,
    events: &(dyn Fn(Event) + Sync),
) -> Result<PushReport, StoreError> {
    let (media_type, manifest_bytes) = manifest_to_push(root, image, opts)?;
    let manifest: ImageManifest = serde_json::from_slice(&manifest_bytes).map_err(|e| {
        StoreError::Layer(format!("the manifest of {} is not valid: {e}", image.name))
    })?;
    let mut descriptors: Vec<Descriptor> = vec![manifest.config.clone()];
    descriptors.extend(manifest.layers.iter().cloned());
    let mut blobs = Vec::new();
    for d in descriptors {
        let path = root.blobs.path(&d.digest)?;
        if !path.is_file() {
            return Err(StoreError::Layer(format!(
                "blob {} of {} is missing from the store: pull or build the image again",
                d.digest, image.name
            )));
        }
        let mount_from = mount_source(root, &d.digest, target)?;
        blobs.push(PushBlob {
            descriptor: d,
            open: Box::new(move || {
                let f = std::fs::File::open(&path)?;
                Ok(Box::new(std::io::BufReader::with_capacity(1 << 20, f))
                    as Box<dyn std::io::Read + Send>)
            }),
            mount_from,
        });
    }
    let request = PushRequest {
        target: target.clone(),
        manifest_media_type: media_type,
        manifest_bytes,
        blobs,
    };
    let progress = |p: PushProgress| match p {
        PushProgress::BlobBytes {
            digest,
            done,
            total,
        } => events(Event::Transfer {
            name: name.to_string(),
            item: crate::store::short_digest(&digest),
            done,
            total: Some(total),
        }),
        PushProgress::BlobDone { digest, outcome } => events(Event::Log {
            name: name.to_string(),
            line: format!(
                "{} {}",
                crate::store::short_digest(&digest),
                outcome_text(outcome)
            ),
        }),
        PushProgress::ManifestPushed { reference, digest } => events(Event::Log {
            name: name.to_string(),
            line: format!("pushed manifest {digest} for {reference}"),
        }),
        PushProgress::BlobStarted { .. } => {}
    };
    let before = client.request_counts();
    let report = push_image(client, &request, &progress)
        .map_err(|e| StoreError::Layer(format!("pushing {target}: {e}")))?;
    let n = client.request_counts().since(&before);
    // What the push cost the registry (a no-op push: one HEAD per blob and the manifest PUT).
    events(Event::Log {
        name: name.to_string(),
        line: format!(
            "{} requests: {} HEAD, {} GET, {} POST, {} PATCH, {} PUT",
            n.total(),
            n.head,
            n.get,
            n.post,
            n.patch,
            n.put
        ),
    });
    for blob in &request.blobs {
        root.index
            .set_blob_source(&blob.descriptor.digest, &target.name())?;
    }
    Ok(report)
}

/// The manifest (media type, bytes) to push: a pulled or imported image's own manifest when its
/// layers are compressed blobs we hold; otherwise one over compressed layers.
fn manifest_to_push(
    root: &Root,
    image: &StoredImage,
    opts: &PushOptions,
) -> Result<(String, Vec<u8>), StoreError> {
    if let Ok(bytes) = root.blobs.read(&image.manifest_digest) {
        if let Ok(m) = serde_json::from_slice::<ImageManifest>(&bytes) {
            let compressed = m
                .layers
                .iter()
                .all(|l| !l.media_type.ends_with(".tar") && root.blobs.contains(&l.digest));
            if compressed && !m.layers.is_empty() && root.blobs.contains(&m.config.digest) {
                let media_type = m
                    .media_type
                    .clone()
                    .unwrap_or_else(|| registry::manifest::OCI_MANIFEST.to_string());
                return Ok((media_type, bytes));
            }
        }
    }
    let layers = docker::stored_layers(root, image)?;
    let config = docker::stored_config(root, image);
    let exported = docker::store_image(
        root,
        &config,
        &layers,
        &ImageOptions {
            names: Vec::new(),
            media_types: opts.media_types,
            compression: opts.compression,
        },
    )?;
    let bytes = root.blobs.read(&exported.blobs.manifest.digest)?;
    Ok((exported.media_type.to_string(), bytes))
}

/// Repositories on the target's registry that hold `digest` (from a pull or an earlier push).
fn mount_source(root: &Root, digest: &str, target: &Reference) -> Result<Vec<String>, StoreError> {
    let Some(source) = root.index.blob_source(digest)? else {
        return Ok(Vec::new());
    };
    let Ok(r) = Reference::parse(&source) else {
        return Ok(Vec::new());
    };
    Ok(
        if r.domain() == target.domain() && r.path() != target.path() {
            vec![r.path().to_string()]
        } else {
            Vec::new()
        },
    )
}

fn outcome_text(o: registry::push::BlobOutcome) -> &'static str {
    match o {
        registry::push::BlobOutcome::AlreadyThere => "already exists",
        registry::push::BlobOutcome::Mounted => "mounted",
        registry::push::BlobOutcome::Uploaded => "pushed",
    }
}
