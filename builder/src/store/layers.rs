//! Layers in the store: an uncompressed diff tar as a blob (its digest is the diff id) and the
//! same layer unpacked under `snapshots/<hex>` in overlayfs format. A snapshot dir that exists
//! is complete (unpacked into tmp/ and renamed).
//!
//! A layer a build just made takes two steps, so that its tar is off the build's critical path:
//! [`adopt_upper`] renames the step's upper dir to `snapshots/pending-<random>` at once (the next
//! step can use it as an overlay lower), [`write_diff`] then writes its tar blob (the diff id)
//! in the background, and [`settle_snapshot`] renames the pending dir to the diff id's name once
//! the build no longer mounts it. A pending dir is never named in the index: a build killed
//! before settling leaves an orphan that prune removes, never a half-known layer.
//!
//! Snapshots are not fsynced; `durability` marks them until a sync and has them unpacked again
//! from their diff blob if the machine restarted before that.

use super::{durability, StoreError};
use crate::snapshot::{unpack_layer, write_layer, UnpackOptions, WriteOptions};
use cache::Root;
use std::path::{Path, PathBuf};

/// What the solver records per layer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LayerRecord {
    pub diff_id: String,
    pub size: u64,
    /// When a build first made this layer (RFC 3339): its history time in every image that
    /// reuses it from the cache, as BuildKit takes it from the cache record, so a cached
    /// rebuild gives the same image. None for base-image layers (their config says).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
}

/// Now, as a layer's creation time.
pub fn created_now() -> Option<String> {
    created_at(std::time::SystemTime::now())
}

/// A point in time as a layer's creation time (RFC 3339, seconds).
pub fn created_at(t: std::time::SystemTime) -> Option<String> {
    let secs = t.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs();
    Some(graph::time::rfc3339(secs as i64))
}

