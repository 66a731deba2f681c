//! Layer tars with hostile entries through both unpackers: the store's (`pallet import`,
//! snapshot/unpack.rs) and ADD's (exec/fileop/unpack.rs).

use super::case;
use super::kit::*;
use std::path::{Path, PathBuf};
use std::time::Duration;

// ---------------------------------------------------------------------------------------------
// Layer tars through `pallet import`
// ---------------------------------------------------------------------------------------------

#[test]
fn layer_tars_through_import() {
    if !can_run("hostile layer tars through import") {
        return;
    }
    let arena = Arena::empty();
    let s = arena.sentinel();
    let outside = arena.outside();
    let out = outside.to_string_lossy().into_owned();
    let snapshots = arena.root().join("snapshots");
    let in_store = |name: &str| find_named(&snapshots, name);
    let cases: Vec<(&str, Vec<E>, Want)> = vec![
        (
            "import-dotdot",
            vec![
                file("ok", "fine"),
                file(format!("../../../../../../../../tmp/{s}"), "pwned"),
            ],
            fails(&["`..` component", "layers may not refer above their root"]),
        ),
        (
            "import-dotdot",
            vec![file(format!("a/../../{s}"), "pwned")],
            fails(&["`..` component"]),
        ),
        (
            // GNU tar 1.29 turned `etc/motd/../etc/shadow` into `etc/shadow` (extracting a
            // member the user did not ask for): a `..` anywhere is refused, not rewritten.
            "tar-pointyfeather",
            vec![
                file("etc/motd", "motd"),
                file(format!("etc/motd/../etc/{s}"), "pwned"),
            ],
            fails(&["`..` component"]),
        ),
        (
            "import-absolute",
            vec![
                file(format!("/tmp/{s}"), "absolute"),
                file(format!("/etc/{s}"), "abs"),
            ],
            Want::Succeeds(Box::new(|_| {
                let found = in_store(&s);
                assert_eq!(
                    found.len(),
                    2,
                    "both absolute entries land in the store: {found:?}"
                );
                assert!(found.iter().all(|p| p.starts_with(&snapshots)));
            })),
        ),
        (
            "import-symlink-then-file",
            vec![
                sym("esc", &out),
                file(format!("esc/{s}"), "pwned"),
                file("esc/secret", "overwritten"),
            ],
            fails(&[
                "\"esc\" is a symlink",
                "layers may not create or remove files through symlinks",
            ]),
        ),
        (
            "import-symlink-dotdot",
            vec![
                sym("up", "../../../../../../.."),
                file(format!("up/tmp/{s}"), "pwned"),
            ],
            fails(&["\"up\" is a symlink"]),
        ),
        (
            "import-symlink-dotdot",
            vec![
                dir("d"),
                sym("d/up", ".."),
                sym("d/up2", "up/.."),
                file(format!("d/up2/{s}"), "x"),
            ],
            fails(&["is a symlink"]),
        ),
        (
            "import-symlink-loop",
            vec![sym("a", "b"), sym("b", "a"), file("a/x", "x")],
            fails(&["\"a\" is a symlink"]),
        ),
        (
            "import-hardlink-dotdot",
            vec![hard("h", "../../etc/passwd")],
            fails(&["hardlink target \"../../etc/passwd\"", "`..` component"]),
        ),
        (
            "import-hardlink-dotdot",
            vec![hard("h", format!("../../../../..{out}/secret"))],
            fails(&["`..` component"]),
        ),
        (
            "import-hardlink-absolute",
            vec![hard("h", "/etc/shadow")],
            fails(&["hardlink target \"/etc/shadow\" does not exist"]),
        ),
        (
            "import-hardlink-absolute",
            vec![hard("h", format!("{out}/secret"))],
            fails(&["does not exist"]),
        ),
        (
            "import-whiteout-dotdot",
            vec![dir("a"), file("a/.wh...", "")],
            fails(&["whiteout names \"..\""]),
        ),
        (
            "import-whiteout-dotdot",
            vec![file("../.wh.secret", "")],
            fails(&["`..` component"]),
        ),
        (
            "import-whiteout-dotdot",
            vec![file(".wh..", "")],
            fails(&["whiteout names \".\""]),
        ),
        (
            "import-whiteout-through-symlink",
            vec![
                sym("esc", &out),
                file("esc/.wh.secret", ""),
                file("esc/.wh.empty", ""),
            ],
            fails(&["\"esc\" is a symlink"]),
        ),
        (
            "import-opaque-odd-places",
            vec![
                file(".wh..wh..opq", ""),
                dir(".wh..wh..opq"),
                file(".wh..wh..opq/x", "x"),
                file("f", "kept"),
            ],
            Want::Succeeds(Box::new(|_| {})),
        ),
        (
            "import-opaque-odd-places",
            vec![sym("esc", &out), file("esc/.wh..wh..opq", "")],
            fails(&["\"esc\" is a symlink"]),
        ),
        (
            "import-nul-name",
            vec![file(b"a\0/../../../../tmp/x", "x")],
            fails(&["NUL"]),
        ),
        (
            "import-dir-then-symlink",
            vec![
                dir("d"),
                file("d/f", "f"),
                sym("d", &out),
                file(format!("d/{s}"), "pwned"),
            ],
            fails(&["\"d\" is a symlink"]),
        ),
    ];
    for (n, (id, entries, want)) in cases.iter().enumerate() {
        let c = case(id);
        let path = arena.input(&format!("{n}-{id}.tar"));
        std::fs::write(&path, tar(entries)).unwrap();
        let ran = run(&arena
            .pallet()
            .arg("import")
            .arg(&path)
            .args(["-t", &format!("evil-{n}:1")]));
        judge(&arena, c, &ran, want);
    }
}

