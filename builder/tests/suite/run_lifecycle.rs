//! The life of a container pallet runs, seen from outside with the real runc and busybox:
//!
//! - `pallet run` keeps the container's stdout and stderr apart, byte for byte.
//! - A pallet killed while a container runs (`pallet run` or a `pallet build` RUN step;
//!   SIGKILL, SIGTERM, SIGINT) leaves nothing behind: no process of the container (found by a
//!   unique `sleep` duration in its argv, scanning /proc), no container in any runc state dir
//!   pallet used (`runc --root STORE/tmp/.../runc-state list`), no mount under the store.
//!
//! Needs root, runc and busybox-static; fails under CI=true without them.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use testkit::{pallet, require, text, wait, Need::*, Store};

fn can_run() -> bool {
    require("container lifecycle test", &[Root, Busybox, Tool("runc")])
}

/// A `sleep` duration no other process on the machine uses: the container's marker.
fn marker() -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let n = (std::process::id() as u64 * 100 + SEQ.fetch_add(1, Ordering::Relaxed)) % 1_000_000;
    format!("{}", 7_000_000 + n)
}

/// Pids whose argv is exactly `sleep MARKER`.
fn sleepers(marker: &str) -> Vec<u32> {
    let want = format!("sleep\0{marker}\0");
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().filter_map(Result::ok) {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) {
            if cmdline == want.as_bytes() {
                out.push(pid);
            }
        }
    }
    out
}

/// The runc state dirs under the store's tmp (the runner keeps one per container's bundle).
fn state_dirs(dir: &Path, depth: u32, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.filter_map(Result::ok) {
        let p = e.path();
        if !e.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        if e.file_name() == "runc-state" {
            out.push(p);
        } else if depth > 0 {
            state_dirs(&p, depth - 1, out);
        }
    }
}

/// Containers runc still knows in the state dirs pallet used, as `STATE: ID STATUS`.
fn containers(store: &Path) -> Vec<String> {
    let mut dirs = Vec::new();
    state_dirs(&store.join("tmp"), 4, &mut dirs);
    let mut out = Vec::new();
    for d in dirs {
        let list = Command::new("runc")
            .arg("--root")
            .arg(&d)
            .args(["list", "--format", "json"])
            .output()
            .unwrap();
        let json = text(&list.stdout);
        if let Ok(serde_json::Value::Array(items)) = serde_json::from_str(&json) {
            for c in items {
                out.push(format!("{}: {} {}", d.display(), c["id"], c["status"]));
            }
        }
    }
    out
}

/// Mount points below the store.
fn mounts(store: &Path) -> Vec<String> {
    let prefix = format!("{}/", store.display());
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| m.starts_with(&prefix))
        .map(str::to_string)
        .collect()
}

/// `condition`, polled every 100 ms for at most `limit`.
fn wait_until(limit: Duration, condition: impl FnMut() -> bool) -> bool {
    wait::until(limit, Duration::from_millis(100), condition)
}

/// Starts `pallet ARGS` (whose container runs `sleep MARKER`), waits for the sleep to run,
/// sends `signal` to pallet, and checks that nothing of the container is left. Returns
/// pallet's exit status.
fn kill_while_running(
    fixture: &Store,
    args: &[&str],
    marker: &str,
    signal: libc::c_int,
) -> std::process::ExitStatus {
    let store = fixture.root();
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut child = fixture
        .pallet()
        .args(args)
        .command()
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log.reopen().unwrap())
        .spawn()
        .unwrap();
    let log_text = || std::fs::read_to_string(log.path()).unwrap_or_default();
    let started = wait_until(Duration::from_secs(60), || !sleepers(marker).is_empty());
    if !started {
        let _ = child.kill();
        panic!(
            "the container (sleep {marker}) never started; pallet said:\n{}",
            log_text()
        );
    }
    assert!(
        !containers(store).is_empty(),
        "runc lists no container while it runs"
    );
    // SAFETY: signals our own child.
    unsafe { libc::kill(child.id() as libc::pid_t, signal) };
    let status = wait::exit(
        &mut child,
        Duration::from_secs(20),
        Duration::from_millis(50),
    )
    .unwrap_or_else(|| panic!("pallet did not exit after signal {signal}"));
    let clean = wait_until(Duration::from_secs(15), || {
        sleepers(marker).is_empty() && containers(store).is_empty() && mounts(store).is_empty()
    });
    assert!(
        clean,
        "after signal {signal} to pallet {args:?}: container processes {:?}, runc containers \
         {:?}, mounts {:?}; pallet said:\n{}",
        sleepers(marker),
        containers(store),
        mounts(store),
        log_text()
    );
    status
}

#[test]
fn run_keeps_stdout_and_stderr_apart() {
    if !can_run() {
        return;
    }
    let store = Store::busybox(pallet!());
    let out = store
        .pallet()
        .args([
            "run",
            "busybox",
            "sh",
            "-c",
            "echo out1; echo err1 >&2; printf 'out2'; printf 'err2' >&2; printf '\\001\\377'; exit 5",
        ])
        .output();
    assert_eq!(out.status.code(), Some(5), "{}", text(&out.stderr));
    assert_eq!(out.stdout, b"out1\nout2\x01\xff");
    assert_eq!(out.stderr, b"err1\nerr2");
    // A pipeline reading only stdout sees only stdout.
    let out = store
        .pallet()
        .args([
            "run",
            "busybox",
            "sh",
            "-c",
            "echo visible; echo hidden >&2",
        ])
        .command()
        .stderr(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(text(&out.stdout), "visible\n");
}

#[test]
fn killed_pallet_run_leaves_no_container() {
    if !can_run() {
        return;
    }
    let store = Store::busybox(pallet!());
    // SIGKILL: pallet cannot clean up itself; runc dies with it, the watchdog does the rest.
    let m = marker();
    kill_while_running(&store, &["run", "busybox", "sleep", &m], &m, libc::SIGKILL);
    // SIGTERM: forwarded, ignored by the sleep (PID 1 without a handler), SIGKILL after
    // --stop-timeout; pallet exits 143 as docker does.
    let m = marker();
    let status = kill_while_running(
        &store,
        &["run", "--stop-timeout", "1", "busybox", "sleep", &m],
        &m,
        libc::SIGTERM,
    );
    assert_eq!(status.code(), Some(143));
}

#[test]
fn killed_pallet_build_leaves_no_container() {
    if !can_run() {
        return;
    }
    let store = Store::busybox(pallet!());
    for signal in [libc::SIGKILL, libc::SIGTERM, libc::SIGINT] {
        let m = marker();
        let ctx = store.path(&format!("ctx-{m}"));
        std::fs::create_dir_all(&ctx).unwrap();
        std::fs::write(
            ctx.join("Dockerfile"),
            format!("FROM busybox\nRUN sleep {m}\n"),
        )
        .unwrap();
        let status = kill_while_running(
            &store,
            &["build", "--progress", "plain", ctx.to_str().unwrap()],
            &m,
            signal,
        );
        assert!(!status.success(), "a killed build succeeded");
    }
    // The store is still usable: a build runs after the killed ones.
    let ctx = store.path("ctx-after");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), "FROM busybox\nRUN echo ok > /ok\n").unwrap();
    let out = store.pallet().arg("build").arg(&ctx).output();
    assert!(out.status.success(), "{}", text(&out.stderr));
}
