//! The tree snapshotter: for places where nothing can be mounted (an unprivileged container:
//! no overlayfs, no user namespaces). A step's root file tree is a plain directory holding
//! the merged view of its lower layers; the step's changes are the differences from the
//! baseline recorded when the tree was handed out (`diff`), given back as an upper dir in
//! overlayfs's format, so the store and the layer writer take them as they take an overlay
//! step's.
//!
//! A stage's tree is kept between its steps: once a step's changes are committed, the tree
//! (now the merged view of the lowers plus that upper dir) waits in a small pool, keyed by the
//! identity (device, inode) of the directories it is the view of; the upper dir's inode stays
//! the same when the store renames it into a snapshot, so the next step over
//! `[that snapshot, ..the same lowers]` takes the tree as it is instead of copying the stack
//! again. An open fd of each keeps the inodes from being reused while the tree waits. A tree
//! is also taken when a few layers sit above the ones it views (steps that wrote their layer
//! without a tree: most COPYs, cache hits): those are applied onto it and the baseline taken
//! again. Read-only views (COPY --from, bind sources) hard-link their files from the
//! snapshots instead of copying them: nothing writes through a view.
//!
//! Timestamps: a change is seen by its ctime, which the kernel stamps from a clock that ticks
//! every few milliseconds; a tree is handed out only once that clock has passed the newest
//! ctime recorded, so a step's first write cannot carry the same ctime as the baseline.
//!
//! Files: `sys` (the fd-relative calls), `baseline` (the record of a tree), `copy` (entries
//! copied; layers applied), `diff` (the walk after a step), `confined` (directories inside a
//! tree for the chroot executor's stand-ins for mounts).

mod baseline;
mod confined;
mod copy;
mod diff;
mod sys;

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::snapshotter::{Active, Snapshotter, View};
use baseline::Node;
pub use confined::{open_beneath, TreeDir};
use sys::{Fd, Meta};

/// How many finished trees wait for a next step at most (each is a whole rootfs on disk).
const POOL_SIZE: usize = 4;

/// Plain directories, copied from the lowers and diffed against a baseline after each step.
#[derive(Default)]
pub struct TreeSnapshotter {
    pool: Arc<Mutex<Vec<Waiting>>>,
    counter: AtomicU64,
}

/// A finished step's tree, waiting for the step after it.
struct Waiting {
    /// The directories it is the merged view of (top first), held open.
    dirs: Vec<File>,
    path: PathBuf,
    baseline: Node,
    newest_ctime: (i64, i64),
}

impl TreeSnapshotter {
    pub fn new() -> TreeSnapshotter {
        TreeSnapshotter::default()
    }

    /// A fresh tree path beside the step dirs (the store's tmp/), named with this process's
    /// pid as the store's temporaries are, so a killed run's trees are cleaned up.
    fn tree_path(&self, step: &Path) -> PathBuf {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let dir = step.parent().unwrap_or(step);
        dir.join(format!("pallet-{}-tree-{n}", std::process::id()))
    }

    /// A waiting tree that is the view of `ids[k..]` (the smallest such k: the layers above
    /// it are few, steps that wrote their layer without a tree, like most COPYs), taken out of
    /// the pool, with k.
    fn take(&self, ids: &[(u64, u64)]) -> Option<(Waiting, usize)> {
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        let (i, k) = pool
            .iter()
            .enumerate()
            .filter_map(|(i, w)| {
                let k = ids.len().checked_sub(w.dirs.len())?;
                let same = w.dirs.iter().zip(&ids[k..]).all(|(f, id)| {
                    sys::fstat(std::os::fd::AsRawFd::as_raw_fd(f))
                        .ok()
                        .map(|m| m.inode())
                        == Some(*id)
                });
                same.then_some((i, k))
            })
            .min_by_key(|&(_, k)| k)?;
        Some((pool.remove(i), k))
    }
}

impl Drop for TreeSnapshotter {
    fn drop(&mut self) {
        let pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        for w in pool.iter() {
            let _ = remove_tree(&w.path);
        }
    }
}