/// Device nodes in a layer are made inside the store's snapshot only, and a container of the
/// image cannot open them (runc's device cgroup): a layer cannot hand a build the host's
/// memory or disks.
#[test]
fn layer_device_nodes_stay_in_the_store_and_cannot_be_opened() {
    if !can_run("hostile device nodes") {
        return;
    }
    let c = case("import-devices");
    let arena = Arena::empty();
    let (major, minor) = host_disk();
    let entries = [
        E::Char(b"mem".to_vec(), 1, 1),
        E::Char(b"kmsg".to_vec(), 1, 11),
        E::Block(b"disk".to_vec(), major, minor),
        E::Fifo(b"fifo".to_vec()),
    ];
    let path = arena.input("devices.tar");
    std::fs::write(&path, busybox_plus(&entries)).unwrap();
    let imported = run(&arena
        .pallet()
        .arg("import")
        .arg(&path)
        .args(["-t", "devs:1"]));
    imported.succeeded();
    // The nodes are in the store's snapshot and nowhere else.
    let snapshots = arena.root().join("snapshots");
    let nodes: Vec<PathBuf> = testkit::files::find_dirs(&snapshots, "bin")
        .iter()
        .filter_map(|bin| bin.parent().map(|p| p.join("mem")))
        .filter(|p| std::fs::symlink_metadata(p).is_ok())
        .collect();
    assert_eq!(nodes.len(), 1, "one snapshot holds /mem: {nodes:?}");
    let probe = "for d in mem kmsg disk; do \
                 if head -c 1 /$d >/dev/null 2>&1; then echo READ-$d; else echo DENIED-$d; fi; \
                 if printf x 2>/dev/null >> /$d; then echo WROTE-$d; fi; done";
    let ran = run(&arena
        .pallet()
        .args(["run", "devs:1", "/bin/sh", "-c", probe]));
    ran.succeeded();
    for d in ["mem", "kmsg", "disk"] {
        assert!(ran.out().contains(&format!("DENIED-{d}")), "{}", ran.show());
        assert!(!ran.out().contains(&format!("WROTE-{d}")), "{}", ran.show());
    }
    arena.assert_confined(c, &[&imported, &ran]);
}

