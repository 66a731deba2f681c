//! What the fault suite (`faults_*` modules) shares: a seeded random source, a pallet process
//! watched while it runs (its progress lines, timed), and the checks every fault ends with:
//! the store's temporaries, mounts and processes, the leftover-removal line, and a store that
//! verifies (`pallet doctor` healthy, and every tagged image's blobs present and hashing to
//! their names, checked here without pallet's code).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use testkit::{text, Pallet};

/// Prints a figure of the fault suite (kill points survived, scenarios passed...) to the
/// terminal, past the test harness's capture of passing tests' output.
pub fn figure(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "fault suite: {line}");
}

pub use testkit::rng::Rng;

/// A pallet process running in the background, its stderr collected line by line with the
/// time each line arrived.
pub struct Watched {
    pub child: Child,
    pub started: Instant,
    lines: Arc<Mutex<Vec<(Duration, String)>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Watched {
    /// Starts `pallet` (stdout discarded, stderr watched).
    pub fn spawn(pallet: &Pallet) -> Watched {
        let mut child = pallet
            .command()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", pallet.describe()));
        let started = Instant::now();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = lines.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push((started.elapsed(), line));
            }
        });
        Watched {
            child,
            started,
            lines,
            reader: Some(reader),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The lines so far.
    pub fn lines(&self) -> Vec<(Duration, String)> {
        self.lines.lock().unwrap().clone()
    }

    /// Whether it has exited (without reaping it for good: `wait` still works).
    pub fn exited(&mut self) -> bool {
        self.child.try_wait().unwrap().is_some()
    }

    /// SIGKILL, then its exit status.
    pub fn kill9(&mut self) -> ExitStatus {
        signal(self.pid(), libc::SIGKILL);
        self.wait()
    }

    /// Its exit status (stderr read to its end).
    pub fn wait(&mut self) -> ExitStatus {
        let status = self.child.wait().unwrap();
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        status
    }

    /// Waits for the exit at most `limit`; None if it is still running.
    pub fn wait_for(&mut self, limit: Duration) -> Option<ExitStatus> {
        let status = testkit::wait::exit(&mut self.child, limit, Duration::from_millis(20))?;
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        Some(status)
    }

    /// Everything it printed on stderr so far.
    pub fn stderr(&self) -> String {
        self.lines()
            .into_iter()
            .map(|(_, l)| l + "\n")
            .collect::<String>()
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Sends `sig` to `pid`.
pub fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: kill with a pid of a child this test started and a valid signal number.
    unsafe { libc::kill(pid as libc::pid_t, sig) };
}

/// The store's temporaries: `tmp/*` and `snapshots/pending-*`, as `tmp/NAME` and
/// `snapshots/NAME`.
pub fn temporaries(root: &Path) -> Vec<String> {
    let mut out: Vec<String> = testkit::files::list_dir_if_exists(&root.join("tmp"))
        .into_iter()
        .map(|n| format!("tmp/{n}"))
        .collect();
    out.extend(
        testkit::files::list_dir_if_exists(&root.join("snapshots"))
            .into_iter()
            .filter(|n| n.starts_with("pending-"))
            .map(|n| format!("snapshots/{n}")),
    );
    out
}

/// The temporaries named with `pid` (`pallet-PID-*`, `blob-PID-*`, `pending-PID-*`).
pub fn temporaries_of(root: &Path, pid: u32) -> Vec<String> {
    temporaries(root)
        .into_iter()
        .filter(|p| {
            let name = p.rsplit('/').next().unwrap();
            ["pallet-", "blob-", "pending-"]
                .iter()
                .any(|pre| name.starts_with(&format!("{pre}{pid}-")))
        })
        .collect()
}

/// Mount points at or below `dir` in this process's mount namespace.
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let canon = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let prefix = format!("{}/", canon.display());
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| m.starts_with(&prefix) || *m == canon.to_string_lossy())
        .map(str::to_string)
        .collect()
}

/// Processes (other than this one) whose command line contains `needle`, as `PID: ARGV`;
/// the detached `internal-settle-store` a finished command leaves is not counted.
pub fn processes_mentioning(needle: &str) -> Vec<String> {
    let me = std::process::id();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let argv = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if argv.contains(needle) && !argv.contains("internal-settle-store") {
            out.push(format!("{pid}: {}", argv.trim_end()));
        }
    }
    out
}

