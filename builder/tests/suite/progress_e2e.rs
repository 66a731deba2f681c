//! Build progress and cache-miss reasons, end to end with runc: the `--progress=json` event
//! stream over a first build, a no-change rebuild, an edited context file, a changed build arg
//! and `--no-cache`; `--explain` (a dry run) reporting the same reasons without building;
//! plain output against a golden file (times, digests and sizes masked); the live tty view in
//! a tmux pseudo-terminal; `pallet history`.
//!
//! Needs root, runc and busybox-static: fails under CI=true without them, skips elsewhere.

use serde_json::Value;
use std::path::Path;
use std::process::Command;
use testkit::busybox::Rootfs;
use testkit::files::{context, count_files};
use testkit::progress::{about, events, reasons};
use testkit::{pallet, require, text, Need, Need::*, Store};

const DOCKERFILE: &str =
    "FROM busybox\nARG V=1\nCOPY a.txt /a.txt\nRUN echo \"v=$V\" && cat /a.txt\n";

fn can_run(tools: &[&str]) -> bool {
    let mut needs = vec![Root, Busybox, Tool("runc")];
    needs.extend(tools.iter().map(|t| Need::Tool(t)));
    require("progress test", &needs)
}

fn build_json(store: &Store, ctx: &Path, extra: &[&str]) -> Vec<Value> {
    let out = store
        .pallet()
        .args(["build", "--progress=json", "-t", "progress:test"])
        .args(extra)
        .arg(ctx)
        .output();
    assert!(out.status.success(), "build failed:\n{}", text(&out.stderr));
    events(&out.stderr)
}

fn summary(events: &[Value]) -> &Value {
    let s = events.last().expect("events");
    assert_eq!(s["event"], "summary", "the last event is the summary: {s}");
    s
}

/// Every cache record of the store's index (key, blake3 of the value).
fn cache_records(root: &Path) -> Vec<(String, String)> {
    let root = cache::Root::open(root).unwrap();
    let mut all: Vec<(String, String)> = root
        .index
        .list_cache()
        .unwrap()
        .into_iter()
        .map(|(k, v)| (k, blake3::hash(&v).to_hex().to_string()))
        .collect();
    all.sort();
    all
}

fn kinds(reasons: &[Value]) -> Vec<&str> {
    reasons.iter().filter_map(|r| r["kind"].as_str()).collect()
}

