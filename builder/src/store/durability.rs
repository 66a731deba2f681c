//! Whether a layer's snapshot and diff blob are known to be on disk.
//!
//! A build writes both without fsync: a step's upper dir comes from a `volatile` overlay
//! (exec::overlay), an unpacked layer is written file by file, and the layer writer commits diff
//! blobs with `commit_unsynced`. Every process of this boot sees them whole through the page
//! cache, but a power loss or kernel crash before writeback could leave a snapshot with empty
//! files, or a blob whose content no longer matches its name, while the index still names them.
//! So:
//!
//! - before a snapshot or blob gets its final name, a marker `unsynced/<hex>` records this
//!   boot's id (`/proc/sys/kernel/random/boot_id`); the hex is the blob's digest, which for a
//!   layer's diff blob also names its snapshot (pulls write compressed blobs unsynced too);
//! - after a build, a detached `pallet internal-settle-store` runs `syncfs` on the store's
//!   filesystem and drops the markers it saw before the sync ([`close_and_settle`],
//!   [`settle_now`]); the build does not wait (with a thread it would: a process exits only once
//!   all its threads have left the kernel);
//! - a marker from another boot means the machine went down before that sync: when the store
//!   is opened, [`recover_after_restart`] removes that layer's snapshot (unpacked again from its
//!   blob when next used) and re-hashes its blob, deleting it if it is damaged (the cache
//!   records that name it then miss, and the step runs again).
//!
//! What this buys: the unmount-time syncfs of overlayfs (70-330 ms per step here) and the fsync
//! of every diff blob (the disk writes ~200 MB/s) leave the build's critical path.

use super::StoreError;
use cache::Root;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// `<root>/unsynced`: one marker file per snapshot not yet known to be on disk.
fn markers_dir(root_path: &Path) -> PathBuf {
    root_path.join("unsynced")
}

fn hex(diff_id: &str) -> &str {
    diff_id.strip_prefix("sha256:").unwrap_or(diff_id)
}

/// This boot's id ("unknown-boot" if /proc does not say: then every marker counts as this
/// boot's, and a restart goes unnoticed).
fn boot_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .ok()
            .and_then(|s| s.split_whitespace().next().map(str::to_owned))
            .unwrap_or_else(|| "unknown-boot".to_owned())
    })
}

/// Records that the layer `diff_id` (snapshot and/or diff blob) is written in this boot and not
/// synced. Call it before the snapshot or blob gets its final name.
pub(crate) fn mark(root_path: &Path, diff_id: &str) -> std::io::Result<()> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let dir = markers_dir(root_path);
    std::fs::create_dir_all(&dir)?;
    // The boot id, then what makes this marking unique: settling removes a marker only if it
    // still says what it said before the sync (a rewrite means newer unsynced data).
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let unique = format!(
        "{} {} {} {nanos}\n",
        boot_id(),
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    );
    std::fs::write(dir.join(hex(diff_id)), unique)
}

/// The boot id a marker's content names.
fn marker_boot(content: &str) -> &str {
    content.split_whitespace().next().unwrap_or("")
}

/// [`mark`] with the store's error type.
pub(crate) fn mark_unsynced(root: &Root, diff_id: &str) -> Result<(), StoreError> {
    mark(&root.path, diff_id).map_err(|source| StoreError::Io {
        what: format!("marking layer {diff_id} unsynced"),
        source,
    })
}

/// Markers written in another boot: (path, diff id hex).
fn stale_markers(root_path: &Path) -> Vec<(PathBuf, String)> {
    let Ok(rd) = std::fs::read_dir(markers_dir(root_path)) else {
        return Vec::new();
    };
    rd.flatten()
        .filter(|e| std::fs::read_to_string(e.path()).is_ok_and(|c| marker_boot(&c) != boot_id()))
        .map(|e| (e.path(), e.file_name().to_string_lossy().into_owned()))
        .collect()
}

/// What [`recover_after_restart`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Layers whose markers came from another boot.
    pub layers: usize,
    /// Of those, blobs whose content no longer matched their digest (deleted).
    pub damaged_blobs: usize,
}

/// Checks the layers the machine went down on (see the module doc). Takes the store's
/// exclusive lock, and only when there is something to check.
pub fn recover_after_restart(root: &Root) -> Result<Recovery, StoreError> {
    let mut done = Recovery::default();
    if stale_markers(&root.path).is_empty() {
        return Ok(done);
    }
    let _lock = root.lock_for_prune()?;
    for (marker, hex) in stale_markers(&root.path) {
        let diff_id = format!("sha256:{hex}");
        let snapshot = root.snapshots_dir().join(&hex);
        if snapshot.is_dir() {
            super::layers::retire(root, &snapshot)?;
        }
        if let Ok(path) = root.blobs.path(&diff_id) {
            if path.is_file() && !blob_matches(&path, &hex) {
                std::fs::remove_file(&path).map_err(|source| StoreError::Io {
                    what: format!("removing the damaged blob {}", path.display()),
                    source,
                })?;
                done.damaged_blobs += 1;
            }
        }
        let _ = std::fs::remove_file(marker);
        done.layers += 1;
    }
    Ok(done)
}

