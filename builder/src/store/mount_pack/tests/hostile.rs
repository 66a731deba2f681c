//! Hostile input: manifests and chunks from a remote cache that lie (digests, sizes, names,
//! devices, xattrs), and a mount that changes or is swapped while it is packed. Each is refused
//! with a clear error and nothing left behind.

use super::*;

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
