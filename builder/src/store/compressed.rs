//! The compressed forms of a stored layer: a layer's diff compressed with one algorithm and
//! level is a blob the index remembers per (diff id, compression), so a second export, push or
//! cache export never compresses again, and a pulled layer's own blob counts as its form.
//! Layers compress in parallel (rayon); the codecs themselves are `codec`'s.

use super::layer_forms::{ensure_diff_blob, open_layer};
use super::{LayerRecord, StoreError};
use cache::{BlobInfo, Root};
use codec::Compression;
use rayon::prelude::*;

/// The index key remembering the blob of `diff_id` compressed as `c`. gzip at the default
/// level keeps the key earlier versions wrote (`compressed/gzip/DIFF`).
fn memo_key(c: &Compression, diff_id: &str) -> String {
    format!("compressed/{}/{diff_id}", c.label())
}

/// Records `blob` as the layer's form under `c`, so exports and pushes reuse it (a pulled
/// layer's own blob is recorded this way too).
pub fn remember(
    root: &Root,
    diff_id: &str,
    c: &Compression,
    blob: &BlobInfo,
) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec(blob).expect("blob info serializes");
    root.index.put_cache(&memo_key(c, diff_id), &bytes)?;
    Ok(())
}

/// Records `blob` as the layer's form under the compression labelled `label` (a blob fetched
/// from a remote cache, which names its compression by label).
pub(super) fn remember_label(
    root: &Root,
    diff_id: &str,
    label: &str,
    blob: &BlobInfo,
) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec(blob).expect("blob info serializes");
    root.index
        .put_cache(&format!("compressed/{label}/{diff_id}"), &bytes)?;
    Ok(())
}

/// The blob an earlier export, push or pull recorded for this layer compressed as `c`, if the
/// store still holds it.
pub fn memoized(
    root: &Root,
    layer: &LayerRecord,
    c: &Compression,
) -> Result<Option<BlobInfo>, StoreError> {
    let Some(bytes) = root.index.get_cache(&memo_key(c, &layer.diff_id))? else {
        return Ok(None);
    };
    Ok(serde_json::from_slice::<BlobInfo>(&bytes)
        .ok()
        .filter(|info| root.blobs.contains(&info.digest)))
}

/// [`memoized`], else, for a layer a remote cache holds in that form, the remote blob (its
/// digest and size only: what a push or a cache export HEADs or mounts; its bytes are
/// fetched only if it must be uploaded, see `remote_forms`). Never for writing files.
pub fn memoized_or_remote(
    root: &Root,
    layer: &LayerRecord,
    c: &Compression,
) -> Result<Option<BlobInfo>, StoreError> {
    if let Some(local) = memoized(root, layer, c)? {
        return Ok(Some(local));
    }
    Ok(super::remote_forms::remote_form(
        root,
        &layer.diff_id,
        &c.label(),
    ))
}

/// The blob of one layer compressed as `c`, compressing it only if no earlier export did.
pub fn compress_layer(
    root: &Root,
    layer: &LayerRecord,
    c: &Compression,
) -> Result<BlobInfo, StoreError> {
    if *c == Compression::Uncompressed {
        // Exports hand out the diff blob itself: a pulled layer's is written now.
        ensure_diff_blob(root, &layer.diff_id)?;
        return Ok(BlobInfo {
            digest: layer.diff_id.clone(),
            size: layer.size,
        });
    }
    if let Some(info) = memoized(root, layer, c)? {
        return Ok(info);
    }
    let mut input = open_layer(root, &layer.diff_id)?;
    let writer = c
        .encode(&mut input, Some(layer.size), root.blobs.writer()?)
        .map_err(|source| StoreError::Io {
            what: format!("compressing layer {} with {c}", layer.diff_id),
            source,
        })?;
    let info = writer.commit()?;
    remember(root, &layer.diff_id, c, &info)?;
    Ok(info)
}

/// Compresses every layer (several at once), reusing blobs earlier exports made.
pub fn compress_layers(
    root: &Root,
    layers: &[LayerRecord],
    c: &Compression,
) -> Result<Vec<BlobInfo>, StoreError> {
    layers
        .par_iter()
        .map(|l| compress_layer(root, l, c))
        .collect()
}

/// Repositories on `target`'s registry that hold `digest` (the source a pull or an earlier push
/// remembered for it), to mount from instead of uploading.
pub fn mount_sources(
    root: &Root,
    digest: &str,
    target: &registry::Reference,
) -> Result<Vec<String>, StoreError> {
    let Some(source) = root.index.blob_source(digest)? else {
        return Ok(Vec::new());
    };
    let Ok(r) = registry::Reference::parse(&source) else {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memo_keys_keep_the_names_earlier_versions_wrote() {
        let d = "sha256:ab";
        assert_eq!(
            memo_key(&Compression::default(), d),
            "compressed/gzip/sha256:ab"
        );
        assert_eq!(
            memo_key(&Compression::Gzip { level: 9 }, d),
            "compressed/gzip-9/sha256:ab"
        );
        assert_eq!(
            memo_key(&Compression::Zstd { level: 3 }, d),
            "compressed/zstd-3/sha256:ab"
        );
        assert_eq!(
            memo_key(&Compression::Uncompressed, d),
            "compressed/none/sha256:ab"
        );
    }
}
