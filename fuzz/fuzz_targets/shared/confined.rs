//! What the targets that write files (`unpack`, `add_unpack`) check after each input: a
//! directory's entries, and that no error was EROFS (bench/fuzz.sh makes everything outside
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
