//! The baseline: what every entry of a tree looked like (its `lstat`) when the tree was
//! handed to a step, kept as a tree of names. A step's changes are what differs from it.
//!
//! Only the `lstat` is kept. The content and xattrs an entry had are those of the step's lower
//! layers (the tree is their merged view when the step starts), and are read from there in the
//! rare case the diff needs them ([`lookup`]).

use std::ffi::{CStr, CString};
use std::io;
use std::path::{Path, PathBuf};

use super::sys::{Fd, Meta};
use crate::snapshot::marker;

/// One entry: its `lstat`, and for a directory its children sorted by name.
#[derive(Debug, Clone)]
pub(super) struct Node {
    pub meta: Meta,
    pub kids: Vec<(CString, Node)>,
}

impl Node {
    pub fn new(meta: Meta) -> Node {
        Node {
            meta,
            kids: Vec::new(),
        }
    }
}

/// Where the entry at `comps` (a path inside the tree) came from: the file in the topmost of
/// `lowers` (top first) that has it and is not hidden by a whiteout, an opaque directory or a
/// non-directory above it. None when no lower shows it.
pub(super) fn lookup(lowers: &[PathBuf], comps: &[&CStr]) -> io::Result<Option<PathBuf>> {
    let Some((last, parents)) = comps.split_last() else {
        return Ok(None);
    };
    'layers: for lower in lowers {
        let mut dir = match Fd::open_path(lower) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let mut opaque = false;
        for comp in parents {
            match dir.stat(comp)? {
                None => {
                    if opaque {
                        return Ok(None);
                    }
                    continue 'layers;
                }
                Some(m) if m.is_dir() => {
                    dir = dir.open_dir(comp)?;
                    opaque |= marker::is_opaque(dir.file())?;
                }
                // A whiteout or any non-directory hides the rest of the path below it.
                Some(_) => return Ok(None),
            }
        }
        match dir.stat(last)? {
            None if opaque => return Ok(None),
            None => continue,
            Some(m) if m.is_device_whiteout() => return Ok(None),
            Some(m)
                if m.is_file()
                    && m.size == 0
                    && marker::is_xattr_whiteout(std::os::fd::AsRawFd::as_raw_fd(&dir), last)? =>
            {
                return Ok(None)
            }
            Some(_) => return Ok(Some(path_of(lower, comps))),
        }
    }
    Ok(None)
}

/// `root` joined with `comps`.
pub(super) fn path_of(root: &Path, comps: &[&CStr]) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    let mut p = root.to_path_buf();
    for c in comps {
        p.push(std::ffi::OsStr::from_bytes(c.to_bytes()));
    }
    p
}
