//! `--output type=local`: the image's final file tree in a plain directory; `type=tar`: the
//! same tree as one tar file (or on standard output).
//!
//! Applies each stored layer diff in order onto the destination (`snapshot::unpack_layer` with
//! OCI whiteouts turned into removals, owners kept), so the directory holds what a container
//! of the image would see: files deleted by a later step are gone, modes and numeric owners are
//! as built. Like BuildKit's local exporter it writes into an existing directory without
//! emptying it first. Knows layers and directories, not builds or image formats.

use crate::snapshot::{unpack_layer, write_layer, Privilege, UnpackOptions, WriteOptions};
use crate::store::{finish_layer, open_layer, LayerRecord, StoreError};
use cache::Root;
use std::io::Write;
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

/// `--output type=tar`: the trees of `trees` (each `(subdir, layers)`; an empty subdir is the
/// top, a multi-platform build gives one `linux_amd64`-style subdir per platform, as buildx)
/// as one tar at `dest` (`-`: standard output). Each tree is unpacked into the store's tmp/
/// first (as `type=local` would write it, owners kept), then written with the layer writer's
/// walk: entries sorted, numeric owners, no root entry. A tar left half-written is removed.
pub fn write_tar(
    root: &Root,
    trees: &[(String, &[LayerRecord])],
    dest: &Path,
) -> Result<(), StoreError> {
    let io = |what: String| move |source| StoreError::Io { what, source };
    std::fs::create_dir_all(root.tmp_dir())
        .map_err(io(format!("creating {}", root.tmp_dir().display())))?;
    let tmp = tempfile::Builder::new()
        .prefix("tar-output-")
        .tempdir_in(root.tmp_dir())
        .map_err(io(format!(
            "creating a directory in {}",
            root.tmp_dir().display()
        )))?;
    for (subdir, layers) in trees {
        write_local(root, layers, &tmp.path().join(subdir))?;
    }
    let what = format!("writing the --output tar {}", dest.display());
    if dest.as_os_str() == "-" {
        let mut out = std::io::stdout().lock();
        write_layer(tmp.path(), &mut out, &WriteOptions::default()).map_err(io(what.clone()))?;
        return out.flush().map_err(io(what));
    }
    let mut file = std::fs::File::create(dest).map_err(|source| {
        let hint = match source.kind() {
            std::io::ErrorKind::NotFound => " (create its directory first)",
            std::io::ErrorKind::IsADirectory => " (give a file name, not a directory)",
            _ => "",
        };
        StoreError::Io {
            what: format!("creating the --output tar {}{hint}", dest.display()),
            source,
        }
    })?;
    let result = write_layer(tmp.path(), &mut file, &WriteOptions::default())
        .and_then(|_| file.sync_all())
        .map_err(io(what));
    if result.is_err() {
        let _ = std::fs::remove_file(dest);
    }
    result
}
