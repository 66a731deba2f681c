//! Creating one layer entry in its (already resolved) parent directory, and its metadata:
//! owner, xattrs, mode, mtime, in containerd's order (chown clears setuid bits and file
//! capabilities, so it comes first). What the entry replaces is removed first; an existing
//! directory stays when the entry is a directory.
//!
//! Knows nothing of whiteouts or of the order of entries; `unpack` owns those.

use std::ffi::{CStr, CString, OsStr};
use std::fs::{File, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{self as unix_fs, PermissionsExt};

use tar::EntryType;

use super::beneath::{self, Dir};
use super::entry_name::{components, resolve_error, shown, UnpackError};
use super::marker;
use super::reader::Entry;
use super::whiteout::{self, Privilege};

/// Owner ids as the kernel takes them.
pub(crate) fn ids(entry: &Entry) -> io::Result<(u32, u32)> {
    let id = |v: u64, what: &str| {
        u32::try_from(v).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{what} {v} is out of range"),
            )
        })
    };
    Ok((id(entry.uid, "uid")?, id(entry.gid, "gid")?))
}

/// A chown's failure, said plainly when it is an owner outside pallet's user namespace
/// (EINVAL: the id has no mapping there).
pub(crate) fn chown_error(privilege: Privilege, uid: u32, gid: u32, e: io::Error) -> io::Error {
    if privilege == Privilege::Rootless && e.raw_os_error() == Some(libc::EINVAL) {
        return io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "owner {uid}:{gid} is outside pallet's user namespace: the user's ranges in \
                 /etc/subuid and /etc/subgid are too small for this image (give the user 65536 \
                 ids or more)"
            ),
        );
    }
    e
}

/// What an entry is being created for: the root (hardlink targets resolve against it), and
/// the names errors report.
pub(crate) struct Ctx<'a> {
    pub root: &'a Dir,
    pub same_owner: bool,
    pub overlay_whiteouts: bool,
    pub privilege: Privilege,
    pub label: &'a str,
    /// The entry's normalized path.
    pub path: &'a [u8],
}

impl Ctx<'_> {
    fn io(&self, source: io::Error) -> UnpackError {
        UnpackError::Io {
            entry: self.label.to_owned(),
            source,
        }
    }
    fn invalid(&self, msg: impl Into<String>) -> UnpackError {
        self.io(io::Error::new(io::ErrorKind::InvalidData, msg.into()))
    }
}

/// Creates `name` in `parent` from `entry`, replacing what is there, and sets its metadata
/// (directory modes and mtimes excepted: the caller sets those last).
pub(crate) fn entry(
    ctx: &Ctx<'_>,
    info: &Entry,
    data: &mut dyn Read,
    parent: &Dir,
    name: &CStr,
    buf: &mut [u8],
) -> Result<(), UnpackError> {
    match info.kind {
        EntryType::Link => return hardlink(ctx, info, parent, name),
        EntryType::Directory | EntryType::Regular | EntryType::Continuous => {}
        EntryType::Symlink | EntryType::Char | EntryType::Block | EntryType::Fifo => {}
        other => {
            let flag = other.as_byte();
            let msg = format!("unsupported entry type {:?} (0x{flag:02x})", flag as char);
            return Err(ctx.invalid(msg));
        }
    }
    let existing = parent.stat(name).map_err(|e| ctx.io(e))?;
    let is_dir = info.kind == EntryType::Directory;
    // A whiteout made where 0/0 devices are refused is an empty file marked by xattr (`marker`).
    let was_whiteout = existing.is_some_and(|st| st.is_whiteout())
        || (is_dir
            && ctx.overlay_whiteouts
            && existing.is_some_and(|st| st.mode & libc::S_IFMT == libc::S_IFREG)
            && marker::is_xattr_whiteout(parent.fd(), name).unwrap_or(false));
    match existing {
        Some(st) if st.is_dir() && is_dir => {}
        Some(_) => parent.remove_all(name).map_err(|e| ctx.io(e))?,
        None => {}
    }

    match info.kind {
        EntryType::Directory => {
            if !existing.is_some_and(|st| st.is_dir()) {
                // Owner-only until the caller sets the real mode after the children.
                parent.mkdir(name, 0o700).map_err(|e| ctx.io(e))?;
            }
            let dir = parent.open_dir(name).map_err(|e| ctx.io(e))?;
            if was_whiteout && ctx.overlay_whiteouts {
                // A directory over an overlay whiteout hides what lower layers had there, as
                // overlayfs itself does when a directory is created over a whiteout.
                marker::mark_opaque_as(dir.file(), ctx.privilege).map_err(|e| ctx.io(e))?;
            }
            set_fd_metadata(ctx, dir.file(), info, false)
        }
        EntryType::Regular | EntryType::Continuous => {
            let mut file = parent.create_file(name).map_err(|e| ctx.io(e))?;
            let mut written = 0u64;
            loop {
                let n = match data.read(buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(ctx.io(e)),
                };
                file.write_all(&buf[..n]).map_err(|e| ctx.io(e))?;
                written += n as u64;
            }
            if written != info.size {
                return Err(ctx.invalid(format!(
                    "layer ends inside this file ({written} of {} bytes)",
                    info.size
                )));
            }
            set_fd_metadata(ctx, &file, info, true)
        }
        EntryType::Symlink => {
            let target = info.link.as_deref().filter(|t| !t.is_empty());
            let target = target.ok_or_else(|| ctx.invalid("symlink without a target"))?;
            let target = CString::new(target)
                .map_err(|_| ctx.invalid("symlink target contains a NUL byte"))?;
            parent.symlink(name, &target).map_err(|e| ctx.io(e))?;
            set_path_metadata(ctx, parent, name, info, false)
        }
        EntryType::Char | EntryType::Block | EntryType::Fifo => {
            let kind = match info.kind {
                EntryType::Char => libc::S_IFCHR,
                EntryType::Block => libc::S_IFBLK,
                _ => libc::S_IFIFO,
            };
            let dev = libc::makedev(info.device.0, info.device.1);
            match parent.mknod(name, kind | 0o600, dev) {
                // In a user namespace only fifos and whiteouts can be made: a device node is
                // left out, as containerd does (a rootless RUN sees runc's /dev instead).
                Err(e)
                    if e.raw_os_error() == Some(libc::EPERM)
                        && ctx.privilege == Privilege::Rootless
                        && kind != libc::S_IFIFO =>
                {
                    return Ok(())
                }
                other => other.map_err(|e| ctx.io(e))?,
            }
            set_path_metadata(ctx, parent, name, info, true)
        }
        _ => unreachable!("entry types are checked above"),
    }
}

