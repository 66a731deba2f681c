//! `pallet run`, `pallet inspect` and `pallet tag` with the real runc: a busybox-static image
//! (the kit's busybox tree + `pallet import`), an `app` image built on it (ENV, WORKDIR,
//! RUN, USER, CMD) and an `entry` image (ENTRYPOINT + CMD), then the commands as users run them.
//!
//! Needs root, runc and busybox-static. Without root the tests fail under CI=true and are
//! skipped with a note elsewhere.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use testkit::busybox::Rootfs;
use testkit::store::import_busybox;
use testkit::{pallet, require, text, wait, Need::*};

const APP_DOCKERFILE: &str = "FROM busybox
ENV GREETING=hi
WORKDIR /srv
RUN echo data > /srv/file
USER app
CMD [\"sh\", \"-c\", \"echo $GREETING from $(pwd) as $(id -un)\"]
";

const ENTRY_DOCKERFILE: &str = "FROM app
ENTRYPOINT [\"echo\", \"entry:\"]
CMD [\"default\"]
";

fn can_run() -> bool {
    require("pallet run/inspect test", &[Root, Busybox, Tool("runc")])
}

/// A store under `dir/root` with `busybox`, `app` and `entry`; returns the store path.
fn make_store(dir: &Path) -> PathBuf {
    let store = dir.join("root");
    import_busybox(&pallet!().root(&store), &Rootfs::new());
    for (name, dockerfile) in [("app", APP_DOCKERFILE), ("entry", ENTRY_DOCKERFILE)] {
        let ctx = dir.join(format!("ctx-{name}"));
        std::fs::create_dir_all(&ctx).unwrap();
        std::fs::write(ctx.join("Dockerfile"), dockerfile).unwrap();
        pallet!()
            .root(&store)
            .args(["build", "-t", name])
            .arg(&ctx)
            .ok();
    }
    store
}

/// The store most tests share (built once; removed when the test binary exits).
fn shared() -> &'static Path {
    static STORE: OnceLock<PathBuf> = OnceLock::new();
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    extern "C" fn cleanup() {
        if let Some(dir) = DIR.get() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
    STORE.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("pallet-run-inspect-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        DIR.set(dir.clone()).unwrap();
        // SAFETY: registers a plain function with no captured state.
        unsafe { libc::atexit(cleanup) };
        make_store(&dir)
    })
}

/// Waits for `child` at most `limit`; kills it and panics past that.
fn wait_for(child: &mut std::process::Child, limit: Duration) -> std::process::ExitStatus {
    wait::exit(child, limit, Duration::from_millis(20)).unwrap_or_else(|| {
        let _ = child.kill();
        let _ = child.wait();
        panic!("pallet did not end within {limit:?}");
    })
}

#[test]
fn default_command_runs_as_the_image_says() {
    if !can_run() {
        return;
    }
    let out = pallet!().root(shared()).args(["run", "app"]).ok();
    assert_eq!(out, "hi from /srv as app\n");
}

#[test]
fn exit_code_is_the_containers() {
    if !can_run() {
        return;
    }
    let out = pallet!()
        .root(shared())
        .args(["run", "app", "sh", "-c", "exit 42"])
        .output();
    assert_eq!(out.status.code(), Some(42), "{}", text(&out.stderr));
}

#[test]
fn entrypoint_and_cmd_follow_docker() {
    if !can_run() {
        return;
    }
    let store = shared();
    assert_eq!(
        pallet!().root(store).args(["run", "entry"]).ok(),
        "entry: default\n"
    );
    // Everything after the image is the command's, pallet's own flags too.
    assert_eq!(
        pallet!()
            .root(store)
            .args(["run", "entry", "-e", "x", "--rm"])
            .ok(),
        "entry: -e x --rm\n"
    );
    let out = pallet!()
        .root(store)
        .args(["run", "--entrypoint", "sh", "entry", "-c", "echo replaced"])
        .ok();
    assert_eq!(out, "replaced\n");
    // --entrypoint drops the image's CMD.
    assert_eq!(
        pallet!()
            .root(store)
            .args(["run", "--entrypoint", "echo", "entry"])
            .ok(),
        "\n"
    );
}

#[test]
fn env_flags_override_the_image() {
    if !can_run() {
        return;
    }
    let store = shared();
    let out = pallet!()
        .root(store)
        .args(["run", "-e", "GREETING=hello", "app"])
        .ok();
    assert_eq!(out, "hello from /srv as app\n");
    let out = pallet!()
        .root(store)
        .args([
            "run",
            "-e",
            "FROM_HOST",
            "-e",
            "GREETING",
            "-e",
            "NEW=1",
            "app",
            "sh",
            "-c",
            "echo \"$FROM_HOST ${GREETING-unset} $NEW $HOME\"",
        ])
        .env("FROM_HOST", "yes")
        .env_remove("GREETING")
        .ok();
    assert_eq!(out, "yes unset 1 /home/app\n");
}

#[test]
fn volumes_bind_host_paths_and_ro_is_enforced() {
    if !can_run() {
        return;
    }
    let store = shared();
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("in.txt"), "from host\n").unwrap();
    let h = host.path().to_str().unwrap();
    let out = pallet!()
        .root(store)
        .args([
            "run",
            "-u",
            "root",
            "-v",
            &format!("{h}:/data"),
            "app",
            "sh",
            "-c",
            "cat /data/in.txt && echo out > /data/out.txt",
        ])
        .ok();
    assert_eq!(out, "from host\n");
    assert_eq!(
        std::fs::read_to_string(host.path().join("out.txt")).unwrap(),
        "out\n"
    );
    let out = pallet!()
        .root(store)
        .args([
            "run",
            "-u",
            "root",
            "-v",
            &format!("{h}:/data:ro"),
            "app",
            "sh",
            "-c",
            "cat /data/in.txt && echo x > /data/denied",
        ])
        .output();
    assert_ne!(out.status.code(), Some(0));
    assert!(
        text(&out.stdout).contains("from host"),
        "{}",
        text(&out.stdout)
    );
    // sh's error is on the container's stderr, which is pallet's stderr.
    assert!(
        text(&out.stderr).contains("Read-only file system"),
        "{}",
        text(&out.stderr)
    );
    assert!(!host.path().join("denied").exists());
    let out = pallet!()
        .root(store)
        .args(["run", "-v", "relative:/data", "app", "true"])
        .output();
    assert_eq!(out.status.code(), Some(125));
    assert!(
        text(&out.stderr).contains("is not absolute"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn user_flag_overrides_the_image_user() {
    if !can_run() {
        return;
    }
    let store = shared();
    assert_eq!(
        pallet!()
            .root(store)
            .args(["run", "--user", "root", "app", "id", "-un"])
            .ok(),
        "root\n"
    );
    // The primary group is among the groups, as `docker run -u 4242:77` gives (checked
    // against dockerd 20.10.24) and BuildKit's RUN (ensureAdditionalGids).
    assert_eq!(
        pallet!()
            .root(store)
            .args(["run", "-u", "4242:77", "app", "id"])
            .ok(),
        "uid=4242 gid=77 groups=77\n"
    );
    assert_eq!(
        pallet!()
            .root(store)
            .args(["run", "-w", "/tmp", "app", "pwd"])
            .ok(),
        "/tmp\n"
    );
}

/// Every file under `dir` with its type, size, mode and mtime, sorted.
fn listing(dir: &Path) -> Vec<String> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let m = std::fs::symlink_metadata(e.path()).unwrap();
            out.push(format!(
                "{} {:o} {} {}.{}",
                e.path().display(),
                m.mode(),
                m.size(),
                m.mtime(),
                m.mtime_nsec()
            ));
            if m.is_dir() {
                stack.push(e.path());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn writes_are_discarded() {
    if !can_run() {
        return;
    }
    // A store of its own: nothing else runs in it, so tmp/ must end up empty.
    let dir = tempfile::tempdir().unwrap();
    let store = make_store(dir.path());
    let before = listing(&store.join("snapshots"));
    let out = pallet!()
        .root(&store)
        .args([
            "run",
            "-u",
            "root",
            "app",
            "sh",
            "-c",
            "touch /srv/new && echo changed > /srv/file && rm /bin/ls && test ! -e /bin/ls \
             && ls /srv && cat /srv/file",
        ])
        .ok();
    assert_eq!(out, "file\nnew\nchanged\n");
    let out = pallet!()
        .root(&store)
        .args([
            "run",
            "app",
            "sh",
            "-c",
            "ls /srv; cat /srv/file; ls -d /bin/ls",
        ])
        .ok();
    assert_eq!(out, "file\ndata\n/bin/ls\n");
    assert_eq!(listing(&store.join("snapshots")), before);
    let left: Vec<_> = std::fs::read_dir(store.join("tmp")).unwrap().collect();
    assert!(left.is_empty(), "scratch dirs left behind: {left:?}");
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    assert!(
        !mounts.contains(store.to_str().unwrap()),
        "a mount was left behind"
    );
}

#[test]
fn network_none_has_only_loopback() {
    if !can_run() {
        return;
    }
    let store = shared();
    let out = pallet!()
        .root(store)
        .args(["run", "--network", "none", "app", "ls", "/sys/class/net"])
        .ok();
    assert_eq!(out, "lo\n");
    let mut host: Vec<String> = std::fs::read_dir("/sys/class/net")
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    host.sort();
    let out = pallet!()
        .root(store)
        .args(["run", "app", "ls", "-1", "/sys/class/net"])
        .ok();
    assert_eq!(
        out,
        format!("{}\n", host.join("\n")),
        "host network by default"
    );
}

#[test]
fn missing_image_and_missing_command_are_clear_errors() {
    if !can_run() {
        return;
    }
    let store = shared();
    let out = pallet!().root(store).args(["run", "nope:1.0"]).output();
    assert_eq!(out.status.code(), Some(125));
    let err = text(&out.stderr);
    assert!(err.contains("docker.io/library/nope:1.0"), "{err}");
    assert!(err.contains("pallet images"), "{err}");
    // The imported busybox has no CMD.
    let out = pallet!().root(store).args(["run", "busybox"]).output();
    assert_eq!(out.status.code(), Some(125));
    assert!(
        text(&out.stderr).contains("nothing to run"),
        "{}",
        text(&out.stderr)
    );
    let out = pallet!().root(store).args(["run"]).output();
    assert_eq!(out.status.code(), Some(125));
    assert!(
        text(&out.stderr).contains("<IMAGE>"),
        "{}",
        text(&out.stderr)
    );
}

/// Starts `pallet run ARGS`, waits for the container to print `ready`, sends SIGTERM to
/// pallet; returns the exit status, all output, and how long the end took.
fn terminate(args: &[&str], limit: Duration) -> (std::process::ExitStatus, String, Duration) {
    let mut child = pallet!()
        .root(shared())
        .args(args)
        .command()
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().expect("a line from the container").unwrap();
    assert_eq!(first, "ready");
    let start = Instant::now();
    assert_eq!(
        // SAFETY: sends a signal to our own child.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) },
        0
    );
    let status = wait_for(&mut child, limit);
    let took = start.elapsed();
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    (status, rest.join("\n"), took)
}

#[test]
fn sigterm_stops_a_container_that_ignores_it() {
    if !can_run() {
        return;
    }
    // sleep as PID 1 has no handler, so TERM is ignored: pallet kills it after --stop-timeout
    // (3 s by default) and exits 128+15.
    let (status, _, took) = terminate(
        &["run", "app", "sh", "-c", "echo ready; exec sleep 100"],
        Duration::from_secs(20),
    );
    assert_eq!(status.code(), Some(143));
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

#[test]
fn sigterm_is_forwarded_to_the_container() {
    if !can_run() {
        return;
    }
    let (status, rest, took) = terminate(
        &[
            "run",
            "--stop-timeout",
            "60",
            "app",
            "sh",
            "-c",
            "trap 'echo stopping; exit 7' TERM; echo ready; sleep 100 & wait",
        ],
        Duration::from_secs(20),
    );
    assert_eq!(status.code(), Some(7), "{rest}");
    assert_eq!(rest, "stopping");
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

#[test]
fn inspect_text_shows_config_and_history_with_sizes() {
    if !can_run() {
        return;
    }
    let out = pallet!().root(shared()).args(["inspect", "app"]).ok();
    for want in [
        "Name:         docker.io/library/app:latest",
        "Manifest:     sha256:",
        "Platform:     linux/",
        "Env:          PATH=",
        "              GREETING=hi",
        "Entrypoint:   -",
        "Cmd:          [\"sh\",\"-c\",\"echo $GREETING from $(pwd) as $(id -un)\"]",
        "WorkingDir:   /srv",
        "User:         app",
        "ExposedPorts: -",
        "Healthcheck:  -",
        "History:",
    ] {
        assert!(out.contains(want), "missing {want:?} in\n{out}");
    }
    let row = |needle: &str| {
        out.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no history row with {needle:?} in\n{out}"))
            .split_whitespace()
            .next()
            .unwrap()
            .to_string()
    };
    assert!(row("pallet import").ends_with("MB"), "{out}");
    assert!(row("RUN /bin/sh -c echo data").ends_with("kB"), "{out}");
    assert_eq!(row("ENV GREETING=hi"), "-");
    let total = out.lines().find(|l| l.starts_with("Size:")).unwrap();
    assert!(total.ends_with("in 3 layers"), "{total}");
}

#[test]
fn inspect_json_has_the_config_and_layers() {
    if !can_run() {
        return;
    }
    let out = pallet!()
        .root(shared())
        .args(["inspect", "--format", "json", "app"])
        .ok();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["name"], "docker.io/library/app:latest");
    assert_eq!(v["config"]["config"]["WorkingDir"], "/srv");
    assert_eq!(v["config"]["config"]["User"], "app");
    let layers = v["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 3);
    let sum: u64 = layers.iter().map(|l| l["size"].as_u64().unwrap()).sum();
    assert!(layers.iter().all(|l| l["size"].as_u64().unwrap() > 0));
    assert_eq!(v["size"].as_u64(), Some(sum));
    assert_eq!(
        layers[2]["diff_id"], v["config"]["rootfs"]["diff_ids"][2],
        "layers in config order"
    );
}

#[test]
fn tag_then_run_by_the_new_name() {
    if !can_run() {
        return;
    }
    let store = shared();
    pallet!()
        .root(store)
        .args(["tag", "app", "registry.local/team/app:v1"])
        .ok();
    assert_eq!(
        pallet!()
            .root(store)
            .args(["run", "registry.local/team/app:v1"])
            .ok(),
        "hi from /srv as app\n"
    );
    let out = pallet!()
        .root(store)
        .args(["inspect", "registry.local/team/app:v1"])
        .ok();
    assert!(
        out.starts_with("Name:         registry.local/team/app:v1\n"),
        "{out}"
    );
    let images = pallet!().root(store).args(["images"]).ok();
    assert!(images.contains("docker.io/library/app:latest"), "{images}");
    let out = pallet!()
        .root(store)
        .args(["tag", "missing", "other"])
        .output();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no image docker.io/library/missing:latest"),
        "{}",
        text(&out.stderr)
    );
}
