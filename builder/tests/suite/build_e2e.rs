//! End-to-end builds with the real runc: `pallet import` of a busybox-static root file tree,
//! `pallet build` of testdata/examples/busybox-hello (RUN, WORKDIR, multi-stage COPY --from,
//! FROM scratch) to an OCI layout that umoci unpacks, and a rebuild that is all cache hits.
//!
//! Needs root, runc, busybox-static and umoci (scripts/ensure-tools.sh installs them). Without
//! root the tests fail under CI=true and are skipped with a note elsewhere.

use std::path::Path;
use std::process::Command;
use testkit::busybox::Rootfs;
use testkit::files::{all_files, context, copy_dir, file_contains, find_dirs};
use testkit::oci_layout::{umoci_unpack, Layout};
use testkit::store::import_busybox;
use testkit::{pallet, repo, require, text, Need::*, Store};

fn can_run() -> bool {
    require(
        "end-to-end build test",
        &[Root, Busybox, Tool("runc"), Tool("umoci")],
    )
}

fn example(name: &str) -> std::path::PathBuf {
    repo::testdata("examples").join(name)
}

#[test]
fn busybox_multistage_builds_exports_and_rebuilds_from_cache() {
    if !can_run() {
        return;
    }
    let store = Store::empty(pallet!());
    let tmp = store.dir();
    let imported = import_busybox(&store.pallet(), &Rootfs::new());
    assert!(imported.starts_with("docker.io/library/busybox:latest sha256:"));

    let layout = tmp.join("layout");
    let ctx = example("busybox-hello");
    let out = store
        .pallet()
        .args([
            "build",
            "-t",
            "hello:dev",
            "--output",
            &format!("type=oci,dest={},tar=false", layout.display()),
            ctx.to_str().unwrap(),
        ])
        .output();
    let log = text(&out.stderr);
    assert!(out.status.success(), "build failed:\n{log}");
    assert!(
        log.contains("RUN echo \"hello from pallet\" > greeting.txt"),
        "{log}"
    );
    assert!(
        log.contains("DONE"),
        "the first build runs its steps:\n{log}"
    );

    // The OCI layout is read by a tool no one here wrote.
    let bundle = tmp.join("bundle");
    umoci_unpack(&layout, "dev", &bundle);
    let greeting = std::fs::read_to_string(bundle.join("rootfs/greeting.txt")).unwrap();
    assert_eq!(greeting, "hello from pallet\n");
    assert!(bundle.join("rootfs/bin/busybox").is_file());
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.join("config.json")).unwrap()).unwrap();
    assert_eq!(
        config["process"]["args"],
        serde_json::json!(["/bin/busybox", "cat", "/greeting.txt"])
    );

    // A second build with nothing changed runs nothing.
    let out = store
        .pallet()
        .args(["build", "-t", "hello:dev", ctx.to_str().unwrap()])
        .output();
    let log = text(&out.stderr);
    assert!(out.status.success(), "rebuild failed:\n{log}");
    assert!(log.contains("CACHED"), "{log}");
    assert!(
        !log.contains("DONE"),
        "a no-change rebuild must be all cache hits:\n{log}"
    );

    let out = store.pallet().args(["images"]).output();
    let listing = text(&out.stdout);
    assert!(
        listing.contains("docker.io/library/hello:dev")
            && listing.contains("docker.io/library/busybox:latest"),
        "{listing}"
    );
}

#[test]
fn failing_run_names_the_step_and_exit_code() {
    if !can_run() {
        return;
    }
    let store = Store::busybox(pallet!());
    let tmp = store.dir();
    let ctx = context(
        &tmp.join("ctx"),
        "FROM busybox\nRUN echo about to fail && exit 7\n",
        &[],
    );
    let out = store
        .pallet()
        .args(["build", ctx.to_str().unwrap()])
        .output();
    assert_eq!(out.status.code(), Some(1));
    let log = text(&out.stderr);
    assert!(log.contains("RUN echo about to fail && exit 7"), "{log}");
    assert!(
        log.contains("did not complete successfully: exit code: 7"),
        "{log}"
    );
    assert!(
        log.contains("about to fail"),
        "the tail of the output is shown:\n{log}"
    );
}

