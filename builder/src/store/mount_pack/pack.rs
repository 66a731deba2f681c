//! A mount directory -> chunk blobs under a work directory and the manifest naming them.

use std::collections::HashMap;
use std::fs;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use codec::Compression;
use sha2::{Digest as _, Sha256};

use super::chunker::{self, ChunkParams};
use super::manifest::{Descriptor, MountManifest, MANIFEST_MEDIA_TYPE, MANIFEST_VERSION};
use super::tar_stream::{TarStream, CHANGED};
use super::walk::{self, Entry};
use super::MountPackError;

/// How to pack. The defaults are the format's: change the chunk sizes only in tests.
#[derive(Debug, Clone)]
pub struct PackOptions {
    /// Compression of the chunk blobs (the manifest names it per chunk).
    pub compression: Compression,
    pub files: ChunkParams,
    pub dirs: ChunkParams,
}

impl Default for PackOptions {
    fn default() -> PackOptions {
        PackOptions {
            compression: Compression::default(),
            files: ChunkParams::FILES,
            dirs: ChunkParams::DIRS,
        }
    }
}

/// Something in the mount that a manifest does not carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// Relative to the mount.
    pub path: String,
    pub reason: String,
}

/// A chunk blob written by `pack`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenBlob {
    pub descriptor: Descriptor,
    /// `work_dir/<hex of the digest>`.
    pub path: PathBuf,
}

/// What `pack` made.
#[derive(Debug, Clone)]
pub struct PackedMount {
    pub manifest: MountManifest,
    /// The manifest blob to upload.
    pub manifest_json: Vec<u8>,
    /// `sha256:` of `manifest_json`.
    pub manifest_digest: String,
    /// Chunks compressed and written under `work_dir` by this call: the ones to upload
    /// (unless the registry holds one already). A chunk listed twice in the manifest is
    /// written once.
    pub blobs: Vec<WrittenBlob>,
    /// Chunks taken from `previous` without compressing them again (not written).
    pub reused: Vec<Descriptor>,
    pub skipped: Vec<Skipped>,
}

/// Packs the tree under `mount_dir` into chunk blobs under `work_dir` (created if missing;
/// a blob is written to a temporary name and renamed to its digest's hex) and returns the
/// manifest. Deterministic: the same tree (names, contents, modes, owners, whole-second mtimes,
/// symlinks, hardlinks) gives the same manifest bytes on any machine and any run.
///
/// `previous`: the manifest this one replaces (see the module doc). Its chunks are reused by
/// `diffId` only: a chunk whose tar hashes to the same digest with the same media type gets
/// the previous descriptor back instead of being compressed again.
///
/// The mount should not be in use: a file that changes while it is read fails the pack
/// ([`MountPackError::Changed`]) rather than giving a chunk of mixed states.
pub fn pack(
    mount_dir: &Path,
    work_dir: &Path,
    previous: Option<&MountManifest>,
    opts: &PackOptions,
) -> Result<PackedMount, MountPackError> {
    fs::create_dir_all(work_dir).map_err(|source| MountPackError::Write {
        path: work_dir.to_path_buf(),
        source,
    })?;
    if let (Ok(mount), Ok(work)) = (mount_dir.canonicalize(), work_dir.canonicalize()) {
        if work.starts_with(&mount) {
            return Err(MountPackError::Write {
                path: work_dir.to_path_buf(),
                source: io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "the work dir is inside the mount {}: chunks would pack themselves;                          use a directory outside it",
                        mount_dir.display()
                    ),
                ),
            });
        }
    }
    let walked = walk::walk(mount_dir)?;
    let media_type = opts.compression.media_type(true);
    let known: HashMap<(&str, &str), &Descriptor> = previous
        .map(|m| {
            m.chunks
                .iter()
                .map(|c| ((c.diff_id.as_str(), c.media_type.as_str()), c))
                .collect()
        })
        .unwrap_or_default();

    let mut packer = Packer {
        root: &walked.root_dir,
        work_dir,
        compression: opts.compression,
        media_type,
        known,
        chunks: Vec::new(),
        blobs: Vec::new(),
        reused: Vec::new(),
    };
    for range in chunker::chunks(&walked.files, opts.files) {
        packer.chunk(&walked.files[range])?;
    }
    for range in chunker::chunks(&walked.dirs, opts.dirs) {
        packer.chunk(&walked.dirs[range])?;
    }
    let manifest = MountManifest {
        media_type: MANIFEST_MEDIA_TYPE.to_string(),
        version: MANIFEST_VERSION,
        root: walked.root,
        chunks: packer.chunks,
        entries: (walked.files.len() + walked.dirs.len()) as u64,
        content_size: walked.files.iter().map(Entry::content_size).sum(),
    };
    let manifest_json = manifest.to_json();
    Ok(PackedMount {
        manifest_digest: super::manifest::sha256_digest(&manifest_json),
        manifest_json,
        manifest,
        blobs: packer.blobs,
        reused: packer.reused,
        skipped: walked.skipped,
    })
}

