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

// ---- hostile input ----

fn packed_sample(tmp: &Path) -> (PackedMount, std::path::PathBuf) {
    let src = tmp.join("src");
    sample_tree(&src);
    let work = tmp.join("work");
    (pack(&src, &work, None, &small()).unwrap(), work)
}

#[test]
fn hostile_manifests_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (packed, _) = packed_sample(tmp.path());
    let good: serde_json::Value = serde_json::from_slice(&packed.manifest_json).unwrap();
    let refused = |v: serde_json::Value, what: &str| {
        let err = parse_manifest(&serde_json::to_vec(&v).unwrap()).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(what), "{msg} should say {what}");
    };
    let with = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut v = good.clone();
        f(&mut v);
        v
    };
    refused(
        with(&|v| v["mediaType"] = "application/vnd.oci.image.manifest.v1+json".into()),
        "media type",
    );
    refused(with(&|v| v["version"] = 2.into()), "version Some(2)");
    refused(
        with(&|v| v["chunks"][0]["digest"] = "sha256:abc".into()),
        "digest",
    );
    refused(
        with(&|v| v["chunks"][0]["digest"] = format!("sha512:{}", "a".repeat(128)).into()),
        "digest",
    );
    refused(
        with(&|v| v["chunks"][0]["mediaType"] = "text/plain".into()),
        "not a tar layer",
    );
    refused(with(&|v| v["chunks"][0]["size"] = 0.into()), "size 0");
    refused(
        with(&|v| v["chunks"][0]["tarSize"] = 1000.into()),
        "512-byte",
    );
    refused(with(&|v| v["root"]["mode"] = 0o40755.into()), "root mode");
    refused(with(&|v| v["extra"] = 1.into()), "unknown field");
    let many: Vec<serde_json::Value> = (0..MAX_CHUNKS + 1)
        .map(|_| good["chunks"][0].clone())
        .collect();
    refused(
        with(&|v| v["chunks"] = many.clone().into()),
        "over the limit",
    );
    let err = parse_manifest(&vec![b' '; MAX_MANIFEST_BYTES + 1]).unwrap_err();
    assert!(err.to_string().contains("limit"), "{err}");
    let err = parse_manifest(b"not json").unwrap_err();
    assert!(err.to_string().contains("invalid JSON"), "{err}");
}

/// Asserts `result` failed with a message containing `what`, that `dest` was not made, and
/// that no temporary sibling is left beside it.
fn refused_cleanly<T: std::fmt::Debug>(result: Result<T, MountPackError>, dest: &Path, what: &str) {
    let before: BTreeSet<String> = siblings(dest.parent().unwrap());
    let err = result.unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(what), "{msg:?} should say {what:?}");
    assert!(!dest.exists(), "{} was made", dest.display());
    let left: Vec<String> = before
        .iter()
        .filter(|n| n.contains(".restore-"))
        .cloned()
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn a_chunk_that_is_not_its_digest_restores_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (packed, work) = packed_sample(tmp.path());
    let target = &packed.manifest.chunks[packed.manifest.chunks.len() / 2].digest;
    let dests = tmp.path().join("dests");
    fs::create_dir_all(&dests).unwrap();
    let opts = RestoreOptions::default();

    // One flipped byte in a middle chunk: the chunks before it were unpacked, but nothing is
    // visible.
    let dest = dests.join("flipped");
    let r = unpack(
        &packed.manifest,
        |d: &Descriptor| {
            let mut bytes = fs::read(work.join(d.digest.trim_start_matches("sha256:")))?;
            if &d.digest == target {
                let i = bytes.len() / 2;
                bytes[i] ^= 0x55;
            }
            Ok(Cursor::new(bytes))
        },
        &dest,
        &opts,
    );
    refused_cleanly(r, &dest, "refused");

    // Truncated, and one byte longer than declared.
    for (name, f) in [
        (
            "short",
            (|b: &mut Vec<u8>| b.truncate(b.len() - 1)) as fn(&mut Vec<u8>),
        ),
        ("long", |b: &mut Vec<u8>| b.push(0)),
    ] {
        let dest = dests.join(name);
        let r = unpack(
            &packed.manifest,
            |d: &Descriptor| {
                let mut bytes = fs::read(work.join(d.digest.trim_start_matches("sha256:")))?;
                if &d.digest == target {
                    f(&mut bytes);
                }
                Ok(Cursor::new(bytes))
            },
            &dest,
            &opts,
        );
        refused_cleanly(r, &dest, "bytes where the manifest says");
    }

    // A fetch that fails.
    let dest = dests.join("fetch");
    let r = unpack(
        &packed.manifest,
        |d: &Descriptor| {
            if &d.digest == target {
                return Err(io::Error::other("HTTP 500"));
            }
            fs::File::open(work.join(d.digest.trim_start_matches("sha256:")))
        },
        &dest,
        &opts,
    );
    refused_cleanly(r, &dest, "HTTP 500");
    let left: Vec<String> = siblings(&dests).into_iter().collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_non_empty_mount_is_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let (packed, work) = packed_sample(tmp.path());
    let dest = tmp.path().join("dest");
    fs::create_dir_all(&dest).unwrap();
    fs::write(dest.join("local"), b"warm").unwrap();
    let err = unpack(
        &packed.manifest,
        fetch_from(&work),
        &dest,
        &RestoreOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(err, MountPackError::NotEmpty { .. }), "{err}");
    assert_eq!(fs::read(dest.join("local")).unwrap(), b"warm");
    // An empty one is filled.
    let empty = tmp.path().join("empty");
    fs::create_dir_all(&empty).unwrap();
    unpack(
        &packed.manifest,
        fetch_from(&work),
        &empty,
        &RestoreOptions::default(),
    )
    .unwrap();
    assert_same_tree(&tmp.path().join("src"), &empty);
}