impl Snapshotter for TreeSnapshotter {
    fn describe(&self) -> String {
        "copied trees".into()
    }

    fn prepare(&self, lowers: &[PathBuf], step: &Path) -> io::Result<Box<dyn Active>> {
        let started = Instant::now();
        let dirs = open_all(lowers)?;
        let ids: Vec<(u64, u64)> = dirs
            .iter()
            .map(|f| sys::fstat(std::os::fd::AsRawFd::as_raw_fd(f)).map(|m| m.inode()))
            .collect::<io::Result<_>>()?;
        let kept = self.take(&ids).map(|(w, k)| {
            if k == 0 {
                return Ok((w.path, w.baseline, w.newest_ctime, "kept"));
            }
            // The layers above it, applied as they are (whole files), then recorded anew.
            let made = apply(&lowers[..k], &w.path, false).and_then(|()| record(&w.path));
            match made {
                Ok((node, newest)) => Ok((w.path, node, newest, "kept and topped up")),
                Err(e) => {
                    let _ = remove_tree(&w.path);
                    Err(sys::at("applying layers onto", &w.path, e))
                }
            }
        });
        let (path, baseline, newest, how) = match kept.transpose()? {
            Some(kept) => kept,
            None => {
                let path = self.tree_path(step);
                let made = populate(lowers, &path, false).and_then(|()| record(&path));
                match made {
                    Ok((node, newest)) => (path, node, newest, "copied"),
                    Err(e) => {
                        let _ = remove_tree(&path);
                        return Err(sys::at("copying the layers into", &path, e));
                    }
                }
            }
        };
        settle_clock(newest);
        timing(|| {
            format!(
                "tree {how} in {:.3} s ({} layers)",
                started.elapsed().as_secs_f64(),
                lowers.len()
            )
        });
        Ok(Box::new(ActiveTree {
            pool: Arc::clone(&self.pool),
            path: Some(path),
            step: step.to_path_buf(),
            lowers: lowers.to_vec(),
            dirs,
            baseline,
        }))
    }

    fn view(&self, lowers: &[PathBuf], at: &Path) -> io::Result<Box<dyn View>> {
        let started = Instant::now();
        let _ = std::fs::remove_dir(at);
        if let Err(e) = populate(lowers, at, true) {
            let _ = remove_tree(at);
            return Err(sys::at("copying the layers into", at, e));
        }
        timing(|| format!("view copied in {:.3} s", started.elapsed().as_secs_f64()));
        Ok(Box::new(TreeView {
            path: at.to_path_buf(),
        }))
    }
}

/// A tree a step works in; removed on drop unless committed (then it waits in the pool).
struct ActiveTree {
    pool: Arc<Mutex<Vec<Waiting>>>,
    path: Option<PathBuf>,
    step: PathBuf,
    lowers: Vec<PathBuf>,
    dirs: Vec<File>,
    baseline: Node,
}

impl Active for ActiveTree {
    fn root(&self) -> &Path {
        self.path.as_deref().expect("until commit")
    }

    fn commit(mut self: Box<Self>) -> io::Result<PathBuf> {
        let started = Instant::now();
        let path = self.path.take().expect("once");
        let upper = self.step.join("upper");
        let walked = std::fs::create_dir_all(&upper)
            .and_then(|()| diff::diff(&path, &self.baseline, &self.lowers, &upper));
        let walked = match walked {
            Ok(w) => w,
            Err(e) => {
                let _ = remove_tree(&path);
                return Err(io::Error::new(
                    e.kind(),
                    format!("comparing the step's tree with its baseline: {e}"),
                ));
            }
        };
        timing(|| format!("tree diffed in {:.3} s", started.elapsed().as_secs_f64()));
        let mut dirs = vec![File::open(&upper)?];
        dirs.append(&mut self.dirs);
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() >= POOL_SIZE {
            let old = pool.remove(0);
            let _ = remove_tree(&old.path);
        }
        pool.push(Waiting {
            dirs,
            path,
            baseline: walked.baseline,
            newest_ctime: walked.newest_ctime,
        });
        Ok(upper)
    }
}

