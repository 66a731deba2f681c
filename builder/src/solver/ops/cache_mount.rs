//! `RUN --mount=type=cache` directories: persistent under the store's `cache-mounts/`, named by
//! a hash of the id (so an id can never traverse out), created with the requested mode and
//! owner, seeded from `from=`/`source=` on first use, and shared between concurrent steps and
//! processes as `sharing=` says: `shared` (no lock), `locked` (one step at a time: an
//! exclusive flock held for the step), `private` (a busy cache gives the step a fresh,
//! throwaway directory instead of waiting).

use crate::exec::fileop::{self, FileOpError};
use crate::remote_cache::UsedMount;
use graph::CopyAction;
use std::fs::File;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

/// Why a cache mount could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum CacheMountError {
    /// `what` names the cache (`cache mount ID`, `locking cache mount ID`, ...) or the path.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    /// Copying `from=`/`source=` into a new cache failed.
    #[error("seeding cache mount {id} from {from}: {source}")]
    Seed {
        id: String,
        from: String,
        #[source]
        source: FileOpError,
    },
}

fn io_error(what: impl Into<String>) -> impl FnOnce(io::Error) -> CacheMountError {
    let what = what.into();
    move |source| CacheMountError::Io { what, source }
}

/// Held for the duration of a step: the lock (if any) and a throwaway dir (private, busy).
pub(super) struct CacheLease {
    _lock: Option<File>,
    throwaway: Option<PathBuf>,
}

impl CacheLease {
    /// A busy private cache's fresh directory: not the cache itself.
    pub(super) fn is_throwaway(&self) -> bool {
        self.throwaway.is_some()
    }
}

/// The cache mounts a build's RUN steps mounted (their own dirs, not a busy private cache's
/// throwaway): what `--cache-to ...,mounts=true` exports. By id; the first sharing seen.
#[derive(Default)]
pub struct UsedCacheMounts(std::sync::Mutex<std::collections::BTreeMap<String, UsedMount>>);

impl UsedCacheMounts {
    pub(super) fn record(&self, id: &str, sharing: &str, dir: &Path) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(id.to_string())
            .or_insert_with(|| UsedMount {
                id: id.to_string(),
                sharing: sharing.to_string(),
                dir: dir.to_path_buf(),
            });
    }

    /// Every mount recorded, by id.
    pub fn list(&self) -> Vec<UsedMount> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }
}

/// Takes cache mount `dir`'s lock exclusively (waits for the steps of other builds that use
/// it): held while its contents are packed for an export, so no step changes them meanwhile.
pub fn lock_exclusive(dir: &Path) -> io::Result<File> {
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.with_extension("lock"))?;
    flock(&lock, libc::LOCK_EX)?;
    Ok(lock)
}

impl Drop for CacheLease {
    fn drop(&mut self) {
        if let Some(p) = self.throwaway.take() {
            let _ = std::fs::remove_dir_all(p);
        }
    }
}

pub(super) struct CacheRequest<'a> {
    pub id: &'a str,
    pub sharing: &'a str,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// The tree to seed a new cache from (`from=` stage, `source=` path in it).
    pub seed: Option<(PathBuf, String)>,
}

