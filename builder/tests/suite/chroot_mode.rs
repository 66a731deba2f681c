//! Chroot isolation (`--isolation chroot`), run as root here: the tree snapshotter and the
//! chroot executor must give the same image as root mode (runc over overlayfs), byte for byte,
//! for the ML example with SOURCE_DATE_EPOCH; a step's removals, renames, cache mounts and
//! secrets come out as in root mode; what chroot mode cannot do fails at its step, saying why.
//!
//! Needs root (to run both modes here), busybox-static and runc (root mode).

use std::path::Path;
use testkit::busybox::Rootfs;
use testkit::files::copy_dir;
use testkit::store::import_busybox;
use testkit::{pallet, repo, require, text, Need::*};

fn can_run() -> bool {
    require("chroot isolation test", &[Root, Busybox, Tool("runc")])
}

/// Builds `ctx` in a fresh store at `root` with `--isolation mode`; the build's log and the
/// manifest digest it printed.
fn build(root: &Path, mode: &str, ctx: &Path, extra: &[&str]) -> (String, String) {
    let pallet = pallet!().root(root).env("SOURCE_DATE_EPOCH", "1700000000");
    if !root.exists() {
        // Every store gets the same base image: the same tar under the same name (an import
        // records the tar's name in the history).
        let dir = root.parent().expect("a store inside a test dir");
        let tar = dir.join("base.tar");
        if !tar.exists() {
            Rootfs::new().write_tar(&tar);
        }
        pallet
            .clone()
            .current_dir(dir)
            .args(["import", "base.tar", "-t", "busybox:latest"])
            .ok();
    }
    let out = pallet
        .args(["build", "--isolation", mode, "-t", "t:1"])
        .args(extra)
        .arg(ctx)
        .output();
    let log = text(&out.stderr);
    assert!(out.status.success(), "{mode} build failed:\n{log}");
    let digest = testkit::progress::built_digest(&log);
    (log, digest)
}

#[test]
fn ml_example_gives_the_root_mode_digest_in_chroot_mode() {
    if !can_run() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path().join("ctx");
    copy_dir(&repo::testdata("examples").join("ml-busybox"), &ctx);
    let (_, root) = build(&dir.path().join("root"), "root", &ctx, &[]);
    let (log, chroot) = build(&dir.path().join("chroot"), "chroot", &ctx, &[]);
    assert!(
        log.contains("isolation: chroot (no mounts, no user namespaces)"),
        "{log}"
    );
    assert!(log.contains("downloading numpy"), "{log}");
    assert_eq!(
        root, chroot,
        "chroot mode changed the manifest digest:\n{log}"
    );
    // Nothing stays behind: no trees in the store's tmp/, no /proc mounts in them.
    let tmp = dir.path().join("chroot/tmp");
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "left in {}: {left:?}", tmp.display());
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let dir_s = dir.path().to_str().unwrap();
    assert!(!mounts.contains(dir_s), "a mount stayed:\n{mounts}");
}

/// testdata/examples/step-changes (removals, a directory made again, a rename, a chmod, a file
/// rewritten unchanged, a symlink to `/`, a secret, a tmpfs, a cache): the same layers as root.
#[test]
fn step_changes_come_out_as_in_root_mode() {
    if !can_run() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ctx = repo::testdata("examples").join("step-changes");
    let secret = dir.path().join("tok");
    std::fs::write(&secret, "s3cret").unwrap();
    let flag = format!("id=tok,src={}", secret.display());
    let extra = ["--secret", flag.as_str()];
    let (_, root) = build(&dir.path().join("root"), "root", &ctx, &extra);
    let (log, chroot) = build(&dir.path().join("chroot"), "chroot", &ctx, &extra);
    assert_eq!(
        root, chroot,
        "chroot mode changed the manifest digest:\n{log}"
    );
}

#[test]
fn network_none_fails_at_its_step_saying_why() {
    if !can_run() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nRUN --network=none true\n",
    )
    .unwrap();
    let root = dir.path().join("store");
    let pallet = pallet!().root(&root);
    import_busybox(&pallet, &Rootfs::new());
    let out = pallet
        .args(["build", "--isolation", "chroot"])
        .arg(&ctx)
        .output();
    let log = text(&out.stderr);
    assert!(!out.status.success(), "{log}");
    assert!(
        log.contains("--network=none needs a network namespace"),
        "{log}"
    );
}

