//! What runc would mount, done without mounts: each target in the tree is set aside (renamed
//! into the bundle dir), the step's content put in its place (a cache dir moved in, a bind
//! source or a secret copied in, an empty dir for a tmpfs, a written file for /etc/hosts), and
//! all of it undone in reverse order after the step, before the tree is diffed: the stand-in
//! removed (or the cache dir moved back), the target's own entry renamed back, stub parents
//! removed, the parent's times restored. What a step wrote into a copied bind or a tmpfs goes
//! with them; a secret never stays in the tree.
//!
//! A target is resolved inside the tree (`rootpath`) before the step; after it, every
//! directory on the way is opened again with `O_NOFOLLOW` (`snapshot::tree::open_beneath`): a
//! step that replaced a parent with a symlink (to `/`) cannot make pallet move, copy or
//! remove anything outside the tree; the stand-in is then left where the step put it.

use std::ffi::{OsStr, OsString};
use std::io;
use std::path::{Component, Path, PathBuf};

use crate::exec::rootpath;
use crate::snapshot::tree::{open_beneath, TreeDir};

/// What one placement put in the tree, to undo.
enum Put {
    /// A copy or a new file or dir: removed.
    Made,
    /// A directory moved in from `from`: moved back.
    Moved(PathBuf),
}

struct Placed {
    /// The target's components below the root.
    comps: Vec<OsString>,
    put: Put,
    /// The entry that was at the target, set aside here.
    aside: Option<PathBuf>,
    /// How many of the target's parents were created for it (the deepest ones).
    stubs: usize,
    /// The mtime of the deepest parent that was there, restored after.
    parent_mtime: (i64, i64),
}

impl Placed {
    fn name(&self) -> &OsStr {
        self.comps.last().expect("not the root")
    }
    fn parent(&self) -> Vec<&OsStr> {
        let n = self.comps.len() - 1;
        self.comps[..n].iter().map(|c| c.as_os_str()).collect()
    }
}

/// The placements of one step, undone by [`Placements::undo`] (or on drop).
pub(super) struct Placements {
    rootfs: PathBuf,
    bundle: PathBuf,
    done: Vec<Placed>,
}

fn err(what: String) -> impl FnOnce(io::Error) -> io::Error {
    move |e| io::Error::new(e.kind(), format!("{what}: {e}"))
}

impl Placements {
    pub fn new(rootfs: &Path, bundle: &Path) -> Placements {
        Placements {
            rootfs: rootfs.to_path_buf(),
            bundle: bundle.to_path_buf(),
            done: Vec::new(),
        }
    }