/// `snapshots/<hex of the diff id>`.
pub fn snapshot_path(root: &Root, diff_id: &str) -> PathBuf {
    let hex = diff_id.strip_prefix("sha256:").unwrap_or(diff_id);
    root.snapshots_dir().join(hex)
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> StoreError {
    let what = what.into();
    move |source| StoreError::Io { what, source }
}

/// Makes sure a layer's snapshot dir exists, unpacking its blob if needed.
pub fn ensure_snapshot(root: &Root, diff_id: &str) -> Result<PathBuf, StoreError> {
    let dest = snapshot_path(root, diff_id);
    if dest.is_dir() {
        return Ok(dest);
    }
    let mut tar = super::layer_forms::open_layer(root, diff_id)?;
    let tmp = tempdir_in(&root.tmp_dir())?;
    let opts = UnpackOptions {
        overlay_whiteouts: true,
        same_owner: true,
        ..UnpackOptions::default()
    };
    unpack_layer(&mut tar, tmp.path(), &opts).map_err(|source| StoreError::Unpack {
        what: format!("unpacking layer {diff_id}"),
        source,
    })?;
    super::layer_forms::finish_layer(&mut tar, diff_id)?;
    durability::mark_unsynced(root, diff_id)?;
    publish_dir(tmp, &dest)?;
    Ok(dest)
}

/// Moves a snapshot dir out of the way (into tmp/, then removed), so its name is free at once.
pub(super) fn retire(root: &Root, dir: &Path) -> Result<(), StoreError> {
    let aside = tempdir_in(&root.tmp_dir())?.keep();
    match std::fs::rename(dir, &aside) {
        Ok(()) => {}
        // Another process retired it first.
        Err(_) if !dir.exists() => {}
        Err(e) => return Err(io(format!("moving {} aside", dir.display()))(e)),
    }
    std::fs::remove_dir_all(&aside).map_err(io(format!("removing {}", aside.display())))
}

/// Turns a step's overlay upper dir into a layer: writes its tar as a blob (the diff id) and
/// moves the dir itself to be the layer's snapshot.
pub fn commit_upper(
    root: &Root,
    upper: &Path,
    clamp_mtime: Option<i64>,
) -> Result<LayerRecord, StoreError> {
    let mut writer = root.blobs.writer()?;
    write_layer(upper, &mut writer, &WriteOptions { clamp_mtime })
        .map_err(io(format!("writing the layer of {}", upper.display())))?;
    let info = writer.commit()?;
    let dest = snapshot_path(root, &info.digest);
    if !dest.exists() {
        durability::mark_unsynced(root, &info.digest)?;
        match std::fs::rename(upper, &dest) {
            Ok(()) => {}
            // Another build produced the same layer meanwhile: keep theirs.
            Err(_) if dest.exists() => {}
            Err(e) => {
                return Err(io(format!(
                    "moving {} to {}",
                    upper.display(),
                    dest.display()
                ))(e))
            }
        }
    }
    Ok(LayerRecord {
        diff_id: info.digest,
        size: info.size,
        created: created_now(),
    })
}

/// Prefix of a snapshot dir whose diff is not written yet (or whose build was killed); the
/// pid of the process that made it follows (`pending-<pid>-<random>`, see `leftovers`).
pub const PENDING_PREFIX: &str = "pending-";

/// Makes a step's (unmounted, finished) upper dir a snapshot at once, under a name of its own:
/// `snapshots/pending-<random>`. The rename is atomic, so the snapshot is complete or absent.
pub fn adopt_upper(root: &Root, upper: &Path) -> Result<PathBuf, StoreError> {
    let dir = root.snapshots_dir();
    std::fs::create_dir_all(&dir).map_err(io(format!("creating {}", dir.display())))?;
    let slot = tempfile::Builder::new()
        .prefix(&format!("{PENDING_PREFIX}{}-", std::process::id()))
        .tempdir_in(&dir)
        .map_err(io(format!("creating a snapshot dir in {}", dir.display())))?
        .keep();
    // Renaming a directory onto an empty one replaces it.
    std::fs::rename(upper, &slot).map_err(|e| {
        let _ = std::fs::remove_dir(&slot);
        io(format!("moving {} to {}", upper.display(), slot.display()))(e)
    })?;
    Ok(slot)
}

/// Writes a snapshot's tar as a blob: its digest is the layer's diff id.
pub fn write_diff(
    root: &Root,
    snapshot: &Path,
    clamp_mtime: Option<i64>,
) -> Result<LayerRecord, StoreError> {
    let mut writer = root.blobs.writer()?;
    write_layer(snapshot, &mut writer, &WriteOptions { clamp_mtime })
        .map_err(io(format!("writing the layer of {}", snapshot.display())))?;
    // No fsync on the build's path (~200 MB/s here): marked, and checked after a restart.
    let info = writer.commit_unsynced(|info| durability::mark(&root.path, &info.digest))?;
    Ok(LayerRecord {
        diff_id: info.digest,
        size: info.size,
        created: created_now(),
    })
}

/// Gives a pending snapshot its diff id's name (nothing may mount it any more); when that
/// snapshot exists already (the same layer from elsewhere), the pending copy goes.
pub fn settle_snapshot(root: &Root, pending: &Path, diff_id: &str) -> Result<(), StoreError> {
    let dest = snapshot_path(root, diff_id);
    if !dest.exists() {
        durability::mark_unsynced(root, diff_id)?;
        if std::fs::rename(pending, &dest).is_ok() {
            return Ok(());
        }
    }
    std::fs::remove_dir_all(pending).map_err(io(format!("removing {}", pending.display())))
}

/// A scratch directory for one step (overlay dirs, bundle), removed when dropped.
pub fn step_dir(root: &Root) -> Result<tempfile::TempDir, StoreError> {
    tempdir_in(&root.tmp_dir())
}

/// A fresh directory under the store's tmp/ (removed on drop unless published), named with
/// this process's pid (`pallet-<pid>-<random>`): a killed run's dirs are found by it.
pub(crate) fn tempdir_in(dir: &Path) -> Result<tempfile::TempDir, StoreError> {
    std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
    tempfile::Builder::new()
        .prefix(&format!("pallet-{}-", std::process::id()))
        .tempdir_in(dir)
        .map_err(io(format!("creating a temp dir in {}", dir.display())))
}

/// Renames a finished temp dir into place; if something else published it first, keeps that.
pub(crate) fn publish_dir(tmp: tempfile::TempDir, dest: &Path) -> Result<(), StoreError> {
    let path = tmp.keep();
    match std::fs::rename(&path, dest) {
        Ok(()) => Ok(()),
        Err(_) if dest.is_dir() => {
            let _ = std::fs::remove_dir_all(&path);
            Ok(())
        }
        Err(e) => Err(io(format!("publishing {}", dest.display()))(e)),
    }
}
