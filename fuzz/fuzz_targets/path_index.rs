//! What a COPY on a fresh runner reads instead of a remote layer: a layer's path index blob
//! (`pallet::store::path_index::parse`), from a registry or a layout directory.
//!
//! Invariants: never a panic; an index accepted has only plain relative paths (no `..`, no
//! empty or `.` component, no leading slash, no NUL: nothing derived from it names a path
//! outside the step's upper dir), modes within 0o7777, and no overlay xattrs to copy up.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pallet::store::path_index::parse;

fuzz_target!(|data: &[u8]| {
    if let Ok(i) = parse(data) {
        for e in i.entries() {
            assert!(!e.path.is_empty() && !e.path.starts_with('/') && !e.path.contains('\0'));
            assert!(e
                .path
                .split('/')
                .all(|c| !c.is_empty() && c != "." && c != ".."));
            assert!(e.mode <= 0o7777);
            assert!(e.xattrs.iter().all(|(n, _)| !n.contains("overlay.")));
        }
    }
});
