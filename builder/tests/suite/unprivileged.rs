//! pallet inside an unprivileged container: its CI image (ci/image/Dockerfile, built here by
//! pallet itself from ci/image/context.sh's context) runs with docker's default capabilities
//! and seccomp profile, uid 0, no user namespace and no --privileged, and builds the ML
//! example there: pallet must pick chroot isolation by itself and give the manifest digest
//! the root-mode build gives on the host.
//!
//! Two runtimes: `pallet run` (runc with docker's default capability set and our copy of
//! docker's default seccomp profile: the same confinement, no daemon needed), and dockerd
//! when one answers (`scripts/start-dockerd.sh` starts one; without it the docker test says
//! so and stops, even under CI=true: the runc test covers the confinement).
//!
//! Needs root (root mode on the host), busybox-static, runc and ldd.

use std::path::{Path, PathBuf};
use std::process::Command;
use testkit::busybox::Rootfs;
use testkit::files::copy_dir;
use testkit::{pallet, repo, require, text, Need::*, Pallet};

const EPOCH: &str = "1700000000";

fn can_run() -> bool {
    require(
        "unprivileged container test",
        &[Root, Busybox, Tool("runc"), Tool("ldd")],
    )
}

/// The built digest a build's log names.
fn digest(log: &str) -> String {
    testkit::progress::built_digest(log)
}

/// A work dir with the busybox tar and the ML example; the host store with the busybox
/// image and pallet's CI image built in it; the root-mode digest of the ML example.
struct Setup {
    _dir: tempfile::TempDir,
    work: PathBuf,
    host: Pallet,
    root_digest: String,
    /// The root-mode digest of testdata/examples/step-changes.
    changes_digest: String,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().to_path_buf();
    let tar = work.join("busybox.tar");
    Rootfs::new().write_tar(&tar);
    copy_dir(
        &repo::testdata("examples").join("ml-busybox"),
        &work.join("ml"),
    );
    let host = pallet!()
        .root(work.join("host"))
        .env("SOURCE_DATE_EPOCH", EPOCH);
    host.clone()
        .arg("import")
        .arg(&tar)
        .args(["-t", "busybox:latest"])
        .ok();
    let out = host
        .clone()
        .args(["build", "-t", "ml:1"])
        .arg(work.join("ml"))
        .output();
    let log = text(&out.stderr);
    assert!(out.status.success(), "root-mode build failed:\n{log}");
    let root_digest = digest(&log);
    copy_dir(
        &repo::testdata("examples").join("step-changes"),
        &work.join("changes"),
    );
    std::fs::write(work.join("tok"), "s3cret").unwrap();
    let out = host
        .clone()
        .args(["build", "-t", "changes:1", "--secret"])
        .arg(format!("id=tok,src={}", work.join("tok").display()))
        .arg(work.join("changes"))
        .output();
    let log = text(&out.stderr);
    assert!(out.status.success(), "root-mode build failed:\n{log}");
    let changes_digest = digest(&log);

    let ctx = work.join("ci-ctx");
    let made = Command::new("bash")
        .arg(repo::root().join("ci/image/context.sh"))
        .arg(&ctx)
        .arg(env!("CARGO_BIN_EXE_pallet"))
        .status()
        .unwrap();
    assert!(made.success(), "ci/image/context.sh failed");
    let out = host
        .clone()
        .args(["build", "-t", "pallet-ci:test", "-f"])
        .arg(repo::root().join("ci/image/Dockerfile"))
        .arg(&ctx)
        .output();
    assert!(
        out.status.success(),
        "building the CI image:\n{}",
        text(&out.stderr)
    );
    Setup {
        _dir: dir,
        work,
        host,
        root_digest,
        changes_digest,
    }
}

/// The script the container runs: import the same tar at the same path (the same base image
/// digest), then build the ML example with its store on the container's own root filesystem.
fn inside(work: &Path) -> String {
    format!(
        "set -e; pallet import {w}/busybox.tar -t busybox:latest >/dev/null; \
         pallet build -t ml:1 {w}/ml; \
         pallet build -t changes:1 --secret id=tok,src={w}/tok {w}/changes",
        w = work.display()
    )
}

