//! `ADD <git url>` end to end with real git: repositories made in a temp dir (commits on main,
//! an annotated tag, a branch, a subdir, a submodule) served by `git daemon` on 127.0.0.1 (the
//! git:// protocol), and `pallet build` runs that check the file tree (`-o type=local`), the
//! kept `.git`, `--checksum`, the cache (a rebuild with no upstream change is all CACHED, a new
//! commit fetches again) and the errors.
//!
//! Needs root, runc, git and busybox-static (scripts/ensure-tools.sh). Without them the tests
//! fail under CI=true and are skipped with a note elsewhere.

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use testkit::files::{mode, read, write};
use testkit::git::git;
use testkit::progress::{cached, ran};
use testkit::{pallet, require, text, Need::*, Pallet, Store};

fn can_run() -> bool {
    require(
        "ADD <git> test",
        &[Root, Busybox, Tool("runc"), Tool("git")],
    )
}

/// `git daemon` serving every repository under `base` on a free port; killed on drop.
struct Daemon {
    child: Child,
    port: u16,
}

impl Daemon {
    fn start(base: &Path) -> Daemon {
        let port = testkit::net::free_port();
        let child = Command::new("git")
            .arg("daemon")
            .arg("--export-all")
            .arg(format!("--base-path={}", base.display()))
            .arg(format!("--port={port}"))
            .arg("--reuseaddr")
            .arg("--listen=127.0.0.1")
            .arg("--informative-errors")
            .arg(base)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start git daemon");
        let d = Daemon { child, port };
        testkit::net::wait_listening(port, Duration::from_secs(10), "git daemon");
        d
    }

    fn url(&self, repo: &str) -> String {
        format!("git://127.0.0.1:{}/{repo}", self.port)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The served repositories: `lib.git` (one file) and `repo.git`:
/// - main, commit 1: README.md "v1", hello.sh (executable), docs/guide.txt; tag v1.0
///   (annotated) here;
/// - main, commit 2: README.md "v2", the submodule vendor/lib (lib.git over git://);
/// - branch feature (from commit 1): docs/feature.txt.
struct Repos {
    daemon: Daemon,
    repo: PathBuf,
    v1: String,
    main: String,
}

fn repos(tmp: &Path) -> Repos {
    let base = tmp.join("srv");
    let lib = base.join("lib.git");
    let repo = base.join("repo.git");
    std::fs::create_dir_all(&lib).unwrap();
    std::fs::create_dir_all(&repo).unwrap();
    let daemon = Daemon::start(&base);

    git(&lib, &["init", "-q"]);
    write(&lib.join("lib.txt"), "library\n");
    git(&lib, &["add", "."]);
    git(&lib, &["commit", "-q", "-m", "lib"]);

    git(&repo, &["init", "-q"]);
    write(&repo.join("README.md"), "v1\n");
    write(&repo.join("hello.sh"), "#!/bin/sh\necho hello\n");
    std::fs::set_permissions(
        repo.join("hello.sh"),
        std::fs::Permissions::from_mode(0o775),
    )
    .unwrap();
    write(&repo.join("docs/guide.txt"), "guide\n");
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "one"]);
    git(&repo, &["tag", "-a", "v1.0", "-m", "release 1.0"]);
    let v1 = git(&repo, &["rev-parse", "HEAD"]);

    git(&repo, &["checkout", "-q", "-b", "feature"]);
    write(&repo.join("docs/feature.txt"), "feature\n");
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "feature"]);
    git(&repo, &["checkout", "-q", "main"]);

    write(&repo.join("README.md"), "v2\n");
    git(
        &repo,
        &[
            "submodule",
            "add",
            "-q",
            &daemon.url("lib.git"),
            "vendor/lib",
        ],
    );
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "two"]);
    let main = git(&repo, &["rev-parse", "HEAD"]);
    Repos {
        daemon,
        repo,
        v1,
        main,
    }
}

