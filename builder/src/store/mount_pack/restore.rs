//! A manifest and its chunks -> the mount directory, verified and confined, all or nothing.

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::manifest::{validate, Descriptor, MountManifest};
use super::pack::Hashing;
use super::MountPackError;
use crate::snapshot::{Privilege, TreeUnpacker, UnpackOptions};

/// How to restore.
#[derive(Debug, Clone)]
pub struct RestoreOptions {
    /// Keep the owners recorded in the chunks (root, or rootless mode for ids in its ranges);
    /// when false, everything belongs to the caller.
    pub same_owner: bool,
    pub privilege: Privilege,
    /// Most bytes of tar (all chunks, uncompressed) to restore: a manifest declaring more is
    /// refused before anything is fetched.
    pub max_tar_bytes: u64,
}

impl Default for RestoreOptions {
    fn default() -> RestoreOptions {
        let privilege = Privilege::of_this_process();
        RestoreOptions {
            // SAFETY: geteuid has no preconditions and cannot fail.
            same_owner: unsafe { libc::geteuid() } == 0,
            privilege,
            max_tar_bytes: 256 << 30,
        }
    }
}

/// What `unpack` restored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RestoreStats {
    pub chunks: u64,
    pub entries: u64,
    /// Bytes of chunk blobs read.
    pub blob_bytes: u64,
}

/// Restores the mount that `manifest` describes into `dest_dir`, which must not exist or be
/// an empty directory (a non-empty one is [`MountPackError::NotEmpty`]: the local cache is
/// kept). `fetch` opens a chunk blob by its descriptor (a registry GET, a file in an OCI
/// layout); it is called once per chunk, in manifest order.
///
/// The manifest is checked again (`parse_manifest`'s rules) and every chunk is verified while
/// it is read: no more than its declared size, its digest, and its tar's digest and size.
/// Names are confined beneath the destination as layers' are, and device nodes are refused.
/// The tree is built in a temporary sibling (`DEST.restore-PID-N`) and renamed onto
/// `dest_dir` at the end; on any error the sibling is removed and `dest_dir` is as it was.
pub fn unpack<F, R>(
    manifest: &MountManifest,
    mut fetch: F,
    dest_dir: &Path,
    opts: &RestoreOptions,
) -> Result<RestoreStats, MountPackError>
where
    F: FnMut(&Descriptor) -> io::Result<R>,
    R: Read + Send,
{
    validate(manifest)?;
    let declared: u64 = manifest.chunks.iter().map(|c| c.tar_size).sum();
    if declared > opts.max_tar_bytes {
        return Err(MountPackError::Manifest(format!(
            "{declared} bytes of chunks, over the restore limit of {} bytes",
            opts.max_tar_bytes
        )));
    }
    check_empty(dest_dir)?;
    let restore_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| MountPackError::Restore { path, source }
    };
    let tmp = temp_sibling(dest_dir)?;
    let mut guard = RemoveOnDrop(Some(tmp.clone()));
    let root = manifest.root;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o700)).map_err(restore_err(&tmp))?;

    let unpack_opts = UnpackOptions {
        overlay_whiteouts: false,
        same_owner: opts.same_owner,
        privilege: opts.privilege,
    };
    let mut unpacker = TreeUnpacker::new(&tmp, &unpack_opts)
        .map_err(|source| MountPackError::Unpack {
            digest: String::new(),
            source,
        })?
        .plain_tree();
    let mut stats = RestoreStats::default();
    for chunk in &manifest.chunks {
        stats.entries += restore_chunk(&mut unpacker, chunk, &mut fetch)?;
        stats.chunks += 1;
        stats.blob_bytes += chunk.size;
    }
    unpacker.finish().map_err(|source| MountPackError::Unpack {
        digest: "(directories)".into(),
        source,
    })?;
    if opts.same_owner {
        std::os::unix::fs::chown(&tmp, Some(root.uid), Some(root.gid))
            .map_err(restore_err(&tmp))?;
    }
    fs::set_permissions(&tmp, fs::Permissions::from_mode(root.mode)).map_err(restore_err(&tmp))?;
    // rename(2) replaces an empty directory; one that gained entries since is not replaced.
    fs::rename(&tmp, dest_dir).map_err(|e| {
        if matches!(e.raw_os_error(), Some(libc::ENOTEMPTY) | Some(libc::EEXIST)) {
            MountPackError::NotEmpty {
                dest: dest_dir.to_path_buf(),
            }
        } else {
            MountPackError::Restore {
                path: dest_dir.to_path_buf(),
                source: e,
            }
        }
    })?;
    guard.0 = None; // Renamed: nothing to remove.
    Ok(stats)
}