fn check(log: &str, s: &Setup) {
    assert!(
        log.contains("isolation: chroot (no mounts, no user namespaces)"),
        "pallet did not pick chroot isolation:\n{log}"
    );
    assert!(log.contains("downloading numpy"), "{log}");
    let (ml, changes) = log
        .split_once("built docker.io/library/ml:1")
        .expect("the ML build");
    assert_eq!(
        digest(&format!(
            "built docker.io/library/ml:1{}",
            &changes[..changes.find('\n').unwrap_or(changes.len())]
        )),
        s.root_digest,
        "the unprivileged ML build's digest is not the root build's:\n{ml}"
    );
    assert_eq!(
        digest(changes),
        s.changes_digest,
        "the unprivileged step-changes build's digest is not the root build's:\n{log}"
    );
}

/// Debian's docker.io client (20.10), which speaks the daemon's API; another client earlier on
/// PATH (/usr/local/bin/docker here is 28.x) is not used.
const DOCKER: &str = "/usr/bin/docker";

#[test]
fn ci_image_builds_the_ml_example_unprivileged_under_runc() {
    if !can_run() {
        return;
    }
    let s = setup();
    let vol = format!("{0}:{0}", s.work.display());
    let out = s
        .host
        .clone()
        .args(["run", "--rm", "-v", &vol, "-e"])
        .arg(format!("SOURCE_DATE_EPOCH={EPOCH}"))
        .args(["--entrypoint", "sh", "pallet-ci:test", "-c"])
        .arg(inside(&s.work))
        .output();
    let log = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(
        out.status.success(),
        "the build in the container failed:\n{log}"
    );
    check(&log, &s);
}

#[test]
fn ci_image_builds_the_ml_example_in_docker_without_privileges() {
    if !can_run() {
        return;
    }
    let up = Command::new(DOCKER)
        .args(["version", "--format", "{{.Server.Version}}"])
        .output();
    if !up.is_ok_and(|o| o.status.success()) {
        // The test command starts dockerd where it is installed (scripts/test.sh); under
        // CI=true a daemon that does not answer is a failure, not a skip.
        assert!(
            !testkit::gate::ci(),
            "CI=true: no docker daemon answers {DOCKER} (scripts/start-dockerd.sh starts one; \
             apt-get install docker.io if dockerd is missing)"
        );
        eprintln!(
            "skipping the dockerd test: no docker daemon answers (scripts/start-dockerd.sh \
             starts one); the runc test covers the same confinement"
        );
        return;
    }
    let s = setup();
    let archive = s.work.join("ci.tar");
    let out = s
        .host
        .clone()
        .args(["build", "-t", "pallet-ci:test", "-o"])
        .arg(format!("type=docker,dest={}", archive.display()))
        .args(["-f"])
        .arg(repo::root().join("ci/image/Dockerfile"))
        .arg(s.work.join("ci-ctx"))
        .output();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let load = Command::new(DOCKER)
        .arg("load")
        .arg("-i")
        .arg(&archive)
        .output()
        .unwrap();
    assert!(load.status.success(), "docker load: {}", text(&load.stderr));
    let vol = format!("{0}:{0}", s.work.display());
    // No --privileged, no --cap-add, docker's default seccomp profile, uid 0, no userns.
    let out = Command::new(DOCKER)
        .args(["run", "--rm", "--network", "none", "-v", &vol, "-e"])
        .arg(format!("SOURCE_DATE_EPOCH={EPOCH}"))
        .args(["--entrypoint", "sh", "pallet-ci:test", "-c"])
        .arg(inside(&s.work))
        .output()
        .unwrap();
    let log = format!("{}{}", text(&out.stdout), text(&out.stderr));
    let _ = Command::new(DOCKER)
        .args(["rmi", "-f", "pallet-ci:test"])
        .output();
    assert!(out.status.success(), "the build in docker failed:\n{log}");
    check(&log, &s);
}