#[test]
fn json_events_and_cache_miss_reasons() {
    if !can_run(&[]) {
        return;
    }
    let store = Store::busybox(pallet!());
    let tmp = store.dir();
    let ctx = context(&tmp.join("ctx"), DOCKERFILE, &[("a.txt", "one\n")]);

    // First build: both steps run, each "first build of this step".
    let ev = build_json(&store, &ctx, &[]);
    assert_eq!(ev[0]["event"], "progress");
    assert_eq!(ev[0]["version"], 1);
    assert_eq!(about(&ev, "step.cached", "FROM").len(), 1, "{ev:#?}");
    for step in ["COPY a.txt", "RUN echo"] {
        assert_eq!(about(&ev, "step.started", step).len(), 1, "{step}: {ev:#?}");
        let fin = about(&ev, "step.finished", step);
        assert!(fin[0]["seconds"].as_f64().unwrap() >= 0.0);
        assert_eq!(kinds(&reasons(&ev, step)), ["first_build"], "{step}");
    }
    let logs: Vec<&str> = about(&ev, "step.log", "RUN echo")
        .iter()
        .filter_map(|e| e["line"].as_str())
        .collect();
    assert!(logs.contains(&"v=1") && logs.contains(&"one"), "{logs:?}");
    let s = summary(&ev);
    assert_eq!(s["status"], "ok");
    assert_eq!(s["image"], "docker.io/library/progress:test");
    assert!(s["digest"].as_str().unwrap().starts_with("sha256:"));
    assert!(s["size"].as_u64().unwrap() > 0);
    assert_eq!(s["cache"]["misses"], 2);
    // Step numbers are stable within a stream.
    let n = about(&ev, "step.started", "RUN echo")[0]["step"].clone();
    assert_eq!(about(&ev, "step.finished", "RUN echo")[0]["step"], n);

    // Nothing changed: all cached, nothing started.
    let ev = build_json(&store, &ctx, &[]);
    assert!(!ev.iter().any(|e| e["event"] == "step.started"), "{ev:#?}");
    for step in ["FROM", "COPY a.txt", "RUN echo"] {
        assert_eq!(about(&ev, "step.cached", step).len(), 1, "{step}: {ev:#?}");
    }
    assert_eq!(summary(&ev)["cache"]["misses"], 0);
    assert_eq!(summary(&ev)["cache"]["hits"], 3);

    // An edited file: COPY names it, RUN blames its parent.
    std::fs::write(ctx.join("a.txt"), "two\n").unwrap();
    let ev = build_json(&store, &ctx, &[]);
    let r = reasons(&ev, "COPY a.txt");
    assert_eq!(kinds(&r), ["context_files"], "{r:?}");
    assert_eq!(r[0]["files"], serde_json::json!(["a.txt"]));
    assert_eq!(r[0]["message"], "context files changed: a.txt");
    let r = reasons(&ev, "RUN echo");
    assert_eq!(kinds(&r), ["parent"], "{r:?}");
    assert!(
        r[0]["step"].as_str().unwrap().contains("COPY a.txt"),
        "{r:?}"
    );

    // A build arg: COPY stays cached, RUN names the arg.
    let ev = build_json(&store, &ctx, &["--build-arg", "V=2"]);
    assert_eq!(about(&ev, "step.cached", "COPY a.txt").len(), 1, "{ev:#?}");
    let r = reasons(&ev, "RUN echo");
    assert_eq!(kinds(&r), ["build_arg"], "{r:?}");
    assert_eq!(r[0]["name"], "V");
    assert_eq!(
        (r[0]["before"].as_str(), r[0]["after"].as_str()),
        (Some("1"), Some("2"))
    );

    // --no-cache says so.
    let ev = build_json(&store, &ctx, &["--build-arg", "V=2", "--no-cache"]);
    for step in ["COPY a.txt", "RUN echo"] {
        assert_eq!(kinds(&reasons(&ev, step)), ["no_cache"], "{step}");
    }

    // The base image moved: the first step on it names the old and new digests.
    store.import_busybox(&Rootfs::new().file("etc/motd", "new base\n"));
    let ev = build_json(&store, &ctx, &["--build-arg", "V=2"]);
    let r = reasons(&ev, "COPY a.txt");
    assert_eq!(kinds(&r), ["base_image"], "{r:?}");
    assert_eq!(r[0]["reference"], "docker.io/library/busybox:latest");
    assert_ne!(r[0]["before"], r[0]["after"]);
    assert_eq!(kinds(&reasons(&ev, "RUN echo")), ["parent"]);
}

#[test]
fn explain_is_a_dry_run_with_the_same_reasons() {
    if !can_run(&[]) {
        return;
    }
    let store = Store::busybox(pallet!());
    let (tmp, root) = (store.dir(), store.root());
    let ctx = context(&tmp.join("ctx"), DOCKERFILE, &[("a.txt", "one\n")]);
    // Before any build: everything would run, for the first time.
    let out = store
        .pallet()
        .args([
            "build",
            "--explain",
            "--progress=json",
            ctx.to_str().unwrap(),
        ])
        .output();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let ev = events(&out.stderr);
    assert_eq!(kinds(&reasons(&ev, "RUN echo")), ["first_build"]);
    // A base the store lacks is a miss too (the build would pull it).
    let other = context(
        &tmp.join("other").join("ctx"),
        "FROM registry.invalid/none:1\nRUN true\n",
        &[],
    );
    let out = store
        .pallet()
        .args([
            "build",
            "--explain",
            "--progress=json",
            other.to_str().unwrap(),
        ])
        .output();
    let ev = events(&out.stderr);
    assert_eq!(
        kinds(&reasons(&ev, "FROM")),
        ["not_in_store"],
        "{}",
        text(&out.stderr)
    );
    build_json(&store, &ctx, &[]);

    // Explained after an edit and an arg change: the reasons a build would give, nothing run.
    std::fs::write(ctx.join("a.txt"), "changed\n").unwrap();
    let blobs_before = count_files(&root.join("blobs"));
    let index_before = cache_records(root);
    let out = store
        .pallet()
        .args([
            "build",
            "--explain",
            "--progress=json",
            "--build-arg",
            "V=3",
            ctx.to_str().unwrap(),
        ])
        .output();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let ev = events(&out.stderr);
    assert!(!ev
        .iter()
        .any(|e| e["event"] == "step.started" || e["event"] == "step.log"));
    assert_eq!(about(&ev, "step.cached", "FROM").len(), 1);
    let r = reasons(&ev, "COPY a.txt");
    assert_eq!(r[0]["files"], serde_json::json!(["a.txt"]), "{r:?}");
    let r = reasons(&ev, "RUN echo");
    assert_eq!(kinds(&r), ["build_arg", "parent"], "{r:?}");
    let s = summary(&ev);
    assert_eq!(s["dry_run"], true);
    assert_eq!(s["cache"]["misses"], 2);
    assert_eq!(
        count_files(&root.join("blobs")),
        blobs_before,
        "a dry run adds no layers"
    );
    assert!(cache_records(root) == index_before, "nor index records");

    // Plain text says the same.
    let out = store
        .pallet()
        .args([
            "build",
            "--explain",
            "--progress=plain",
            ctx.to_str().unwrap(),
        ])
        .output();
    let log = text(&out.stderr);
    assert!(
        log.contains("cache miss: context files changed: a.txt"),
        "{log}"
    );
    assert!(
        log.contains("nothing built") && !log.contains("DONE"),
        "{log}"
    );
}

