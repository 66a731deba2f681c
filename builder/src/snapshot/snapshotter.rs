//! The snapshotter seam: how a step gets a writable root file tree over a stack of snapshots,
//! how its changes come back as a snapshot (an upper dir in overlayfs's format: whole files,
//! 0/0 character-device whiteouts, opaque dirs), and how a stack is seen read-only (COPY
//! --from, bind mounts). overlayfs is the one there is today: as root, and rootless (in
//! pallet's user namespace, with `userxattr`: the same type, whose mounts and xattrs follow the
//! process's `Privilege`, see `overlay` and `whiteout`); fuse-overlayfs or a copy snapshotter
//! for unprivileged containers plug in here. The solver and `pallet run` hold a
//! `&dyn Snapshotter`.

use super::overlay::Overlay;
use super::unchanged::drop_unchanged;
use std::io;
use std::path::{Path, PathBuf};

/// Makes root file trees over snapshot stacks.
pub trait Snapshotter: Send + Sync {
    /// What makes the trees, for the build's header line (`overlayfs`).
    fn describe(&self) -> String;

    /// A writable tree over `lowers` (top first; may be empty) in the step directory `step`.
    /// Its changes land in `step/upper` once [`Active::commit`] returns.
    fn prepare(&self, lowers: &[PathBuf], step: &Path) -> io::Result<Box<dyn Active>>;

    /// A read-only view of `lowers` (top first) at `at` (an empty dir it may create).
    fn view(&self, lowers: &[PathBuf], at: &Path) -> io::Result<Box<dyn View>>;

    /// Checks, before any step, that trees can be made on the filesystem of `scratch` (the
    /// store's tmp dir), so a build fails at its start with the reason instead of at its first
    /// step. Err: what the kernel refused. Free where nothing can be refused (the default).
    fn probe(&self, _scratch: &Path) -> io::Result<()> {
        Ok(())
    }
}

/// A writable tree in use; released (unmounted) on drop.
pub trait Active: Send {
    /// The root of the tree, for a process or a file op to work in.
    fn root(&self) -> &Path;

    /// Ends the tree's use and gives its changes as an upper dir in overlayfs's format,
    /// without what was copied up but not changed.
    fn commit(self: Box<Self>) -> io::Result<PathBuf>;
}

/// A read-only tree in use; released on drop.
pub trait View: Send {
    fn root(&self) -> &Path;
}

/// overlayfs mounts, as root or (in pallet's user namespace) with `userxattr` (see
/// [`super::overlay`] for the options and their reasons).
#[derive(Debug, Default, Clone, Copy)]
pub struct OverlaySnapshotter;

impl Snapshotter for OverlaySnapshotter {
    fn describe(&self) -> String {
        match super::whiteout::Privilege::of_this_process() {
            super::whiteout::Privilege::Root => "overlayfs".into(),
            super::whiteout::Privilege::Rootless => "overlayfs userxattr".into(),
        }
    }

    fn prepare(&self, lowers: &[PathBuf], step: &Path) -> io::Result<Box<dyn Active>> {
        let [upper, work, merged] = ["upper", "work", "merged"].map(|d| step.join(d));
        let mount = Overlay::mount(lowers, &upper, &work, &merged)?;
        Ok(Box::new(ActiveOverlay {
            mount,
            lowers: lowers.to_vec(),
            step: step.to_path_buf(),
            upper,
        }))
    }

    fn view(&self, lowers: &[PathBuf], at: &Path) -> io::Result<Box<dyn View>> {
        Ok(Box::new(Overlay::mount_readonly(lowers, at)?))
    }

    /// Rootless only (root's overlayfs works on any filesystem the store can be on): one
    /// `userxattr` mount in a temp dir, unmounted and removed (see `probe`).
    fn probe(&self, scratch: &Path) -> io::Result<()> {
        match super::whiteout::Privilege::of_this_process() {
            super::whiteout::Privilege::Root => Ok(()),
            super::whiteout::Privilege::Rootless => super::probe::rootless_overlay(scratch),
        }
    }
}

struct ActiveOverlay {
    mount: Overlay,
    lowers: Vec<PathBuf>,
    step: PathBuf,
    upper: PathBuf,
}

impl Active for ActiveOverlay {
    fn root(&self) -> &Path {
        &self.mount.merged
    }

    fn commit(self: Box<Self>) -> io::Result<PathBuf> {
        let ActiveOverlay {
            mount,
            lowers,
            step,
            upper,
        } = *self;
        drop(mount);
        drop_copy_ups(&lowers, &step, &upper)?;
        Ok(upper)
    }
}

impl View for Overlay {
    fn root(&self) -> &Path {
        &self.merged
    }
}

/// Removes from a finished step's upper dir what overlayfs copied up without a change (see
/// [`super::unchanged`]), comparing with a read-only view of the step's lower layers.
pub fn drop_copy_ups(lowers: &[PathBuf], step: &Path, upper: &Path) -> io::Result<()> {
    if lowers.is_empty() {
        return Ok(());
    }
    let view = step.join("lower-view");
    std::fs::create_dir_all(&view)
        .map_err(|e| io::Error::new(e.kind(), format!("creating {}: {e}", view.display())))?;
    let mounted = Overlay::mount_readonly(lowers, &view).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("mounting the step's lower layers to compare: {e}"),
        )
    })?;
    drop_unchanged(upper, &mounted.merged)
        .map(|_| ())
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("comparing the step's changes with its lower layers: {e}"),
            )
        })
}
