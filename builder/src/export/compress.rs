//! Layer compression for export: gzip, streamed from the stored diff into the content store
//! (the blob writer hashes the compressed stream as it is written), in parallel across layers
//! (rayon), and remembered per diff id in the index so a second export reuses the blob.

use crate::store::{LayerRecord, StoreError};
use cache::{BlobInfo, Root};
use rayon::prelude::*;
use std::io::copy;

fn memo_key(diff_id: &str) -> String {
    format!("compressed/gzip/{diff_id}")
}

/// The gzip blob of a layer, compressing it only if no earlier export did.
pub fn gzip_layer(root: &Root, layer: &LayerRecord) -> Result<BlobInfo, StoreError> {
    if let Some(bytes) = root.index.get_cache(&memo_key(&layer.diff_id))? {
        if let Ok(info) = serde_json::from_slice::<BlobInfo>(&bytes) {
            if root.blobs.contains(&info.digest) {
                return Ok(info);
            }
        }
    }
    let mut input = root.blobs.open(&layer.diff_id)?;
    let writer = root.blobs.writer()?;
    let mut gz = flate2::write::GzEncoder::new(writer, flate2::Compression::default());
    copy(&mut input, &mut gz).map_err(|e| StoreError::Io {
        what: format!("compressing layer {}", layer.diff_id),
        source: e,
    })?;
    let writer = gz.finish().map_err(|e| StoreError::Io {
        what: format!("compressing layer {}", layer.diff_id),
        source: e,
    })?;
    let info = writer.commit()?;
    root.index.put_cache(
        &memo_key(&layer.diff_id),
        &serde_json::to_vec(&info).expect("blob info serializes"),
    )?;
    Ok(info)
}

/// Compresses every layer, several at once.
pub fn gzip_layers(root: &Root, layers: &[LayerRecord]) -> Result<Vec<BlobInfo>, StoreError> {
    layers.par_iter().map(|l| gzip_layer(root, l)).collect()
}
