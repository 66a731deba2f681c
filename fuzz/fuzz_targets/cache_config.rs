//! What `--cache-from` reads from a registry or a layout directory: a cache manifest
//! (`pallet::remote_cache::format::cache_config_of`) and a cache config (`parse_config`).
//!
//! Invariants: never a panic; a manifest accepted names a config of pallet's media type within
//! the size cap; a config accepted has every layer index in range, every digest valid (so
//! nothing derived from it names a path outside a layout), and serializes to bytes that parse
//! to the same config.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pallet::remote_cache::format::{
    cache_config_of, parse_config, CONFIG_LIMIT, CONFIG_MEDIA_TYPE,
};

fuzz_target!(|data: &[u8]| {
    if let Ok(d) = cache_config_of(data) {
        assert_eq!(d.media_type, CONFIG_MEDIA_TYPE);
        assert!(d.size <= CONFIG_LIMIT);
    }
    if let Ok(c) = parse_config(data) {
        for r in &c.records {
            assert!(r.key.starts_with("step/"));
            for e in &r.layers {
                assert!(e.layer < c.layers.len(), "index in range");
            }
        }
        for l in &c.layers {
            let d = registry::Digest::parse(&l.digest).expect("validated digest");
            assert!(!d.as_str().contains('/') && !d.as_str().contains(".."));
        }
        let bytes = serde_json::to_vec(&c).expect("a parsed config serializes");
        assert_eq!(parse_config(&bytes).expect("parses again"), c, "round trip");
    }
});
