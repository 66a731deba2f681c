//! Making and reading overlayfs's markers (whiteouts, opaque directories) where the process or
//! the filesystem refuses their usual form.
//!
//! A snapshot marks a removal with a 0/0 character device and an opaque directory with
//! `trusted.overlay.opaque=y`. An unprivileged container can do neither on its own root
//! filesystem (measured in `docker run` without `--privileged`, Linux 6.18): `trusted.*`
//! xattrs need CAP_SYS_ADMIN (EPERM), and overlayfs refuses to create a 0/0 device through
//! itself (EPERM: it would be a whiteout of its own) even with CAP_MKNOD. There the markers take
//! the form overlayfs itself reads from `userxattr` mounts (and, for whiteouts, from lower
//! layers since Linux 6.7), which the layer writer (`write.rs`) and the tree snapshotter accept:
//!
//! - a whiteout is an empty regular file, mode 0, with the xattr `user.overlay.whiteout`;
//! - an opaque directory has `user.overlay.opaque=y`.
//!
//! `user.*` xattrs work for root on ext4, xfs, btrfs and overlayfs (the container's rootfs),
//! and on tmpfs since Linux 6.6. The usual form is always tried first, so a store made where it
//! works stays mountable by root mode's overlayfs; a store made in an unprivileged container
//! is for the modes that read both (chroot, and rootless overlayfs with `userxattr`).

use std::ffi::CStr;
use std::fs::File;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use super::whiteout::{
    opaque_xattr, overlay_xattr_names, Privilege, OVERLAY_OPAQUE_XATTR as TRUSTED_OPAQUE,
    USER_OPAQUE_XATTR as USER_OPAQUE,
};

/// The xattr that makes an empty regular file a whiteout where a 0/0 device cannot be made.
pub(crate) const USER_WHITEOUT_XATTR: &str = "user.overlay.whiteout";

/// Creates a whiteout named `name` in the directory `dir` (nothing may be there): a 0/0
/// character device, else an empty file marked with `user.overlay.whiteout`.
pub(crate) fn make_whiteout(dir: RawFd, name: &CStr) -> io::Result<()> {
    // SAFETY: `dir` is an open directory fd of the caller; `name` is NUL-terminated.
    let rc = unsafe { libc::mknodat(dir, name.as_ptr(), libc::S_IFCHR, libc::makedev(0, 0)) };
    if rc == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() != Some(libc::EPERM) {
        return Err(err);
    }
    let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    // SAFETY: as above; mode 0 like a whiteout device.
    let fd = unsafe { libc::openat(dir, name.as_ptr(), flags, 0 as libc::c_uint) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by openat and is owned by nobody else.
    let file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    if let Err(e) = xattr::FileExt::set_xattr(&file, USER_WHITEOUT_XATTR, b"y") {
        drop(file);
        // SAFETY: as above.
        unsafe { libc::unlinkat(dir, name.as_ptr(), 0) };
        return Err(io::Error::new(
            e.kind(),
            format!(
                "cannot make a whiteout here: a 0/0 character device is refused ({err}) and \
                 the xattr {USER_WHITEOUT_XATTR} too ({e}); put the store on a filesystem with \
                 user xattrs (ext4, xfs, btrfs)"
            ),
        ));
    }
    Ok(())
}

/// Whether this process is refused overlayfs's usual markers (a 0/0 character device, the
/// `trusted.overlay.opaque` xattr) in the directory `dir`, so that the markers it makes there
/// take their `user.overlay.*` form (an unprivileged container). Tried in a temp dir of its own
/// (named `pallet-<pid>-…`, so a killed run's is found as leftovers), removed after.
pub fn usual_form_refused(dir: &std::path::Path) -> io::Result<bool> {
    use std::os::fd::AsRawFd;
    let probe = tempfile::Builder::new()
        .prefix(&format!("pallet-{}-markers-", std::process::id()))
        .tempdir_in(dir)?;
    let handle = File::open(probe.path())?;
    // SAFETY: `handle` is an open directory; the name is NUL-terminated.
    let rc = unsafe {
        libc::mknodat(
            handle.as_raw_fd(),
            c"w".as_ptr(),
            libc::S_IFCHR,
            libc::makedev(0, 0),
        )
    };
    if rc != 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::EPERM) => Ok(true),
            _ => Err(e),
        };
    }
    match xattr::FileExt::set_xattr(&handle, TRUSTED_OPAQUE, b"y") {
        Ok(()) => Ok(false),
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => Ok(true),
        Err(e) => Err(e),
    }
}