struct Packer<'a> {
    root: &'a crate::snapshot::beneath::Dir,
    work_dir: &'a Path,
    compression: Compression,
    media_type: &'static str,
    known: HashMap<(&'a str, &'a str), &'a Descriptor>,
    chunks: Vec<Descriptor>,
    blobs: Vec<WrittenBlob>,
    reused: Vec<Descriptor>,
}

impl Packer<'_> {
    fn chunk(&mut self, entries: &[Entry]) -> Result<(), MountPackError> {
        let entry_count = entries.len() as u64;
        // With a previous manifest, hash first: an unchanged chunk is not compressed again.
        if !self.known.is_empty() {
            let mut tar = Hashing::new(TarStream::new(self.root, entries));
            io::copy(&mut tar, &mut io::sink()).map_err(|e| self.read_error(entries, e))?;
            let diff_id = tar.digest();
            if let Some(&old) = self.known.get(&(diff_id.as_str(), self.media_type)) {
                if old.tar_size == tar.count && old.entries == entry_count {
                    self.chunks.push(old.clone());
                    if !self.reused.contains(old) {
                        self.reused.push(old.clone());
                    }
                    return Ok(());
                }
            }
        }
        let write_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| MountPackError::Write { path, source }
        };
        let tmp = tempfile::Builder::new()
            .prefix(".chunk-")
            .tempfile_in(self.work_dir)
            .map_err(write_err(self.work_dir))?;
        let mut tar = Hashing::new(TarStream::new(self.root, entries));
        let (size, digest) = {
            let out = Hashing::new(BufWriter::with_capacity(256 << 10, tmp.as_file()));
            let out = self
                .compression
                .encode(&mut tar, None, out)
                .map_err(|e| self.read_error(entries, e))?;
            let (size, digest) = (out.count, out.digest());
            out.inner
                .into_inner()
                .map_err(|e| e.into_error())
                .map_err(write_err(self.work_dir))?;
            (size, digest)
        };
        let descriptor = Descriptor {
            media_type: self.media_type.to_string(),
            digest: digest.clone(),
            size,
            diff_id: tar.digest(),
            tar_size: tar.count,
            entries: entry_count,
        };
        let path = self.work_dir.join(digest.trim_start_matches("sha256:"));
        tmp.persist(&path).map_err(|e| MountPackError::Write {
            path: path.clone(),
            source: e.error,
        })?;
        if !self.blobs.iter().any(|b| b.descriptor == descriptor) {
            self.blobs.push(WrittenBlob {
                descriptor: descriptor.clone(),
                path,
            });
        }
        self.chunks.push(descriptor);
        Ok(())
    }

    fn read_error(&self, entries: &[Entry], e: io::Error) -> MountPackError {
        let msg = e.to_string();
        if let Some(rest) = msg.strip_prefix(CHANGED) {
            let (path, what) = rest.split_once(": ").unwrap_or((rest, ""));
            return MountPackError::Changed {
                path: PathBuf::from(path),
                what: what.to_string(),
            };
        }
        // Reading a file or writing the blob; name the chunk's first entry.
        let path = entries.first().map(|e| e.abs.clone()).unwrap_or_default();
        MountPackError::Read { path, source: e }
    }
}

/// A reader or writer that hashes (sha256) and counts what passes through.
pub(super) struct Hashing<T> {
    pub inner: T,
    hasher: Sha256,
    pub count: u64,
}

impl<T> Hashing<T> {
    pub(super) fn new(inner: T) -> Hashing<T> {
        Hashing {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    pub(super) fn digest(&self) -> String {
        format!("sha256:{}", hex::encode(self.hasher.clone().finalize()))
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
