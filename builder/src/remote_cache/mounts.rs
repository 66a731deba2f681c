//! `mounts=true`: the contents of the build's cache mounts in the cache, as
//! `store::mount_pack` chunks (see its module doc for the format and the protocol).
//!
//! Export ([`export_mounts`]): each mount the build ran is packed against the manifest the
//! imported cache had for the same key, so an unchanged chunk is neither compressed nor
//! uploaded again; each chunk and the mount's manifest go through [`CacheStore::put_file`]
//! (HEAD first); the entries land in the cache config's `mounts`. Restore is the importer's
//! (`import.rs`, [`restore`]): into an empty local mount dir only, all or nothing, a failure
//! one warning and an empty mount.
//!
//! A mount's key is its id (as BuildKit keys cache mounts by id; the sharing mode is how
//! steps share it on one machine, not part of its contents).

use super::blobs::{BlobError, CacheStore, Sent};
use super::format::MountEntry;
use crate::store::mount_pack::{
    self, pack, parse_manifest, unpack, MountManifest, PackOptions, RestoreOptions,
    MANIFEST_MEDIA_TYPE, MAX_MANIFEST_BYTES,
};
use registry::manifest::Descriptor;
use std::path::{Path, PathBuf};

/// A cache mount a build ran (recorded by the solver when a RUN mounted it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsedMount {
    pub id: String,
    pub sharing: String,
    /// Its local directory (under the store's `cache-mounts/`).
    pub dir: PathBuf,
}

/// What the export of one mount moved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MountReport {
    pub key: String,
    pub chunks: usize,
    pub chunks_uploaded: usize,
    pub bytes_uploaded: u64,
    pub chunks_skipped: usize,
    pub bytes_skipped: u64,
    pub files: u64,
    pub content_bytes: u64,
    /// Not run by this build: the imported cache's entry, kept.
    pub carried: bool,
}

impl MountReport {
    pub fn line(&self) -> String {
        if self.carried {
            return format!(
                "cache mount {}: not used by this build, kept from the imported cache ({} \
                 chunks, {} bytes already there)",
                self.key, self.chunks, self.bytes_skipped
            );
        }
        format!(
            "cache mount {}: {} files, {} bytes in {} chunks: {} chunks ({} bytes) uploaded, \
             {} chunks ({} bytes) already there",
            self.key,
            self.files,
            self.content_bytes,
            self.chunks,
            self.chunks_uploaded,
            self.bytes_uploaded,
            self.chunks_skipped,
            self.bytes_skipped
        )
    }
}

/// What [`export_mounts`] gives: the cache config's entries, what moved per mount, and why
/// a mount was left out (the others and the layers are still exported).
#[derive(Default)]
pub(super) struct ExportedMounts {
    pub entries: Vec<MountEntry>,
    pub reports: Vec<MountReport>,
    pub warnings: Vec<String>,
}

/// The registry descriptor of a mount chunk or manifest.
pub(super) fn registry_descriptor(
    media_type: &str,
    digest: &str,
    size: u64,
) -> Result<Descriptor, String> {
    Ok(Descriptor {
        media_type: media_type.to_string(),
        digest: registry::Digest::parse(digest).map_err(|e| format!("digest {digest}: {e}"))?,
        size,
        platform: None,
        annotations: None,
    })
}

