//! Content hashes of the local files a step reads (COPY sources, RUN bind mounts from the main
//! context or a `--build-context NAME=DIR`): the part of a cache key that changes when the user
//! edits a file. Files are the directory's after its `.dockerignore`; the selection uses the step's paths with the same matching
//! rules (a path selects itself and everything below it; wildcards allowed).
//!
//! Content hashes are memoized in the index by (path, size, mtime, ctime, inode, device), so a
//! no-change rebuild stats files but reads none. A file changed in the last two seconds is not
//! memoized (git's "racy" rule: a write in the same clock tick could keep its times).

use super::history::{ContextFiles, MAX_FILES};
use crate::frontend::dockerignore::{walk_context, Matcher};
use cache::Root;
use std::collections::HashMap;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

type Walked = Arc<OnceLock<Result<Vec<String>, String>>>;

/// Each local directory's file list (after its `.dockerignore`), walked once per build: every
/// step that reads a directory selects from the same list.
#[derive(Default)]
pub(super) struct ContextWalk(Mutex<HashMap<PathBuf, Walked>>);

impl ContextWalk {
    fn files(&self, context: &Path, ignore: Option<&Matcher>) -> Result<Walked, String> {
        let walked = self
            .0
            .lock()
            .map_err(|_| "context walk lock poisoned".to_string())?
            .entry(context.to_path_buf())
            .or_default()
            .clone();
        // Walked outside the lock: steps reading other directories need not wait.
        walked.get_or_init(|| {
            let none = Matcher::new(&[]).expect("empty matcher");
            walk_context(context, ignore.unwrap_or(&none))
                .map_err(|e| format!("reading the build context {}: {e}", context.display()))
        });
        Ok(walked)
    }
}

/// blake3 over (relative path, type, mode, content or link target) of each selected file, in
/// sorted order, with a short hash of each entry (for cache-miss reports; dropped above
/// `history::MAX_FILES` entries). `remember`: write the content memo (false for dry runs).
pub(super) fn hash_paths(
    root: &Root,
    context: &Path,
    paths: &[String],
    ignore: Option<&Matcher>,
    walk: &ContextWalk,
    remember: bool,
) -> Result<ContextFiles, String> {
    let select_all = paths
        .iter()
        .any(|p| p.trim_start_matches('/').is_empty() || p == "/.");
    let patterns: Vec<String> = paths
        .iter()
        .map(|p| p.trim_start_matches('/').to_string())
        .filter(|p| !p.is_empty())
        .collect();
    let selection = Matcher::new(&patterns).map_err(|e| format!("selecting context files: {e}"))?;
    let walked = walk.files(context, ignore)?;
    let files = walked
        .get()
        .expect("walked")
        .as_ref()
        .map_err(Clone::clone)?;
    // Stat every selected file first, then read all their memos in one read transaction.
    let mut selected = Vec::new();
    for rel in files {
        if !select_all && !selection.is_excluded(rel) {
            continue;
        }
        let path = context.join(rel);
        let meta = std::fs::symlink_metadata(&path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        selected.push((rel.clone(), path, meta));
    }
    let memo_keys: Vec<String> = selected
        .iter()
        .filter(|(_, _, m)| m.file_type().is_file())
        .map(|(_, path, _)| memo_key(path))
        .collect();
    // An unreadable memo only means hashing the files again.
    let mut memos = root
        .index
        .get_cache_many(&memo_keys)
        .unwrap_or_else(|_| vec![None; memo_keys.len()])
        .into_iter()
        .zip(memo_keys);
    let mut h = blake3::Hasher::new();
    let mut memo_updates = Vec::new();
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0);
    let mut entries = Vec::new();
    let mut entry = Vec::with_capacity(256);
    for (rel, path, meta) in selected {
        entry.clear();
        entry.extend_from_slice(rel.as_bytes());
        entry.push(0);
        entry.extend_from_slice(&meta.permissions().mode().to_le_bytes());
        entry.extend_from_slice(&meta.uid().to_le_bytes());
        entry.extend_from_slice(&meta.gid().to_le_bytes());
        let ft = meta.file_type();
        if ft.is_symlink() {
            let target = std::fs::read_link(&path)
                .map_err(|e| format!("reading {}: {e}", path.display()))?;
            entry.push(b'L');
            entry.extend_from_slice(target.as_os_str().as_encoded_bytes());
        } else if ft.is_file() {
            let (memo, key) = memos.next().expect("one memo per regular file");
            entry.push(b'F');
            entry.extend_from_slice(&meta.len().to_le_bytes());
            entry.extend_from_slice(
                file_hash(&path, &meta, key, memo, now_ns, &mut memo_updates)?.as_bytes(),
            );
        } else if ft.is_dir() {
            entry.push(b'D');
        } else {
            entry.push(b'O');
        }
        entry.push(0);
        h.update(&entry);
        if entries.len() <= MAX_FILES {
            let short = blake3::hash(&entry).to_hex();
            entries.push((rel, short[..16].to_string()));
        }
    }
    if entries.len() > MAX_FILES {
        entries.clear();
    }
    if remember {
        root.index
            .put_cache_many(&memo_updates)
            .map_err(|e| format!("remembering context file hashes: {e}"))?;
    }
    Ok(ContextFiles {
        digest: format!("blake3:{}", h.finalize().to_hex()),
        files: entries,
    })
}