fn blob_matches(path: &Path, hex: &str) -> bool {
    use sha2::Digest;
    let Ok(mut f) = std::fs::File::open(path) else {
        return false;
    };
    let mut hasher = sha2::Sha256::new();
    std::io::copy(&mut f, &mut hasher).is_ok() && hex::encode(hasher.finalize()) == hex
}

/// Markers whose snapshot dir is gone (prune removed it): removed.
pub(crate) fn forget_orphans(root: &Root) {
    let Ok(rd) = std::fs::read_dir(markers_dir(&root.path)) else {
        return;
    };
    for e in rd.flatten() {
        if !root.snapshots_dir().join(e.file_name()).is_dir() {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Whether this boot has markers to settle.
fn has_markers(root_path: &Path) -> bool {
    std::fs::read_dir(markers_dir(root_path)).is_ok_and(|mut rd| rd.next().is_some())
}

/// Closes the store, then starts `pallet internal-settle-store ROOT` in the background (not
/// waited for) when there are markers; errors are ignored: the markers then stay, and a
/// restart re-unpacks.
///
/// The order matters: closing the index commits and truncates it, and on ext4 that commit's
/// fdatasync waits for the journal, which waits for whatever data the settler's syncfs is
/// writing back. Closed while the settler ran, the index took 40-85 ms more at the end of a
/// cold build; closed first, 1-2 ms.
pub fn close_and_settle(root: Root) {
    let root_path = root.path.clone();
    drop(root);
    if !has_markers(&root_path) {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let _ = std::process::Command::new(exe)
        .arg("internal-settle-store")
        .arg(&root_path)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
}

/// `syncfs` on the store's filesystem, then removes this boot's markers that were there before
/// the sync and still say the same (a marker rewritten meanwhile names newer, unsynced data).
pub fn settle_now(root_path: &Path) -> std::io::Result<usize> {
    let dir = markers_dir(root_path);
    let mut seen = Vec::new();
    for e in std::fs::read_dir(&dir)?.flatten() {
        if let Ok(content) = std::fs::read_to_string(e.path()) {
            if marker_boot(&content) == boot_id() {
                seen.push((e.path(), content));
            }
        }
    }
    let fd = std::fs::File::open(root_path)?;
    // SAFETY: a plain syscall on an fd we own.
    if unsafe { libc::syncfs(fd.as_raw_fd()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut removed = 0;
    for (path, content) in seen {
        let unchanged = std::fs::read_to_string(&path).is_ok_and(|now| now == content);
        if unchanged && std::fs::remove_file(&path).is_ok() {
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_marked_in_another_boot_are_checked_and_their_snapshots_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::open(dir.path()).unwrap();
        let put = |data: &[u8]| {
            let mut w = root.blobs.writer().unwrap();
            std::io::Write::write_all(&mut w, data).unwrap();
            w.commit().unwrap().digest
        };
        let good = put(b"good layer");
        let bad = put(b"bad layer");
        let bad_hex = hex(&bad).to_owned();
        for id in [&good, &bad] {
            std::fs::create_dir_all(root.snapshots_dir().join(hex(id)).join("etc")).unwrap();
            mark_unsynced(&root, id).unwrap();
        }
        // This boot's markers: nothing to recover.
        assert_eq!(recover_after_restart(&root).unwrap(), Recovery::default());
        // What a crash leaves: markers of another boot, and a blob whose bytes went missing.
        for id in [&good, &bad] {
            std::fs::write(dir.path().join("unsynced").join(hex(id)), "another-boot").unwrap();
        }
        std::fs::write(root.blobs.path(&bad).unwrap(), b"").unwrap();
        let done = recover_after_restart(&root).unwrap();
        assert_eq!(
            done,
            Recovery {
                layers: 2,
                damaged_blobs: 1
            }
        );
        assert!(root.blobs.contains(&good));
        assert!(!root.blobs.contains(&bad), "{bad_hex} damaged: deleted");
        assert!(
            !root.snapshots_dir().join(hex(&good)).exists(),
            "snapshots are unpacked again"
        );
        assert_eq!(
            std::fs::read_dir(dir.path().join("unsynced"))
                .unwrap()
                .count(),
            0
        );
    }

    #[test]
    fn settling_drops_only_this_boots_markers() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::open(dir.path()).unwrap();
        mark_unsynced(&root, "sha256:11aa").unwrap();
        std::fs::write(dir.path().join("unsynced/22bb"), "another-boot").unwrap();
        assert_eq!(settle_now(dir.path()).unwrap(), 1);
        assert!(!dir.path().join("unsynced/11aa").exists());
        assert!(dir.path().join("unsynced/22bb").exists());
        // Its snapshot dir is gone (prune): the marker goes too.
        forget_orphans(&root);
        assert!(!dir.path().join("unsynced/22bb").exists());
    }
}
