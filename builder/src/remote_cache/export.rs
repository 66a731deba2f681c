//! `--cache-to`: after the build (and after `--push`, so the image's blobs are in the
//! registry to mount from), the steps the mode covers are written as a cache: each layer's
//! compressed blob (made once per diff id and compression, as for a push), sent only if the
//! cache lacks it (HEAD, then a cross-repository mount from where the store knows it is, then
//! an upload), then the config, then the manifest last: a concurrent reader sees the old cache
//! or the new one. Layers the store knows only remotely are fetched only if they must be
//! uploaded.

use super::blobs::{BlobError, CacheStore, Sent};
use super::format::{
    CacheConfig, CacheLayer, CacheRecord, IndexBlob, StackEntry, CONFIG_MEDIA_TYPE, VERSION,
};
use super::mounts::{export_mounts, MountReport, UsedMount};
use super::spec::{CacheTo, Location, Mode};
use super::Imported;
use crate::events::Event;
use crate::store::path_index;
use crate::store::{
    compress_layer, fetch_path_index, fetch_remote, fetch_remote_blob, has_layer,
    memoized_or_remote, mount_sources, remote_layer, LayerRecord, StoreError,
};
use cache::{BlobInfo, Root};
use registry::manifest::Descriptor;
use registry::Client;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// One solved step: its cache key and its whole layer stack.
#[derive(Debug, Clone)]
pub struct StepResult {
    /// The key it is filed under (its definition key).
    pub key: String,
    /// The key the steps after it are keyed by, when not `key` (its content key). The
    /// cache files the step under `key` only (content keys are not exported).
    pub downstream: Option<String>,
    pub layers: Vec<LayerRecord>,
    /// Its layers are the bottom of the built image's (mode=min exports these).
    pub in_image: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("exporting the cache to {to}: {source}")]
    Store {
        to: String,
        #[source]
        source: StoreError,
    },
    #[error("exporting the cache to {to}: {source}")]
    Blob {
        to: String,
        #[source]
        source: BlobError,
    },
    #[error("exporting the cache to {to}: {message}")]
    Other { to: String, message: String },
}

/// What an export moved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportReport {
    pub keys: usize,
    pub layers: usize,
    pub bytes_uploaded: u64,
    /// Bytes of blobs the cache had already or mounted.
    pub bytes_skipped: u64,
    pub manifest_digest: String,
    /// `mounts=true`: what each cache mount moved.
    pub mounts: Vec<MountReport>,
    /// Cache mounts that could not be packed (each left out of the cache).
    pub mount_warnings: Vec<String>,
}

/// Blobs sent at once.
const CONCURRENCY: usize = 3;

/// `mounts`: the cache mounts the build ran, exported when `to.mounts`; `imported`: the
/// `--cache-from` caches, whose manifest of a mount its pack reuses chunks from, and whose
/// mounts this build did not run are carried over when `to` holds their blobs.
pub fn export(
    root: &Root,
    client: Option<&Client>,
    to: &CacheTo,
    steps: &[StepResult],
    mounts: &[UsedMount],
    imported: Option<&Imported>,
    events: &(dyn Fn(Event) + Sync),
) -> Result<ExportReport, ExportError> {
    let label = to.location.to_string();
    let name = format!("[internal] exporting cache ({label})");
    events(Event::Started { name: name.clone() });
    let started = std::time::Instant::now();
    let result = export_inner(root, client, to, steps, mounts, imported, &label);
    match &result {
        Ok(r) => {
            for m in &r.mounts {
                events(Event::Log {
                    name: name.clone(),
                    line: m.line(),
                });
            }
            for w in &r.mount_warnings {
                events(Event::Log {
                    name: name.clone(),
                    line: format!("warning: {w}"),
                });
            }
            events(Event::Log {
                name: name.clone(),
                line: format!(
                    "{} keys, {} layers: {} bytes uploaded, {} bytes already there or mounted; \
                     manifest {}",
                    r.keys, r.layers, r.bytes_uploaded, r.bytes_skipped, r.manifest_digest
                ),
            });
            events(Event::Done {
                name,
                seconds: started.elapsed().as_secs_f64(),
            });
        }
        Err(e) => events(Event::Failed {
            name,
            message: e.to_string(),
        }),
    }
    result
}

