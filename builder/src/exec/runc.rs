//! RUN through runc: an OCI runtime spec (oci-spec types) for the step, a bundle dir, and
//! `runc run`, waited for on the calling thread (the solver calls this from a thread of its
//! own, never from the rayon pool).
//!
//! One step, in order: write `hosts` and `resolv.conf` into the bundle dir; create the working
//! directory in the rootfs if missing; note the mount targets missing from the rootfs; write
//! `config.json` ([`spec`]); start the [`watchdog`]; run
//! `runc --root BUNDLE/runc-state --log BUNDLE/runc-log.json --log-format json run --bundle BUNDLE ID`
//! with stdin from /dev/null, stdout/stderr piped, and SIGKILL as its parent-death signal; read
//! both pipes on two threads and hand their chunks, tagged stdout or stderr, over a channel to
//! the calling thread ([`output`]), which calls `output` (raw chunks for [`run_streams`], lines
//! for [`run`]); wait for runc; remove the mount stubs runc left; `runc delete -f` if runc left
//! the container behind; dismiss the watchdog.
//!
//! Exit codes: `runc run` exits with the container process's code, or 128+N when a signal N
//! killed it. When runc itself fails (bad spec, a command that does not exist), it exits 1 and
//! logs an error to its log file: that becomes [`RunError::Setup`] with runc's message, and the
//! copy runc prints on stderr (`runc run failed: ...`) is not passed to `output`.
//!
//! If `output` panics, the container is killed (`runc kill ID KILL`), waited for and deleted.
//! If pallet itself dies (SIGKILL, or SIGTERM/SIGINT where nothing handles them, as in a
//! build), runc dies with it and the watchdog kills and deletes the container and unmounts the
//! rootfs (see [`watchdog`]): nothing of the container outlives pallet for more than a moment
//! (it is in its own pid namespace, so nothing outlives its init process).
//!
//! Owns the runc command line and process lifecycle; [`spec`] owns config.json, [`rootfs`] the
//! files prepared around the rootfs. Knows nothing of Dockerfiles or snapshots.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;

mod insecure;
mod output;
pub(crate) mod rootfs;
mod seccomp;
mod spec;
mod watchdog;

pub(crate) use output::Lines;
pub use output::Stream;
pub use spec::DEFAULT_CAPABILITIES;

/// What to run and how (already resolved: uid/gid, absolute paths).
#[derive(Debug, Clone)]
pub struct RunSpec {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    /// true: share the host's network namespace (pallet's default); false: a new, empty one.
    pub host_network: bool,
    pub hostname: String,
    pub mounts: Vec<SpecMount>,
    /// `RUN --security=insecure` (allowed by `--allow security.insecure`): every capability,
    /// no seccomp filter, no masked paths (see `runc/insecure.rs`).
    pub insecure: bool,
    /// `--shm-size`: bytes of /dev/shm; 0: 64 MiB.
    pub shm_size: u64,
    /// `--ulimit`s: these rlimits instead of the defaults of the same name.
    pub ulimits: Vec<graph::Ulimit>,
}

