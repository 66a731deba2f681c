//! A mount directory as a sorted list of entries: depth first, names sorted bytewise within a
//! directory (the layer writer's order). The walk goes by directory fd, one component at a
//! time, never following a symlink (snapshot's `beneath`), so a directory swapped for a
//! symlink while the mount is read cannot take the walk outside it. Files, symlinks and
//! hardlinks go in one list, directories in another (they are chunked apart). What a cache
//! mount cannot carry (sockets, fifos, devices) is skipped with a reason.

use std::collections::HashMap;
use std::ffi::{CString, OsStr};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::manifest::RootMeta;
use super::pack::Skipped;
use super::MountPackError;
use crate::snapshot::beneath::Dir;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Kind {
    /// A regular file of `size` bytes (its first link, when it has several).
    File {
        size: u64,
    },
    Dir,
    Symlink {
        target: Vec<u8>,
    },
    /// Another name of the file first written at `target` (a relative path).
    Hardlink {
        target: Vec<u8>,
    },
}

#[derive(Debug, Clone)]
pub(super) struct Entry {
    /// Relative path, no leading or trailing `/`.
    pub rel: Vec<u8>,
    /// For messages only: files are opened beneath the root by `rel`.
    pub abs: PathBuf,
    pub kind: Kind,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
}

impl Entry {
    /// Content bytes this entry puts in a tar.
    pub(super) fn content_size(&self) -> u64 {
        match self.kind {
            Kind::File { size } => size,
            _ => 0,
        }
    }
}

pub(super) struct Walked {
    /// The mount directory, open: files are read beneath it.
    pub root_dir: Dir,
    pub root: RootMeta,
    /// Files, symlinks and hardlinks, in walk order.
    pub files: Vec<Entry>,
    /// Directories, in walk order.
    pub dirs: Vec<Entry>,
    pub skipped: Vec<Skipped>,
}

/// Walks `root` (which must be a directory; it is read as it is, without locking).
pub(super) fn walk(root: &Path) -> Result<Walked, MountPackError> {
    let read_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| MountPackError::Read { path, source }
    };
    let root_dir = Dir::open(root).map_err(read_err(root))?;
    let meta = root_dir.file().metadata().map_err(read_err(root))?;
    use std::os::unix::fs::MetadataExt;
    let mut out = Walked {
        root: RootMeta {
            mode: meta.mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
        },
        root_dir: root_dir.try_clone().map_err(read_err(root))?,
        files: Vec::new(),
        dirs: Vec::new(),
        skipped: Vec::new(),
    };
    // (dev, ino) of files with several links -> the path written first.
    let mut links: HashMap<(u64, u64), Vec<u8>> = HashMap::new();
    // Explicit stack of (dir, rel, remaining names reversed): trees may be deep.
    let names = sorted_names(&root_dir, root)?;
    let mut stack = vec![(root_dir, Vec::new(), names)];
    while let Some((dir, rel, names)) = stack.last_mut() {
        let Some(name) = names.pop() else {
            stack.pop();
            continue;
        };
        let mut child_rel = rel.clone();
        if !child_rel.is_empty() {
            child_rel.push(b'/');
        }
        child_rel.extend_from_slice(name.as_bytes());
        let abs = root.join(OsStr::from_bytes(&child_rel));
        let st = dir.lstat(&name).map_err(read_err(&abs))?;
        let kind = match st.st_mode & libc::S_IFMT {
            libc::S_IFDIR => Kind::Dir,
            libc::S_IFLNK => Kind::Symlink {
                target: dir.read_link(&name).map_err(read_err(&abs))?,
            },
            libc::S_IFREG => {
                let size = st.st_size as u64;
                let key = (st.st_dev, st.st_ino);
                match links.get(&key) {
                    Some(first) if st.st_nlink > 1 => Kind::Hardlink {
                        target: first.clone(),
                    },
                    _ => {
                        if st.st_nlink > 1 {
                            links.insert(key, child_rel.clone());
                        }
                        Kind::File { size }
                    }
                }
            }
            kind => {
                let what = match kind {
                    libc::S_IFSOCK => "a socket",
                    libc::S_IFIFO => "a fifo",
                    _ => "a device node",
                };
                out.skipped.push(Skipped {
                    path: String::from_utf8_lossy(&child_rel).into_owned(),
                    reason: format!("{what}: cache mounts carry files, directories and symlinks"),
                });
                continue;
            }
        };
        let entry = Entry {
            rel: child_rel.clone(),
            abs: abs.clone(),
            kind,
            mode: st.st_mode & 0o7777,
            uid: st.st_uid,
            gid: st.st_gid,
            mtime: st.st_mtime,
        };
        if entry.kind == Kind::Dir {
            out.dirs.push(entry);
            // O_NOFOLLOW: a symlink that took the directory's place since the lstat fails.
            let child = dir.open_dir(&name).map_err(read_err(&abs))?;
            let names = sorted_names(&child, &abs)?;
            stack.push((child, child_rel, names));
        } else {
            out.files.push(entry);
        }
    }
    Ok(out)
}

/// Names in `dir`, sorted bytewise in reverse (popped from the end).
fn sorted_names(dir: &Dir, path: &Path) -> Result<Vec<CString>, MountPackError> {
    let mut names = dir
        .names()
        .map_err(|source: io::Error| MountPackError::Read {
            path: path.to_path_buf(),
            source,
        })?;
    names.sort_unstable_by(|a, b| b.as_bytes().cmp(a.as_bytes()));
    Ok(names)
}
