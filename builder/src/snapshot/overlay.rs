//! overlayfs mounts: lower snapshots + an upper dir = a writable rootfs whose changes land in
//! the upper dir (which is then the step's snapshot).
//!
//! Owns mount(2)/umount2(2) of overlays and read-only views; knows nothing of snapshots' layout,
//! of tar, or of runc.
//!
//! - Options: `index=off`, `metacopy=off` and `redirect_dir=off`, each only when the running
//!   kernel has the parameter (`/sys/module/overlay/parameters/NAME`; older kernels refuse unknown
//!   options). containerd's overlay snapshotter and docker's overlay2 driver pass `index=off`
//!   the same way. With all three off, the upper dir holds only portable changes: whole files
//!   (no metadata-only copy-ups), whiteouts (0/0 char devices) and opaque dirs
//!   (`trusted.overlay.opaque=y`), and no `trusted.overlay.redirect` renames (a directory that came
//!   from a lower is renamed with EXDEV, and tools fall back to copy + delete), so the upper dir
//!   can be tarred as an OCI layer as it is.
//! - Long lowerdir lists: mount(2) copies at most one page of option data. When the options do
//!   not fit, the lowers (and upper and work dirs) are named by one-character-ish symlinks
//!   (`0`, `1`, ... `u`, `w`) in a scratch dir next to `work`, and the mount is made from a thread
//!   that has its own working directory (`unshare(CLONE_FS)` + `chdir`), with relative paths. The
//!   kernel resolves the links at mount time, so the scratch dir is removed right after. This is
//!   docker's overlay2 `l/` short-link idea without keeping the links around.
//! - `volatile` on every rw mount (Linux 5.10+; dropped for good after the kernel refuses it
//!   once): unmounting then skips overlayfs's syncfs of the whole upper filesystem, which cost
//!   70-330 ms per step here (the step's dirty pages written out on the critical path; BuildKit
//!   pays it). Fsyncs inside RUN become no-ops too. Durability of the result is the store's
//!   business: such a snapshot is marked unsynced (store::durability) and is rebuilt from its
//!   fsynced diff blob if the machine restarted before it was known to be on disk.
//! - Rootless (pallet in its user namespace, `Privilege::Rootless`): every mount also gets
//!   `userxattr` (Linux 5.11+), so overlayfs keeps its opaque marks in `user.overlay.*`
//!   (`trusted.*` needs CAP_SYS_ADMIN in the initial namespace), and leaves out `redirect_dir=off`:
//!   with `userxattr` the kernel refuses it on this kernel ("conflicting options:
//!   userxattr,redirect_dir=follow", since `off` follows redirects when
//!   `redirect_always_follow` is set) and already uses `nofollow`, which creates no redirects
//!   either: the upper dir is as portable as root's.
//! - A rw overlay needs at least one lower: with none, an empty dir next to `work` is used (and
//!   removed on drop). A read-only view of one lower is a read-only bind mount (as containerd
//!   does for a view of a single parent); of none, an empty read-only tmpfs.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;

use super::whiteout::Privilege;

/// A mounted overlay; unmounted on drop.
pub struct Overlay {
    pub merged: PathBuf,
    /// The empty lower dir this mount created (removed after unmounting).
    empty_lower: Option<PathBuf>,
}

impl Overlay {
    /// Mounts `lowers` (top first; may be empty, then an empty lower is used) with `upper` and
    /// `work` (same filesystem as upper) at `merged`. Long lowerdir lists must still mount
    /// (the mount data page limit: mount with short relative paths if needed).
    pub fn mount(
        lowers: &[PathBuf],
        upper: &Path,
        work: &Path,
        merged: &Path,
    ) -> std::io::Result<Overlay> {
        for dir in [upper, work, merged] {
            std::fs::create_dir_all(dir)
                .map_err(|e| context(e, format!("creating {}", dir.display())))?;
        }
        let mut empty_lower = None;
        let lowers: Vec<PathBuf> = if lowers.is_empty() {
            let empty = sibling(work, "empty-lower");
            match std::fs::create_dir(&empty) {
                Ok(()) => empty_lower = Some(empty.clone()),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => {
                    return Err(context(
                        e,
                        format!("creating the empty lower dir {}", empty.display()),
                    ))
                }
            }
            vec![empty]
        } else {
            lowers.to_vec()
        };
        let result = mount_overlay(&lowers, Some((upper, work)), merged, 0);
        match result {
            Ok(()) => Ok(Overlay {
                merged: merged.to_path_buf(),
                empty_lower,
            }),
            Err(e) => {
                if let Some(dir) = empty_lower {
                    let _ = std::fs::remove_dir(dir);
                }
                Err(e)
            }
        }
    }