#[test]
fn secrets_reach_the_step_and_nothing_else() {
    if !can_run() {
        return;
    }
    let store = Store::busybox(pallet!());
    let (tmp, root) = (store.dir(), store.root());
    let file_secret = "s3cr3t-file-value-7c1e";
    let env_secret = "s3cr3t-env-value-93ab";
    let secret_path = tmp.join("token.txt");
    std::fs::write(&secret_path, file_secret).unwrap();
    let ctx = tmp.join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        // The Dockerfile never contains the values: steps prove they saw them by hashing them.
        "FROM busybox\n\
         RUN --mount=type=secret,id=tok sha256sum /run/secrets/tok | cut -d' ' -f1 > /file-sum\n\
         RUN --mount=type=secret,id=envtok,env=TOKEN printf %s \"$TOKEN\" | sha256sum | cut -d' ' -f1 > /env-sum\n\
         RUN --mount=type=secret,id=tok,target=/etc/app/key,mode=0440,uid=1000 stat -c %a:%u /etc/app/key > /key-mode\n",
    )
    .unwrap();
    let layout = tmp.join("oci");
    let out = store
        .pallet()
        .args([
            "build",
            "-t",
            "secret-test",
            "--secret",
            &format!("id=tok,src={}", secret_path.display()),
        ])
        .args([
            "--secret",
            "id=envtok,env=PALLET_TEST_SECRET",
            "-o",
            &format!("type=oci,dest={},tar=false", layout.display()),
        ])
        .arg(&ctx)
        .env("PALLET_TEST_SECRET", env_secret)
        .output();
    let log = text(&out.stderr);
    assert!(out.status.success(), "build with secrets failed:\n{log}");
    // The values are nowhere: not in blobs, snapshots, the index, or the exported image.
    let mut files = all_files(root);
    files.extend(all_files(&layout));
    assert!(files.len() > 5);
    for f in &files {
        for secret in [file_secret, env_secret] {
            assert!(
                !file_contains(f, secret.as_bytes()),
                "secret found in {}",
                f.display()
            );
        }
    }
    // Nor are the mount points, nor the tmpfs files that carried them.
    assert!(!files
        .iter()
        .any(|f| f.to_string_lossy().contains("run/secrets")
            || f.to_string_lossy().ends_with("etc/app/key")));
    // The steps did see the values.
    let bundle = tmp.join("bundle");
    umoci_unpack(&layout, "latest", &bundle);
    let sha = |s: &str| {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(s.as_bytes()))
    };
    let read = |f: &str| {
        std::fs::read_to_string(bundle.join("rootfs").join(f))
            .unwrap()
            .trim()
            .to_string()
    };
    assert_eq!(read("file-sum"), sha(file_secret));
    assert_eq!(read("env-sum"), sha(env_secret));
    assert_eq!(read("key-mode"), "440:1000");
    // A required secret that was not given is an error naming it.
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nRUN --mount=type=secret,id=missing,required cat /run/secrets/missing\n",
    )
    .unwrap();
    let out = store
        .pallet()
        .args(["build", ctx.to_str().unwrap()])
        .output();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("secret missing: not found: this step requires it"),
        "{}",
        text(&out.stderr)
    );
}

/// With SOURCE_DATE_EPOCH, the busybox example's manifest digest is the same on a cold cache,
/// a warm cache and a fresh root (the reproducibility rule).
#[test]
fn source_date_epoch_makes_builds_reproducible() {
    if !can_run() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path();
    let ctx = example("busybox-hello");
    let build = |root: &Path| -> String {
        let pallet = pallet!().root(root).env("SOURCE_DATE_EPOCH", "1700000000");
        if !root.exists() {
            import_busybox(&pallet, &Rootfs::new());
        }
        let out = pallet
            .args(["build", "-t", "hello:repro"])
            .arg(&ctx)
            .output();
        let log = text(&out.stderr);
        assert!(out.status.success(), "{log}");
        testkit::progress::built_digest(&log)
    };
    let a = tmp.join("a");
    let cold = build(&a);
    let warm = build(&a);
    let fresh = build(&tmp.join("b"));
    assert_eq!(cold, warm, "warm cache changed the digest");
    assert_eq!(cold, fresh, "a fresh root changed the digest");
    // Without the epoch, the times are the build's own, so the digest differs.
    let out = pallet!()
        .root(&a)
        .args(["build", "-t", "hello:now", ctx.to_str().unwrap()])
        .output();
    assert!(out.status.success());
    assert!(!text(&out.stderr).contains(&cold));
}

