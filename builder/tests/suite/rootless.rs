//! Rootless mode (issue 14, "a normal user"): a user made for each test (useradd, with a
//! subordinate range appended to /etc/subuid and /etc/subgid, removed at the end) runs the real
//! pallet binary, which enters its user namespace through newuidmap/newgidmap and builds with
//! rootless runc over overlayfs `userxattr`.
//!
//! - the ML example builds end to end as that user in the default store
//!   (`$XDG_DATA_HOME/pallet`), runs with `pallet run`, and with SOURCE_DATE_EPOCH has the same
//!   manifest digest as the root build; its cache mount is reused when requirements change;
//! - layers (whiteouts, opaque dirs, owners 0/1000/65534, setuid, a fifo) are byte-identical to
//!   root's, and the files in the store are owned by the user's ranges on the host;
//! - secret, cache, tmpfs and bind mounts and `RUN --network=none` work;
//! - a root-only host file stays unreadable (a secret source, a `-v` mount, a symlink);
//! - SIGTERM and SIGKILL to the pallet the user started end everything it started;
//! - each mode forced where it cannot work says why and what to do; a store where the kernel
//!   refuses rootless overlayfs (on another overlayfs) builds on copied trees, root's layers;
//! - `push`, `save`, `prune`, `pull` and `run` work as the user against a real registry;
//! - a cache root exported (`--cache-to type=local`) answers every step of the user's build.
//!
//! Needs root (to make users), runc, busybox-static, newuidmap/newgidmap (uidmap), umoci and
//! docker-registry:
//! scripts/ensure-tools.sh installs them; under CI=true a missing one fails the tests.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;
use testkit::busybox::Rootfs;
use testkit::files::{all_files, file_contains};
use testkit::oci_layout::Layout;
use testkit::user::TestUser;
use testkit::{pallet, repo, require, text, wait, Need::*, Pallet, Store};

const EPOCH: &str = "1700000000";
const ROOTLESS_LINE: &str = "isolation: rootless (user namespace, overlayfs userxattr)";

fn can_run() -> bool {
    require(
        "rootless test",
        &[
            Root,
            Busybox,
            Tool("runc"),
            Tool("newuidmap"),
            Tool("newgidmap"),
            Tool("useradd"),
            Tool("umoci"),
        ],
    )
}

/// The busybox tar a test's stores import, in a directory every test user can read: the
/// import's history names the file, so one path gives one base image digest.
struct Base {
    dir: tempfile::TempDir,
}

impl Base {
    fn new() -> Base {
        let dir = tempfile::Builder::new()
            .prefix("pallet-rootless-base-")
            .tempdir()
            .unwrap();
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        testkit::files::write_mode(&dir.path().join("busybox.tar"), Rootfs::new().tar(), 0o644);
        Base { dir }
    }

    /// `pallet import TAR -t busybox:latest` with `pallet`.
    fn import(&self, pallet: &Pallet) {
        let out = pallet
            .clone()
            .arg("import")
            .arg(self.dir.path().join("busybox.tar"))
            .args(["-t", "busybox:latest"])
            .ok();
        assert!(
            out.starts_with("docker.io/library/busybox:latest sha256:"),
            "{out}"
        );
    }

    /// pallet as `user`, with SOURCE_DATE_EPOCH, and busybox:latest imported into their
    /// default store (by the user, so `import` runs rootless too).
    fn rootless(&self, user: &TestUser) -> Pallet {
        let pallet = user.pallet(pallet!()).env("SOURCE_DATE_EPOCH", EPOCH);
        self.import(&pallet);
        pallet
    }

    /// `dockerfile` built as root (a store of [`Base::root`]) into an OCI layout directory:
    /// the store (kept while the layout is read) and the layout's path.
    fn root_layout(&self, dockerfile: &str) -> (Store, PathBuf) {
        let (store, root) = self.root();
        let ctx = testkit::files::context(&store.path("ctx"), dockerfile, &[]);
        let layout = store.path("oci");
        root.args(["build", "-t", "t:1", "-o"])
            .arg(format!("type=oci,dest={},tar=false", layout.display()))
            .arg(&ctx)
            .succeeds();
        (store, layout)
    }

    /// A root store with busybox imported, with SOURCE_DATE_EPOCH.
    fn root(&self) -> (Store, Pallet) {
        let store = Store::empty(pallet!());
        let pallet = store.pallet().env("SOURCE_DATE_EPOCH", EPOCH);
        self.import(&pallet);
        (store, pallet)
    }
}

