//! The store root's layout: `blobs/sha256/<hex>`, `snapshots/<id>/`, `tmp/`, `cache-mounts/`,
//! `owners/` (the owner locks of the processes using the store), `index.redb`, `images/` (a
//! copy of each tag record beside the index, for `pallet doctor`); and where it
//! lives (`--root`, `PALLET_ROOT`, /var/lib/pallet as root, else `$XDG_DATA_HOME/pallet`).
//!
//! This module owns the layout only: what lives in each directory is the business of the
//! modules (and crates) that write there.

use crate::{Blobs, CacheError, Index};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

pub struct Root {
    pub path: PathBuf,
    pub blobs: Blobs,
    pub index: Index,
    /// This process's claim on the temporary files it names with its pid (see `owners`).
    _owner: Option<crate::owners::OwnerLock>,
}

impl Root {
    /// Opens (creating if needed) the store at `path`. Several processes may open one root.
    pub fn open(path: &Path) -> Result<Root, CacheError> {
        let blob_dir = path.join("blobs").join("sha256");
        for dir in [
            blob_dir.clone(),
            path.join("snapshots"),
            path.join("tmp"),
            path.join("cache-mounts"),
            path.join("owners"),
        ] {
            std::fs::create_dir_all(&dir).map_err(|source| CacheError::Io {
                what: "creating store directory",
                path: dir.clone(),
                source,
            })?;
        }
        let index = Index::open(&path.join("index.redb"))?;
        let owner = crate::owners::claim(path)?;
        Ok(Root {
            path: path.to_path_buf(),
            blobs: Blobs::new(blob_dir, path.join("tmp")),
            index,
            _owner: owner,
        })
    }

    /// `PALLET_ROOT`, else /var/lib/pallet as root, else `$XDG_DATA_HOME/pallet`
    /// (`~/.local/share/pallet`).
    pub fn default_path() -> PathBuf {
        default_path_from(
            std::env::var_os("PALLET_ROOT"),
            // SAFETY: geteuid has no preconditions and cannot fail.
            unsafe { libc::geteuid() },
            std::env::var_os("XDG_DATA_HOME"),
            std::env::var_os("HOME"),
        )
    }

    /// Unpacked layers, one directory per layer (usable as an overlay lowerdir).
    pub fn snapshots_dir(&self) -> PathBuf {
        self.path.join("snapshots")
    }

    /// Scratch space on the same filesystem as blobs and snapshots (for atomic renames).
    pub fn tmp_dir(&self) -> PathBuf {
        self.path.join("tmp")
    }

    /// Persistent `RUN --mount=type=cache` directories.
    pub fn cache_mounts_dir(&self) -> PathBuf {
        self.path.join("cache-mounts")
    }

    /// The redb index file.
    pub fn index_path(&self) -> PathBuf {
        self.path.join("index.redb")
    }
}

/// `default_path` on explicit inputs. Empty variables count as unset, and so does a relative
/// `XDG_DATA_HOME` (the XDG spec says to ignore it).
fn default_path_from(
    pallet_root: Option<OsString>,
    euid: u32,
    xdg_data_home: Option<OsString>,
    home: Option<OsString>,
) -> PathBuf {
    let set = |v: Option<OsString>| v.filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(root) = set(pallet_root) {
        return root;
    }
    if euid == 0 {
        return PathBuf::from("/var/lib/pallet");
    }
    if let Some(data) = set(xdg_data_home).filter(|p| p.is_absolute()) {
        return data.join("pallet");
    }
    let home = set(home).or_else(|| home_of(euid)).unwrap_or_else(|| {
        // No home at all: a per-user directory that is at least not shared.
        std::env::temp_dir().join(format!("pallet-{euid}"))
    });
    home.join(".local").join("share").join("pallet")
}