/// The ML-style example: config as the Dockerfile says, the result runs as `app`, and the
/// pip-like cache mount is reused when requirements change and the install step runs again.
#[test]
fn ml_style_example_with_a_cache_mount_reused_across_builds() {
    if !can_run() {
        return;
    }
    let store = Store::busybox(pallet!());
    let tmp = store.dir();
    let ctx = tmp.join("ctx");
    copy_dir(&example("ml-busybox"), &ctx);
    let layout = tmp.join("oci");
    let out = store
        .pallet()
        .args([
            "build",
            "-t",
            "ml:1",
            "-o",
            &format!("type=oci,dest={},tar=false", layout.display()),
            ctx.to_str().unwrap(),
        ])
        .output();
    let log = text(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("downloading numpy") && log.contains("downloading scikit-learn"),
        "{log}"
    );

    let bundle = tmp.join("bundle");
    umoci_unpack(&layout, "1", &bundle);
    let cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["process"]["user"]["uid"], 1000);
    assert_eq!(cfg["process"]["cwd"], "/app");
    let rootfs_dir = bundle.join("rootfs");
    assert_eq!(
        std::fs::read_to_string(rootfs_dir.join("app/model/weights.bin")).unwrap(),
        "weights-v1\n"
    );
    assert!(rootfs_dir.join("app/site-packages/numpy.whl").is_file());
    assert!(
        !rootfs_dir.join("root/.cache/pip").exists(),
        "cache mount contents stay out of the image"
    );
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        std::fs::metadata(rootfs_dir.join("app/src/serve.sh"))
            .unwrap()
            .uid(),
        1000,
        "COPY --chown=app:app"
    );

    // Requirements change: the install step runs again, and finds numpy in the cache mount.
    std::fs::write(ctx.join("requirements.txt"), "numpy\nscikit-learn\ntorch\n").unwrap();
    let out = store
        .pallet()
        .args(["build", "-t", "ml:2", ctx.to_str().unwrap()])
        .output();
    let log = text(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("cached numpy") && log.contains("downloading torch"),
        "{log}"
    );
    assert!(
        log.contains("[model 3/3] RUN") && log.matches("CACHED").count() >= 4,
        "unchanged steps come from the cache:\n{log}"
    );
}

/// `pallet du` and `pallet prune`: prune drops the cache and unused layers but keeps tagged
/// images usable, waits for a running build instead of deleting under it, and `--all` empties
/// the store.
#[test]
fn prune_keeps_tagged_images_and_waits_for_running_builds() {
    if !can_run() {
        return;
    }
    let store = Store::busybox(pallet!());
    let (tmp, root) = (store.dir(), store.root());
    let ctx = example("busybox-hello");
    assert!(
        store
            .pallet()
            .args(["build", ctx.to_str().unwrap()])
            .output()
            .status
            .success(),
        "untagged build"
    );
    let du = text(&store.pallet().args(["du"]).output().stdout);
    assert!(du.contains("reclaimable"), "{du}");

    let out = store.pallet().args(["prune"]).output();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report = text(&out.stdout);
    assert!(report.contains("Total reclaimed space"), "{report}");
    assert!(!report.contains(" 0 cache records"), "{report}");
    // The tagged base survived: the build works again, running its steps (cache dropped).
    let out = store
        .pallet()
        .args(["build", "-t", "hello:after-prune", ctx.to_str().unwrap()])
        .output();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("DONE"));

    // A build in progress holds the store: prune waits for it.
    let slow = tmp.join("slow");
    std::fs::create_dir_all(&slow).unwrap();
    std::fs::write(
        slow.join("Dockerfile"),
        "FROM busybox\nRUN sleep 2 && echo slept > /slept\n",
    )
    .unwrap();
    let build = store
        .pallet()
        .args(["build", "-t", "slow"])
        .arg(&slow)
        .command()
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(700));
    let out = store.pallet().args(["prune"]).output();
    assert!(
        text(&out.stderr).contains("waiting for it to finish"),
        "{}",
        text(&out.stderr)
    );
    let status = build.wait_with_output().unwrap().status;
    assert!(status.success(), "the running build was not disturbed");
    let images = text(&store.pallet().args(["images"]).output().stdout);
    assert!(images.contains("docker.io/library/slow:latest"), "{images}");

    let out = store.pallet().args(["prune", "--all"]).output();
    assert!(out.status.success());
    assert!(
        text(&store.pallet().args(["images"]).output().stdout)
            .lines()
            .count()
            == 1,
        "only the header is left"
    );
    assert_eq!(
        std::fs::read_dir(root.join("blobs/sha256"))
            .unwrap()
            .count(),
        0
    );
    assert_eq!(
        std::fs::read_dir(root.join("snapshots")).unwrap().count(),
        0
    );
}