    /// A read-only view of `lowers` (for reading a stage's tree in COPY --from).
    pub fn mount_readonly(lowers: &[PathBuf], merged: &Path) -> std::io::Result<Overlay> {
        std::fs::create_dir_all(merged)
            .map_err(|e| context(e, format!("creating {}", merged.display())))?;
        match lowers {
            [] => sys_mount(
                "tmpfs",
                merged,
                "tmpfs",
                libc::MS_RDONLY | libc::MS_NODEV | libc::MS_NOSUID,
                "size=4k,mode=755",
            )
            .map_err(|e| {
                context(
                    e,
                    format!("mounting an empty read-only tmpfs at {}", merged.display()),
                )
            })?,
            [only] => sys_mount(
                &only.to_string_lossy(),
                merged,
                "",
                libc::MS_BIND | libc::MS_REC,
                "",
            )
            .and_then(|()| {
                let flags = libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY;
                sys_mount("", merged, "", flags, "")
                    .or_else(|e| match e.raw_os_error() {
                        // In a user namespace the source mount's nosuid/nodev/noexec are locked:
                        // a remount must keep them.
                        Some(libc::EPERM) => {
                            sys_mount("", merged, "", flags | locked_flags(merged), "")
                        }
                        _ => Err(e),
                    })
                    .inspect_err(|_| {
                        let _ = unmount(merged);
                    })
            })
            .map_err(|e| {
                context(
                    e,
                    format!(
                        "bind-mounting {} read-only at {}",
                        only.display(),
                        merged.display()
                    ),
                )
            })?,
            _ => mount_overlay(lowers, None, merged, libc::MS_RDONLY)?,
        }
        Ok(Overlay {
            merged: merged.to_path_buf(),
            empty_lower: None,
        })
    }
}

impl Drop for Overlay {
    fn drop(&mut self) {
        if let Err(e) = unmount(&self.merged) {
            eprintln!(
                "pallet: warning: unmounting {}: {e} (unmount it by hand: umount -l PATH)",
                self.merged.display()
            );
            return;
        }
        if let Some(dir) = &self.empty_lower {
            if let Err(e) = std::fs::remove_dir(dir) {
                eprintln!("pallet: warning: removing {}: {e}", dir.display());
            }
        }
    }
}

/// umount2, falling back to a lazy (MNT_DETACH) unmount when the mount is busy.
fn unmount(path: &Path) -> io::Result<()> {
    let c = cpath(path)?;
    // SAFETY: `c` is a valid NUL-terminated string for the duration of the call.
    if unsafe { libc::umount2(c.as_ptr(), 0) } == 0 {
        return Ok(());
    }
    let first = io::Error::last_os_error();
    if first.raw_os_error() != Some(libc::EBUSY) {
        return Err(first);
    }
    // SAFETY: as above.
    if unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) } == 0 {
        eprintln!(
            "pallet: warning: {} was busy; detached it (lazy unmount)",
            path.display()
        );
        return Ok(());
    }
    Err(io::Error::last_os_error())
}

/// Whether rw mounts pass `volatile` (cleared after the kernel refuses it once).
static VOLATILE: AtomicBool = AtomicBool::new(true);

