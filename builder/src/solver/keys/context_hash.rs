//! Content hashes of the local files a step reads (COPY sources, RUN bind mounts from the main
//! context or a `--build-context NAME=DIR`): the part of a cache key that changes when the user
//! edits a file. Files are the directory's after its `.dockerignore`; the selection uses the step's paths with the same matching
//! rules (a path selects itself and everything below it; wildcards allowed).
//!
//! Each directory is walked (and every file stat-ed) once per build; content hashes come from
//! the directory's memo ([`super::context_memo`]) while a file's metadata is unchanged, so a
//! no-change rebuild stats files but reads none.

use super::context_memo::{self, Memo, Stamp};
use super::history::{ContextFiles, MAX_FILES};
use cache::{CacheError, Root};
use context::dockerignore::{IgnoreError, Matcher};
use context::walk::walk_context_stat;
use std::collections::HashMap;
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

/// Why the context files a step reads could not be hashed.
#[derive(Debug, thiserror::Error)]
pub enum ContextHashError {
    /// The directory could not be walked (or its `.dockerignore` applied).
    #[error("reading the build context {}: {source}", dir.display())]
    Walk {
        dir: PathBuf,
        #[source]
        source: IgnoreError,
    },
    #[error("reading {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The step's paths are not valid patterns.
    #[error("selecting context files: {0}")]
    Select(#[source] IgnoreError),
    /// The content hashes could not be remembered in the store's index.
    #[error("remembering the file hashes of {}: {source}", dir.display())]
    Memo {
        dir: PathBuf,
        #[source]
        source: CacheError,
    },
    #[error("context walk lock poisoned")]
    Poisoned,
    /// A walk or selection that failed for an earlier step of this build (each is worked
    /// out once per build, and every step that reads it sees its failure).
    #[error(transparent)]
    Shared(Arc<ContextHashError>),
}

type Walked = Arc<OnceLock<Result<WalkedDir, Arc<ContextHashError>>>>;

/// One local directory as this build sees it.
struct WalkedDir {
    /// Its files after its `.dockerignore`, sorted, each with its lstat from the walk.
    files: Vec<(String, std::fs::Metadata)>,
    /// Content hashes known in this build: the stored memo, then what steps hashed (kept even
    /// when too recent to store: every step of the build sees the same stat).
    hashes: Mutex<Memo>,
}

type Hashed = Arc<OnceLock<Result<ContextFiles, Arc<ContextHashError>>>>;

/// Each local directory's file list (after its `.dockerignore`), walked once per build: every
/// step that reads a directory selects from the same list. And each selection's hashes,
/// worked out once per build (by the background warm-up or by the step, whichever asks first).
#[derive(Default)]
pub(in crate::solver) struct ContextWalk {
    dirs: Mutex<HashMap<PathBuf, Walked>>,
    selections: Mutex<HashMap<(PathBuf, Vec<String>), Hashed>>,
}

impl ContextWalk {
    fn selection(&self, context: &Path, paths: &[String]) -> Result<Hashed, ContextHashError> {
        Ok(self
            .selections
            .lock()
            .map_err(|_| ContextHashError::Poisoned)?
            .entry((context.to_path_buf(), paths.to_vec()))
            .or_default()
            .clone())
    }

