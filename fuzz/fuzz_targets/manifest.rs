//! What a pull reads from a registry or an OCI layout: manifests, indexes and image configs
//! (`registry::ImageManifest`, `registry::ImageIndex`, `graph::image::Image` through
//! serde_json, as `registry::pull` and the store do), the media type detection of
//! `Client::get_manifest` (`registry::manifest::detect_media_type`), the platform choice in an
//! index (`registry::pull::choose_platform`), and the by-digest reference each chosen entry
//! becomes (`registry::pull::with_digest`).
//!
//! Invariants: never a panic; each decoded value serializes, and what it serializes to
//! decodes to the same value (for the config: serializing is stable, since Go's `omitempty`
//! makes `[]` and absent the same); a chosen platform entry comes from the index.
#![no_main]

use graph::image::Image;
use libfuzzer_sys::fuzz_target;
use registry::manifest::{detect_media_type, OCI_INDEX, OCI_MANIFEST};
use registry::pull::{choose_platform, with_digest};
use registry::{ImageIndex, ImageManifest, Platform, Reference};

fn round_trip<T>(value: &T) -> T
where
    T: serde::Serialize + serde::de::DeserializeOwned,
{
    let bytes = serde_json::to_vec(value).expect("a decoded value serializes");
    serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        panic!(
            "{} does not decode again: {e}",
            String::from_utf8_lossy(&bytes)
        )
    })
}

fuzz_target!(|data: &[u8]| {
    for ct in [
        None,
        Some(OCI_INDEX),
        Some("application/json; charset=utf-8"),
        Some(OCI_MANIFEST),
    ] {
        let _ = detect_media_type(ct, data);
    }
    let reference = Reference::parse("registry.example:5000/team/app:1.0").unwrap();

    if let Ok(m) = serde_json::from_slice::<ImageManifest>(data) {
        assert_eq!(round_trip(&m), m, "manifest round trip");
        for d in std::iter::once(&m.config).chain(&m.layers) {
            if let Ok(r) = with_digest(&reference, &d.digest) {
                assert_eq!(r.digest(), Some(d.digest.as_str()));
            }
        }
    }

    if let Ok(index) = serde_json::from_slice::<ImageIndex>(data) {
        assert_eq!(round_trip(&index), index, "index round trip");
        for wanted in [
            "linux/amd64",
            "linux/arm64",
            "linux/arm/v7",
            "linux/arm64/v8",
            "windows/amd64",
        ] {
            let wanted = Platform::parse(wanted).unwrap();
            if let Some(d) = choose_platform(&index, &wanted) {
                assert!(index.manifests.iter().any(|m| std::ptr::eq(m, d)));
                let p = d.platform.as_ref().expect("a chosen entry has a platform");
                let _ = (p.to_string(), p.normalized(), p.is_unknown());
                let _ = with_digest(&reference, &d.digest);
            }
        }
        for d in &index.manifests {
            if let Some(p) = &d.platform {
                let shown = p.to_string();
                let _ = Platform::parse(&shown).map(|q| q.matches(p));
            }
        }
    }

    if let Ok(image) = serde_json::from_slice::<Image>(data) {
        let once = round_trip(&image);
        let twice = round_trip(&once);
        assert_eq!(once, twice, "config round trip is not stable");
        let _ = image.config.env_get("PATH");
    }
});