/// The manifest digest of `pallet: built NAME DIGEST ...`.
fn built_digest(out: &Output) -> String {
    testkit::progress::built_digest(&text(&out.stderr))
}

fn example(name: &str) -> PathBuf {
    repo::testdata("examples").join(name)
}

/// Every file under the OCI layout `dir` with its bytes, by relative path, sorted.
fn layout_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = all_files(dir)
        .into_iter()
        .map(|p| {
            let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
            (rel, std::fs::read(&p).unwrap())
        })
        .collect();
    files.sort();
    files
}

/// The first file named `name` under `dir`.
fn find(dir: &Path, name: &str) -> PathBuf {
    all_files(dir)
        .into_iter()
        .find(|p| p.file_name().is_some_and(|n| n == name))
        .unwrap_or_else(|| panic!("no {name} under {}", dir.display()))
}

#[test]
fn ml_example_builds_and_runs_as_a_normal_user_with_the_root_digest() {
    if !can_run() {
        return;
    }
    let base = Base::new();
    let (_root_store, root) = base.root();
    let root_out = root
        .args(["build", "-t", "ml:dev"])
        .arg(example("ml-busybox"))
        .succeeds();
    let root_digest = built_digest(&root_out);
    assert!(
        text(&root_out.stderr).starts_with("isolation: root (runc "),
        "a root build says its isolation first:\n{}",
        text(&root_out.stderr)
    );

    let user = TestUser::with_subids();
    let data = user.home.join("data");
    let pallet = base.rootless(&user).env("XDG_DATA_HOME", &data);
    // The import above went to the default store without XDG_DATA_HOME: ~/.local/share.
    assert!(user.home.join(".local/share/pallet/index.redb").is_file());
    base.import(&pallet);
    let ctx = user.give(&example("ml-busybox"), "ml");
    let out = pallet
        .clone()
        .args(["build", "--progress", "plain", "-t", "ml:dev"])
        .arg(&ctx)
        .succeeds();
    let log = text(&out.stderr);
    assert!(log.starts_with(&format!("{ROOTLESS_LINE}\n")), "{log}");
    assert!(log.contains("downloading numpy"), "{log}");
    assert_eq!(
        built_digest(&out),
        root_digest,
        "a rootless build has the root build's manifest digest:\n{log}"
    );

    // The store is $XDG_DATA_HOME/pallet, the user's; what the image owns as 1000 is owned
    // on the host by the user's subordinate uid for 1000, what it owns as 0 by the user.
    let store = data.join("pallet");
    assert_eq!(std::fs::metadata(&store).unwrap().uid(), user.uid);
    let serve = find(&store.join("snapshots"), "serve.sh");
    assert_eq!(
        std::fs::metadata(&serve).unwrap().uid(),
        user.host_uid(1000)
    );
    let weights = find(&store.join("snapshots"), "weights.bin");
    assert_eq!(std::fs::metadata(&weights).unwrap().uid(), user.uid);

    let run = pallet.clone().args(["run", "ml:dev"]).ok();
    assert_eq!(run, "serving 2 packages with weights-v1 as app\n");
    let id = pallet.clone().args(["run", "ml:dev", "id"]).ok();
    // The primary group is a supplementary one too, as docker run and BuildKit give it.
    assert_eq!(id, "uid=1000(app) gid=1000(app) groups=1000(app)\n");

    // A no-change rebuild runs nothing; new requirements rerun the install step, which finds
    // numpy in the cache mount.
    let out = pallet
        .clone()
        .args(["build", "--progress", "plain", "-t", "ml:dev"])
        .arg(&ctx)
        .succeeds();
    assert!(!text(&out.stderr).contains("DONE"), "{}", text(&out.stderr));
    std::fs::write(ctx.join("requirements.txt"), "numpy\nscikit-learn\ntorch\n").unwrap();
    let out = pallet
        .clone()
        .args(["build", "--progress", "plain", "-t", "ml:dev"])
        .arg(&ctx)
        .succeeds();
    let log = text(&out.stderr);
    assert!(
        log.contains("cached numpy") && log.contains("downloading torch"),
        "{log}"
    );
    // Only the detached settle helper (syncfs after a build) may outlive a command, briefly.
    assert!(
        wait::until(Duration::from_secs(20), Duration::from_millis(50), || {
            user.processes().is_empty()
        }),
        "{:?}",
        user.processes()
    );
}