/// A build killed in the middle (pallet SIGKILLed while a RUN runs) leaves a store the next
/// build uses: finished steps stay cached, and prune cleans up the killed build's mounts.
#[test]
fn a_killed_build_leaves_a_usable_cache() {
    if !can_run() {
        return;
    }
    let store = Store::busybox(pallet!());
    let (tmp, root) = (store.dir(), store.root());
    let ctx = context(
        &tmp.join("ctx"),
        "FROM busybox\nRUN echo one > /one\nRUN sleep 20 && echo two > /two\n",
        &[],
    );
    let mut child = store
        .pallet()
        .arg("build")
        .arg(&ctx)
        .command()
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the second RUN has started, then kill pallet outright.
    let mut err = child.stderr.take().unwrap();
    let mut seen = String::new();
    let mut buf = [0u8; 256];
    while !seen.contains("RUN sleep 20") {
        let n = std::io::Read::read(&mut err, &mut buf).unwrap();
        assert!(n > 0, "build ended early:\n{seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    child.kill().unwrap();
    child.wait().unwrap();
    // The orphaned container: stop it through its runc state dir under the store's tmp/.
    for state in find_dirs(&root.join("tmp"), "runc-state") {
        for c in std::fs::read_dir(&state).unwrap().flatten() {
            let _ = Command::new("runc")
                .arg("--root")
                .arg(&state)
                .args(["kill", &c.file_name().to_string_lossy(), "KILL"])
                .output();
            std::thread::sleep(std::time::Duration::from_millis(200));
            let _ = Command::new("runc")
                .arg("--root")
                .arg(&state)
                .args(["delete", "-f", &c.file_name().to_string_lossy()])
                .output();
        }
    }
    // Prune-free rebuild: the first RUN comes from the cache, the changed second one runs.
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nRUN echo one > /one\nRUN echo two > /two\n",
    )
    .unwrap();
    let out = store
        .pallet()
        .args(["build", "-t", "after-kill", ctx.to_str().unwrap()])
        .output();
    let log = text(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("RUN echo one > /one\n#2 CACHED"), "{log}");
    // prune unmounts what the killed build left mounted, then removes it.
    let out = store.pallet().args(["prune"]).output();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let tmp_dir = root.join("tmp").canonicalize().unwrap();
    assert!(
        !mounts.contains(tmp_dir.to_str().unwrap()),
        "stale mounts left under {}",
        tmp_dir.display()
    );
    assert_eq!(std::fs::read_dir(&tmp_dir).unwrap().count(), 0);
}

/// `--build-context NAME=oci-layout://DIR`: `FROM NAME` and `COPY --from=NAME` use the image in
/// the layout (imported into the store, layers checked against the config's diff ids), even
/// when the store had nothing.
#[test]
fn build_context_from_an_oci_layout() {
    if !can_run() {
        return;
    }
    let store = Store::busybox(pallet!());
    let tmp = store.dir();
    let src = tmp.join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(
        src.join("Dockerfile"),
        "FROM busybox\nRUN echo from-layout > /marker\n",
    )
    .unwrap();
    let layout = tmp.join("layout");
    let out = store
        .pallet()
        .args([
            "build",
            "-t",
            "layoutsrc:v1",
            "-o",
            &format!("type=oci,dest={},tar=false", layout.display()),
            src.to_str().unwrap(),
        ])
        .output();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(store
        .pallet()
        .args(["prune", "--all"])
        .output()
        .status
        .success());

    let ctx = context(&tmp.join("ctx"), "FROM mybase AS check\nRUN cat /marker > /seen\nFROM scratch\nCOPY --from=check /seen /seen\nCOPY --from=mybase /marker /m\n", &[]);
    let tree = tmp.join("tree");
    let out = store
        .pallet()
        .args([
            "build",
            "--build-context",
            &format!("mybase=oci-layout://{}:v1", layout.display()),
            "-o",
            tree.to_str().unwrap(),
            ctx.to_str().unwrap(),
        ])
        .output();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        std::fs::read_to_string(tree.join("seen")).unwrap(),
        "from-layout\n"
    );
    assert_eq!(
        std::fs::read_to_string(tree.join("m")).unwrap(),
        "from-layout\n"
    );
    // A tag the layout does not have is a clear error.
    let out = store
        .pallet()
        .args([
            "build",
            "--build-context",
            &format!("mybase=oci-layout://{}:nope", layout.display()),
            ctx.to_str().unwrap(),
        ])
        .output();
    assert!(
        text(&out.stderr).contains("no manifest tagged nope"),
        "{}",
        text(&out.stderr)
    );
}

