//! Listing a build context: the files and directories its `.dockerignore` keeps, each with its
//! own metadata (lstat), never following symlinks (a symlink is listed as itself).
//!
//! Directories for which [`Matcher::can_skip_dir`] holds are not read at all. An excluded
//! directory that still holds an included path is listed too, since copying that path needs it
//! (as BuildKit's fsutil walker does).
//!
//! A no-change rebuild is mostly this walk, and on a VM a stat costs a microsecond or two, so
//! directories are listed on all cores at once and each entry is stat-ed relative to its open
//! directory (no path lookup from the root per file).

use crate::dockerignore::{io_err, IgnoreError, Matcher};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, OnceLock};

/// Threads a walk uses at most.
const MAX_THREADS: usize = 4;
/// Directories waiting in the queue that call for another thread.
const QUEUE_FOR_HELPERS: usize = 64;

/// The context's kept paths (relative, '/'-separated, sorted).
pub fn walk_context(context_dir: &Path, matcher: &Matcher) -> Result<Vec<String>, IgnoreError> {
    let listed = walk_context_stat(context_dir, matcher)?;
    Ok(listed.into_iter().map(|(rel, _)| rel).collect())
}

/// [`walk_context`] with each entry's metadata.
pub fn walk_context_stat(
    context_dir: &Path,
    matcher: &Matcher,
) -> Result<Vec<(String, fs::Metadata)>, IgnoreError> {
    let walk = Walk {
        matcher,
        queue: Mutex::new(Queue {
            dirs: vec![Dir {
                path: context_dir.to_path_buf(),
                rel: String::new(),
                flags: matcher.root_flags(),
                excluded: false,
            }],
            busy: 0,
            waiting: 0,
            failed: None,
        }),
        changed: Condvar::new(),
    };
    let helpers = cores().min(MAX_THREADS) - 1;
    let found = std::thread::scope(|scope| {
        // Helpers start once there is a queue of directories to share (a small context is
        // listed faster than a thread starts).
        let mut started = Vec::new();
        let mut found = walk.work(&mut || {
            if started.len() < helpers {
                started.push(scope.spawn(|| walk.work(&mut || {})));
            }
        });
        for helper in started {
            found.extend(helper.join().expect("walker thread"));
        }
        found
    });
    let queue = walk.queue.into_inner().unwrap_or_else(|p| p.into_inner());
    if let Some(e) = queue.failed {
        return Err(e);
    }
    let found = sorted_by_path(found);
    // An excluded directory stays only if something below it stays unconditionally.
    let keep: Vec<bool> = found
        .iter()
        .enumerate()
        .map(|(i, e)| !e.if_below || holds_kept(&found[i + 1..], &e.rel))
        .collect();
    found
        .into_iter()
        .zip(keep)
        .filter(|(_, keep)| *keep)
        .map(|(e, _)| match e.bad_name {
            Some(path) => Err(IgnoreError::NonUtf8Path { path }),
            None => Ok((e.rel, e.meta)),
        })
        .collect()
}

/// `found` in path order. An entry is large (its metadata is ~180 bytes), so indices are sorted
/// and each entry is moved once, rather than moved around by the sort (a quarter of a 50,000
/// file walk went into sorting the entries themselves).
fn sorted_by_path(found: Vec<Found>) -> Vec<Found> {
    let mut order: Vec<u32> = (0..found.len() as u32).collect();
    order.sort_unstable_by(|&a, &b| found[a as usize].rel.cmp(&found[b as usize].rel));
    let mut slots: Vec<Option<Found>> = found.into_iter().map(Some).collect();
    order
        .into_iter()
        .map(|i| slots[i as usize].take().expect("each index once"))
        .collect()
}

/// Whether `after` (the sorted entries after `dir`) holds an unconditional entry below `dir`.
fn holds_kept(after: &[Found], dir: &str) -> bool {
    let below = format!("{dir}/");
    let start = after.partition_point(|e| e.rel.as_str() < below.as_str());
    after[start..]
        .iter()
        .take_while(|e| e.rel.starts_with(&below))
        .any(|e| !e.if_below)
}

