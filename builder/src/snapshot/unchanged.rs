//! Dropping what a step's upper dir holds without having changed it.
//!
//! overlayfs copies a directory up when anything inside it is created, even if that is later
//! removed (runc's mount stubs for /etc/hosts, a temp file in /tmp), and copies a file up when it
//! is opened for writing, even if nothing is written. Such entries would travel in the layer
//! (every RUN layer would carry `dev/`, `etc/`, `proc/`, `sys/`). BuildKit's overlay differ
//! (util/overlay `Changes`, `sameDirent`) leaves them out: an entry that exists in the lower
//! layers with the same mode, owner, device number and `security.capability`, and for
//! non-directories the same size and mtime (content compared when both mtimes have no
//! nanoseconds, as after a tar), is not a change. Directories that still have children are
//! kept (a changed child needs its parent entry).
//!
//! Here those entries are removed from the upper dir before it becomes the snapshot, so the
//! snapshot and the layer agree and the merged view is unchanged (the lower entry shows
//! through). Opaque directories and everything below them are kept (their lower contents are
//! hidden), as are whiteouts and files with several links.

use std::fs::{self, File, Metadata};
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use super::whiteout::overlay_xattr_names;
use crate::fill::fill;

/// Removes from `upper` the entries that are the same as in `lower_view` (the lower layers'
/// merged, read-only view). Returns how many entries were removed.
pub fn drop_unchanged(upper: &Path, lower_view: &Path) -> io::Result<u64> {
    let mut removed = 0;
    visit_children(upper, lower_view, &mut removed)?;
    Ok(removed)
}

/// Visits `dir`'s children; returns whether `dir` is empty afterwards.
fn visit_children(dir: &Path, lower: &Path, removed: &mut u64) -> io::Result<bool> {
    let mut left = 0usize;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let low = lower.join(entry.file_name());
        let meta = fs::symlink_metadata(&path)?;
        if visit(&path, &low, &meta, removed)? {
            *removed += 1;
        } else {
            left += 1;
        }
    }
    Ok(left == 0)
}

/// Returns true when `path` was removed.
fn visit(path: &Path, low: &Path, meta: &Metadata, removed: &mut u64) -> io::Result<bool> {
    let Ok(low_meta) = fs::symlink_metadata(low) else {
        // Not in the lowers: added (and nothing below a new directory is a copy-up).
        return Ok(false);
    };
    if meta.is_dir() {
        if is_opaque(path)? {
            return Ok(false);
        }
        let empty = if low_meta.is_dir() {
            visit_children(path, low, removed)?
        } else {
            false
        };
        if empty && low_meta.is_dir() && same_attrs(meta, &low_meta, path, low)? {
            fs::remove_dir(path)?;
            return Ok(true);
        }
        return Ok(false);
    }
    let ft = meta.file_type();
    let whiteout = ft.is_char_device() && meta.rdev() == 0;
    if whiteout || meta.nlink() > 1 || low_meta.is_dir() {
        return Ok(false);
    }
    if same_attrs(meta, &low_meta, path, low)? && same_content(meta, &low_meta, path, low)? {
        fs::remove_file(path)?;
        return Ok(true);
    }
    Ok(false)
}

/// Whether the non-directory `a` (a tree snapshotter's entry) is the same as `b` (the lower
/// layers' entry) by the rule above: what an overlay step's copy-up of it would lose here.
pub(crate) fn same_entry(a: &Path, b: &Path) -> io::Result<bool> {
    let (ma, mb) = (fs::symlink_metadata(a)?, fs::symlink_metadata(b)?);
    if ma.is_dir() || mb.is_dir() {
        return Ok(false);
    }
    Ok(same_attrs(&ma, &mb, a, b)? && same_content(&ma, &mb, a, b)?)
}

/// continuity's `compareSysStat` (mode with type, uid, gid, rdev) plus `security.capability`.
fn same_attrs(a: &Metadata, b: &Metadata, pa: &Path, pb: &Path) -> io::Result<bool> {
    if a.mode() != b.mode() || a.uid() != b.uid() || a.gid() != b.gid() || a.rdev() != b.rdev() {
        return Ok(false);
    }
    Ok(capability(pa)? == capability(pb)?)
}