/// The home directory of `uid` from the password database.
fn home_of(uid: u32) -> Option<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    let mut buf = vec![0u8; 16 * 1024];
    // SAFETY: all-zero is a valid passwd (null pointers, zero ids).
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call and buf's length is passed.
    let rc = unsafe {
        libc::getpwuid_r(
            uid,
            &mut pwd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut result,
        )
    };
    if rc != 0 || result.is_null() || pwd.pw_dir.is_null() {
        return None;
    }
    // SAFETY: on success pw_dir points to a NUL-terminated string inside buf.
    let dir = unsafe { std::ffi::CStr::from_ptr(pwd.pw_dir) };
    let dir = Path::new(std::ffi::OsStr::from_bytes(dir.to_bytes()));
    (!dir.as_os_str().is_empty()).then(|| dir.to_path_buf())
}

/// A lock on the whole store: builds hold it shared while they run; `prune` holds it
/// exclusively, so it never deletes what a running build uses. Released on drop.
pub struct StoreLock {
    _file: std::fs::File,
}

impl Root {
    fn lock(&self, op: i32, nonblocking: bool) -> Result<Option<StoreLock>, CacheError> {
        lock_at(&self.path, op, nonblocking)
    }

    /// [`Root::lock_for_prune`] of the store at `path` without opening it (its index may be
    /// too damaged to open): what `pallet doctor` holds while it rebuilds the index.
    pub fn lock_exclusive_at(path: &Path) -> Result<StoreLock, CacheError> {
        Ok(lock_at(path, libc::LOCK_EX, false)?.expect("blocking lock returns a lock"))
    }
}

fn lock_at(root: &Path, op: i32, nonblocking: bool) -> Result<Option<StoreLock>, CacheError> {
    {
        use std::os::unix::io::AsRawFd;
        let path = root.join("store.lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| CacheError::Io {
                what: "opening",
                path: path.clone(),
                source,
            })?;
        let flags = if nonblocking { op | libc::LOCK_NB } else { op };
        // SAFETY: flock on a descriptor we own; no memory is passed.
        if unsafe { libc::flock(file.as_raw_fd(), flags) } == 0 {
            return Ok(Some(StoreLock { _file: file }));
        }
        let err = std::io::Error::last_os_error();
        if nonblocking && err.raw_os_error() == Some(libc::EWOULDBLOCK) {
            return Ok(None);
        }
        Err(CacheError::Io {
            what: "locking",
            path,
            source: err,
        })
    }
}

impl Root {
    /// Held by a build for its whole duration (many builds at once are fine).
    pub fn lock_for_build(&self) -> Result<StoreLock, CacheError> {
        Ok(self
            .lock(libc::LOCK_SH, false)?
            .expect("blocking lock returns a lock"))
    }

    /// Exclusive: no build is running while it is held. `None` if a build holds the store now.
    pub fn try_lock_for_prune(&self) -> Result<Option<StoreLock>, CacheError> {
        self.lock(libc::LOCK_EX, true)
    }

    /// Exclusive, waiting for running builds to finish.
    pub fn lock_for_prune(&self) -> Result<StoreLock, CacheError> {
        Ok(self
            .lock(libc::LOCK_EX, false)?
            .expect("blocking lock returns a lock"))
    }
}

#[cfg(test)]
mod tests {
    use super::default_path_from;
    use std::path::PathBuf;

    fn s(v: &str) -> Option<std::ffi::OsString> {
        Some(v.into())
    }

    #[test]
    fn order_of_precedence() {
        let p = |r, u, x, h| default_path_from(r, u, x, h);
        assert_eq!(p(s("/r"), 0, s("/x"), s("/h")), PathBuf::from("/r"));
        assert_eq!(
            p(s(""), 0, s("/x"), s("/h")),
            PathBuf::from("/var/lib/pallet")
        );
        assert_eq!(p(None, 1000, s("/x"), s("/h")), PathBuf::from("/x/pallet"));
        assert_eq!(
            p(None, 1000, s("rel"), s("/h")),
            PathBuf::from("/h/.local/share/pallet")
        );
        assert_eq!(
            p(None, 1000, None, s("/h")),
            PathBuf::from("/h/.local/share/pallet")
        );
    }
}
