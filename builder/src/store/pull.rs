//! Pulling an image from a registry into the store: resolve the reference (index -> the
//! platform's manifest -> config), download the layers a few at a time, each streamed once into
//! its compressed blob (digest checked by the registry client and by the blob writer) and,
//! through a decompressor, hashed (checked against the config's diff id) and unpacked as a
//! snapshot with the usual safety rules. The compressed blob is kept and
//! remembered as the layer's export form, so pushing an image built on this base uploads or
//! mounts the very blobs the registry already has.

use super::layer_forms;
use super::layers::{ensure_snapshot, publish_dir, snapshot_path, tempdir_in};
use super::remote_forms::{record_remote, RemoteLayer, RemoteSource};
use super::{
    durability, get_image, image_platform, put_image, put_index, remember, short_digest,
    StoreError, StoredImage,
};
use crate::events::Event;
use crate::fill::fill;
use crate::snapshot::{unpack_layer, UnpackOptions};
use cache::{BlobInfo, Root};
use codec::{decompressor, Codec, CodecError, Compression};
use graph::image::Image;
use graph::Platform;
use registry::manifest::{Descriptor, ImageManifest};
use registry::pull::ResolvedImage;
use registry::{Client, Reference};
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Layers downloaded at once (docker's default is 3).
const PULL_CONCURRENCY: usize = 3;
/// Chunks in flight between a download, its decoder and its unpacker (bounded memory).
const UNPACK_QUEUE: usize = 64;
/// Bytes of decompressed tar per chunk passed to the unpacker.
const DECODE_CHUNK: usize = 256 * 1024;

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
    let (resolved, config) = resolve_with_config(client, reference, platform)?;
    let layers = &resolved.manifest.layers;
    if layers.len() != config.rootfs.diff_ids.len() {
        return Err(StoreError::Layer(format!(
            "pulling {reference}: the manifest lists {} layers but the config {} diff ids",
            layers.len(),
            config.rootfs.diff_ids.len()
        )));
    }
    let repository =
        Reference::parse(&reference.name()).map_err(|source| StoreError::Reference {
            what: format!("pulling {reference}"),
            source,
        })?;
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
    record_pulled(root, reference, &resolved, config, &source)
}

/// The manifest and config `reference` resolves to for `platform`, the config parsed.
fn resolve_with_config(
    client: &Client,
    reference: &Reference,
    platform: &Platform,
) -> Result<(ResolvedImage, Image), StoreError> {
    let resolved = registry::pull::resolve(client, reference, &registry_platform(platform))
        .map_err(StoreError::registry(format!("pulling {reference}")))?;
    let config: Image =
        serde_json::from_slice(&resolved.config_bytes).map_err(|source| StoreError::Json {
            what: format!(
                "pulling {reference}: the image config {} is not valid JSON",
                resolved.manifest.config.digest
            ),
            source,
        })?;
    Ok((resolved, config))
}

/// Stores a pulled image's config and manifest (the config's source remembered for pushes)
/// and tags it ([`store_pulled`]).
fn record_pulled(
    root: &Root,
    reference: &Reference,
    resolved: &ResolvedImage,
    config: Image,
    source: &str,
) -> Result<StoredImage, StoreError> {
    let config_blob = root.blobs.put_bytes(&resolved.config_bytes)?;
    root.blobs.put_bytes(&resolved.manifest_bytes)?;
    root.index.set_blob_source(&config_blob.digest, source)?;
    let image = StoredImage {
        name: store_name(reference),
        manifest_digest: resolved.manifest_digest.clone(),
        config_digest: config_blob.digest,
        layers: config.rootfs.diff_ids.clone(),
        config,
        repo_digest: Some(resolved.digest.clone()),
        index: None,
        attestations: Vec::new(),
    };
    store_pulled(root, image)
}

