//! The checked-out tree made ready for a layer: `.git` dirs dropped, BuildKit's modes, and
//! the commit's time on everything when SOURCE_DATE_EPOCH asks for reproducible times.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Removes `.git` (directories and submodule gitlink files) anywhere in the tree.
pub(super) fn remove_git_dirs(dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let kind = entry.file_type()?;
        if entry.file_name() == ".git" {
            if kind.is_dir() {
                std::fs::remove_dir_all(&path)?;
            } else {
                std::fs::remove_file(&path)?;
            }
        } else if kind.is_dir() {
            remove_git_dirs(&path)?;
        }
    }
    Ok(())
}

/// Files 0644 (0755 with any executable bit), directories 0755; `.git` is left as git made it.
pub(super) fn normalize_modes(dir: &Path) -> std::io::Result<()> {
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let kind = entry.file_type()?;
        if kind.is_dir() {
            if entry.file_name() != ".git" {
                normalize_modes(&path)?;
            }
        } else if kind.is_file() {
            let mode = entry.metadata()?.permissions().mode();
            let want = if mode & 0o111 != 0 { 0o755 } else { 0o644 };
            if mode & 0o7777 != want {
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(want))?;
            }
        }
    }
    Ok(())
}

/// Every entry's access and modification time (symlinks themselves, not their targets).
pub(super) fn set_times(dir: &Path, unix: i64) -> std::io::Result<()> {
    let t = filetime::FileTime::from_unix_time(unix, 0);
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            set_times(&path, unix)?;
        } else {
            filetime::set_symlink_file_times(&path, t, t)?;
        }
    }
    filetime::set_symlink_file_times(dir, t, t)
}
