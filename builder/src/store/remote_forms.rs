//! Layers whose bytes are somewhere else: a remote build cache (a registry repository or an
//! OCI layout directory) answered a step, and the store knows each layer by descriptor
//! (compressed blob digest, size, media type, the diff id and size it decompresses to) without
//! holding it. Such a layer is not "in the store" ([`super::has_layer`] stays false): pushing
//! it HEADs or mounts the blob where it is, and its bytes are fetched ([`fetch_remote`]) only
//! when something needs its files (a step runs on top, an output writes it).
//!
//! Crash safety: a record is only a hint kept in the index under `remote/<diff id>`; the blob
//! arrives through the blob writer (digest checked, renamed into place), and the layer's form
//! record is written after that. A build killed mid-fetch leaves a temp file in tmp/ (swept as
//! any other) and a store that still says "remote".

use super::layer_forms::{self, LayerForm};
use super::{compressed, durability, StoreError};
use crate::events::Event;
use cache::{BlobInfo, Root};
use codec::Codec;
use registry::manifest::Descriptor;
use registry::{Client, Reference};
use std::io::{self, Write};
use std::path::PathBuf;

/// Where the blob of a remote layer is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RemoteSource {
    /// A repository (`registry.example/team/cache`), read with the build's registry client.
    Registry { repository: String },
    /// An OCI image layout directory (`--cache-from type=local,src=DIR`).
    Layout { dir: PathBuf },
}

impl std::fmt::Display for RemoteSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RemoteSource::Registry { repository } => write!(f, "{repository}"),
            RemoteSource::Layout { dir } => write!(f, "{}", dir.display()),
        }
    }
}

/// A layer known by its compressed blob somewhere else.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RemoteLayer {
    pub blob: String,
    pub blob_size: u64,
    pub media_type: String,
    /// The compression's label (`gzip`, `zstd-3`, `none`): which export form it stands for.
    pub compression: String,
    /// Bytes of the uncompressed tar.
    pub diff_size: u64,
    pub source: RemoteSource,
}

fn key(diff_id: &str) -> String {
    format!("remote/{diff_id}")
}

/// Records that `diff_id` can be fetched as `layer` (also when the store holds the layer: a
/// push or export in the remote's compression then HEADs or mounts its blob instead of
/// compressing the layer again).
pub fn record_remote(root: &Root, diff_id: &str, layer: &RemoteLayer) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec(layer).expect("a remote layer serializes");
    if root.index.get_cache(&key(diff_id))?.as_deref() != Some(bytes.as_slice()) {
        root.index.put_cache(&key(diff_id), &bytes)?;
    }
    if let RemoteSource::Registry { repository } = &layer.source {
        // A push to the same registry offers it as a cross-repository mount source.
        if root.index.blob_source(&layer.blob)?.is_none() {
            root.index.set_blob_source(&layer.blob, repository)?;
        }
    }
    Ok(())
}

/// The remote record of a layer the store does not hold.
pub fn remote_layer(root: &Root, diff_id: &str) -> Option<RemoteLayer> {
    let bytes = root.index.get_cache(&key(diff_id)).ok()??;
    serde_json::from_slice(&bytes).ok()
}

/// The remote blob standing for `diff_id` compressed with label `compression`, when the store
/// lacks the layer's own (for manifests and pushes: only its digest and size matter).
pub(super) fn remote_form(root: &Root, diff_id: &str, compression: &str) -> Option<BlobInfo> {
    let r = remote_layer(root, diff_id)?;
    let usable = match &r.source {
        RemoteSource::Registry { .. } => true,
        RemoteSource::Layout { dir } => dir.is_dir(),
    };
    if !usable {
        return None;
    }
    (r.compression == compression && !root.blobs.contains(&r.blob)).then_some(BlobInfo {
        digest: r.blob,
        size: r.blob_size,
    })
}

