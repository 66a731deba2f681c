//! `--output type=local`: the image's final file tree in a plain directory.
//!
//! Applies each stored layer diff in order onto the destination (`snapshot::unpack_layer` with
//! OCI whiteouts turned into removals, owners kept), so the directory holds what a container
//! of the image would see: files deleted by a later step are gone, modes and numeric owners are
//! as built. Like BuildKit's local exporter it writes into an existing directory without
//! emptying it first. Knows layers and directories, not builds or image formats.

use crate::snapshot::{unpack_layer, Privilege, UnpackOptions};
use crate::store::{finish_layer, open_layer, LayerRecord, StoreError};
use cache::Root;
use std::path::Path;

/// Unpacks `layers` (bottom first) onto `dest`, creating it if missing.
pub fn write_local(root: &Root, layers: &[LayerRecord], dest: &Path) -> Result<(), StoreError> {
    std::fs::create_dir_all(dest).map_err(|source| StoreError::Io {
        what: format!(
            "creating the --output directory {} (is it a file, or on a read-only filesystem?)",
            dest.display()
        ),
        source,
    })?;
    // Rootless, the files belong to the user (uid 0 of pallet's namespace), as with docker's
    // rootless local export: owners from the subordinate range would be the user's no longer.
    let privilege = Privilege::of_this_process();
    let opts = UnpackOptions {
        overlay_whiteouts: false,
        same_owner: privilege == Privilege::Root,
        privilege,
    };
    for (i, layer) in layers.iter().enumerate() {
        let mut tar = open_layer(root, &layer.diff_id)?;
        unpack_layer(&mut tar, dest, &opts).map_err(|source| StoreError::Unpack {
            what: format!(
                "applying layer {}/{} ({}) onto {}",
                i + 1,
                layers.len(),
                layer.diff_id,
                dest.display()
            ),
            source,
        })?;
        finish_layer(&mut tar, &layer.diff_id)?;
    }
    Ok(())
}