/// One crafted tar entry.
struct Crafted<'a> {
    path: &'a [u8],
    kind: EntryType,
    link: Option<&'a [u8]>,
    data: &'a [u8],
    device: Option<(u32, u32)>,
    xattrs: Vec<(String, Vec<u8>)>,
}

fn file<'a>(path: &'a [u8], data: &'a [u8]) -> Crafted<'a> {
    Crafted {
        path,
        kind: EntryType::Regular,
        link: None,
        data,
        device: None,
        xattrs: Vec::new(),
    }
}

/// A manifest of one gzip chunk holding `entries`, with true digests: only the contents are
/// hostile. The blob is written to `work`.
fn crafted_manifest(work: &Path, entries: &[Crafted]) -> MountManifest {
    let mut tar = Vec::new();
    for e in entries {
        let meta = EntryMeta {
            path: e.path,
            kind: e.kind,
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime: MTIME,
            size: e.data.len() as u64,
            link: e.link,
            device: e.device,
            xattrs: &e.xattrs,
        };
        header::write_header(&mut tar, &meta).unwrap();
        tar.extend_from_slice(e.data);
        header::pad(&mut tar, e.data.len() as u64).unwrap();
    }
    header::write_trailer(&mut tar).unwrap();
    let blob = codec::Compression::default()
        .encode(&mut Cursor::new(&tar), None, Vec::new())
        .unwrap();
    let digest = manifest::sha256_digest(&blob);
    fs::create_dir_all(work).unwrap();
    fs::write(work.join(digest.trim_start_matches("sha256:")), &blob).unwrap();
    MountManifest {
        media_type: MANIFEST_MEDIA_TYPE.into(),
        version: MANIFEST_VERSION,
        root: RootMeta {
            mode: 0o755,
            uid: 0,
            gid: 0,
        },
        chunks: vec![Descriptor {
            media_type: codec::MEDIA_OCI_GZIP.into(),
            digest,
            size: blob.len() as u64,
            diff_id: manifest::sha256_digest(&tar),
            tar_size: tar.len() as u64,
            entries: entries.len() as u64,
        }],
        entries: entries.len() as u64,
        content_size: 0,
    }
}

#[test]
fn hostile_chunks_are_confined_and_refused() {
    let tmp = tempfile::tempdir().unwrap();
    // A canary beside the destinations: nothing may reach it.
    let canary = tmp.path().join("canary");
    fs::create_dir_all(&canary).unwrap();
    fs::write(canary.join("secret"), b"keep").unwrap();
    let dests = tmp.path().join("dests");
    fs::create_dir_all(&dests).unwrap();
    let canary_abs = canary.to_str().unwrap().as_bytes().to_vec();
    let canary_link = [canary_abs.as_slice(), b"/secret"].concat();
    let cases: Vec<(&str, Vec<Crafted>, &str)> = vec![
        ("dotdot", vec![file(b"../canary/secret", b"owned")], "`..`"),
        (
            "symlink-then-write",
            vec![
                Crafted {
                    path: b"esc",
                    kind: EntryType::Symlink,
                    link: Some(&canary_abs),
                    data: b"",
                    device: None,
                    xattrs: Vec::new(),
                },
                file(b"esc/secret", b"owned"),
            ],
            "symlink",
        ),
        (
            "hardlink-out",
            vec![Crafted {
                path: b"h",
                kind: EntryType::Link,
                link: Some(&canary_link),
                data: b"",
                device: None,
                xattrs: Vec::new(),
            }],
            "does not exist",
        ),
        (
            "hardlink-dotdot",
            vec![Crafted {
                path: b"h",
                kind: EntryType::Link,
                link: Some(b"../canary/secret"),
                data: b"",
                device: None,
                xattrs: Vec::new(),
            }],
            "`..`",
        ),
        (
            "device",
            vec![Crafted {
                path: b"sda",
                kind: EntryType::Block,
                link: None,
                data: b"",
                device: Some((8, 0)),
                xattrs: Vec::new(),
            }],
            "device node",
        ),
        (
            "capability",
            vec![Crafted {
                xattrs: vec![("security.capability".into(), vec![1, 0, 0, 2])],
                ..file(b"cap", b"#!/bin/sh\n")
            }],
            "extended attributes",
        ),
    ];
    for (name, entries, what) in cases {
        let work = tmp.path().join(format!("work-{name}"));
        let manifest = crafted_manifest(&work, &entries);
        let dest = dests.join(name);
        let r = unpack(
            &manifest,
            fetch_from(&work),
            &dest,
            &RestoreOptions::default(),
        );
        refused_cleanly(r, &dest, what);
        assert_eq!(fs::read(canary.join("secret")).unwrap(), b"keep", "{name}");
        assert_eq!(siblings(&canary).len(), 1, "{name}");
    }
    assert!(siblings(&dests).is_empty(), "{:?}", siblings(&dests));

    // An absolute name stays beneath the destination.
    let work = tmp.path().join("work-abs");
    let abs = [canary_abs.as_slice(), b"/secret"].concat();
    let manifest = crafted_manifest(&work, &[file(&abs, b"inside")]);
    let dest = dests.join("abs");
    unpack(
        &manifest,
        fetch_from(&work),
        &dest,
        &RestoreOptions::default(),
    )
    .unwrap();
    assert_eq!(fs::read(canary.join("secret")).unwrap(), b"keep");
    let inside = dest.join(String::from_utf8(abs[1..].to_vec()).unwrap());
    assert_eq!(fs::read(inside).unwrap(), b"inside");
}

