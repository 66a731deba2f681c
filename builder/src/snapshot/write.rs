//! Upper dir (overlayfs format) -> OCI layer tar.
//!
//! Owns the walk of a snapshot directory and the mapping of each file to an entry: the order
//! (depth first, names sorted bytewise within a directory, the order of Go's `filepath.Walk`
//! that BuildKit's overlay differ uses), what is skipped (sockets, the root itself), what
//! becomes a whiteout, which inode is written once and linked afterwards, and which xattrs
//! travel. Tar encoding is in `header`; whiteout names are in `whiteout`.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::{self, File, Metadata};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use tar::EntryType;

use super::header::{self, EntryMeta};
use super::whiteout::{self, OPAQUE_MARKER, WHITEOUT_PREFIX};

#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// SOURCE_DATE_EPOCH: mtimes later than this are clamped to it.
    pub clamp_mtime: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LayerStats {
    pub entries: u64,
    /// Bytes of file content written.
    pub content_bytes: u64,
}

/// Writes the tar of `upper` (a snapshot dir / overlay upper dir) to `out`: entries sorted by
/// path, numeric uid/gid only, mode, mtime (clamped), xattrs (e.g. security.capability, but
/// not overlay's trusted.* bookkeeping), symlinks, hardlinks within the layer, devices, fifos;
/// overlay whiteouts (0/0 char devices) as `.wh.NAME`, opaque dirs as `.wh..wh..opq`.
///
/// "Sorted" is walk order: a directory (named `dir/`), then its opaque marker, then its
/// children by bytewise name, a whiteout `.wh.NAME` standing where `NAME` sorts. Equal trees
/// give equal bytes. Sockets are skipped; file content is streamed, never held in memory.
/// Fails on an upper dir made with overlayfs `metacopy` or `redirect_dir`, whose files and
/// directories are not whole in the upper dir.
pub fn write_layer(
    upper: &Path,
    out: &mut dyn Write,
    opts: &WriteOptions,
) -> std::io::Result<LayerStats> {
    let mut out = BufWriter::with_capacity(COPY_BUF, out);
    let mut writer = LayerWriter {
        out: &mut out,
        opts,
        stats: LayerStats::default(),
        links: HashMap::new(),
        buf: vec![0; COPY_BUF],
    };
    let root = fs::symlink_metadata(upper).map_err(|e| at(upper, e))?;
    if !root.is_dir() {
        return Err(at(
            upper,
            io::Error::new(io::ErrorKind::NotADirectory, "not a directory"),
        ));
    }
    if is_opaque(upper)? {
        writer.marker(OPAQUE_MARKER.to_vec())?;
    }

    // Depth-first walk with an explicit stack (trees may be deeper than a thread's stack).
    let mut stack = vec![Frame::new(upper.to_path_buf(), Vec::new())?];
    while let Some(frame) = stack.last_mut() {
        let Some(name) = frame.names.pop() else {
            stack.pop();
            continue;
        };
        let abs = frame.abs.join(&name);
        let mut rel = frame.rel.clone();
        if !rel.is_empty() {
            rel.push(b'/');
        }
        rel.extend_from_slice(name.as_bytes());

        if let Some(child) = writer.entry(&abs, rel)? {
            stack.push(child);
        }
    }

    let stats = writer.stats;
    header::write_trailer(&mut out)?;
    out.flush()?;
    Ok(stats)
}

const COPY_BUF: usize = 128 * 1024;

/// A directory being walked: its children, sorted, popped from the end.
struct Frame {
    abs: PathBuf,
    rel: Vec<u8>,
    names: Vec<OsString>,
}

impl Frame {
    fn new(abs: PathBuf, rel: Vec<u8>) -> io::Result<Frame> {
        let mut names = fs::read_dir(&abs)
            .and_then(|dir| {
                dir.map(|e| e.map(|e| e.file_name()))
                    .collect::<io::Result<Vec<_>>>()
            })
            .map_err(|e| at(&abs, e))?;
        names.sort_unstable_by(|a, b| b.as_bytes().cmp(a.as_bytes()));
        Ok(Frame { abs, rel, names })
    }
}