fn export_inner(
    root: &Root,
    client: Option<&Client>,
    to: &CacheTo,
    steps: &[StepResult],
    mounts: &[UsedMount],
    imported: Option<&Imported>,
    label: &str,
) -> Result<ExportReport, ExportError> {
    let store_err = |source| ExportError::Store {
        to: label.to_string(),
        source,
    };
    let blob_err = |source| ExportError::Blob {
        to: label.to_string(),
        source,
    };
    let store = match &to.location {
        Location::Registry(reference) => CacheStore::Registry {
            client: client.ok_or_else(|| ExportError::Other {
                to: label.to_string(),
                message: "no registry client is configured".into(),
            })?,
            reference: reference.clone(),
        },
        Location::Local(dir) => CacheStore::Layout { dir: dir.clone() },
        Location::Inline => {
            return Err(ExportError::Other {
                to: label.to_string(),
                message: "an inline cache is written with the push".into(),
            })
        }
    };
    let (mut config, unique, mut descriptors) =
        cache_config(root, client, to, steps).map_err(store_err)?;
    let (mut uploaded, mut skipped) =
        send_layers(root, client, &store, &to.location, &unique, &descriptors).map_err(
            |e| match e {
                Failure::Store(e) => store_err(e),
                Failure::Blob(e) => blob_err(e),
            },
        )?;
    // Each layer's path index, after its layer (small; HEAD first like any blob).
    for l in &mut config.layers {
        let Some(info) = layer_path_index(root, client, imported, &l.diff_id) else {
            continue;
        };
        let d = descriptor(path_index::MEDIA_TYPE, &info.digest, info.size).map_err(store_err)?;
        let path = root
            .blobs
            .path(&info.digest)
            .map_err(|e| store_err(e.into()))?;
        match store.put_file(&d, &path, &[]).map_err(blob_err)? {
            Sent::Uploaded => uploaded += info.size,
            Sent::Present | Sent::Mounted => skipped += info.size,
        }
        if !descriptors.iter().any(|x| x.digest == d.digest) {
            descriptors.push(d);
        }
        l.path_index = Some(IndexBlob {
            digest: info.digest,
            size: info.size,
        });
    }
    // Cache mounts after the layers, before the config: every blob the config names is
    // there before the manifest that makes it visible.
    let exported = if to.mounts {
        let previous = |key: &str| imported.and_then(|i| i.mount_manifest(client, key));
        let carried = imported
            .map(|i| i.mount_entries_except(mounts))
            .unwrap_or_default();
        export_mounts(
            &store,
            mounts,
            &previous,
            &carried,
            to.compression,
            &root.tmp_dir(),
        )
        .map_err(blob_err)?
    } else {
        Default::default()
    };
    // The manifest lists every blob (a registry's garbage collector keeps what it names).
    let mut listed: std::collections::HashSet<String> = descriptors
        .iter()
        .map(|d| d.digest.as_str().to_string())
        .collect();
    for e in &exported.entries {
        for d in e.chunks.iter().chain(std::iter::once(&e.manifest)) {
            if listed.insert(d.digest.as_str().to_string()) {
                descriptors.push(d.clone());
            }
        }
    }
    config.mounts = exported.entries;
    let config_bytes = serde_json::to_vec(&config).expect("cache config serializes");
    let config_blob = root
        .blobs
        .put_bytes(&config_bytes)
        .map_err(|e| store_err(e.into()))?;
    let config_descriptor =
        descriptor(CONFIG_MEDIA_TYPE, &config_blob.digest, config_blob.size).map_err(store_err)?;
    let path = root
        .blobs
        .path(&config_blob.digest)
        .map_err(|e| store_err(e.into()))?;
    store
        .put_file(&config_descriptor, &path, &[])
        .map_err(blob_err)?;
    let manifest_type = if to.oci_media_types {
        crate::store::MEDIA_MANIFEST
    } else {
        "application/vnd.docker.distribution.manifest.v2+json"
    };
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": manifest_type,
        "config": config_descriptor,
        "layers": descriptors,
    });
    let manifest_bytes = serde_json::to_vec(&manifest).expect("manifest serializes");
    let manifest_digest = store
        .put_manifest(manifest_type, &manifest_bytes)
        .map_err(blob_err)?;
    Ok(ExportReport {
        keys: config.records.len(),
        layers: unique.len(),
        bytes_uploaded: uploaded,
        bytes_skipped: skipped,
        manifest_digest,
        mounts: exported.reports,
        mount_warnings: exported.warnings,
    })
}

