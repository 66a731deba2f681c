//! `pallet import ROOTFS.tar -t NAME` (like `docker import`): a root file tree as a one-layer
//! image. The tar (plain or gzip) is unpacked with the layer safety rules, then written back
//! as a normalized layer (sorted, numeric owners), so its diff id does not depend on how the
//! tar was made.

use super::layers::{publish_dir, snapshot_path, tempdir_in, LayerRecord};
use super::{put_image, StoreError, StoredImage};
use crate::snapshot::{unpack_layer, write_layer, UnpackOptions, WriteOptions};
use cache::Root;
use graph::image::{History, Image, RootFs};
use std::io::Read;

/// Imports a root file tree read from `input` and tags it `name` (a normalized reference).
/// `created` is the RFC 3339 time recorded in the config (SOURCE_DATE_EPOCH or now).
pub fn import_rootfs(
    root: &Root,
    input: &mut dyn Read,
    source_name: &str,
    name: &str,
    platform: &graph::Platform,
    created: &str,
) -> Result<StoredImage, StoreError> {
    let tmp = tempdir_in(&root.tmp_dir())?;
    let opts = UnpackOptions {
        overlay_whiteouts: true,
        same_owner: true,
        ..UnpackOptions::default()
    };
    unpack_layer(input, tmp.path(), &opts).map_err(|source| StoreError::Unpack {
        what: format!("importing {source_name}"),
        source,
    })?;
    let mut writer = root.blobs.writer()?;
    write_layer(tmp.path(), &mut writer, &WriteOptions::default()).map_err(|source| {
        StoreError::Io {
            what: format!("importing {source_name}"),
            source,
        }
    })?;
    let blob = writer.commit()?;
    let layer = LayerRecord {
        diff_id: blob.digest.clone(),
        size: blob.size,
        created: None,
    };
    let dest = snapshot_path(root, &layer.diff_id);
    if dest.is_dir() {
        drop(tmp);
    } else {
        super::durability::mark_unsynced(root, &layer.diff_id)?;
        publish_dir(tmp, &dest)?;
    }
    let config = Image {
        created: Some(created.to_string()),
        architecture: platform.architecture.clone(),
        os: platform.os.clone(),
        variant: (!platform.variant.is_empty()).then(|| platform.variant.clone()),
        rootfs: RootFs {
            kind: "layers".into(),
            diff_ids: vec![layer.diff_id.clone()],
        },
        history: vec![History {
            created: Some(created.to_string()),
            created_by: format!("pallet import {source_name}"),
            comment: format!("Imported from {source_name}"),
            ..History::default()
        }],
        ..Image::default()
    };
    let manifest =
        super::manifest::store_uncompressed(root, &config, std::slice::from_ref(&layer))?;
    let image = StoredImage {
        name: name.to_string(),
        manifest_digest: manifest.manifest.digest,
        config_digest: manifest.config.digest,
        config,
        layers: vec![layer.diff_id],
        repo_digest: None,
        index: None,
        attestations: Vec::new(),
    };
    put_image(root, &image)?;
    Ok(image)
}
