//! Content-addressed blobs: plain files at `blobs/sha256/<hex>`, written through a temp file
//! that is hashed as it is written, fsynced and renamed into place (crash-safe; a blob path
//! that exists is always complete). `commit_unsynced` skips the fsync for blobs the caller
//! tracks itself (a build's layer diffs; see the builder's store::durability).
//!
//! This module owns the blob files and their temp files (`tmp/blob-*.partial`) and nothing
//! else: it knows nothing of the index, of layers or of images. Digests are validated before
//! they become paths, so a digest can never name a file outside `blobs/sha256/`.

use crate::CacheError;
use sha2::{Digest, Sha256};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The prefix of the digests this store holds.
const SHA256_PREFIX: &str = "sha256:";
/// Buffer between `write` calls and the temp file: tar streams write in small pieces.
const WRITE_BUFFER: usize = 128 * 1024;
/// Temp files of blobs being written are `tmp/blob-<pid>-<n>.partial`.
const TEMP_PREFIX: &str = "blob-";
const TEMP_SUFFIX: &str = ".partial";

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BlobInfo {
    /// `sha256:<hex>`.
    pub digest: String,
    pub size: u64,
}

pub struct Blobs {
    dir: PathBuf,
    tmp: PathBuf,
}

/// A blob being written: `Write` it, then `commit`. Dropped without a commit, it deletes its
/// temp file; a crash leaves the temp file in `tmp/` but never a blob.
pub struct BlobWriter {
    /// `None` once committed or abandoned.
    file: Option<BufWriter<File>>,
    temp: PathBuf,
    dir: PathBuf,
    hasher: Sha256,
    size: u64,
}

impl io::Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let file = self.file.as_mut().ok_or_else(closed)?;
        let n = file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.as_mut().ok_or_else(closed)?.flush()
    }
}

fn closed() -> io::Error {
    io::Error::other("blob writer already finished")
}

/// Runs before an unsynced blob gets its name (see `commit_unsynced`).
type BeforePublish<'a> = &'a mut dyn FnMut(&BlobInfo) -> io::Result<()>;

impl BlobWriter {
    /// Finishes the blob: fsync, rename to its digest (a no-op if it already exists).
    pub fn commit(self) -> Result<BlobInfo, CacheError> {
        self.finish(None, None)
    }

    /// Like `commit`, but fails (and keeps nothing) if the digest is not `expected`.
    pub fn commit_expect(self, expected: &str) -> Result<BlobInfo, CacheError> {
        self.finish(Some(expected), None)
    }

    /// Like `commit`, without fsync: the blob is complete for every process of this boot, but
    /// a crash before writeback may leave its path with partial content. `before_publish` runs
    /// once the digest is known and before the blob gets its name: the caller records there
    /// that this blob must be checked after a restart (the builder's store::durability).
    pub fn commit_unsynced(
        self,
        mut before_publish: impl FnMut(&BlobInfo) -> io::Result<()>,
    ) -> Result<BlobInfo, CacheError> {
        self.finish(None, Some(&mut before_publish))
    }

    /// `commit_expect` without fsync (see `commit_unsynced`).
    pub fn commit_expect_unsynced(
        self,
        expected: &str,
        mut before_publish: impl FnMut(&BlobInfo) -> io::Result<()>,
    ) -> Result<BlobInfo, CacheError> {
        self.finish(Some(expected), Some(&mut before_publish))
    }

    /// The number of bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// `sha256:<hex>` of the bytes written so far: the digest `commit` would give now (a
    /// download checks its blob with it rather than hashing the bytes twice).
    pub fn sha256_so_far(&self) -> String {
        format!(
            "{SHA256_PREFIX}{}",
            hex::encode(self.hasher.clone().finalize())
        )
    }

    /// `unsynced`: no fsync, and this runs before the blob gets its name.
    fn finish(
        mut self,
        expected: Option<&str>,
        unsynced: Option<BeforePublish>,
    ) -> Result<BlobInfo, CacheError> {
        let sync = unsynced.is_none();
        if let Some(expected) = expected {
            // Before any work, and so that the error names the bad input rather than a mismatch.
            hex_of(expected)?;
        }
        let digest = format!(
            "{SHA256_PREFIX}{}",
            hex::encode(std::mem::take(&mut self.hasher).finalize())
        );
        if let Some(expected) = expected {
            if expected != digest {
                // Drop removes the temp file.
                return Err(CacheError::DigestMismatch {
                    expected: expected.to_string(),
                    actual: digest,
                });
            }
        }
        let info = BlobInfo {
            digest,
            size: self.size,
        };
        let target = self.dir.join(&info.digest[SHA256_PREFIX.len()..]);
        if let Ok(existing) = fs::metadata(&target) {
            if existing.is_file() {
                // Same content, already complete: the temp file is redundant (Drop removes it).
                // The directory is synced still if the blob is new enough that its writer may
                // not have got that far yet (a writer syncs right after its rename).
                if sync && !settled(&existing) {
                    sync_dir(&self.dir)?;
                }
                return Ok(info);
            }
        }
        if let Some(before_publish) = unsynced {
            before_publish(&info)
                .map_err(|e| io_error("recording an unsynced blob for", &target, e))?;
        }

        let file = self
            .file
            .take()
            .ok_or_else(|| io_error("finishing blob temp file", &self.temp, closed()))?;
        let file = file
            .into_inner()
            .map_err(|e| io_error("writing blob temp file", &self.temp, e.into_error()))?;
        if sync {
            file.sync_all()
                .map_err(|e| io_error("syncing blob temp file", &self.temp, e))?;
        }
        drop(file);

        // rename() replaces atomically: if another process committed the same blob meanwhile,
        // its file and ours have the same content and either is complete.
        if let Err(e) = fs::rename(&self.temp, &target) {
            if e.kind() != io::ErrorKind::NotFound || self.dir.is_dir() {
                return Err(io_error("moving blob into place at", &target, e));
            }
            fs::create_dir_all(&self.dir)
                .map_err(|e| io_error("creating blob directory", &self.dir, e))?;
            fs::rename(&self.temp, &target)
                .map_err(|e| io_error("moving blob into place at", &target, e))?;
        }
        // The temp file is gone; nothing for Drop to remove.
        self.temp = PathBuf::new();
        if sync {
            sync_dir(&self.dir)?;
        }
        Ok(info)
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        self.file = None;
        if !self.temp.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.temp);
        }
    }
}

