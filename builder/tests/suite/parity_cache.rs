//! Our own versions of the cases in BuildKit's frontend/dockerfile/dockerfile_cache_test.go,
//! and of testMountRWCache (dockerfile_mount_test.go): a step that reads another stage at
//! selected paths (`RUN --mount=from=`, `COPY --from`) stays cached when that stage is rebuilt
//! with the same content there (content-based keys, `solver/keys/content.rs`). Status of each
//! in testdata/parity/CHECKLIST.md.

use crate::parity_kit::{can_run, read, Kit};
use std::os::unix::fs::PermissionsExt;

/// testMountRWCache: stage `build` runs again (a context file changed) and makes the same
/// `out`; the rw bind mount of it in stage `second` is then found by content, so `/unique`
/// (random) is the first build's. Also the steps after a content hit stay cached, and a
/// no-op rebuild finds the step by its definition key.
#[test]
fn rw_mount_from_a_rebuilt_stage_with_the_same_output_stays_cached() {
    if !can_run("parity_cache") {
        return;
    }
    let kit = Kit::new();
    let ctx = kit.context(
        "rw",
        "from busybox AS build\ncopy cachebust /\nrun mkdir out && echo foo > out/foo\n\
         from busybox as second\n\
         RUN --mount=from=build,src=out,target=/out,rw touch /out/bar && \
             cat /dev/urandom | head -c 100 | sha256sum > /unique\n\
         RUN cat /dev/urandom | head -c 100 | sha256sum > /after\n\
         from scratch\nCOPY --from=second /unique /after /\n",
        &[("cachebust", "0")],
    );
    let first = kit.local(&ctx, &[]);
    std::fs::write(ctx.join("cachebust"), "1").unwrap();
    let second = kit.local(&ctx, &[]);
    assert_eq!(read(&second, "unique"), read(&first, "unique"));
    assert_eq!(
        read(&second, "after"),
        read(&first, "after"),
        "the step after a content hit is cached"
    );
    std::fs::write(ctx.join("cachebust"), "2").unwrap();
    let log = kit.ok(&ctx, &[]);
    assert!(
        log.contains("CACHED by content"),
        "the mount step is found by content:\n{log}"
    );
    // A no-op rebuild: every step by its definition key (nothing hashed by content).
    let log = kit.ok(&ctx, &[]);
    assert!(!log.contains("by content"), "{log}");
    assert!(!log.contains("DONE"), "nothing runs:\n{log}");
    // `--explain` follows the content key the records pass on: all cached.
    let log = kit.ok(&ctx, &["--explain"]);
    assert!(log.contains(" 0 would run"), "{log}");

    // What the mount reads changes: the step runs.
    std::fs::write(
        ctx.join("Dockerfile"),
        std::fs::read_to_string(ctx.join("Dockerfile"))
            .unwrap()
            .replace("echo foo", "echo foo2"),
    )
    .unwrap();
    let third = kit.local(&ctx, &[]);
    assert_ne!(read(&third, "unique"), read(&first, "unique"));
}