/// `pallet build --progress plain -o type=local,dest=OUT` of `ctx` holding `dockerfile`, with
/// `pallet` (its store and environment set); returns (success, stderr).
fn build(pallet: Pallet, ctx: &Path, out: &Path, dockerfile: &str) -> (bool, String) {
    write(&ctx.join("Dockerfile"), dockerfile);
    let _ = std::fs::remove_dir_all(out);
    let o = pallet
        .args(["build", "--progress", "plain", "-o"])
        .arg(format!("type=local,dest={}", out.display()))
        .arg(ctx)
        .output();
    (o.status.success(), text(&o.stderr))
}

#[test]
fn add_git_default_branch_tag_and_branch_subdir() {
    if !can_run() {
        return;
    }
    let store = Store::empty(pallet!());
    let tmp = store.dir();
    let r = repos(tmp);
    let url = r.daemon.url("repo.git");
    let out = tmp.join("out");
    let dockerfile = format!(
        "FROM scratch\n\
         ADD {url} /src\n\
         ADD {url}#v1.0 /tag\n\
         ADD {url}#feature:docs /feat\n"
    );
    let (ok, log) = build(store.pallet(), &tmp.join("ctx"), &out, &dockerfile);
    assert!(ok, "build failed:\n{log}");

    // The default branch (HEAD = main) with its submodule, without any .git.
    assert_eq!(read(&out.join("src/README.md")), "v2\n");
    assert_eq!(read(&out.join("src/vendor/lib/lib.txt")), "library\n");
    assert!(out.join("src/.gitmodules").exists());
    assert!(!out.join("src/.git").exists());
    assert!(!out.join("src/vendor/lib/.git").exists());
    assert_eq!(mode(&out.join("src/hello.sh")), 0o755);
    assert_eq!(mode(&out.join("src/README.md")), 0o644);
    assert_eq!(mode(&out.join("src/docs")), 0o755);

    // The annotated tag: commit 1, no submodule yet.
    assert_eq!(read(&out.join("tag/README.md")), "v1\n");
    assert!(!out.join("tag/vendor").exists());
    assert!(!out.join("tag/.git").exists());

    // The branch's subdir: its contents only.
    assert_eq!(read(&out.join("feat/feature.txt")), "feature\n");
    assert_eq!(read(&out.join("feat/guide.txt")), "guide\n");
    assert!(!out.join("feat/README.md").exists());
    assert!(!out.join("feat/docs").exists());
}

#[test]
fn add_git_keep_git_dir_and_checksum() {
    if !can_run() {
        return;
    }
    let store = Store::empty(pallet!());
    let tmp = store.dir();
    let r = repos(tmp);
    let url = r.daemon.url("repo.git");
    let out = tmp.join("out");
    let dockerfile = format!(
        "FROM scratch\n\
         ADD --keep-git-dir=true {url}#main /src\n\
         ADD --checksum={} {url}#v1.0 /pinned\n\
         ADD --checksum={} {url}#{} /bysha\n",
        r.v1,
        &r.main[..12],
        r.main
    );
    let (ok, log) = build(store.pallet(), &tmp.join("ctx"), &out, &dockerfile);
    assert!(ok, "build failed:\n{log}");
    assert!(out.join("src/.git").is_dir(), "no .git with --keep-git-dir");
    assert_eq!(git(&out.join("src"), &["rev-parse", "HEAD"]), r.main);
    assert_eq!(
        git(&out.join("src"), &["rev-parse", "refs/heads/main"]),
        r.main
    );
    assert_eq!(git(&out.join("src"), &["remote", "get-url", "origin"]), url);
    // The submodule's gitlink points inside the kept .git.
    assert_eq!(read(&out.join("src/vendor/lib/lib.txt")), "library\n");
    assert_eq!(
        git(
            &out.join("src/vendor/lib"),
            &["rev-parse", "--show-toplevel"]
        ),
        out.join("src/vendor/lib").display().to_string()
    );
    assert_eq!(read(&out.join("pinned/README.md")), "v1\n");
    assert_eq!(read(&out.join("bysha/README.md")), "v2\n");

    // A checksum that is not the commit: the build fails, naming both.
    let wrong = "0123456789abcdef0123456789abcdef01234567";
    let dockerfile = format!("FROM scratch\nADD --checksum={wrong} {url}#v1.0 /pinned\n");
    let (ok, log) = build(store.pallet(), &tmp.join("ctx"), &out, &dockerfile);
    assert!(!ok, "a wrong checksum must fail:\n{log}");
    assert!(
        log.contains("checksum mismatch") && log.contains(wrong) && log.contains(&r.v1),
        "the error names both commits:\n{log}"
    );
}

