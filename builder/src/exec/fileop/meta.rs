//! Low-level steps on one destination entry, none of which follows a symlink at the entry
//! itself: creating files, links, device nodes and directories; owner, mode, times and
//! xattrs (fsutil `copyFileInfo`, `copyXAttrs`, `copyDevice`, `MkdirAll`).

use super::resolve::{display, io_error, is_missing};
use super::{FileOpError, Owner};
use crate::fill::fill;
use crate::snapshot::whiteout::is_private_xattr;
use filetime::FileTime;
use std::cell::RefCell;
use std::ffi::CString;
use std::fs::{self, Metadata, OpenOptions};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// xattrs never copied: SELinux labels belong to the host's policy, not to the image
/// (containerd's copy skips them too), and `overlay.` ones would be read by overlayfs as
/// whiteouts or opaque markers once the copy is a layer.
fn copied_xattr(name: &std::ffi::OsStr) -> bool {
    !is_private_xattr(name.as_bytes())
}

/// atime and mtime for a copy: `utime` for both, else the source's.
fn copy_times(src_md: &Metadata, utime: Option<i64>) -> (FileTime, FileTime) {
    match utime {
        Some(t) => (
            FileTime::from_unix_time(t, 0),
            FileTime::from_unix_time(t, 0),
        ),
        None => (
            FileTime::from_last_access_time(src_md),
            FileTime::from_last_modification_time(src_md),
        ),
    }
}

/// `lchown`, then `chmod` (not on symlinks, and after chown, which clears setuid/setgid),
/// then atime/mtime (`utime` for both, else the source's), without following symlinks.
pub(crate) fn set_info(
    root: &Path,
    target: &Path,
    src_md: &Metadata,
    owner: Option<Owner>,
    mode: Option<u32>,
    utime: Option<i64>,
) -> Result<(), FileOpError> {
    let (uid, gid) = match owner {
        Some(o) => (o.uid, o.gid),
        None => (src_md.uid(), src_md.gid()),
    };
    std::os::unix::fs::lchown(target, Some(uid), Some(gid))
        .map_err(|e| io_error(root, target, e))?;
    if !src_md.file_type().is_symlink() {
        let m = mode.unwrap_or(src_md.mode() & 0o7777);
        chmod(root, target, m)?;
    }
    let (atime, mtime) = copy_times(src_md, utime);
    filetime::set_symlink_file_times(target, atime, mtime).map_err(|e| io_error(root, target, e))
}

/// [`set_info`] on the open file just written at `target` (fchown, fchmod, futimens): no path
/// walks through the overlay, which a COPY of thousands of small files pays for otherwise.
pub(crate) fn set_info_fd(
    root: &Path,
    target: &Path,
    file: &fs::File,
    src_md: &Metadata,
    owner: Option<Owner>,
    mode: Option<u32>,
    utime: Option<i64>,
) -> Result<(), FileOpError> {
    let err = |e| io_error(root, target, e);
    let (uid, gid) = match owner {
        Some(o) => (o.uid, o.gid),
        None => (src_md.uid(), src_md.gid()),
    };
    std::os::unix::fs::fchown(file, Some(uid), Some(gid)).map_err(err)?;
    let m = mode.unwrap_or(src_md.mode() & 0o7777);
    file.set_permissions(fs::Permissions::from_mode(m & 0o7777))
        .map_err(err)?;
    let (atime, mtime) = copy_times(src_md, utime);
    filetime::set_file_handle_times(file, Some(atime), Some(mtime)).map_err(err)
}

/// [`copy_xattrs`] between open files.
pub(crate) fn copy_xattrs_fd(from: &fs::File, to: &fs::File) {
    use xattr::FileExt;
    let Ok(names) = from.list_xattr() else {
        return;
    };
    for name in names {
        if !copied_xattr(&name) {
            continue;
        }
        if let Ok(Some(value)) = from.get_xattr(&name) {
            let _ = to.set_xattr(&name, &value);
        }
    }
}

pub(crate) fn chmod(root: &Path, target: &Path, mode: u32) -> Result<(), FileOpError> {
    fs::set_permissions(target, fs::Permissions::from_mode(mode & 0o7777))
        .map_err(|e| io_error(root, target, e))
}

/// Sets both times to `t` (Unix seconds) without following a symlink.
pub(crate) fn set_times(root: &Path, target: &Path, t: i64) -> Result<(), FileOpError> {
    let ft = FileTime::from_unix_time(t, 0);
    filetime::set_symlink_file_times(target, ft, ft).map_err(|e| io_error(root, target, e))
}

/// Copies xattrs from `src` to `target` (neither followed). Like BuildKit, failures are not
/// fatal: a filesystem without xattr support, or `user.*` on a symlink, loses them.
pub(crate) fn copy_xattrs(src: &Path, target: &Path) {
    let Ok(names) = xattr::list(src) else {
        return;
    };
    for name in names {
        if !copied_xattr(&name) {
            continue;
        }
        if let Ok(Some(value)) = xattr::get(src, &name) {
            let _ = xattr::set(target, &name, &value);
        }
    }
}