/// A layer entry whose name is 20 000 components deep (a 40 KB PAX path) must be refused at
/// once, not unpacked level by level with every prefix of the path remembered.
#[test]
fn deep_entry_name_is_refused_at_once() {
    if !can_run("hostile deep entry name") {
        return;
    }
    let c = case("import-deep-name");
    let arena = Arena::empty();
    let name = format!("{}x", "a/".repeat(20_000));
    let path = arena.input("deep.tar");
    std::fs::write(&path, tar(&[file(name, "x")])).unwrap();
    // A 4 GiB address space: a regression fails here, not in the machine's OOM killer.
    let ran = run_bounded(
        &arena
            .pallet()
            .arg("import")
            .arg(&path)
            .args(["-t", "deep:1"]),
        Duration::from_secs(60),
        Some(4 << 30),
    );
    ran.failed_with(&["too long"]);
    assert!(
        ran.stderr.len() < 8192,
        "the name is echoed whole: {}",
        ran.show()
    );
    assert!(ran.secs < 5.0, "took {:.1}s: {}", ran.secs, ran.show());
    assert!(
        ran.max_rss_mib < 200,
        "{} MiB: {}",
        ran.max_rss_mib,
        ran.show()
    );
    arena.assert_confined(c, &[&ran]);
    arena.assert_no_leftovers(c);
}

/// A 50 MB GNU long name: refused as an oversized extension header, with little memory and
/// a short message.
#[test]
fn huge_entry_name_is_refused() {
    if !can_run("hostile huge entry name") {
        return;
    }
    let c = case("import-huge-name");
    let arena = Arena::empty();
    // GNU 'L' header: the name as the data of a pseudo-entry named ././@LongLink.
    let name = vec![b'n'; 50 << 20];
    let mut bytes = header(
        b"././@LongLink",
        b'L',
        name.len() as u64 + 1,
        0o644,
        b"",
        (0, 0),
    )
    .to_vec();
    bytes.extend_from_slice(&name);
    bytes.push(0);
    pad(&mut bytes);
    bytes.extend(tar(&[file("x", "x")]));
    let path = arena.input("huge.tar");
    std::fs::write(&path, bytes).unwrap();
    let ran = run_bounded(
        &arena
            .pallet()
            .arg("import")
            .arg(&path)
            .args(["-t", "huge:1"]),
        Duration::from_secs(30),
        Some(4 << 30),
    );
    ran.failed_with(&["extension header", "more than 1 MiB"]);
    assert!(
        ran.max_rss_mib < 512,
        "{} MiB: {}",
        ran.max_rss_mib,
        ran.show()
    );
    arena.assert_confined(c, &[&ran]);
    arena.assert_no_leftovers(c);
}

// ---------------------------------------------------------------------------------------------
// Layer tars through ADD of a local archive
// ---------------------------------------------------------------------------------------------

/// Whether `p` is a regular file holding `content` (symlinks not followed).
fn is_file_with(p: &Path, content: &str) -> bool {
    std::fs::symlink_metadata(p).is_ok_and(|m| m.is_file())
        && std::fs::read_to_string(p).is_ok_and(|c| c == content)
}

/// One ADD case: its id, the archive's entries, and what output `n` must show.
type AddCase<'a> = (
    &'static str,
    Vec<E>,
    Box<dyn Fn(usize) -> Want<'static> + 'a>,
);