/// The path index of a layer: built from its snapshot, else the one an imported cache has for
/// it (a layer this runner never unpacked; fetched if need be, small, and checked by the
/// parser). None: the layer goes without one (a COPY on it then fetches the layer).
fn layer_path_index(
    root: &Root,
    client: Option<&Client>,
    imported: Option<&Imported>,
    diff_id: &str,
) -> Option<BlobInfo> {
    if let Some(info) = path_index::local_index(root, diff_id) {
        return Some(info);
    }
    let (blob, source) = imported?.path_index(diff_id)?;
    let bytes = fetch_path_index(root, client, source, &blob.digest, blob.size).ok()?;
    path_index::parse(&bytes).ok()?;
    Some(BlobInfo {
        digest: blob.digest.clone(),
        size: blob.size,
    })
}

/// The cache config of `steps` (those `to.mode` covers), the layers it names (each once) and
/// their blobs' descriptors in `to`'s compression and media types.
fn cache_config(
    root: &Root,
    client: Option<&Client>,
    to: &CacheTo,
    steps: &[StepResult],
) -> Result<(CacheConfig, Vec<LayerRecord>, Vec<Descriptor>), StoreError> {
    let mut layer_index: HashMap<String, usize> = HashMap::new();
    let mut unique: Vec<LayerRecord> = Vec::new();
    let mut records = Vec::new();
    let mut seen_keys = std::collections::HashSet::new();
    for s in steps {
        if (to.mode == Mode::Min && !s.in_image) || !seen_keys.insert(s.key.clone()) {
            continue;
        }
        let layers = s
            .layers
            .iter()
            .map(|l| {
                let i = *layer_index.entry(l.diff_id.clone()).or_insert_with(|| {
                    unique.push(l.clone());
                    unique.len() - 1
                });
                StackEntry {
                    layer: i,
                    created: l.created.clone(),
                }
            })
            .collect();
        records.push(CacheRecord {
            key: s.key.clone(),
            layers,
            downstream: s.downstream.clone(),
        });
    }
    let c = to.compression;
    let media_type = c.media_type(to.oci_media_types);
    // Each layer's blob in the cache's compression: remembered, a remote cache's (not
    // fetched), or compressed now.
    let blobs: Vec<BlobInfo> = unique
        .iter()
        .map(|l| compressed(root, client, l, &c))
        .collect::<Result<_, _>>()?;
    let layers: Vec<CacheLayer> = unique
        .iter()
        .zip(&blobs)
        .map(|(l, b)| CacheLayer {
            digest: b.digest.clone(),
            size: b.size,
            media_type: media_type.to_string(),
            compression: c.label(),
            diff_id: l.diff_id.clone(),
            diff_size: l.size,
            path_index: None,
        })
        .collect();
    let descriptors: Vec<Descriptor> = layers
        .iter()
        .map(|l| descriptor(&l.media_type, &l.digest, l.size))
        .collect::<Result<_, _>>()?;
    let config = CacheConfig {
        version: VERSION,
        layers,
        records,
        mounts: Vec::new(),
    };
    Ok((config, unique, descriptors))
}

