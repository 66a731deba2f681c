//! Copying entries between open directories, with their owner, mode, xattrs and times, never
//! following a symlink: a layer onto a tree (whiteouts and opaque directories applied, as the
//! overlay's merged view shows them), and a tree's changed entries into an upper dir.
//! Hard links inside one copy stay hard links.

use std::collections::HashMap;
use std::ffi::{CStr, CString, OsStr};
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::rc::Rc;

use super::baseline::Node;
use super::sys::{self, Fd, Meta};
use crate::snapshot::marker;

/// Hard links seen in one copy: the source inode -> where its first copy went.
#[derive(Default)]
pub(super) struct Links {
    seen: HashMap<(u64, u64), (Rc<Fd>, CString)>,
    pub buf: Vec<u8>,
    /// Regular files are hard-linked to their source instead of copied: for read-only views,
    /// whose files nothing writes (a copy where linking is refused).
    pub share_files: bool,
}

impl Links {
    pub fn sharing_files(share_files: bool) -> Links {
        Links {
            share_files,
            ..Links::default()
        }
    }
}

/// Whether `name` (with `m`) in `dir` is an overlay whiteout in either form.
pub(super) fn is_whiteout(dir: &Fd, name: &CStr, m: &Meta) -> io::Result<bool> {
    if m.is_device_whiteout() {
        return Ok(true);
    }
    if m.is_file() && m.size == 0 {
        return marker::is_xattr_whiteout(dir.as_raw_fd(), name);
    }
    Ok(false)
}

/// Applies the snapshot dir `src` onto the tree dir `dst`, as overlayfs shows an upper layer
/// over a lower one: whiteouts remove, opaque directories replace, directories merge, other
/// entries replace.
pub(super) fn apply_layer(src: &Fd, dst: &Rc<Fd>, links: &mut Links) -> io::Result<()> {
    for name in src.names()? {
        let Some(m) = src.stat(&name)? else { continue };
        if is_whiteout(src, &name, &m)? {
            dst.remove_all(&name)?;
            continue;
        }
        let existing = dst.stat(&name)?;
        if m.is_dir() {
            let sub = src.open_dir(&name)?;
            let opaque = marker::is_opaque(sub.file())?;
            if existing.is_some_and(|e| !e.is_dir() || opaque) {
                dst.remove_all(&name)?;
            }
            if !dst.stat(&name)?.is_some_and(|e| e.is_dir()) {
                dst.mkdir(&name, 0o700)?;
            }
            let out = Rc::new(dst.open_dir(&name)?);
            apply_layer(&sub, &out, links)?;
            set_meta(out.file(), &m, &sys::fd_xattrs(sub.file())?, true)?;
        } else {
            if existing.is_some() {
                dst.remove_all(&name)?;
            }
            copy_entry(src, &name, &m, dst, &name, links)?;
        }
    }
    Ok(())
}

/// Copies the non-directory `name` (with `m`) in `src` to `to` in `dst`, which must not exist.
/// Sockets are skipped (they are not content; the layer writer leaves them out too).
pub(super) fn copy_entry(
    src: &Fd,
    name: &CStr,
    m: &Meta,
    dst: &Rc<Fd>,
    to: &CStr,
    links: &mut Links,
) -> io::Result<()> {
    if m.nlink > 1 && !m.is_dir() {
        if let Some((dir, first)) = links.seen.get(&m.inode()) {
            return dst.link_from(to, dir, first);
        }
    }
    match m.kind() {
        libc::S_IFREG if links.share_files && dst.link_from(to, src, name).is_ok() => {}
        libc::S_IFREG => {
            let from = src.open_file(name)?;
            let file = dst.create_file(to)?;
            sys::copy_data(&from, &file, &mut links.buf)?;
            set_meta(&file, m, &sys::fd_xattrs(&from)?, false)?;
        }
        libc::S_IFLNK => {
            let target = src.readlink(name)?;
            dst.symlink(to, &target)?;
            dst.chown(to, m.uid, m.gid)?;
            dst.set_mtime(to, m.mtime)?;
        }
        libc::S_IFCHR | libc::S_IFBLK | libc::S_IFIFO => {
            dst.mknod(to, m.kind() | 0o600, m.rdev)?;
            dst.chown(to, m.uid, m.gid)?;
            dst.chmod(to, m.perms())?;
            sys::set_xattrs(&dst.xattr_path(to), &sys::xattrs(&src.xattr_path(name))?)?;
            dst.set_mtime(to, m.mtime)?;
        }
        _ => return Ok(()),
    }
    if m.nlink > 1 {
        links
            .seen
            .insert(m.inode(), (Rc::clone(dst), to.to_owned()));
    }
    Ok(())
}

/// Copies the entry `name` of `src` (with `m`; a directory with everything in it) to the same
/// name in `dst`; `opaque` marks a copied directory opaque. Returns the entry's record (its
/// `lstat` in `src` and, for a directory, its children's) for the next baseline, and the
/// newest ctime seen.
pub(super) fn copy_tree(
    src: &Fd,
    name: &CStr,
    m: &Meta,
    dst: &Rc<Fd>,
    opaque: bool,
    links: &mut Links,
    newest: &mut (i64, i64),
) -> io::Result<Node> {
    *newest = (*newest).max(m.ctime);
    let mut node = Node::new(*m);
    if !m.is_dir() {
        copy_entry(src, name, m, dst, name, links)?;
        return Ok(node);
    }
    dst.mkdir(name, 0o700)?;
    let sub = src.open_dir(name)?;
    let out = Rc::new(dst.open_dir(name)?);
    if opaque {
        marker::mark_opaque(out.file())?;
    }
    for kid in sub.names()? {
        let Some(km) = sub.stat(&kid)? else { continue };
        let kid_node = copy_tree(&sub, &kid, &km, &out, false, links, newest)?;
        node.kids.push((kid, kid_node));
    }
    set_meta(out.file(), m, &sys::fd_xattrs(sub.file())?, true)?;
    Ok(node)
}

/// Gives the open file or directory `file` the owner, mode, xattrs and mtime of `m` (chown
/// first: it clears set-id bits). `replace`: xattrs it has and `xattrs` lacks go.
pub(super) fn set_meta(
    file: &File,
    m: &Meta,
    xattrs: &[(Vec<u8>, Vec<u8>)],
    replace: bool,
) -> io::Result<()> {
    use xattr::FileExt;
    std::os::unix::fs::fchown(file, Some(m.uid), Some(m.gid))?;
    file.set_permissions(std::fs::Permissions::from_mode(m.perms()))?;
    if replace {
        for (name, _) in sys::fd_xattrs(file)? {
            if !xattrs.iter().any(|(n, _)| *n == name) {
                file.remove_xattr(OsStr::from_bytes(&name))?;
            }
        }
    }
    for (name, value) in xattrs {
        file.set_xattr(OsStr::from_bytes(name), value)?;
    }
    sys::set_fd_mtime(file.as_raw_fd(), m.mtime)
}