/// `ADD evil.tar /dest/` (buildah CVE-2020-10696's shape): each archive is extracted below
/// the destination or refused; a symlink in it never leads the extraction out.
#[test]
fn layer_tars_through_add() {
    if !can_run("hostile archives through ADD") {
        return;
    }
    let arena = Arena::busybox();
    let s = arena.sentinel();
    let out = arena.outside().to_string_lossy().into_owned();
    let (major, minor) = host_disk();
    // Where an absolute host path lands below the destination of output `n`.
    let below = |n: usize, abs: &str| {
        arena
            .out(&n.to_string())
            .join("dest")
            .join(abs.trim_start_matches('/'))
    };
    let cases: Vec<AddCase> = vec![
        (
            "add-tar-dotdot",
            vec![
                file("ok", "ok"),
                file(format!("../../../../../../../../tmp/{s}"), "pwned"),
            ],
            Box::new(|_| fails(&["outside the extraction directory"])),
        ),
        (
            "add-tar-dotdot",
            vec![file(format!("a/../../../{s}"), "pwned")],
            Box::new(|_| fails(&["outside the extraction directory"])),
        ),
        (
            "add-tar-deep-name",
            vec![file(format!("{}x", "a/".repeat(20_000)), "x")],
            Box::new(|_| fails(&["archive path is too long", "over the 4096"])),
        ),
        (
            // CVE-2016-6321's shape through ADD: the `..` climbs out of the destination.
            "tar-pointyfeather",
            vec![
                file("etc/motd", "motd"),
                file(format!("etc/motd/../../../../../tmp/{s}"), "pwned"),
            ],
            Box::new(|_| fails(&["outside the extraction directory"])),
        ),
        (
            "add-tar-absolute",
            vec![
                file(format!("/tmp/{s}"), "abs"),
                file(format!("/etc/{s}"), "abs"),
            ],
            Box::new(|n| {
                let (a, b) = (
                    below(n, &format!("/tmp/{s}")),
                    below(n, &format!("/etc/{s}")),
                );
                Want::Succeeds(Box::new(move |_| {
                    assert!(
                        is_file_with(&a, "abs") && is_file_with(&b, "abs"),
                        "{a:?} {b:?}"
                    );
                }))
            }),
        ),
        (
            "add-tar-symlink-then-file",
            vec![
                sym("esc", &out),
                file(format!("esc/{s}"), "pwned"),
                file("esc/secret", "overwritten"),
            ],
            Box::new(|n| {
                let landed = below(n, &format!("{out}/{s}"));
                let overwritten = below(n, &format!("{out}/secret"));
                Want::Succeeds(Box::new(move |_| {
                    assert!(is_file_with(&landed, "pwned"), "{landed:?}");
                    assert!(is_file_with(&overwritten, "overwritten"), "{overwritten:?}");
                }))
            }),
        ),
        (
            "add-tar-symlink-dotdot",
            vec![
                sym("up", ".."),
                sym("up2", "../../../../.."),
                file(format!("up/{s}"), "one"),
                file(format!("up2/tmp/{s}"), "two"),
            ],
            Box::new(|n| {
                let (one, two) = (below(n, &s), below(n, &format!("tmp/{s}")));
                Want::Succeeds(Box::new(move |_| {
                    assert!(
                        is_file_with(&one, "one") && is_file_with(&two, "two"),
                        "{one:?} {two:?}"
                    );
                }))
            }),
        ),
        (
            "add-tar-hardlink-dotdot",
            vec![hard("h", "../../etc/passwd")],
            Box::new(|_| fails(&["outside the extraction directory", "../../etc/passwd"])),
        ),
        (
            "add-tar-hardlink-dotdot",
            vec![hard("h", format!("../../../../..{out}/secret"))],
            Box::new(|_| fails(&["outside the extraction directory"])),
        ),
        (
            "add-tar-hardlink-absolute",
            vec![hard("h", "/etc/shadow")],
            Box::new(|_| fails(&["No such file or directory"])),
        ),
        (
            "add-tar-hardlink-absolute",
            vec![hard("h", format!("{out}/secret"))],
            Box::new(|_| fails(&["No such file or directory"])),
        ),
        (
            "add-tar-devices",
            vec![
                E::Char(b"mem".to_vec(), 1, 1),
                E::Block(b"disk".to_vec(), major, minor),
                E::Fifo(b"fifo".to_vec()),
            ],
            Box::new(|n| {
                let dest = arena.out(&n.to_string()).join("dest");
                Want::Succeeds(Box::new(move |_| {
                    use std::os::unix::fs::FileTypeExt;
                    let kind =
                        |f: &str| std::fs::symlink_metadata(dest.join(f)).unwrap().file_type();
                    assert!(
                        kind("mem").is_char_device()
                            && kind("disk").is_block_device()
                            && kind("fifo").is_fifo()
                    );
                }))
            }),
        ),
        (
            "add-tar-dir-then-symlink",
            vec![
                dir("d"),
                file("d/f", "f"),
                sym("d", &out),
                file(format!("d/{s}"), "pwned"),
            ],
            Box::new(|n| {
                let landed = below(n, &format!("{out}/{s}"));
                Want::Succeeds(Box::new(move |_| {
                    assert!(is_file_with(&landed, "pwned"), "{landed:?}")
                }))
            }),
        ),
    ];
    for (n, (id, entries, want)) in cases.iter().enumerate() {
        let c = case(id);
        std::fs::write(arena.ctx().join(format!("evil-{n}.tar")), tar(entries)).unwrap();
        arena.dockerfile(&format!("FROM busybox\nADD evil-{n}.tar /dest/\n"));
        let dest = format!("type=local,dest={}", arena.out(&n.to_string()).display());
        let ran = arena.build(&["-o", &dest]);
        judge(&arena, c, &ran, &want(n));
    }
}