/// Regressions found by the BuildKit parity run (tests/buildkit_parity.rs): two steps with
/// identical diffs in a row must still mount; an ADDed archive keeps its entries' owners
/// unless --chown; RUN on a base without /proc, /dev, /sys leaves them as empty dirs.
#[test]
fn parity_regressions() {
    if !can_run() {
        return;
    }
    let store = Store::busybox(pallet!());
    let tmp = store.dir();
    let ctx = tmp.join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    // An archive whose entries belong to 1000:1000 and 33:33.
    let tar_path = ctx.join("owned.tar");
    {
        let mut b = tar::Builder::new(std::fs::File::create(&tar_path).unwrap());
        for (name, uid) in [("app.txt", 1000u64), ("www.txt", 33)] {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(0o644);
            h.set_size(2);
            h.set_uid(uid);
            h.set_gid(uid);
            b.append_data(&mut h, name, &b"x\n"[..]).unwrap();
        }
        b.finish().unwrap();
    }
    std::fs::write(
        ctx.join("Dockerfile"),
        // The second and third RUN have identical diffs (only the copied-up /etc): their
        // layers are the same snapshot, twice in a row below the fourth step.
        "FROM busybox\nRUN true\nRUN true\nRUN true\nRUN echo after > /after\nADD owned.tar /kept/\nADD --chown=7:8 owned.tar /chowned/\n",
    )
    .unwrap();
    let tree = tmp.join("tree");
    let out = store
        .pallet()
        .args(["build", "-o", tree.to_str().unwrap(), ctx.to_str().unwrap()])
        .output();
    assert!(out.status.success(), "{}", text(&out.stderr));
    use std::os::unix::fs::MetadataExt;
    let owner = |p: &str| {
        let m = std::fs::metadata(tree.join(p)).unwrap();
        (m.uid(), m.gid())
    };
    assert_eq!(owner("kept/app.txt"), (1000, 1000));
    assert_eq!(owner("kept/www.txt"), (33, 33));
    assert_eq!(owner("chowned/app.txt"), (7, 8));
    assert_eq!(
        std::fs::read_to_string(tree.join("after")).unwrap(),
        "after\n"
    );
    for d in ["proc", "dev", "sys"] {
        let m = std::fs::symlink_metadata(tree.join(d)).unwrap();
        assert!(
            m.is_dir() && m.mode() & 0o777 == 0o755,
            "/{d} as BuildKit leaves it"
        );
    }
}

/// RUN bind-mount sources from the context resolve symlinks inside the context, as COPY
/// does: an absolute link is relative to the context root, and nothing on the host is reached.
#[test]
fn bind_mount_sources_resolve_inside_the_context() {
    if !can_run() {
        return;
    }
    let store = Store::busybox(pallet!());
    let tmp = store.dir();
    let ctx = tmp.join("ctx");
    std::fs::create_dir_all(ctx.join("data")).unwrap();
    std::fs::write(ctx.join("data/real.txt"), "inside\n").unwrap();
    std::os::unix::fs::symlink("/data/real.txt", ctx.join("abs")).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", ctx.join("escape")).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nRUN --mount=type=bind,source=abs,target=/m cat /m > /out\n",
    )
    .unwrap();
    let tree = tmp.join("tree");
    let out = store
        .pallet()
        .args(["build", "-o", tree.to_str().unwrap(), ctx.to_str().unwrap()])
        .output();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        std::fs::read_to_string(tree.join("out")).unwrap(),
        "inside\n"
    );
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nRUN --mount=type=bind,source=escape,target=/m cat /m\n",
    )
    .unwrap();
    let out = store
        .pallet()
        .args(["build", ctx.to_str().unwrap()])
        .output();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("mount source /escape does not exist"),
        "{}",
        text(&out.stderr)
    );
}

/// What overlayfs copied up without a change stays out of the layer, as BuildKit's overlay
/// differ leaves it out: /etc (copied up for runc's /etc/hosts stub) and a file opened for
/// appending but not written.
#[test]
fn unchanged_copy_ups_stay_out_of_run_layers() {
    if !can_run() {
        return;
    }
    let store = Store::busybox(pallet!());
    let tmp = store.dir();
    let ctx = context(
        &tmp.join("ctx"),
        "FROM busybox\nRUN : >> /etc/passwd && echo hi > /tmp/x\n",
        &[],
    );
    let layout = tmp.join("oci");
    let dest = format!(
        "type=oci,dest={},tar=false,compression=uncompressed",
        layout.display()
    );
    let out = store
        .pallet()
        .args(["build", "-o", &dest, ctx.to_str().unwrap()])
        .output();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (_, run_layer) = Layout::new(&layout).last_layer();
    let mut names: Vec<String> = tar::Archive::new(std::fs::File::open(run_layer).unwrap())
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(names.contains(&"tmp/x".to_string()), "{names:?}");
    assert!(
        !names.iter().any(|n| n.starts_with("etc")),
        "unchanged /etc and /etc/passwd are not changes: {names:?}"
    );
}

