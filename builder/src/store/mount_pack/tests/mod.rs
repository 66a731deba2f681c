//! Unit tests: round trips, determinism, reuse, the delta property at small chunk sizes, and
//! hostile manifests and chunks (each refused with nothing left behind).

use super::*;
use crate::snapshot::header::{self, EntryMeta};
use std::collections::BTreeSet;
use std::fs;
use std::io::{Cursor, Write};
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;
use tar::EntryType;
use testkit::pip_cache::{self, set_mtime, MTIME};
use testkit::tree::exact::assert_same_tree;

/// Small chunks, so a few MB of tree has dozens.
fn small() -> PackOptions {
    PackOptions {
        files: ChunkParams {
            min: 16 << 10,
            target: 64 << 10,
            max: 256 << 10,
        },
        dirs: ChunkParams {
            min: 4 << 10,
            target: 16 << 10,
            max: 64 << 10,
        },
        ..PackOptions::default()
    }
}

/// A tree with every kind a mount carries, odd names and modes included.
fn sample_tree(root: &Path) {
    fs::create_dir_all(root.join("a/b/c")).unwrap();
    fs::create_dir_all(root.join("empty")).unwrap();
    fs::create_dir_all(root.join("ro")).unwrap();
    fs::write(root.join("a/one"), b"one").unwrap();
    fs::write(root.join("a/b/c/deep"), vec![7u8; 70_000]).unwrap();
    fs::write(root.join(".wh.not-a-whiteout"), b"plain file").unwrap();
    // Names are bytes, not UTF-8.
    use std::os::unix::ffi::OsStrExt;
    let odd = root.join(std::ffi::OsStr::from_bytes(b"odd-\xff-name\n"));
    fs::write(&odd, b"odd").unwrap();
    set_mtime(&odd, MTIME + 1);
    let long = "n".repeat(120);
    fs::write(root.join("a").join(&long), b"long name").unwrap();
    fs::write(root.join("ro/inside"), b"x").unwrap();
    fs::write(root.join("exec"), b"#!/bin/sh\n").unwrap();
    fs::set_permissions(root.join("exec"), fs::Permissions::from_mode(0o4755)).unwrap();
    fs::hard_link(root.join("a/one"), root.join("a/one-link")).unwrap();
    symlink("../a/one", root.join("a/b/rel-link")).unwrap();
    symlink("/etc/passwd", root.join("abs-link")).unwrap();
    for p in [
        "a/one",
        "a/b/c/deep",
        "exec",
        ".wh.not-a-whiteout",
        "ro/inside",
    ] {
        set_mtime(&root.join(p), MTIME + 1);
    }
    set_mtime(&root.join("a").join(&long), MTIME + 2);
    set_mtime(&root.join("a/b/rel-link"), MTIME + 3);
    set_mtime(&root.join("abs-link"), MTIME + 3);
    pip_cache::settle_mtimes(root);
    fs::set_permissions(root.join("ro"), fs::Permissions::from_mode(0o555)).unwrap();
}

fn fetch_from(dir: &Path) -> impl FnMut(&Descriptor) -> io::Result<fs::File> + '_ {
    move |d| fs::File::open(dir.join(d.digest.trim_start_matches("sha256:")))
}

fn siblings(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn round_trip_keeps_the_tree() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    sample_tree(&src);
    let work = tmp.path().join("work");
    let packed = pack(&src, &work, None, &small()).unwrap();
    assert!(packed.skipped.is_empty(), "{:?}", packed.skipped);
    assert_eq!(packed.manifest.chunks.len(), packed.blobs.len());
    let parsed = parse_manifest(&packed.manifest_json).unwrap();
    assert_eq!(parsed, packed.manifest);

    let dest = tmp.path().join("dest");
    let stats = unpack(
        &parsed,
        fetch_from(&work),
        &dest,
        &RestoreOptions::default(),
    )
    .unwrap();
    assert_eq!(stats.entries, packed.manifest.entries);
    assert_same_tree(&src, &dest);
    let mode = fs::metadata(&dest).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, packed.manifest.root.mode);
    // zstd and uncompressed chunks restore the same tree.
    for compression in [
        codec::Compression::Zstd { level: 3 },
        codec::Compression::Uncompressed,
    ] {
        let opts = PackOptions {
            compression,
            ..small()
        };
        let work = tmp.path().join(format!("work-{}", compression.algorithm()));
        let packed = pack(&src, &work, None, &opts).unwrap();
        let dest = tmp.path().join(format!("dest-{}", compression.algorithm()));
        unpack(
            &packed.manifest,
            fetch_from(&work),
            &dest,
            &RestoreOptions::default(),
        )
        .unwrap();
        assert_same_tree(&src, &dest);
    }
}

