//! One chunk's tar as a reader: each entry's header (the layer writer's deterministic
//! encoding), its content read from the file as the reader is read, padding, and the trailer.
//! A file whose size differs from what the walk saw, or that became something else, is an
//! error: a chunk is the tree as walked or nothing.

use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read};

use tar::EntryType;

use super::walk::{Entry, Kind};
use crate::snapshot::beneath::{self, Dir};
use crate::snapshot::header::{self, EntryMeta};

pub(super) struct TarStream<'a> {
    /// The mount: files are opened beneath it, one component at a time, never through a
    /// symlink.
    root: &'a Dir,
    /// The parent directory of the last file opened, by relative path (sorted entries mostly
    /// share it).
    parent: Option<(Vec<u8>, Dir)>,
    entries: &'a [Entry],
    next: usize,
    /// Header, padding or trailer bytes not yet read out.
    pending: Vec<u8>,
    pending_at: usize,
    /// The file being read, and how many of its bytes are still due.
    file: Option<(File, u64, usize)>,
    trailer_done: bool,
}

impl<'a> TarStream<'a> {
    pub(super) fn new(root: &'a Dir, entries: &'a [Entry]) -> TarStream<'a> {
        TarStream {
            root,
            parent: None,
            entries,
            next: 0,
            pending: Vec::new(),
            pending_at: 0,
            file: None,
            trailer_done: false,
        }
    }

    /// Queues the next entry's header (and opens its file); false when no entry is left.
    fn advance(&mut self) -> io::Result<bool> {
        let Some(e) = self.entries.get(self.next) else {
            return Ok(false);
        };
        let index = self.next;
        self.next += 1;
        let mut path = e.rel.clone();
        let (kind, size, link) = match &e.kind {
            Kind::File { size } => (EntryType::Regular, *size, None),
            Kind::Dir => {
                path.push(b'/');
                (EntryType::Directory, 0, None)
            }
            Kind::Symlink { target } => (EntryType::Symlink, 0, Some(target.as_slice())),
            Kind::Hardlink { target } => (EntryType::Link, 0, Some(target.as_slice())),
        };
        let meta = EntryMeta {
            path: &path,
            kind,
            mode: e.mode,
            uid: e.uid as u64,
            gid: e.gid as u64,
            mtime: e.mtime,
            size,
            link,
            device: None,
            xattrs: &[],
        };
        self.pending.clear();
        self.pending_at = 0;
        header::write_header(&mut self.pending, &meta)?;
        if let Kind::File { size } = e.kind {
            let file = self
                .open(&e.rel)
                .map_err(|err| changed(e, format!("opening it: {err}")))?;
            let m = file.metadata()?;
            if !m.is_file() || m.len() != size {
                return Err(changed(
                    e,
                    format!("{size} bytes when walked, now {}", m.len()),
                ));
            }
            self.file = Some((file, size, index));
        }
        Ok(true)
    }
}

impl TarStream<'_> {
    /// Opens the file at `rel` beneath the root, never following a symlink on the way.
    fn open(&mut self, rel: &[u8]) -> io::Result<File> {
        let (parent_rel, name) = match rel.iter().rposition(|&b| b == b'/') {
            Some(i) => (&rel[..i], &rel[i + 1..]),
            None => (&rel[..0], rel),
        };
        let parent = match self.parent.take() {
            Some((cached, dir)) if cached == parent_rel => dir,
            _ => {
                let comps: Vec<&[u8]> = if parent_rel.is_empty() {
                    Vec::new()
                } else {
                    parent_rel.split(|&b| b == b'/').collect()
                };
                match beneath::resolve_dir(self.root, &comps, false) {
                    Ok(Some(dir)) => dir,
                    Ok(None) => return Err(io::Error::from(io::ErrorKind::NotFound)),
                    Err(e) => {
                        return Err(io::Error::other(format!(
                            "its directory is no longer a directory beneath the mount ({e:?})"
                        )))
                    }
                }
            }
        };
        let name = CString::new(name).map_err(|_| beneath::nul_error())?;
        let file = parent.open_read(&name);
        self.parent = Some((parent_rel.to_vec(), parent));
        file
    }
}

/// An error `pack` turns into `MountPackError::Changed` (kind `Other`, message prefixed).
pub(super) const CHANGED: &str = "changed while packed: ";

fn changed(e: &Entry, what: String) -> io::Error {
    io::Error::other(format!("{CHANGED}{}: {what}", e.abs.display()))
}

impl Read for TarStream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.pending_at < self.pending.len() {
                let n = buf.len().min(self.pending.len() - self.pending_at);
                buf[..n].copy_from_slice(&self.pending[self.pending_at..self.pending_at + n]);
                self.pending_at += n;
                return Ok(n);
            }
            if let Some((file, left, index)) = &mut self.file {
                if *left > 0 {
                    let want = buf.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
                    let n = file.read(&mut buf[..want])?;
                    if n == 0 {
                        let e = &self.entries[*index];
                        return Err(changed(e, "it ended early".into()));
                    }
                    *left -= n as u64;
                    return Ok(n);
                }
                let e = &self.entries[*index];
                let size = e.content_size();
                // Grown since: the extra bytes would silently be cut off.
                if file.read(&mut [0u8; 1])? != 0 {
                    return Err(changed(e, format!("it grew past {size} bytes")));
                }
                self.file = None;
                self.pending.clear();
                self.pending_at = 0;
                header::pad(&mut self.pending, size)?;
                continue;
            }
            if self.advance()? {
                continue;
            }
            if !self.trailer_done {
                self.trailer_done = true;
                self.pending.clear();
                self.pending_at = 0;
                header::write_trailer(&mut self.pending)?;
                continue;
            }
            return Ok(0);
        }
    }
}
