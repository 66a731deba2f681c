//! The image source: a stored image's layers (FROM, COPY --from an image), its pinned manifest
//! checked against the store (an image re-tagged during the build is an error, not a silent
//! switch), each layer's snapshot unpacked if it is gone.

use crate::store::{ensure_snapshot, get_image, layer_size, LayerRecord};
use cache::Root;

/// The layers of a local image (FROM / COPY --from an image), pinned digest checked.
pub(super) fn layers(root: &Root, reference: &str) -> Result<Vec<LayerRecord>, String> {
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
        let size = layer_size(root, diff_id).map_err(|_| {
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
