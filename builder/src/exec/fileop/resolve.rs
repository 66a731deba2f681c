//! Paths inside a root: lexical cleaning (Go's `filepath.Clean(filepath.Join("/", p))`) and
//! scoped symlink resolution, as containerd's `fs.RootPath` / `filepath-securejoin` do it.
//!
//! A symlink met while resolving is read and its target walked again *inside the root*: an
//! absolute target starts over at the root, and `..` never climbs above it. The result is
//! always `root` joined with plain components, so it names a path under `root` however the
//! links inside point. Components that do not exist are kept as written (later ones are then
//! taken literally), like `fs.RootPath`.

use super::FileOpError;
use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Same bound as containerd's `fs.RootPath` (and close to the kernel's 40 for one lookup).
const MAX_LINKS: usize = 255;

/// The components of `p` after lexical cleaning against `/`: empty and `.` parts dropped,
/// `..` removes the previous part and stops at the root.
pub(crate) fn clean_components(p: &OsStr) -> Vec<OsString> {
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

/// `p` cleaned to an absolute, '/'-separated path (`/` for the root).
pub(crate) fn clean_abs(p: &str) -> String {
    let comps = clean_components(OsStr::new(p));
    let mut s = String::new();
    for c in &comps {
        s.push('/');
        s.push_str(&c.to_string_lossy());
    }
    if s.is_empty() {
        s.push('/');
    }
    s
}

/// Resolves `path` (absolute inside `root`, or relative to it) to a host path under `root`,
/// following symlinks in every component; the last one only when `follow_final`.
pub(crate) fn resolve(
    root: &Path,
    path: &OsStr,
    follow_final: bool,
) -> Result<PathBuf, FileOpError> {
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
            Err(e) => return Err(io_error(root, &candidate, e)),
        };
        if !md.file_type().is_symlink() {
            done.push(part);
            continue;
        }
        links += 1;
        if links > MAX_LINKS {
            return Err(FileOpError::User(format!(
                "cannot resolve {}: too many levels of symbolic links",
                display(root, &join(root, &done).join(&part))
            )));
        }
        let target = std::fs::read_link(&candidate).map_err(|e| io_error(root, &candidate, e))?;
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
pub(crate) fn is_missing(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

/// How a host path under `root` reads inside the root (`/app/x`), for messages.
pub(crate) fn display(root: &Path, p: &Path) -> String {
    match p.strip_prefix(root) {
        Ok(rel) if rel.as_os_str().is_empty() => "/".to_string(),
        Ok(rel) => format!("/{}", rel.to_string_lossy()),
        Err(_) => p.to_string_lossy().into_owned(),
    }
}

/// The path of `p` relative to `root`, '/'-separated, no leading '/' (`""` for the root).
pub(crate) fn rel(root: &Path, p: &Path) -> String {
    p.strip_prefix(root)
        .map(|r| r.to_string_lossy().into_owned())
        .unwrap_or_default()
}

pub(crate) fn io_error(root: &Path, p: &Path, source: io::Error) -> FileOpError {
    FileOpError::Io {
        path: display(root, p),
        source,
    }
}
