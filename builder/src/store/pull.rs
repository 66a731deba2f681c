//! Pulling an image from a registry into the store: resolve the reference (index -> the
//! platform's manifest -> config), download the layers a few at a time, each streamed once into
//! both its compressed blob (digest checked by the registry client and by the blob writer) and,
//! through a decompressor, its diff blob (digest checked against the config's diff id), then
//! unpacked as a snapshot with the usual safety rules. The compressed blob is kept and
//! remembered as the layer's export form, so pushing an image built on this base uploads or
//! mounts the very blobs the registry already has.

use super::layers::{ensure_snapshot, publish_dir, snapshot_path, tempdir_in};
use super::{put_image, StoreError, StoredImage};
use crate::export::compress::{decompressing_writer, Codec, Compression};
use crate::graph::Platform;
use crate::image::Image;
use crate::solver::Event;
use cache::Root;
use registry::manifest::Descriptor;
use registry::{Client, Reference};
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Layers downloaded at once (docker's default is 3).
const PULL_CONCURRENCY: usize = 3;
/// Decompressed chunks in flight between a download and its unpacking thread (bounded memory).
const UNPACK_QUEUE: usize = 64;

/// Where a pull reports: the progress step name and the event sink.
pub struct PullProgress<'a> {
    pub name: String,
    pub events: &'a (dyn Fn(Event) + Sync),
}

/// The registry form of a build platform.
pub fn registry_platform(p: &Platform) -> registry::Platform {
    registry::Platform {
        os: p.os.clone(),
        architecture: p.architecture.clone(),
        variant: (!p.variant.is_empty()).then(|| p.variant.clone()),
    }
}

/// The store key of a pulled image: `name:tag`, or `name@digest` for digest references.
pub fn store_name(reference: &Reference) -> String {
    match (reference.tag(), reference.digest()) {
        (_, Some(d)) => format!("{}@{d}", reference.name()),
        (Some(t), None) => format!("{}:{t}", reference.name()),
        (None, None) => format!("{}:latest", reference.name()),
    }
}

/// Pulls `reference` for `platform` and tags it in the store under [`store_name`].
pub fn pull_image(
    root: &Root,
    client: &Client,
    reference: &Reference,
    platform: &Platform,
    progress: &PullProgress<'_>,
) -> Result<StoredImage, StoreError> {
    let fail = |e: registry::RegistryError| StoreError::Layer(format!("pulling {reference}: {e}"));
    let resolved =
        registry::pull::resolve(client, reference, &registry_platform(platform)).map_err(fail)?;
    let config: Image = serde_json::from_slice(&resolved.config_bytes).map_err(|e| {
        StoreError::Layer(format!(
            "pulling {reference}: the image config {} is not valid JSON: {e}",
            resolved.manifest.config.digest
        ))
    })?;
    let layers = &resolved.manifest.layers;
    if layers.len() != config.rootfs.diff_ids.len() {
        return Err(StoreError::Layer(format!(
            "pulling {reference}: the manifest lists {} layers but the config {} diff ids",
            layers.len(),
            config.rootfs.diff_ids.len()
        )));
    }
    let repository = Reference::parse(&reference.name())
        .map_err(|e| StoreError::Layer(format!("pulling {reference}: {e}")))?;
    let source = reference.name();
    let jobs: Vec<(&Descriptor, &String)> = layers.iter().zip(&config.rootfs.diff_ids).collect();
    let next = AtomicUsize::new(0);
    let first_error: Mutex<Option<StoreError>> = Mutex::new(None);
    let workers = PULL_CONCURRENCY.clamp(1, jobs.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= jobs.len() || first_error.lock().unwrap().is_some() {
                    return;
                }
                let (layer, diff_id) = jobs[i];
                if let Err(e) =
                    pull_layer(root, client, &repository, layer, diff_id, progress, &source)
                {
                    first_error.lock().unwrap().get_or_insert(e);
                    return;
                }
            });
        }
    });
    if let Some(e) = first_error.into_inner().unwrap() {
        return Err(e);
    }
    let config_blob = root.blobs.put_bytes(&resolved.config_bytes)?;
    root.blobs.put_bytes(&resolved.manifest_bytes)?;
    root.index.set_blob_source(&config_blob.digest, &source)?;
    let image = StoredImage {
        name: store_name(reference),
        manifest_digest: resolved.manifest_digest.clone(),
        config_digest: config_blob.digest,
        layers: config.rootfs.diff_ids.clone(),
        config,
        repo_digest: Some(resolved.digest.clone()),
    };
    put_image(root, &image)?;
    Ok(image)
}

