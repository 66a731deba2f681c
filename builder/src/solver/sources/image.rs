//! The image source: a stored image's layers (FROM, COPY --from an image), its pinned manifest
//! checked against the store (an image re-tagged during the build is an error, not a silent
//! switch), each layer's snapshot unpacked if it is gone.

use super::SourceError;
use crate::store::{ensure_snapshot, get_image, has_layer, layer_size, LayerRecord};
use cache::Root;

/// The layers of a local image (FROM / COPY --from an image), pinned digest checked.
pub(super) fn layers(root: &Root, reference: &str) -> Result<Vec<LayerRecord>, SourceError> {
    // `name:tag@manifest` or `name@index@manifest`: the pin is after the last '@'.
    let (name, pinned) = match reference.rsplit_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (reference, None),
    };
    let image = get_image(root, name)?.ok_or_else(|| SourceError::ImageNotStored {
        name: name.to_string(),
    })?;
    // A multi-platform image: the pin names one of its platforms' manifests.
    let image = match (&image.index, pinned) {
        (Some(index), Some(d)) => index
            .children
            .iter()
            .find(|c| c.manifest_digest == d)
            .cloned()
            .unwrap_or(image),
        _ => image,
    };
    if let Some(d) = pinned {
        if d != image.manifest_digest {
            return Err(SourceError::ImageChanged {
                name: name.to_string(),
                expected: d.to_string(),
                found: image.manifest_digest,
            });
        }
    }
    let mut layers = Vec::new();
    for diff_id in &image.layers {
        // The store's own words ("missing ...: pull or rebuild") would not name the image.
        let size = layer_size(root, diff_id).map_err(|_| SourceError::LayerMissing {
            diff_id: diff_id.clone(),
            name: name.to_string(),
        })?;
        // A layer known only by a remote descriptor (a lazy pull) is fetched by the first
        // step that runs on it.
        if has_layer(root, diff_id) {
            ensure_snapshot(root, diff_id)?;
        }
        layers.push(LayerRecord {
            diff_id: diff_id.clone(),
            size,
            created: None,
        });
    }
    Ok(layers)
}