/// A new regular file at `target` (which must not exist) with `src`'s content. Returns both
/// files, still open, for their metadata.
pub(crate) fn copy_file(
    src_root: &Path,
    src: &Path,
    root: &Path,
    target: &Path,
) -> Result<(fs::File, fs::File), FileOpError> {
    let mut from = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(src)
        .map_err(|e| io_error(src_root, src, e))?;
    let mut to = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(target)
        .map_err(|e| io_error(root, target, e))?;
    copy_content(&mut from, &mut to).map_err(|e| io_error(root, target, e))?;
    Ok((from, to))
}

/// Files up to this size are copied with one read and one write: cheaper than the kernel copy
/// paths (`copy_file_range` refuses across filesystems, and `sendfile` into an overlay splices
/// through its backing file).
const SMALL_FILE: usize = 128 * 1024;

fn copy_content(from: &mut fs::File, to: &mut fs::File) -> io::Result<()> {
    thread_local! {
        static BUF: std::cell::RefCell<Vec<u8>> = RefCell::new(vec![0; SMALL_FILE]);
    }
    let read_all = BUF.with(|buf| -> io::Result<bool> {
        let mut buf = buf.borrow_mut();
        let len = fill(from, &mut buf)?;
        to.write_all(&buf[..len])?;
        Ok(len < buf.len())
    })?;
    if !read_all {
        // Larger than a small file: the kernel copies the rest.
        io::copy(from, to)?;
    }
    Ok(())
}

/// A device node, FIFO or socket like the source (fsutil `copyDevice`: `mknod`).
pub(crate) fn make_node(root: &Path, target: &Path, src_md: &Metadata) -> Result<(), FileOpError> {
    mknod(root, target, src_md.mode(), src_md.rdev())
}

/// `mknod(2)`: `mode` holds the file type (`S_IFCHR`, `S_IFIFO`, ...) and permissions.
pub(crate) fn mknod(root: &Path, target: &Path, mode: u32, dev: u64) -> Result<(), FileOpError> {
    let c = cstring(root, target)?;
    // SAFETY: `c` is a valid NUL-terminated path; mknod only reads it.
    let rc = unsafe { libc::mknod(c.as_ptr(), mode as libc::mode_t, dev as libc::dev_t) };
    if rc != 0 {
        return Err(io_error(root, target, io::Error::last_os_error()));
    }
    Ok(())
}

fn cstring(root: &Path, p: &Path) -> Result<CString, FileOpError> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| FileOpError::User(format!("path {} contains a NUL byte", display(root, p))))
}

/// Makes room for a non-directory at `target`: an existing file or symlink is removed (the
/// copy replaces it); an existing directory is an error, as in fsutil `ensureEmptyFileTarget`.
pub(crate) fn clear_file_target(root: &Path, target: &Path) -> Result<(), FileOpError> {
    match fs::symlink_metadata(target) {
        Ok(md) if md.is_dir() => Err(FileOpError::User(format!(
            "cannot replace directory {} with a file; remove it first or copy to another path",
            display(root, target)
        ))),
        Ok(_) => fs::remove_file(target).map_err(|e| io_error(root, target, e)),
        Err(e) if is_missing(&e) => Ok(()),
        Err(e) => Err(io_error(root, target, e)),
    }
}

/// One new directory with exactly `mode` (no umask), then its owner when given.
pub(crate) fn make_dir(
    root: &Path,
    p: &Path,
    mode: u32,
    owner: Option<Owner>,
) -> Result<(), FileOpError> {
    fs::create_dir(p).map_err(|e| io_error(root, p, e))?;
    chmod(root, p, mode)?;
    if let Some(o) = owner {
        std::os::unix::fs::lchown(p, Some(o.uid), Some(o.gid)).map_err(|e| io_error(root, p, e))?;
    }
    Ok(())
}

/// fsutil `MkdirAll` inside `root`: every missing directory from `root` down to `p` is
/// created with `mode` and chowned to `owner` when given; existing directories are left
/// alone. With `utime`, the new directories get that time, set deepest first once all exist
/// (so creating a child does not bump its parent's mtime afterwards). Returns the new
/// directories, outermost first. `p` must be a resolved path under `root` (see
/// [`super::resolve::resolve`]); a component that exists but is not a directory (a symlink
/// included: it is never followed here) is an error.
pub(crate) fn mkdir_all(
    root: &Path,
    p: &Path,
    mode: u32,
    owner: Option<Owner>,
    utime: Option<i64>,
) -> Result<Vec<PathBuf>, FileOpError> {
    let rel = p.strip_prefix(root).map_err(|_| {
        FileOpError::User(format!("{} is outside the destination root", p.display()))
    })?;
    let mut cur = root.to_path_buf();
    let mut created = Vec::new();
    for comp in rel.components() {
        cur.push(comp);
        match fs::symlink_metadata(&cur) {
            Ok(md) if md.is_dir() => {}
            Ok(_) => {
                return Err(FileOpError::User(format!(
                    "cannot create directory {}: {} exists and is not a directory",
                    display(root, p),
                    display(root, &cur)
                )))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                make_dir(root, &cur, mode, owner)?;
                created.push(cur.clone());
            }
            Err(e) => return Err(io_error(root, &cur, e)),
        }
    }
    if let Some(t) = utime {
        for dir in created.iter().rev() {
            set_times(root, dir, t)?;
        }
    }
    Ok(created)
}