/// Unpacks one chunk; returns its entries. Errors name the chunk's digest.
fn restore_chunk<F, R>(
    unpacker: &mut TreeUnpacker<'_>,
    chunk: &Descriptor,
    fetch: &mut F,
) -> Result<u64, MountPackError>
where
    F: FnMut(&Descriptor) -> io::Result<R>,
    R: Read + Send,
{
    let refuse = |reason: String| MountPackError::Chunk {
        digest: chunk.digest.clone(),
        reason,
    };
    let blob = fetch(chunk).map_err(|source| MountPackError::Fetch {
        digest: chunk.digest.clone(),
        source,
    })?;
    // One byte past the declared size is read, to tell "longer than declared" from "exact".
    let mut blob = Hashing::new(blob.take(chunk.size + 1));
    let outcome = {
        let decoder = codec::decompressor(&chunk.media_type, &mut blob)
            .map_err(|e| refuse(format!("opening it: {e}")))?;
        let mut tar = Hashing::new(decoder.take(chunk.tar_size + 1));
        let result = unpacker.unpack_tar(&mut tar);
        // The rest of the tar (the trailer's second block, padding) is hashed too.
        let drained = io::copy(&mut tar, &mut io::sink());
        (result, drained, tar.digest(), tar.count)
    };
    let drained_blob = io::copy(&mut blob, &mut io::sink());
    let (result, drained, diff_id, tar_size) = outcome;
    // A blob that is not what the descriptor says is reported as that, whatever the tar did.
    if let Err(e) = drained_blob {
        return Err(MountPackError::Fetch {
            digest: chunk.digest.clone(),
            source: e,
        });
    }
    if blob.count != chunk.size {
        let got = if blob.count > chunk.size {
            format!("more than {}", chunk.size)
        } else {
            blob.count.to_string()
        };
        return Err(refuse(format!(
            "{got} bytes where the manifest says {}",
            chunk.size
        )));
    }
    if blob.digest() != chunk.digest {
        return Err(refuse(format!("its content has digest {}", blob.digest())));
    }
    let entries = result.map_err(|source| MountPackError::Unpack {
        digest: chunk.digest.clone(),
        source,
    })?;
    drained.map_err(|e| refuse(format!("decompressing it: {e}")))?;
    if tar_size != chunk.tar_size || diff_id != chunk.diff_id {
        return Err(refuse(format!(
            "its tar is {tar_size} bytes with digest {diff_id}, the manifest says {} bytes with \
             {}",
            chunk.tar_size, chunk.diff_id
        )));
    }
    if entries != chunk.entries {
        return Err(refuse(format!(
            "{entries} entries, the manifest says {}",
            chunk.entries
        )));
    }
    Ok(entries)
}

fn check_empty(dest: &Path) -> Result<(), MountPackError> {
    match fs::read_dir(dest) {
        Ok(mut d) => {
            if d.next().is_some() {
                return Err(MountPackError::NotEmpty {
                    dest: dest.to_path_buf(),
                });
            }
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(MountPackError::Restore {
            path: dest.to_path_buf(),
            source,
        }),
    }
}

/// Creates `DEST.restore-PID-N` beside `dest` (its parent must exist).
fn temp_sibling(dest: &Path) -> Result<PathBuf, MountPackError> {
    let name = dest
        .file_name()
        .ok_or_else(|| MountPackError::Restore {
            path: dest.to_path_buf(),
            source: io::Error::new(io::ErrorKind::InvalidInput, "no file name"),
        })?
        .to_string_lossy()
        .into_owned();
    let parent = dest.parent().unwrap_or(Path::new("."));
    for n in 0u32.. {
        let tmp = parent.join(format!("{name}.restore-{}-{n}", std::process::id()));
        match fs::create_dir(&tmp) {
            Ok(()) => return Ok(tmp),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && n < 1000 => continue,
            Err(source) => return Err(MountPackError::Restore { path: tmp, source }),
        }
    }
    unreachable!("the loop returns")
}

struct RemoveOnDrop(Option<PathBuf>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            // Owner-only directories are fine for root; make them removable otherwise.
            let _ = make_removable(&p);
            let _ = fs::remove_dir_all(&p);
        }
    }
}

fn make_removable(dir: &Path) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            let path = entry.path();
            fs::set_permissions(&path, fs::Permissions::from_mode(0o700))?;
            make_removable(&path)?;
        }
    }
    Ok(())
}