/// Gives the user-form markers under the snapshot `dir` their usual form (root only): an
/// empty file marked `user.overlay.whiteout` becomes a 0/0 character device, and a directory
/// marked `user.overlay.opaque=y` gets `trusted.overlay.opaque=y` too. Symlinks are not
/// followed. Returns how many markers it changed.
pub fn restore_usual_form(dir: &std::path::Path) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    use std::os::unix::ffi::OsStrExt;
    let mut changed = 0;
    let handle = File::open(dir)?;
    if xattr::FileExt::get_xattr(&handle, USER_OPAQUE)
        .ok()
        .flatten()
        .as_deref()
        == Some(b"y")
        && !is_trusted_opaque(&handle)
    {
        xattr::FileExt::set_xattr(&handle, TRUSTED_OPAQUE, b"y")?;
        changed += 1;
    }
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let name = std::ffi::CString::new(entry.file_name().as_bytes())
            .map_err(|_| io::Error::other("a name with a NUL byte"))?;
        if kind.is_dir() {
            changed += restore_usual_form(&entry.path())?;
        } else if kind.is_file()
            && entry.metadata()?.len() == 0
            && xattr::get(entry.path(), USER_WHITEOUT_XATTR)?.is_some()
        {
            // SAFETY: `handle` is an open directory fd; `name` is NUL-terminated.
            if unsafe { libc::unlinkat(handle.as_raw_fd(), name.as_ptr(), 0) } != 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: as above.
            let rc = unsafe {
                libc::mknodat(
                    handle.as_raw_fd(),
                    name.as_ptr(),
                    libc::S_IFCHR,
                    libc::makedev(0, 0),
                )
            };
            if rc != 0 {
                return Err(io::Error::last_os_error());
            }
            changed += 1;
        }
    }
    Ok(changed)
}

fn is_trusted_opaque(dir: &File) -> bool {
    xattr::FileExt::get_xattr(dir, TRUSTED_OPAQUE)
        .ok()
        .flatten()
        .is_some_and(|v| v == b"y")
}

/// Marks the open directory `dir` opaque: `trusted.overlay.opaque=y`, else
/// `user.overlay.opaque=y`.
pub(crate) fn mark_opaque(dir: &File) -> io::Result<()> {
    use xattr::FileExt;
    match dir.set_xattr(TRUSTED_OPAQUE, b"y") {
        Ok(()) => Ok(()),
        Err(first) if first.raw_os_error() == Some(libc::EPERM) => {
            dir.set_xattr(USER_OPAQUE, b"y").map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!(
                        "cannot mark a directory opaque: {TRUSTED_OPAQUE} is refused \
                         ({first}) and {USER_OPAQUE} too ({e})"
                    ),
                )
            })
        }
        Err(e) => Err(e),
    }
}

/// Marks the open directory `dir` opaque for overlays mounted with `privilege`: rootless
/// (`userxattr`) in `user.`; root in `trusted.`, else `user.` ([`mark_opaque`]).
pub(crate) fn mark_opaque_as(dir: &File, privilege: Privilege) -> io::Result<()> {
    match privilege {
        Privilege::Rootless => xattr::FileExt::set_xattr(dir, opaque_xattr(privilege), b"y"),
        Privilege::Root => mark_opaque(dir),
    }
}