    fn dir(
        &self,
        context: &Path,
        ignore: Option<&Matcher>,
        root: &Root,
    ) -> Result<Walked, ContextHashError> {
        let walked = self
            .dirs
            .lock()
            .map_err(|_| ContextHashError::Poisoned)?
            .entry(context.to_path_buf())
            .or_default()
            .clone();
        // Walked outside the lock: steps reading other directories need not wait.
        walked.get_or_init(|| {
            let none = Matcher::new(&[]).expect("empty matcher");
            let files = walk_context_stat(context, ignore.unwrap_or(&none)).map_err(|source| {
                ContextHashError::Walk {
                    dir: context.to_path_buf(),
                    source,
                }
            })?;
            let hashes = Mutex::new(context_memo::load(root, context));
            Ok(WalkedDir { files, hashes })
        });
        Ok(walked)
    }
}

/// blake3 over (relative path, type, mode, content or link target) of each selected file, in
/// sorted order, with a short hash of each entry (for cache-miss reports; dropped above
/// `history::MAX_FILES` entries). `remember`: store new content hashes in the memo (false for
/// dry runs).
pub(in crate::solver) fn hash_paths(
    root: &Root,
    context: &Path,
    paths: &[String],
    ignore: Option<&Matcher>,
    walk: &ContextWalk,
    remember: bool,
) -> Result<ContextFiles, ContextHashError> {
    let cell = walk.selection(context, paths)?;
    cell.get_or_init(|| {
        let walked = walk.dir(context, ignore, root)?;
        let dir = walked.get().expect("walked").as_ref().map_err(Arc::clone)?;
        hash_selection(root, context, dir, paths, remember).map_err(Arc::new)
    })
    .clone()
    .map_err(ContextHashError::Shared)
}

/// [`hash_paths`] on the walked directory, the first time a build asks for `paths`.
fn hash_selection(
    root: &Root,
    context: &Path,
    dir: &WalkedDir,
    paths: &[String],
    remember: bool,
) -> Result<ContextFiles, ContextHashError> {
    let selected = selected(dir, paths)?;
    let known = content_hashes(root, context, dir, &selected, remember)?;
    let mut h = blake3::Hasher::new();
    let mut entries = Vec::new();
    let mut entry = Vec::with_capacity(256);
    for ((rel, meta), hash) in selected.into_iter().zip(known) {
        entry.clear();
        entry.extend_from_slice(rel.as_bytes());
        entry.push(0);
        entry.extend_from_slice(&meta.permissions().mode().to_le_bytes());
        entry.extend_from_slice(&meta.uid().to_le_bytes());
        entry.extend_from_slice(&meta.gid().to_le_bytes());
        let ft = meta.file_type();
        if ft.is_symlink() {
            let path = context.join(rel);
            let target = std::fs::read_link(&path)
                .map_err(|source| ContextHashError::Read { path, source })?;
            entry.push(b'L');
            entry.extend_from_slice(target.as_os_str().as_encoded_bytes());
        } else if let Some(hash) = hash {
            entry.push(b'F');
            entry.extend_from_slice(&meta.len().to_le_bytes());
            entry.extend_from_slice(blake3::Hash::from(hash).to_hex().as_bytes());
        } else if ft.is_dir() {
            entry.push(b'D');
        } else {
            entry.push(b'O');
        }
        entry.push(0);
        h.update(&entry);
        if entries.len() <= MAX_FILES {
            let short = blake3::hash(&entry).to_hex();
            entries.push((rel.clone(), short[..16].to_string()));
        }
    }
    if entries.len() > MAX_FILES {
        entries.clear();
    }
    Ok(ContextFiles {
        digest: format!("blake3:{}", h.finalize().to_hex()),
        files: entries,
    })
}

/// The entries of `dir` that a step's `paths` select (`/` or `/.`: all).
fn selected<'a>(
    dir: &'a WalkedDir,
    paths: &[String],
) -> Result<Vec<&'a (String, std::fs::Metadata)>, ContextHashError> {
    let select_all = paths
        .iter()
        .any(|p| p.trim_start_matches('/').is_empty() || p == "/.");
    if select_all {
        return Ok(dir.files.iter().collect());
    }
    let patterns: Vec<String> = paths
        .iter()
        .map(|p| p.trim_start_matches('/').to_string())
        .filter(|p| !p.is_empty())
        .collect();
    let selection = Matcher::new(&patterns).map_err(ContextHashError::Select)?;
    Ok(select(&selection, &dir.files))
}

/// The content hash of each selected regular file (None for other entries): known in this
/// build or remembered under the same stamp, else read now (and memoized if `remember` and
/// not too recent).
fn content_hashes(
    root: &Root,
    context: &Path,
    dir: &WalkedDir,
    selected: &[&(String, std::fs::Metadata)],
    remember: bool,
) -> Result<Vec<Option<[u8; 32]>>, ContextHashError> {
    // Remembered hashes first (one short lock), then the files without one are read.
    let mut known: Vec<Option<[u8; 32]>> = {
        let hashes = dir.hashes.lock().unwrap_or_else(|p| p.into_inner());
        // `selected` keeps the walk's sorted order.
        let remembered = hashes.get_sorted(selected.iter().map(|(rel, _)| rel.as_str()));
        selected
            .iter()
            .zip(remembered)
            .map(|((_, meta), found)| {
                let (stamp, hash) = found?;
                (meta.file_type().is_file() && stamp == Stamp::of(meta)).then_some(hash)
            })
            .collect()
    };
    // Before any read: a stamp must be older than the read for the hash to be memoized.
    let read_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0);
    let mut fresh = Vec::new();
    for ((rel, meta), slot) in selected.iter().zip(known.iter_mut()) {
        if slot.is_none() && meta.file_type().is_file() {
            let hash = read_hash(&context.join(rel))?;
            fresh.push((rel.clone(), Stamp::of(meta), hash));
            *slot = Some(hash);
        }
    }
    if !fresh.is_empty() {
        let mut hashes = dir.hashes.lock().unwrap_or_else(|p| p.into_inner());
        for (rel, stamp, hash) in &fresh {
            hashes.insert(rel.clone(), *stamp, *hash);
        }
    }
    fresh.retain(|(_, stamp, _)| stamp.memoizable(read_ns));
    if remember && !fresh.is_empty() {
        context_memo::store(root, context, &fresh, &dir.files)?;
    }
    Ok(known)
}