/// Waits (at most `limit`) until no detached `pallet internal-settle-store` (the syncfs after
/// a command) runs on the store at `root`; true when none does.
pub fn wait_settled(root: &Path, limit: Duration) -> bool {
    let root = root.display().to_string();
    testkit::wait::until(limit, Duration::from_millis(20), || {
        !std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
            std::fs::read(e.path().join("cmdline")).is_ok_and(|c| {
                let argv = String::from_utf8_lossy(&c).replace('\0', " ");
                argv.contains("internal-settle-store") && argv.contains(&root)
            })
        })
    })
}

/// Waits (at most `limit`) until no process mentions `needle`; those still there.
pub fn wait_no_processes(needle: &str, limit: Duration) -> Vec<String> {
    testkit::wait::until(limit, Duration::from_millis(50), || {
        processes_mentioning(needle).is_empty()
    });
    processes_mentioning(needle)
}

/// N in pallet's `removed N leftover(s) of interrupted runs` line, if it printed one.
pub fn removed_leftovers(stderr: &str) -> Option<usize> {
    stderr.lines().find_map(|l| {
        let rest = l.split("pallet: removed ").nth(1)?;
        let (n, tail) = rest.split_once(' ')?;
        tail.starts_with("leftover(s) of interrupted runs")
            .then(|| n.parse().ok())
            .flatten()
    })
}

/// sha256 of each file, by `sha256sum` (fast whatever the test profile): path -> hex.
fn sha256_files(files: &[PathBuf]) -> std::collections::HashMap<PathBuf, String> {
    let mut out = std::collections::HashMap::new();
    for chunk in files.chunks(500) {
        let printed = Command::new("sha256sum").args(chunk).output().unwrap();
        for line in text(&printed.stdout).lines() {
            if let Some((hex, path)) = line.split_once("  ") {
                out.insert(PathBuf::from(path), hex.to_string());
            }
        }
    }
    out
}

/// The store checked without pallet's code: every blob file hashes to its name (no
/// half-written blob under a final name), and every tagged image has its manifest, its config
/// and each layer (a diff blob, or the compressed blob its layer form names). Returns the
/// number of images checked, or what is wrong.
pub fn check_blobs(root: &Path) -> Result<usize, String> {
    let blob_dir = root.join("blobs/sha256");
    let files: Vec<PathBuf> = testkit::files::list_dir_if_exists(&blob_dir)
        .into_iter()
        .map(|n| blob_dir.join(n))
        .collect();
    let sums = sha256_files(&files);
    let mut problems = Vec::new();
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        match sums.get(f) {
            Some(hex) if *hex == name => {}
            Some(hex) => problems.push(format!("blob {name} hashes to {hex}")),
            None => problems.push(format!("blob {name} could not be read")),
        }
    }
    let (tags, forms) = {
        let store = cache::Root::open(root).map_err(|e| format!("opening the index: {e}"))?;
        let tags = store.index.list_tags().map_err(|e| e.to_string())?;
        let forms = store.index.list_layer_forms().map_err(|e| e.to_string())?;
        (tags, forms)
    };
    let forms: std::collections::HashMap<String, String> = forms
        .into_iter()
        .filter_map(|(diff, v)| {
            let v: serde_json::Value = serde_json::from_slice(&v).ok()?;
            Some((diff, v["blob"].as_str()?.to_string()))
        })
        .collect();
    let present = |digest: &str| -> bool {
        digest
            .strip_prefix("sha256:")
            .is_some_and(|hex| sums.get(&blob_dir.join(hex)).is_some_and(|h| h == hex))
    };
    for (name, record) in &tags {
        let img: serde_json::Value = match serde_json::from_slice(record) {
            Ok(v) => v,
            Err(e) => {
                problems.push(format!("{name}: record unreadable: {e}"));
                continue;
            }
        };
        let digest = |field: &str| img[field].as_str().unwrap_or("").to_string();
        let manifest = digest("manifest_digest");
        if !present(&manifest) {
            problems.push(format!("{name}: manifest {manifest} missing"));
            continue;
        }
        if !present(&digest("config_digest")) {
            problems.push(format!(
                "{name}: config {} missing",
                digest("config_digest")
            ));
        }
        let bytes = std::fs::read(blob_dir.join(&manifest[7..])).unwrap();
        let m: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        for layer in m["layers"].as_array().into_iter().flatten() {
            let d = layer["digest"].as_str().unwrap_or("");
            let kept = present(d) || forms.get(d).is_some_and(|b| present(b));
            if !kept {
                problems.push(format!("{name}: layer {d} missing"));
            }
        }
        for diff in img["layers"].as_array().into_iter().flatten() {
            let d = diff.as_str().unwrap_or("");
            if !(present(d) || forms.get(d).is_some_and(|b| present(b))) {
                problems.push(format!("{name}: diff {d} has no blob"));
            }
        }
    }
    if problems.is_empty() {
        Ok(tags.len())
    } else {
        Err(problems.join("\n"))
    }
}