/// Plain output, masked: step times, output timestamps, digests, sizes and the runtime's path
/// (in the isolation line).
fn mask(log: &str) -> String {
    let mut out = String::new();
    for line in log.lines() {
        let words: Vec<String> = line
            .split(' ')
            .map(|w| {
                let core = w.trim_end_matches([',', ';', ')']).trim_start_matches('(');
                let tail = &w[w.find(core).unwrap() + core.len()..];
                let head = &w[..w.find(core).unwrap()];
                let masked = if core.starts_with('/') && core.ends_with("/runc") {
                    "<runc>".to_string()
                } else if let Some(at) = core.find("sha256:") {
                    format!("{}sha256:<digest>", &core[..at])
                } else if is_number(core.trim_end_matches('s')) && core.contains('.') {
                    if core.ends_with('s') { "<t>s" } else { "<t>" }.to_string()
                } else if ["B", "kB", "MB", "GB"]
                    .iter()
                    .any(|u| core.strip_suffix(u).is_some_and(is_number))
                {
                    "<size>".to_string()
                } else {
                    core.to_string()
                };
                format!("{head}{masked}{tail}")
            })
            .collect();
        out.push_str(&words.join(" "));
        out.push('\n');
    }
    out
}

fn is_number(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_digit() || c == '.')
}

#[test]
fn plain_output_matches_the_golden_file() {
    if !can_run(&[]) {
        return;
    }
    let store = Store::busybox(pallet!());
    let tmp = store.dir();
    let ctx = context(&tmp.join("ctx"), DOCKERFILE, &[("a.txt", "one\n")]);
    let mut log = String::new();
    for extra in [&[][..], &[][..], &["--build-arg", "V=2"][..]] {
        let mut args = vec!["build", "--progress=plain", "-t", "golden:test"];
        args.extend_from_slice(extra);
        args.push(ctx.to_str().unwrap());
        let out = store.pallet().args(&args).output();
        assert!(out.status.success(), "{}", text(&out.stderr));
        log.push_str(&format!("$ pallet {}\n", args[..args.len() - 1].join(" ")));
        log.push_str(&text(&out.stderr));
    }
    let got = mask(&log);
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/progress_plain.txt");
    if std::env::var("UPDATE_GOLDEN").is_ok() {
        std::fs::write(&golden, &got).unwrap();
    }
    let want = std::fs::read_to_string(&golden).expect("golden file (UPDATE_GOLDEN=1 writes it)");
    assert_eq!(got, want, "plain output differs from {}", golden.display());
}

/// A tmux server of our own (its own socket), killed when dropped.
struct Tmux(String);

impl Tmux {
    fn cmd(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.0])
            .args(args)
            .output()
            .expect("tmux");
        text(&out.stdout)
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.cmd(&["kill-server"]);
    }
}