/// Whiteouts, an opaque directory, owners 0, 1000 and 65534, a setuid bit and a fifo: the
/// layers a rootless build writes are the root build's, byte for byte.
#[test]
fn rootless_layers_are_root_s_byte_for_byte_with_the_image_s_owners() {
    if !can_run() {
        return;
    }
    let dockerfile = "FROM busybox\n\
        RUN mkdir -p /d/sub && echo a > /d/sub/f && echo b > /d/g && mkdir /e && echo x > /e/x \
            && chown -R 1000:1000 /e && mknod /fifo p\n\
        RUN rm -rf /d && mkdir /d && echo new > /d/h && rm /e/x && chmod 4755 /bin/busybox \
            && chown 65534:65534 /d/h\n";
    let base = Base::new();
    let (_root_store, root_layout) = base.root_layout(dockerfile);

    let user = TestUser::with_subids();
    let pallet = base.rootless(&user);
    let ctx = user.file("ctx/Dockerfile", dockerfile);
    let layout = user.home.join("oci");
    pallet
        .args(["build", "-t", "t:1", "-o"])
        .arg(format!("type=oci,dest={},tar=false", layout.display()))
        .arg(ctx.parent().unwrap())
        .succeeds();

    let (a, b) = (layout_files(&root_layout), layout_files(&layout));
    assert_eq!(
        a.iter().map(|f| &f.0).collect::<Vec<_>>(),
        b.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    for ((name, x), (_, y)) in a.iter().zip(&b) {
        assert!(x == y, "{name} differs between root and rootless");
    }

    let layers = Layout::new(&layout).layer_entries();
    let entry = |layer: usize, path: &str| {
        layers[layer]
            .iter()
            .find(|e| e.path == path)
            .unwrap_or_else(|| panic!("no {path} in layer {layer}: {:?}", layers[layer]))
            .clone()
    };
    assert_eq!((entry(1, "e/x").uid, entry(1, "e/x").gid), (1000, 1000));
    assert_eq!(entry(1, "d/g").uid, 0, "root-owned files stay uid 0");
    assert_eq!(entry(1, "fifo").uid, 0);
    assert_eq!((entry(2, "d/h").uid, entry(2, "d/h").gid), (65534, 65534));
    assert_eq!(entry(2, "bin/busybox").mode & 0o4000, 0o4000);
    entry(2, "d/.wh..wh..opq");
    entry(2, "e/.wh.x");
}

/// Secret, cache, tmpfs and bind mounts and `RUN --network=none`, rootless; the secret is in no
/// file of the store or the output.
#[test]
fn mounts_and_network_none_work_rootless() {
    if !can_run() {
        return;
    }
    let base = Base::new();
    let user = TestUser::with_subids();
    let pallet = base.rootless(&user);
    let secret = "rootless-s3cr3t-4f1d";
    let secret_file = user.file("token", secret);
    user.file("ctx/data.txt", "bound\n");
    let ctx = user.file(
        "ctx/Dockerfile",
        "FROM busybox\n\
         RUN --mount=type=cache,target=/cache sh -c 'echo run >> /cache/log; wc -l < /cache/log > /count'\n\
         RUN --mount=type=secret,id=tok sha256sum /run/secrets/tok | cut -d' ' -f1 > /sum\n\
         RUN --mount=type=secret,id=tok,env=TOKEN sh -c 'printf %s \"$TOKEN\" | sha256sum | cut -d\" \" -f1 > /env-sum'\n\
         RUN --network=none ls /sys/class/net > /nets\n\
         RUN --mount=type=tmpfs,target=/scratch sh -c 'echo hi > /scratch/x && cat /scratch/x > /tmpfs'\n\
         RUN --mount=type=bind,target=/ctx cat /ctx/data.txt > /bound\n",
    );
    let ctx = ctx.parent().unwrap();
    let out_dir = user.home.join("out");
    let build = |no_cache: bool| {
        let mut p = pallet
            .clone()
            .args(["build", "--secret"])
            .arg(format!("id=tok,src={}", secret_file.display()))
            .arg("-o")
            .arg(&out_dir);
        if no_cache {
            p = p.arg("--no-cache");
        }
        p.arg(ctx).succeeds()
    };
    build(false);
    let read = |name: &str| std::fs::read_to_string(out_dir.join(name)).unwrap();
    assert_eq!(read("count"), "1\n");
    let sum = testkit::digest::sha256(secret.as_bytes());
    assert_eq!(format!("sha256:{}", read("sum").trim()), sum);
    assert_eq!(format!("sha256:{}", read("env-sum").trim()), sum);
    assert_eq!(read("nets"), "lo\n", "--network=none has only loopback");
    assert_eq!(read("tmpfs"), "hi\n");
    assert_eq!(read("bound"), "bound\n");
    assert!(!out_dir.join("scratch/x").exists() && !out_dir.join("run/secrets/tok").exists());
    // A local output is the user's own, as docker's rootless export is.
    assert_eq!(
        std::fs::metadata(out_dir.join("count")).unwrap().uid(),
        user.uid
    );
    // The cache mount outlives the build: the step runs again and sees its first run.
    build(true);
    assert_eq!(read("count"), "2\n");
    let store = user.home.join(".local/share/pallet");
    for file in all_files(&store).into_iter().chain(all_files(&out_dir)) {
        assert!(
            !file_contains(&file, secret.as_bytes()),
            "{} holds the secret",
            file.display()
        );
    }
}

/// The user namespace gives pallet root's powers over the user's own ids only: a file only
/// root can read stays unreadable as a secret source, through `pallet run -v`, and through a
/// symlink in the context; the same `pallet run -v` as root reads it (the test is not vacuous).
#[test]
fn a_rootless_build_cannot_read_a_root_only_host_file() {
    if !can_run() {
        return;
    }
    let base = Base::new();
    let secret = "root-only-content-9b2e";
    let dir = tempfile::Builder::new()
        .prefix("pallet-root-only-")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let file = dir.path().join("shadow");
    testkit::files::write_mode(&file, secret, 0o600);

    let user = TestUser::with_subids();
    let pallet = base.rootless(&user);
    let ctx = user.file(
        "ctx/Dockerfile",
        format!(
            "FROM busybox\n\
             RUN --mount=type=bind,target=/ctx sh -c 'cat /ctx/link {f} /proc/1/root{f} 2>&1; true'\n",
            f = file.display()
        ),
    );
    let ctx = ctx.parent().unwrap();
    std::os::unix::fs::symlink(&file, ctx.join("link")).unwrap();
    user.chown_all(ctx);
    let out = pallet
        .clone()
        .args(["build", "--progress", "plain"])
        .arg(ctx)
        .succeeds();
    let log = testkit::run::printed(&out);
    assert!(!log.contains(secret), "{log}");
    assert!(log.contains("No such file or directory"), "{log}");

    // COPY of the symlink resolves its target inside the context, as in root mode.
    std::fs::write(ctx.join("Dockerfile"), "FROM busybox\nCOPY link /copied\n").unwrap();
    let out = pallet.clone().args(["build"]).arg(ctx).fails();
    let log = testkit::run::printed(&out);
    assert!(!log.contains(secret) && log.contains("not found"), "{log}");

    let out = pallet
        .clone()
        .args(["build", "--secret"])
        .arg(format!("id=s,src={}", file.display()))
        .arg(
            user.file(
                "ctx2/Dockerfile",
                "FROM busybox\nRUN --mount=type=secret,id=s cat /run/secrets/s\n",
            )
            .parent()
            .unwrap(),
        )
        .fails();
    let log = testkit::run::printed(&out);
    assert!(!log.contains(secret), "{log}");
    assert!(log.contains("ermission denied"), "{log}");

    let mount = format!("{}:/host:ro", dir.path().display());
    let out = pallet
        .clone()
        .args(["run", "-v", &mount, "busybox", "cat", "/host/shadow"])
        .output();
    let log = testkit::run::printed(&out);
    assert!(!out.status.success() && !log.contains(secret), "{log}");
    assert!(log.contains("ermission denied"), "{log}");

    let (_store, root) = base.root();
    let as_root = root
        .args(["run", "-v", &mount, "busybox", "cat", "/host/shadow"])
        .ok();
    assert_eq!(
        as_root, secret,
        "root reads it: the file is there to be read"
    );
}

/// SIGTERM to the pallet a user started cancels the build inside the namespace (exit 143,
/// "cancelled"); SIGKILL ends the pallet inside too (its parent-death signal), and the
/// container with it. Nothing of the user's keeps running either way.
#[test]
fn signals_to_a_rootless_pallet_end_everything_it_started() {
    if !can_run() {
        return;
    }
    let base = Base::new();
    let user = TestUser::with_subids();
    let pallet = base.rootless(&user);
    let ctx = user.file("slow/Dockerfile", "FROM busybox\nRUN sleep 60\n");
    let ctx = ctx.parent().unwrap();
    let sleeping = |user: &TestUser| {
        user.processes().into_iter().any(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "sleep")
        })
    };
    for (signal, code) in [(libc::SIGTERM, 128 + 15), (libc::SIGKILL, 128 + 9)] {
        let child = pallet
            .clone()
            .args(["build", "--progress", "plain"])
            .arg(ctx)
            .command()
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        assert!(
            wait::until(Duration::from_secs(30), Duration::from_millis(50), || {
                sleeping(&user)
            }),
            "the step never started"
        );
        // SAFETY: kill has no memory preconditions; the pid is our child's.
        unsafe { libc::kill(child.id() as i32, signal) };
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code().or(Some(128 + 9)), Some(code));
        if signal == libc::SIGTERM {
            assert!(
                text(&out.stderr).contains("build cancelled"),
                "{}",
                text(&out.stderr)
            );
        }
        assert!(
            wait::until(Duration::from_secs(10), Duration::from_millis(50), || {
                user.processes().is_empty()
            }),
            "left running after signal {signal}: {:?}",
            user.processes()
        );
    }
    // The next command finds what the killed build left and removes it.
    let out = pallet.args(["images"]).succeeds();
    assert!(
        text(&out.stderr).contains("leftover"),
        "{}",
        text(&out.stderr)
    );
}