    /// Makes room at `target` (absolute, in the tree): resolves it inside the tree, creates
    /// missing parents, sets aside what is there. Returns the placement (not yet recorded)
    /// and the parent dir.
    fn clear(&mut self, target: &str) -> io::Result<(Placed, TreeDir)> {
        let at = rootpath::resolve(&self.rootfs, OsStr::new(target), false)?;
        let comps: Vec<OsString> = at
            .strip_prefix(&self.rootfs)
            .map_err(|_| io::Error::other(format!("{target} resolves outside the tree")))?
            .components()
            .filter_map(|c| match c {
                Component::Normal(n) => Some(n.to_os_string()),
                _ => None,
            })
            .collect();
        if comps.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("cannot stand in for a mount over the root ({target})"),
            ));
        }
        let mut dir = open_beneath(&self.rootfs, &[])?;
        let mut stubs = 0;
        let mut parent_mtime = dir.mtime()?;
        let n = comps.len() - 1;
        for c in &comps[..n] {
            match dir.kind(c)? {
                Some(true) => {}
                Some(false) => {
                    return Err(io::Error::other(format!(
                        "{target}: {} is not a directory",
                        c.to_string_lossy()
                    )))
                }
                None => {
                    dir.mkdir(c, 0o755)?;
                    stubs += 1;
                }
            }
            dir = dir.open(c)?;
            if stubs == 0 {
                parent_mtime = dir.mtime()?;
            }
        }
        let name = &comps[n];
        let aside = match dir.kind(name)? {
            Some(_) => {
                let aside = self.bundle.join(format!("aside-{}", self.done.len()));
                dir.rename_out(name, &aside)?;
                Some(aside)
            }
            None => None,
        };
        let placed = Placed {
            comps,
            put: Put::Made,
            aside,
            stubs,
            parent_mtime,
        };
        Ok((placed, dir))
    }

    /// A file holding `text` at `target` (mode 644, root-owned), as runc's bind of /etc/hosts.
    pub fn file(&mut self, target: &str, text: &str) -> io::Result<()> {
        let (p, dir) = self
            .clear(target)
            .map_err(err(format!("placing {target}")))?;
        let written = dir.write_file(p.name(), text.as_bytes(), 0o644, (0, 0));
        self.done.push(p);
        written.map_err(err(format!("writing {target}")))
    }

    /// A copy of `source` (a file or a directory tree) at `target`: a bind mount's or a
    /// secret's content.
    pub fn copy(&mut self, target: &str, source: &Path) -> io::Result<()> {
        let (p, dir) = self
            .clear(target)
            .map_err(err(format!("placing {target}")))?;
        let copied = dir.copy_in(source, p.name());
        self.done.push(p);
        copied.map_err(err(format!("copying {} to {target}", source.display())))
    }

    /// The directory `source` moved to `target` for the step and back after it: a cache
    /// mount (the store's cache dirs are on the tree's filesystem).
    pub fn move_dir(&mut self, target: &str, source: &Path) -> io::Result<()> {
        let (mut p, dir) = self
            .clear(target)
            .map_err(err(format!("placing {target}")))?;
        let moved = dir.rename_in(source, p.name());
        if moved.is_ok() {
            p.put = Put::Moved(source.to_path_buf());
        }
        self.done.push(p);
        moved.map_err(err(format!("moving {} to {target}", source.display())))
    }

    /// An empty directory at `target` with `mode`: a tmpfs.
    pub fn empty_dir(&mut self, target: &str, mode: u32) -> io::Result<()> {
        let (p, dir) = self
            .clear(target)
            .map_err(err(format!("placing {target}")))?;
        let made = dir.mkdir(p.name(), mode);
        self.done.push(p);
        made.map_err(err(format!("making {target}")))
    }

    /// Undoes every placement, the last first; the first failure (after trying them all).
    pub fn undo(&mut self) -> io::Result<()> {
        let mut first = None;
        while let Some(p) = self.done.pop() {
            if let Err(e) = self.undo_one(&p) {
                let target = PathBuf::from("/").join(p.comps.iter().collect::<PathBuf>());
                first.get_or_insert(io::Error::new(
                    e.kind(),
                    format!(
                        "undoing the stand-in for a mount at {}: {e}",
                        target.display()
                    ),
                ));
            }
        }
        first.map_or(Ok(()), Err)
    }

    fn undo_one(&self, p: &Placed) -> io::Result<()> {
        let parent = p.parent();
        let dir = match open_beneath(&self.rootfs, &parent) {
            Ok(dir) => dir,
            Err(e) => {
                // The step moved the parent away: a cache dir goes back empty.
                if let Put::Moved(from) = &p.put {
                    std::fs::create_dir_all(from)?;
                }
                return Err(e);
            }
        };
        match &p.put {
            Put::Made => dir.remove_all(p.name())?,
            Put::Moved(from) => {
                if dir.kind(p.name())? == Some(true) {
                    dir.rename_out(p.name(), from)?;
                } else {
                    // The step removed or replaced the cache dir: the cache starts over.
                    dir.remove_all(p.name())?;
                    std::fs::create_dir_all(from)?;
                }
            }
        }
        if let Some(aside) = &p.aside {
            dir.rename_in(aside, p.name())?;
        }
        drop(dir);
        for k in 0..p.stubs {
            let upto = parent.len() - k;
            let d = open_beneath(&self.rootfs, &parent[..upto - 1])?;
            d.rmdir_if_empty(parent[upto - 1])?;
        }
        let kept = parent.len() - p.stubs;
        open_beneath(&self.rootfs, &parent[..kept])?.set_mtime(p.parent_mtime)
    }
}

impl Drop for Placements {
    fn drop(&mut self) {
        let _ = self.undo();
    }
}