/// Our `COPY --from` version: the builder stage runs again (its other files change), the
/// copied `/venv` does not: the COPY and the steps after it are cached, with the first
/// build's files. The copied path's content, or only a file's mode, changes: they run.
#[test]
fn copy_from_is_cached_by_the_content_it_copies() {
    if !can_run("parity_cache") {
        return;
    }
    let kit = Kit::new();
    let ctx = kit.context(
        "copy",
        "FROM busybox AS builder\nCOPY . /src\n\
         RUN mkdir -p /venv/lib && cp /src/app.py /venv/lib/ && chmod $(cat /src/mode) /venv/lib/app.py \
             && date +%s%N > /built-at\n\
         FROM busybox\nCOPY --from=builder /venv /venv\n\
         RUN cat /dev/urandom | head -c 100 | sha256sum > /unique\n",
        &[("app.py", "print(1)\n"), ("mode", "644"), ("note", "a")],
    );
    let first = kit.local(&ctx, &[]);
    let unique = read(&first, "unique");

    // Another file of the builder: it runs, /venv is the same.
    std::fs::write(ctx.join("note"), "b").unwrap();
    let out = kit.local(&ctx, &[]);
    assert_eq!(read(&out, "unique"), unique, "the RUN after it is cached");
    assert_eq!(read(&out, "venv/lib/app.py"), "print(1)\n");
    std::fs::write(ctx.join("note"), "c").unwrap();
    let log = kit.ok(&ctx, &[]);
    assert!(
        log.contains("CACHED by content"),
        "COPY --from by content:\n{log}"
    );

    // The copied file's content changes: COPY and RUN run.
    std::fs::write(ctx.join("app.py"), "print(2)\n").unwrap();
    let out = kit.local(&ctx, &[]);
    assert_eq!(read(&out, "venv/lib/app.py"), "print(2)\n");
    let unique2 = read(&out, "unique");
    assert_ne!(unique2, unique);

    // Only its mode changes: they run, and the image has the new mode.
    std::fs::write(ctx.join("mode"), "755").unwrap();
    let log = kit.ok(&ctx, &[]);
    assert!(!log.contains("CACHED by content"), "{log}");
    let out = kit.local(&ctx, &[]);
    let mode = std::fs::metadata(out.join("venv/lib/app.py"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755);
    assert_ne!(read(&out, "unique"), unique2);
}

/// testNoCache: `--no-cache` runs every stage again (and the `COPY --from` steps of their new
/// results are not found by content); `--no-cache-filter S1` (any case) only s1's RUN: s0's
/// result is the previous build's.
#[test]
fn no_cache_and_no_cache_filter() {
    if !can_run("parity_cache") {
        return;
    }
    let kit = Kit::new();
    let ctx = kit.context(
        "ctx",
        "FROM busybox AS s0\nRUN cat /dev/urandom | head -c 100 | sha256sum | tee unique\n\
         FROM busybox AS s1\nRUN cat /dev/urandom | head -c 100 | sha256sum | tee unique2\n\
         FROM scratch\nCOPY --from=s0 unique /\nCOPY --from=s1 unique2 /\n",
        &[],
    );
    let one = kit.local(&ctx, &[]);
    let two = kit.local(&ctx, &["--no-cache"]);
    assert_ne!(read(&one, "unique"), read(&two, "unique"));
    assert_ne!(read(&one, "unique2"), read(&two, "unique2"));
    // The dry run agrees: s1's RUN and the COPY of its file would run, s0's would not.
    let log = kit.ok(&ctx, &["--explain", "--no-cache-filter", "S1"]);
    assert!(log.contains(" 2 would run"), "{log}");
    let three = kit.local(&ctx, &["--no-cache-filter", "S1"]);
    assert_eq!(read(&three, "unique"), read(&two, "unique"));
    assert_ne!(read(&three, "unique2"), read(&two, "unique2"));
    assert_ne!(read(&three, "unique2"), read(&one, "unique2"));
    // Without the flag, all cached.
    let four = kit.local(&ctx, &[]);
    assert_eq!(read(&four, "unique"), read(&three, "unique"));
    assert_eq!(read(&four, "unique2"), read(&three, "unique2"));
}

/// testWildcardRenameCache: `COPY file*` is keyed by what it matches: renaming the matched
/// file makes the next step (which names it) run and fail.
#[test]
fn wildcard_copy_after_a_rename_runs_again() {
    if !can_run("parity_cache") {
        return;
    }
    let kit = Kit::new();
    let ctx = kit.context(
        "ctx",
        "FROM busybox\nCOPY file* /files/\nRUN ls /files/file1\n",
        &[("file1", "foo")],
    );
    kit.ok(&ctx, &[]);
    std::fs::rename(ctx.join("file1"), ctx.join("file2")).unwrap();
    let err = kit.error(&ctx, &[]);
    assert!(err.contains("/files/file1"), "{err}");
}

/// testReproducibleIDs: the same Dockerfile built again under another name is the same
/// image (same image id).
#[test]
fn the_same_build_under_another_name_is_the_same_image() {
    if !can_run("parity_cache") {
        return;
    }
    let kit = Kit::new();
    let ctx = kit.context(
        "ctx",
        "FROM busybox\nENV foo=bar\nCOPY foo /\nRUN echo bar > bar\n",
        &[("foo", "foo-contents")],
    );
    let id = |name: &str| {
        let file = kit.store.path(&format!("{}.iid", name.replace('/', "_")));
        kit.ok(&ctx, &["-t", name, "--iidfile", file.to_str().unwrap()]);
        std::fs::read_to_string(file).unwrap()
    };
    let (a, b) = (
        id("example.com/moby/dockerfileids:test"),
        id("example.com/moby/dockerfileids2:test"),
    );
    assert!(a.starts_with("sha256:"), "{a}");
    assert_eq!(a, b);
}

/// testExportCacheLoop: a local cache exported, then a fresh store importing it and exporting
/// to the same directory in one build (BuildKit: prune between; a fresh store here).
#[test]
fn a_local_cache_imported_and_exported_in_one_build() {
    if !can_run("parity_cache") {
        return;
    }
    // Stores with the same base image (imported from the same tar path).
    let tmp = tempfile::tempdir().unwrap();
    let tar = tmp.path().join("base.tar");
    let store = || {
        Kit::with_tar_at(
            testkit::pallet!().env("SOURCE_DATE_EPOCH", "1700000000"),
            &tar,
        )
    };
    let kit = store();
    let ctx = kit.context(
        "ctx",
        "FROM busybox AS base\nRUN echo aa > /foo\nWORKDIR /bar\n\
         FROM base AS base1\nCOPY hello.txt .\n\
         FROM base AS base2\nCOPY --from=base1 /bar/hello.txt .\nRUN true\n\
         FROM scratch\nCOPY --from=base2 /foo /f\n",
        &[("hello.txt", "hello")],
    );
    let cache = kit.store.path("cache");
    let to = format!("type=local,dest={},mode=max", cache.display());
    let from = format!("type=local,src={}", cache.display());
    let first = kit.local(&ctx, &["--cache-to", &to]);
    assert_eq!(read(&first, "f"), "aa\n");

    let fresh = store();
    let log = fresh.ok(&ctx, &["--cache-from", &from, "--cache-to", &to]);
    assert!(log.contains("CACHED (from"), "{log}");
    let again = store();
    let out = again.local(&ctx, &["--cache-from", &from]);
    assert_eq!(read(&out, "f"), "aa\n");
}