/// Each mode asked for where it cannot work says what is missing and what to do.
#[test]
fn forced_modes_that_cannot_work_say_why() {
    if !can_run() {
        return;
    }
    let base = Base::new();
    let ctx_text = "FROM busybox\nRUN true\n";
    let fails = |p: Pallet| testkit::run::printed(&p.fails());

    // A user without a subordinate range.
    let plain = TestUser::without_subids();
    let ctx = plain.file("ctx/Dockerfile", ctx_text);
    let ctx = ctx.parent().unwrap();
    let pallet = plain.pallet(pallet!());
    let err = fails(
        pallet
            .clone()
            .args(["build", "--isolation", "rootless"])
            .arg(ctx),
    );
    assert!(
        err.contains(&format!(
            "isolation rootless cannot work here: no subuid range for {} in /etc/subuid",
            plain.name
        )) && err.contains("usermod --add-subuids"),
        "{err}"
    );
    let err = fails(pallet.clone().args(["build"]).arg(ctx));
    assert!(
        err.contains("isolation auto cannot work here") && err.contains("no subuid range"),
        "{err}"
    );
    // `pallet run` says the same, with docker run's exit code for its own failures.
    let out = pallet
        .clone()
        .args(["run", "--isolation", "rootless", "busybox", "true"])
        .output();
    let err = testkit::run::printed(&out);
    assert_eq!(out.status.code(), Some(125), "{err}");
    assert!(
        err.contains("isolation rootless cannot work here: no subuid range"),
        "{err}"
    );
    let err = fails(pallet.clone().args(["import", "/dev/null", "-t", "x"]));
    assert!(err.contains("no subuid range"), "{err}");
    let err = fails(
        pallet
            .clone()
            .args(["build", "--isolation", "root"])
            .arg(ctx),
    );
    assert!(err.contains("pallet is not running as root"), "{err}");
    let err = fails(pallet.args(["build", "--isolation", "chroot"]).arg(ctx));
    assert!(err.contains("isolation chroot cannot work here"), "{err}");

    // A user with a range, but no newuidmap on PATH.
    let user = TestUser::with_subids();
    let empty = user.home.join("empty-path");
    std::fs::create_dir(&empty).unwrap();
    let ctx = user.file("ctx/Dockerfile", ctx_text);
    let err = fails(
        user.pallet(pallet!())
            .env("PATH", &empty)
            .args(["build", "--isolation", "rootless"])
            .arg(ctx.parent().unwrap()),
    );
    assert!(
        err.contains("newuidmap is missing") && err.contains("apt-get install uidmap"),
        "{err}"
    );

    // Root asking for rootless.
    let (_store, root) = base.root();
    let err = fails(
        root.args(["build", "--isolation", "rootless"])
            .arg(ctx.parent().unwrap()),
    );
    assert!(err.contains("rootless mode is a normal user's"), "{err}");
}