/// Packs and sends each of `mounts`. `previous(key)`: the manifest of that key in the cache
/// being replaced. `carried`: entries of the imported cache for mounts the build did not run,
/// kept when `store` holds all their blobs (a cached build does not drop the mounts of the
/// cache it replaces). Returns the config entries, what moved per mount, and a warning per
/// mount that could not be packed; a failed upload is an error (as a layer's is).
pub(super) fn export_mounts(
    store: &CacheStore,
    mounts: &[UsedMount],
    previous: &dyn Fn(&str) -> Option<MountManifest>,
    carried: &[MountEntry],
    compression: codec::Compression,
    work_root: &Path,
) -> Result<ExportedMounts, BlobError> {
    let mut entries = Vec::new();
    let mut reports = Vec::new();
    let mut warnings = Vec::new();
    for e in carried {
        let mut all_there = true;
        for d in e.chunks.iter().chain(std::iter::once(&e.manifest)) {
            if !store.has_blob(d)? {
                all_there = false;
                break;
            }
        }
        if !all_there {
            warnings.push(format!(
                "cache mount {} (not used by this build) not carried over: the target lacks \
                 some of its blobs",
                e.key
            ));
            continue;
        }
        reports.push(MountReport {
            key: e.key.clone(),
            chunks: e.chunks.len(),
            chunks_skipped: e.chunks.len(),
            bytes_skipped: e.chunks.iter().map(|d| d.size).sum(),
            carried: true,
            ..MountReport::default()
        });
        entries.push(e.clone());
    }
    for m in mounts {
        if !m.dir.is_dir() {
            continue;
        }
        std::fs::create_dir_all(work_root).map_err(|source| BlobError::Io {
            what: format!("creating {}", work_root.display()),
            source,
        })?;
        let work = tempfile::Builder::new()
            .prefix("mount-pack-")
            .tempdir_in(work_root)
            .map_err(|source| BlobError::Io {
                what: format!("creating a work dir in {}", work_root.display()),
                source,
            })?;
        let opts = PackOptions {
            compression,
            ..PackOptions::default()
        };
        let prev = previous(&m.id);
        let mut packed = match pack(&m.dir, &work.path().join("a"), prev.as_ref(), &opts) {
            Ok(p) => p,
            Err(e) => {
                warnings.push(format!("cache mount {} not exported: {e}", m.id));
                continue;
            }
        };
        // Reused chunks are the previous cache's: the target may not hold them (another
        // ref, a garbage collection). Then pack again from nothing, so every chunk is here.
        let mut reused_missing = false;
        for d in &packed.reused {
            let rd = registry_descriptor(&d.media_type, &d.digest, d.size)
                .map_err(BlobError::Invalid)?;
            if !store.has_blob(&rd)? {
                reused_missing = true;
                break;
            }
        }
        if reused_missing {
            packed = match pack(&m.dir, &work.path().join("b"), None, &opts) {
                Ok(p) => p,
                Err(e) => {
                    warnings.push(format!("cache mount {} not exported: {e}", m.id));
                    continue;
                }
            };
        }
        let mut report = MountReport {
            key: m.id.clone(),
            chunks: packed.manifest.chunks.len(),
            files: packed.manifest.entries,
            content_bytes: packed.manifest.content_size,
            ..MountReport::default()
        };
        for d in &packed.reused {
            report.chunks_skipped += 1;
            report.bytes_skipped += d.size;
        }
        for b in &packed.blobs {
            let d = &b.descriptor;
            let rd = registry_descriptor(&d.media_type, &d.digest, d.size)
                .map_err(BlobError::Invalid)?;
            match store.put_file(&rd, &b.path, &[])? {
                Sent::Uploaded => {
                    report.chunks_uploaded += 1;
                    report.bytes_uploaded += d.size;
                }
                Sent::Present | Sent::Mounted => {
                    report.chunks_skipped += 1;
                    report.bytes_skipped += d.size;
                }
            }
        }
        let manifest_path = work.path().join("manifest.json");
        std::fs::write(&manifest_path, &packed.manifest_json).map_err(|source| BlobError::Io {
            what: format!("writing {}", manifest_path.display()),
            source,
        })?;
        let manifest = registry_descriptor(
            MANIFEST_MEDIA_TYPE,
            &packed.manifest_digest,
            packed.manifest_json.len() as u64,
        )
        .map_err(BlobError::Invalid)?;
        store.put_file(&manifest, &manifest_path, &[])?;
        let chunks = packed
            .manifest
            .chunks
            .iter()
            .map(|d| registry_descriptor(&d.media_type, &d.digest, d.size))
            .collect::<Result<Vec<_>, _>>()
            .map_err(BlobError::Invalid)?;
        entries.push(MountEntry {
            key: m.id.clone(),
            chunks,
            manifest,
        });
        reports.push(report);
    }
    Ok(ExportedMounts {
        entries,
        reports,
        warnings,
    })
}