/// A cached rebuild gives the same image, as BuildKit's does: history times come from when each
/// layer was made (its cache record), not from the rebuild, and the entries without a layer take
/// the first new layer's time before it and the previous entry's after (BuildKit's exporter).
#[test]
fn a_cached_rebuild_gives_the_same_image() {
    if !can_run() {
        return;
    }
    let store = Store::busybox(pallet!());
    let tmp = store.dir();
    let ctx = context(&tmp.join("ctx"), "FROM busybox\nENV A=1\nRUN echo one > /one\nUSER 1000\nRUN echo two > /tmp/two\nCMD [\"sh\"]\n", &[]);
    let build = || {
        let out = store
            .pallet()
            .args(["build", "-t", "same:1", ctx.to_str().unwrap()])
            .output();
        assert!(out.status.success(), "{}", text(&out.stderr));
        let line = text(&out.stderr);
        let digest = line
            .split_whitespace()
            .find(|w| w.starts_with("sha256:"))
            .expect("the summary names the digest")
            .to_string();
        (digest, line)
    };
    let (first, _) = build();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (second, log) = build();
    assert!(log.contains("0 misses"), "{log}");
    assert_eq!(first, second, "same image from the cache");

    let out = store
        .pallet()
        .args(["history", "--format", "json", "same:1"])
        .output();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let entries: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let created: Vec<String> = entries
        .iter()
        .map(|e| e["created"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(created.iter().all(|c| !c.is_empty()), "{entries:?}");
    // The base's entry keeps its own time; ENV takes the first RUN's; USER the first RUN's
    // (the previous entry); CMD the second RUN's.
    let by = |what: &str| {
        entries
            .iter()
            .position(|e| e.to_string().contains(what))
            .unwrap_or_else(|| panic!("no {what} in {entries:?}"))
    };
    let (env, one, user, two, cmd) = (by("ENV A=1"), by("one"), by("USER"), by("two"), by("CMD"));
    assert_eq!(created[env], created[one]);
    assert_eq!(created[user], created[one]);
    assert_eq!(created[cmd], created[two]);
}

/// A COPY into a new directory is written straight into the step's upper dir (no overlay)
/// when nothing in the lower layers is in the way; `--chown=root` (a name) still takes the
/// overlay. Both must give the same layer, byte for byte: parents copied up with their mode,
/// owner and xattrs, the files below them.
#[test]
fn a_copy_straight_into_the_upper_dir_makes_the_overlay_s_layer() {
    if !can_run() {
        return;
    }
    let store = Store::busybox(pallet!());
    let tmp = store.dir();
    let layer_of = |chown: &str| -> (String, Vec<String>) {
        let ctx = tmp.join(format!("ctx-{}", chown.replace(':', "-")));
        std::fs::create_dir_all(ctx.join("data/sub")).unwrap();
        std::fs::write(ctx.join("data/a.txt"), "a\n").unwrap();
        std::fs::write(ctx.join("data/sub/b.bin"), vec![7u8; 200_000]).unwrap();
        std::fs::write(
            ctx.join("Dockerfile"),
            format!(
                "FROM busybox\n\
                 RUN mkdir -p /srv/app && chown 1000:1001 /srv/app && chmod 2750 /srv/app\n\
                 COPY --chown={chown} data/ /srv/app/data/\n"
            ),
        )
        .unwrap();
        let layout = tmp.join(format!("oci-{}", chown.replace(':', "-")));
        let dest = format!(
            "type=oci,dest={},tar=false,compression=uncompressed",
            layout.display()
        );
        let out = store
            .pallet()
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .args(["build", "-o", &dest])
            .arg(&ctx)
            .output();
        assert!(out.status.success(), "{}", text(&out.stderr));
        let (digest, blob) = Layout::new(&layout).last_layer();
        let mut entries: Vec<String> = tar::Archive::new(std::fs::File::open(blob).unwrap())
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                format!(
                    "{} {:o} {}:{}",
                    e.path().unwrap().display(),
                    h.mode().unwrap(),
                    h.uid().unwrap(),
                    h.gid().unwrap()
                )
            })
            .collect();
        entries.sort();
        (digest, entries)
    };
    let (direct, entries) = layer_of("0:0");
    let (overlay, _) = layer_of("root");
    assert!(
        entries.contains(&"srv/app/ 2750 1000:1001".to_string()),
        "the parent keeps its mode and owner: {entries:?}"
    );
    assert!(
        entries.contains(&"srv/app/data/sub/b.bin 644 0:0".to_string()),
        "{entries:?}"
    );
    assert_eq!(direct, overlay, "same layer either way: {entries:?}");
}

/// `pallet build .` (a relative context, as everyone types it): a read-only bind mount of the
/// context, whole or one file, shows the context, never the runc bundle (issue 13, defect 1:
/// the relative source was resolved by runc against the bundle dir, exposing the step's spec).
#[test]
fn bind_mounts_of_a_relative_context_show_the_context() {
    if !can_run() {
        return;
    }
    let store = Store::busybox(pallet!());
    let tmp = store.dir();
    let ctx = tmp.join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("a.txt"), "from the context\n").unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\n\
         RUN --mount=type=bind,target=/x ls /x > /listing\n\
         RUN --mount=type=bind,source=a.txt,target=/a.txt cat /a.txt > /a.out\n",
    )
    .unwrap();
    let tree = tmp.join("tree");
    let out = store
        .pallet()
        .current_dir(&ctx)
        .args(["build", "-o", tree.to_str().unwrap(), "."])
        .output();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        std::fs::read_to_string(tree.join("listing")).unwrap(),
        "Dockerfile\na.txt\n"
    );
    assert_eq!(
        std::fs::read_to_string(tree.join("a.out")).unwrap(),
        "from the context\n"
    );
}