#[test]
fn same_tree_same_manifest_across_runs_and_directories() {
    let tmp = tempfile::tempdir().unwrap();
    let (one, two) = (tmp.path().join("one"), tmp.path().join("elsewhere/two"));
    for root in [&one, &two] {
        pip_cache::generate(root, 7, 3 << 20, 2 << 20);
        sample_tree(&root.join("extra"));
        pip_cache::settle_mtimes(root);
    }
    let a = pack(&one, &tmp.path().join("w1"), None, &small()).unwrap();
    let b = pack(&two, &tmp.path().join("w2"), None, &small()).unwrap();
    let c = pack(&one, &tmp.path().join("w3"), None, &small()).unwrap();
    assert!(a.manifest.chunks.len() > 10, "{}", a.manifest.chunks.len());
    assert_eq!(a.manifest_digest, b.manifest_digest);
    assert_eq!(a.manifest_digest, c.manifest_digest);
    assert_eq!(a.manifest_json, b.manifest_json);
    // A different tree gives a different manifest.
    fs::write(one.join("extra/a/one"), b"two").unwrap();
    set_mtime(&one.join("extra/a/one"), MTIME + 1);
    let d = pack(&one, &tmp.path().join("w4"), None, &small()).unwrap();
    assert_ne!(a.manifest_digest, d.manifest_digest);
}

#[test]
fn an_unchanged_mount_writes_nothing_and_reuses_every_chunk() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    pip_cache::generate(&src, 3, 2 << 20, 1 << 20);
    let first = pack(&src, &tmp.path().join("w1"), None, &small()).unwrap();
    let work = tmp.path().join("w2");
    let again = pack(&src, &work, Some(&first.manifest), &small()).unwrap();
    assert_eq!(again.manifest_digest, first.manifest_digest);
    assert!(again.blobs.is_empty(), "{:?}", again.blobs);
    assert_eq!(again.reused.len(), first.blobs.len());
    assert!(siblings(&work).is_empty(), "{:?}", siblings(&work));
}

/// Chunk digests of `b` not in `a`, and their bytes.
fn changed(a: &MountManifest, b: &MountManifest) -> (usize, u64) {
    let old: BTreeSet<&str> = a.chunks.iter().map(|c| c.digest.as_str()).collect();
    let new: Vec<&Descriptor> = b
        .chunks
        .iter()
        .filter(|c| !old.contains(c.digest.as_str()))
        .collect();
    (new.len(), new.iter().map(|c| c.size).sum())
}

#[test]
fn one_new_file_changes_few_chunks() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let made = pip_cache::generate(&src, 11, 6 << 20, 1 << 20);
    assert!(made.files > 50, "{made:?}");
    let opts = small();
    let before = pack(&src, &tmp.path().join("w1"), None, &opts).unwrap();
    assert!(before.manifest.chunks.len() > 40);

    // A new wheel (larger than the target: a chunk alone) in a new directory.
    pip_cache::add_wheel(&src, 1, 300 << 10);
    let after = pack(&src, &tmp.path().join("w2"), Some(&before.manifest), &opts).unwrap();
    let (n, _) = changed(&before.manifest, &after.manifest);
    // Its chunk, the file chunk it split (at most two), the directory chunks of its new
    // directories and its parent's mtime.
    assert!((1..=4).contains(&n), "{n} chunks changed");
    assert_eq!(after.blobs.len(), n);

    // A small file in an existing directory: changes one or two file chunks and one dir chunk.
    let small_file = src.join("http-v2/extra-small");
    fs::write(&small_file, b"small").unwrap();
    let again = pack(&src, &tmp.path().join("w3"), Some(&after.manifest), &opts).unwrap();
    let (n, _) = changed(&after.manifest, &again.manifest);
    assert!((1..=3).contains(&n), "{n} chunks changed");
}

#[test]
fn fifos_and_sockets_are_skipped_with_a_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("kept"), b"k").unwrap();
    let fifo = std::ffi::CString::new(src.join("pipe").to_str().unwrap()).unwrap();
    // SAFETY: NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    let _sock = std::os::unix::net::UnixListener::bind(src.join("sock")).unwrap();
    let packed = pack(&src, &tmp.path().join("w"), None, &small()).unwrap();
    let skipped: Vec<&str> = packed.skipped.iter().map(|s| s.path.as_str()).collect();
    assert_eq!(skipped, ["pipe", "sock"]);
    assert!(packed.skipped[0].reason.contains("a fifo"));
    assert_eq!(packed.manifest.entries, 1);
}

mod hostile;
