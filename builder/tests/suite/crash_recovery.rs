//! What a build finds after the machine went down before its writes reached the disk.
//!
//! Builds write snapshots (volatile overlays) and diff blobs without fsync, marking each layer
//! in `unsynced/<hex>` with the boot id until a later syncfs (store::durability). A crash is
//! simulated the way it looks afterwards: markers from another boot, a diff blob that lost its
//! bytes and a snapshot file that lost its content. The next build must notice, drop the damaged
//! blob (its step runs again), unpack the other snapshot again from its intact blob, and produce
//! the right image.
//!
//! Needs root, runc and busybox-static; fails under CI=true without them.

use std::path::Path;
use testkit::{pallet, require, text, Need::*, Store};

/// The snapshot dir (by diff id hex) that holds `file` at its top level.
fn snapshot_with(store: &Path, file: &str) -> String {
    for e in std::fs::read_dir(store.join("snapshots"))
        .unwrap()
        .flatten()
    {
        if e.path().join(file).is_file() {
            return e.file_name().to_string_lossy().into_owned();
        }
    }
    panic!("no snapshot holds {file}");
}

#[test]
fn a_build_after_a_crash_checks_unsynced_layers_and_rebuilds_what_was_lost() {
    if !require("crash recovery test", &[Root, Busybox, Tool("runc")]) {
        return;
    }
    let fixture = Store::busybox(pallet!());
    let store = fixture.root();

    let ctx = fixture.path("ctx");
    std::fs::create_dir(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nRUN echo made-by-run > /ran\nCOPY copied /copied\n",
    )
    .unwrap();
    std::fs::write(ctx.join("copied"), "made-by-copy\n").unwrap();
    // The build's log (stderr); the build must succeed.
    let build = || {
        let out = fixture
            .pallet()
            .args(["build", "--progress", "plain", "-t", "crash:test"])
            .arg(&ctx)
            .succeeds();
        text(&out.stderr)
    };
    build();
    // Without a crash, the detached settle after the build syncs the disk and drops the markers
    // the build wrote (a snapshot and a diff blob per layer made, one marker for both).
    let unsynced = store.join("unsynced");
    let settled = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::fs::read_dir(&unsynced).is_ok_and(|mut d| d.next().is_some()) {
        assert!(
            std::time::Instant::now() < settled,
            "markers still there 30 s after the build: {:?}",
            std::fs::read_dir(&unsynced).unwrap().count()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }

    // The crash: both layers still marked from a boot that is over, the RUN layer's diff blob
    // empty, the COPY layer's snapshot file empty (its blob intact).
    let run_hex = snapshot_with(store, "ran");
    let copy_hex = snapshot_with(store, "copied");
    std::fs::create_dir_all(&unsynced).unwrap();
    for hex in [&run_hex, &copy_hex] {
        std::fs::write(unsynced.join(hex), "boot-before-the-crash").unwrap();
    }
    std::fs::write(store.join("blobs/sha256").join(&run_hex), b"").unwrap();
    std::fs::write(store.join("snapshots").join(&copy_hex).join("copied"), b"").unwrap();

    let stderr = build();
    assert!(
        stderr.contains("restarted before 2 layer(s) were known to be on disk")
            && stderr.contains("1 damaged blob(s) removed"),
        "{stderr}"
    );
    // The RUN step's blob was lost: it ran again. (The COPY step's record names the RUN layer
    // too: it is a hit only when the rerun made the same tar again, within the same second.)
    let lines: Vec<&str> = stderr.lines().collect();
    let run = lines
        .iter()
        .position(|l| l.contains("] RUN echo made-by-run > /ran"))
        .expect("the RUN step is listed");
    assert!(lines[run + 1].contains("cache miss"), "{stderr}");
    assert!(
        stderr.contains("cache: 2 hits, 1 miss") || stderr.contains("cache: 1 hit, 2 misses"),
        "{stderr}"
    );
    let out = fixture
        .pallet()
        .args(["run", "crash:test", "cat", "/ran", "/copied"])
        .ok();
    assert_eq!(out, "made-by-run\nmade-by-copy\n");
    assert_eq!(
        std::fs::read_to_string(store.join("snapshots").join(&copy_hex).join("copied")).unwrap(),
        "made-by-copy\n",
        "the COPY layer's snapshot is unpacked again from its blob"
    );
    for e in std::fs::read_dir(&unsynced).unwrap().flatten() {
        assert_ne!(
            std::fs::read_to_string(e.path()).unwrap(),
            "boot-before-the-crash",
            "{:?} still marked from the old boot",
            e.path()
        );
    }
    // And a third build, nothing lost, is all cached.
    let stderr = build();
    assert!(stderr.contains("cache: 3 hits, 0 misses"), "{stderr}");
}