impl RunSpec {
    /// What every executor refuses before it runs anything: no command, a relative cwd.
    pub(crate) fn check(&self) -> Result<(), RunError> {
        if self.args.is_empty() {
            return Err(RunError::EmptyCommand);
        }
        if !self.cwd.starts_with('/') {
            return Err(RunError::RelativeCwd(self.cwd.clone()));
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
pub enum SpecMount {
    Bind {
        source: PathBuf,
        target: String,
        readonly: bool,
    },
    Tmpfs {
        target: String,
        size: Option<u64>,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("runc not found at {0}: install it (apt-get install runc) or pass --runtime PATH")]
    NoRuntime(PathBuf),
    /// The runtime could not run the step: its own logged errors, and where its log is.
    #[error("{0}")]
    Setup(String),
    #[error("nothing to run: the step has an empty command")]
    EmptyCommand,
    #[error("the working directory {0:?} is not absolute")]
    RelativeCwd(String),
    #[error("a dry run (--explain) runs nothing")]
    DryRun,
    /// The runtime spec could not be built (`what`: which part).
    #[error("building the runtime spec ({what}): {source}")]
    Spec {
        what: &'static str,
        #[source]
        source: oci_spec::OciSpecError,
    },
    #[error("serializing the runtime spec: {0}")]
    SpecJson(#[source] serde_json::Error),
    /// Preparing or running the step (`what`: what was being done, with the path).
    #[error("{what}: {source}")]
    Prepare {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("running runc: {0}")]
    Io(#[from] std::io::Error),
}

impl RunError {
    /// An I/O failure while doing `what`.
    pub(crate) fn prepare(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> RunError {
        let what = what.into();
        move |source| RunError::Prepare { what, source }
    }
}

/// Who runs runc decides what the spec may ask for ([`spec`] has the differences).
pub use crate::userns::Privilege;

/// The hostname when the spec gives none (BuildKit's).
pub const DEFAULT_HOSTNAME: &str = "buildkitsandbox";

/// Runs the process in `rootfs` (a mounted overlay) with a bundle under `bundle_dir`; hands
/// the output to `output` as it comes, raw chunks of bytes each tagged with the stream it
/// came from; returns the exit code (128+signal if killed). /etc/hosts and
/// /etc/resolv.conf are bind-mounted from files the runner writes; /proc, /dev, /sys,
/// /dev/pts, /dev/shm as docker does. (`super::Runc` is the `Executor` over this.)
pub fn run_streams(
    runtime: &Path,
    privilege: Privilege,
    rootfs: &Path,
    bundle_dir: &Path,
    spec: &RunSpec,
    output: &mut dyn FnMut(Stream, &[u8]),
) -> Result<i32, RunError> {
    spec.check()?;
    if !runtime.is_file() {
        return Err(RunError::NoRuntime(runtime.to_path_buf()));
    }
    let rootfs = std::path::absolute(rootfs)
        .map_err(RunError::prepare(format!("resolving {}", rootfs.display())))?;
    let bundle = std::path::absolute(bundle_dir).map_err(RunError::prepare(format!(
        "resolving {}",
        bundle_dir.display()
    )))?;
    std::fs::create_dir_all(&bundle).map_err(RunError::prepare(format!(
        "creating the bundle dir {}",
        bundle.display()
    )))?;

    let hostname = if spec.hostname.is_empty() {
        DEFAULT_HOSTNAME
    } else {
        &spec.hostname
    };
    let hosts = bundle.join("hosts");
    let resolv_conf = bundle.join("resolv.conf");
    write_file(&hosts, &rootfs::hosts_file(hostname))?;
    write_file(&resolv_conf, &rootfs::resolv_conf(spec.host_network))?;
    rootfs::ensure_cwd(&rootfs, &spec.cwd, spec.uid, spec.gid)?;

    let mut targets = vec!["/etc/resolv.conf", "/etc/hosts"];
    targets.extend(spec.mounts.iter().map(|m| match m {
        SpecMount::Bind { target, .. } | SpecMount::Tmpfs { target, .. } => target.as_str(),
    }));
    let stubs = rootfs::MountStubs::find(&rootfs, &targets);

    let id = container_id();
    let etc = spec::EtcFiles {
        hosts: &hosts,
        resolv_conf: &resolv_conf,
    };
    let mut oci = spec::build(spec, &rootfs, hostname, &etc, &id, privilege)?;
    if spec.insecure {
        insecure::apply(&mut oci);
    }
    spec::write(&oci, &bundle.join("config.json"))?;

    let result = run_container(runtime, privilege, &bundle, &rootfs, &id, output);
    stubs.clean();
    result
}

/// `--runtime PATH`, else `runc` on PATH.
pub fn find_runtime(explicit: Option<&Path>) -> Result<PathBuf, RunError> {
    match explicit {
        Some(path) if path.components().count() > 1 || path.is_absolute() => {
            if path.is_file() {
                Ok(path.to_path_buf())
            } else {
                Err(RunError::NoRuntime(path.to_path_buf()))
            }
        }
        // A bare name (`--runtime runc`) is looked up on PATH.
        Some(name) => search_path(name).ok_or_else(|| RunError::NoRuntime(PathBuf::from("$PATH"))),
        None => search_path(Path::new("runc"))
            .ok_or_else(|| RunError::NoRuntime(PathBuf::from("$PATH"))),
    }
}

/// The ids of the containers runc keeps state for under `bundle` (one dir per container).
pub(super) fn containers(bundle: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(bundle.join("runc-state")) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .collect()
}

/// `runc kill ID SIGNAL` for a container of `bundle`; fails harmlessly when it has just exited.
pub(super) fn kill(runtime: &Path, bundle: &Path, id: &str, signal: &str) {
    let _ = Command::new(runtime)
        .arg("--root")
        .arg(bundle.join("runc-state"))
        .args(["kill", id, signal])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

fn search_path(name: &Path) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| {
            std::fs::metadata(candidate)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

fn write_file(path: &Path, text: &str) -> Result<(), RunError> {
    std::fs::write(path, text).map_err(RunError::prepare(format!("writing {}", path.display())))
}

/// Unique within this process and across processes (pid + sequence + time).
fn container_id() -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "pallet-{}-{}-{nanos:08x}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

/// The `runc` invocation for one container: `runc --root ... --log ... <args>`.
struct Runc<'a> {
    runtime: &'a Path,
    privilege: Privilege,
    state: PathBuf,
    log: PathBuf,
    id: &'a str,
}

impl Runc<'_> {
    fn command(&self) -> Command {
        let mut cmd = Command::new(self.runtime);
        cmd.arg("--root")
            .arg(&self.state)
            .arg("--log")
            .arg(&self.log)
            .args(["--log-format", "json"]);
        if self.privilege == Privilege::Rootless {
            cmd.arg("--rootless=true");
        }
        cmd
    }

    /// Runs `runc SUBCOMMAND ID [EXTRA]` for cleanup (kill, delete), quietly; false if it failed.
    fn quiet(&self, subcommand: &[&str], extra: &[&str]) -> bool {
        let mut cmd = self.command();
        cmd.args(subcommand).arg(self.id).args(extra);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cmd.status().is_ok_and(|s| s.success())
    }

    /// Errors runc logged (its own failures, not the container's).
    fn logged_errors(&self) -> Vec<String> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| matches!(v["level"].as_str(), Some("error" | "fatal" | "panic")))
            .filter_map(|v| v["msg"].as_str().map(str::to_string))
            .collect()
    }
}

/// Kills, reaps and deletes the container unless disarmed (runs if `output` panics).
struct Guard<'a> {
    runc: &'a Runc<'a>,
    child: Option<Child>,
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if !self.runc.quiet(&["kill"], &["KILL"]) {
                let _ = child.kill();
            }
            let _ = child.wait();
            self.runc.quiet(&["delete", "-f"], &[]);
        }
    }
}

fn run_container(
    runtime: &Path,
    privilege: Privilege,
    bundle: &Path,
    rootfs: &Path,
    id: &str,
    output: &mut dyn FnMut(Stream, &[u8]),
) -> Result<i32, RunError> {
    let runc = Runc {
        runtime,
        privilege,
        state: bundle.join("runc-state"),
        log: bundle.join("runc-log.json"),
        id,
    };
    let _ = std::fs::remove_file(&runc.log);
    // Dismissed once the container is gone (and on every early return, by its drop).
    let watchdog = watchdog::Watchdog::start(runtime, &runc.state, id, rootfs);
    let mut cmd = runc.command();
    cmd.arg("run").arg("--bundle").arg(bundle).arg(id);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    watchdog::die_with_parent(&mut cmd);
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(RunError::NoRuntime(runtime.to_path_buf()))
        }
        Err(e) => return Err(RunError::prepare(format!("starting {}", runtime.display()))(e)),
    };
    let (tx, rx) = mpsc::sync_channel::<(Stream, Vec<u8>)>(64);
    let mut readers = Vec::new();
    if let Some(out) = child.stdout.take() {
        let tx = tx.clone();
        readers.push(std::thread::spawn(move || {
            output::pump(out, &tx, Stream::Stdout)
        }));
    }
    if let Some(err) = child.stderr.take() {
        let tx = tx.clone();
        readers.push(std::thread::spawn(move || {
            output::pump(err, &tx, Stream::Stderr)
        }));
    }
    drop(tx);
    let mut guard = Guard {
        runc: &runc,
        child: Some(child),
    };
    for (stream, data) in rx {
        output(stream, &data);
    }
    for reader in readers {
        let _ = reader.join();
    }
    let mut child = guard.child.take().expect("child is taken only here");
    let status = child.wait();
    drop(guard);
    let status = match status {
        Ok(status) => status,
        Err(e) => {
            runc.quiet(&["delete", "-f"], &[]);
            return Err(RunError::prepare("waiting for runc")(e));
        }
    };
    let code = status
        .code()
        .or_else(|| std::os::unix::process::ExitStatusExt::signal(&status).map(|s| 128 + s))
        .unwrap_or(255);
    // `runc run` deletes its container on the way out; make sure (it did not if runc was killed).
    if runc.state.join(id).exists() {
        runc.quiet(&["delete", "-f"], &[]);
    }
    let _ = std::fs::remove_dir(&runc.state);
    if let Some(w) = watchdog {
        w.done();
    }
    if code != 0 {
        let errors = runc.logged_errors();
        if !errors.is_empty() {
            return Err(RunError::Setup(format!(
                "{} could not run the step: {} (check that the command exists in the image and is executable; \
                 runc's log: {})",
                runtime.display(),
                errors.join("; "),
                runc.log.display()
            )));
        }
    }
    Ok(code)
}
