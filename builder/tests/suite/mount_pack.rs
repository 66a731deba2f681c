//! Cache-mount transport (issue 17's `mounts=true`) on real files: a ~50 MB synthetic pip
//! cache packed into chunks, restored from only the chunks an exporter would have uploaded,
//! and the delta property: adding, removing or changing one wheel changes one or two file
//! chunks (and a small directory chunk), so a re-export uploads about the change.
//! The 1 GB measurement is `bench/mount-pack.sh`.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use pallet::store::mount_pack::{
    pack, parse_manifest, unpack, Descriptor, MountManifest, PackOptions, PackedMount,
    RestoreOptions,
};
use testkit::pip_cache::{self, set_mtime, MTIME};
use testkit::tree::exact::assert_same_tree;

/// What a re-export uploads: the chunks not already in the "registry" (a directory of blobs
/// by digest, as HEAD-by-digest sees it), copied there.
struct Upload {
    chunks: usize,
    bytes: u64,
}

fn upload(packed: &PackedMount, registry: &Path) -> Upload {
    fs::create_dir_all(registry).unwrap();
    let mut up = Upload {
        chunks: 0,
        bytes: 0,
    };
    for chunk in &packed.manifest.chunks {
        let at = registry.join(chunk.digest.trim_start_matches("sha256:"));
        if at.exists() {
            continue;
        }
        let blob = packed
            .blobs
            .iter()
            .find(|b| b.descriptor == *chunk)
            .unwrap_or_else(|| panic!("{} is neither written nor uploaded", chunk.digest));
        fs::copy(&blob.path, &at).unwrap();
        up.chunks += 1;
        up.bytes += chunk.size;
    }
    up
}

fn restore(manifest_json: &[u8], registry: &Path, dest: &Path) {
    // The manifest as an importer gets it: bytes from elsewhere, parsed with the limits.
    let manifest: MountManifest = parse_manifest(manifest_json).unwrap();
    let fetch =
        |d: &Descriptor| fs::File::open(registry.join(d.digest.trim_start_matches("sha256:")));
    unpack(&manifest, fetch, dest, &RestoreOptions::default()).unwrap();
}

fn file_chunks_changed(a: &MountManifest, b: &MountManifest) -> Vec<u64> {
    let old: BTreeSet<&str> = a.chunks.iter().map(|c| c.digest.as_str()).collect();
    b.chunks
        .iter()
        .filter(|c| !old.contains(c.digest.as_str()))
        .map(|c| c.size)
        .collect()
}

#[test]
fn a_pip_cache_travels_in_chunks_and_one_wheel_uploads_about_one_wheel() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("pip-cache");
    let made = pip_cache::generate(&cache, 17, 50 << 20, 12 << 20);
    // Owners travel too (when root restores).
    let owned: PathBuf = cache.join("http-v2/owned-by-1000");
    fs::write(&owned, b"owned").unwrap();
    std::os::unix::fs::lchown(&owned, Some(1000), Some(1000)).unwrap();
    set_mtime(&owned, MTIME);
    pip_cache::settle_mtimes(&cache);
    assert!(made.files > 100 && !made.wheels.is_empty(), "{made:?}");

    let registry = tmp.path().join("registry");
    let opts = PackOptions::default();
    let first = pack(&cache, &tmp.path().join("work-1"), None, &opts).unwrap();
    let up = upload(&first, &registry);
    assert_eq!(up.chunks, first.manifest.chunks.len());
    eprintln!(
        "{} files, {} bytes -> {} chunks, {} bytes of blobs",
        made.files,
        made.bytes,
        first.manifest.chunks.len(),
        first.manifest.blob_bytes()
    );
    assert!(first.manifest.chunks.len() >= 4);

    // A fresh runner restores it from the registry alone.
    let runner_b = tmp.path().join("runner-b/mount");
    fs::create_dir_all(runner_b.parent().unwrap()).unwrap();
    restore(&first.manifest_json, &registry, &runner_b);
    assert_same_tree(&cache, &runner_b);
    // Packing the restored copy gives the same manifest: the format is machine-independent.
    let repacked = pack(&runner_b, &tmp.path().join("work-b"), None, &opts).unwrap();
    assert_eq!(repacked.manifest_digest, first.manifest_digest);

    // One new 5 MB wheel: its own chunk, plus directory chunks; nothing else.
    let wheel = pip_cache::add_wheel(&cache, 99, 5 << 20);
    let second = pack(
        &cache,
        &tmp.path().join("work-2"),
        Some(&first.manifest),
        &opts,
    )
    .unwrap();
    let up = upload(&second, &registry);
    let changed = file_chunks_changed(&first.manifest, &second.manifest);
    eprintln!(
        "added a 5 MB wheel: {} chunks, {} bytes uploaded",
        up.chunks, up.bytes
    );
    assert_eq!(up.chunks, changed.len());
    assert!((1..=3).contains(&up.chunks), "{} chunks changed", up.chunks);
    assert!(
        up.bytes < (5 << 20) + (3 << 20),
        "{} bytes uploaded",
        up.bytes
    );
    assert_eq!(
        second.blobs.len(),
        up.chunks,
        "unchanged chunks are not written again"
    );

    // Another fresh runner gets the new tree from what is in the registry now.
    let runner_c = tmp.path().join("runner-c");
    restore(&second.manifest_json, &registry, &runner_c);
    assert_same_tree(&cache, &runner_c);

    // Remove a wheel; change one (same size, new contents: a rebuilt package).
    fs::remove_file(cache.join(&wheel)).unwrap();
    let third = pack(
        &cache,
        &tmp.path().join("work-3"),
        Some(&second.manifest),
        &opts,
    )
    .unwrap();
    let up = upload(&third, &registry);
    eprintln!(
        "removed it: {} chunks, {} bytes uploaded",
        up.chunks, up.bytes
    );
    assert!(
        up.chunks <= 3 && up.bytes < 3 << 20,
        "{} chunks, {} bytes",
        up.chunks,
        up.bytes
    );

    let victim = cache.join(&made.wheels[0]);
    let size = fs::metadata(&victim).unwrap().len();
    pip_cache::write_random(&victim, &mut pip_cache::Rng::new(5), size);
    let fourth = pack(
        &cache,
        &tmp.path().join("work-4"),
        Some(&third.manifest),
        &opts,
    )
    .unwrap();
    let up = upload(&fourth, &registry);
    eprintln!(
        "changed a {size}-byte wheel: {} chunks, {} bytes uploaded",
        up.chunks, up.bytes
    );
    assert!((1..=2).contains(&up.chunks), "{} chunks", up.chunks);
    assert!(up.bytes < size + (16 << 20), "{} bytes", up.bytes);

    let runner_d = tmp.path().join("runner-d");
    restore(&fourth.manifest_json, &registry, &runner_d);
    assert_same_tree(&cache, &runner_d);
}