/// The memo's view of a file: what must be unchanged for its remembered hash to stand.
fn stamp(meta: &std::fs::Metadata) -> String {
    format!(
        "{}:{}.{}:{}.{}:{}:{}",
        meta.len(),
        meta.mtime(),
        meta.mtime_nsec(),
        meta.ctime(),
        meta.ctime_nsec(),
        meta.ino(),
        meta.dev()
    )
}

/// The memo's index key of a context file.
fn memo_key(path: &Path) -> String {
    format!("context-file/{}", path.display())
}

/// A file's content hash, from its memo (`memo`, read under `key`) when its stamp is
/// unchanged, else read and hashed.
fn file_hash(
    path: &Path,
    meta: &std::fs::Metadata,
    key: String,
    memo: Option<Vec<u8>>,
    now_ns: i128,
    updates: &mut Vec<(String, Vec<u8>)>,
) -> Result<String, String> {
    let stamp = stamp(meta);
    if let Some(v) = memo {
        if let Some((s, hash)) = std::str::from_utf8(&v)
            .ok()
            .and_then(|t| t.rsplit_once(' '))
        {
            if s == stamp {
                return Ok(hash.to_string());
            }
        }
    }
    let mut f =
        std::fs::File::open(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    let hash = hasher.finalize().to_hex().to_string();
    let newest_ns = (meta.mtime().max(meta.ctime()) as i128) * 1_000_000_000;
    if now_ns - newest_ns > 2_000_000_000 {
        updates.push((key, format!("{stamp} {hash}").into_bytes()));
    }
    Ok(hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn old(path: &Path) {
        let t = filetime::FileTime::from_unix_time(1_600_000_000, 0);
        filetime::set_file_mtime(path, t).unwrap();
    }

    #[test]
    fn memo_is_used_and_cannot_hide_a_change() {
        let tmp = tempfile::tempdir().unwrap();
        let root = Root::open(&tmp.path().join("root")).unwrap();
        let ctx = tmp.path().join("ctx");
        std::fs::create_dir_all(&ctx).unwrap();
        let f = ctx.join("req.txt");
        std::fs::write(&f, b"numpy\n").unwrap();
        old(&f);
        // ctime is "now": not memoized yet (racy); wait out the window.
        std::thread::sleep(std::time::Duration::from_millis(2100));
        let paths = vec!["/req.txt".to_string()];
        let first = hash_paths(&root, &ctx, &paths, None, &ContextWalk::default(), true)
            .unwrap()
            .digest;
        let key = format!("context-file/{}", f.display());
        let memo =
            String::from_utf8(root.index.get_cache(&key).unwrap().expect("memoized")).unwrap();
        // The memo is consulted: forge its hash and the result follows it.
        let (stamp, _) = memo.rsplit_once(' ').unwrap();
        root.index
            .put_cache(&key, format!("{stamp} forged").as_bytes())
            .unwrap();
        assert_ne!(
            hash_paths(&root, &ctx, &paths, None, &ContextWalk::default(), true)
                .unwrap()
                .digest,
            first
        );
        // Same size, same mtime, other bytes: ctime changed, so the file is read again.
        std::fs::write(&f, b"torch\n").unwrap();
        old(&f);
        let changed = hash_paths(&root, &ctx, &paths, None, &ContextWalk::default(), true)
            .unwrap()
            .digest;
        std::fs::write(&f, b"numpy\n").unwrap();
        old(&f);
        assert_ne!(changed, first);
        assert_eq!(
            hash_paths(&root, &ctx, &paths, None, &ContextWalk::default(), true)
                .unwrap()
                .digest,
            first
        );
    }
}
