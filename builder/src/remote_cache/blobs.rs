//! Where a cache's blobs and manifest live, as one small interface over a registry repository
//! and an OCI layout directory: does it have a blob, upload a file-backed blob by descriptor,
//! fetch a descriptor to a path or into memory (size-capped, digest-checked), read and write
//! the manifest. Generic on purpose: cache-mount chunks (`mounts=true`) travel through the
//! same functions.
//!
//! A layout directory is written as a registry is: blobs first (each written under a temp name
//! and renamed to its digest), `index.json` last (written aside and renamed over the old one),
//! so a reader sees the old cache or the new, never half of one.

use super::format::MANIFEST_LIMIT;
use crate::store::layout_blob_path;
use registry::manifest::Descriptor;
use registry::push::{push_blob, BlobOutcome, PushBlob};
use registry::{Client, Reference, RegistryError};
use sha2::Digest as _;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// A cache's home.
pub enum CacheStore<'a> {
    Registry {
        client: &'a Client,
        reference: Reference,
    },
    Layout {
        dir: PathBuf,
    },
}

/// Why a cache store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error(transparent)]
    Registry(#[from] Box<RegistryError>),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> BlobError {
    let what = what.into();
    move |source| BlobError::Io { what, source }
}

fn reg(e: RegistryError) -> BlobError {
    BlobError::Registry(Box::new(e))
}

/// How a blob got to the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// It was there (HEAD, or the file exists).
    Present,
    /// Mounted from another repository of the registry.
    Mounted,
    /// Uploaded or copied: its bytes moved.
    Uploaded,
}