struct LayerWriter<'a> {
    out: &'a mut dyn Write,
    opts: &'a WriteOptions,
    stats: LayerStats,
    /// (dev, ino) of multiply-linked files -> the path they were first written under.
    links: HashMap<(u64, u64), Vec<u8>>,
    buf: Vec<u8>,
}

impl LayerWriter<'_> {
    /// Writes the entry (or entries) for one file; returns the frame to walk if it is a dir.
    fn entry(&mut self, abs: &Path, mut rel: Vec<u8>) -> io::Result<Option<Frame>> {
        let meta = fs::symlink_metadata(abs).map_err(|e| at(abs, e))?;
        let ft = meta.file_type();
        if ft.is_socket() {
            return Ok(None);
        }
        if is_whiteout(abs, &meta)? {
            let split = rel.iter().rposition(|&b| b == b'/').map_or(0, |i| i + 1);
            let mut name = rel[..split].to_vec();
            name.extend_from_slice(WHITEOUT_PREFIX);
            name.extend_from_slice(&rel[split..]);
            self.marker(name)?;
            return Ok(None);
        }

        let xattrs = public_xattrs(abs, &meta)?;
        let mut kind = EntryType::Regular;
        let mut size = 0;
        let mut device = None;
        let target;
        let mut link: Option<&[u8]> = None;
        if ft.is_dir() {
            kind = EntryType::Directory;
        } else if ft.is_symlink() {
            kind = EntryType::Symlink;
            target = fs::read_link(abs)
                .map_err(|e| at(abs, e))?
                .into_os_string()
                .into_vec();
            link = Some(&target);
        } else if ft.is_fifo() {
            kind = EntryType::Fifo;
        } else if ft.is_char_device() || ft.is_block_device() {
            kind = if ft.is_char_device() {
                EntryType::Char
            } else {
                EntryType::Block
            };
            let rdev = meta.rdev();
            device = Some((libc::major(rdev), libc::minor(rdev)));
        } else if ft.is_file() {
            size = meta.len();
        }

        // Second and later paths of an inode become hardlinks to the first.
        if !ft.is_dir() && meta.nlink() > 1 {
            let key = (meta.dev(), meta.ino());
            if let Some(first) = self.links.get(&key) {
                let first = first.clone();
                let meta = self.meta(&rel, EntryType::Link, &meta, 0, Some(&first), None, &xattrs);
                header::write_header(self.out, &meta)?;
                self.stats.entries += 1;
                return Ok(None);
            }
            self.links.insert(key, rel.clone());
        }

        if ft.is_dir() {
            rel.push(b'/');
        }
        let entry = self.meta(&rel, kind, &meta, size, link, device, &xattrs);
        header::write_header(self.out, &entry)?;
        self.stats.entries += 1;
        if ft.is_file() {
            self.copy(abs, size)?;
        }
        if !ft.is_dir() {
            return Ok(None);
        }
        if is_opaque(abs)? {
            let mut marker = rel.clone();
            marker.extend_from_slice(OPAQUE_MARKER);
            self.marker(marker)?;
        }
        rel.pop();
        Frame::new(abs.to_path_buf(), rel).map(Some)
    }

    #[allow(clippy::too_many_arguments)]
    fn meta<'m>(
        &self,
        path: &'m [u8],
        kind: EntryType,
        meta: &Metadata,
        size: u64,
        link: Option<&'m [u8]>,
        device: Option<(u32, u32)>,
        xattrs: &'m [(String, Vec<u8>)],
    ) -> EntryMeta<'m> {
        let mtime = match self.opts.clamp_mtime {
            Some(epoch) => meta.mtime().min(epoch),
            None => meta.mtime(),
        };
        EntryMeta {
            path,
            kind,
            mode: meta.mode() & 0o7777,
            uid: meta.uid().into(),
            gid: meta.gid().into(),
            mtime,
            size,
            link,
            device,
            xattrs,
        }
    }

    /// A whiteout or opaque marker: an empty regular file, mode 0, owned by 0:0, mtime 0 (the
    /// metadata containerd 2.x gives whiteouts: fixed, so independent of SOURCE_DATE_EPOCH).
    fn marker(&mut self, path: Vec<u8>) -> io::Result<()> {
        let meta = EntryMeta {
            path: &path,
            kind: EntryType::Regular,
            mode: 0,
            uid: 0,
            gid: 0,
            mtime: 0,
            size: 0,
            link: None,
            device: None,
            xattrs: &[],
        };
        header::write_header(self.out, &meta)?;
        self.stats.entries += 1;
        Ok(())
    }

    /// Streams exactly `size` bytes of `abs` (as stat'ed when its header was written).
    fn copy(&mut self, abs: &Path, size: u64) -> io::Result<()> {
        let mut file = File::options()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(abs)
            .map_err(|e| at(abs, e))?;
        let mut left = size;
        while left > 0 {
            let want = left.min(self.buf.len() as u64) as usize;
            let n = match file.read(&mut self.buf[..want]) {
                Ok(0) => {
                    let msg = format!("file shrank while being written to the layer ({left} of {size} bytes missing)");
                    return Err(at(abs, io::Error::new(io::ErrorKind::UnexpectedEof, msg)));
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(at(abs, e)),
            };
            self.out.write_all(&self.buf[..n])?;
            left -= n as u64;
        }
        header::pad(self.out, size)?;
        self.stats.content_bytes += size;
        Ok(())
    }
}

