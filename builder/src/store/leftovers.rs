//! What interrupted runs leave behind: step dirs (`tmp/pallet-<pid>-*`, with everything a RUN
//! wrote, maybe still mounted), blob temp files (`tmp/blob-<pid>-*.partial`) and pending
//! snapshots (`snapshots/pending-<pid>-*`). Each is named with the pid of the process that
//! made it; it is a leftover once that process's owner lock is free (`cache::owners`). Every
//! command removes the leftovers it finds when it opens the store, and a failed or cancelled
//! build removes its own.

use super::prune::{tree_size, unmount_below};
use super::PENDING_PREFIX;
use cache::owners::{is_orphan, remove_stale_locks};
use cache::Root;
use std::path::{Path, PathBuf};

/// Leftovers found, and their size.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Leftovers {
    pub entries: Vec<PathBuf>,
    pub bytes: u64,
}

/// Temporary entries of `root` that match `keep` (by name, in tmp/ and the pending snapshots).
fn temporaries(root: &Root, keep: &dyn Fn(&Path) -> bool) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let tmp = root.tmp_dir();
    let mut scan = |dir: &Path, wanted: &dyn Fn(&str) -> bool| {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let name = e.file_name();
            let Some(name) = name.to_str() else { continue };
            if wanted(name) && keep(&e.path()) {
                out.push(e.path());
            }
        }
    };
    scan(&tmp, &|n| {
        n.starts_with("pallet-") || n.starts_with("blob-")
    });
    scan(&root.snapshots_dir(), &|n| n.starts_with(PENDING_PREFIX));
    out
}

/// The leftovers of processes that are gone.
pub fn find_leftovers(root: &Root) -> Leftovers {
    let entries = temporaries(root, &|p| is_orphan(&root.path, p));
    let bytes = entries.iter().map(|p| tree_size(p)).sum();
    Leftovers { entries, bytes }
}

/// Removes `entries` (unmounting what is mounted below them first); returns the bytes freed.
pub fn remove_leftovers(found: &Leftovers) -> u64 {
    let mut freed = 0;
    for path in &found.entries {
        unmount_below(path);
        let size = tree_size(path);
        let removed = if path.is_dir() {
            std::fs::remove_dir_all(path)
        } else {
            std::fs::remove_file(path)
        };
        if removed.is_ok() {
            freed += size;
        }
    }
    freed
}

/// Finds and removes the leftovers of processes that are gone: (entries, bytes) removed.
pub fn sweep_leftovers(root: &Root) -> (usize, u64) {
    let found = find_leftovers(root);
    let freed = remove_leftovers(&found);
    remove_stale_locks(&root.path);
    (found.entries.len(), freed)
}

/// Removes this process's own temporaries: after a build failed (a full disk must not keep
/// what the build wrote) or was cancelled. Only call it when no step of this process runs.
pub fn remove_own_temporaries(root_path: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(root_path.join("tmp")) else {
        return 0;
    };
    let own = std::process::id();
    let mut entries: Vec<PathBuf> = rd
        .flatten()
        .map(|e| e.path())
        .filter(|p| is_own(p, own))
        .collect();
    if let Ok(rd) = std::fs::read_dir(root_path.join("snapshots")) {
        entries.extend(rd.flatten().map(|e| e.path()).filter(|p| is_own(p, own)));
    }
    remove_leftovers(&Leftovers { entries, bytes: 0 })
}

fn is_own(path: &Path, pid: u32) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .and_then(cache::owners::tagged_pid)
        == Some(pid)
}
