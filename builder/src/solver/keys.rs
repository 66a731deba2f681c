//! Cache keys and records: key = blake3(vertex digest, input keys, context content hash);
//! record = the vertex's layer stack, valid while every layer is still in the store.

use crate::store::{ensure_snapshot, get_image, LayerRecord, StoreError};
use cache::Root;
use graph::Vertex;

pub(super) fn source_key(v: &Vertex) -> String {
    format!("source/{}", v.digest)
}

pub(super) fn vertex_key(v: &Vertex, inputs: &[&str], context: Option<&str>) -> String {
    let mut h = blake3::Hasher::new();
    h.update(b"pallet.cache.v1\0");
    h.update(v.digest.as_bytes());
    for i in inputs {
        h.update(b"\0input\0");
        h.update(i.as_bytes());
    }
    if let Some(c) = context {
        h.update(b"\0context\0");
        h.update(c.as_bytes());
    }
    format!("step/blake3:{}", h.finalize().to_hex())
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Record {
    layers: Vec<LayerRecord>,
}

/// A cached result whose layers can all be found (snapshots re-unpacked from blobs if gone).
pub(super) fn lookup(root: &Root, key: &str) -> Result<Option<Vec<LayerRecord>>, StoreError> {
    let Some(bytes) = root.index.get_cache(key)? else {
        return Ok(None);
    };
    let Ok(record) = serde_json::from_slice::<Record>(&bytes) else {
        return Ok(None);
    };
    let mut layers = record.layers;
    for l in &mut layers {
        if !crate::store::layer_forms::has_layer(root, &l.diff_id) {
            return Ok(None);
        }
        ensure_snapshot(root, &l.diff_id)?;
        if l.created.is_none() {
            // A record from before layers kept their time: the blob's is as stable.
            l.created = blob_time(root, &l.diff_id);
        }
    }
    Ok(Some(layers))
}

/// When a layer was stored (RFC 3339), from its blob's mtime.
fn blob_time(root: &Root, diff_id: &str) -> Option<String> {
    crate::store::created_at(crate::store::layer_forms::stored_at(root, diff_id)?)
}

pub(super) fn record(root: &Root, key: &str, layers: &[LayerRecord]) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec(&Record {
        layers: layers.to_vec(),
    })
    .expect("record serializes");
    root.index.put_cache(key, &bytes)?;
    Ok(())
}

/// The layers of a local image (FROM / COPY --from an image), pinned digest checked.
pub(super) fn image_layers(root: &Root, reference: &str) -> Result<Vec<LayerRecord>, String> {
    // `name:tag@manifest` or `name@index@manifest`: the pin is after the last '@'.
    let (name, pinned) = match reference.rsplit_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (reference, None),
    };
    let image = get_image(root, name).map_err(|e| e.to_string())?.ok_or_else(|| {
        format!("image {name} is not in the local store (removed during the build?): pull it with `pallet pull {name}` or build again")
    })?;
    if let Some(d) = pinned {
        if d != image.manifest_digest {
            return Err(format!(
                "image {name} changed during the build (expected {d}, found {}): build again",
                image.manifest_digest
            ));
        }
    }
    let mut layers = Vec::new();
    for diff_id in &image.layers {
        let size = crate::store::layer_forms::layer_size(root, diff_id).map_err(|_| {
            format!("layer {diff_id} of {name} is missing from the store: pull or import the image again")
        })?;
        ensure_snapshot(root, diff_id).map_err(|e| e.to_string())?;
        layers.push(LayerRecord {
            diff_id: diff_id.clone(),
            size,
            created: None,
        });
    }
    Ok(layers)
}
