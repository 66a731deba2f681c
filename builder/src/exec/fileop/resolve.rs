//! File-op views of paths inside a root: cleaning to an absolute path, the shared root-confined
//! resolver (`exec::rootpath`) with file-op errors, and how paths read in messages.

use super::FileOpError;
use crate::exec::rootpath::{self, RootPathError};
pub(crate) use crate::exec::rootpath::{clean_components, is_missing};
use std::ffi::OsStr;
use std::io;
use std::path::{Path, PathBuf};

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

/// Resolves `path` inside `root` with the shared root-confined resolver (`exec::rootpath`),
/// following the last component only when `follow_final`; errors as file-op errors.
pub(crate) fn resolve(
    root: &Path,
    path: &OsStr,
    follow_final: bool,
) -> Result<PathBuf, FileOpError> {
    rootpath::resolve(root, path, follow_final).map_err(|e| match e {
        RootPathError::TooManyLinks(p) => FileOpError::User(format!(
            "cannot resolve {}: too many levels of symbolic links",
            display(root, &p)
        )),
        RootPathError::Io(p, e) => io_error(root, &p, e),
    })
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