/// Tags a pulled image. Another platform of the same remote index (a multi-platform build
/// pulls each): the tag becomes a multi-platform image holding both, so the platform pulled
/// first stays.
fn store_pulled(root: &Root, image: StoredImage) -> Result<StoredImage, StoreError> {
    if let Some(before) = get_image(root, &image.name)? {
        if before.repo_digest == image.repo_digest
            && image_platform(&before) != image_platform(&image)
        {
            let mut children: Vec<StoredImage> = match before.index {
                Some(index) => index.children,
                None => vec![before],
            };
            children.retain(|c| image_platform(c) != image_platform(&image));
            children.push(image.clone());
            put_index(root, &image.name, children, &host_platform())?;
            return Ok(image);
        }
    }
    put_image(root, &image)?;
    Ok(image)
}

/// The platform pallet runs on, as the store records it (the record of a multi-platform image
/// shows this one by default).
fn host_platform() -> Platform {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    Platform {
        os: "linux".into(),
        architecture: arch.into(),
        variant: String::new(),
    }
}

/// Pulls `reference`'s manifest and config only, when a build cache knows the uncompressed
/// size of every layer the store lacks (`diff_sizes`, by diff id): those layers are recorded
/// by descriptor (`remote_forms`), fetched only if a step needs their files. Ok(None): some
/// layer is unknown to the cache (or of a codec a push could not reuse): pull it as usual.
pub fn pull_image_lazy(
    root: &Root,
    client: &Client,
    reference: &Reference,
    platform: &Platform,
    diff_sizes: &HashMap<String, u64>,
) -> Result<Option<StoredImage>, StoreError> {
    let (resolved, config) = resolve_with_config(client, reference, platform)?;
    let layers = &resolved.manifest.layers;
    if layers.len() != config.rootfs.diff_ids.len() {
        return Ok(None);
    }
    let mut remote = Vec::new();
    for (layer, diff_id) in layers.iter().zip(&config.rootfs.diff_ids) {
        if layer_forms::has_layer(root, diff_id) {
            continue;
        }
        let Some(&diff_size) = diff_sizes.get(diff_id) else {
            return Ok(None);
        };
        let compression = match Codec::of_media_type(&layer.media_type) {
            Ok(Codec::Gzip) => Compression::default().label(),
            Ok(Codec::Plain) => Compression::Uncompressed.label(),
            _ => return Ok(None),
        };
        remote.push((
            diff_id,
            RemoteLayer {
                blob: layer.digest.to_string(),
                blob_size: layer.size,
                media_type: layer.media_type.clone(),
                compression,
                diff_size,
                source: RemoteSource::Registry {
                    repository: reference.name(),
                },
            },
        ));
    }
    for (diff_id, layer) in &remote {
        record_remote(root, diff_id, layer)?;
    }
    record_pulled(root, reference, &resolved, config, &reference.name()).map(Some)
}

