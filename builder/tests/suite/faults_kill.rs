//! kill -9 at 20 points of build, export (`-o type=oci`, `-o type=docker`), push and pull
//! (issue 13, "Faults"), chosen by a seeded random schedule.
//!
//! An uninterrupted reference run of each command, watched, gives its timeline: when each
//! point of interest was reached (a step starting, a RUN step's container running, a pending
//! snapshot appearing, the layer writer's blob temp file, compression, the archive's file, an
//! upload, a download). Each kill point is one of those, drawn with the seed (every point of a
//! command once, in a shuffled order, before any is drawn again), plus a delay drawn within
//! the gap to the next point of the reference. The command is run again, watched until it
//! reaches the point, then killed with SIGKILL after the delay. The seed is printed;
//! `PALLET_FAULT_SEED=0x...` replays a schedule (the same points and delays; the timing of
//! the machine still varies). Then:
//!
//! - the step's container dies with pallet (no process of it remains, and `runc --root
//!   STATE list` of the killed run's step dirs lists no container);
//! - the next command (images, du or the same command again, drawn too) prints the removal
//!   of exactly the leftovers the killed run left (when it left some);
//! - after it, nothing is in tmp/, no pending snapshot remains, nothing of the store is
//!   mounted, and `pallet du` says 0B of temporaries;
//! - the store verifies: `pallet doctor` says healthy, and every blob hashes to its name and
//!   every tag's blobs are there (checked here, without pallet's code);
//! - after a killed push the registry's tag is absent or the complete image;
//! - the command run to its end gives the reference's image digest (SOURCE_DATE_EPOCH), the
//!   same archive bytes, the same pushed or pulled manifest digest.
//!
//! The checks are shown to see what they look for: leftovers were found before the sweep,
//! mounts and containers (by process and by `runc list`) were seen at kill time, and a
//! corrupted blob fails the store check.
//!
//! Needs root, runc, busybox-static and docker-registry; fails under CI=true without them.

use super::faults_kit::{
    built_digest, check_blobs, du_temporary, figure, mounts_under, noise, processes_mentioning,
    removed_leftovers, runc_list, runc_roots, seed, temporaries, verify_store, wait_no_processes,
    wait_settled, Rng, Watched,
};
use registry::Reference;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use testkit::docker_registry::{Config, Registry};
use testkit::files::{context, temp_dir, TempDir};
use testkit::registry_client::client_for;
use testkit::{pallet, require, text, Need::*, Pallet};

const EPOCH: &str = "1700000000";
/// The RUN steps' sleep: how their containers are found.
const SLEEP: &str = "sleep 0.31415";
const DOCKERFILE: &str = "FROM busybox\n\
    RUN echo one > /one && sleep 0.31415\n\
    COPY big.bin /big.bin\n\
    RUN sleep 0.31415 && dd if=/big.bin of=/derived bs=65536 count=24 2>/dev/null\n\
    RUN echo done > /done\n";
const IMAGE: &str = "kill:app";
/// How long the checks wait for processes to end.
const LIMIT: Duration = Duration::from_secs(15);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Build,
    ExportOci,
    ExportDocker,
    Push,
    Pull,
}

/// The kill points per command, in order: 8 in builds, 3 in each export, 3 in pushes, 3 in
/// pulls.
const PLAN: &[(Op, usize)] = &[
    (Op::Build, 8),
    (Op::ExportOci, 3),
    (Op::ExportDocker, 3),
    (Op::Push, 3),
    (Op::Pull, 3),
];