/// `--cache-to type=inline`: the cache config of the image's own steps, as the value of the
/// pushed manifest's [`INLINE_ANNOTATION`] (its blobs are the image's layers, pushed with it
/// in `compression`).
pub fn inline_annotation(
    root: &Root,
    client: Option<&Client>,
    steps: &[StepResult],
    compression: codec::Compression,
) -> Result<String, ExportError> {
    let to = CacheTo {
        location: Location::Inline,
        mode: Mode::Min,
        compression,
        oci_media_types: true,
        ignore_error: false,
        mounts: false,
    };
    let (config, _, _) =
        cache_config(root, client, &to, steps).map_err(|source| ExportError::Store {
            to: to.location.to_string(),
            source,
        })?;
    Ok(serde_json::to_string(&config).expect("cache config serializes"))
}

/// The layer's blob compressed as `c`: remembered (or a remote cache's), else made now (a
/// remote-only layer is fetched first).
fn compressed(
    root: &Root,
    client: Option<&Client>,
    layer: &LayerRecord,
    c: &codec::Compression,
) -> Result<BlobInfo, StoreError> {
    if let Some(blob) = memoized_or_remote(root, layer, c)? {
        return Ok(blob);
    }
    if !has_layer(root, &layer.diff_id) {
        fetch_remote(root, client, &layer.diff_id, &|_| {})?;
    }
    compress_layer(root, layer, c)
}

fn descriptor(media_type: &str, digest: &str, size: u64) -> Result<Descriptor, StoreError> {
    Ok(Descriptor {
        media_type: media_type.to_string(),
        digest: registry::Digest::parse(digest).map_err(|source| StoreError::Digest {
            what: "a blob to export".into(),
            source,
        })?,
        size,
        platform: None,
        annotations: None,
    })
}

enum Failure {
    Store(StoreError),
    Blob(BlobError),
}

/// Sends each layer blob the cache lacks, a few at once; returns bytes uploaded and skipped.
fn send_layers(
    root: &Root,
    client: Option<&Client>,
    store: &CacheStore,
    location: &Location,
    layers: &[LayerRecord],
    descriptors: &[Descriptor],
) -> Result<(u64, u64), Failure> {
    let next = AtomicUsize::new(0);
    let totals = Mutex::new((0u64, 0u64));
    let failure: Mutex<Option<Failure>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..CONCURRENCY.min(layers.len().max(1)) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= layers.len() || failure.lock().expect("lock").is_some() {
                    return;
                }
                match send_one(root, client, store, location, &layers[i], &descriptors[i]) {
                    Ok(sent) => {
                        let mut t = totals.lock().expect("lock");
                        match sent {
                            Sent::Uploaded => t.0 += descriptors[i].size,
                            Sent::Present | Sent::Mounted => t.1 += descriptors[i].size,
                        }
                    }
                    Err(e) => {
                        failure.lock().expect("lock").get_or_insert(e);
                        return;
                    }
                }
            });
        }
    });
    if let Some(e) = failure.into_inner().expect("lock") {
        return Err(e);
    }
    Ok(totals.into_inner().expect("lock"))
}

fn send_one(
    root: &Root,
    client: Option<&Client>,
    store: &CacheStore,
    location: &Location,
    layer: &LayerRecord,
    d: &Descriptor,
) -> Result<Sent, Failure> {
    let path = root
        .blobs
        .path(d.digest.as_str())
        .map_err(|e| Failure::Store(e.into()))?;
    let remote = !path.is_file()
        && remote_layer(root, &layer.diff_id).is_some_and(|r| r.blob == d.digest.as_str());
    let mount_from = match location {
        Location::Registry(target) => {
            mount_sources(root, d.digest.as_str(), target).map_err(Failure::Store)?
        }
        Location::Local(_) | Location::Inline => Vec::new(),
    };
    let open = || -> std::io::Result<Box<dyn std::io::Read + Send>> {
        if remote {
            fetch_remote_blob(root, client, &layer.diff_id, &|_| {})
                .map_err(std::io::Error::other)?;
        }
        Ok(Box::new(std::io::BufReader::with_capacity(
            1 << 20,
            std::fs::File::open(&path)?,
        )))
    };
    store.put_with(d, &open, &mount_from).map_err(Failure::Blob)
}
