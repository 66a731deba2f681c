//! What an importer of cache mounts (issue 17's `mounts=true`) reads from a remote cache
//! before it fetches anything: the cache-mount manifest
//! (`pallet::store::mount_pack::parse_manifest`).
//!
//! Invariants: never a panic; an accepted manifest serializes (`to_json`) to bytes that parse
//! to the same manifest, and serializing is stable (the manifest digest is a function of the
//! manifest); every accepted chunk has a tar layer media type and sha256 digests.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pallet::store::mount_pack::parse_manifest;

fuzz_target!(|data: &[u8]| {
    let Ok(m) = parse_manifest(data) else {
        return;
    };
    let json = m.to_json();
    let again = parse_manifest(&json).expect("an accepted manifest parses again");
    assert_eq!(again, m, "manifest round trip");
    assert_eq!(again.to_json(), json, "serializing is stable");
    assert_eq!(again.digest(), m.digest());
    for c in &m.chunks {
        assert!(c
            .media_type
            .starts_with("application/vnd.oci.image.layer.v1.tar"));
        assert!(c.digest.starts_with("sha256:") && c.diff_id.starts_with("sha256:"));
    }
});
