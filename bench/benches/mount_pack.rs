//! Cache-mount transport (issue 17's `mounts=true`) at the size that matters: a synthetic
//! ~1 GB pip cache (testkit::pip_cache: thousands of small files, some medium, 1-50 MB
//! wheels, random contents). Measures pack and unpack times, then what a re-export uploads
//! after adding one 5 MB wheel, removing one wheel, and rewriting one wheel in place: the
//! chunks whose digests are new, and their bytes. Prints a markdown table.
//!
//! Run with `bash bench/mount-pack.sh` (sets the size and the scratch dir); directly:
//! `MOUNT_PACK_BYTES=1073741824 cargo bench -p pallet-bench --bench mount_pack`.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::time::Instant;

use pallet::store::mount_pack::{
    pack, unpack, Descriptor, MountManifest, PackOptions, PackedMount, RestoreOptions,
};
use testkit::pip_cache;

fn new_chunks(a: &MountManifest, b: &MountManifest) -> (usize, u64) {
    let old: BTreeSet<&str> = a.chunks.iter().map(|c| c.digest.as_str()).collect();
    let new: BTreeSet<(&str, u64)> = b
        .chunks
        .iter()
        .filter(|c| !old.contains(c.digest.as_str()))
        .map(|c| (c.digest.as_str(), c.size))
        .collect();
    (new.len(), new.iter().map(|(_, s)| s).sum())
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let start = Instant::now();
    let out = f();
    (out, start.elapsed().as_secs_f64())
}

fn main() {
    // cargo bench passes `--bench`; nothing else is read from the command line.
    let total: u64 = std::env::var("MOUNT_PACK_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1 << 30);
    let scratch = std::env::var("MOUNT_PACK_DIR").unwrap_or_else(|_| "/var/tmp".into());
    let tmp = tempfile::Builder::new()
        .prefix("pallet-mount-pack.")
        .tempdir_in(&scratch)
        .expect("scratch dir");
    let root = tmp.path();
    let cache = root.join("pip-cache");
    let (made, gen_s) = timed(|| pip_cache::generate(&cache, 2026, total, 50 << 20));
    println!(
        "generated {} files, {} ({} wheels of 1 MB or more) in {gen_s:.1} s",
        made.files,
        mb(made.bytes),
        made.wheels.len()
    );

    let mut rows: Vec<String> = Vec::new();
    let variants = [
        ("gzip (default)", PackOptions::default()),
        (
            "zstd",
            PackOptions {
                compression: codec::Compression::Zstd { level: 3 },
                ..PackOptions::default()
            },
        ),
    ];
    let mut first_gzip: Option<PackedMount> = None;
    for (name, opts) in &variants {
        let work = root.join(format!("work-{}", opts.compression.algorithm()));
        let (packed, pack_s) = timed(|| pack(&cache, &work, None, opts).unwrap());
        let m = &packed.manifest;
        let dest = root.join(format!("restored-{}", opts.compression.algorithm()));
        let fetch =
            |d: &Descriptor| fs::File::open(work.join(d.digest.trim_start_matches("sha256:")));
        let (_, unpack_s) = timed(|| unpack(m, fetch, &dest, &RestoreOptions::default()).unwrap());
        let (again, repack_s) =
            timed(|| pack(&cache, &root.join("work-again"), Some(m), opts).unwrap());
        assert!(again.blobs.is_empty());
        println!(
            "{name}: manifest {} ({} bytes of JSON)",
            packed.manifest_digest,
            packed.manifest_json.len()
        );
        rows.push(format!(
            "| {name} | {} | {} chunks, {} | {pack_s:.1} s | {unpack_s:.1} s | {repack_s:.1} s |",
            mb(m.content_size),
            m.chunks.len(),
            mb(m.blob_bytes()),
        ));
        fs::remove_dir_all(&dest).unwrap();
        let _ = fs::remove_dir_all(root.join("work-again"));
        if first_gzip.is_none() {
            first_gzip = Some(packed);
        } else {
            fs::remove_dir_all(&work).unwrap();
        }
    }
    println!();
    println!("| compression | content | manifest | pack (cold: no previous) | unpack | re-pack unchanged (previous given) |");
    println!("|---|---:|---:|---:|---:|---:|");
    for r in &rows {
        println!("{r}");
    }

    // Deltas, each against the manifest before it (what the registry holds then).
    let opts = PackOptions::default();
    let mut prev = first_gzip.unwrap().manifest;
    let mut delta_rows = Vec::new();
    let mut step = |what: String, cache: &Path, n: usize| {
        let work = root.join(format!("work-delta-{n}"));
        let (packed, s) = timed(|| pack(cache, &work, Some(&prev), &opts).unwrap());
        let (chunks, bytes) = new_chunks(&prev, &packed.manifest);
        delta_rows.push(format!(
            "| {what} | {chunks} of {} | {} | {s:.1} s |",
            packed.manifest.chunks.len(),
            mb(bytes),
        ));
        prev = packed.manifest;
        let _ = fs::remove_dir_all(&work);
    };
    let wheel = pip_cache::add_wheel(&cache, 7, 5 << 20);
    step("add one 5 MB wheel".into(), &cache, 1);
    fs::remove_file(cache.join(&wheel)).unwrap();
    step("remove it again".into(), &cache, 2);
    let victim = cache.join(&made.wheels[made.wheels.len() / 2]);
    let size = fs::metadata(&victim).unwrap().len();
    pip_cache::write_random(&victim, &mut pip_cache::Rng::new(5), size);
    step(
        format!("rewrite one {} wheel in place", mb(size)),
        &cache,
        3,
    );
    let removed = cache.join(&made.wheels[made.wheels.len() / 3]);
    let removed_size = fs::metadata(&removed).unwrap().len();
    fs::remove_file(&removed).unwrap();
    step(format!("remove one {} wheel", mb(removed_size)), &cache, 4);
    let small = cache.join("http-v2/0/new-small-entry.body");
    fs::create_dir_all(small.parent().unwrap()).unwrap();
    fs::write(&small, vec![1u8; 20_000]).unwrap();
    step("add one 20 kB http-cache entry".into(), &cache, 5);
    println!();
    println!("| change | new chunks | bytes to upload | pack (previous given) |");
    println!("|---|---:|---:|---:|");
    for r in &delta_rows {
        println!("{r}");
    }
}