/// The walked entries `selection` matches ("excluded", in ignore-file terms). The list is
/// sorted and holds each entry's parent directory before it, so each directory's
/// [`Matcher::ancestors_matched`] is worked out once, from its parent's.
fn select<'a>(
    selection: &Matcher,
    walked: &'a [(String, std::fs::Metadata)],
) -> Vec<&'a (String, std::fs::Metadata)> {
    let root = selection.root_flags();
    let mut dirs: HashMap<&str, Vec<bool>> = HashMap::new();
    let mut out = Vec::new();
    for entry in walked {
        let (rel, meta) = entry;
        let parent = match rel.rsplit_once('/') {
            None => Some(&root),
            Some((parent, _)) => dirs.get(parent),
        };
        let Some(parent) = parent else {
            // Not reached for a walker's list; the general rule answers anyway.
            if selection.is_excluded(rel) {
                out.push(entry);
            }
            continue;
        };
        if selection.is_excluded_in(rel, parent) {
            out.push(entry);
        }
        if meta.is_dir() {
            let flags = selection.ancestors_matched(rel, parent);
            dirs.insert(rel, flags);
        }
    }
    out
}

/// blake3 of a file's content.
fn read_hash(path: &Path) -> Result<[u8; 32], ContextHashError> {
    let failed = |source| ContextHashError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut f = std::fs::File::open(path).map_err(failed)?;
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf).map_err(failed)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(*hasher.finalize().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn old(path: &Path) {
        let t = filetime::FileTime::from_unix_time(1_600_000_000, 0);
        filetime::set_file_mtime(path, t).unwrap();
    }

    #[test]
    fn selection_by_directory_agrees_with_the_matcher() {
        let tmp = tempfile::tempdir().unwrap();
        for f in [
            "a/b/c.py",
            "a/b/d.txt",
            "a/e.py",
            "src/x/y.py",
            "src/z",
            "top.py",
            "b/a/c",
        ] {
            let path = tmp.path().join(f);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, f).unwrap();
        }
        let none = Matcher::new(&[]).unwrap();
        let walked = walk_context_stat(tmp.path(), &none).unwrap();
        let cases: &[&[&str]] = &[
            &["src"],
            &["a/b"],
            &["*.py"],
            &["**/*.py", "!a/b/c.py"],
            &["a", "!a/e.py"],
            &["a/*", "src/x/y.py"],
            &["*/a"],
        ];
        for patterns in cases {
            let patterns: Vec<String> = patterns.iter().map(|p| p.to_string()).collect();
            let m = Matcher::new(&patterns).unwrap();
            let want: Vec<&str> = walked
                .iter()
                .filter(|(rel, _)| m.is_excluded(rel))
                .map(|(rel, _)| rel.as_str())
                .collect();
            let got: Vec<&str> = select(&m, &walked)
                .iter()
                .map(|(r, _)| r.as_str())
                .collect();
            assert_eq!(got, want, "{patterns:?}");
            assert!(!want.is_empty(), "{patterns:?} selects something");
        }
    }

    #[test]
    fn a_selection_is_hashed_once_per_build() {
        let tmp = tempfile::tempdir().unwrap();
        let root = Root::open(&tmp.path().join("root")).unwrap();
        let ctx = tmp.path().join("ctx");
        std::fs::create_dir_all(ctx.join("src")).unwrap();
        std::fs::write(ctx.join("src/a.py"), "print(1)\n").unwrap();
        let paths = vec!["/src".to_string()];
        let expected = hash_paths(&root, &ctx, &paths, None, &ContextWalk::default(), false)
            .unwrap()
            .digest;
        let walk = ContextWalk::default();
        hash_paths(&root, &ctx, &paths, None, &walk, true).unwrap();
        // Gone from the disk: only the first hashing in this build (same walk) can answer.
        std::fs::remove_file(ctx.join("src/a.py")).unwrap();
        let got = hash_paths(&root, &ctx, &paths, None, &walk, false).unwrap();
        assert_eq!(got.digest, expected);
        // A new build's walk sees the file gone.
        let after = hash_paths(&root, &ctx, &paths, None, &ContextWalk::default(), false);
        assert_ne!(after.unwrap().digest, expected);
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
        let paths = vec!["/req.txt".to_string()];
        // ctime is "now": hashed, but not memoized yet (racy).
        hash_paths(&root, &ctx, &paths, None, &ContextWalk::default(), true).unwrap();
        assert!(context_memo::load(&root, &ctx).get("req.txt").is_none());
        // Past the window (ext4 and tmpfs stamps have nanoseconds: 50 ms).
        std::thread::sleep(std::time::Duration::from_millis(120));
        let first = hash_paths(&root, &ctx, &paths, None, &ContextWalk::default(), true)
            .unwrap()
            .digest;
        let remembered = context_memo::load(&root, &ctx);
        let (stamp, _) = remembered.get("req.txt").expect("memoized");
        let stamp = &stamp;
        // The memo is consulted: forge its hash and the result follows it.
        context_memo::store(
            &root,
            &ctx,
            &[("req.txt".to_string(), *stamp, [9; 32])],
            &[(
                "req.txt".to_string(),
                std::fs::symlink_metadata(&f).unwrap(),
            )],
        )
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