/// Mounts an overlay of `lowers` (top first) with an optional (upper, work) pair; rw mounts are
/// `volatile` where the kernel has it.
fn mount_overlay(
    lowers: &[PathBuf],
    rw: Option<(&Path, &Path)>,
    merged: &Path,
    flags: libc::c_ulong,
) -> io::Result<()> {
    let volatile = rw.is_some() && VOLATILE.load(Ordering::Relaxed);
    match mount_overlay_with(lowers, rw, merged, flags, volatile) {
        Err(e) if volatile && e.kind() == io::ErrorKind::InvalidInput => {
            VOLATILE.store(false, Ordering::Relaxed);
            mount_overlay_with(lowers, rw, merged, flags, false)
        }
        result => result,
    }
}

fn mount_overlay_with(
    lowers: &[PathBuf],
    rw: Option<(&Path, &Path)>,
    merged: &Path,
    flags: libc::c_ulong,
    volatile: bool,
) -> io::Result<()> {
    let describe = |e: io::Error, how: &str| {
        let rw_part = match rw {
            Some((u, w)) => format!(", upper {}, work {}", u.display(), w.display()),
            None => " (read-only)".to_string(),
        };
        context(
            e,
            format!(
                "mounting overlay at {} ({} lowers{rw_part}{how}); upper and work must be on the same \
                 filesystem, lowers must exist, at most 500 lowers (see dmesg for the kernel's reason)",
                merged.display(),
                lowers.len()
            ),
        )
    };
    let data = overlay_data(
        lowers.iter().map(|p| escape(p)),
        rw.map(|(u, w)| (escape(u), escape(w))),
        volatile,
    );
    if data.len() < page_size() {
        return sys_mount("overlay", merged, "overlay", flags, &data).map_err(|e| describe(e, ""));
    }

    // Too long for one page: short relative names, resolved from a dedicated working directory.
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let anchor = rw.map(|(_, w)| w).unwrap_or(merged);
    let links = sibling(
        anchor,
        &format!(
            "lowers-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ),
    );
    std::fs::create_dir(&links).map_err(|e| context(e, format!("creating {}", links.display())))?;
    let result = (|| {
        let mut names = Vec::with_capacity(lowers.len());
        for (i, lower) in lowers.iter().enumerate() {
            let name = i.to_string();
            std::os::unix::fs::symlink(lower, links.join(&name))?;
            names.push(name);
        }
        if let Some((upper, work)) = rw {
            std::os::unix::fs::symlink(upper, links.join("u"))?;
            std::os::unix::fs::symlink(work, links.join("w"))?;
        }
        let data = overlay_data(
            names.into_iter(),
            rw.map(|_| ("u".to_string(), "w".to_string())),
            volatile,
        );
        if data.len() >= page_size() {
            return Err(io::Error::other(
                "too many lowers for the mount option page even with short names",
            ));
        }
        mount_from_dir(&links, merged, flags, data)
    })();
    if let Err(e) = std::fs::remove_dir_all(&links) {
        eprintln!("pallet: warning: removing {}: {e}", links.display());
    }
    result.map_err(|e| describe(e, ", mounted via short links"))
}

/// Runs mount(2) on a thread whose working directory is `dir` (its own fs_struct, so the rest of
/// the process keeps its cwd), so `data` can name paths relative to `dir`.
fn mount_from_dir(dir: &Path, merged: &Path, flags: libc::c_ulong, data: String) -> io::Result<()> {
    let dir = cpath(dir)?;
    let merged = merged.to_path_buf();
    std::thread::spawn(move || {
        // SAFETY: plain syscalls on this thread; CLONE_FS only unshares this thread's cwd/umask.
        if unsafe { libc::unshare(libc::CLONE_FS) } != 0 {
            return Err(context(
                io::Error::last_os_error(),
                "unshare(CLONE_FS)".into(),
            ));
        }
        // SAFETY: `dir` is NUL-terminated and outlives the call.
        if unsafe { libc::chdir(dir.as_ptr()) } != 0 {
            return Err(context(
                io::Error::last_os_error(),
                "chdir to the short-link dir".into(),
            ));
        }
        sys_mount("overlay", &merged, "overlay", flags, &data)
    })
    .join()
    .map_err(|_| io::Error::other("the mount thread panicked"))?
}

fn overlay_data(
    lowers: impl Iterator<Item = String>,
    rw: Option<(String, String)>,
    volatile: bool,
) -> String {
    let mut data = String::new();
    for opt in mount_options(Privilege::of_this_process()) {
        data.push_str(opt);
        data.push(',');
    }
    data.push_str("lowerdir=");
    data.push_str(&lowers.collect::<Vec<_>>().join(":"));
    if let Some((upper, work)) = rw {
        data.push_str(&format!(",upperdir={upper},workdir={work}"));
        if volatile {
            data.push_str(",volatile");
        }
    }
    data
}

/// The options every mount of a process with `privilege` starts with: [`kernel_options`], and
/// rootless `userxattr` without `redirect_dir=off` (see the module doc).
fn mount_options(privilege: Privilege) -> Vec<&'static str> {
    match privilege {
        Privilege::Root => kernel_options().to_vec(),
        Privilege::Rootless => std::iter::once("userxattr")
            .chain(
                kernel_options()
                    .iter()
                    .copied()
                    .filter(|o| !o.starts_with("redirect_dir=")),
            )
            .collect(),
    }
}

