//! Step execution against the real runtime: runc over busybox rootfses and overlay mounts.
//!
//! Needs root, runc on PATH and busybox (static) at /bin/busybox. Without them each test prints
//! a skip note and passes, except with CI=true, where it fails saying what is missing.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use pallet::exec::user;
use pallet::exec::{Executor, RunError, RunSpec, Runc, SpecMount};
use pallet::snapshot::overlay::Overlay;
use testkit::busybox::Rootfs;
use testkit::{require, Need::*};

/// The runtime to use, or None to skip (the kit's gate: a panic instead under CI=true).
fn ready(test: &str) -> Option<PathBuf> {
    if !require(test, &[Root, Busybox, Tool("runc")]) {
        return None;
    }
    Some(
        Runc::locate(None)
            .map(|r| r.path().to_path_buf())
            .unwrap_or_else(|e| panic!("{test}: {e}")),
    )
}

/// The kit's busybox tree, with `app` (1000) also in `staff` (50).
fn busybox_rootfs(dir: &Path) -> PathBuf {
    let root = dir.join("rootfs");
    Rootfs::new()
        .file("etc/group", "root:x:0:\nstaff:x:50:app\napp:x:1000:\n")
        .write_dir(&root);
    root
}

fn spec(args: &[&str]) -> RunSpec {
    RunSpec {
        args: args.iter().map(|s| s.to_string()).collect(),
        env: vec!["PATH=/bin".into()],
        cwd: "/".into(),
        uid: 0,
        gid: 0,
        additional_gids: vec![],
        host_network: true,
        hostname: "pallet-test".into(),
        mounts: vec![],
        insecure: false,
        shm_size: 0,
        ulimits: vec![],
    }
}

fn run_spec(runtime: &Path, rootfs: &Path, spec: &RunSpec) -> Result<(i32, Vec<String>), RunError> {
    let bundle = tempfile::tempdir().unwrap();
    let mut lines = Vec::new();
    let code =
        Runc::at(runtime.to_path_buf()).run_lines(rootfs, bundle.path(), spec, &mut |l| {
            lines.push(l.to_string())
        })?;
    Ok((code, lines))
}

fn sh(runtime: &Path, rootfs: &Path, script: &str) -> (i32, Vec<String>) {
    run_spec(runtime, rootfs, &spec(&["sh", "-c", script])).unwrap()
}

#[test]
fn exit_code_and_output() {
    let Some(runtime) = ready("exit_code_and_output") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let rootfs = busybox_rootfs(tmp.path());
    let (code, lines) = sh(
        &runtime,
        &rootfs,
        "echo hi; echo err >&2; printf 'no newline'; exit 3",
    );
    assert_eq!(code, 3, "{lines:?}");
    for want in ["hi", "err", "no newline"] {
        assert!(
            lines.iter().any(|l| l == want),
            "{want:?} missing from {lines:?}"
        );
    }
    // runc's stubs for /etc/hosts and /etc/resolv.conf are gone from the rootfs.
    assert!(!rootfs.join("etc/hosts").exists() && !rootfs.join("etc/resolv.conf").exists());
}

#[test]
fn env_and_cwd() {
    let Some(runtime) = ready("env_and_cwd") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let rootfs = busybox_rootfs(tmp.path());
    let mut s = spec(&["sh", "-c", "echo \"foo=$FOO\"; pwd; touch mine"]);
    s.env.push("FOO=bar baz".into());
    s.cwd = "/work/sub".into();
    s.uid = 1000;
    s.gid = 1000;
    let (code, lines) = run_spec(&runtime, &rootfs, &s).unwrap();
    assert_eq!(
        (code, lines.clone()),
        (0, vec!["foo=bar baz".to_string(), "/work/sub".to_string()])
    );
    let meta = std::fs::metadata(rootfs.join("work/sub")).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid(), meta.mode() & 0o777),
        (1000, 1000, 0o755)
    );
    assert_eq!(
        std::fs::metadata(rootfs.join("work/sub/mine"))
            .unwrap()
            .uid(),
        1000
    );
}

