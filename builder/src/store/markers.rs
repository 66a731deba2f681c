//! One store, several isolation modes: the form of overlayfs's markers in its snapshots.
//!
//! A snapshot marks a removal with a 0/0 character device and an opaque directory with
//! `trusted.overlay.opaque`. Where a process is refused those (an unprivileged container, chroot
//! mode), the markers it makes take their `user.overlay.*` form (`snapshot::marker`), which the
//! tree snapshotter and rootless overlayfs read and root mode's overlayfs does not: over such a
//! snapshot, a removed file would come back as an empty file. So a chroot-mode command that is
//! refused the usual form notes it in the store (`tmp/user-markers`), and root mode, which can
//! make the usual form, gives every snapshot its usual markers before its first step (once:
//! then the note goes). Costs a root build one stat, a chroot build one mknod and one xattr.

use super::StoreError;
use crate::snapshot::marker;
use cache::Root;
use std::path::PathBuf;

/// The note that snapshots in this store may hold user-form markers.
fn note_path(root: &Root) -> PathBuf {
    root.tmp_dir().join("user-markers")
}

/// Before a command's first step in isolation `mode` (`root`, `chroot`, ...): the note or the
/// restoring above, as the mode needs.
pub fn reconcile(root: &Root, mode: &str) -> Result<(), StoreError> {
    match mode {
        "root" => restore_usual_form(root).map(drop),
        "chroot" => note_user_form(root),
        _ => Ok(()),
    }
}

/// For a chroot-mode command: notes in the store when this process makes user-form markers.
pub fn note_user_form(root: &Root) -> Result<(), StoreError> {
    let note = note_path(root);
    if note.exists() {
        return Ok(());
    }
    let io = |what: &str, source| StoreError::Io {
        what: format!("{what} in {}", root.tmp_dir().display()),
        source,
    };
    std::fs::create_dir_all(root.tmp_dir()).map_err(|e| io("cannot make the tmp dir", e))?;
    let refused = marker::usual_form_refused(&root.tmp_dir())
        .map_err(|e| io("cannot try overlayfs's whiteout forms", e))?;
    if refused {
        std::fs::write(&note, b"snapshots may hold user.overlay.* markers\n")
            .map_err(|e| io("cannot note user-form markers", e))?;
    }
    Ok(())
}

/// For a root-mode command: when the store was used where markers take their user form, gives
/// every snapshot its usual markers, under the store's exclusive lock, then drops the note.
/// Returns how many markers it changed.
pub fn restore_usual_form(root: &Root) -> Result<usize, StoreError> {
    let note = note_path(root);
    if !note.exists() {
        return Ok(0);
    }
    let _lock = root.lock_for_prune()?;
    if !note.exists() {
        return Ok(0);
    }
    let snapshots = root.snapshots_dir();
    let mut changed = 0;
    let entries = match std::fs::read_dir(&snapshots) {
        Ok(entries) => entries.collect::<Result<Vec<_>, _>>(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    };
    let io = |source| StoreError::Io {
        what: format!(
            "cannot give the snapshots in {} overlayfs's usual whiteouts (they were made in \
             chroot mode with user.overlay.* markers)",
            snapshots.display()
        ),
        source,
    };
    for entry in entries.map_err(io)? {
        if entry.file_type().map_err(io)?.is_dir() {
            changed += marker::restore_usual_form(&entry.path()).map_err(io)?;
        }
    }
    std::fs::remove_file(&note).map_err(io)?;
    Ok(changed)
}