impl CacheStore<'_> {
    /// Makes sure the cache has `descriptor`'s blob, reading it from `path` only if it must be
    /// uploaded; `mount_from`: repositories of the same registry that may hold it.
    pub fn put_file(
        &self,
        descriptor: &Descriptor,
        path: &Path,
        mount_from: &[String],
    ) -> Result<Sent, BlobError> {
        let opener = || -> io::Result<Box<dyn Read + Send>> {
            Ok(Box::new(io::BufReader::new(std::fs::File::open(path)?)))
        };
        self.put_with(descriptor, &opener, mount_from)
    }

    /// [`CacheStore::put_file`] with the bytes from `open` (called only for an upload; again
    /// on a retry).
    pub fn put_with(
        &self,
        descriptor: &Descriptor,
        open: &(dyn Fn() -> io::Result<Box<dyn Read + Send>> + Send + Sync),
        mount_from: &[String],
    ) -> Result<Sent, BlobError> {
        match self {
            CacheStore::Registry { client, reference } => {
                let blob = PushBlob {
                    descriptor: descriptor.clone(),
                    open: Box::new(open),
                    mount_from: mount_from.to_vec(),
                };
                let (outcome, _) = push_blob(client, reference, &blob, &|_| {}).map_err(reg)?;
                Ok(match outcome {
                    BlobOutcome::AlreadyThere => Sent::Present,
                    BlobOutcome::Mounted => Sent::Mounted,
                    BlobOutcome::Uploaded => Sent::Uploaded,
                })
            }
            CacheStore::Layout { dir } => {
                let dest = blob_path(dir, descriptor)?;
                if dest.is_file() {
                    return Ok(Sent::Present);
                }
                let mut input = open().map_err(io_err("reading a blob to export"))?;
                write_checked(&dest, descriptor, &mut input)?;
                Ok(Sent::Uploaded)
            }
        }
    }

    /// Whether a reader can fetch `descriptor`'s blob (HEAD with pull rights; in a layout, the
    /// file with the right size).
    pub fn has_blob(&self, descriptor: &Descriptor) -> Result<bool, BlobError> {
        match self {
            CacheStore::Registry { client, reference } => client
                .blob_readable(reference, descriptor.digest.as_str())
                .map_err(reg),
            CacheStore::Layout { dir } => Ok(std::fs::metadata(blob_path(dir, descriptor)?)
                .is_ok_and(|m| m.is_file() && m.len() == descriptor.size)),
        }
    }

    /// Fetches `descriptor`'s blob to `dest` (digest and size checked; written aside and
    /// renamed, so `dest` is whole or absent).
    pub fn fetch_to_path(&self, descriptor: &Descriptor, dest: &Path) -> Result<(), BlobError> {
        let dir = dest.parent().unwrap_or(Path::new("."));
        let mut tmp = tempfile::NamedTempFile::new_in(dir)
            .map_err(io_err(format!("creating a temp file in {}", dir.display())))?;
        self.fetch_into(descriptor, tmp.as_file_mut())?;
        tmp.persist(dest)
            .map_err(|e| io_err(format!("writing {}", dest.display()))(e.error))?;
        Ok(())
    }

    /// A small blob (a config), at most `limit` bytes, digest checked.
    pub fn fetch_bytes(&self, descriptor: &Descriptor, limit: u64) -> Result<Vec<u8>, BlobError> {
        if descriptor.size > limit {
            return Err(BlobError::Invalid(format!(
                "blob {} is {} bytes, more than the limit of {limit}",
                descriptor.digest, descriptor.size
            )));
        }
        let mut out = Vec::with_capacity(descriptor.size as usize);
        self.fetch_into(descriptor, &mut out)?;
        Ok(out)
    }

    fn fetch_into(&self, descriptor: &Descriptor, sink: &mut dyn Write) -> Result<(), BlobError> {
        match self {
            CacheStore::Registry { client, reference } => client
                .fetch_blob(reference, descriptor, sink, &|_| {})
                .map_err(reg),
            CacheStore::Layout { dir } => {
                let path = blob_path(dir, descriptor)?;
                let file = std::fs::File::open(&path)
                    .map_err(io_err(format!("reading {}", path.display())))?;
                let mut hashing = Hashing::new(sink);
                let n = io::copy(&mut file.take(descriptor.size + 1), &mut hashing)
                    .map_err(io_err(format!("reading {}", path.display())))?;
                let digest = hashing.digest();
                if n != descriptor.size || digest != descriptor.digest.as_str() {
                    return Err(BlobError::Invalid(format!(
                        "{} does not match its digest ({digest}, {n} bytes)",
                        path.display()
                    )));
                }
                Ok(())
            }
        }
    }

    /// The cache's manifest (bytes), None when there is none.
    pub fn get_manifest(&self) -> Result<Option<Vec<u8>>, BlobError> {
        match self {
            CacheStore::Registry { client, reference } => match client.get_manifest(reference) {
                Ok(m) => Ok(Some(m.bytes)),
                Err(e) if e.status() == Some(404) => Ok(None),
                Err(e) => Err(reg(e)),
            },
            CacheStore::Layout { dir } => {
                let path = dir.join("index.json");
                let bytes = match read_capped(&path, MANIFEST_LIMIT) {
                    Ok(b) => b,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                    Err(e) => return Err(io_err(format!("reading {}", path.display()))(e)),
                };
                #[derive(serde::Deserialize)]
                struct Index {
                    manifests: Vec<Descriptor>,
                }
                let index: Index = serde_json::from_slice(&bytes).map_err(|e| {
                    BlobError::Invalid(format!("{} is not an OCI index: {e}", path.display()))
                })?;
                let Some(d) = index.manifests.first() else {
                    return Ok(None);
                };
                self.fetch_bytes(d, MANIFEST_LIMIT).map(Some)
            }
        }
    }

    /// The manifest `descriptor` names (an image of an index the cache's ref points at).
    pub fn get_manifest_at(&self, descriptor: &Descriptor) -> Result<Vec<u8>, BlobError> {
        match self {
            CacheStore::Registry { client, reference } => {
                let at = Reference::parse(&format!("{}@{}", reference.name(), descriptor.digest))
                    .map_err(|e| {
                    BlobError::Invalid(format!("manifest {}: {e}", descriptor.digest))
                })?;
                let m = client.get_manifest(&at).map_err(reg)?;
                if m.bytes.len() as u64 > MANIFEST_LIMIT {
                    return Err(BlobError::Invalid(format!(
                        "manifest {} is larger than {MANIFEST_LIMIT} bytes",
                        descriptor.digest
                    )));
                }
                Ok(m.bytes)
            }
            CacheStore::Layout { .. } => self.fetch_bytes(descriptor, MANIFEST_LIMIT),
        }
    }

    /// Makes `bytes` the cache's manifest (after every blob it names is there).
    pub fn put_manifest(&self, media_type: &str, bytes: &[u8]) -> Result<String, BlobError> {
        let digest = format!("sha256:{:x}", sha2::Sha256::digest(bytes));
        match self {
            CacheStore::Registry { client, reference } => client
                .put_manifest(reference, media_type, bytes)
                .map_err(reg),
            CacheStore::Layout { dir } => {
                let d = Descriptor {
                    media_type: media_type.to_string(),
                    digest: registry::Digest::parse(&digest).expect("a sha256 digest"),
                    size: bytes.len() as u64,
                    platform: None,
                    annotations: None,
                };
                let dest = blob_path(dir, &d)?;
                if !dest.is_file() {
                    write_checked(&dest, &d, &mut &bytes[..])?;
                }
                let index = serde_json::json!({
                    "schemaVersion": 2,
                    "mediaType": "application/vnd.oci.image.index.v1+json",
                    "manifests": [d],
                });
                write_aside(
                    &dir.join("oci-layout"),
                    br#"{"imageLayoutVersion":"1.0.0"}"#,
                )?;
                write_aside(
                    &dir.join("index.json"),
                    &serde_json::to_vec(&index).expect("index serializes"),
                )?;
                Ok(digest)
            }
        }
    }
}

