//! OCI layer tar (plain, gzip or zstd, detected by magic) -> directory, safely.
//!
//! Owns the order of an unpack: detect compression, read each entry, validate its name, turn
//! whiteouts into removals or overlayfs markers, and set directory modes and mtimes after
//! everything else. Creating one entry and its metadata is in `create`; every filesystem
//! operation goes through `beneath`, which never follows a symlink, so `dest` confines all
//! writes. zstd is recognized but not decoded yet.

use std::collections::HashSet;
use std::ffi::CString;
use std::fs::Permissions;
use std::io::{self, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use flate2::read::MultiGzDecoder;

use super::beneath::{self, Dir, ResolveError};
use super::create;
pub use super::entry_name::UnpackError;
use super::entry_name::{components, resolve_error, shown};
use super::marker;
use super::reader::{Entry, TarReader};
use super::whiteout::{self, Marker, Privilege};

#[derive(Debug, Clone)]
pub struct UnpackOptions {
    /// Convert OCI whiteouts to overlayfs format (for snapshots). When false, whiteouts delete
    /// what they name in `dest` (applying a layer onto a plain directory tree).
    pub overlay_whiteouts: bool,
    /// Keep owners from the tar (needs root, or rootless mode for ids in its ranges); when
    /// false, files belong to the caller.
    pub same_owner: bool,
    /// Who mounts the snapshot (default: this process): which namespace the opaque xattr is
    /// written in, and, rootless, that device nodes are left out (mknod needs CAP_MKNOD in the
    /// initial user namespace; containerd leaves them out the same way). Whiteouts (0/0
    /// character devices) are made either way: the kernel allows those to anyone.
    pub privilege: Privilege,
}

impl Default for UnpackOptions {
    fn default() -> UnpackOptions {
        UnpackOptions {
            overlay_whiteouts: false,
            same_owner: false,
            privilege: Privilege::of_this_process(),
        }
    }
}

/// Unpacks a layer into `dest` (which must exist). Nothing is ever written outside `dest`.
///
/// Returns the number of entries in the layer (extension headers not counted). Entry names are
/// taken relative to `dest` (`/a` and `./a` are `a`; a name with a `..` component is refused);
/// a symlink is never followed while resolving a name or a hardlink target, so a layer whose
/// `a` is a symlink cannot write `a/x`. An entry replaces what is at its path, except that a
/// directory entry keeps an existing directory (and its contents) and only updates metadata.
/// Whiteouts only remove what lower layers had: never an entry of this same layer.
pub fn unpack_layer(
    input: &mut dyn Read,
    dest: &Path,
    opts: &UnpackOptions,
) -> Result<u64, UnpackError> {
    let mut reader = decompress(input)?;
    let mut unpacker = TreeUnpacker::new(dest, opts)?;
    let count = unpacker.unpack_tar(&mut reader)?;
    unpacker.finish()?;
    Ok(count)
}

/// Several plain (uncompressed) tars unpacked into one `dest` as if they were one: what
/// `unpack_layer` does, split so that a tree sent as many tars (a cache mount's chunks) gets
/// its directories' modes and mtimes set once, after the last tar, and so that names are
/// confined the same way. Dropping it without [`finish`](Self::finish) leaves directories
/// owner-only.
pub struct TreeUnpacker<'a> {
    inner: Unpacker<'a>,
}