/// One layer: skipped when the store has it already (another image shares it), else
/// downloaded once. Three threads share the work: this one receives the bytes into the
/// compressed blob, a second decompresses and hashes them (the diff id check), a third unpacks
/// the tar as the snapshot, published once the diff id checks. The uncompressed tar is not
/// stored: the compressed blob stands for it ([`super::layer_forms`]). A plain-tar layer is
/// its own diff blob.
pub(super) fn pull_layer(
    root: &Root,
    client: &Client,
    repository: &Reference,
    layer: &Descriptor,
    diff_id: &str,
    progress: &PullProgress<'_>,
    source: &str,
) -> Result<(), StoreError> {
    let item = short_digest(&layer.digest);
    let plain = is_plain_tar(&layer.media_type);
    let have_compressed = plain || root.blobs.contains(&layer.digest);
    if !(layer_forms::has_layer(root, diff_id) && have_compressed) {
        let compressed = root.blobs.writer()?;
        let unpack = !snapshot_path(root, diff_id).is_dir();
        let report = |done: u64| {
            (progress.events)(Event::Transfer {
                name: progress.name.clone(),
                item: item.clone(),
                done,
                total: Some(layer.size),
            })
        };
        // Compressed chunks to the decoder, decompressed chunks to the unpacker: bounded
        // queues, so memory does not grow with the layer.
        let (to_decoder, from_fetch) = std::sync::mpsc::sync_channel::<Vec<u8>>(UNPACK_QUEUE);
        let (to_unpacker, from_decoder) = std::sync::mpsc::sync_channel::<Vec<u8>>(UNPACK_QUEUE);
        let media_type = layer.media_type.as_str();
        let (fetched, decoded, consumed) = std::thread::scope(|threads| {
            let decoder = threads.spawn(move || decode(media_type, from_fetch, to_unpacker));
            let consumer = threads.spawn(move || consume(root, from_decoder, unpack));
            let mut sink = Tee {
                compressed,
                decoder: Some(to_decoder),
            };
            // The blob writer's sha256 is the download's digest check (one hash, not two).
            let fetched = client
                .fetch_blob_hashed(repository, layer, &mut sink, &report)
                .map_err(StoreError::registry(format!("pulling {repository}")));
            let Tee {
                compressed,
                decoder: to_decoder,
            } = sink;
            // Closing the decoder's channel is its end of input.
            drop(to_decoder);
            let decoded = decoder.join().unwrap_or(Err(DecodeError::Panicked));
            let consumed = consumer.join().expect("the unpacker does not panic");
            (fetched.map(|()| compressed), decoded, consumed)
        });
        let compressed = fetched?;
        decoded.map_err(|e| e.in_layer(format!("layer {} of {repository}", layer.digest)))?;
        let Consumed {
            digest,
            size: diff_size,
            unpacked,
        } = consumed;
        if digest != diff_id {
            return Err(StoreError::Layer(format!(
                "layer {} of {repository} does not match its diff id {diff_id}: it decompresses to {digest}; the registry's image is inconsistent",
                layer.digest
            )));
        }
        // Unsynced (the disk writes ~200 MB/s): marked, and re-hashed after a restart.
        let mark = |info: &BlobInfo| durability::mark(&root.path, &info.digest);
        if plain {
            compressed.commit_expect_unsynced(diff_id, mark)?;
        } else {
            let info = compressed.commit_expect_unsynced(&layer.digest, mark)?;
            if !root.blobs.contains(diff_id) {
                let form = layer_forms::LayerForm {
                    blob: info.digest.clone(),
                    blob_size: info.size,
                    media_type: layer.media_type.clone(),
                    diff_size,
                };
                layer_forms::record_form(root, diff_id, &form)?;
            }
            remember_compressed(root, diff_id, &layer.media_type, &info)?;
        }
        // The diff id checked: what was unpacked from the same bytes is the snapshot.
        if let Some(tmp) = unpacked {
            durability::mark_unsynced(root, diff_id)?;
            publish_dir(tmp, &snapshot_path(root, diff_id))?;
        }
    }
    if !plain {
        root.index.set_blob_source(&layer.digest, source)?;
    }
    ensure_snapshot(root, diff_id)?;
    Ok(())
}

/// Why the decoder thread stopped.
enum DecodeError {
    Codec(CodecError),
    /// The stream is not what its media type says.
    Corrupt(io::Error),
    UnpackerStopped,
    Panicked,
}

impl DecodeError {
    /// The store's error for layer `what` (`layer DIGEST of REPOSITORY`).
    fn in_layer(self, what: String) -> StoreError {
        match self {
            DecodeError::Codec(source) => StoreError::Codec { what, source },
            DecodeError::Corrupt(source) => StoreError::Io {
                what: format!("{what}: it does not decompress"),
                source,
            },
            DecodeError::UnpackerStopped => {
                StoreError::Layer(format!("{what}: the unpacker stopped"))
            }
            DecodeError::Panicked => StoreError::Layer(format!("{what}: the decoder panicked")),
        }
    }
}

/// The decoder thread: decompresses what the download sends and passes it on in chunks.
/// (Decompressing is the pull's longest job: hashing is left to the unpacker's thread.)
fn decode(
    media_type: &str,
    compressed: std::sync::mpsc::Receiver<Vec<u8>>,
    unpacker: std::sync::mpsc::SyncSender<Vec<u8>>,
) -> Result<(), DecodeError> {
    let mut tar =
        decompressor(media_type, ChannelReader::new(compressed)).map_err(DecodeError::Codec)?;
    loop {
        let mut chunk = vec![0u8; DECODE_CHUNK];
        // Whole chunks: fewer, larger sends; the unpacker writes whole pages.
        let len = fill(&mut tar, &mut chunk).map_err(DecodeError::Corrupt)?;
        if len == 0 {
            break;
        }
        chunk.truncate(len);
        if unpacker.send(chunk).is_err() {
            return Err(DecodeError::UnpackerStopped);
        }
    }
    Ok(())
}