/// A step that swaps the parent of a secret's or a cache's stand-in for a symlink out of the
/// tree: pallet takes its stand-ins out through the tree only (O_NOFOLLOW), so nothing
/// outside the tree is removed or moved, and the build fails saying what happened.
#[test]
fn a_symlinked_mount_parent_cannot_make_pallet_touch_the_host() {
    if !can_run() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let host = dir.path().join("host-side");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("tok"), "host file").unwrap();
    std::fs::create_dir_all(host.join("c")).unwrap();
    std::fs::write(host.join("c/keep"), "host cache-named dir").unwrap();
    let ctx = dir.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    let h = host.display();
    for (n, step) in [
        (
            "secret",
            format!("RUN --mount=type=secret,id=tok,target=/s/tok rm -rf /s && ln -s {h} /s"),
        ),
        (
            "cache",
            format!("RUN --mount=type=cache,target=/k/c rm -rf /k && ln -s {h} /k"),
        ),
    ] {
        std::fs::write(ctx.join("Dockerfile"), format!("FROM busybox\n{step}\n")).unwrap();
        let secret = dir.path().join("tok");
        std::fs::write(&secret, "s3cret").unwrap();
        let root = dir.path().join(format!("store-{n}"));
        let pallet = pallet!().root(&root);
        import_busybox(&pallet, &Rootfs::new());
        let out = pallet
            .args(["build", "--isolation", "chroot", "--secret"])
            .arg(format!("id=tok,src={}", secret.display()))
            .arg(&ctx)
            .output();
        let log = text(&out.stderr);
        assert_eq!(
            std::fs::read_to_string(host.join("tok")).unwrap(),
            "host file",
            "{n}: {log}"
        );
        assert!(host.join("c/keep").is_file(), "{n}: {log}");
        assert!(!out.status.success(), "{n}: {log}");
        assert!(log.contains("stand-in for a mount"), "{n}: {log}");
    }
}

/// `--isolation chroot` where it cannot work says why: as a normal user (no uid 0), and as
/// root without CAP_SYS_CHROOT (a pod that dropped it).
#[test]
fn forced_chroot_where_it_cannot_work_says_why() {
    if !require("chroot isolation errors", &[Root, Busybox, Tool("setpriv")]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), "FROM busybox\nRUN true\n").unwrap();
    let root = dir.path().join("store");
    import_busybox(&pallet!().root(&root), &Rootfs::new());
    use std::os::unix::fs::PermissionsExt;
    for p in [dir.path(), root.as_path(), ctx.as_path()] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    // The normal user gets a store of its own (the mode is refused before any step).
    let nobody_store = dir.path().join("nobody-store");
    let cases: [(&[&str], &Path, &str); 2] = [
        (
            &["--reuid=65534", "--regid=65534", "--clear-groups"],
            &nobody_store,
            "isolation chroot cannot work here: it needs uid 0",
        ),
        (
            &["--bounding-set=-sys_chroot", "--inh-caps=-sys_chroot"],
            &root,
            "CAP_SYS_CHROOT is not among this process's capabilities",
        ),
    ];
    for (setpriv, root, want) in cases {
        let out = std::process::Command::new("setpriv")
            .args(setpriv)
            .arg(env!("CARGO_BIN_EXE_pallet"))
            .arg("--root")
            .arg(root)
            .args(["build", "--isolation", "chroot"])
            .arg(&ctx)
            .env("HOME", dir.path())
            .output()
            .unwrap();
        let log = text(&out.stderr);
        assert!(!out.status.success(), "{log}");
        assert!(log.contains(want), "{setpriv:?}: {log}");
    }
}