impl<'a> TreeUnpacker<'a> {
    /// Unpacks into `dest`, which must exist.
    pub fn new(dest: &Path, opts: &'a UnpackOptions) -> Result<TreeUnpacker<'a>, UnpackError> {
        let root = Dir::open(dest).map_err(|source| UnpackError::Io {
            entry: format!("(destination {})", dest.display()),
            source,
        })?;
        Ok(TreeUnpacker {
            inner: Unpacker {
                root,
                opts,
                literal: false,
                dirs: Vec::new(),
                unpacked: HashSet::new(),
                parent: None,
                buf: vec![0; 128 * 1024],
            },
        })
    }

    /// A plain tree, not a layer: names are files, not markers (`.wh.NAME` is a file called
    /// `.wh.NAME`, `.wh..wh.*` is not skipped), and device nodes and xattrs are refused (a
    /// tree that a RUN step will see must not gain a block device or file capabilities from
    /// what was downloaded).
    pub fn plain_tree(mut self) -> Self {
        self.inner.literal = true;
        self
    }

    /// Unpacks one uncompressed tar stream; returns its number of entries. Reads up to the
    /// end-of-archive block, not necessarily to the end of `input`.
    pub fn unpack_tar(&mut self, input: &mut dyn Read) -> Result<u64, UnpackError> {
        let mut reader = TarReader::new(input);
        let mut count = 0;
        while let Some(entry) = reader.next_entry().map_err(UnpackError::Read)? {
            count += 1;
            self.inner.entry(&entry, &mut reader)?;
        }
        Ok(count)
    }

    /// Sets the modes and mtimes of every directory unpacked, deepest first.
    pub fn finish(mut self) -> Result<(), UnpackError> {
        self.inner.finish_dirs()
    }
}

/// Wraps `input` in the decoder its first bytes call for.
fn decompress<'a>(input: &'a mut dyn Read) -> Result<Box<dyn Read + 'a>, UnpackError> {
    let mut magic = [0u8; 6];
    let mut len = 0;
    while len < magic.len() {
        match input.read(&mut magic[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(UnpackError::Read(e)),
        }
    }
    let unsupported =
        |msg: &str| UnpackError::Read(io::Error::new(io::ErrorKind::Unsupported, msg.to_owned()));
    let head = io::Cursor::new(magic[..len].to_vec()).chain(input);
    match &magic[..len] {
        [0x1f, 0x8b, ..] => Ok(Box::new(MultiGzDecoder::new(head))),
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Err(unsupported("zstd layers are not supported yet")),
        [b'B', b'Z', b'h', ..] => Err(unsupported("bzip2-compressed layers are not supported")),
        [0xfd, b'7', b'z', b'X', b'Z', 0] => {
            Err(unsupported("xz-compressed layers are not supported"))
        }
        _ => Ok(Box::new(BufReader::with_capacity(64 * 1024, head))),
    }
}

/// A directory whose mode and mtime are set once the whole layer is unpacked.
struct DeferredDir {
    path: Vec<u8>,
    mode: u32,
    mtime: (i64, u32),
}

struct Unpacker<'a> {
    root: Dir,
    opts: &'a UnpackOptions,
    /// No whiteouts, AUFS metadata or devices: every name is a file (`TreeUnpacker::plain_tree`).
    literal: bool,
    dirs: Vec<DeferredDir>,
    /// Paths this layer created, and their ancestors: whiteouts and opaque markers only apply
    /// to lower layers (image-spec layer.md), never to these.
    unpacked: HashSet<Vec<u8>>,
    /// The last parent directory resolved, by path: consecutive entries (sorted layers) mostly
    /// share it. Dropped whenever something that could be it or above it is removed.
    parent: Option<(Vec<u8>, Dir)>,
    buf: Vec<u8>,
}