/// Brings a remote layer's bytes into the store (its blob, recorded as the layer's form; the
/// snapshot is unpacked when a step needs it). Ok(false): the store had it already.
pub fn fetch_remote(
    root: &Root,
    client: Option<&Client>,
    diff_id: &str,
    events: &(dyn Fn(Event) + Sync),
) -> Result<bool, StoreError> {
    if layer_forms::has_layer(root, diff_id) {
        return Ok(false);
    }
    let Some(remote) = remote_layer(root, diff_id) else {
        return fetch_remote_blob(root, client, diff_id, events);
    };
    let RemoteSource::Registry { repository } = &remote.source else {
        return fetch_remote_blob(root, client, diff_id, events);
    };
    // From a registry: downloaded, decompressed and unpacked at once, as a pull does.
    let client = client.ok_or_else(|| no_client(&remote.blob, repository))?;
    let repo = repository_ref(repository)?;
    let descriptor = descriptor(&remote, repository)?;
    let name = format!("[internal] fetch layer {}", super::short_digest(diff_id));
    events(Event::Started { name: name.clone() });
    let started = std::time::Instant::now();
    let progress = super::PullProgress {
        name: name.clone(),
        events,
    };
    let result = super::pull::pull_layer(
        root,
        client,
        &repo,
        &descriptor,
        diff_id,
        &progress,
        repository,
    );
    match &result {
        Ok(()) => events(Event::Done {
            name,
            seconds: started.elapsed().as_secs_f64(),
        }),
        Err(e) => events(Event::Failed {
            name,
            message: e.to_string(),
        }),
    }
    result?;
    if !matches!(Codec::of_media_type(&remote.media_type), Ok(Codec::Plain)) {
        let info = BlobInfo {
            digest: remote.blob.clone(),
            size: remote.blob_size,
        };
        compressed::remember_label(root, diff_id, &remote.compression, &info)?;
    }
    Ok(true)
}

fn no_client(blob: &str, repository: &str) -> StoreError {
    StoreError::Layer(format!(
        "layer blob {blob} is in {repository}, and no registry client is configured"
    ))
}

fn repository_ref(repository: &str) -> Result<Reference, StoreError> {
    Reference::parse(repository).map_err(|source| StoreError::Reference {
        what: format!("the cache repository {repository}"),
        source,
    })
}

fn descriptor(remote: &RemoteLayer, repository: &str) -> Result<Descriptor, StoreError> {
    Ok(Descriptor {
        media_type: remote.media_type.clone(),
        digest: registry::Digest::parse(&remote.blob).map_err(|source| StoreError::Digest {
            what: format!("a layer of {repository}"),
            source,
        })?,
        size: remote.blob_size,
        platform: None,
        annotations: None,
    })
}

/// Brings a remote layer's blob into the store (whether or not the store has the layer in
/// another form): what a push or export reads when it must upload it. Ok(false): it was here.
pub fn fetch_remote_blob(
    root: &Root,
    client: Option<&Client>,
    diff_id: &str,
    events: &(dyn Fn(Event) + Sync),
) -> Result<bool, StoreError> {
    let Some(remote) = remote_layer(root, diff_id) else {
        return Err(StoreError::Layer(format!(
            "layer {diff_id} is missing from the store; pull or rebuild the image that has it"
        )));
    };
    if root.blobs.contains(&remote.blob) {
        return Ok(false);
    }
    let name = format!("[internal] fetch layer {}", super::short_digest(diff_id));
    events(Event::Started { name: name.clone() });
    let started = std::time::Instant::now();
    let result = fetch_blob(root, client, &remote, "layer blob", &name, events);
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
    let info = result?;
    let plain = matches!(Codec::of_media_type(&remote.media_type), Ok(Codec::Plain));
    if plain {
        if info.digest != diff_id {
            return Err(StoreError::Layer(format!(
                "layer {diff_id} from {}: its uncompressed blob is {}",
                remote.source, info.digest
            )));
        }
    } else if !layer_forms::has_layer(root, diff_id) {
        let form = LayerForm {
            blob: info.digest.clone(),
            blob_size: info.size,
            media_type: remote.media_type.clone(),
            diff_size: remote.diff_size,
        };
        layer_forms::record_form(root, diff_id, &form)?;
    }
    if !plain {
        compressed::remember_label(root, diff_id, &remote.compression, &info)?;
    }
    Ok(true)
}