/// What the unpacker's thread makes of the decompressed stream.
struct Consumed {
    /// sha256 and length of the whole stream (the diff id to check).
    digest: String,
    size: u64,
    /// The snapshot unpacked from it, when asked for and the tar unpacked.
    unpacked: Option<tempfile::TempDir>,
}

/// The unpacker's thread: hashes every chunk and, with `unpack`, unpacks the tar into a temp
/// dir (published by the caller once the digest checks). An unpacking error only means
/// unpacking again from the stored blob later, which reports it; the rest of the stream is
/// still hashed.
fn consume(root: &Root, chunks: std::sync::mpsc::Receiver<Vec<u8>>, unpack: bool) -> Consumed {
    use sha2::Digest;
    let mut input = HashingReader {
        inner: ChannelReader::new(chunks),
        hasher: sha2::Sha256::new(),
        size: 0,
    };
    let unpacked = unpack
        .then(|| {
            let tmp = tempdir_in(&root.tmp_dir()).ok()?;
            let opts = UnpackOptions {
                overlay_whiteouts: true,
                same_owner: true,
                ..UnpackOptions::default()
            };
            unpack_layer(&mut input, tmp.path(), &opts).ok()?;
            Some(tmp)
        })
        .flatten();
    // The tar's end padding, or all of it when not unpacking.
    let _ = io::copy(&mut input, &mut io::sink());
    Consumed {
        digest: format!("sha256:{:x}", input.hasher.finalize()),
        size: input.size,
        unpacked,
    }
}

/// Hashes and counts what is read through it.
struct HashingReader<R> {
    inner: R,
    hasher: sha2::Sha256,
    size: u64,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use sha2::Digest;
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
}

/// Records a pulled gzip blob as the layer's default-gzip form, so an export or push reuses it
/// instead of compressing again. zstd levels are unknown from a blob: not remembered.
fn remember_compressed(
    root: &Root,
    diff_id: &str,
    media_type: &str,
    info: &BlobInfo,
) -> Result<(), StoreError> {
    if matches!(Codec::of_media_type(media_type), Ok(Codec::Gzip)) {
        remember(root, diff_id, &Compression::default(), info)?;
    }
    Ok(())
}

/// The compressed layers of an image's own manifest that the store holds: (diff id, blob, media
/// type). Empty for built and imported images (their manifests list uncompressed diffs).
pub(super) fn compressed_layers(root: &Root, img: &StoredImage) -> Vec<(String, BlobInfo, String)> {
    let Ok(bytes) = root.blobs.read(&img.manifest_digest) else {
        return Vec::new();
    };
    let Ok(manifest) = serde_json::from_slice::<ImageManifest>(&bytes) else {
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
            let blob = BlobInfo {
                digest: l.digest.to_string(),
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

/// Writes every byte to the compressed blob and, as a chunk, to the decoder thread (dropped if
/// that thread stopped reading: its error is reported).
struct Tee {
    compressed: cache::BlobWriter,
    decoder: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
}

impl Write for Tee {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.compressed.write_all(buf)?;
        if let Some(tx) = &self.decoder {
            if tx.send(buf.to_vec()).is_err() {
                self.decoder = None;
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.compressed.flush()
    }
}

impl registry::HashingSink for Tee {
    fn sha256_so_far(&self) -> String {
        self.compressed.sha256_so_far()
    }
}

/// The receiving end of a chunk channel as a byte stream (ends when the sender is dropped).
struct ChannelReader {
    chunks: std::sync::mpsc::Receiver<Vec<u8>>,
    current: Vec<u8>,
    at: usize,
}

impl ChannelReader {
    fn new(chunks: std::sync::mpsc::Receiver<Vec<u8>>) -> ChannelReader {
        ChannelReader {
            chunks,
            current: Vec::new(),
            at: 0,
        }
    }
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
