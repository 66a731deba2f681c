//! A layer's uncompressed tar as the store keeps it. Built and imported layers have their diff
//! blob (digest = diff id). A pulled layer keeps only the compressed blob the registry sent:
//! the index's layer-form record names it, and its tar is that blob decompressed on demand,
//! checked against the diff id as it streams. Without this a pulled base sat on disk three
//! times (compressed, uncompressed, unpacked); the uncompressed copy of a CUDA base alone is
//! gigabytes, and writing it was an eighth of a pull's CPU.
//!
//! Everything that needs a layer's tar, its size or just its presence asks here, never
//! `blobs` by diff id.

use super::StoreError;
use cache::Root;
use codec::decompressor;
use sha2::Digest;
use std::collections::HashSet;
use std::io::{self, Read};

/// The compressed blob that stands for a layer's diff.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LayerForm {
    /// The compressed blob's digest and size, and its media type (which codec).
    pub blob: String,
    pub blob_size: u64,
    pub media_type: String,
    /// Bytes of the uncompressed tar.
    pub diff_size: u64,
}

/// Records that `diff_id`'s tar is kept only as `form`'s blob.
pub fn record_form(root: &Root, diff_id: &str, form: &LayerForm) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec(form).expect("a layer form serializes");
    Ok(root.index.put_layer_form(diff_id, &bytes)?)
}

/// The layer's compressed form, when that is how the store keeps it and the blob is here.
fn form(root: &Root, diff_id: &str) -> Option<LayerForm> {
    recorded_form(root, diff_id).filter(|f| root.blobs.contains(&f.blob))
}

/// The layer's form record, whether or not its blob is still here.
fn recorded_form(root: &Root, diff_id: &str) -> Option<LayerForm> {
    let bytes = root.index.layer_form(diff_id).ok()??;
    serde_json::from_slice(&bytes).ok()
}

/// Whether the store can give this layer's tar.
pub fn has_layer(root: &Root, diff_id: &str) -> bool {
    root.blobs.contains(diff_id) || form(root, diff_id).is_some()
}

fn missing(root: &Root, diff_id: &str) -> StoreError {
    if let Some(remote) = super::remote_forms::remote_layer(root, diff_id) {
        return StoreError::Layer(format!(
            "layer {diff_id} is in the build cache at {} and not fetched into the store; \
             build again with that --cache-from (or pull or rebuild the image that has it)",
            remote.source
        ));
    }
    StoreError::Layer(format!(
        "layer {diff_id} is missing from the store; pull or rebuild the image that has it"
    ))
}

/// Bytes of the layer's uncompressed tar.
pub fn layer_size(root: &Root, diff_id: &str) -> Result<u64, StoreError> {
    let blob = root.blobs.path(diff_id).ok();
    if let Some(meta) = blob.and_then(|p| std::fs::metadata(p).ok()) {
        return Ok(meta.len());
    }
    form(root, diff_id)
        .map(|f| f.diff_size)
        .or_else(|| super::remote_forms::remote_layer(root, diff_id).map(|r| r.diff_size))
        .ok_or_else(|| missing(root, diff_id))
}

/// When the layer's bytes were stored (its diff blob's, else its compressed blob's mtime).
pub fn stored_at(root: &Root, diff_id: &str) -> Option<std::time::SystemTime> {
    let digest = match root.blobs.contains(diff_id) {
        true => diff_id.to_string(),
        false => form(root, diff_id)?.blob,
    };
    std::fs::metadata(root.blobs.path(&digest).ok()?)
        .ok()?
        .modified()
        .ok()
}

/// The layer's uncompressed tar. The stream fails at its end if it does not hash to the diff
/// id (or is not as long as recorded): a damaged diff blob or compressed form is never
/// compressed, exported or pushed as if it were the layer.
pub fn open_layer(root: &Root, diff_id: &str) -> Result<Box<dyn Read + Send>, StoreError> {
    if root.blobs.contains(diff_id) {
        let file = root.blobs.open(diff_id)?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        return Ok(Box::new(Checked {
            inner: Box::new(file),
            hasher: sha2::Sha256::new(),
            read: 0,
            diff_id: diff_id.to_string(),
            size,
            source: "diff blob",
        }));
    }
    let form = form(root, diff_id).ok_or_else(|| missing(root, diff_id))?;
    let blob = root.blobs.open(&form.blob)?;
    let tar = decompressor(&form.media_type, blob).map_err(|source| StoreError::Codec {
        what: format!("layer {diff_id} ({})", form.blob),
        source,
    })?;
    Ok(Box::new(Checked {
        inner: tar,
        hasher: sha2::Sha256::new(),
        read: 0,
        diff_id: diff_id.to_string(),
        size: form.diff_size,
        source: "compressed form",
    }))
}

/// Reads what an unpacker left of [`open_layer`]'s stream (a tar's end padding), so that a
/// compressed form's digest check runs.
pub fn finish_layer(tar: &mut dyn Read, diff_id: &str) -> Result<(), StoreError> {
    io::copy(tar, &mut io::sink())
        .map(drop)
        .map_err(|source| StoreError::Io {
            what: format!("reading layer {diff_id}"),
            source,
        })
}

/// Writes the layer's diff blob if the store keeps only a compressed form (for exports of
/// uncompressed layers, which hand out the blob file itself).
pub fn ensure_diff_blob(root: &Root, diff_id: &str) -> Result<(), StoreError> {
    if root.blobs.contains(diff_id) {
        return Ok(());
    }
    let mut tar = open_layer(root, diff_id)?;
    let mut writer = root.blobs.writer()?;
    io::copy(&mut tar, &mut writer).map_err(|source| StoreError::Io {
        what: format!("decompressing layer {diff_id}"),
        source,
    })?;
    writer
        .commit_expect(diff_id)
        .map_err(|source| StoreError::Blob {
            what: format!("layer {diff_id} does not match its diff id"),
            source,
        })?;
    Ok(())
}

/// Drops the form records of layers `keep` does not name or whose blob is gone (prune).
pub(super) fn forget_unreferenced(root: &Root, keep: &HashSet<String>) -> Result<(), StoreError> {
    for (diff_id, _) in root.index.list_layer_forms()? {
        if !keep.contains(&diff_id) || form(root, &diff_id).is_none() {
            root.index.delete_layer_form(&diff_id)?;
        }
    }
    Ok(())
}

/// The compressed blobs that stand for `diff_ids` (prune keeps them with the layers).
pub(super) fn form_blobs<'a>(
    root: &'a Root,
    diff_ids: impl Iterator<Item = &'a String> + 'a,
) -> impl Iterator<Item = String> + 'a {
    diff_ids.filter_map(|d| recorded_form(root, d).map(|f| f.blob))
}

/// A layer's tar that checks its length and digest at the end.
struct Checked {
    inner: Box<dyn Read + Send>,
    hasher: sha2::Sha256,
    read: u64,
    diff_id: String,
    size: u64,
    /// What the tar is read from (`diff blob`, `compressed form`), for the error.
    source: &'static str,
}

impl Read for Checked {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.read += n as u64;
        if n == 0 && !buf.is_empty() {
            let digest = format!("sha256:{:x}", self.hasher.clone().finalize());
            if digest != self.diff_id || self.read != self.size {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "layer {} is damaged in the store: its {} reads as {digest} ({} \
                         bytes); run `pallet doctor`, then rebuild it or pull it again",
                        self.diff_id, self.source, self.read
                    ),
                ));
            }
        }
        Ok(n)
    }
}
