//! A mount directory as a sorted list of entries: depth first, names sorted bytewise within a
//! directory (the layer writer's order), never following a symlink. Files, symlinks and
//! hardlinks go in one list, directories in another (they are chunked apart). What a cache
//! mount cannot carry (sockets, fifos, devices) is skipped with a reason.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::{self, Metadata};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::manifest::RootMeta;
use super::pack::Skipped;
use super::MountPackError;

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
    let meta = fs::symlink_metadata(root).map_err(read_err(root))?;
    if !meta.is_dir() {
        return Err(MountPackError::Read {
            path: root.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a directory"),
        });
    }
    let mut out = Walked {
        root: RootMeta {
            mode: meta.mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
        },
        files: Vec::new(),
        dirs: Vec::new(),
        skipped: Vec::new(),
    };
    // (dev, ino) of files with several links -> the path written first.
    let mut links: HashMap<(u64, u64), Vec<u8>> = HashMap::new();
    // Explicit stack of (dir, rel, remaining names reversed): trees may be deep.
    let mut stack = vec![(root.to_path_buf(), Vec::new(), sorted_names(root)?)];
    while let Some((dir, rel, names)) = stack.last_mut() {
        let Some(name) = names.pop() else {
            stack.pop();
            continue;
        };
        let abs = dir.join(&name);
        let mut child_rel = rel.clone();
        if !child_rel.is_empty() {
            child_rel.push(b'/');
        }
        child_rel.extend_from_slice(name.as_bytes());
        let m = fs::symlink_metadata(&abs).map_err(read_err(&abs))?;
        let ft = m.file_type();
        let kind = if ft.is_dir() {
            Kind::Dir
        } else if ft.is_symlink() {
            let target = fs::read_link(&abs).map_err(read_err(&abs))?;
            Kind::Symlink {
                target: target.as_os_str().as_bytes().to_vec(),
            }
        } else if ft.is_file() {
            if m.nlink() > 1 {
                match links.get(&(m.dev(), m.ino())) {
                    Some(first) => Kind::Hardlink {
                        target: first.clone(),
                    },
                    None => {
                        links.insert((m.dev(), m.ino()), child_rel.clone());
                        Kind::File { size: m.len() }
                    }
                }
            } else {
                Kind::File { size: m.len() }
            }
        } else {
            let what = if ft.is_socket() {
                "a socket"
            } else if ft.is_fifo() {
                "a fifo"
            } else {
                "a device node"
            };
            out.skipped.push(Skipped {
                path: String::from_utf8_lossy(&child_rel).into_owned(),
                reason: format!("{what}: cache mounts carry files, directories and symlinks"),
            });
            continue;
        };
        let entry = entry(abs.clone(), child_rel.clone(), kind, &m);
        if entry.kind == Kind::Dir {
            out.dirs.push(entry);
            let names = sorted_names(&abs)?;
            stack.push((abs, child_rel, names));
        } else {
            out.files.push(entry);
        }
    }
    Ok(out)
}

fn entry(abs: PathBuf, rel: Vec<u8>, kind: Kind, m: &Metadata) -> Entry {
    Entry {
        rel,
        abs,
        kind,
        mode: m.mode() & 0o7777,
        uid: m.uid(),
        gid: m.gid(),
        mtime: m.mtime(),
    }
}

/// Names in `dir`, sorted bytewise in reverse (popped from the end).
fn sorted_names(dir: &Path) -> Result<Vec<OsString>, MountPackError> {
    let mut names = fs::read_dir(dir)
        .and_then(|d| {
            d.map(|e| e.map(|e| e.file_name()))
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(|source| MountPackError::Read {
            path: dir.to_path_buf(),
            source,
        })?;
    names.sort_unstable_by(|a, b| b.as_bytes().cmp(a.as_bytes()));
    Ok(names)
}
