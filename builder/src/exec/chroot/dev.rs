//! The minimal /dev and the /proc of a chroot step, made without mounts where mounts are
//! refused.
//!
//! /dev: null, zero, full, random, urandom and tty made with mknod (CAP_MKNOD is in docker's
//! default set, and its device cgroup allows creating any node), plus the usual symlinks
//! (fd, stdin, stdout, stderr) and empty shm and pts dirs; all of it is removed after the step
//! and /dev's times restored, so none of it reaches a layer (runc mounts a tmpfs there). An
//! entry the image itself has in /dev is left as it is. Where mknod is refused, the step
//! runs without those nodes and pallet says so once.
//!
//! /proc: mounted (proc) when allowed, unmounted after; refused in an unprivileged container
//! (mount needs CAP_SYS_ADMIN), which pallet says once, naming what breaks.
//!
//! /dev, /proc and /sys are created when the image lacks them and stay, as runc leaves them.

use std::ffi::{CString, OsStr};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Once;

use crate::snapshot::tree::{open_beneath, TreeDir};

/// (name, major, minor): docker's default devices.
const NODES: [(&str, u32, u32); 6] = [
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

const LINKS: [(&str, &str); 5] = [
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
    ("ptmx", "pts/ptmx"),
];

static NO_MKNOD: Once = Once::new();
static NO_PROC: Once = Once::new();

/// What was added to /dev and whether /proc was mounted; undone by [`Dev::undo`].
pub(super) struct Dev {
    rootfs: PathBuf,
    made: Vec<&'static str>,
    dev_mtime: (i64, i64),
    proc: Option<PathBuf>,
}

impl Dev {
    /// Makes /dev's nodes and mounts /proc where it can.
    pub fn make(rootfs: &Path) -> io::Result<Dev> {
        let root = open_beneath(rootfs, &[])?;
        for d in ["dev", "proc", "sys"] {
            if root.kind(OsStr::new(d))?.is_none() {
                root.mkdir(OsStr::new(d), 0o755)?;
            }
        }
        let dev = root.open(OsStr::new("dev"))?;
        let mut out = Dev {
            rootfs: rootfs.to_path_buf(),
            made: Vec::new(),
            dev_mtime: dev.mtime()?,
            proc: None,
        };
        for (name, major, minor) in NODES {
            if dev.kind(OsStr::new(name))?.is_some() {
                continue;
            }
            match dev.mknod(
                OsStr::new(name),
                libc::S_IFCHR | 0o666,
                libc::makedev(major, minor),
            ) {
                Ok(()) => out.made.push(name),
                Err(e) if e.raw_os_error() == Some(libc::EPERM) => NO_MKNOD.call_once(|| {
                    eprintln!(
                        "pallet: note: device nodes cannot be made here ({e}): RUN steps run \
                         without /dev/null, /dev/zero, /dev/urandom and the like"
                    )
                }),
                Err(e) => return Err(e),
            }
        }
        for (name, target) in LINKS {
            if dev.kind(OsStr::new(name))?.is_none() {
                dev.symlink(OsStr::new(name), OsStr::new(target))?;
                out.made.push(name);
            }
        }
        for (name, mode) in [("shm", 0o1777), ("pts", 0o755)] {
            if dev.kind(OsStr::new(name))?.is_none() {
                dev.mkdir(OsStr::new(name), mode)?;
                out.made.push(name);
            }
        }
        out.proc = mount_proc(&root, rootfs);
        Ok(out)
    }

    /// Removes what [`Dev::make`] added and unmounts /proc.
    pub fn undo(&mut self) -> io::Result<()> {
        if let Some(proc) = self.proc.take() {
            let c = CString::new(proc.as_os_str().as_encoded_bytes())
                .map_err(|_| io::Error::other("NUL in a path"))?;
            // SAFETY: NUL-terminated path; MNT_DETACH unmounts even if something still uses it.
            if unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) } != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        let dev = open_beneath(&self.rootfs, &[OsStr::new("dev")])?;
        for name in self.made.drain(..).rev() {
            dev.remove_all(OsStr::new(name))?;
        }
        dev.set_mtime(self.dev_mtime)
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.undo();
    }
}

/// Mounts proc on the tree's /proc (an empty dir, reached without symlinks); None, said
/// once, where that is refused.
fn mount_proc(root: &TreeDir, rootfs: &Path) -> Option<PathBuf> {
    let proc = root.open(OsStr::new("proc")).ok()?;
    // Through the opened dir's fd: a symlink swapped in cannot redirect the mount.
    let target = PathBuf::from(format!("/proc/self/fd/{}", proc.raw_fd()));
    let c = CString::new(target.as_os_str().as_encoded_bytes()).ok()?;
    let flags = libc::MS_NOSUID | libc::MS_NOEXEC | libc::MS_NODEV;
    // SAFETY: NUL-terminated strings; a null data pointer is allowed.
    let rc = unsafe {
        libc::mount(
            c"proc".as_ptr(),
            c.as_ptr(),
            c"proc".as_ptr(),
            flags,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        let e = io::Error::last_os_error();
        NO_PROC.call_once(|| {
            eprintln!(
                "pallet: note: /proc cannot be mounted here ({e}): RUN steps see an empty \
                 /proc; tools that read it fail (ps, top, pgrep, free; some installers: JDK, \
                 Node and Python setups that read /proc/self or /proc/cpuinfo)"
            )
        });
        return None;
    }
    Some(rootfs.join("proc"))
}
