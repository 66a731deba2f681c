//! The kit's own checks, for what the tests that use it cannot show by passing: the layer
//! rules of the parity tree-diff (the parity test runs only with docker and PALLET_PARITY=1),
//! the differences it reports, and a busybox tree that is the same bytes on every run.

use std::path::Path;
use testkit::tree::layers::{self, Layer};
use testkit::tree::{self, Kind, Node};
use testkit::{require, Need::*};

/// Writes an uncompressed layer of (path, entry type, link target, content) entries.
fn layer(path: &Path, entries: &[(&str, tar::EntryType, &str, &[u8])]) {
    let mut b = tar::Builder::new(Vec::new());
    for (name, kind, link, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(*kind);
        h.set_mode(if *kind == tar::EntryType::Directory {
            0o755
        } else {
            0o644
        });
        h.set_size(data.len() as u64);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        if link.is_empty() {
            b.append_data(&mut h, name, *data).unwrap();
        } else {
            b.append_link(&mut h, name, link).unwrap();
        }
    }
    std::fs::write(path, b.into_inner().unwrap()).unwrap();
}

#[test]
fn layers_apply_whiteouts_opaque_dirs_and_hard_links() {
    use tar::EntryType::{Directory as DIR, Link as LINK, Regular as FILE};
    let dir = tempfile::tempdir().unwrap();
    let (bottom, top) = (dir.path().join("bottom.tar"), dir.path().join("top.tar"));
    layer(
        &bottom,
        &[
            ("a/", DIR, "", b""),
            ("a/x", FILE, "", b"x"),
            ("a/y", FILE, "", b"y"),
            ("o/", DIR, "", b""),
            ("o/old", FILE, "", b"old"),
            ("f", FILE, "", b"f"),
        ],
    );
    layer(
        &top,
        &[
            ("a/.wh.x", FILE, "", b""),
            ("o/.wh..wh..opq", FILE, "", b""),
            ("o/new", FILE, "", b"new"),
            ("./h", LINK, "f", b""),
        ],
    );
    let mut notes = Vec::new();
    let read = layers::read_all(&[bottom, top], &mut notes);
    let t = layers::apply(&read, &mut notes);
    assert!(notes.is_empty(), "{notes:?}");
    let paths: Vec<&str> = t.keys().map(String::as_str).collect();
    assert_eq!(paths, ["a", "a/y", "f", "h", "o", "o/new"]);
    assert_eq!(t["h"], t["f"], "a hard link is its target's node");
    assert_eq!(t["o/new"].kind, Kind::file(b"new"));
    assert_eq!(
        read[1].touched_paths().into_iter().collect::<Vec<_>>(),
        ["-/a/x", "/h", "/o/* (opaque)", "/o/new"]
    );
}

#[test]
fn compare_names_each_path_and_what_differs() {
    let node = |kind: Kind, mode: u32, uid: u64| Node {
        kind,
        mode,
        uid,
        gid: 0,
    };
    let mut left = tree::Tree::new();
    let mut right = tree::Tree::new();
    left.insert("same".into(), node(Kind::Dir, 0o755, 0));
    right.insert("same".into(), node(Kind::Dir, 0o755, 0));
    left.insert("f".into(), node(Kind::file(b"a"), 0o644, 0));
    right.insert("f".into(), node(Kind::file(b"b"), 0o600, 1));
    left.insert("only-left".into(), node(Kind::Fifo, 0o644, 0));
    right.insert("l".into(), node(Kind::Symlink("t".into()), 0o777, 0));
    let d = tree::compare(&left, &right);
    let summary: Vec<(&str, Option<String>)> =
        d.iter().map(|d| (d.path.as_str(), d.delta())).collect();
    assert_eq!(
        summary,
        [
            ("f", Some("content, mode, owner".to_string())),
            ("l", None),
            ("only-left", None),
        ]
    );
    assert!(d[1].left.is_none() && d[2].right.is_none());
}

#[test]
fn the_busybox_tree_is_the_same_bytes_every_time() {
    if !require("busybox tree test", &[Busybox]) {
        return;
    }
    let rootfs = testkit::busybox::Rootfs::new();
    let tar = rootfs.tar();
    assert_eq!(tar, testkit::busybox::Rootfs::new().tar());
    assert_ne!(tar, rootfs.clone().file("etc/motd", "other\n").tar());
    // The tree as a tar and as a directory hold the same paths and content.
    let dir = tempfile::tempdir().unwrap();
    let (tar_path, root) = (dir.path().join("t.tar"), dir.path().join("root"));
    rootfs.write_tar(&tar_path);
    rootfs.write_dir(&root);
    let mut notes = Vec::new();
    let from_tar = layers::apply(&[Layer::read(&tar_path, &mut notes)], &mut notes);
    let on_disk = tree::from_dir(&root);
    let strip = |t: tree::Tree| -> Vec<(String, Kind, u32)> {
        t.into_iter().map(|(p, n)| (p, n.kind, n.mode)).collect()
    };
    assert_eq!(strip(from_tar.clone()), strip(on_disk));
    assert_eq!(from_tar["tmp"].mode, 0o1777);
    assert_eq!(from_tar["bin/sh"].kind, Kind::Symlink("busybox".into()));
}

#[test]
fn built_digest_reads_the_summary_with_or_without_a_name() {
    use testkit::progress::built_digest;
    let named = "#3 DONE 0.1s\n\npallet: built docker.io/library/app:1 sha256:abc (2.1MB, 3 layers) in 0.1s";
    assert_eq!(built_digest(named), "sha256:abc");
    let unnamed = "pallet: built sha256:def (2.1MB, 3 layers) in 0.1s; cache: 1 hit";
    assert_eq!(built_digest(unnamed), "sha256:def");
}