/// One layer: skipped when its diff and snapshot are here already (another image shares it),
/// else downloaded into the compressed and the diff blob at once.
fn pull_layer(
    root: &Root,
    client: &Client,
    repository: &Reference,
    layer: &Descriptor,
    diff_id: &str,
    progress: &PullProgress<'_>,
    source: &str,
) -> Result<(), StoreError> {
    let item = super::short_digest(&layer.digest);
    let have_diff = root.blobs.contains(diff_id);
    let have_compressed = root.blobs.contains(&layer.digest) || is_plain_tar(&layer.media_type);
    if !(have_diff && have_compressed) {
        let compressed = root.blobs.writer()?;
        // The decompressed stream goes to the diff blob and, through a bounded channel, to a
        // thread that unpacks it as the snapshot meanwhile (published once the diff id checks).
        let (chunks, received) = std::sync::mpsc::sync_channel::<Vec<u8>>(UNPACK_QUEUE);
        let diff = DiffTee {
            blob: root.blobs.writer()?,
            unpack: (!snapshot_path(root, diff_id).is_dir()).then_some(chunks),
        };
        let streaming = diff.unpack.is_some();
        let decoder = decompressing_writer(&layer.media_type, diff).map_err(|e| {
            StoreError::Layer(format!("layer {} of {repository}: {e}", layer.digest))
        })?;
        let mut sink = Tee {
            compressed,
            decoder,
        };
        let report = |done: u64| {
            (progress.events)(Event::Transfer {
                name: progress.name.clone(),
                item: item.clone(),
                done,
                total: Some(layer.size),
            })
        };
        let (fetched, unpacked) = std::thread::scope(|threads| {
            let unpacker = streaming.then(|| {
                threads.spawn(move || -> Option<tempfile::TempDir> {
                    let tmp = tempdir_in(&root.tmp_dir()).ok()?;
                    let mut input = ChannelReader {
                        chunks: received,
                        current: Vec::new(),
                        at: 0,
                    };
                    let opts = crate::snapshot::UnpackOptions {
                        overlay_whiteouts: true,
                        same_owner: true,
                    };
                    // An error here only means unpacking again from the blob below, which
                    // reports it.
                    crate::snapshot::unpack_layer(&mut input, tmp.path(), &opts).ok()?;
                    Some(tmp)
                })
            });
            let fetched = client
                .fetch_blob(repository, layer, &mut sink, &report)
                .map_err(|e| StoreError::Layer(format!("pulling {repository}: {e}")));
            let Tee {
                compressed,
                decoder,
            } = sink;
            let finished = decoder.finish();
            // The channel closes here (or with the error): the unpacker sees the end.
            let fetched = fetched.and_then(|()| {
                let diff = finished.map_err(|e| {
                    StoreError::Layer(format!(
                        "layer {} of {repository} does not decompress: {e}",
                        layer.digest
                    ))
                })?;
                Ok((compressed, diff.blob))
            });
            let unpacked = unpacker.and_then(|t| t.join().ok().flatten());
            (fetched, unpacked)
        });
        let (compressed, diff) = fetched?;
        // Unsynced (the disk writes ~200 MB/s): marked, and re-hashed after a restart.
        let mark = |info: &cache::BlobInfo| super::durability::mark(&root.path, &info.digest);
        diff.commit_expect_unsynced(diff_id, mark).map_err(|e| {
            StoreError::Layer(format!(
                "layer {} of {repository} does not match its diff id {diff_id}: {e}",
                layer.digest
            ))
        })?;
        if is_plain_tar(&layer.media_type) {
            drop(compressed);
        } else {
            let info = compressed.commit_expect_unsynced(&layer.digest, mark)?;
            remember_compressed(root, diff_id, &layer.media_type, &info)?;
        }
        // The diff id checked: what was unpacked from the same bytes is the snapshot.
        if let Some(tmp) = unpacked {
            super::durability::mark_unsynced(root, diff_id)?;
            publish_dir(tmp, &snapshot_path(root, diff_id))?;
        }
    }
    if !is_plain_tar(&layer.media_type) {
        root.index.set_blob_source(&layer.digest, source)?;
    }
    ensure_snapshot(root, diff_id)?;
    Ok(())
}

