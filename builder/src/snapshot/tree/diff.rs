//! A step's changes: the tree walked against its baseline, what differs copied into an upper
//! dir in overlayfs's format, so the rest of the build sees what an overlay step gives.
//!
//! The rules, matching what root mode's overlay upper dir holds after `unchanged` has dropped
//! its copy-ups (so both modes give the same layer):
//! - an entry gone from the tree is a whiteout;
//! - a new entry is copied, a directory with everything in it;
//! - a directory removed and made again (another inode, or another birth time) is copied whole
//!   and marked opaque;
//! - a non-directory whose (size, mtime, ctime, inode, mode, owner, device) moved is copied,
//!   unless it is the same as the lower layers' entry by BuildKit's rule (mode, owner,
//!   device, capability, size, mtime; content when the mtimes have no nanoseconds);
//! - a directory is in the upper dir when its mode or owner changed or something below it is.
//!
//! The walk also records the tree as it is now: the next step's baseline.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::baseline::{lookup, Node};
use super::copy::{self, Links};
use super::sys::{self, Fd, Meta};
use crate::snapshot::{marker, unchanged};

/// What the walk gives: the next baseline and the newest ctime in it.
pub(super) struct Walked {
    pub baseline: Node,
    pub newest_ctime: (i64, i64),
}

/// Walks `tree` against `base`, writing the differences into the empty dir `upper`.
/// `lowers` (top first) are the layers the baseline was the merged view of.
pub(super) fn diff(
    tree: &Path,
    base: &Node,
    lowers: &[PathBuf],
    upper: &Path,
) -> io::Result<Walked> {
    let root = Fd::open_path(tree).map_err(|e| sys::at("opening", tree, e))?;
    let up = Fd::open_path(upper).map_err(|e| sys::at("opening", upper, e))?;
    let mut w = Walk {
        lowers,
        upper: Upper {
            dirs: vec![(Vec::new(), Rc::new(up))],
            made: Vec::new(),
        },
        links: Links::default(),
        newest: (0, 0),
        stack: Vec::new(),
    };
    let meta = root.meta()?;
    let root = Rc::new(root);
    w.stack.push((meta, Rc::clone(&root)));
    let mut path = Vec::new();
    let mut node = w.dir(&root, base, &mut path)?;
    node.meta = meta;
    w.upper.finish()?;
    Ok(Walked {
        baseline: node,
        newest_ctime: w.newest,
    })
}

struct Walk<'a> {
    lowers: &'a [PathBuf],
    upper: Upper,
    links: Links,
    newest: (i64, i64),
    /// The tree dirs along the walk's path, the root first, with their `lstat`.
    stack: Vec<(Meta, Rc<Fd>)>,
}

