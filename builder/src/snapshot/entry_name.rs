//! What a layer entry may name, and how unpacking refuses what it may not: an entry's name
//! as path components below the root (no `..`, no NUL), and the errors of an unsafe name or a
//! path that runs through a symlink (names are shortened in messages). Shared by the unpack loop (`unpack`) and the creation of
//! one entry (`create`), so neither imports the other.

use super::beneath::ResolveError;
use std::io;

#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("layer entry {entry:?}: {reason}")]
    Unsafe { entry: String, reason: String },
    #[error("layer entry {entry:?}: {source}")]
    Io {
        entry: String,
        source: std::io::Error,
    },
    #[error("reading layer: {0}")]
    Read(std::io::Error),
}

/// What an entry name may not be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UnsafeName {
    #[error("name has a `..` component; layers may not refer above their root")]
    DotDot,
    #[error("name contains a NUL byte")]
    Nul,
    #[error(
        "name is too long: {0} bytes, over the {PATH_MAX} a path may have (PATH_MAX); the layer \
         is broken or hostile"
    )]
    TooLong(usize),
}

/// The longest entry name unpacked (Linux's PATH_MAX). Checked before anything is created:
/// a name of 20 000 components would otherwise be made level by level, with every prefix
/// remembered (time and memory quadratic in its length), to fail late with ENAMETOOLONG.
pub(crate) const PATH_MAX: usize = 4096;

/// An entry name for messages: at most 200 characters, then an ellipsis and the length.
pub(crate) fn shown(raw: &[u8]) -> String {
    let name = String::from_utf8_lossy(raw);
    if name.chars().count() <= 200 {
        return name.into_owned();
    }
    let head: String = name.chars().take(200).collect();
    format!("{head}… ({} bytes)", raw.len())
}

/// Splits an entry name into components relative to the root: empty and `.` components
/// dropped (so `/a` and `./a` are `a`), `..` refused. The root itself is no components.
pub(crate) fn components(raw: &[u8]) -> Result<Vec<&[u8]>, UnsafeName> {
    if raw.len() > PATH_MAX {
        return Err(UnsafeName::TooLong(raw.len()));
    }
    let mut out = Vec::new();
    for comp in raw.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => return Err(UnsafeName::DotDot),
            _ if comp.contains(&0) => return Err(UnsafeName::Nul),
            _ => out.push(comp),
        }
    }
    Ok(out)
}

pub(crate) fn resolve_error(label: &str, err: ResolveError) -> UnpackError {
    let entry = label.to_owned();
    match err {
        ResolveError::Symlink(p) => UnpackError::Unsafe {
            entry,
            reason: format!(
                "{p:?} is a symlink, and layers may not create or remove files through symlinks"
            ),
        },
        ResolveError::NotDir(p) => UnpackError::Io {
            entry,
            source: io::Error::new(
                io::ErrorKind::NotADirectory,
                format!("{p:?} is not a directory"),
            ),
        },
        ResolveError::Io(p, e) => UnpackError::Io {
            entry,
            source: io::Error::new(e.kind(), format!("{p:?}: {e}")),
        },
    }
}