#[test]
fn add_git_rebuild_is_cached_and_a_new_commit_fetches() {
    if !can_run() {
        return;
    }
    let store = Store::busybox(pallet!());
    let tmp = store.dir();
    let r = repos(tmp);
    let url = r.daemon.url("repo.git");
    let ctx = tmp.join("ctx");
    let out = tmp.join("out");
    let dockerfile = format!(
        "FROM busybox\n\
         ADD {url}#main /src\n\
         RUN cat /src/README.md /src/vendor/lib/lib.txt > /joined.txt\n"
    );
    let (ok, log) = build(store.pallet(), &ctx, &out, &dockerfile);
    assert!(ok, "build failed:\n{log}");
    assert!(ran(&log, "ADD git://"), "{log}");
    assert_eq!(read(&out.join("joined.txt")), "v2\nlibrary\n");

    // No upstream change: every step from the cache.
    let (ok, log) = build(store.pallet(), &ctx, &out, &dockerfile);
    assert!(ok, "rebuild failed:\n{log}");
    assert!(cached(&log, "ADD git://"), "ADD not cached:\n{log}");
    assert!(cached(&log, "RUN cat"), "RUN not cached:\n{log}");
    // A dry run assumes the commit of the last build: all cached.
    let o = store
        .pallet()
        .args(["build", "--explain", "--progress", "plain"])
        .arg(&ctx)
        .output();
    let log = text(&o.stderr);
    assert!(o.status.success(), "--explain failed:\n{log}");
    assert!(cached(&log, "ADD git://"), "--explain:\n{log}");
    assert!(cached(&log, "RUN cat"), "--explain:\n{log}");

    // A new commit on the branch: fetched, and the steps after it run again.
    write(&r.repo.join("new.txt"), "new\n");
    git(&r.repo, &["add", "."]);
    git(&r.repo, &["commit", "-q", "-m", "three"]);
    let (ok, log) = build(store.pallet(), &ctx, &out, &dockerfile);
    assert!(ok, "build after a commit failed:\n{log}");
    assert!(ran(&log, "ADD git://"), "ADD did not fetch:\n{log}");
    assert!(ran(&log, "RUN cat"), "RUN did not rerun:\n{log}");
    assert_eq!(read(&out.join("src/new.txt")), "new\n");
}