/// `pallet doctor` says the index is healthy, and [`check_blobs`] passes. Returns the number
/// of images, or what is wrong.
pub fn verify_store(pallet: &Pallet, root: &Path) -> Result<usize, String> {
    let out = pallet.clone().arg("doctor").output();
    let said = text(&out.stdout);
    if !out.status.success() || !said.contains("the index is healthy") {
        return Err(format!(
            "pallet doctor: {}\n{said}{}",
            out.status,
            text(&out.stderr)
        ));
    }
    check_blobs(root)
}

/// The digest in a build's JSON summary line, or in plain mode's `built NAME DIGEST`.
pub fn built_digest(stderr: &str) -> Option<String> {
    for line in stderr.lines() {
        if line.contains("\"event\":\"summary\"") {
            let v: serde_json::Value = serde_json::from_str(line).ok()?;
            return v["digest"].as_str().map(str::to_string);
        }
        if let Some(rest) = line.split("pallet: built ").nth(1) {
            return rest.split_whitespace().nth(1).map(str::to_string);
        }
    }
    None
}

/// The pseudo-random bytes of the contexts (deterministic: a fixed image digest).
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        out.extend_from_slice(&rng.next_u64().to_le_bytes());
    }
    out.truncate(len);
    out
}

/// The seed of a randomized schedule: `PALLET_FAULT_SEED` (decimal or 0x-hex) to replay one,
/// else a fresh one from the clock and the pid. Printed by the caller with how to replay it.
pub fn seed() -> u64 {
    if let Ok(text) = std::env::var("PALLET_FAULT_SEED") {
        let t = text.trim();
        let parsed = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
            Some(hex) => u64::from_str_radix(hex, 16),
            None => t.parse(),
        };
        return parsed.unwrap_or_else(|e| panic!("PALLET_FAULT_SEED={text}: {e}"));
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    Rng::new(nanos ^ u64::from(std::process::id()).rotate_left(32)).next_u64()
}

/// The runc state dirs (`runc --root`) of the step dirs `pid` has in the store at `root`
/// (`tmp/pallet-PID-*/bundle/runc-state`): where runc keeps that process's containers.
pub fn runc_roots(root: &Path, pid: u32) -> Vec<PathBuf> {
    testkit::files::list_dir_if_exists(&root.join("tmp"))
        .into_iter()
        .filter(|n| n.starts_with(&format!("pallet-{pid}-")))
        .map(|n| root.join("tmp").join(n).join("bundle/runc-state"))
        .filter(|p| p.is_dir())
        .collect()
}

/// The containers `runc --root STATE list` knows, as `ID STATUS` (none when the dir is gone).
pub fn runc_list(state: &Path) -> Vec<String> {
    if !state.is_dir() {
        return Vec::new();
    }
    let out = Command::new("runc")
        .arg("--root")
        .arg(state)
        .args(["list", "--format", "table"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "runc --root {} list: {}",
        state.display(),
        text(&out.stderr)
    );
    text(&out.stdout)
        .lines()
        .skip(1)
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            Some(format!("{} {}", words.next()?, words.nth(1)?))
        })
        .collect()
}

/// The size `pallet du` gives in its `temporary` row (`0B` when there is none).
pub fn du_temporary(pallet: &Pallet) -> String {
    let printed = pallet.clone().arg("du").ok();
    printed
        .lines()
        .find_map(|l| {
            let mut words = l.split_whitespace();
            (words.next() == Some("temporary")).then(|| words.last().unwrap_or("").to_string())
        })
        .unwrap_or_else(|| panic!("no temporary row in pallet du:\n{printed}"))
}
