//! Who owns the temporary files in a store. Every process that opens a store holds an
//! exclusive lock on `owners/<pid>.lock` while the store is open, and names what it writes
//! under `tmp/` (and pending snapshots) with its pid. A file tagged with a pid whose owner lock
//! is free was left by a process that died (kill -9, a crash, a full disk): anyone may remove
//! it. A pid reused by a new process holds the lock again, so its files are never taken.

use crate::CacheError;
use std::fs::File;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// This process's claim on its temporary files; released when dropped (or the process dies).
pub struct OwnerLock {
    _file: File,
    path: PathBuf,
}

impl Drop for OwnerLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn lock_path(root: &Path, pid: u32) -> PathBuf {
    root.join("owners").join(format!("{pid}.lock"))
}

/// Takes this process's owner lock in the store at `root`. A second open of the store in the
/// same process finds the lock held by itself and shares it (None).
pub(crate) fn claim(root: &Path) -> Result<Option<OwnerLock>, CacheError> {
    let path = lock_path(root, std::process::id());
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| CacheError::Io {
            what: "creating",
            path: path.clone(),
            source,
        })?;
    // SAFETY: flock on a descriptor we own; no memory is passed.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return Ok(None);
    }
    Ok(Some(OwnerLock { _file: file, path }))
}

/// The pid a temporary name is tagged with: `blob-<pid>-<n>.partial`, `pallet-<pid>-<rand>`,
/// `pending-<pid>-<rand>`.
pub fn tagged_pid(name: &str) -> Option<u32> {
    let rest = ["blob-", "pallet-", "pending-"]
        .iter()
        .find_map(|p| name.strip_prefix(p))?;
    rest.split('-').next()?.parse().ok()
}

/// A process whose lock is missing is taken for dead only once its files are this old: a
/// pallet from before owner locks may still be running.
const UNLOCKED_GRACE: Duration = Duration::from_secs(3600);

/// Whether `path` (a temporary file or dir of the store at `root`, named with a pid) was left
/// by a process that is gone: its owner lock can be taken, or there is none and the entry is
/// old.
pub fn is_orphan(root: &Path, path: &Path) -> bool {
    let Some(pid) = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(tagged_pid)
    else {
        return false;
    };
    if pid == std::process::id() {
        return false;
    }
    let lock = lock_path(root, pid);
    match File::open(&lock) {
        Ok(file) => {
            // SAFETY: flock on a descriptor we own; no memory is passed.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
            rc == 0
        }
        Err(_) => std::fs::symlink_metadata(path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .is_some_and(|age| age > UNLOCKED_GRACE),
    }
}

/// Removes the owner locks of processes that are gone (their files removed already or
/// never made): a killed process cannot remove its own.
pub fn remove_stale_locks(root: &Path) {
    let Ok(rd) = std::fs::read_dir(root.join("owners")) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_suffix(".lock"))
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == std::process::id() {
            continue;
        }
        if let Ok(file) = File::open(e.path()) {
            // SAFETY: flock on a descriptor we own; no memory is passed.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_their_pid() {
        assert_eq!(tagged_pid("blob-123-7.partial"), Some(123));
        assert_eq!(tagged_pid("pallet-42-AbC9xz"), Some(42));
        assert_eq!(tagged_pid("pending-9-x"), Some(9));
        assert_eq!(tagged_pid("pallet-AbC9xz"), None);
        assert_eq!(tagged_pid("5.lock"), None);
    }

    #[test]
    fn a_dead_owners_files_are_orphans_and_a_live_ones_are_not() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("owners")).unwrap();
        let tmp = root.path();
        // A child process claims, writes a file, and exits without cleaning up.
        let child = std::process::Command::new("sh")
            .arg("-c")
            .arg("exec sleep 30")
            .spawn()
            .unwrap();
        let pid = child.id();
        let entry = tmp.join(format!("pallet-{pid}-abc"));
        std::fs::create_dir(&entry).unwrap();
        // Its lock, held by a process of its own (flock belongs to the open file).
        let lock = lock_path(tmp, pid);
        // -o: the lock stays with flock itself, not with the sleep it runs.
        let holder = std::process::Command::new("flock")
            .arg("-o")
            .arg(&lock)
            .args(["sleep", "30"])
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(300));
        assert!(!is_orphan(tmp, &entry), "a held lock means a live owner");
        let mut holder = holder;
        holder.kill().unwrap();
        holder.wait().unwrap();
        assert!(is_orphan(tmp, &entry), "a free lock means a dead owner");
        let mut child = child;
        child.kill().unwrap();
        child.wait().unwrap();
        // This process's own files are never orphans.
        let own = tmp.join(format!("pallet-{}-x", std::process::id()));
        std::fs::create_dir(&own).unwrap();
        assert!(!is_orphan(tmp, &own));
        // No lock and young: not yet.
        let young = tmp.join("pallet-999999-y");
        std::fs::create_dir(&young).unwrap();
        assert!(!is_orphan(tmp, &young));
    }
}
