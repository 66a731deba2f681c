//! `pallet prune` and `pallet du`: what the store holds and what can go. Prune drops the build
//! cache (step records, compression memos, context-hash memos, cache mounts) and every blob and
//! snapshot no tagged image uses; `--all` drops the tags first, so everything goes. The caller
//! holds the store's exclusive lock, so no running build loses what it uses.

use super::index::with_children;
use super::leftovers::{find_leftovers, remove_leftovers};
use super::{list_images, StoreError, PENDING_PREFIX};
use cache::owners::{is_orphan, tagged_pid};
use cache::Root;
use std::collections::HashSet;
use std::path::Path;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PruneReport {
    pub images: usize,
    pub cache_records: usize,
    pub blobs: usize,
    pub snapshots: usize,
    pub cache_mounts: usize,
    pub bytes: u64,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DiskUsage {
    pub images: usize,
    pub blobs: usize,
    pub blob_bytes: u64,
    /// Bytes of blobs that tagged images use.
    pub referenced_bytes: u64,
    pub snapshots: usize,
    pub snapshot_bytes: u64,
    pub cache_mount_bytes: u64,
    pub cache_records: usize,
    /// Bytes in tmp/ and pending snapshots: running builds' work, and what killed runs left
    /// (`leftover_bytes` of it, which the next command removes).
    pub temporary_bytes: u64,
    pub leftover_bytes: u64,
}

fn io(what: String) -> impl FnOnce(std::io::Error) -> StoreError {
    move |source| StoreError::Io { what, source }
}

/// Digests (blobs and diff ids) that tagged images need.
fn referenced(root: &Root) -> Result<HashSet<String>, StoreError> {
    let mut keep = HashSet::new();
    for img in list_images(root)?.into_iter().flat_map(with_children) {
        keep.extend(img.index.as_ref().map(|i| i.digest.clone()));
        keep.insert(img.manifest_digest.clone());
        keep.insert(img.config_digest.clone());
        keep.extend(img.layers.iter().cloned());
        // The compressed blobs that stand for pulled layers' tars.
        keep.extend(super::layer_forms::form_blobs(root, img.layers.iter()));
        // A pulled image's own compressed layers: kept so a push reuses (and mounts) them.
        keep.extend(
            super::pull::compressed_layers(root, &img)
                .into_iter()
                .map(|(_, blob, _)| blob.digest),
        );
    }
    Ok(keep)
}

fn entries(dir: &Path) -> Result<Vec<(String, std::path::PathBuf)>, StoreError> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Ok(out);
    };
    for e in rd {
        let e = e.map_err(io(format!("listing {}", dir.display())))?;
        out.push((e.file_name().to_string_lossy().into_owned(), e.path()));
    }
    Ok(out)
}

/// Bytes under `path` (not following symlinks).
pub fn tree_size(path: &Path) -> u64 {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::read_dir(path)
            .map(|rd| rd.flatten().map(|e| tree_size(&e.path())).sum())
            .unwrap_or(0),
        Ok(m) => m.len(),
        Err(_) => 0,
    }
}

pub fn prune(root: &Root, all: bool) -> Result<PruneReport, StoreError> {
    let mut r = PruneReport::default();
    if all {
        for img in list_images(root)? {
            super::remove_image(root, &img.name)?;
            r.images += 1;
        }
    }
    // Images lazily pulled or built from a remote cache keep their layers' remote records.
    let mut remote = Vec::new();
    for img in list_images(root)?.into_iter().flat_map(with_children) {
        for d in &img.layers {
            if let Some(r) = super::remote_forms::remote_layer(root, d) {
                remote.push((d.clone(), r));
            }
        }
    }
    r.cache_records = root.index.clear_cache()?;
    for (d, layer) in &remote {
        super::remote_forms::record_remote(root, d, layer)?;
    }
    for img in list_images(root)?.into_iter().flat_map(with_children) {
        super::pull::remember_pulled_layers(root, &img)?;
    }
    // A killed run's overlays may still be mounted (over its `pending-` snapshots): its
    // leftovers go first, each unmounted before it is deleted, so deleting never reaches
    // through a mount. A live process's temporaries (a `pallet run`, a pull) are left alone.
    let found = find_leftovers(root);
    r.bytes += remove_leftovers(&found);
    let keep = referenced(root)?;
    let tmp = root.tmp_dir();
    for (name, path) in entries(root.blobs.dir())? {
        if !keep.contains(&format!("sha256:{name}")) {
            r.bytes += tree_size(&path);
            std::fs::remove_file(&path).map_err(io(format!("removing {}", path.display())))?;
            r.blobs += 1;
        }
    }
    // Snapshots no image names, and `pending-` ones of processes that are gone.
    for (name, path) in entries(&root.snapshots_dir())? {
        let live_pending = name.starts_with(PENDING_PREFIX) && !is_orphan(&root.path, &path);
        if !keep.contains(&format!("sha256:{name}")) && !live_pending {
            r.bytes += tree_size(&path);
            std::fs::remove_dir_all(&path).map_err(io(format!("removing {}", path.display())))?;
            r.snapshots += 1;
        }
    }
    super::layer_forms::forget_unreferenced(root, &keep)?;
    super::durability::forget_orphans(root);
    for (_, path) in entries(&root.cache_mounts_dir())? {
        r.bytes += tree_size(&path);
        let removed = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        removed.map_err(io(format!("removing {}", path.display())))?;
        r.cache_mounts += 1;
    }
    // Untagged temporaries, from pallets before owner locks (tagged ones went above).
    for (name, path) in entries(&tmp)? {
        if tagged_pid(&name).is_none() {
            unmount_below(&path);
            r.bytes += tree_size(&path);
            let _ = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
        }
    }
    Ok(r)
}

/// Unmounts every mount point below `dir` (deepest first), as /proc/self/mountinfo lists them.
pub fn unmount_below(dir: &Path) {
    let Ok(canon) = dir.canonicalize() else {
        return;
    };
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let mut points: Vec<std::path::PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape_mountinfo)
        .map(std::path::PathBuf::from)
        .filter(|p| p.starts_with(&canon) && *p != canon)
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    points.dedup();
    for p in points {
        let Ok(c) = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()) else {
            continue;
        };
        // SAFETY: umount2 with a valid NUL-terminated path; MNT_DETACH never blocks.
        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    }
}

/// mountinfo escapes space, tab, newline and backslash as octal (`\040`).
fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn disk_usage(root: &Root) -> Result<DiskUsage, StoreError> {
    let keep = referenced(root)?;
    let mut u = DiskUsage {
        images: list_images(root)?.len(),
        cache_records: root.index.list_cache()?.len(),
        ..DiskUsage::default()
    };
    for (name, path) in entries(root.blobs.dir())? {
        let size = tree_size(&path);
        u.blobs += 1;
        u.blob_bytes += size;
        if keep.contains(&format!("sha256:{name}")) {
            u.referenced_bytes += size;
        }
    }
    for (name, path) in entries(&root.snapshots_dir())? {
        if !name.starts_with(PENDING_PREFIX) {
            u.snapshots += 1;
            u.snapshot_bytes += tree_size(&path);
        }
    }
    u.cache_mount_bytes = tree_size(&root.cache_mounts_dir());
    u.temporary_bytes = tree_size(&root.tmp_dir());
    for (name, path) in entries(&root.snapshots_dir())? {
        if name.starts_with(PENDING_PREFIX) {
            u.temporary_bytes += tree_size(&path);
        }
    }
    u.leftover_bytes = find_leftovers(root).bytes;
    Ok(u)
}