/// A point of interest in a run.
#[derive(Clone, Copy, Debug)]
enum Sign {
    /// The process started.
    Start,
    /// A progress line holding both texts (and not the third, if any).
    Line(&'static str, &'static str, Option<&'static str>),
    /// A pending snapshot of the process.
    Pending,
    /// A blob temp file of the process (the layer writer, compression, a download).
    Partial,
    /// A blob temp file of the process with bytes in it.
    PartialBytes,
    /// The export's destination file.
    Dest,
    /// A RUN step's container runs (a process of it is seen).
    Container,
}

/// The longest delay after [`Sign::Container`]: the container still runs then (its sleep is
/// 314 ms), so the kill finds it.
const CONTAINER_DELAY: Duration = Duration::from_millis(100);

fn signs(op: Op) -> Vec<(&'static str, Sign)> {
    match op {
        Op::Build => vec![
            ("starting, before any step", Sign::Start),
            (
                "RUN 2/5 started",
                Sign::Line("step.started", "[2/5] RUN", None),
            ),
            ("a RUN step's container runs", Sign::Container),
            (
                "COPY 3/5 started",
                Sign::Line("step.started", "[3/5] COPY", None),
            ),
            (
                "RUN 4/5 started",
                Sign::Line("step.started", "[4/5] RUN", None),
            ),
            ("a pending snapshot appeared", Sign::Pending),
            ("the layer writer's temp blob appeared", Sign::Partial),
            (
                "the last step finished",
                Sign::Line("step.finished", "[5/5] RUN", None),
            ),
        ],
        Op::ExportOci | Op::ExportDocker => vec![
            ("starting, steps cached", Sign::Start),
            (
                "the last step cached",
                Sign::Line("step.cached", "[5/5] RUN", None),
            ),
            ("compression's temp blob appeared", Sign::Partial),
            ("compression writing", Sign::PartialBytes),
            ("the archive file appeared", Sign::Dest),
        ],
        Op::Push => vec![
            ("starting", Sign::Start),
            (
                "compressing a layer",
                Sign::Line("\"transfer\"", "compressing", None),
            ),
            (
                "uploading a blob",
                Sign::Line("\"transfer\"", "\"done\"", Some("compressing")),
            ),
        ],
        Op::Pull => vec![
            ("starting", Sign::Start),
            ("a download's temp blob appeared", Sign::Partial),
            ("downloading", Sign::PartialBytes),
            ("a transfer reported", Sign::Line("\"transfer\"", "", None)),
        ],
    }
}

/// Whether `sign` holds now for the watched run `w` (pid-tagged temporaries of the store at
/// `root`, the export's `dest`).
fn holds(sign: Sign, w: &Watched, root: &Path, dest: &Path) -> bool {
    let pid = w.pid();
    let own = |dir: &str, prefix: &str| -> Vec<PathBuf> {
        testkit::files::list_dir_if_exists(&root.join(dir))
            .into_iter()
            .filter(|n| n.starts_with(&format!("{prefix}{pid}-")))
            .map(|n| root.join(dir).join(n))
            .collect()
    };
    match sign {
        Sign::Start => true,
        Sign::Line(a, b, not) => w
            .lines()
            .iter()
            .any(|(_, l)| l.contains(a) && l.contains(b) && not.is_none_or(|n| !l.contains(n))),
        Sign::Pending => !own("snapshots", "pending-").is_empty(),
        Sign::Partial => !own("tmp", "blob-").is_empty(),
        Sign::PartialBytes => own("tmp", "blob-")
            .iter()
            .any(|p| std::fs::metadata(p).is_ok_and(|m| m.len() > 0)),
        Sign::Dest => dest.exists(),
        Sign::Container => !processes_mentioning(SLEEP).is_empty(),
    }
}

/// Everything one command of the schedule needs: the store, the registries, where exports go.
struct Bench {
    dir: TempDir,
    ctx: PathBuf,
    /// The pull source: the reference image pushed to `kill/app:1`.
    source: Registry,
}

impl Bench {
    fn pallet(&self, root: &Path) -> Pallet {
        pallet!()
            .root(root)
            .env("SOURCE_DATE_EPOCH", EPOCH)
            .env("DOCKER_CONFIG", self.dir.path().join("docker"))
            .env("PALLET_CONFIG", self.dir.path().join("pallet-config.json"))
    }

    fn dest(&self, op: Op) -> PathBuf {
        self.dir.path().join(match op {
            Op::ExportDocker => "out-docker.tar",
            _ => "out-oci.tar",
        })
    }