/// A hardlink to an earlier entry (or a file already in `dest`). The target resolves beneath
/// the root like any name: no `..`, no symlinks on the way; a symlink target is linked itself.
fn hardlink(ctx: &Ctx<'_>, info: &Entry, parent: &Dir, name: &CStr) -> Result<(), UnpackError> {
    let raw = info.link.as_deref().unwrap_or_default();
    let refuse = |reason: String| UnpackError::Unsafe {
        entry: ctx.label.to_owned(),
        reason,
    };
    let comps =
        components(raw).map_err(|r| refuse(format!("hardlink target {:?}: {r}", shown(raw))))?;
    let Some((&target_base, target_parents)) = comps.split_last() else {
        return Err(refuse("hardlink to the layer's root directory".into()));
    };
    if comps.join(&b'/') == ctx.path {
        return Ok(()); // A link to itself: already there.
    }
    let missing = || {
        ctx.io(io::Error::new(
            io::ErrorKind::NotFound,
            format!("hardlink target {:?} does not exist", shown(raw)),
        ))
    };
    let target_dir = beneath::resolve_dir(ctx.root, target_parents, false)
        .map_err(|e| resolve_error(ctx.label, e))?
        .ok_or_else(missing)?;
    let target_name = CString::new(target_base)
        .map_err(|_| ctx.invalid("hardlink target contains a NUL byte"))?;
    match target_dir.stat(&target_name).map_err(|e| ctx.io(e))? {
        None => return Err(missing()),
        Some(st) if st.is_dir() => return Err(ctx.invalid("hardlink target is a directory")),
        Some(_) => {}
    }
    parent.remove_all(name).map_err(|e| ctx.io(e))?;
    parent
        .link_from(name, &target_dir, &target_name)
        .map_err(|e| ctx.io(e))
}

/// Owner, xattrs, mode and (for files) mtime through an open descriptor.
fn set_fd_metadata(
    ctx: &Ctx<'_>,
    file: &File,
    info: &Entry,
    set_mode_and_time: bool,
) -> Result<(), UnpackError> {
    let (uid, gid) = ids(info).map_err(|e| ctx.io(e))?;
    if ctx.same_owner {
        unix_fs::fchown(file, Some(uid), Some(gid))
            .map_err(|e| ctx.io(chown_error(ctx.privilege, uid, gid, e)))?;
    }
    for (key, value) in xattrs(info) {
        xattr_result(ctx, key, xattr::FileExt::set_xattr(file, key, value))?;
    }
    if set_mode_and_time {
        file.set_permissions(Permissions::from_mode(info.mode))
            .map_err(|e| ctx.io(e))?;
        beneath::set_fd_times(file, info.mtime).map_err(|e| ctx.io(e))?;
    }
    Ok(())
}

/// Owner, xattrs, mode (not for symlinks) and mtime for entries that are not opened.
fn set_path_metadata(
    ctx: &Ctx<'_>,
    parent: &Dir,
    name: &CStr,
    info: &Entry,
    chmod: bool,
) -> Result<(), UnpackError> {
    let (uid, gid) = ids(info).map_err(|e| ctx.io(e))?;
    if ctx.same_owner {
        parent
            .chown(name, uid, gid)
            .map_err(|e| ctx.io(chown_error(ctx.privilege, uid, gid, e)))?;
    }
    for (key, value) in xattrs(info) {
        xattr_result(ctx, key, parent.set_xattr_at(name, key, value))?;
    }
    if chmod {
        parent.chmod(name, info.mode).map_err(|e| ctx.io(e))?;
    }
    parent.set_times(name, info.mtime).map_err(|e| ctx.io(e))
}

/// The entry's xattrs that are restored: not overlayfs bookkeeping, not SELinux labels.
fn xattrs(info: &Entry) -> impl Iterator<Item = (&OsStr, &[u8])> {
    info.xattrs
        .iter()
        .filter(|(name, _)| !whiteout::is_private_xattr(name))
        .map(|(name, value)| (OsStr::from_bytes(name), &value[..]))
}

/// Like containerd: xattrs the filesystem does not support are skipped, and so are `user.`
/// xattrs on entries that cannot have them (symlinks, devices: EPERM).
fn xattr_result(ctx: &Ctx<'_>, key: &OsStr, result: io::Result<()>) -> Result<(), UnpackError> {
    match result {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::ENOTSUP) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EPERM) && key.as_bytes().starts_with(b"user.") => {
            Ok(())
        }
        Err(e) => Err(ctx.io(io::Error::new(
            e.kind(),
            format!("setting xattr {}: {e}", key.to_string_lossy()),
        ))),
    }
}