#[test]
fn a_manifest_over_the_restore_limit_fetches_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (packed, _) = packed_sample(tmp.path());
    let opts = RestoreOptions {
        max_tar_bytes: 1024,
        ..RestoreOptions::default()
    };
    let dest = tmp.path().join("dest");
    let mut fetched = 0;
    let r = unpack(
        &packed.manifest,
        |_: &Descriptor| -> io::Result<Cursor<Vec<u8>>> {
            fetched += 1;
            Ok(Cursor::new(Vec::new()))
        },
        &dest,
        &opts,
    );
    refused_cleanly(r, &dest, "restore limit");
    assert_eq!(fetched, 0);
}

#[test]
fn a_work_dir_inside_the_mount_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("f"), b"x").unwrap();
    let err = pack(&src, &src.join("work"), None, &small()).unwrap_err();
    assert!(err.to_string().contains("inside the mount"), "{err}");
}

#[test]
fn a_file_that_changes_while_packed_fails_the_pack() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("grows"), b"1234").unwrap();
    fs::write(src.join("shrinks"), b"1234").unwrap();
    let walked = walk::walk(&src).unwrap();
    // Between the walk and the read, as a step still writing to the mount would.
    fs::write(src.join("grows"), b"12345678").unwrap();
    let mut out = Vec::new();
    let err = io::copy(
        &mut tar_stream::TarStream::new(&walked.root_dir, &walked.files),
        &mut out,
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("4 bytes when walked, now 8"),
        "{err}"
    );

    let walked = walk::walk(&src).unwrap();
    let grows = walked.files.iter().find(|e| e.rel == b"grows").unwrap();
    // Same size at open, longer by the time its end is read.
    let mut stream = tar_stream::TarStream::new(&walked.root_dir, std::slice::from_ref(grows));
    let mut header = [0u8; 512];
    io::Read::read_exact(&mut stream, &mut header).unwrap();
    fs::OpenOptions::new()
        .append(true)
        .open(src.join("grows"))
        .unwrap()
        .write_all(b"more")
        .unwrap();
    let err = io::copy(&mut stream, &mut out).unwrap_err();
    assert!(err.to_string().contains("grew past 8 bytes"), "{err}");
}

#[test]
fn a_directory_swapped_for_a_symlink_is_not_followed_out_of_the_mount() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let outside = tmp.path().join("outside");
    fs::create_dir_all(src.join("d")).unwrap();
    fs::create_dir_all(&outside).unwrap();
    fs::write(src.join("d/f"), b"mine").unwrap();
    fs::write(outside.join("f"), b"evil").unwrap();
    let walked = walk::walk(&src).unwrap();
    // Between the walk and the read: `d` becomes a symlink to a directory outside.
    fs::rename(src.join("d"), src.join("d.old")).unwrap();
    symlink(&outside, src.join("d")).unwrap();
    let mut out = Vec::new();
    let err = io::copy(
        &mut tar_stream::TarStream::new(&walked.root_dir, &walked.files),
        &mut out,
    )
    .unwrap_err();
    assert!(err.to_string().contains("changed while packed"), "{err}");
    assert!(
        !out.windows(4).any(|w| w == b"evil"),
        "read through the symlink"
    );
}
