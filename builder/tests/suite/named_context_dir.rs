//! `--build-context NAME=DIR`: a local directory as a named context, with BuildKit's semantics
//! (frontend/dockerui/namedcontext.go, dockerfile2llb/convert.go): `COPY --from=NAME` and
//! `RUN --mount=from=NAME` read the directory after its own `.dockerignore`, `FROM NAME` makes
//! it the stage's tree with an empty image config, a named context overrides an image of its
//! name, and the files read go into the cache keys of exactly the steps that read them.
//!
//! Builds need root and runc (the tests fail under CI=true and are skipped with a note
//! elsewhere); the `debug graph` test needs neither.

use serde_json::Value;
use std::path::{Path, PathBuf};
use testkit::files::{mode, write_mode};
use testkit::progress::{about, events, reasons};
use testkit::{pallet, require, text, Need::*, Store};

fn can_run() -> bool {
    require("named build context test", &[Root, Busybox, Tool("runc")])
}

/// `dir/NAME` with these files (path, content, mode); parent directories are created.
fn directory(dir: &Path, name: &str, files: &[(&str, &str, u32)]) -> PathBuf {
    let d = dir.join(name);
    for (path, data, mode) in files {
        write_mode(&d.join(path), data, *mode);
    }
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn context_flag(name: &str, dir: &Path) -> String {
    format!("{name}={}", dir.display())
}

fn build(store: &Store, ctx: &Path, extra: &[&str]) -> std::process::Output {
    store.pallet().arg("build").args(extra).arg(ctx).output()
}

/// Builds `ctx` with the named context `name=dir` (plus `extra` flags) into `ctx`'s sibling
/// `tree`, which it returns; the build must succeed.
fn build_tree(store: &Store, ctx: &Path, name: &str, dir: &Path, extra: &[&str]) -> PathBuf {
    let tree = ctx.with_file_name("tree");
    let flag = context_flag(name, dir);
    let mut args = vec!["--build-context", &flag, "-o", tree.to_str().unwrap()];
    args.extend_from_slice(extra);
    let out = build(store, ctx, &args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    tree
}

fn build_json(store: &Store, ctx: &Path, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["--progress=json"];
    args.extend_from_slice(extra);
    let out = build(store, ctx, &args);
    assert!(out.status.success(), "build failed:\n{}", text(&out.stderr));
    events(&out.stderr)
}

fn misses(ev: &[Value]) -> u64 {
    ev.last().unwrap()["cache"]["misses"].as_u64().unwrap()
}

#[test]
fn copy_from_a_named_directory_with_its_own_dockerignore() {
    if !can_run() {
        return;
    }
    let store = Store::busybox(pallet!());
    let tmp = store.dir();
    let libs = directory(
        tmp,
        "libs",
        &[
            ("tool.sh", "echo hi\n", 0o755),
            ("data/conf.txt", "secret=1\n", 0o600),
            ("keep.txt", "kept\n", 0o644),
            ("debug.log", "noise\n", 0o644),
            (".dockerignore", "*.log\n", 0o644),
        ],
    );
    // The main context's .dockerignore excludes keep.txt: it must not apply to libs.
    let ctx = directory(
        tmp,
        "ctx",
        &[
            (
                "Dockerfile",
                "FROM scratch\nCOPY --from=libs / /libs/\nCOPY --from=libs data/conf.txt tool.sh /picked/\nCOPY . /main/\n",
                0o644,
            ),
            ("keep.txt", "main\n", 0o644),
            ("main.log", "main log\n", 0o644),
            (".dockerignore", "keep.txt\n", 0o644),
        ],
    );
    let tree = build_tree(&store, &ctx, "libs", &libs, &[]);
    assert_eq!(
        std::fs::read_to_string(tree.join("libs/tool.sh")).unwrap(),
        "echo hi\n"
    );
    assert_eq!(mode(&tree.join("libs/tool.sh")), 0o755);
    assert_eq!(mode(&tree.join("libs/data/conf.txt")), 0o600);
    assert_eq!(mode(&tree.join("picked/conf.txt")), 0o600);
    assert_eq!(mode(&tree.join("picked/tool.sh")), 0o755);
    // libs' own .dockerignore applies to it (BuildKit reads DIR/.dockerignore)...
    assert!(!tree.join("libs/debug.log").exists());
    // ...the main context's does not.
    assert_eq!(
        std::fs::read_to_string(tree.join("libs/keep.txt")).unwrap(),
        "kept\n"
    );
    // And libs' patterns do not leak into the main context.
    assert!(!tree.join("main/keep.txt").exists());
    assert!(tree.join("main/main.log").exists());
}

#[test]
fn run_mounts_a_named_directory_and_symlinks_stay_inside_it() {
    if !can_run() {
        return;
    }
    let store = Store::busybox(pallet!());
    let tmp = store.dir();
    let libs = directory(tmp, "libs", &[("data/real.txt", "inside\n", 0o644)]);
    std::os::unix::fs::symlink("/data/real.txt", libs.join("abs")).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", libs.join("escape")).unwrap();
    std::os::unix::fs::symlink("../../../../../../etc/hostname", libs.join("climb")).unwrap();
    let df = "FROM busybox\n\
        RUN --mount=type=bind,from=libs,target=/l cat /l/data/real.txt > /seen && id -u > /uid\n\
        RUN --mount=type=bind,from=libs,source=abs,target=/m cat /m > /abs\n\
        FROM scratch\n\
        COPY --from=0 /seen /abs /uid /\n\
        COPY --from=libs / /libs/\n";
    let ctx = directory(tmp, "ctx", &[("Dockerfile", df, 0o644)]);
    let tree = build_tree(&store, &ctx, "libs", &libs, &[]);
    let flag = context_flag("libs", &libs);
    assert_eq!(
        std::fs::read_to_string(tree.join("seen")).unwrap(),
        "inside\n"
    );
    assert_eq!(std::fs::read_to_string(tree.join("uid")).unwrap(), "0\n");
    // An absolute link resolves inside the directory, not on the host.
    assert_eq!(
        std::fs::read_to_string(tree.join("abs")).unwrap(),
        "inside\n"
    );
    // Links are copied as links, never followed out of the directory.
    for link in ["escape", "climb"] {
        let p = tree.join("libs").join(link);
        assert!(
            std::fs::symlink_metadata(&p)
                .unwrap()
                .file_type()
                .is_symlink(),
            "{link} was followed"
        );
    }
    // Mounting a link that points out of the directory finds nothing there.
    for link in ["escape", "climb"] {
        std::fs::write(
            ctx.join("Dockerfile"),
            format!(
                "FROM busybox\nRUN --mount=type=bind,from=libs,source={link},target=/m cat /m\n"
            ),
        )
        .unwrap();
        let out = build(&store, &ctx, &["--build-context", &flag]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains(&format!("mount source /{link} does not exist")),
            "{}",
            text(&out.stderr)
        );
    }
    // COPY of such a link by name follows it inside the directory only (as BuildKit's copy
    // does): /etc/hostname is not in libs, so there is nothing to copy.
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM scratch\nCOPY --from=libs escape /got\n",
    )
    .unwrap();
    let out = build(&store, &ctx, &["--build-context", &flag]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("\"/escape\": not found"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn from_a_named_directory_is_the_stage_root_with_an_empty_config() {
    if !can_run() {
        return;
    }
    let store = Store::busybox(pallet!());
    let tmp = store.dir();
    let libs = directory(
        tmp,
        "libs",
        &[
            ("app/run.sh", "echo app\n", 0o755),
            ("skip.tmp", "x", 0o644),
            (".dockerignore", "*.tmp\n", 0o644),
        ],
    );
    let df = "FROM libs\n\
        COPY --from=busybox /bin/busybox /bin/busybox\n\
        RUN [\"/bin/busybox\", \"sh\", \"-c\", \"/bin/busybox cat /app/run.sh > /seen; /bin/busybox pwd > /pwd\"]\n";
    let ctx = directory(tmp, "ctx", &[("Dockerfile", df, 0o644)]);
    let tree = build_tree(&store, &ctx, "libs", &libs, &["-t", "fromdir:test"]);
    assert_eq!(
        std::fs::read_to_string(tree.join("seen")).unwrap(),
        "echo app\n"
    );
    assert_eq!(std::fs::read_to_string(tree.join("pwd")).unwrap(), "/\n");
    assert_eq!(mode(&tree.join("app/run.sh")), 0o755);
    assert!(
        !tree.join("skip.tmp").exists(),
        "the directory's .dockerignore"
    );
    let out = store
        .pallet()
        .args(["inspect", "fromdir:test", "--format", "json"])
        .output();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let info: Value = serde_json::from_slice(&out.stdout).unwrap();
    let config = &info["config"]["config"];
    // BuildKit's emptyImage: WORKDIR / and the default PATH, nothing from any image.
    assert_eq!(
        config,
        &serde_json::json!({
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "WorkingDir": "/"
        }),
        "{info:#}"
    );
    // The directory, busybox and the RUN: three layers. The directory's layer has no FROM
    // history describing it, so BuildKit's exporter appends an entry for it.
    assert_eq!(info["layers"].as_array().unwrap().len(), 3, "{info:#}");
    let history = info["config"]["history"].as_array().unwrap();
    let layered: Vec<&Value> = history
        .iter()
        .filter(|h| h["empty_layer"] != true)
        .collect();
    assert_eq!(layered.len(), 3, "{info:#}");
    assert_eq!(
        layered[2]["comment"], "buildkit.exporter.image.v0",
        "{info:#}"
    );
}

#[test]
fn edits_invalidate_exactly_the_steps_that_read_the_file() {
    if !can_run() {
        return;
    }
    let store = Store::busybox(pallet!());
    let tmp = store.dir();
    let libs = directory(
        tmp,
        "libs",
        &[
            ("a.txt", "a1\n", 0o644),
            ("b.txt", "b1\n", 0o644),
            ("c.txt", "c1\n", 0o644),
            ("x.log", "ignored\n", 0o644),
            (".dockerignore", "*.log\n", 0o644),
        ],
    );
    let df = "FROM busybox AS a\n\
        COPY --from=libs a.txt /a.txt\n\
        FROM busybox\n\
        RUN --mount=type=bind,from=libs,source=b.txt,target=/b.txt cat /b.txt > /b.out\n\
        COPY --from=a /a.txt /a.txt\n";
    let ctx = directory(tmp, "ctx", &[("Dockerfile", df, 0o644)]);
    let flag = context_flag("libs", &libs);
    let args = ["--build-context", flag.as_str(), "-t", "edits:test"];

    let ev = build_json(&store, &ctx, &args);
    assert_eq!(misses(&ev), 3, "{ev:#?}");

    // No change: everything from the cache.
    let ev = build_json(&store, &ctx, &args);
    assert!(!ev.iter().any(|e| e["event"] == "step.started"), "{ev:#?}");
    assert_eq!(misses(&ev), 0);

    // Files nothing reads (c.txt) or the directory's .dockerignore hides (x.log): still all
    // cached.
    std::fs::write(libs.join("c.txt"), "c2\n").unwrap();
    std::fs::write(libs.join("x.log"), "more\n").unwrap();
    let ev = build_json(&store, &ctx, &args);
    assert_eq!(misses(&ev), 0, "{ev:#?}");

    // b.txt: the RUN that mounts it misses and names it; the COPY after it blames its parent;
    // the other stage's COPY of a.txt stays cached.
    std::fs::write(libs.join("b.txt"), "b2\n").unwrap();
    let explain = build(
        &store,
        &ctx,
        &["--progress=json", "--explain", "--build-context", &flag],
    );
    assert!(explain.status.success(), "{}", text(&explain.stderr));
    let ev = events(&explain.stderr);
    let r = reasons(&ev, "RUN --mount");
    assert_eq!(
        r[0]["message"], "context files changed: libs:b.txt",
        "{r:?}"
    );

    let ev = build_json(&store, &ctx, &args);
    let r = reasons(&ev, "RUN --mount");
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0]["kind"], "context_files");
    assert_eq!(r[0]["files"], serde_json::json!(["libs:b.txt"]));
    assert_eq!(r[0]["message"], "context files changed: libs:b.txt");
    assert_eq!(about(&ev, "step.cached", "COPY --from=libs a.txt").len(), 1);
    let r = reasons(&ev, "COPY --from=a");
    assert_eq!(r[0]["kind"], "parent", "{r:?}");
    assert_eq!(misses(&ev), 2, "{ev:#?}");

    // a.txt: its COPY misses and names it; the RUN stays cached.
    std::fs::write(libs.join("a.txt"), "a2\n").unwrap();
    let ev = build_json(&store, &ctx, &args);
    let r = reasons(&ev, "COPY --from=libs a.txt");
    assert_eq!(
        r[0]["message"], "context files changed: libs:a.txt",
        "{r:?}"
    );
    assert_eq!(about(&ev, "step.cached", "RUN --mount").len(), 1, "{ev:#?}");
    assert_eq!(misses(&ev), 2, "{ev:#?}");

    // And again no change: all cached.
    let ev = build_json(&store, &ctx, &args);
    assert_eq!(misses(&ev), 0, "{ev:#?}");
}

#[test]
fn bad_context_values_are_clear_errors() {
    if !can_run() {
        return;
    }
    let store = Store::busybox(pallet!());
    let tmp = store.dir();
    let ctx = directory(
        tmp,
        "ctx",
        &[("Dockerfile", "FROM scratch\nCOPY --from=libs / /\n", 0o644)],
    );
    let file = tmp.join("file.txt");
    std::fs::write(&file, "x").unwrap();
    let cases = [
        (context_flag("libs", &tmp.join("nope")), "does not exist"),
        (context_flag("libs", &file), "is not a directory"),
        (
            "libs=https://github.com/moby/buildkit.git".to_string(),
            "URL and git build contexts are not built yet",
        ),
    ];
    for (flag, needle) in cases {
        let out = build(&store, &ctx, &["--build-context", &flag]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{flag}: {err}");
        assert!(err.contains(needle), "{flag}: {err}");
        assert!(err.contains("--build-context libs="), "{flag}: {err}");
        assert!(err.contains("help:"), "{flag}: {err}");
    }
    // A relative path is taken from the current directory (here: tmp).
    let libs = directory(tmp, "rel", &[("r.txt", "rel\n", 0o644)]);
    let tree = tmp.join("tree");
    let out = store
        .pallet()
        .current_dir(tmp)
        .args(["build", "--build-context", "libs=./rel", "-o"])
        .arg(&tree)
        .arg(&ctx)
        .output();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(libs.exists());
    assert_eq!(
        std::fs::read_to_string(tree.join("r.txt")).unwrap(),
        "rel\n"
    );
}

#[test]
fn a_named_directory_overrides_an_image_of_its_name() {
    if !can_run() {
        return;
    }
    let store = Store::busybox(pallet!());
    let tmp = store.dir();
    let fake = directory(tmp, "fake", &[("marker.txt", "not busybox\n", 0o644)]);
    let ctx = directory(
        tmp,
        "ctx",
        &[(
            "Dockerfile",
            "FROM busybox\nCOPY --from=docker.io/library/busybox:latest marker.txt /again.txt\n",
            0o644,
        )],
    );
    let tree = build_tree(&store, &ctx, "busybox", &fake, &[]);
    assert_eq!(
        std::fs::read_to_string(tree.join("marker.txt")).unwrap(),
        "not busybox\n"
    );
    assert_eq!(
        std::fs::read_to_string(tree.join("again.txt")).unwrap(),
        "not busybox\n"
    );
    assert!(!tree.join("bin/busybox").exists(), "the image was used");
}

#[test]
fn debug_graph_shows_the_named_directory() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path();
    let libs = directory(
        tmp,
        "libs",
        &[("a.txt", "a\n", 0o644), (".dockerignore", "*.log\n", 0o644)],
    );
    let ctx = directory(
        tmp,
        "ctx",
        &[(
            "Dockerfile",
            "FROM scratch\nCOPY --from=libs a.txt /a.txt\n",
            0o644,
        )],
    );
    let out = pallet!()
        .args(["debug", "graph", "--build-context"])
        .arg(context_flag("libs", &libs))
        .arg(&ctx)
        .output();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(
        shown.contains("source local libs (excludes: *.log)"),
        "{shown}"
    );
    assert!(shown.contains("reads context libs: /a.txt"), "{shown}");
}