/// A store on a filesystem where the kernel refuses rootless overlayfs (another overlayfs, as
/// in a container whose root is overlay): rootless mode falls back to copied trees, says so in
/// its header line with the filesystem, and builds the root build's layers byte for byte
/// (whiteouts, an opaque directory, owners); `pallet run` works on that store too.
#[test]
fn a_store_where_userxattr_overlay_is_refused_builds_on_copied_trees() {
    if !can_run() {
        return;
    }
    let dockerfile = "FROM busybox\n\
        RUN mkdir -p /d/sub && echo a > /d/sub/f && echo b > /d/g && mkdir /e && echo x > /e/x \
            && chown -R 1000:1000 /e\n\
        RUN rm -rf /d && mkdir /d && echo new > /d/h && rm /e/x && chown 65534:65534 /d/h\n\
        CMD [\"cat\", \"/d/h\"]\n";
    let base = Base::new();
    let (_root_store, root_layout) = base.root_layout(dockerfile);

    let user = TestUser::with_subids();
    let outer = tempfile::Builder::new()
        .prefix("pallet-nested-overlay-")
        .tempdir()
        .unwrap();
    let [lower, upper, work, merged] =
        ["lower", "upper", "work", "merged"].map(|d| outer.path().join(d));
    for dir in [&lower, &upper, &work, &merged] {
        std::fs::create_dir(dir).unwrap();
    }
    let mounted = testkit::run::output(
        std::process::Command::new("mount")
            .args(["-t", "overlay", "overlay", "-o"])
            .arg(format!(
                "lowerdir={},upperdir={},workdir={}",
                lower.display(),
                upper.display(),
                work.display()
            ))
            .arg(&merged),
    );
    testkit::run::assert_success("mount -t overlay", &mounted);
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(merged.clone());
    std::fs::set_permissions(
        outer.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let store = merged.join("store");
    std::fs::create_dir(&store).unwrap();
    user.chown_all(&store);

    let pallet = user
        .pallet(pallet!())
        .env("SOURCE_DATE_EPOCH", EPOCH)
        .env("PALLET_ROOT", &store);
    base.import(&pallet);
    let ctx = user.file("ctx/Dockerfile", dockerfile);
    let layout = user.home.join("oci");
    for isolation in ["rootless", "auto"] {
        let out = pallet
            .clone()
            .args(["build", "--isolation", isolation, "-t", "t:1", "-o"])
            .arg(format!("type=oci,dest={},tar=false", layout.display()))
            .arg(ctx.parent().unwrap())
            .succeeds();
        let log = text(&out.stderr);
        assert!(
            log.starts_with(
                "isolation: rootless (user namespace, copied trees (overlayfs refuses \
                 overlayfs userxattr))\n"
            ),
            "{log}"
        );
    }
    let (a, b) = (layout_files(&root_layout), layout_files(&layout));
    assert_eq!(
        a.iter().map(|f| &f.0).collect::<Vec<_>>(),
        b.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    for ((name, x), (_, y)) in a.iter().zip(&b) {
        assert!(
            x == y,
            "{name} differs between root and rootless on copied trees"
        );
    }
    let layers = Layout::new(&layout).layer_entries();
    assert!(layers[2].iter().any(|e| e.path == "d/.wh..wh..opq"));
    assert!(layers[2].iter().any(|e| e.path == "e/.wh.x"));

    let run = pallet.clone().args(["run", "t:1"]).ok();
    assert_eq!(run, "new\n");
}

/// `push`, `save`, `prune`, `pull` and `run` as a normal user, against a real registry: what
/// the user pushes has the image's owners (0 stays 0), and root pulls the same manifest.
#[test]
fn push_save_prune_and_pull_work_as_a_normal_user() {
    if !can_run() || !require("rootless registry test", &[Tool("docker-registry")]) {
        return;
    }
    let Some(reg) =
        testkit::docker_registry::Registry::start(testkit::docker_registry::Config::plain())
    else {
        return;
    };
    let base = Base::new();
    let user = TestUser::with_subids();
    // Registry settings of the test's own: none of this machine's credentials or mirrors.
    let config = user.file("docker-config/pallet-config.json", "{}");
    let pallet = base
        .rootless(&user)
        .env("DOCKER_CONFIG", config.parent().unwrap())
        .env("PALLET_CONFIG", &config);
    let ctx = user.file(
        "ctx/Dockerfile",
        "FROM busybox\n\
         RUN mkdir /app && echo r > /app/root-owned && echo u > /app/user-owned \
             && chown 1000:1000 /app/user-owned\n",
    );
    let built = pallet
        .clone()
        .args(["build", "-t", "app:1"])
        .arg(ctx.parent().unwrap())
        .succeeds();
    built_digest(&built);
    let remote = format!("{}/rootless/app:1", reg.host());

    // The digest of the pushed manifest (its layers compressed): what every pull must find.
    let pushed = testkit::run::printed(&pallet.clone().args(["push", "app:1", &remote]).succeeds());
    let digest = pushed
        .split("pushed manifest ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or_else(|| panic!("no manifest digest in: {pushed}"))
        .to_string();

    let archive = user.home.join("app.tar");
    pallet
        .clone()
        .args(["save", "app:1", "-o"])
        .arg(&archive)
        .succeeds();
    assert_eq!(std::fs::metadata(&archive).unwrap().uid(), user.uid);
    let unpacked = user.home.join("saved");
    std::fs::create_dir(&unpacked).unwrap();
    testkit::run::ok(
        std::process::Command::new("tar")
            .arg("-xf")
            .arg(&archive)
            .arg("-C")
            .arg(&unpacked),
    );
    let layers = Layout::new(&unpacked).layer_entries();
    let owner = |path: &str| {
        let e = layers
            .last()
            .unwrap()
            .iter()
            .find(|e| e.path == path)
            .unwrap_or_else(|| panic!("no {path} in {:?}", layers.last()));
        (e.uid, e.gid)
    };
    assert_eq!(
        owner("app/root-owned"),
        (0, 0),
        "root-owned files stay uid 0"
    );
    assert_eq!(owner("app/user-owned"), (1000, 1000));

    pallet.clone().args(["prune", "--all"]).succeeds();
    assert_eq!(
        pallet.clone().args(["images"]).ok().lines().count(),
        1,
        "only the header"
    );

    let pulled = testkit::run::printed(&pallet.clone().args(["pull", &remote]).succeeds());
    assert!(pulled.contains(&digest), "{pulled}");
    let owners = pallet
        .clone()
        .args([
            "run",
            &remote,
            "stat",
            "-c",
            "%u:%g %n",
            "/app/root-owned",
            "/app/user-owned",
        ])
        .ok();
    assert_eq!(owners, "0:0 /app/root-owned\n1000:1000 /app/user-owned\n");

    // Root pulls what the user pushed: the same manifest, the same owners.
    let (_store, root) = base.root();
    let pulled = testkit::run::printed(
        &root
            .clone()
            .env("DOCKER_CONFIG", config.parent().unwrap())
            .env("PALLET_CONFIG", &config)
            .args(["pull", &remote])
            .succeeds(),
    );
    assert!(pulled.contains(&digest), "{pulled}");
    let as_root = root
        .args([
            "run",
            &remote,
            "stat",
            "-c",
            "%u:%g %n",
            "/app/root-owned",
            "/app/user-owned",
        ])
        .ok();
    assert_eq!(as_root, owners);
}

/// `RUN --mount=type=ssh` rootless: the user's agent (a real ssh-agent with a fresh key) is
/// forwarded, and the host's `ssh-add` in the step lists its key.
#[test]
fn ssh_mount_forwards_the_user_s_agent() {
    use crate::ssh_mount::{keygen, ssh_add_tools, Agent};
    let tools = [
        Tool("ssh-agent"),
        Tool("ssh-add"),
        Tool("ssh-keygen"),
        Tool("ldd"),
    ];
    if !can_run() || !require("rootless ssh test", &tools) {
        return;
    }
    let base = Base::new();
    let user = TestUser::with_subids();
    let pallet = base.rootless(&user).env_remove("SSH_AUTH_SOCK");
    let keys = user.home.join("keys");
    std::fs::create_dir(&keys).unwrap();
    let key = keys.join("id");
    let fingerprint = keygen(&key, "");
    // The user's own agent (an agent answers only its own uid and root).
    let agent = Agent::start_as(
        user.home.join("agent.sock"),
        &[&key],
        Some((user.uid, user.gid)),
    );
    let ctx = user.home.join("ssh-ctx");
    ssh_add_tools(&ctx.join("tools"));
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nCOPY tools/ /\nRUN --mount=type=ssh ssh-add -l > /keys\n",
    )
    .unwrap();
    user.chown_all(&ctx);
    let out_dir = user.home.join("out");
    pallet
        .args(["build", "--ssh"])
        .arg(format!("default={}", agent.sock()))
        .arg("-o")
        .arg(&out_dir)
        .arg(&ctx)
        .succeeds();
    let listed = std::fs::read_to_string(out_dir.join("keys")).unwrap();
    assert!(listed.contains(&fingerprint), "{listed}");
}

/// A tar entry's `..` and a symlink in a layer or an `ADD`ed archive stay confined as in root
/// mode: the user's own files (which the namespace's uid 0 could write) are never reached.
#[test]
fn hostile_tars_stay_confined_rootless() {
    if !can_run() {
        return;
    }
    let base = Base::new();
    let user = TestUser::with_subids();
    let pallet = base.rootless(&user);
    let victim = user.home.join("victim");
    std::fs::create_dir(&victim).unwrap();
    user.chown_all(&victim);
    let header = |name: &str, kind: tar::EntryType, link: Option<&Path>, size: u64| {
        let mut h = tar::Header::new_gnu();
        h.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_entry_type(kind);
        h.set_mode(0o755);
        h.set_size(size);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_500_000_000);
        if let Some(link) = link {
            h.set_link_name(link).unwrap();
        }
        h.set_cksum();
        h
    };
    let tar_of = |entries: &[(tar::Header, &[u8])]| {
        let mut b = tar::Builder::new(Vec::new());
        for (h, data) in entries {
            b.append(h, *data).unwrap();
        }
        b.into_inner().unwrap()
    };
    let climb = tar_of(&[(
        header("../../../escape", tar::EntryType::Regular, None, 1),
        b"x",
    )]);
    let links = tar_of(&[
        (
            header("lnk", tar::EntryType::Symlink, Some(&victim), 0),
            b"",
        ),
        (header("lnk/evil", tar::EntryType::Regular, None, 1), b"x"),
        (
            header(
                "up",
                tar::EntryType::Symlink,
                Some(Path::new("../../../..")),
                0,
            ),
            b"",
        ),
        (
            header("up/sentinel", tar::EntryType::Regular, None, 1),
            b"x",
        ),
    ]);
    let climb_tar = user.file("climb.tar", climb);
    let links_tar = user.file("ctx/links.tar", links);

    let err = testkit::run::printed(
        &pallet
            .clone()
            .arg("import")
            .arg(&climb_tar)
            .args(["-t", "climb"])
            .fails(),
    );
    assert!(err.contains("may not refer above their root"), "{err}");
    let err = testkit::run::printed(
        &pallet
            .clone()
            .arg("import")
            .arg(&links_tar)
            .args(["-t", "links"])
            .fails(),
    );
    assert!(
        err.contains("may not create or remove files through symlinks"),
        "{err}"
    );

    // ADD extracts an archive as BuildKit does: symlinks resolve inside the destination.
    std::fs::write(
        links_tar.parent().unwrap().join("Dockerfile"),
        format!(
            "FROM busybox\nADD links.tar /x/\nRUN cat /x/sentinel /x{}/evil\n",
            victim.display()
        ),
    )
    .unwrap();
    user.chown_all(links_tar.parent().unwrap());
    pallet
        .arg("build")
        .arg(links_tar.parent().unwrap())
        .succeeds();

    assert_eq!(
        std::fs::read_dir(&victim).unwrap().count(),
        0,
        "victim untouched"
    );
    for escaped in ["/escape", "/sentinel", "/home/escape", "/home/sentinel"] {
        assert!(!Path::new(escaped).exists(), "{escaped}");
    }
    assert!(!user.home.join("escape").exists() && !user.home.join("sentinel").exists());
}

/// The cache hits across modes: root exports its cache of the ML example (`--cache-to
/// type=local,mode=max`), and a normal user's fresh store, building rootless with
/// `--cache-from` that directory, runs no step and gets root's manifest digest.
#[test]
fn a_cache_root_exported_answers_every_rootless_step() {
    if !can_run() {
        return;
    }
    let base = Base::new();
    let (root_store, root) = base.root();
    let cache = root_store.path("cache");
    let root_out = root
        .args(["build", "-t", "ml:dev", "--cache-to"])
        .arg(format!("type=local,dest={},mode=max", cache.display()))
        .arg(example("ml-busybox"))
        .succeeds();
    let root_digest = built_digest(&root_out);
    // The user reads the cache directory: make it theirs to read.
    let user = TestUser::with_subids();
    let readable = user.home.join("cache");
    testkit::files::copy_dir(&cache, &readable);
    user.chown_all(&readable);

    let pallet = base.rootless(&user);
    let ctx = user.give(&example("ml-busybox"), "ml");
    let out = pallet
        .args([
            "build",
            "--progress",
            "plain",
            "-t",
            "ml:dev",
            "--cache-from",
        ])
        .arg(format!("type=local,src={}", readable.display()))
        .arg(&ctx)
        .succeeds();
    let log = text(&out.stderr);
    assert!(log.starts_with(&format!("{ROOTLESS_LINE}\n")), "{log}");
    assert!(
        log.contains(", 0 misses"),
        "every step from root's cache:\n{log}"
    );
    assert!(!log.contains("downloading numpy"), "{log}");
    assert_eq!(built_digest(&out), root_digest, "{log}");
}