impl Drop for ActiveTree {
    fn drop(&mut self) {
        if let Some(path) = &self.path {
            let _ = remove_tree(path);
        }
    }
}

/// A read-only view: a copy of the stack, removed on drop.
struct TreeView {
    path: PathBuf,
}

impl View for TreeView {
    fn root(&self) -> &Path {
        &self.path
    }
}

impl Drop for TreeView {
    fn drop(&mut self) {
        let _ = remove_tree(&self.path);
    }
}

fn open_all(lowers: &[PathBuf]) -> io::Result<Vec<File>> {
    lowers
        .iter()
        .map(|l| File::open(l).map_err(|e| sys::at("opening", l, e)))
        .collect()
}

/// Makes `at` (which must not exist) the merged view of `lowers` (top first); `share_files`:
/// regular files hard-linked from the lowers (a read-only view), else copied.
fn populate(lowers: &[PathBuf], at: &Path, share_files: bool) -> io::Result<()> {
    std::fs::create_dir(at)?;
    apply(lowers, at, share_files)
}

/// Applies `lowers` (top first) onto the tree at `at`, the bottom one first.
fn apply(lowers: &[PathBuf], at: &Path, share_files: bool) -> io::Result<()> {
    let dst = Rc::new(Fd::open_path(at)?);
    let mut root_meta: Option<(Meta, sys::Xattrs)> = None;
    for lower in lowers.iter().rev() {
        let src = Fd::open_path(lower)?;
        let mut links = copy::Links::sharing_files(share_files);
        copy::apply_layer(&src, &dst, &mut links)?;
        root_meta = Some((src.meta()?, sys::fd_xattrs(src.file())?));
    }
    match root_meta {
        Some((m, x)) => copy::set_meta(dst.file(), &m, &x, true),
        None if share_files => Ok(()),
        None => {
            use std::os::unix::fs::PermissionsExt;
            dst.file()
                .set_permissions(std::fs::Permissions::from_mode(0o755))
        }
    }
}

/// The baseline of the tree at `path`, and its newest ctime.
fn record(path: &Path) -> io::Result<(Node, (i64, i64))> {
    fn walk(dir: &Fd, node: &mut Node, newest: &mut (i64, i64)) -> io::Result<()> {
        for name in dir.names()? {
            let Some(m) = dir.stat(&name)? else { continue };
            *newest = (*newest).max(m.ctime);
            let mut kid = Node::new(m);
            if m.is_dir() {
                walk(&dir.open_dir(&name)?, &mut kid, newest)?;
            }
            node.kids.push((name, kid));
        }
        Ok(())
    }
    let root = Fd::open_path(path)?;
    let meta = root.meta()?;
    let mut newest = meta.ctime;
    let mut node = Node::new(meta);
    walk(&root, &mut node, &mut newest)?;
    Ok((node, newest))
}

