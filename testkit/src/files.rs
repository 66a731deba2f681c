//! Files as tests make and inspect them: writing with parent directories, reading with the path
//! in the panic, permission bits, directory listings, grepping a tree, build contexts, and temp
//! dirs. Every function panics (naming the path) rather than return an error: a test that
//! cannot read its own files has failed.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

pub use tempfile::TempDir;

/// A temp dir whose name starts with `prefix`, removed on drop.
pub fn temp_dir(prefix: &str) -> TempDir {
    tempfile::Builder::new()
        .prefix(&format!("{prefix}-"))
        .tempdir()
        .unwrap()
}

/// Writes `content` at `path`, making its parent directories.
pub fn write(path: &Path, content: impl AsRef<[u8]>) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{}: {e}", parent.display()));
    }
    std::fs::write(path, content).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

/// [`write`], then sets the permission bits.
pub fn write_mode(path: &Path, content: impl AsRef<[u8]>, mode: u32) {
    write(path, content);
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The text of the file at `path`.
pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The permission bits (with setuid, setgid and sticky) of `path` itself, not of a symlink's
/// target.
pub fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

/// A build context: the directory `dir` (made) with a `Dockerfile` of this text and the given
/// files (paths relative to `dir`, parents made). Returns `dir`.
pub fn context(dir: &Path, dockerfile: &str, files: &[(&str, &str)]) -> PathBuf {
    write(&dir.join("Dockerfile"), dockerfile);
    for (name, content) in files {
        write(&dir.join(name), content);
    }
    dir.to_path_buf()
}

/// The names in `dir`, sorted. The directory must exist.
pub fn list_dir(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The names in `dir`, sorted; none if it does not exist.
pub fn list_dir_if_exists(dir: &Path) -> Vec<String> {
    if dir.exists() {
        list_dir(dir)
    } else {
        Vec::new()
    }
}

/// Every regular file under `dir` (symlinks not followed), for grepping a store or an image
/// for values that must not leak. Entries that vanish while listed are left out.
pub fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            match std::fs::symlink_metadata(&p) {
                Ok(m) if m.is_dir() => dirs.push(p),
                Ok(m) if m.is_file() => out.push(p),
                _ => {}
            }
        }
    }
    out
}

/// Whether `file` holds `needle`. A file gone since it was listed holds nothing: a store is
/// live (the detached settle after a build removes its `unsynced/` markers).
pub fn file_contains(file: &Path, needle: &[u8]) -> bool {
    match std::fs::read(file) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        read => read
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
            .windows(needle.len())
            .any(|w| w == needle),
    }
}

/// The number of entries under `dir` that are not directories (0 if it does not exist).
pub fn count_files(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| {
            let p = e.path();
            if p.is_dir() && !p.is_symlink() {
                count_files(&p)
            } else {
                1
            }
        })
        .sum()
}

/// Directories named `name` anywhere below `dir` (symlinks not followed).
pub fn find_dirs(dir: &Path, name: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir()) {
            if e.file_name() == name {
                out.push(p);
            } else {
                out.extend(find_dirs(&p, name));
            }
        }
    }
    out
}

/// Copies the files and directories under `from` into `to` (made): contents and permission
/// bits, as `std::fs::copy` does.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from)
        .unwrap_or_else(|e| panic!("{}: {e}", from.display()))
        .flatten()
    {
        let (src, dst) = (e.path(), to.join(e.file_name()));
        if src.is_dir() {
            copy_dir(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
        }
    }
}