/// overlayfs whiteout: a 0/0 character device, or (Linux 6.7+) an empty regular file carrying
/// the `overlay.whiteout` xattr.
fn is_whiteout(abs: &Path, meta: &Metadata) -> io::Result<bool> {
    let ft = meta.file_type();
    if ft.is_char_device() {
        return Ok(meta.rdev() == 0);
    }
    if ft.is_file() && meta.len() == 0 {
        for name in whiteout::overlay_xattr_names("whiteout") {
            if get_xattr(abs, &name)?.is_some() {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

fn is_opaque(abs: &Path) -> io::Result<bool> {
    for name in whiteout::overlay_xattr_names("opaque") {
        if get_xattr(abs, &name)?.as_deref() == Some(b"y") {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The xattrs that travel in the layer, sorted by name. Fails on overlay features whose upper
/// dir does not hold the whole file (redirect_dir, metacopy).
fn public_xattrs(abs: &Path, meta: &Metadata) -> io::Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    let names = match xattr::list(abs) {
        Ok(names) => names,
        Err(e) if e.raw_os_error() == Some(libc::ENOTSUP) => return Ok(out),
        Err(e) => return Err(at(abs, e)),
    };
    for name in names {
        let bytes = name.as_bytes();
        for (suffix, option) in whiteout::UNSUPPORTED_OVERLAY_FEATURES {
            if whiteout::overlay_xattr_names(suffix)
                .iter()
                .any(|n| n.as_bytes() == bytes)
            {
                let msg = format!(
                    "overlayfs {option} is in use: the upper dir does not hold the whole {}; \
                     mount the overlay with {option}=off",
                    if meta.is_dir() { "directory" } else { "file" }
                );
                return Err(at(abs, io::Error::new(io::ErrorKind::Unsupported, msg)));
            }
        }
        if whiteout::is_private_xattr(bytes) {
            continue;
        }
        let Some(key) = name.to_str() else {
            let msg = format!("xattr name {name:?} is not UTF-8 and cannot be a PAX record");
            return Err(at(abs, io::Error::new(io::ErrorKind::InvalidData, msg)));
        };
        // Gone between list and get: nothing to write.
        if let Some(value) = get_xattr(abs, &name)? {
            out.push((key.to_owned(), value));
        }
    }
    out.sort();
    Ok(out)
}

/// An xattr of `abs` (not following symlinks); None where the filesystem has no xattrs.
fn get_xattr(abs: &Path, name: impl AsRef<std::ffi::OsStr>) -> io::Result<Option<Vec<u8>>> {
    match xattr::get(abs, name) {
        Err(e) if e.raw_os_error() == Some(libc::ENOTSUP) => Ok(None),
        other => other.map_err(|e| at(abs, e)),
    }
}

/// Adds the path to an I/O error, keeping its kind.
fn at(path: &Path, err: io::Error) -> io::Error {
    io::Error::new(err.kind(), format!("{}: {err}", path.display()))
}