#[test]
fn user_by_name_numeric_and_unknown() {
    let Some(runtime) = ready("user_by_name_numeric_and_unknown") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let rootfs = busybox_rootfs(tmp.path());
    let id = |u: &str| {
        let r = user::resolve(&rootfs, u).unwrap();
        let mut s = spec(&["id"]);
        (s.uid, s.gid, s.additional_gids) = (r.uid, r.gid, r.additional_gids);
        let (code, lines) = run_spec(&runtime, &rootfs, &s).unwrap();
        assert_eq!(code, 0, "{lines:?}");
        lines.join("\n")
    };
    let app = id("app");
    assert!(
        app.starts_with("uid=1000(app) gid=1000(app) groups="),
        "{app}"
    );
    assert!(app.contains("50(staff)"), "{app}");
    let numeric = id("4242");
    assert!(numeric.starts_with("uid=4242 gid=0(root)"), "{numeric}");
    assert_eq!(
        user::resolve(&rootfs, "app").unwrap().home.as_deref(),
        Some("/home/app")
    );
    let err = user::resolve(&rootfs, "nobody").unwrap_err().to_string();
    assert!(
        err.contains("unable to find user nobody: no matching entries in passwd file"),
        "{err}"
    );
}

fn interfaces(proc_net_dev: &str) -> Vec<String> {
    let mut names: Vec<String> = proc_net_dev
        .lines()
        .filter_map(|l| l.split_once(':').map(|(name, _)| name.trim().to_string()))
        .collect();
    names.sort();
    names
}

#[test]
fn host_network_and_none() {
    let Some(runtime) = ready("host_network_and_none") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let rootfs = busybox_rootfs(tmp.path());
    let mut s = spec(&["cat", "/proc/net/dev"]);
    let (_, host_lines) = run_spec(&runtime, &rootfs, &s).unwrap();
    let host = std::fs::read_to_string("/proc/net/dev").unwrap();
    assert_eq!(interfaces(&host_lines.join("\n")), interfaces(&host));
    s.host_network = false;
    let (_, none_lines) = run_spec(&runtime, &rootfs, &s).unwrap();
    assert_eq!(interfaces(&none_lines.join("\n")), vec!["lo".to_string()]);
    // runc brings the loopback of a new network namespace up.
    s.args = vec!["ip".into(), "addr".into(), "show".into(), "lo".into()];
    let (code, lo) = run_spec(&runtime, &rootfs, &s).unwrap();
    let lo = lo.join("\n");
    assert!(
        code == 0 && lo.contains(",UP") && lo.contains("127.0.0.1"),
        "{lo}"
    );
}

#[test]
fn etc_hosts_resolv_conf_and_hostname() {
    let Some(runtime) = ready("etc_hosts_resolv_conf_and_hostname") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let rootfs = busybox_rootfs(tmp.path());
    let (code, lines) = sh(
        &runtime,
        &rootfs,
        "cat /etc/hosts; cat /etc/resolv.conf; hostname; echo x >> /etc/hosts",
    );
    assert_ne!(code, 0, "/etc/hosts must be read-only: {lines:?}");
    assert!(
        lines
            .iter()
            .any(|l| l == "127.0.0.1\tlocalhost pallet-test"),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("::1\tlocalhost")),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("nameserver ")),
        "{lines:?}"
    );
    assert!(lines.iter().any(|l| l == "pallet-test"), "{lines:?}");
}