fn io_error(what: &'static str, path: &Path, source: io::Error) -> CacheError {
    CacheError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// Whether a blob file was written long enough ago that its writer has synced its directory.
fn settled(meta: &fs::Metadata) -> bool {
    meta.modified()
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age > std::time::Duration::from_secs(10))
}

fn sync_dir(dir: &Path) -> Result<(), CacheError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error("syncing blob directory", dir, e))
}

/// The hex part of a well-formed `sha256:<64 lowercase hex>` digest.
fn hex_of(digest: &str) -> Result<&str, CacheError> {
    let bad = || CacheError::BadDigest(digest.to_string());
    let hex = digest.strip_prefix(SHA256_PREFIX).ok_or_else(bad)?;
    if hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        Ok(hex)
    } else {
        Err(bad())
    }
}

/// Distinguishes the temp files of one process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl Blobs {
    pub fn new(dir: PathBuf, tmp: PathBuf) -> Blobs {
        Blobs { dir, tmp }
    }

    pub fn writer(&self) -> Result<BlobWriter, CacheError> {
        let file = loop {
            let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
            let temp = self.tmp.join(format!(
                "{TEMP_PREFIX}{}-{n}{TEMP_SUFFIX}",
                std::process::id()
            ));
            match OpenOptions::new().write(true).create_new(true).open(&temp) {
                Ok(file) => break (file, temp),
                // Left by a crashed process that had our pid.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) if e.kind() == io::ErrorKind::NotFound && !self.tmp.is_dir() => {
                    fs::create_dir_all(&self.tmp)
                        .map_err(|e| io_error("creating temp directory", &self.tmp, e))?;
                }
                Err(e) => return Err(io_error("creating blob temp file", &temp, e)),
            }
        };
        let (file, temp) = file;
        Ok(BlobWriter {
            file: Some(BufWriter::with_capacity(WRITE_BUFFER, file)),
            temp,
            dir: self.dir.clone(),
            hasher: Sha256::new(),
            size: 0,
        })
    }

    pub fn put_bytes(&self, data: &[u8]) -> Result<BlobInfo, CacheError> {
        let mut writer = self.writer()?;
        writer
            .write_all(data)
            .map_err(|e| io_error("writing blob temp file", &writer.temp, e))?;
        writer.commit()
    }

    /// The path of a blob (whether or not it exists); rejects malformed digests.
    pub fn path(&self, digest: &str) -> Result<PathBuf, CacheError> {
        Ok(self.dir.join(hex_of(digest)?))
    }

    pub fn contains(&self, digest: &str) -> bool {
        self.path(digest).is_ok_and(|p| p.is_file())
    }

    pub fn open(&self, digest: &str) -> Result<File, CacheError> {
        let path = self.path(digest)?;
        File::open(&path).map_err(|e| self.read_error(digest, &path, e))
    }

    pub fn read(&self, digest: &str) -> Result<Vec<u8>, CacheError> {
        let path = self.path(digest)?;
        fs::read(&path).map_err(|e| self.read_error(digest, &path, e))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether `name` (a file name in `tmp/`) is the temp file of a blob being written, or
    /// left by a crash; for a future gc, which must also check that it is old.
    pub fn is_temp_name(name: &str) -> bool {
        name.starts_with(TEMP_PREFIX) && name.ends_with(TEMP_SUFFIX)
    }

    fn read_error(&self, digest: &str, path: &Path, e: io::Error) -> CacheError {
        if e.kind() == io::ErrorKind::NotFound {
            CacheError::MissingBlob {
                digest: digest.to_string(),
                root: self.root().to_path_buf(),
            }
        } else {
            io_error("reading blob", path, e)
        }
    }

    /// The store root: the blob directory is `<root>/blobs/sha256`.
    fn root(&self) -> &Path {
        self.dir
            .parent()
            .and_then(Path::parent)
            .filter(|_| self.dir.ends_with("blobs/sha256"))
            .unwrap_or(&self.dir)
    }
}