/// The mount manifest an entry names, fetched and checked.
pub(super) fn fetch_manifest(
    store: &CacheStore,
    entry: &MountEntry,
) -> Result<MountManifest, String> {
    if entry.manifest.media_type != MANIFEST_MEDIA_TYPE {
        return Err(format!(
            "its manifest is {}, not {MANIFEST_MEDIA_TYPE}",
            entry.manifest.media_type
        ));
    }
    let bytes = store
        .fetch_bytes(&entry.manifest, MAX_MANIFEST_BYTES as u64)
        .map_err(|e| format!("reading its manifest: {e}"))?;
    parse_manifest(&bytes).map_err(|e| e.to_string())
}

/// Chunks fetched ahead of the one being unpacked.
const PREFETCH: usize = 2;

/// What a restore did: files and bytes of the mount, chunk bytes fetched.
pub(super) struct Restored {
    pub files: u64,
    pub bytes: u64,
    pub fetched: u64,
}

/// Restores `entry` into `dest` (absent or empty): chunks fetched in order into a temp dir
/// beside `dest` (a few ahead of the unpack), each verified again while it is unpacked;
/// nothing is left on failure.
pub(super) fn restore(
    store: &CacheStore,
    entry: &MountEntry,
    dest: &Path,
) -> Result<Restored, String> {
    let manifest = fetch_manifest(store, entry)?;
    let parent = dest.parent().unwrap_or(Path::new("."));
    let tmp = tempfile::Builder::new()
        .prefix(".mount-fetch-")
        .tempdir_in(parent)
        .map_err(|e| format!("creating a temp dir in {}: {e}", parent.display()))?;
    let fetch_one = |d: &mount_pack::Descriptor| -> std::io::Result<std::fs::File> {
        let rd =
            registry_descriptor(&d.media_type, &d.digest, d.size).map_err(std::io::Error::other)?;
        let path = tmp.path().join(d.digest.replace(':', "-"));
        store
            .fetch_to_path(&rd, &path)
            .map_err(std::io::Error::other)?;
        let file = std::fs::File::open(&path)?;
        // Unlinked while open: the bytes go away as soon as the chunk is read.
        std::fs::remove_file(&path)?;
        Ok(file)
    };
    // `unpack` asks for the chunks in manifest order: a thread fetches them in that order, up
    // to PREFETCH ahead, so the next chunk downloads while one is verified and unpacked.
    let stats = std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel(PREFETCH);
        let chunks = &manifest.chunks;
        scope.spawn(move || {
            for d in chunks {
                // A closed channel: the restore stopped (a bad chunk); fetch no more.
                if tx.send((d.digest.clone(), fetch_one(d))).is_err() {
                    return;
                }
            }
        });
        let fetch = move |d: &mount_pack::Descriptor| -> std::io::Result<std::fs::File> {
            match rx.recv() {
                Ok((digest, file)) if digest == d.digest => file,
                Ok((digest, _)) => Err(std::io::Error::other(format!(
                    "chunk {digest} fetched where {} was asked for",
                    d.digest
                ))),
                Err(_) => Err(std::io::Error::other("the chunk fetcher stopped")),
            }
        };
        // `fetch` owns the receiver: it is dropped when unpack returns, which stops the thread.
        unpack(&manifest, fetch, dest, &RestoreOptions::default())
    })
    .map_err(|e| e.to_string())?;
    Ok(Restored {
        files: manifest.entries,
        bytes: manifest.content_size,
        fetched: stats.blob_bytes,
    })
}