#[test]
fn overlay_step_writes_upper_and_whiteouts() {
    let Some(runtime) = ready("overlay_step_writes_upper_and_whiteouts") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let base = busybox_rootfs(tmp.path());
    let top = tmp.path().join("top");
    std::fs::create_dir_all(&top).unwrap();
    std::fs::write(top.join("del-me"), "old").unwrap();
    std::fs::write(top.join("keep"), "keep").unwrap();
    let (upper, work, merged) = (
        tmp.path().join("upper"),
        tmp.path().join("work"),
        tmp.path().join("merged"),
    );
    {
        let overlay = Overlay::mount(&[top.clone(), base.clone()], &upper, &work, &merged).unwrap();
        let (code, lines) = sh(
            &runtime,
            &overlay.merged,
            "echo new > /new && rm /del-me && cat /keep",
        );
        assert_eq!((code, lines), (0, vec!["keep".to_string()]));
    }
    assert!(
        std::fs::read_dir(&merged).unwrap().next().is_none(),
        "still mounted after drop"
    );
    assert_eq!(std::fs::read_to_string(upper.join("new")).unwrap(), "new\n");
    let whiteout = std::fs::symlink_metadata(upper.join("del-me")).unwrap();
    assert!(
        whiteout.file_type().is_char_device() && whiteout.rdev() == 0,
        "not a 0/0 whiteout"
    );
    assert!(
        !upper.join("etc/hosts").exists(),
        "mount stub left in the upper dir"
    );
    assert_eq!(std::fs::read_to_string(top.join("del-me")).unwrap(), "old");
    assert!(!base.join("new").exists() && !top.join("new").exists());
    // No scratch dirs left next to work.
    let names: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        !names.iter().any(|n| n.to_string_lossy().starts_with('.')),
        "{names:?}"
    );
}

#[test]
fn overlay_without_lowers_and_readonly_views() {
    if ready("overlay_without_lowers_and_readonly_views").is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path();
    let (upper, work, merged) = (p.join("upper"), p.join("work"), p.join("merged"));
    {
        let ov = Overlay::mount(&[], &upper, &work, &merged).unwrap();
        assert!(std::fs::read_dir(&ov.merged).unwrap().next().is_none());
        std::fs::write(ov.merged.join("f"), "x").unwrap();
    }
    assert!(upper.join("f").exists());
    assert!(
        !p.join(".work.empty-lower").exists(),
        "empty lower not removed"
    );

    // Overlay option separators in a lower's path are escaped.
    let (a, b) = (p.join("a"), p.join("b:1,2"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    std::fs::write(a.join("fa"), "a").unwrap();
    std::fs::write(b.join("fb"), "b").unwrap();
    std::fs::write(b.join("fa"), "under").unwrap();
    for (lowers, want) in [
        (vec![], vec![]),
        (vec![a.clone()], vec!["fa"]),
        (vec![a.clone(), b.clone()], vec!["fa", "fb"]),
    ] {
        let view = p.join("view");
        let ov = Overlay::mount_readonly(&lowers, &view).unwrap();
        let mut names: Vec<String> = std::fs::read_dir(&ov.merged)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into())
            .collect();
        names.sort();
        assert_eq!(names, want);
        if !want.is_empty() {
            assert_eq!(
                std::fs::read_to_string(ov.merged.join("fa")).unwrap(),
                "a",
                "top lower wins"
            );
        }
        let err = std::fs::write(ov.merged.join("new"), "x").unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EROFS), "{lowers:?}: {err}");
    }
}