/// `--label` as buildx passes docker/metadata-action's OCI labels: set on the image config,
/// winning over the Dockerfile's LABEL of the same key, with no history entry of its own.
#[test]
fn labels_from_the_command_line_reach_the_image_config() {
    if !can_run() {
        return;
    }
    let store = Store::busybox(pallet!());
    let ctx = store.dir().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nLABEL a=dockerfile b=kept\n",
    )
    .unwrap();
    let out = store
        .pallet()
        .current_dir(&ctx)
        .args(["build", "-t", "labelled", "--label", "a=flag"])
        .args(["--label", "org.opencontainers.image.revision=abc123"])
        .args(["--label", "bare", "."])
        .output();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json = store
        .pallet()
        .args(["inspect", "--format", "json", "labelled"])
        .ok();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let labels = &v["config"]["config"]["Labels"];
    assert_eq!(labels["a"], "flag", "{labels}");
    assert_eq!(labels["b"], "kept", "{labels}");
    assert_eq!(labels["org.opencontainers.image.revision"], "abc123");
    assert_eq!(labels["bare"], "");
    let history = v["config"]["history"].as_array().unwrap();
    assert!(
        !history.iter().any(|h| h.to_string().contains("abc123")),
        "a --label is not a step: {history:?}"
    );
    // A rebuild from the cache with another label value gives an image with that value.
    let out = store
        .pallet()
        .current_dir(&ctx)
        .args(["build", "-t", "labelled", "--label", "a=changed", "."])
        .output();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json = store
        .pallet()
        .args(["inspect", "--format", "json", "labelled"])
        .ok();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["config"]["config"]["Labels"]["a"], "changed");
    let bad = store
        .pallet()
        .current_dir(&ctx)
        .args(["build", "--label", "=v", "."])
        .output();
    assert!(!bad.status.success());
    assert!(
        text(&bad.stderr).contains("the key is empty"),
        "{}",
        text(&bad.stderr)
    );
}

/// Directories a COPY creates get an octal `--chmod`'s mode, as current BuildKit gives them
/// (fsutil's `CopyInfo.Mode` with a zero umask); a symbolic `--chmod` leaves them 0755.
#[test]
fn parents_made_by_copy_chmod_get_its_mode() {
    if !can_run() {
        return;
    }
    let store = Store::busybox(pallet!());
    let ctx = store.dir().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("a.txt"), "a\n").unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\n\
         COPY --chmod=0750 a.txt /octal/deep/a.txt\n\
         COPY --chmod=u+x a.txt /symbolic/deep/a.txt\n\
         RUN stat -c '%n %a' /octal /octal/deep /octal/deep/a.txt \
             /symbolic /symbolic/deep /symbolic/deep/a.txt > /modes\n",
    )
    .unwrap();
    let tree = store.dir().join("tree");
    let out = store
        .pallet()
        .current_dir(&ctx)
        .args(["build", "-o", tree.to_str().unwrap(), "."])
        .output();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        std::fs::read_to_string(tree.join("modes")).unwrap(),
        "/octal 750\n/octal/deep 750\n/octal/deep/a.txt 750\n\
         /symbolic 755\n/symbolic/deep 755\n/symbolic/deep/a.txt 744\n"
    );
}

/// `RUN --security=insecure` is refused at its line unless `--allow security.insecure` grants
/// it; granted, the step runs with every capability and no seccomp filter (it can mount), and
/// the steps without it stay sandboxed in the same build.
#[test]
fn security_insecure_needs_allow_and_then_runs_unconfined() {
    if !can_run() {
        return;
    }
    let store = Store::busybox(pallet!());
    let ctx = store.dir().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\n\
         RUN grep -E '^(CapEff|Seccomp):' /proc/self/status > /sandbox; \
             mkdir -p /m; if mount -t tmpfs none /m 2>/dev/null; then echo mounted; else echo refused; fi >> /sandbox\n\
         RUN --security=insecure grep -E '^(CapEff|Seccomp):' /proc/self/status > /insecure; \
             mkdir -p /m; if mount -t tmpfs none /m; then echo mounted; umount /m; else echo refused; fi >> /insecure\n\
         RUN [ ! -e /dev/fuse ] && [ ! -e /dev/loop-control ]\n\
         RUN --security=insecure [ -c /dev/fuse ] && [ -c /dev/loop-control ] && dmesg > /dev/null\n",
    )
    .unwrap();
    let tree = store.dir().join("tree");
    let refused = store
        .pallet()
        .current_dir(&ctx)
        .args(["build", "-o", tree.to_str().unwrap(), "."])
        .output();
    assert!(!refused.status.success());
    let err = text(&refused.stderr);
    // BuildKit's text (dockerfile_runsecurity_test.go).
    assert!(
        err.contains("entitlement security.insecure is not allowed"),
        "{err}"
    );
    assert!(err.contains("Dockerfile:3"), "{err}");
    assert!(err.contains("--allow security.insecure"), "{err}");
    assert!(!tree.exists(), "nothing ran, nothing was written");

    let out = store
        .pallet()
        .current_dir(&ctx)
        .args(["build", "--allow", "security.insecure"])
        .args(["-o", tree.to_str().unwrap(), "."])
        .output();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let sandbox = std::fs::read_to_string(tree.join("sandbox")).unwrap();
    let insecure = std::fs::read_to_string(tree.join("insecure")).unwrap();
    // Docker's 14 default capabilities, the default seccomp profile, no mounts.
    assert_eq!(
        sandbox, "CapEff:\t00000000a80425fb\nSeccomp:\t2\nrefused\n",
        "{sandbox}"
    );
    // Every capability pallet has (all 41 where it runs as full root), no filter, mount works.
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let bounding = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .unwrap()
        .trim();
    assert_eq!(
        insecure,
        format!("CapEff:\t{bounding}\nSeccomp:\t0\nmounted\n"),
        "{insecure}"
    );
}