/// Whether the open directory `dir` is opaque, in either namespace.
pub(crate) fn is_opaque(dir: &File) -> io::Result<bool> {
    use xattr::FileExt;
    for name in overlay_xattr_names("opaque") {
        match dir.get_xattr(&name) {
            Ok(Some(v)) if v == b"y" => return Ok(true),
            Ok(_) => {}
            Err(e) if unsupported(&e) => return Ok(false),
            Err(e) => return Err(e),
        }
    }
    Ok(false)
}

/// Whether the empty regular file `name` in `dir` carries an `overlay.whiteout` xattr (the
/// caller checked that it is an empty regular file).
pub(crate) fn is_xattr_whiteout(dir: RawFd, name: &CStr) -> io::Result<bool> {
    let path = proc_path(dir, name);
    for key in overlay_xattr_names("whiteout") {
        match xattr::get(&path, &key) {
            Ok(Some(_)) => return Ok(true),
            Ok(None) => {}
            Err(e) if unsupported(&e) => return Ok(false),
            Err(e) => return Err(e),
        }
    }
    Ok(false)
}

/// `/proc/self/fd/DIR/NAME`: a path to `name` in `dir` whose last component xattr calls do
/// not follow (the l*xattr calls), for entries that cannot be opened.
pub(crate) fn proc_path(dir: RawFd, name: &CStr) -> std::path::PathBuf {
    use std::os::unix::ffi::OsStrExt;
    std::path::Path::new("/proc/self/fd")
        .join(dir.to_string())
        .join(std::ffi::OsStr::from_bytes(name.to_bytes()))
}

/// No xattrs here at all (a filesystem without them, or a name the namespace refuses).
pub(crate) fn unsupported(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOTSUP) | Some(libc::EPERM))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CString;
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::{FileTypeExt, MetadataExt};

    #[test]
    fn whiteouts_and_opaque_dirs_round_trip() {
        let d = tempfile::tempdir().unwrap();
        let dir = File::open(d.path()).unwrap();
        let name = CString::new("gone").unwrap();
        make_whiteout(dir.as_raw_fd(), &name).unwrap();
        let m = std::fs::symlink_metadata(d.path().join("gone")).unwrap();
        let device = m.file_type().is_char_device() && m.rdev() == 0;
        let file =
            m.is_file() && m.len() == 0 && is_xattr_whiteout(dir.as_raw_fd(), &name).unwrap();
        assert!(device || file, "{m:?}");
        std::fs::create_dir(d.path().join("o")).unwrap();
        let o = File::open(d.path().join("o")).unwrap();
        assert!(!is_opaque(&o).unwrap());
        mark_opaque(&o).unwrap();
        assert!(is_opaque(&o).unwrap());
    }

    /// As root (the tests run as root): user-form markers get the usual form, symlinks are
    /// left alone, and a second pass changes nothing.
    #[test]
    fn user_form_markers_get_the_usual_form() {
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let sub = d.path().join("o");
        std::fs::create_dir(&sub).unwrap();
        xattr::set(&sub, USER_OPAQUE, b"y").unwrap();
        let gone = sub.join("gone");
        File::create(&gone).unwrap();
        xattr::set(&gone, USER_WHITEOUT_XATTR, b"y").unwrap();
        std::fs::write(d.path().join("kept"), b"").unwrap();
        std::os::unix::fs::symlink("/etc", d.path().join("link")).unwrap();
        assert_eq!(restore_usual_form(d.path()).unwrap(), 2);
        let m = std::fs::symlink_metadata(&gone).unwrap();
        assert!(m.file_type().is_char_device() && m.rdev() == 0, "{m:?}");
        assert!(is_trusted_opaque(&File::open(&sub).unwrap()));
        assert!(std::fs::symlink_metadata(d.path().join("kept"))
            .unwrap()
            .is_file());
        assert_eq!(restore_usual_form(d.path()).unwrap(), 0);
    }
}