    /// The command of `op` on the store at `root`; `registry` is the push target.
    fn command(&self, op: Op, root: &Path, registry: &str) -> Pallet {
        let p = self.pallet(root);
        match op {
            Op::Build => p
                .args(["build", "--progress", "json", "-t", IMAGE])
                .arg(&self.ctx),
            Op::ExportOci => p
                .args(["build", "--progress", "json", "-t", IMAGE, "-o"])
                .arg(format!(
                    "type=oci,dest={},compression=zstd",
                    self.dest(op).display()
                ))
                .arg(&self.ctx),
            Op::ExportDocker => p
                .args(["build", "--progress", "json", "-t", IMAGE, "-o"])
                .arg(format!(
                    "type=docker,dest={},compression-level=1",
                    self.dest(op).display()
                ))
                .arg(&self.ctx),
            Op::Push => p.args([
                "push",
                "--progress",
                "json",
                IMAGE,
                &format!("{registry}/kill/app:1"),
            ]),
            Op::Pull => p.args([
                "pull",
                "--progress",
                "json",
                &format!("{}/kill/app:1", self.source.host()),
            ]),
        }
    }

    /// Makes the store at `root` ready for `op`: empty for a pull; else busybox imported, and
    /// the image built when the command exports or pushes it (nothing compressed yet). Each
    /// such store is made once, the slow way, and copied (`cp -a`) for every point after.
    fn prepare(&self, op: Op, root: &Path) {
        if root.exists() {
            std::fs::remove_dir_all(root).unwrap();
        }
        let _ = std::fs::remove_file(self.dest(op));
        let kind = match op {
            Op::Pull => return,
            Op::Build => "busybox",
            Op::ExportOci | Op::ExportDocker | Op::Push => "built",
        };
        let template = self.dir.path().join("templates").join(kind);
        if !template.exists() {
            let making = self
                .dir
                .path()
                .join("templates")
                .join(format!("{kind}-making"));
            // From one path: the import's history names the file, and the digest with it.
            self.pallet(&making)
                .arg("import")
                .arg(self.dir.path().join("busybox.tar"))
                .args(["-t", "busybox:latest"])
                .succeeds();
            if kind == "built" {
                self.command(Op::Build, &making, "").succeeds();
            }
            // The detached settle of the store (its syncfs) ends before the copy.
            assert!(
                wait_settled(&making, LIMIT),
                "the store at {making:?} never settled"
            );
            std::fs::rename(&making, &template).unwrap();
        }
        testkit::run::ok(
            std::process::Command::new("cp")
                .arg("-a")
                .arg(&template)
                .arg(root),
        );
    }
}

/// What an uninterrupted run gives: the digest it names, the archive's sha256 (exports), and
/// when each sign first held.
#[derive(Clone, Debug)]
struct Outcome {
    digest: String,
    archive: Option<String>,
    times: Vec<Option<Duration>>,
    end: Duration,
}

fn sha256_file(path: &Path) -> String {
    testkit::digest::sha256(&std::fs::read(path).unwrap())
}

/// The digest a finished command names: the build's summary, or what push and pull print.
fn digest_of(op: Op, stderr: &str, stdout: &str) -> Option<String> {
    match op {
        Op::Push | Op::Pull => {
            let from_stdout = stdout
                .split_whitespace()
                .rev()
                .find(|w| w.starts_with("sha256:"))
                .map(str::to_string);
            from_stdout.or_else(|| built_digest(stderr))
        }
        _ => built_digest(stderr),
    }
}

/// Runs `op` to its end, watching for its signs; panics unless it succeeds.
fn observe(bench: &Bench, op: Op, root: &Path, registry: &str) -> Outcome {
    let signs = signs(op);
    let dest = bench.dest(op);
    let pallet = bench.command(op, root, registry);
    let mut w = Watched::spawn(&pallet);
    let mut times = vec![None; signs.len()];
    loop {
        for (i, (_, s)) in signs.iter().enumerate() {
            if times[i].is_none() && holds(*s, &w, root, &dest) {
                times[i] = Some(w.started.elapsed());
            }
        }
        if w.exited() {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let end = w.started.elapsed();
    let status = w.wait();
    let stderr = w.stderr();
    assert!(
        status.success(),
        "{}: {status}\n{stderr}",
        pallet.describe()
    );
    // Push and pull print the digest on stdout, which the watcher does not keep: ask again
    // (a no-op now).
    let digest = match op {
        Op::Push | Op::Pull => digest_of(op, "", &pallet.ok()),
        _ => built_digest(&stderr),
    }
    .unwrap_or_else(|| panic!("no digest from {}:\n{stderr}", pallet.describe()));
    let archive = matches!(op, Op::ExportOci | Op::ExportDocker).then(|| sha256_file(&dest));
    Outcome {
        digest,
        archive,
        times,
        end,
    }
}

/// The registry's `kill/app:1`: None, or its digest once every blob it names is there.
fn tag_state(reg: &Registry, dir: &Path) -> Result<Option<String>, String> {
    let client = client_for(reg, dir);
    let r = Reference::parse(&format!("{}/kill/app:1", reg.host())).unwrap();
    let m = match client.get_manifest(&r) {
        Ok(m) => m,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let v: serde_json::Value = serde_json::from_slice(&m.bytes).unwrap();
    for b in std::iter::once(&v["config"]).chain(v["layers"].as_array().unwrap()) {
        let d = b["digest"].as_str().unwrap();
        if !client.blob_exists(&r, d).map_err(|e| e.to_string())? {
            return Err(format!("{} names {d}, which is missing", m.digest));
        }
    }
    Ok(Some(m.digest))
}

/// What a kill left: the killed pid, its temporaries, and what ran at kill time (mounts of the
/// store, RUN containers seen as processes, the runc state dirs of its step dirs).
struct Kill {
    pid: u32,
    left: Vec<String>,
    mounted: usize,
    running: usize,
    states: Vec<PathBuf>,
    /// Containers `runc list` showed just before the kill.
    listed: usize,
}

/// What the schedule saw, for the figures and for showing that the checks see things.
#[derive(Default)]
struct Tally {
    survived: Vec<String>,
    leftovers_seen: usize,
    leftover_lines: usize,
    mounts_seen: usize,
    containers_seen: usize,
    runc_seen: usize,
    redraws: usize,
}

#[test]
fn kill_9_at_20_points_leaves_a_store_that_verifies_and_rebuilds_the_same() {
    if !require(
        "kill -9 test",
        &[
            Root,
            Busybox,
            Tool("runc"),
            Tool("docker-registry"),
            Tool("sha256sum"),
        ],
    ) {
        return;
    }
    let Some(source) = Registry::start(Config::plain()) else {
        return;
    };
    let dir = temp_dir("pallet-faults-kill");
    std::fs::create_dir_all(dir.path().join("docker")).unwrap();
    std::fs::write(dir.path().join("pallet-config.json"), "{}").unwrap();
    let ctx = dir.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("big.bin"), noise(13, 3 << 20)).unwrap();
    context(&ctx, DOCKERFILE, &[]);
    testkit::busybox::Rootfs::new().write_tar(&dir.path().join("busybox.tar"));
    let bench = Bench { dir, ctx, source };

    // The references: every command uninterrupted, on stores of their own. The pull source
    // gets the reference image before the pull's reference runs.
    let ref_root = bench.dir.path().join("reference");
    let ref_pull_root = bench.dir.path().join("reference-pull");
    let mut reference = Vec::new();
    for &(op, _) in PLAN {
        let push_to = (op == Op::Push).then(|| Registry::start(Config::plain()).unwrap());
        let host = push_to.as_ref().map(|r| r.host()).unwrap_or_default();
        let root = if op == Op::Pull {
            bench
                .pallet(&ref_root)
                .args([
                    "push",
                    IMAGE,
                    &format!("{}/kill/app:1", bench.source.host()),
                ])
                .succeeds();
            &ref_pull_root
        } else {
            &ref_root
        };
        bench.prepare(op, root);
        let outcome = observe(&bench, op, root, &host);
        reference.push((op, outcome));
    }
    let find = |op: Op| reference.iter().find(|(o, _)| *o == op).unwrap().1.clone();
    // An export names the digest of the manifest it wrote (its layers compressed), each
    // command its own; the pull gets what the push sent.
    assert_eq!(find(Op::Pull).digest, find(Op::Push).digest);

    let seed = seed();
    let mut rng = Rng::new(seed);
    figure(&format!(
        "kill -9 schedule: seed {seed:#x} (replay: PALLET_FAULT_SEED={seed:#x} cargo test -p \
         pallet-builder --test suite faults_kill)"
    ));
    let root = bench.dir.path().join("store");
    let mut tally = Tally::default();
    let mut point = 0;
    for &(op, count) in PLAN {
        let reference = find(op);
        let signs = signs(op);
        // Signs the reference reached, in time order, with the gap to the next one.
        // The signs the reference reached (in the order they are declared, so that the seed
        // picks the same ones whatever the timing), each with the time from it to the next
        // sign reached after it (or the end): the window its delay is drawn in.
        let reached: Vec<(usize, Duration)> = reference
            .times
            .iter()
            .enumerate()
            .filter_map(|(i, t)| t.map(|t| (i, t)))
            .collect();
        let windows: Vec<(usize, Duration)> = reached
            .iter()
            .map(|(i, t)| {
                let next = reached
                    .iter()
                    .map(|(_, n)| *n)
                    .filter(|n| n > t)
                    .min()
                    .unwrap_or(reference.end);
                (*i, next.saturating_sub(*t).max(Duration::from_millis(5)))
            })
            .collect();
        figure(&format!(
            "{op:?} reference timeline ({:.0} ms): {}",
            reference.end.as_secs_f64() * 1000.0,
            reached
                .iter()
                .map(|(i, t)| format!("{} @{:.0} ms", signs[*i].0, t.as_secs_f64() * 1000.0))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        // Every sign once, in an order drawn with the seed, before any is drawn again.
        let mut deck: Vec<(usize, Duration)> = Vec::new();
        for _ in 0..count {
            point += 1;
            let next = ["images", "du", "again"][rng.below(3)];
            let push_to = (op == Op::Push).then(|| Registry::start(Config::plain()).unwrap());
            let host = push_to.as_ref().map(|r| r.host()).unwrap_or_default();
            // A run that ends before its kill is drawn again (sign and delay).
            let mut attempt = 0;
            let (kill, label, delay) = loop {
                attempt += 1;
                if deck.is_empty() {
                    deck = windows.clone();
                }
                let (sign, window) = deck.swap_remove(rng.below(deck.len()));
                let window = match signs[sign].1 {
                    Sign::Container => window.min(CONTAINER_DELAY),
                    _ => window,
                };
                let delay = window.mul_f64(rng.fraction());
                let label = signs[sign].0;
                bench.prepare(op, &root);
                let mut w = Watched::spawn(&bench.command(op, &root, &host));
                let dest = bench.dest(op);
                let reached =
                    testkit::wait::until(Duration::from_secs(60), Duration::from_millis(1), || {
                        holds(signs[sign].1, &w, &root, &dest) || w.exited()
                    });
                assert!(reached, "point {point}: {label} never came");
                let at = std::time::Instant::now();
                while at.elapsed() < delay && !w.exited() {
                    std::thread::sleep(Duration::from_millis(1));
                }
                let mounted = mounts_under(&root).len();
                let running = processes_mentioning(SLEEP).len();
                let states = runc_roots(&root, w.pid());
                // What runc lists then (asked only while a container runs: it takes a moment).
                let listed = if running > 0 {
                    states.iter().flat_map(|s| runc_list(s)).count()
                } else {
                    0
                };
                // Killed, or it had just ended (then the point is drawn again, closer).
                let status = w.kill9();
                if status.signal() == Some(libc::SIGKILL) {
                    let kill = Kill {
                        pid: w.pid(),
                        left: temporaries(&root),
                        mounted,
                        running,
                        states,
                        listed,
                    };
                    break (kill, label, delay);
                }
                assert!(status.success(), "point {point}: {status}\n{}", w.stderr());
                assert!(
                    attempt < 6,
                    "point {point}: the runs kept ending before their kill"
                );
                figure(&format!(
                    "point {point}: {op:?} ended before its kill ({label} +{:.0} ms): drawn again",
                    delay.as_secs_f64() * 1000.0
                ));
                tally.redraws += 1;
            };
            let Kill {
                pid,
                left,
                mounted,
                running,
                states,
                listed: listed_at_kill,
            } = kill;
            let what = format!(
                "#{point} {op:?}: {label} +{:.0} ms (pid {pid}, next: {next})",
                delay.as_secs_f64() * 1000.0
            );
            // The step's container dies with pallet, and no runc of the store is left.
            let alive = wait_no_processes(SLEEP, Duration::from_secs(15));
            assert!(alive.is_empty(), "{what}: containers left: {alive:?}");
            let rest = wait_no_processes(&root.display().to_string(), Duration::from_secs(15));
            assert!(rest.is_empty(), "{what}: processes on the store: {rest:?}");
            // runc itself knows no container of the killed run (its watchdog deleted them).
            for state in &states {
                let listed = runc_list(state);
                assert!(
                    listed.is_empty(),
                    "{what}: runc --root {} list: {listed:?}",
                    state.display()
                );
            }
            tally.runc_seen += usize::from(listed_at_kill > 0);
            tally.leftovers_seen += left.len();
            tally.mounts_seen += usize::from(mounted > 0);
            tally.containers_seen += usize::from(running > 0);
            // After a killed push the registry has the complete image or none.
            if let Some(reg) = &push_to {
                let state = tag_state(reg, bench.dir.path())
                    .unwrap_or_else(|e| panic!("{what}: the registry: {e}"));
                assert!(
                    state.is_none() || state.as_deref() == Some(reference.digest.as_str()),
                    "{what}: the tag is {state:?}"
                );
            }
            // The next command sweeps exactly what the killed run left.
            let again = bench.command(op, &root, &host);
            let out = match next {
                "again" => again.output(),
                cmd => bench.pallet(&root).arg(cmd).output(),
            };
            let said = text(&out.stderr);
            assert!(out.status.success(), "{what}: {next}: {said}");
            let removed = removed_leftovers(&said);
            if left.is_empty() {
                assert_eq!(removed, None, "{what}: nothing was left: {said}");
            } else {
                assert_eq!(
                    removed,
                    Some(left.len()),
                    "{what}: left {left:?}, the next command said:\n{said}"
                );
                tally.leftover_lines += 1;
            }
            // The command to its end: the reference's digest (and archive).
            let again = match next {
                "again" => out,
                _ => again.output(),
            };
            assert!(
                again.status.success(),
                "{what}: run again: {}",
                text(&again.stderr)
            );
            let digest = digest_of(op, &text(&again.stderr), &text(&again.stdout));
            assert_eq!(
                digest.as_deref(),
                Some(reference.digest.as_str()),
                "{what}: run again:\n{}",
                text(&again.stderr)
            );
            if let Some(sha) = &reference.archive {
                assert_eq!(&sha256_file(&bench.dest(op)), sha, "{what}: the archive");
            }
            if let Some(reg) = &push_to {
                let state = tag_state(reg, bench.dir.path()).unwrap();
                assert_eq!(state.as_deref(), Some(reference.digest.as_str()), "{what}");
            }
            assert_eq!(temporaries(&root), Vec::<String>::new(), "{what}");
            assert_eq!(mounts_under(&root), Vec::<String>::new(), "{what}");
            assert_eq!(
                du_temporary(&bench.pallet(&root)),
                "0B",
                "{what}: pallet du"
            );
            let images = verify_store(&bench.pallet(&root), &root)
                .unwrap_or_else(|e| panic!("{what}: the store does not verify: {e}"));
            assert!(images >= 1, "{what}");
            figure(&format!(
                "survived {what}: {} leftover(s) swept",
                left.len()
            ));
            tally.survived.push(what);
        }
    }

    // The checks see what they look for.
    assert!(
        tally.leftovers_seen > 0 && tally.leftover_lines > 0,
        "no kill left anything to sweep: the leftover check was never exercised"
    );
    assert!(tally.mounts_seen > 0, "no kill found a mount of the store");
    // (That `runc list` sees a running container is shown by the cancellation test, where
    // the container sleeps for good; here the figure says how often a kill came while runc
    // listed one.)
    assert!(
        tally.containers_seen > 0,
        "no kill found a RUN step's container running"
    );
    let blobs = root.join("blobs/sha256");
    let victim = testkit::files::list_dir(&blobs)
        .into_iter()
        .map(|n| blobs.join(n))
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let mut bytes = std::fs::read(&victim).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    std::fs::write(&victim, &bytes).unwrap();
    assert!(check_blobs(&root).is_err(), "a corrupted blob verifies");
    assert!(
        verify_store(&bench.pallet(&root), &root).is_err(),
        "a corrupted blob verifies"
    );

    figure(&format!(
        "kill -9: {} of 20 points survived (seed {seed:#x}; {} leftover(s) swept over {} \
         points; {} kill(s) with a RUN container running, {} listed by runc; {} redraw(s) of a \
         run that ended before its point)",
        tally.survived.len(),
        tally.leftovers_seen,
        tally.leftover_lines,
        tally.containers_seen,
        tally.runc_seen,
        tally.redraws
    ));
    assert_eq!(tally.survived.len(), 20);
}