#[test]
fn hundred_long_lowers_mount() {
    if ready("hundred_long_lowers_mount").is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path();
    let deep = p.join("d".repeat(120)).join("e".repeat(120));
    let lowers: Vec<PathBuf> = (0..100)
        .map(|i| {
            let dir = deep.join(format!("{i:03}-{}", "l".repeat(60)));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(format!("f{i}")), i.to_string()).unwrap();
            std::fs::write(dir.join("who"), i.to_string()).unwrap();
            dir
        })
        .collect();
    let total: usize = lowers.iter().map(|l| l.as_os_str().len() + 1).sum();
    assert!(
        total > 4096 * 4,
        "the lowerdir list must not fit a page ({total} bytes)"
    );
    let (upper, work, merged) = (p.join("upper"), p.join("work"), p.join("merged"));
    {
        let ov = Overlay::mount(&lowers, &upper, &work, &merged).unwrap();
        assert_eq!(std::fs::read_dir(&ov.merged).unwrap().count(), 101);
        assert_eq!(
            std::fs::read_to_string(ov.merged.join("who")).unwrap(),
            "0",
            "lowers[0] is the top"
        );
        assert_eq!(
            std::fs::read_to_string(ov.merged.join("f99")).unwrap(),
            "99"
        );
        std::fs::write(ov.merged.join("who"), "upper").unwrap();
    }
    assert_eq!(std::fs::read_to_string(upper.join("who")).unwrap(), "upper");
    {
        let ov = Overlay::mount_readonly(&lowers, &p.join("view")).unwrap();
        assert_eq!(std::fs::read_dir(&ov.merged).unwrap().count(), 101);
    }
    let names: Vec<_> = std::fs::read_dir(p)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        !names.iter().any(|n| n.to_string_lossy().starts_with('.')),
        "short links left: {names:?}"
    );
}

#[test]
fn bind_and_tmpfs_mounts() {
    let Some(runtime) = ready("bind_and_tmpfs_mounts") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let rootfs = busybox_rootfs(tmp.path());
    let (ro, rw) = (tmp.path().join("ro"), tmp.path().join("rw"));
    std::fs::create_dir_all(&ro).unwrap();
    std::fs::create_dir_all(&rw).unwrap();
    std::fs::write(ro.join("f"), "from host").unwrap();
    let mut s = spec(&[
        "sh",
        "-c",
        "cat /mnt/ro/f; echo; echo x > /mnt/ro/g && echo ro-writable; echo y > /mnt/rw/out; \
         grep ' /scratch ' /proc/mounts; echo z > /scratch/t && cat /scratch/t",
    ]);
    s.mounts = vec![
        SpecMount::Bind {
            source: ro.clone(),
            target: "/mnt/ro".into(),
            readonly: true,
        },
        SpecMount::Bind {
            source: rw.clone(),
            target: "/mnt/rw".into(),
            readonly: false,
        },
        SpecMount::Tmpfs {
            target: "/scratch".into(),
            size: Some(1 << 20),
        },
    ];
    let (code, lines) = run_spec(&runtime, &rootfs, &s).unwrap();
    assert_eq!(code, 0, "{lines:?}");
    assert!(lines.iter().any(|l| l == "from host"), "{lines:?}");
    assert!(
        !lines.iter().any(|l| l == "ro-writable") && !ro.join("g").exists(),
        "{lines:?}"
    );
    assert_eq!(std::fs::read_to_string(rw.join("out")).unwrap(), "y\n");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("tmpfs /scratch tmpfs") && l.contains("size=1024k")),
        "{lines:?}"
    );
    assert!(lines.iter().any(|l| l == "z"), "{lines:?}");
    for stub in ["mnt", "scratch"] {
        assert!(
            !rootfs.join(stub).exists(),
            "mount stub /{stub} left in the rootfs"
        );
    }
}

