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
}