impl Unpacker<'_> {
    fn entry(&mut self, entry: &Entry, data: &mut dyn Read) -> Result<(), UnpackError> {
        let label = shown(&entry.path);
        let refuse = |reason: String| UnpackError::Unsafe {
            entry: label.clone(),
            reason,
        };
        let comps = components(&entry.path).map_err(|r| refuse(r.to_string()))?;
        let Some((&base, parents)) = comps.split_last() else {
            // The root itself ("./"): a layer does not describe its root (as containerd).
            return Ok(());
        };
        // AUFS metadata at the top (`.wh..wh.plnk/...`) is skipped whole, as dockerd does.
        if !self.literal && comps.len() > 1 && comps[0].starts_with(whiteout::WHITEOUT_META_PREFIX)
        {
            return Ok(());
        }
        let path = comps.join(&b'/');

        if self.literal && matches!(entry.kind, tar::EntryType::Char | tar::EntryType::Block) {
            return Err(refuse(
                "a device node, which a plain tree never holds".into(),
            ));
        }
        if self.literal && !entry.xattrs.is_empty() {
            // File capabilities, ACLs or overlay markers: nothing a plain tree's writer puts in.
            return Err(refuse(
                "extended attributes, which a plain tree never carries".into(),
            ));
        }
        let marker = if self.literal {
            Marker::None
        } else {
            whiteout::classify(base)
        };
        match marker {
            Marker::None => {}
            Marker::Meta => return Ok(()),
            Marker::Opaque => return self.opaque(&label, parents),
            Marker::Remove(name) if name.is_empty() || name == b"." || name == b".." => {
                return Err(refuse(format!(
                    "whiteout names {:?}, not a file",
                    String::from_utf8_lossy(name)
                )));
            }
            Marker::Remove(name) => return self.whiteout(&label, parents, name, entry),
        }

        let name = CString::new(base).map_err(|_| refuse("name contains a NUL byte".into()))?;
        // This entry replaces what is at `path`: a cached parent at or below it would go stale.
        if let Some((cached, _)) = &self.parent {
            if cached.starts_with(&path) && cached.get(path.len()).is_none_or(|&b| b == b'/') {
                self.parent = None;
            }
        }
        let parent_path = parents.join(&b'/');
        let parent = match self.parent.take() {
            Some((cached, dir)) if cached == parent_path => dir,
            _ => self.resolve(&label, parents, true)?.expect("created"),
        };
        let ctx = create::Ctx {
            root: &self.root,
            same_owner: self.opts.same_owner,
            overlay_whiteouts: self.opts.overlay_whiteouts,
            privilege: self.opts.privilege,
            label: &label,
            path: &path,
        };
        create::entry(&ctx, entry, data, &parent, &name, &mut self.buf)?;
        self.parent = Some((parent_path, parent));

        if entry.kind == tar::EntryType::Directory {
            self.dirs.push(DeferredDir {
                path: path.clone(),
                mode: entry.mode,
                mtime: entry.mtime,
            });
        }
        self.mark_unpacked(&comps);
        Ok(())
    }

    /// `.wh.NAME`: in overlay format a 0/0 character device (or where that is refused, an empty
    /// file marked by xattr: see `marker`); otherwise `NAME` is removed.
    fn whiteout(
        &mut self,
        label: &str,
        parents: &[&[u8]],
        name: &[u8],
        entry: &Entry,
    ) -> Result<(), UnpackError> {
        let mut target = parents.join(&b'/');
        if !target.is_empty() {
            target.push(b'/');
        }
        target.extend_from_slice(name);
        if self.unpacked.contains(&target) {
            return Ok(()); // Present in this same layer: a whiteout only hides lower layers.
        }
        let io_err = |source: io::Error| UnpackError::Io {
            entry: label.to_owned(),
            source,
        };
        let cname = CString::new(name).map_err(|_| io_err(beneath::nul_error()))?;
        self.parent = None; // What is removed may be the cached parent or above it.
        if self.opts.overlay_whiteouts {
            let parent = self.resolve(label, parents, true)?.expect("created");
            parent.remove_all(&cname).map_err(io_err)?;
            marker::make_whiteout(parent.fd(), &cname).map_err(io_err)?;
            if self.opts.same_owner {
                let (uid, gid) = create::ids(entry).map_err(io_err)?;
                parent
                    .chown(&cname, uid, gid)
                    .map_err(|e| io_err(create::chown_error(self.opts.privilege, uid, gid, e)))?;
            }
        } else if let Some(parent) = self.resolve(label, parents, false)? {
            parent.remove_all(&cname).map_err(io_err)?;
        }
        Ok(())
    }

    /// `.wh..wh..opq`: in overlay format the `overlay.opaque=y` xattr (of the mode's namespace;
    /// `user.` where `trusted.` is refused: see `marker`) on the directory; otherwise
    /// everything in it that this layer did not create is removed.
    fn opaque(&mut self, label: &str, dir: &[&[u8]]) -> Result<(), UnpackError> {
        self.parent = None;
        let io_err = |source: io::Error| UnpackError::Io {
            entry: label.to_owned(),
            source,
        };
        if self.opts.overlay_whiteouts {
            let dir_fd = self.resolve(label, dir, true)?.expect("created");
            return marker::mark_opaque_as(dir_fd.file(), self.opts.privilege).map_err(io_err);
        }
        let Some(dir_fd) = self.resolve(label, dir, false)? else {
            return Ok(());
        };
        self.clear_lower(&dir_fd, dir.join(&b'/')).map_err(io_err)
    }

    /// Removes the children of `dir` (at `path`) not created by this layer, recursing into
    /// those that were.
    fn clear_lower(&self, dir: &Dir, path: Vec<u8>) -> io::Result<()> {
        for name in dir.names()? {
            let mut child = path.clone();
            if !child.is_empty() {
                child.push(b'/');
            }
            child.extend_from_slice(name.to_bytes());
            if !self.unpacked.contains(&child) {
                dir.remove_all(&name)?;
            } else if dir.stat(&name)?.is_some_and(|st| st.is_dir()) {
                self.clear_lower(&dir.open_dir(&name)?, child)?;
            }
        }
        Ok(())
    }

    fn mark_unpacked(&mut self, comps: &[&[u8]]) {
        let mut prefix = Vec::new();
        for comp in comps {
            if !prefix.is_empty() {
                prefix.push(b'/');
            }
            prefix.extend_from_slice(comp);
            if !self.unpacked.contains(&prefix) {
                self.unpacked.insert(prefix.clone());
            }
        }
    }

    fn resolve(
        &self,
        label: &str,
        comps: &[&[u8]],
        create: bool,
    ) -> Result<Option<Dir>, UnpackError> {
        beneath::resolve_dir(&self.root, comps, create).map_err(|e| resolve_error(label, e))
    }

    /// Sets directory modes and mtimes, deepest first, after all entries (creating children
    /// changes a directory's mtime, and a read-only directory must still accept children).
    fn finish_dirs(&mut self) -> Result<(), UnpackError> {
        let mut seen = HashSet::new();
        let mut dirs: Vec<DeferredDir> = Vec::new();
        // The last entry for a path wins.
        for dir in std::mem::take(&mut self.dirs).into_iter().rev() {
            if seen.insert(dir.path.clone()) {
                dirs.push(dir);
            }
        }
        dirs.sort_by_key(|d| std::cmp::Reverse(d.path.iter().filter(|&&b| b == b'/').count()));
        for dir in dirs {
            let label = String::from_utf8_lossy(&dir.path).into_owned();
            let io_err = |source: io::Error| UnpackError::Io {
                entry: label.clone(),
                source,
            };
            let comps: Vec<&[u8]> = dir.path.split(|&b| b == b'/').collect();
            // A later entry may have replaced or removed the directory: nothing to set then.
            let fd = match beneath::resolve_dir(&self.root, &comps, false) {
                Ok(Some(fd)) => fd,
                Ok(None) | Err(ResolveError::Symlink(_) | ResolveError::NotDir(_)) => continue,
                Err(e) => return Err(resolve_error(&label, e)),
            };
            fd.file()
                .set_permissions(Permissions::from_mode(dir.mode))
                .map_err(io_err)?;
            beneath::set_fd_times(fd.file(), dir.mtime).map_err(io_err)?;
        }
        Ok(())
    }
}