/// Records a pulled gzip blob as the layer's default-gzip form, so an export or push reuses it
/// instead of compressing again. zstd levels are unknown from a blob: not remembered.
fn remember_compressed(
    root: &Root,
    diff_id: &str,
    media_type: &str,
    info: &cache::BlobInfo,
) -> Result<(), StoreError> {
    if matches!(Codec::of_media_type(media_type), Ok(Codec::Gzip)) {
        crate::export::compress::remember(root, diff_id, &Compression::default(), info)?;
    }
    Ok(())
}

/// The compressed layers of an image's own manifest that the store holds: (diff id, blob, media
/// type). Empty for built and imported images (their manifests list uncompressed diffs).
pub(super) fn compressed_layers(
    root: &Root,
    img: &StoredImage,
) -> Vec<(String, cache::BlobInfo, String)> {
    let Ok(bytes) = root.blobs.read(&img.manifest_digest) else {
        return Vec::new();
    };
    let Ok(manifest) = serde_json::from_slice::<registry::manifest::ImageManifest>(&bytes) else {
        return Vec::new();
    };
    if manifest.layers.len() != img.layers.len() {
        return Vec::new();
    }
    manifest
        .layers
        .into_iter()
        .zip(&img.layers)
        .filter(|(l, _)| !is_plain_tar(&l.media_type) && root.blobs.contains(&l.digest))
        .map(|(l, diff_id)| {
            let blob = cache::BlobInfo {
                digest: l.digest,
                size: l.size,
            };
            (diff_id.clone(), blob, l.media_type)
        })
        .collect()
}

/// Records a pulled image's compressed layers as their export form again (prune clears the
/// compression memos with the rest of the build cache).
pub(super) fn remember_pulled_layers(root: &Root, img: &StoredImage) -> Result<(), StoreError> {
    for (diff_id, blob, media_type) in compressed_layers(root, img) {
        remember_compressed(root, &diff_id, &media_type, &blob)?;
    }
    Ok(())
}

fn is_plain_tar(media_type: &str) -> bool {
    matches!(Codec::of_media_type(media_type), Ok(Codec::Plain))
}

/// Writes every byte to the compressed blob and to the decompressor feeding the diff blob.
struct Tee<W: Write> {
    compressed: cache::BlobWriter,
    decoder: W,
}

impl<W: Write> Write for Tee<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.compressed.write_all(buf)?;
        self.decoder.write_all(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.compressed.flush()?;
        self.decoder.flush()
    }
}

/// The decompressed stream: into the diff blob, and a copy of each chunk to the unpacking thread
/// (dropped if that thread stopped reading).
struct DiffTee {
    blob: cache::BlobWriter,
    unpack: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
}

impl Write for DiffTee {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.blob.write_all(buf)?;
        if let Some(tx) = &self.unpack {
            if tx.send(buf.to_vec()).is_err() {
                self.unpack = None;
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.blob.flush()
    }
}

/// The receiving end as a byte stream (ends when the sender is dropped).
struct ChannelReader {
    chunks: std::sync::mpsc::Receiver<Vec<u8>>,
    current: Vec<u8>,
    at: usize,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.current.len() {
            match self.chunks.recv() {
                Ok(chunk) => {
                    self.current = chunk;
                    self.at = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len() - self.at);
        buf[..n].copy_from_slice(&self.current[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}
