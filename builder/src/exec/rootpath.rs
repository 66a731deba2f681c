//! Paths inside a root file tree (an image rootfs, a build context): lexical cleaning and
//! scoped symlink resolution, as containerd's `fs.RootPath` / `filepath-securejoin` do it.
//! The one mechanism behind COPY's source and destination paths, USER's /etc/passwd lookup,
//! the working directory runc starts in, and RUN bind-mount sources.
//!
//! A symlink met while resolving is read and its target walked again *inside the root*: an
//! absolute target starts over at the root, and `..` never climbs above it. The result is
//! always `root` joined with plain components, so it names a path under `root` however the
//! links inside point. Components that do not exist are kept as written (later ones are then
//! taken literally), like `fs.RootPath`.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Same bound as containerd's `fs.RootPath` (and close to the kernel's 40 for one lookup).
const MAX_LINKS: usize = 255;

#[derive(Debug, thiserror::Error)]
pub enum RootPathError {
    /// A symlink loop (or a very long chain) at this host path.
    #[error("{}: too many levels of symbolic links", .0.display())]
    TooManyLinks(PathBuf),
    /// Reading this host path failed.
    #[error("{}: {}", .0.display(), .1)]
    Io(PathBuf, #[source] io::Error),
}

impl From<RootPathError> for io::Error {
    fn from(e: RootPathError) -> io::Error {
        match e {
            RootPathError::Io(_, e) => e,
            e @ RootPathError::TooManyLinks(_) => io::Error::other(e.to_string()),
        }
    }
}

/// The components of `p` after lexical cleaning against `/`: empty and `.` parts dropped,
/// `..` removes the previous part and stops at the root.
pub fn clean_components(p: &OsStr) -> Vec<OsString> {
    let mut out: Vec<OsString> = Vec::new();
    for part in p.as_bytes().split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                out.pop();
            }
            _ => out.push(OsStr::from_bytes(part).to_os_string()),
        }
    }
    out
}

/// Resolves `path` (absolute inside `root`, or relative to it) to a host path under `root`,
/// following symlinks in every component; the last one only when `follow_final`.
pub fn resolve(root: &Path, path: &OsStr, follow_final: bool) -> Result<PathBuf, RootPathError> {
    let mut pending: VecDeque<OsString> = clean_components(path).into();
    let mut done: Vec<OsString> = Vec::new();
    let mut links = 0usize;
    // Once a component is missing, nothing below it exists either: no more lstat calls.
    let mut missing = false;
    while let Some(part) = pending.pop_front() {
        match part.as_bytes() {
            b"" | b"." => continue,
            b".." => {
                done.pop();
                missing = false;
                continue;
            }
            _ => {}
        }
        let last = pending.is_empty();
        if missing || (last && !follow_final) {
            done.push(part);
            continue;
        }
        let candidate = join(root, &done).join(&part);
        let md = match std::fs::symlink_metadata(&candidate) {
            Ok(md) => md,
            Err(e) if is_missing(&e) => {
                missing = true;
                done.push(part);
                continue;
            }
            Err(e) => return Err(RootPathError::Io(candidate, e)),
        };
        if !md.file_type().is_symlink() {
            done.push(part);
            continue;
        }
        links += 1;
        if links > MAX_LINKS {
            return Err(RootPathError::TooManyLinks(join(root, &done).join(&part)));
        }
        let target = match std::fs::read_link(&candidate) {
            Ok(t) => t,
            Err(e) => return Err(RootPathError::Io(candidate, e)),
        };
        let target = target.as_os_str().as_bytes();
        if target.first() == Some(&b'/') {
            done.clear();
        }
        for comp in target.split(|&b| b == b'/').rev() {
            pending.push_front(OsStr::from_bytes(comp).to_os_string());
        }
    }
    Ok(join(root, &done))
}

fn join(root: &Path, parts: &[OsString]) -> PathBuf {
    let mut p = root.to_path_buf();
    p.extend(parts);
    p
}

/// Not there, or a file where a directory was expected: either way the path does not exist.
pub fn is_missing(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}