fn blob_path(dir: &Path, d: &Descriptor) -> Result<PathBuf, BlobError> {
    layout_blob_path(dir, d.digest.as_str()).map_err(|e| BlobError::Invalid(e.to_string()))
}

fn read_capped(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    std::fs::File::open(path)?
        .take(limit + 1)
        .read_to_end(&mut out)?;
    if out.len() as u64 > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than {limit} bytes"),
        ));
    }
    Ok(out)
}

/// Writes `input` to `dest` through a temp file beside it, checking the digest first.
fn write_checked(dest: &Path, d: &Descriptor, input: &mut dyn Read) -> Result<(), BlobError> {
    let dir = dest.parent().expect("a blob path has a parent");
    std::fs::create_dir_all(dir).map_err(io_err(format!("creating {}", dir.display())))?;
    let tmp = tempfile::NamedTempFile::new_in(dir)
        .map_err(io_err(format!("creating a temp file in {}", dir.display())))?;
    let mut hashing = Hashing::new(io::BufWriter::new(tmp.as_file()));
    io::copy(input, &mut hashing).map_err(io_err(format!("writing {}", dest.display())))?;
    let digest = hashing.digest();
    hashing
        .inner
        .flush()
        .map_err(io_err(format!("writing {}", dest.display())))?;
    drop(hashing);
    if digest != d.digest.as_str() {
        return Err(BlobError::Invalid(format!(
            "blob {} read as {digest} while exporting it",
            d.digest
        )));
    }
    tmp.persist(dest)
        .map_err(|e| io_err(format!("writing {}", dest.display()))(e.error))?;
    Ok(())
}

/// Replaces `dest` atomically (a temp file beside it, renamed).
fn write_aside(dest: &Path, bytes: &[u8]) -> Result<(), BlobError> {
    let dir = dest.parent().expect("a path in the layout");
    std::fs::create_dir_all(dir).map_err(io_err(format!("creating {}", dir.display())))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .map_err(io_err(format!("creating a temp file in {}", dir.display())))?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(io_err(format!("writing {}", dest.display())))?;
    tmp.persist(dest)
        .map_err(|e| io_err(format!("writing {}", dest.display()))(e.error))?;
    Ok(())
}

/// A writer that takes the sha256 of what passes through.
struct Hashing<W> {
    inner: W,
    hasher: sha2::Sha256,
}

impl<W: Write> Hashing<W> {
    fn new(inner: W) -> Self {
        Hashing {
            inner,
            hasher: sha2::Sha256::new(),
        }
    }
    fn digest(&self) -> String {
        format!("sha256:{:x}", self.hasher.clone().finalize())
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
