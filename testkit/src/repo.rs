//! Where the tests find files: the repository's own (`testdata/`, `scripts/`), which every
//! checkout has, and the team's shared directory (`../shared` beside the repository, or
//! `PALLET_SHARED`), which a plain clone does not have. Tests must pass without it: what reads
//! it is an extra check that says so and passes when it is absent.

use std::path::{Path, PathBuf};

/// The repository's top directory.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the kit lives in the repository")
        .to_path_buf()
}

/// `testdata/REL` in the repository.
pub fn testdata(rel: &str) -> PathBuf {
    root().join("testdata").join(rel)
}

/// `SHARED/REL` when the shared directory is there: `PALLET_SHARED` if set (then it must exist:
/// a wrong setting is an error, not a skip), else `../shared` beside the repository. When that
/// is absent: None, after a note on stderr that `what` was not checked.
pub fn shared(rel: &str, what: &str) -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("PALLET_SHARED") {
        let path = PathBuf::from(dir).join(rel);
        assert!(
            path.exists(),
            "PALLET_SHARED is set, but {} does not exist",
            path.display()
        );
        return Some(path);
    }
    let path = root().join("../shared").join(rel);
    if path.exists() {
        return Some(path);
    }
    crate::note::note(&format!(
        "note: {what}: {} is not here (no ../shared beside the repository; set PALLET_SHARED to \
         use another); checked only the repository's own files",
        path.display()
    ));
    None
}