#[test]
fn killed_by_signal_is_128_plus_n() {
    let Some(runtime) = ready("killed_by_signal_is_128_plus_n") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let rootfs = busybox_rootfs(tmp.path());
    let marker = format!("{}", 900_000 + std::process::id() % 99_999);
    let s = spec(&["sleep", &marker]);
    let killer = std::thread::spawn(move || {
        let want = format!("sleep\0{marker}\0");
        for _ in 0..200 {
            for entry in std::fs::read_dir("/proc").unwrap().flatten() {
                let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                    continue;
                };
                if std::fs::read(entry.path().join("cmdline")).is_ok_and(|c| c == want.as_bytes()) {
                    // SAFETY: kill takes any pid; this one runs the test's own container.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                    return true;
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        false
    });
    let (code, _) = run_spec(&runtime, &rootfs, &s).unwrap();
    assert!(
        killer.join().unwrap(),
        "the container process was never seen"
    );
    assert_eq!(code, 128 + libc::SIGKILL);
}

#[test]
fn runtime_and_command_errors() {
    let Some(runtime) = ready("runtime_and_command_errors") else {
        return;
    };
    let missing = Path::new("/nonexistent/runc");
    assert!(matches!(Runc::locate(Some(missing)), Err(RunError::NoRuntime(p)) if p == missing));
    assert_eq!(Runc::locate(Some(&runtime)).unwrap().path(), runtime);
    let tmp = tempfile::tempdir().unwrap();
    let rootfs = busybox_rootfs(tmp.path());
    let err = run_spec(missing, &rootfs, &spec(&["true"])).unwrap_err();
    assert!(matches!(err, RunError::NoRuntime(_)), "{err}");
    assert!(err.to_string().contains("--runtime PATH"), "{err}");
    let err = run_spec(&runtime, &rootfs, &spec(&["no-such-command"])).unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, RunError::Setup(_)) && text.contains("no-such-command"),
        "{text}"
    );
}

#[test]
fn panicking_output_kills_the_container() {
    let Some(runtime) = ready("panicking_output_kills_the_container") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let rootfs = busybox_rootfs(tmp.path());
    let bundle = tmp.path().join("bundle");
    let started = std::time::Instant::now();
    let s = spec(&["sh", "-c", "echo first; exec sleep 60"]);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        Runc::at(runtime.clone()).run_lines(&rootfs, &bundle, &s, &mut |line| {
            panic!("output refused {line:?}")
        })
    }));
    assert!(result.is_err(), "the panic must propagate");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "the container was waited for, not killed"
    );
    let state = bundle.join("runc-state");
    let left = std::fs::read_dir(&state).map(|d| d.count()).unwrap_or(0);
    assert_eq!(left, 0, "container state left in {}", state.display());
}

/// `Executor::run` keeps stdout and stderr apart and passes bytes as they are (no newline added,
/// binary kept); runc's own failure line is dropped from stderr, nothing else.
#[test]
fn streams_stay_apart_and_bytes_are_kept() {
    use pallet::exec::Stream;
    let Some(runtime) = ready("streams_stay_apart_and_bytes_are_kept") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let rootfs = busybox_rootfs(tmp.path());
    let bundle = tempfile::tempdir().unwrap();
    let script = "echo out1; echo err1 >&2; printf 'out2'; printf 'runc run failed: mine\\n' >&2; \
                  printf '\\001\\377\\n'; printf 'err2' >&2; exit 4";
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let runc = Runc::at(runtime.clone());
    let code = runc
        .run(
            &rootfs,
            bundle.path(),
            &spec(&["sh", "-c", script]),
            &mut |stream, data| match stream {
                Stream::Stdout => out.extend_from_slice(data),
                Stream::Stderr => err.extend_from_slice(data),
            },
        )
        .unwrap();
    assert_eq!(code, 4);
    assert_eq!(out, b"out1\nout2\x01\xff\n");
    // A container line that happens to start like runc's failure message is dropped too (the
    // filter cannot tell them apart); everything else on stderr is kept byte for byte.
    assert_eq!(err, b"err1\nerr2");
    // A command that does not exist: runc's failure is an error, not stderr output.
    let mut err = Vec::new();
    let e = runc
        .run(
            &rootfs,
            bundle.path(),
            &spec(&["/no/such/command"]),
            &mut |stream, data| {
                if stream == Stream::Stderr {
                    err.extend_from_slice(data)
                }
            },
        )
        .unwrap_err();
    assert!(e.to_string().contains("/no/such/command"), "{e}");
    assert!(err.is_empty(), "{}", String::from_utf8_lossy(&err));
}