/// Waits (a few ms at most) until the kernel's coarse clock has passed `newest`, so that any
/// change from now on gets a later ctime than the baseline holds.
fn settle_clock(newest: (i64, i64)) {
    let start = Instant::now();
    while sys::coarse_now() <= newest && start.elapsed() < Duration::from_millis(100) {
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// With `PALLET_TREE_TIMING=1`, one stderr line per copy and diff (for bench/chroot.sh's
/// phase breakdown).
fn timing(line: impl FnOnce() -> String) {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if *ON.get_or_init(|| std::env::var_os("PALLET_TREE_TIMING").is_some_and(|v| v == "1")) {
        eprintln!("pallet: {}", line());
    }
}

/// Removes a tree, never following a symlink in it.
fn remove_tree(path: &Path) -> io::Result<()> {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Ok(());
    };
    let dir = Fd::open_path(parent)?;
    let name = sys::cpath(Path::new(name))?;
    dir.remove_all(&name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::{FileTypeExt, MetadataExt};

    fn is_whiteout(p: &Path) -> bool {
        let m = fs::symlink_metadata(p).unwrap();
        (m.file_type().is_char_device() && m.rdev() == 0)
            || (m.is_file()
                && m.len() == 0
                && crate::snapshot::whiteout::overlay_xattr_names("whiteout")
                    .iter()
                    .any(|n| xattr::get(p, n).ok().flatten().is_some()))
    }

    /// One lower layer; a step adds, edits, removes, re-makes a directory and touches a file
    /// without changing it; the upper dir holds exactly the changes; the next step over
    /// [upper, lower] takes the same tree from the pool.
    #[test]
    fn a_steps_changes_become_an_upper_dir_and_the_tree_is_kept() {
        let d = tempfile::tempdir().unwrap();
        let lower = d.path().join("lower");
        for dir in ["etc", "d/sub", "keep"] {
            fs::create_dir_all(lower.join(dir)).unwrap();
        }
        fs::write(lower.join("etc/passwd"), "root\n").unwrap();
        fs::write(lower.join("d/sub/f"), "f").unwrap();
        fs::write(lower.join("keep/gone"), "g").unwrap();
        fs::write(lower.join("keep/edit"), "old").unwrap();
        let tmp = d.path().join("tmp");
        fs::create_dir_all(tmp.join("step1")).unwrap();
        let snap = TreeSnapshotter::new();
        let active = snap
            .prepare(std::slice::from_ref(&lower), &tmp.join("step1"))
            .unwrap();
        let root = active.root().to_path_buf();
        assert_eq!(fs::read_to_string(root.join("d/sub/f")).unwrap(), "f");
        fs::remove_file(root.join("keep/gone")).unwrap();
        fs::write(root.join("keep/edit"), "new").unwrap();
        fs::write(root.join("added"), "a").unwrap();
        fs::remove_dir_all(root.join("d")).unwrap();
        fs::create_dir(root.join("d")).unwrap();
        fs::write(root.join("d/only"), "o").unwrap();
        // Rewritten with the same bytes and mtime: not a change (BuildKit's rule).
        let m = fs::metadata(root.join("etc/passwd")).unwrap();
        fs::write(root.join("etc/passwd"), "root\n").unwrap();
        let mtime = filetime::FileTime::from_last_modification_time(&m);
        filetime::set_file_mtime(root.join("etc/passwd"), mtime).unwrap();
        let upper = active.commit().unwrap();

        assert!(is_whiteout(&upper.join("keep/gone")));
        assert_eq!(fs::read_to_string(upper.join("keep/edit")).unwrap(), "new");
        assert_eq!(fs::read_to_string(upper.join("added")).unwrap(), "a");
        assert_eq!(fs::read_to_string(upper.join("d/only")).unwrap(), "o");
        assert!(!upper.join("d/sub").exists());
        let d_dir = fs::File::open(upper.join("d")).unwrap();
        assert!(crate::snapshot::marker::is_opaque(&d_dir).unwrap());
        assert!(
            !upper.join("etc").exists(),
            "an unchanged rewrite is not a change"
        );

        // The store renames the upper dir into a snapshot: the tree is found by its inode.
        let snapshot = d.path().join("snapshot");
        fs::rename(&upper, &snapshot).unwrap();
        fs::create_dir_all(tmp.join("step2")).unwrap();
        let next = snap
            .prepare(&[snapshot.clone(), lower.clone()], &tmp.join("step2"))
            .unwrap();
        assert_eq!(
            next.root(),
            root,
            "the finished tree is taken from the pool"
        );
        assert_eq!(fs::read_to_string(next.root().join("added")).unwrap(), "a");
        fs::write(next.root().join("second"), "2").unwrap();
        let upper2 = next.commit().unwrap();
        let names: Vec<_> = fs::read_dir(&upper2)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["second"], "only the second step's change");

        // A fresh view of the same stack is a copy with the same content.
        let view = snap
            .view(&[snapshot, lower], &d.path().join("view"))
            .unwrap();
        assert_eq!(
            fs::read_to_string(view.root().join("keep/edit")).unwrap(),
            "new"
        );
        assert!(!view.root().join("keep/gone").exists());
        assert!(!view.root().join("d/sub").exists());
        drop(view);
        drop(snap);
        assert!(!root.exists(), "pooled trees go with the snapshotter");
    }
}