/// The bytes of a layer's path index blob (`digest`, `size`) at `source`, fetched into the
/// store once (digest checked; at most [`super::path_index::BLOB_LIMIT`] bytes).
pub fn fetch_path_index(
    root: &Root,
    client: Option<&Client>,
    source: &RemoteSource,
    digest: &str,
    size: u64,
) -> Result<Vec<u8>, StoreError> {
    if size > super::path_index::BLOB_LIMIT {
        return Err(StoreError::Layer(format!(
            "path index {digest} is {size} bytes, more than the limit"
        )));
    }
    if !root.blobs.contains(digest) {
        let remote = RemoteLayer {
            blob: digest.to_string(),
            blob_size: size,
            media_type: super::path_index::MEDIA_TYPE.to_string(),
            compression: "gzip".into(),
            diff_size: 0,
            source: source.clone(),
        };
        fetch_blob(
            root,
            client,
            &remote,
            "path index",
            "[internal] fetch path index",
            &|_| {},
        )?;
    }
    let path = root.blobs.path(digest)?;
    std::fs::read(&path).map_err(|source| StoreError::Io {
        what: format!("reading path index {}", path.display()),
        source,
    })
}

/// The blob of `remote`, into the store (digest checked).
fn fetch_blob(
    root: &Root,
    client: Option<&Client>,
    remote: &RemoteLayer,
    kind: &str,
    name: &str,
    events: &(dyn Fn(Event) + Sync),
) -> Result<BlobInfo, StoreError> {
    let mark = |info: &BlobInfo| durability::mark(&root.path, &info.digest);
    let mut writer = root.blobs.writer()?;
    match &remote.source {
        RemoteSource::Registry { repository } => {
            let client = client.ok_or_else(|| no_client(&remote.blob, repository))?;
            let repo = repository_ref(repository)?;
            let descriptor = descriptor(remote, repository)?;
            let item = super::short_digest(&remote.blob);
            let report = |done: u64| {
                events(Event::Transfer {
                    name: name.to_string(),
                    item: item.clone(),
                    done,
                    total: Some(remote.blob_size),
                })
            };
            let mut sink = Sink(&mut writer);
            client
                .fetch_blob_hashed(&repo, &descriptor, &mut sink, &report)
                .map_err(StoreError::registry(format!(
                    "fetching a {kind} from {repository}"
                )))?;
        }
        RemoteSource::Layout { dir } => {
            let path = layout_blob_path(dir, &remote.blob)?;
            let mut file = std::fs::File::open(&path).map_err(|source| StoreError::Io {
                what: format!("reading layer blob {}", path.display()),
                source,
            })?;
            io::copy(&mut file, &mut writer).map_err(|source| StoreError::Io {
                what: format!("copying layer blob {}", path.display()),
                source,
            })?;
        }
    }
    writer
        .commit_expect_unsynced(&remote.blob, mark)
        .map_err(|source| StoreError::Blob {
            what: format!(
                "{kind} {} from {} does not match its digest",
                remote.blob, remote.source
            ),
            source,
        })
}

/// `DIR/blobs/<algorithm>/<hex>` for a validated digest (nothing outside DIR).
pub fn layout_blob_path(dir: &std::path::Path, digest: &str) -> Result<PathBuf, StoreError> {
    let d = registry::Digest::parse(digest).map_err(|source| StoreError::Digest {
        what: format!("a blob of {}", dir.display()),
        source,
    })?;
    let (algorithm, hex) = d
        .as_str()
        .split_once(':')
        .expect("a valid digest has a colon");
    Ok(dir.join("blobs").join(algorithm).join(hex))
}

/// A blob writer as the registry client's hashing sink.
struct Sink<'a>(&'a mut cache::BlobWriter);

impl Write for Sink<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl registry::HashingSink for Sink<'_> {
    fn sha256_so_far(&self) -> String {
        self.0.sha256_so_far()
    }
}