#[test]
fn add_git_errors_name_the_step_and_the_url() {
    if !can_run() {
        return;
    }
    let store = Store::empty(pallet!());
    let tmp = store.dir();
    let r = repos(tmp);
    let url = r.daemon.url("repo.git");
    let ctx = tmp.join("ctx");
    let out = tmp.join("out");

    let (ok, log) = build(
        store.pallet(),
        &ctx,
        &out,
        &format!("FROM scratch\nADD {url}#nope /src\n"),
    );
    assert!(!ok);
    assert!(
        log.contains(&format!("{url} has no branch or tag named \"nope\"")),
        "{log}"
    );

    let (ok, log) = build(
        store.pallet(),
        &ctx,
        &out,
        &format!("FROM scratch\nADD {url}#main:no/such/dir /src\n"),
    );
    assert!(!ok);
    assert!(log.contains("no/such/dir does not exist"), "{log}");

    // Nothing listens there: ls-remote fails; the password never shows in the message.
    let port = testkit::net::free_port();
    let (ok, log) = build(
        store.pallet(),
        &ctx,
        &out,
        &format!("FROM scratch\nADD http://user:hunter2@127.0.0.1:{port}/repo.git /src\n"),
    );
    assert!(!ok);
    let line = log
        .lines()
        .find(|l| l.contains("git ls-remote failed"))
        .unwrap_or_else(|| panic!("no ls-remote error in:\n{log}"));
    let message = &line[line.find("git ls-remote failed").unwrap()..];
    assert!(
        message.contains(&format!("http://user:xxxxx@127.0.0.1:{port}/repo.git")),
        "{line}"
    );
    assert!(!message.contains("hunter2"), "{line}");

    // A server that accepts and never answers: stopped after PALLET_GIT_TIMEOUT seconds.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let start = Instant::now();
    let (ok, log) = build(
        store.pallet().env("PALLET_GIT_TIMEOUT", "1"),
        &ctx,
        &out,
        &format!("FROM scratch\nADD git://127.0.0.1:{port}/repo.git /src\n"),
    );
    assert!(!ok);
    assert!(
        log.contains("git ls-remote failed") && log.contains("stopped after 1 s without output"),
        "{log}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "took {:?}",
        start.elapsed()
    );
    drop(silent);
}

/// `ARG SOURCE_DATE_EPOCH=<stage>` whose source-only stage ADDs a git ref (BuildKit's
/// epoch.go): the epoch is the ref's commit's committer time; RUN sees it, the image is
/// created at it, and a `--checksum` that does not match the commit fails the build.
#[test]
fn add_git_stage_gives_source_date_epoch() {
    if !can_run() {
        return;
    }
    let store = Store::empty(pallet!());
    store.import_busybox(&testkit::busybox::Rootfs::new());
    let tmp = store.dir();
    let r = repos(tmp);
    // A repository of its own whose tag's commit has a known committer time.
    let epoch = tmp.join("srv/epoch.git");
    std::fs::create_dir_all(&epoch).unwrap();
    git(&epoch, &["init", "-q"]);
    write(&epoch.join("a.txt"), "a\n");
    git(&epoch, &["add", "."]);
    let out = testkit::git::command(&epoch)
        .args(["commit", "-q", "-m", "dated"])
        .env("GIT_COMMITTER_DATE", "@1700000101 +0000")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    git(&epoch, &["tag", "dated"]);
    let commit = git(&epoch, &["rev-parse", "HEAD"]);
    let url = r.daemon.url("epoch.git");
    let dockerfile = |checksum: &str| {
        format!(
            "ARG SOURCE_DATE_EPOCH=src\nFROM scratch AS src\nADD {checksum}{url}#dated /\n\
             FROM busybox\nARG SOURCE_DATE_EPOCH\nRUN echo -n \"$SOURCE_DATE_EPOCH\" >/epoch\n"
        )
    };
    let ctx = tmp.join("epoch-ctx");
    let dest = tmp.join("epoch-out");
    let (ok, log) = build(store.pallet(), &ctx, &dest, &dockerfile(""));
    assert!(ok, "build failed:\n{log}");
    assert_eq!(read(&dest.join("epoch")), "1700000101");
    assert!(
        log.contains(&format!(
            "[internal] resolve SOURCE_DATE_EPOCH from {url}#dated"
        )),
        "{log}"
    );
    let checked = format!("--checksum={} ", &commit[..12]);
    let (ok, log) = build(store.pallet(), &ctx, &dest, &dockerfile(&checked));
    assert!(ok, "a matching checksum: {log}");
    let (ok, log) = build(
        store.pallet(),
        &ctx,
        &dest,
        &dockerfile("--checksum=0123456789ab "),
    );
    assert!(!ok);
    assert!(
        log.contains("failed to resolve SOURCE_DATE_EPOCH from stage src"),
        "{log}"
    );
}