#[test]
fn tty_view_in_a_pseudo_terminal() {
    if !can_run(&["tmux"]) {
        return;
    }
    let store = Store::busybox(pallet!());
    let (tmp, root) = (store.dir(), store.root());
    let ctx = context(
        &tmp.join("ctx"),
        "FROM busybox\nCOPY a.txt /a.txt\nRUN echo started-work && sleep 2 && echo finished-work\n",
        &[("a.txt", "one\n")],
    );
    let done = tmp.join("done");
    let script = format!(
        "{} --root {} build -t tty:test {} ; echo exit=$? > {}; sleep 600",
        env!("CARGO_BIN_EXE_pallet"),
        root.display(),
        ctx.display(),
        done.display()
    );
    let tmux = Tmux(format!("pallet-progress-{}", std::process::id()));
    // --progress defaults to auto: a terminal on stderr means the tty view.
    tmux.cmd(&[
        "new-session",
        "-d",
        "-x",
        "120",
        "-y",
        "40",
        "-s",
        "t",
        &script,
    ]);
    let capture = || tmux.cmd(&["capture-pane", "-p", "-t", "t"]);
    let start = std::time::Instant::now();
    let mut live = String::new();
    while !done.exists() && start.elapsed().as_secs() < 120 {
        let screen = capture();
        if screen.contains("# started-work") && !screen.contains("pallet: built") {
            live = screen;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let result = std::fs::read_to_string(&done).expect("the build ended");
    let screen = capture();
    assert_eq!(result.trim(), "exit=0", "{screen}");
    // While RUN worked: its name, elapsed time and last output line, the base CACHED.
    assert!(live.contains("[+] Building"), "live view:\n{live}");
    assert!(
        live.contains("=> CACHED [1/3] FROM docker.io/library/busybox"),
        "{live}"
    );
    assert!(live.contains("=> [3/3] RUN echo started-work"), "{live}");
    assert!(live.contains("=> => # started-work"), "{live}");
    // The final state: every step, finished, and the summary.
    assert!(screen.contains("=> [2/3] COPY a.txt /a.txt"), "{screen}");
    assert!(
        screen.contains("=> [3/3] RUN echo started-work"),
        "{screen}"
    );
    assert!(
        screen.contains("cache miss: first build of this step"),
        "{screen}"
    );
    assert!(
        screen.contains("pallet: built docker.io/library/tty:test sha256:"),
        "{screen}"
    );
    assert!(screen.contains("cache: 1 hit, 2 misses"), "{screen}");
}

#[test]
fn history_shows_layers_by_instruction_and_size() {
    if !can_run(&[]) {
        return;
    }
    let store = Store::busybox(pallet!());
    let tmp = store.dir();
    let ctx = context(&tmp.join("ctx"), DOCKERFILE, &[("a.txt", "one\n")]);
    build_json(&store, &ctx, &[]);
    let out = store.pallet().args(["history", "progress:test"]).output();
    let table = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].contains("CREATED BY") && lines[0].contains("SIZE"),
        "{table}"
    );
    // Newest first, as docker history.
    assert!(lines[1].contains("RUN |1 V=1 /bin/sh -c echo"), "{table}");
    assert!(lines[2].contains("COPY a.txt /a.txt # buildkit"), "{table}");
    assert!(lines.last().unwrap().contains("pallet import"), "{table}");

    let out = store
        .pallet()
        .args(["inspect", "--largest", "progress:test"])
        .output();
    let text_out = text(&out.stdout);
    let by_size = text_out.split("Layers by size:\n").nth(1).expect(&text_out);
    assert!(
        by_size.lines().nth(1).unwrap().contains("pallet import"),
        "{text_out}"
    );

    let out = store
        .pallet()
        .args(["history", "--largest", "progress:test"])
        .output();
    let table = text(&out.stdout);
    assert!(
        table.lines().nth(1).unwrap().contains("pallet import"),
        "base layer is largest: {table}"
    );

    let out = store
        .pallet()
        .args(["history", "--format", "json", "--no-trunc", "progress:test"])
        .output();
    let rows: Vec<Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(rows.len() >= 4, "{rows:?}");
    let copy = rows
        .iter()
        .find(|r| r["created_by"].as_str().unwrap().starts_with("COPY"))
        .unwrap();
    assert!(copy["size"].as_u64().unwrap() > 0);
    assert!(copy["id"].as_str().unwrap().starts_with("sha256:"));
    let arg = rows
        .iter()
        .find(|r| r["created_by"].as_str().unwrap().starts_with("ARG"))
        .unwrap();
    assert_eq!(arg["empty_layer"], true);
}