fn capability(p: &Path) -> io::Result<Option<Vec<u8>>> {
    match xattr::get(p, "security.capability") {
        Ok(v) => Ok(v),
        Err(e) if e.raw_os_error() == Some(libc::ENOTSUP) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Size and mtime equal; when neither mtime has nanoseconds (both from a tar), the content
/// (or link target) decides, as in BuildKit's `sameDirent`.
fn same_content(a: &Metadata, b: &Metadata, pa: &Path, pb: &Path) -> io::Result<bool> {
    if a.size() != b.size() || a.mtime() != b.mtime() {
        return Ok(false);
    }
    if a.mtime_nsec() != 0 || b.mtime_nsec() != 0 {
        return Ok(a.mtime_nsec() == b.mtime_nsec());
    }
    let ft = a.file_type();
    if ft.is_symlink() {
        return Ok(fs::read_link(pa)? == fs::read_link(pb)?);
    }
    if !ft.is_file() || a.size() == 0 {
        return Ok(true);
    }
    let (mut fa, mut fb) = (File::open(pa)?, File::open(pb)?);
    let (mut ba, mut bb) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    loop {
        let na = fill(&mut fa, &mut ba)?;
        let nb = fill(&mut fb, &mut bb)?;
        if na != nb || ba[..na] != bb[..nb] {
            return Ok(false);
        }
        if na == 0 {
            return Ok(true);
        }
    }
}

/// Opaque in either namespace: root's overlays mark `trusted.overlay.opaque`, rootless ones
/// (`userxattr`) `user.overlay.opaque`.
fn is_opaque(dir: &Path) -> io::Result<bool> {
    for name in overlay_xattr_names("opaque") {
        match xattr::get(dir, &name) {
            Ok(v) if v.as_deref() == Some(b"y") => return Ok(true),
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOTSUP) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn touch(p: &Path, data: &str, mtime: i64) {
        fs::write(p, data).unwrap();
        let t = filetime::FileTime::from_unix_time(mtime, 0);
        filetime::set_file_mtime(p, t).unwrap();
    }

    #[test]
    fn copied_up_entries_go_and_changes_stay() {
        let d = tempfile::tempdir().unwrap();
        let (up, low) = (d.path().join("up"), d.path().join("low"));
        for dir in ["etc", "tmp", "opt/keep", "var/x"] {
            fs::create_dir_all(low.join(dir)).unwrap();
            fs::create_dir_all(up.join(dir)).unwrap();
        }
        // A directory whose mode changed is a change.
        fs::set_permissions(up.join("opt/keep"), fs::Permissions::from_mode(0o700)).unwrap();
        // Unchanged copy-up of a file (same size, mtime and content), and one edited.
        touch(&low.join("etc/passwd"), "root\n", 1000);
        touch(&up.join("etc/passwd"), "root\n", 1000);
        touch(&low.join("var/x/f"), "old\n", 1000);
        touch(&up.join("var/x/f"), "new\n", 1000);
        // A new file in tmp keeps tmp.
        fs::write(up.join("tmp/new"), "n").unwrap();
        // A new, empty directory stays.
        fs::create_dir(up.join("fresh")).unwrap();

        let removed = drop_unchanged(&up, &low).unwrap();
        assert_eq!(removed, 2, "etc/passwd, then etc/");
        assert!(!up.join("etc").exists());
        assert!(up.join("tmp/new").exists());
        assert!(up.join("opt/keep").exists(), "mode changed");
        assert!(
            up.join("var/x/f").exists(),
            "content changed, same size and mtime"
        );
        assert!(up.join("fresh").is_dir());
    }

    #[test]
    fn opaque_dirs_and_whiteouts_stay() {
        let d = tempfile::tempdir().unwrap();
        let (up, low) = (d.path().join("up"), d.path().join("low"));
        fs::create_dir_all(low.join("o")).unwrap();
        fs::create_dir_all(up.join("o")).unwrap();
        touch(&low.join("o/f"), "x", 1000);
        touch(&up.join("o/f"), "x", 1000);
        // Anyone can set the user namespace's: a rootless (`userxattr`) overlay's opaque dir.
        let user = super::super::whiteout::USER_OPAQUE_XATTR;
        xattr::set(up.join("o"), user, b"y").unwrap();
        assert_eq!(drop_unchanged(&up, &low).unwrap(), 0);
        assert!(up.join("o/f").exists());
        xattr::remove(up.join("o"), user).unwrap();
        let trusted = super::super::whiteout::OVERLAY_OPAQUE_XATTR;
        if xattr::set(up.join("o"), trusted, b"y").is_err() {
            return; // trusted.* needs root; the rest of the rule is covered above.
        }
        assert_eq!(drop_unchanged(&up, &low).unwrap(), 0);
        assert!(up.join("o/f").exists());
    }
}