/// `index=off`, `metacopy=off`, `redirect_dir=off`: those the running kernel knows.
fn kernel_options() -> &'static [&'static str] {
    static OPTS: OnceLock<Vec<&'static str>> = OnceLock::new();
    OPTS.get_or_init(|| {
        [
            ("index", "index=off"),
            ("metacopy", "metacopy=off"),
            ("redirect_dir", "redirect_dir=off"),
        ]
        .into_iter()
        .filter(|(param, _)| {
            Path::new("/sys/module/overlay/parameters")
                .join(param)
                .exists()
        })
        .map(|(_, opt)| opt)
        .collect()
    })
}

/// Overlay option values escape `\`, `,` and `:` with a backslash.
fn escape(p: &Path) -> String {
    let s = p.to_string_lossy();
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | ',' | ':') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `<dir of path>/.<name of path>.<suffix>`: scratch space next to `path`, on its filesystem.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{suffix}"))
}

/// The nosuid, nodev and noexec flags of the mount `path` is on, as mount(2) flags.
fn locked_flags(path: &Path) -> libc::c_ulong {
    let Ok(c) = cpath(path) else { return 0 };
    // SAFETY: a zeroed statvfs is a valid out-parameter.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is NUL-terminated; statvfs writes into `st`.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return 0;
    }
    [
        (libc::ST_NOSUID, libc::MS_NOSUID),
        (libc::ST_NODEV, libc::MS_NODEV),
        (libc::ST_NOEXEC, libc::MS_NOEXEC),
    ]
    .into_iter()
    .filter(|(st_flag, _)| st.f_flag & st_flag != 0)
    .fold(0, |acc, (_, ms)| acc | ms)
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if n > 0 {
        n as usize
    } else {
        4096
    }
}

fn sys_mount(
    source: &str,
    target: &Path,
    fstype: &str,
    flags: libc::c_ulong,
    data: &str,
) -> io::Result<()> {
    let source = CString::new(source).map_err(io::Error::other)?;
    let target = cpath(target)?;
    let fstype = CString::new(fstype).map_err(io::Error::other)?;
    let data = CString::new(data).map_err(io::Error::other)?;
    // SAFETY: all pointers are NUL-terminated strings alive for the call.
    let rc = unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            flags,
            data.as_ptr().cast(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn cpath(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| io::Error::other(format!("path with a NUL byte: {}", p.display())))
}

fn context(e: io::Error, what: String) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_escape_separators() {
        let data = overlay_data(
            [Path::new("/a:b"), Path::new("/c,d\\e")]
                .iter()
                .map(|p| escape(p)),
            Some(("/u".into(), "/w".into())),
            true,
        );
        assert!(
            data.ends_with(r"lowerdir=/a\:b:/c\,d\\e,upperdir=/u,workdir=/w,volatile"),
            "{data}"
        );
        let rootless = mount_options(Privilege::Rootless);
        assert_eq!(rootless[0], "userxattr");
        assert!(!rootless.iter().any(|o| o.starts_with("redirect_dir")));
        assert_eq!(
            sibling(Path::new("/x/work"), "empty-lower"),
            Path::new("/x/.work.empty-lower")
        );
    }
}