/// `pallet run --isolation chroot` runs a container from a stored image the same way: the
/// image's user, /dev nodes, the hosts file; the store's tmp/ is empty afterwards.
#[test]
fn pallet_run_in_chroot_mode() {
    if !can_run() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let pallet = pallet!().root(&root);
    import_busybox(&pallet, &Rootfs::new());
    let out = pallet
        .clone()
        .args([
            "run",
            "--rm",
            "--isolation",
            "chroot",
            "-u",
            "app",
            "busybox",
        ])
        .args([
            "sh",
            "-c",
            "id -u; test -c /dev/null && echo dev; grep -c localhost /etc/hosts",
        ])
        .output();
    let log = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{log}");
    assert!(text(&out.stdout).starts_with("1000\ndev\n2\n"), "{log}");
    let left: Vec<_> = std::fs::read_dir(root.join("tmp"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
}

/// The cache serves a step across modes where the result is the same bytes: a store built in
/// root mode rebuilds in chroot mode (and back) from the cache, with the same image.
#[test]
fn the_cache_hits_across_root_and_chroot_modes() {
    if !can_run() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path().join("ctx");
    copy_dir(&repo::testdata("examples").join("ml-busybox"), &ctx);
    let store = dir.path().join("store");
    let (_, first) = build(&store, "root", &ctx, &[]);
    let (log, again) = build(&store, "chroot", &ctx, &[]);
    assert!(
        log.contains(", 0 misses"),
        "chroot after root ran steps:\n{log}"
    );
    assert_eq!(first, again);
    let (log, back) = build(&store, "root", &ctx, &[]);
    assert!(
        log.contains(", 0 misses"),
        "root after chroot ran steps:\n{log}"
    );
    assert_eq!(first, back);
    // A step that changed runs in chroot mode on root mode's cached layers below it.
    std::fs::write(ctx.join("src/serve.sh"), "echo changed\n").unwrap();
    let (log, changed) = build(&store, "chroot", &ctx, &[]);
    assert!(!log.contains(", 0 misses"), "{log}");
    assert_ne!(first, changed);
}

/// A store built in chroot mode where overlayfs's usual markers are refused (as in an
/// unprivileged container: no CAP_MKNOD for the 0/0 whiteout device, no CAP_SYS_ADMIN for
/// `trusted.*` xattrs) holds `user.overlay.*` markers, which root mode's overlayfs does not
/// read; root mode on that store gives them their usual form first, so a file a cached step
/// removed stays removed and an opaque directory stays opaque under root's next RUN.
#[test]
fn root_mode_reads_a_store_chroot_mode_made_without_device_whiteouts() {
    if !can_run() || !require("user-form markers", &[Tool("setpriv")]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    import_busybox(&pallet!().root(&store), &Rootfs::new());
    let steps = "FROM busybox\n\
        RUN mkdir /d && echo old > /d/f && echo x > /gone\n\
        RUN rm /gone && rm -rf /d && mkdir /d && echo new > /d/n\n";
    let ctx = dir.path().join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), steps).unwrap();
    let out = std::process::Command::new("setpriv")
        .args([
            "--bounding-set=-mknod,-sys_admin",
            "--inh-caps=-mknod,-sys_admin",
        ])
        .arg(env!("CARGO_BIN_EXE_pallet"))
        .arg("--root")
        .arg(&store)
        .args(["build", "--isolation", "chroot"])
        .arg(&ctx)
        .env("HOME", dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let note = store.join("tmp/user-markers");
    assert!(
        note.exists(),
        "chroot mode without the capabilities notes user-form markers"
    );
    // Without CAP_SYS_ADMIN the opaque directory is marked in `user.` (a 0/0 whiteout device
    // needs no capability since Linux 5.8; where overlayfs is the store's filesystem it is
    // refused and the whiteout is an xattr-marked file, converted the same way).
    let opaque = |xattr_name: &str| {
        entries_named(&store.join("snapshots"), "d")
            .into_iter()
            .filter(|p| xattr::get(p, xattr_name).ok().flatten().as_deref() == Some(b"y"))
            .count()
    };
    assert_eq!(
        opaque("user.overlay.opaque"),
        1,
        "chroot mode marked /d in user."
    );
    assert_eq!(opaque("trusted.overlay.opaque"), 0);

    std::fs::write(
        ctx.join("Dockerfile"),
        format!("{steps}RUN test ! -e /gone && test ! -e /d/f && cat /d/n\n"),
    )
    .unwrap();
    let (log, _) = build(&store, "root", &ctx, &[]);
    assert!(
        log.contains(", 1 miss"),
        "the two steps before are cached:\n{log}"
    );
    assert!(
        !note.exists(),
        "root mode drops the note once the markers are converted"
    );
    assert_eq!(
        opaque("trusted.overlay.opaque"),
        1,
        "root mode's form added"
    );
    // Chroot mode still reads the store after root converted it.
    let (log, _) = build(&store, "chroot", &ctx, &[]);
    assert!(log.contains(", 0 misses"), "{log}");
}

/// Every entry named `name` under `dir`, of any type, without following symlinks.
fn entries_named(dir: &Path, name: &str) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.file_name() == name {
                found.push(e.path());
            }
            if e.file_type().unwrap().is_dir() {
                dirs.push(e.path());
            }
        }
    }
    found
}

/// Chroot mode moves a cache dir into the step's tree (there is no bind mount), so one dir
/// cannot be in two trees at once: two steps that share a cache mount (`sharing=shared`, the
/// default) and run at the same time take turns instead of failing, and both see the cache.
#[test]
fn two_steps_sharing_a_cache_mount_take_turns() {
    if !can_run() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    // Two independent stages run in parallel; each holds the cache for a while and leaves
    // a mark in it; the last stage reads both marks through the same cache.
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox AS a\n\
         RUN --mount=type=cache,target=/c sleep 1 && echo a > /c/a && cp /c/a /got-a\n\
         FROM busybox AS b\n\
         RUN --mount=type=cache,target=/c sleep 1 && echo b > /c/b && cp /c/b /got-b\n\
         FROM busybox\n\
         COPY --from=a /got-a /\n\
         COPY --from=b /got-b /\n\
         RUN --mount=type=cache,target=/c cat /c/a /c/b > /both\n",
    )
    .unwrap();
    let store = dir.path().join("store");
    let out = dir.path().join("out");
    let dest = format!("type=local,dest={}", out.display());
    let (log, _) = build(&store, "chroot", &ctx, &["-o", &dest]);
    let both = std::fs::read_to_string(out.join("both")).unwrap();
    assert_eq!(both, "a\nb\n", "the cache lost a step's mark:\n{log}");
}