fn cores() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// A directory still to list.
struct Dir {
    path: PathBuf,
    rel: String,
    /// [`Matcher::ancestors_matched`] of this directory.
    flags: Vec<bool>,
    /// Excluded itself (listed only for exceptions below it).
    excluded: bool,
}

/// A listed entry.
struct Found {
    rel: String,
    meta: fs::Metadata,
    /// An excluded directory, kept only if something below it is.
    if_below: bool,
    /// Set when the name is not UTF-8 (an error if the entry is kept).
    bad_name: Option<PathBuf>,
}

struct Queue {
    dirs: Vec<Dir>,
    /// Directories being listed right now (their subdirectories are not queued yet).
    busy: usize,
    /// Threads waiting for a directory (woken only when there are any).
    waiting: usize,
    failed: Option<IgnoreError>,
}

struct Walk<'a> {
    matcher: &'a Matcher,
    queue: Mutex<Queue>,
    changed: Condvar,
}

impl Walk<'_> {
    /// Lists directories from the queue until none is left (or one fails). `more_hands` is
    /// called whenever directories pile up in the queue.
    fn work(&self, more_hands: &mut dyn FnMut()) -> Vec<Found> {
        let mut found = Vec::new();
        let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if queue.failed.is_some() {
                return found;
            }
            let Some(dir) = queue.dirs.pop() else {
                if queue.busy == 0 {
                    return found;
                }
                queue.waiting += 1;
                queue = self.changed.wait(queue).unwrap_or_else(|p| p.into_inner());
                queue.waiting -= 1;
                continue;
            };
            queue.busy += 1;
            drop(queue);
            let mut subdirs = Vec::new();
            let listed = self.list(&dir, &mut found, &mut subdirs);
            queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
            queue.busy -= 1;
            if let Err(e) = listed {
                queue.failed.get_or_insert(e);
            }
            queue.dirs.append(&mut subdirs);
            if queue.dirs.len() >= QUEUE_FOR_HELPERS {
                more_hands();
            }
            // A wake-up is a syscall: only for threads that wait (for new directories, or for
            // the end of the walk).
            if queue.waiting > 0 {
                self.changed.notify_all();
            }
        }
    }

    fn list(
        &self,
        dir: &Dir,
        found: &mut Vec<Found>,
        subdirs: &mut Vec<Dir>,
    ) -> Result<(), IgnoreError> {
        let entries = match fs::read_dir(&dir.path) {
            Ok(entries) => entries,
            // Like fsutil: an unreadable directory that is excluded anyway is not an error.
            Err(e) if dir.excluded && e.kind() == io::ErrorKind::PermissionDenied => return Ok(()),
            Err(e) => return Err(io_err(&dir.path)(e)),
        };
        for entry in entries {
            let entry = entry.map_err(io_err(&dir.path))?;
            let name = entry.file_name();
            let lossy = name.to_string_lossy();
            let mut rel = String::with_capacity(dir.rel.len() + 1 + lossy.len());
            if !dir.rel.is_empty() {
                rel.push_str(&dir.rel);
                rel.push('/');
            }
            rel.push_str(&lossy);
            let is_dir = entry.file_type().map_err(io_err(&entry.path()))?.is_dir();
            let excluded = self.matcher.is_excluded_in(&rel, &dir.flags);
            if is_dir {
                if excluded && !self.matcher.exception_could_match_below(&rel) {
                    continue;
                }
                subdirs.push(Dir {
                    path: entry.path(),
                    rel: rel.clone(),
                    flags: self.matcher.ancestors_matched(&rel, &dir.flags),
                    excluded,
                });
            } else if excluded {
                continue;
            }
            found.push(Found {
                meta: entry.metadata().map_err(io_err(&entry.path()))?,
                rel,
                if_below: excluded,
                bad_name: name.to_str().is_none().then(|| entry.path()),
            });
        }
        Ok(())
    }
}