impl Walk<'_> {
    /// The children of the tree dir `dir` (at `path`) against `base`; returns its new record
    /// (its own meta filled in by the caller).
    fn dir(&mut self, dir: &Rc<Fd>, base: &Node, path: &mut Vec<CString>) -> io::Result<Node> {
        let mut node = Node::new(base.meta);
        let names = dir.names()?;
        let (mut i, mut j) = (0, 0);
        while i < names.len() || j < base.kids.len() {
            let here = names.get(i).map(|n| n.as_c_str());
            let was = base.kids.get(j).map(|(n, k)| (n.as_c_str(), k));
            match (here, was) {
                (Some(n), Some((b, _))) if n > b => {
                    self.removed(path, b)?;
                    j += 1;
                }
                (None, Some((b, _))) => {
                    self.removed(path, b)?;
                    j += 1;
                }
                (Some(n), Some((b, old))) if n == b => {
                    if let Some(kid) = self.both(dir, n, old, path)? {
                        node.kids.push((n.to_owned(), kid));
                    } else {
                        self.removed(path, n)?;
                    }
                    i += 1;
                    j += 1;
                }
                (Some(n), _) => {
                    if let Some(m) = dir.stat(n)? {
                        let parent = self.upper.at(path, &self.stack)?;
                        let kid = copy::copy_tree(
                            dir,
                            n,
                            &m,
                            &parent,
                            false,
                            &mut self.links,
                            &mut self.newest,
                        )?;
                        node.kids.push((n.to_owned(), kid));
                    }
                    i += 1;
                }
                (None, None) => unreachable!("loop condition"),
            }
        }
        Ok(node)
    }

    /// `name` is in the baseline (`old`) and in the tree: its new record, None if it went
    /// meanwhile.
    fn both(
        &mut self,
        dir: &Fd,
        name: &CStr,
        old: &Node,
        path: &mut Vec<CString>,
    ) -> io::Result<Option<Node>> {
        let Some(cur) = dir.stat(name)? else {
            return Ok(None);
        };
        self.newest = self.newest.max(cur.ctime);
        let same_inode = cur.inode() == old.meta.inode() && cur.btime == old.meta.btime;
        if cur.is_dir() && old.meta.is_dir() && same_inode {
            let sub = Rc::new(dir.open_dir(name)?);
            path.push(name.to_owned());
            self.stack.push((cur, Rc::clone(&sub)));
            let mut kid = self.dir(&sub, old, path)?;
            kid.meta = cur;
            let attrs = (cur.mode, cur.uid, cur.gid) != (old.meta.mode, old.meta.uid, old.meta.gid);
            if attrs {
                self.upper.at(path, &self.stack)?;
            }
            self.stack.pop();
            path.pop();
            return Ok(Some(kid));
        }
        if cur.is_dir() || old.meta.is_dir() || !same_inode || changed(&cur, &old.meta) {
            if !cur.is_dir() && !old.meta.is_dir() && self.same_as_lower(dir, name, &cur, path)? {
                return Ok(Some(Node::new(cur)));
            }
            let parent = self.upper.at(path, &self.stack)?;
            // A directory made anew over one that was there hides the old one's contents.
            let opaque = cur.is_dir() && old.meta.is_dir();
            if parent.stat(name)?.is_some() {
                parent.remove_all(name)?;
            }
            let kid = copy::copy_tree(
                dir,
                name,
                &cur,
                &parent,
                opaque,
                &mut self.links,
                &mut self.newest,
            )?;
            return Ok(Some(kid));
        }
        Ok(Some(Node::new(cur)))
    }

    /// A whiteout for `name` under `path`.
    fn removed(&mut self, path: &[CString], name: &CStr) -> io::Result<()> {
        let parent = self.upper.at(path, &self.stack)?;
        parent.remove_all(name)?;
        marker::make_whiteout(parent.as_raw_fd(), name)?;
        Ok(())
    }

    /// Whether the tree's non-directory `name` equals the lower layers' entry by BuildKit's
    /// rule (what root mode's `unchanged` drops).
    fn same_as_lower(
        &self,
        dir: &Fd,
        name: &CStr,
        cur: &Meta,
        path: &[CString],
    ) -> io::Result<bool> {
        let mut comps: Vec<&CStr> = path.iter().map(|c| c.as_c_str()).collect();
        comps.push(name);
        let Some(low) = lookup(self.lowers, &comps)? else {
            return Ok(false);
        };
        if cur.nlink > 1 {
            return Ok(false);
        }
        let here = dir.xattr_path(name);
        unchanged::same_entry(&here, &low)
    }
}

/// Whether what `lstat` says moved in a way the diff counts (not atime, not nlink alone).
fn changed(a: &Meta, b: &Meta) -> bool {
    (a.size, a.mtime, a.ctime, a.mode, a.uid, a.gid, a.rdev)
        != (b.size, b.mtime, b.ctime, b.mode, b.uid, b.gid, b.rdev)
}

/// The upper dir, its directories made as the walk first needs them; those it made take the
/// tree directories' metadata once everything under them is written ([`Upper::finish`]).
struct Upper {
    /// Open upper dirs along the walk's path, the root first.
    dirs: Vec<(Vec<CString>, Rc<Fd>)>,
    /// Directories made, with the tree dir whose metadata they take.
    made: Vec<(Rc<Fd>, Meta, sys::Xattrs)>,
}

impl Upper {
    /// The upper dir at `path`, made (with its missing parents) if needed; `tree` holds the
    /// tree dirs along `path` (root first).
    fn at(&mut self, path: &[CString], tree: &[(Meta, Rc<Fd>)]) -> io::Result<Rc<Fd>> {
        while let Some((p, _)) = self.dirs.last() {
            if p.len() <= path.len() && path[..p.len()] == p[..] {
                break;
            }
            self.dirs.pop();
        }
        loop {
            let (p, fd) = self.dirs.last().expect("the root stays");
            if p.len() == path.len() {
                return Ok(Rc::clone(fd));
            }
            let k = p.len();
            let name = &path[k];
            let fd = Rc::clone(fd);
            let mut next = p.clone();
            next.push(name.clone());
            if !fd.stat(name)?.is_some_and(|m| m.is_dir()) {
                fd.mkdir(name, 0o700)?;
                let sub = Rc::new(fd.open_dir(name)?);
                let (meta, tree_dir) = &tree[k + 1];
                let xattrs = sys::fd_xattrs(tree_dir.file())?;
                self.made.push((Rc::clone(&sub), *meta, xattrs));
                self.dirs.push((next, sub));
                continue;
            }
            let sub = Rc::new(fd.open_dir(name)?);
            self.dirs.push((next, sub));
        }
    }

    /// Sets the made directories' owner, mode, xattrs and times.
    fn finish(self) -> io::Result<()> {
        for (dir, meta, xattrs) in &self.made {
            copy::set_meta(dir.file(), meta, xattrs, false)?;
        }
        Ok(())
    }
}
