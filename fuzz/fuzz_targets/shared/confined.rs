//! What the targets that write files (`unpack`, `add_unpack`) check after each input: a
//! directory's entries, a sentinel beside the destination left as it was, and that no error
//! was EROFS (bench/fuzz.sh makes everything outside
//! the scratch directory read-only, so EROFS means a write outside the destination).
//! Included with `#[path]` by each target (they are separate binaries).

use std::fmt::Debug;
use std::path::Path;

/// The names in `dir`, sorted.
pub fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// EROFS on Linux.
const EROFS: i32 = 30;

/// Panics when EROFS is anywhere in `err`'s chain: a write outside the (writable) scratch
/// was attempted. `case` says which run of the input it was.
pub fn assert_not_erofs(err: &(dyn std::error::Error + 'static), case: &dyn Debug) {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            assert_ne!(
                io.raw_os_error(),
                Some(EROFS),
                "a write outside the destination was attempted: {err} ({case:?})"
            );
        }
        cur = e.source();
    }
    assert!(
        !err.to_string().contains("Read-only file system"),
        "a write outside the destination was attempted: {err} ({case:?})"
    );
}

/// A directory beside the destination that an extraction must never touch: `dir/` (empty)
/// and `keep` (its bytes and metadata recorded when made).
pub struct Sentinel {
    pub path: std::path::PathBuf,
    keep: std::fs::Metadata,
}

impl Sentinel {
    /// Makes the sentinel at `path`.
    pub fn make(path: std::path::PathBuf) -> Sentinel {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(path.join("dir")).unwrap();
        let keep = path.join("keep");
        std::fs::write(&keep, b"keep").unwrap();
        std::fs::set_permissions(&keep, std::fs::Permissions::from_mode(0o644)).unwrap();
        let keep = std::fs::symlink_metadata(&keep).unwrap();
        Sentinel { path, keep }
    }

    /// Panics when anything in the sentinel changed: entries, `keep`'s content, mode, owner,
    /// link count (a hardlink into the destination), inode or mtime.
    pub fn assert_unchanged(&self, case: &dyn Debug) {
        use std::os::unix::fs::MetadataExt;
        assert_eq!(
            names(&self.path),
            ["dir", "keep"],
            "the sentinel changed ({case:?})"
        );
        assert!(
            names(&self.path.join("dir")).is_empty(),
            "the sentinel's dir changed ({case:?})"
        );
        let keep = self.path.join("keep");
        let meta = std::fs::symlink_metadata(&keep).expect("sentinel/keep");
        assert_eq!(
            std::fs::read(&keep).unwrap(),
            b"keep",
            "sentinel/keep was written ({case:?})"
        );
        let before = &self.keep;
        assert_eq!(
            (
                meta.mode(),
                meta.uid(),
                meta.gid(),
                meta.nlink(),
                meta.ino()
            ),
            (
                before.mode(),
                before.uid(),
                before.gid(),
                before.nlink(),
                before.ino()
            ),
            "sentinel/keep's metadata changed or it was linked into dest ({case:?})"
        );
        assert_eq!(
            (meta.mtime(), meta.mtime_nsec()),
            (before.mtime(), before.mtime_nsec()),
            "sentinel/keep's mtime changed ({case:?})"
        );
    }
}