/// Returns the directory to bind and the lease that keeps it ours until the step ends.
pub(super) fn prepare(
    cache_root: &Path,
    req: &CacheRequest,
) -> Result<(PathBuf, CacheLease), CacheMountError> {
    std::fs::create_dir_all(cache_root)
        .map_err(io_error(format!("creating {}", cache_root.display())))?;
    let name = blake3::hash(req.id.as_bytes()).to_hex().to_string();
    let dir = cache_root.join(&name);
    let lock_path = cache_root.join(format!("{name}.lock"));
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(io_error(format!("cache mount {}", req.id)))?;
    let (lock, throwaway) = match req.sharing {
        "locked" => {
            flock(&lock, libc::LOCK_EX)
                .map_err(io_error(format!("locking cache mount {}", req.id)))?;
            (Some(lock), None)
        }
        "private" => match flock(&lock, libc::LOCK_EX | libc::LOCK_NB) {
            Ok(()) => (Some(lock), None),
            Err(_) => {
                let fresh = cache_root.join(format!(
                    "{name}.private-{}-{}",
                    std::process::id(),
                    unique()
                ));
                create(&fresh, req)?;
                return Ok((
                    fresh.clone(),
                    CacheLease {
                        _lock: None,
                        throwaway: Some(fresh),
                    },
                ));
            }
        },
        // shared: readers and writers at once, as BuildKit's default.
        _ => {
            flock(&lock, libc::LOCK_SH).map_err(io_error(format!("cache mount {}", req.id)))?;
            (Some(lock), None)
        }
    };
    if !dir.is_dir() {
        // Build it aside and rename, so a half-seeded cache is never seen.
        let tmp = cache_root.join(format!("{name}.new-{}-{}", std::process::id(), unique()));
        create(&tmp, req)?;
        if let Some((src_root, source)) = &req.seed {
            seed(src_root, source, &tmp).map_err(|e| CacheMountError::Seed {
                id: req.id.to_string(),
                from: source.clone(),
                source: e,
            })?;
        }
        if std::fs::rename(&tmp, &dir).is_err() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
    }
    Ok((
        dir,
        CacheLease {
            _lock: lock,
            throwaway,
        },
    ))
}

fn create(dir: &Path, req: &CacheRequest) -> Result<(), CacheMountError> {
    std::fs::create_dir_all(dir).map_err(io_error(format!("creating cache mount {}", req.id)))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(req.mode))
        .map_err(io_error(format!("cache mount {}", req.id)))?;
    std::os::unix::fs::chown(dir, Some(req.uid), Some(req.gid))
        .map_err(io_error(format!("cache mount {}", req.id)))?;
    Ok(())
}

/// Copies the seed's contents into a new cache dir with the file-op copier (root-confined).
fn seed(src_root: &Path, source: &str, dest: &Path) -> Result<(), FileOpError> {
    let action = CopyAction {
        follow_symlinks: true,
        ..CopyAction::new(0, source, "/")
    };
    fileop::copy(src_root, dest, &action, None, None)
}

fn flock(f: &File, op: i32) -> std::io::Result<()> {
    // SAFETY: flock on a file descriptor we own; no memory is passed.
    if unsafe { libc::flock(f.as_raw_fd(), op) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req<'a>(id: &'a str, sharing: &'a str) -> CacheRequest<'a> {
        CacheRequest {
            id,
            sharing,
            mode: 0o755,
            uid: 0,
            gid: 0,
            seed: None,
        }
    }

    #[test]
    fn ids_cannot_traverse_and_caches_persist() {
        let tmp = tempfile::tempdir().unwrap();
        let (dir, lease) = prepare(tmp.path(), &req("../../etc", "shared")).unwrap();
        assert!(dir.starts_with(tmp.path()));
        std::fs::write(dir.join("f"), b"x").unwrap();
        drop(lease);
        let (again, _l) = prepare(tmp.path(), &req("../../etc", "shared")).unwrap();
        assert_eq!(again, dir);
        assert!(again.join("f").exists());
    }

    #[test]
    fn private_gives_a_fresh_dir_while_busy_and_locked_excludes() {
        let tmp = tempfile::tempdir().unwrap();
        let (first, lease) = prepare(tmp.path(), &req("pip", "private")).unwrap();
        let (second, lease2) = prepare(tmp.path(), &req("pip", "private")).unwrap();
        assert_ne!(first, second, "a busy private cache is not shared");
        drop(lease2);
        assert!(!second.exists(), "the throwaway dir is removed");
        drop(lease);
        // locked: a second taker waits until the first lets go.
        let (_, held) = prepare(tmp.path(), &req("apt", "locked")).unwrap();
        let root = tmp.path().to_path_buf();
        let waiter = std::thread::spawn(move || {
            let start = std::time::Instant::now();
            let _ = prepare(&root, &req("apt", "locked")).unwrap();
            start.elapsed()
        });
        std::thread::sleep(std::time::Duration::from_millis(300));
        drop(held);
        assert!(waiter.join().unwrap() >= std::time::Duration::from_millis(250));
    }
}