/// Proxy build args (HTTP_PROXY, no_proxy...) reach RUN's environment without an ARG, as
/// BuildKit's proxy env does, and stay out of the history and the cache key: another proxy
/// value is a cache hit.
#[test]
fn proxy_build_args_reach_run_but_not_the_history_or_the_key() {
    if !can_run() {
        return;
    }
    let store = Store::busybox(pallet!());
    let ctx = store.dir().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nRUN echo \"$HTTP_PROXY|$no_proxy|$FTP_PROXY\" > /proxy\n",
    )
    .unwrap();
    let build = |proxy: &str, tree: &str| {
        let out = store
            .pallet()
            .current_dir(&ctx)
            .args(["build", "--progress", "plain", "-t", "proxied"])
            .args(["--build-arg", &format!("HTTP_PROXY={proxy}")])
            .args(["--build-arg", "no_proxy=localhost"])
            .args(["-o", store.dir().join(tree).to_str().unwrap(), "."])
            .output();
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stderr)
    };
    build("http://proxy.example:3128", "one");
    assert_eq!(
        std::fs::read_to_string(store.dir().join("one/proxy")).unwrap(),
        "http://proxy.example:3128|localhost|\n"
    );
    let json = store
        .pallet()
        .args(["inspect", "--format", "json", "proxied"])
        .ok();
    assert!(!json.contains("proxy.example"), "history or config: {json}");
    let again = build("http://other.example:8080", "two");
    assert!(again.contains("cache: 2 hits, 0 misses"), "{again}");
}

/// Cache keys are machine-independent (what a shared cache needs, issue 17): the ML example
/// built from two copies of its context at different paths (different inodes and times),
/// into two stores, files its steps under the same keys, and gives the same image.
#[test]
fn cache_keys_are_the_same_for_another_store_and_context_path() {
    if !can_run() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let build = |name: &str| -> (Vec<String>, String) {
        let ctx = dir.path().join(format!("checkout-{name}/src/app"));
        copy_dir(&example("ml-busybox"), &ctx);
        let root = dir.path().join(format!("store-{name}"));
        let pallet = pallet!().root(&root).env("SOURCE_DATE_EPOCH", "1700000000");
        // The base as a registry would serve it: the same image in both stores (an import
        // records the tar's name in the history, so both import "base.tar").
        pallet
            .clone()
            .current_dir(dir.path())
            .args(["import", "base.tar", "-t", "busybox:latest"])
            .ok();
        let out = pallet
            .clone()
            .current_dir(&ctx)
            .args(["build", "-t", "ml:keys", "."])
            .output();
        let log = text(&out.stderr);
        assert!(out.status.success(), "{log}");
        let digest = testkit::progress::built_digest(&log);
        let index = cache::Index::open(&root.join("index.redb")).unwrap();
        let mut keys: Vec<String> = index
            .list_cache()
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .filter(|k| k.starts_with("step/"))
            .collect();
        keys.sort();
        (keys, digest)
    };
    Rootfs::new().write_tar(&dir.path().join("base.tar"));
    let (keys_a, image_a) = build("a");
    // Another checkout made later: other inodes and mtimes, another absolute path.
    std::thread::sleep(std::time::Duration::from_millis(20));
    let (keys_b, image_b) = build("bb");
    assert!(
        keys_a.len() >= 4,
        "the example's steps have keys: {keys_a:?}"
    );
    assert_eq!(keys_a, keys_b, "step keys differ between stores");
    assert_eq!(image_a, image_b);
}
