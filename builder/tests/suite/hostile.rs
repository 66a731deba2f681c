//! Hostile inputs (issue 13, "The suite: hostile inputs"): every case feeds pallet something an
//! attacker controls (a layer tar, a build context, a Dockerfile, a registry's answers, a
//! damaged store) through the real binary, real runc and a real docker-registry, and asserts
//! two things:
//!
//! 1. a clear error (exit code 1, a message that names what was wrong, never a panic, an abort
//!    or a hang: every run has a deadline) or, where the input is legitimate but odd, a correct
//!    result confined to where it belongs;
//! 2. nothing was written or read outside where it may be: each case has a canary next to the
//!    store and the context (`outside/secret` holding a random value, and an empty directory),
//!    which must be untouched afterwards; no new entry may appear beside the store, the contexts
//!    and the outputs; host paths named after the case's mark must not exist; and the secret's
//!    value may appear in no file of the store or the outputs, nor in anything pallet printed.
//!
//! Published CVEs of BuildKit, buildah, kaniko and runc that apply to pallet are replayed and
//! named in each case. [`CASES`] lists every distinct hostile input with what is expected;
//! `zz_summary_counts_the_cases` prints the figures (tried, passed, ignored as defects) and
//! checks that every case is exercised by a test and that every defect's test is ignored.
//!
//! Needs root, runc, busybox-static and docker-registry (scripts/ensure-tools.sh installs them);
//! fails under CI=true when they are missing.

use std::io::{Read, Write};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use testkit::files::{all_files, file_contains, list_dir_if_exists};
use testkit::{pallet, require, text, Need::*, Pallet, Store};

// ---------------------------------------------------------------------------------------------
// The cases
// ---------------------------------------------------------------------------------------------

/// One distinct hostile input: what it is, what pallet must do with it, the CVE it replays (if
/// any), and, when the test for it found a defect, what the defect is (its test is ignored).
struct Case {
    id: &'static str,
    input: &'static str,
    expect: &'static str,
    cve: &'static str,
    defect: Option<&'static str>,
}

const fn ok(
    id: &'static str,
    input: &'static str,
    expect: &'static str,
    cve: &'static str,
) -> Case {
    Case {
        id,
        input,
        expect,
        cve,
        defect: None,
    }
}

const fn defect(
    id: &'static str,
    input: &'static str,
    expect: &'static str,
    cve: &'static str,
    defect: &'static str,
) -> Case {
    Case {
        id,
        input,
        expect,
        cve,
        defect: Some(defect),
    }
}

/// Every hostile input this module tries. A test names the case it exercises with [`case`].
const CASES: &[Case] = &[
    // Layer tars, through `pallet import`.
    ok("import-dotdot", "pallet import of a tar with `../../..` entries", "error naming the entry's `..`", "kaniko CVE-2026-28406 / GHSA-6rxq-q92g-4rmf"),
    ok("import-absolute", "pallet import of a tar with absolute names (/tmp/MARK)", "confined: the file is in the image under tmp/, not on the host", ""),
    ok("import-symlink-then-file", "pallet import: symlink esc -> OUTSIDE, then esc/pwned", "error: esc is a symlink", "CVE-2016-6321-like (zip-slip via symlink)"),
    ok("import-symlink-dotdot", "pallet import: symlink up -> ../../.., then up/MARK", "error: up is a symlink", ""),
    ok("import-symlink-loop", "pallet import: a -> b, b -> a, then a/x", "error: a is a symlink", ""),
    ok("import-hardlink-dotdot", "pallet import: hardlink to ../../etc/passwd", "error naming the `..`", ""),
    ok("import-hardlink-absolute", "pallet import: hardlink to /etc/shadow", "error: the target is not in the layer (never the host's)", ""),
    ok("import-whiteout-dotdot", "pallet import: whiteouts a/.wh... and ../.wh.secret", "error naming the whiteout", ""),
    ok("import-whiteout-through-symlink", "pallet import: esc -> OUTSIDE, then esc/.wh.secret", "error; OUTSIDE/secret still there", ""),
    ok("import-opaque-odd-places", "pallet import: .wh..wh..opq at the root, as a directory, and below a symlink to OUTSIDE", "root and directory forms confined; below the symlink an error; OUTSIDE untouched", ""),
    ok("import-devices", "pallet import: char 1:1 (mem), block devices, a fifo", "created inside the store only; a container cannot open them", ""),
    ok("import-nul-name", "pallet import: a PAX path with a NUL byte", "error naming the NUL", ""),
    ok("import-huge-name", "pallet import: a 50 MB GNU long name", "error: extension header too large, small stderr, bounded memory", ""),
    defect("import-deep-name", "pallet import: one entry with 20 000 path components (a 40 KB PAX path)", "refused at once as too long (PATH_MAX), bounded memory, nothing left in the store", "",
        "unpacking creates every level, remembers every prefix of the path (memory and time quadratic in its length: 40 KB takes ~8 s and 400 MB, 100 KB 33 s and 2.4 GB, a 1 MB name was OOM-killed at 23 GB after 13 min), fails late with ENAMETOOLONG from a path-based step echoing the whole path, and leaves the unpacked tree in ROOT/tmp, where no later command can remove it"),
    ok("import-dir-then-symlink", "pallet import: d/ and d/f, then d -> OUTSIDE, then d/pwned", "error: d is a symlink", ""),
    // Layer tars, through ADD of a local archive (a different unpacker: exec/fileop/unpack.rs).
    ok("add-tar-dotdot", "ADD evil.tar with `../../..` entries", "error: outside the extraction directory", "buildah CVE-2020-10696 analog"),
    ok("add-tar-absolute", "ADD evil.tar with absolute names (/tmp/MARK)", "confined: under the ADD destination", ""),
    ok("add-tar-symlink-then-file", "ADD evil.tar: esc -> OUTSIDE, then esc/pwned", "confined: resolved inside the destination", "CVE-2016-6321-like"),
    ok("add-tar-symlink-dotdot", "ADD evil.tar: up -> .., then up/MARK", "confined: `..` stops at the destination", ""),
    ok("add-tar-hardlink-dotdot", "ADD evil.tar: hardlink to ../../etc/passwd", "error: outside the extraction directory", ""),
    ok("add-tar-hardlink-absolute", "ADD evil.tar: hardlink to /etc/shadow", "error: resolved inside the destination, where it is not", ""),
    ok("add-tar-devices", "ADD evil.tar: char 1:1, a block device, a fifo", "created in the image only", ""),
    ok("add-tar-dir-then-symlink", "ADD evil.tar: d/, then d -> OUTSIDE, then d/pwned", "confined: resolved inside the destination", ""),
    // Layer tars, through a crafted image in a registry.
    ok("from-registry-dotdot", "FROM a registry image whose layer has `../../../../MARK`", "error naming the entry", "kaniko CVE-2026-28406"),
    ok("copy-from-registry-dotdot", "COPY --from a registry image whose layer has `../../../../tini`", "error naming the entry", "kaniko cg326 (COPY --from a malicious image)"),
    ok("from-registry-symlink-then-file", "FROM a registry image: esc -> OUTSIDE, then esc/pwned", "error: esc is a symlink", "CVE-2016-6321-like"),
    ok("from-registry-hardlink-out", "FROM a registry image with hardlinks to ../../etc/passwd and /etc/shadow", "error", ""),
    ok("from-registry-two-layer-symlink", "FROM an image whose layer 1 has esc -> OUTSIDE and layer 2 esc/pwned, exported with -o type=local", "the export refuses the entry; OUTSIDE untouched", ""),
    // The build context and the Dockerfile.
    ok("copy-context-symlink-etc-passwd", "COPY of a context symlink to /etc/passwd", "the context's own etc/passwd, never the host's", ""),
    ok("copy-context-symlink-outside", "COPY of a context symlink to OUTSIDE/secret (absolute)", "error: not found in the context", ""),
    ok("copy-dotdot-outside", "COPY ../outside/secret", "error: not found (`..` stops at the context root)", ""),
    ok("copy-symlinked-dir-outside", "COPY of a context directory symlink to OUTSIDE (absolute and ../outside)", "error: not found in the context", ""),
    ok("bind-source-dotdot", "RUN --mount=type=bind,source=../", "the context root (BuildKit cleans the path), never its parent", ""),
    ok("bind-source-root-rw", "RUN --mount=type=bind,source=/,target=/host,rw, writing to /host", "the context, never the host's /; writes go nowhere", "buildah CVE-2024-1753"),
    ok("cache-id-traversal", "RUN --mount=type=cache,id=../../outside (and ../../../../etc)", "a cache under the store; nothing written outside", "buildah CVE-2024-9675"),
    ok("cache-source-traversal", "RUN --mount=type=cache,source=../../../.. (with and without from=)", "a fresh (or stage-seeded) cache; nothing outside read or written", "buildah CVE-2024-9675"),
    ok("workdir-proc-self-fd", "WORKDIR /proc/self/fd/N (N = 3..8) then RUN reading ../../../OUTSIDE/secret", "error (runc refuses the cwd); the secret is never read", "runc CVE-2024-21626 (Leaky Vessels)"),
    ok("run-workdir-proc-self-fd", "pallet run -w /proc/self/fd/N", "error; the secret is never read", "runc CVE-2024-21626"),
    ok("mount-target-symlink-out", "RUN --mount whose target runs through an image symlink to OUTSIDE", "the host target untouched after the step", "BuildKit CVE-2024-23652"),
    ok("cache-mount-symlink-out", "a cache mount that holds a symlink to OUTSIDE, used by later steps (writes, nested mount)", "nothing written outside", "BuildKit CVE-2024-23651 analog"),
    ok("oci-layout-dotdot-entry", "--build-context base=oci-layout://DIR whose layer has `../` entries", "error naming the entry", ""),
    defect("oci-layout-digest-traversal", "--build-context base=oci-layout://DIR whose layer digest is sha256:../../../outside/secret", "refused as an invalid digest before any file is opened", "",
        "store/oci_import.rs opens DIR/blobs/sha256/<whatever follows sha256:> for layers (only manifest and config digests are checked): the layer is read from outside the layout (any file: /dev/zero fills the disk, a FIFO hangs), and with a diff id equal to that file's sha256 (a guess to confirm) its content is stored in the store as a blob, left there after the build fails"),
    // Secrets.
    ok("secret-nowhere", "--secret used by RUN, with plain and JSON progress, an OCI output, history, inspect, a rebuild with another value", "the value is in no file of the store or output and in nothing printed; the rebuild is a cache hit", ""),
    ok("secret-build-arg", "--build-arg API_TOKEN=... used by RUN", "the SecretsUsedInArgOrEnv warning is printed (the value is in the history, as with BuildKit)", ""),
    // The frontend.
    ok("frontend-arg-bomb", "ARG A=$A$A$A$A$A$A$A$A doubling, 16 lines", "error at the line within seconds", ""),
    ok("frontend-50mb-line", "a Dockerfile whose one line is 50 MB", "error, stderr under 100 KB", ""),
    ok("frontend-50mb-word", "FROM with a 50 MB image name", "error, stderr under 100 KB", ""),
    ok("frontend-200k-comments", "200 000 lines of # comments before FROM", "builds", ""),
    // Registries.
    ok("reg-oversized-manifest", "a 9 MiB manifest", "error naming the 8 MiB limit", ""),
    ok("reg-invalid-json", "a manifest that is not JSON", "error: invalid manifest", ""),
    ok("reg-digest-traversal", "a manifest whose layer digest is sha256:../../../../tmp/x", "refused before any request that uses it", "issue 13 defect 8"),
    ok("reg-index-self-loop", "an index that lists itself", "error (digest mismatch), a bounded number of requests", ""),
    ok("reg-index-nested", "an index nested 100 deep", "error after at most two levels", ""),
    ok("reg-diffid-mismatch", "a config whose diff_ids do not match the layers", "error naming the diff id; nothing kept", ""),
    ok("reg-diffid-traversal", "a config whose diff_id is sha256:../../../outside/x", "error; nothing outside", ""),
    ok("reg-blob-digest-mismatch", "a layer blob that does not match its digest", "error naming the digest; nothing kept", ""),
    ok("reg-unknown-media-type", "a layer of media type application/vnd.evil.layer", "error naming the media type", ""),
    ok("reg-foreign-urls", "a foreign layer whose urls point elsewhere", "the URL is never requested", ""),
    ok("reg-huge-config", "a 12 MiB config JSON", "a clear answer (pulled or refused), bounded memory", ""),
    ok("reg-config-size-lie", "a manifest that says the config is 1 TiB", "error, no abort", ""),
    ok("push-failed-no-tag", "a push whose blob uploads fail (500 every time)", "error; the tag does not exist; no manifest sent", ""),
    ok("push-flipped-byte", "a push of an image one of whose stored layer blobs has a flipped byte", "error naming the layer before any manifest is written", "issue 13 defect 6"),
    // A damaged store.
    ok("doctor-corrupt-index", "4 KB of random bytes in the middle of index.redb", "images exits 1 naming `pallet doctor`; doctor rebuilds; images lists the images", "issue 13 defect 5"),
    // Isolation of RUN and pallet run.
    ok("seccomp-run-step", "a RUN step that tries unshare -U -r, mount -t tmpfs", "Seccomp: 2, both refused, the pids limit is in the cgroup", "issue 13 defect 2"),
    ok("seccomp-pallet-run", "pallet run trying the same", "Seccomp: 2, both refused, the pids limit is in the cgroup", "issue 13 defect 2"),
];

/// The case `id` (panics if the table has none: a test may not exercise an unlisted case).
fn case(id: &str) -> &'static Case {
    CASES
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("no case {id} in CASES"))
}

// ---------------------------------------------------------------------------------------------
// Running pallet with a deadline
// ---------------------------------------------------------------------------------------------

/// How one pallet run ended.
struct Ran {
    what: String,
    /// The exit code, or None when a signal ended it.
    code: Option<i32>,
    signal: Option<i32>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    secs: f64,
    /// Peak resident memory of pallet itself, in MiB.
    max_rss_mib: u64,
}

impl Ran {
    fn out(&self) -> String {
        text(&self.stdout)
    }
    fn err(&self) -> String {
        text(&self.stderr)
    }
    fn printed(&self) -> String {
        format!("{}{}", self.out(), self.err())
    }

    /// A shortened account for assertion messages (stderr can be large by mistake).
    fn show(&self) -> String {
        let cut = |s: String| {
            if s.len() > 4000 {
                let head: String = s.chars().take(4000).collect();
                format!("{head}... ({} bytes)", s.len())
            } else {
                s
            }
        };
        format!(
            "{} (exit {:?}, signal {:?}, {:.1}s, {} MiB)\nstdout:\n{}\nstderr:\n{}",
            self.what,
            self.code,
            self.signal,
            self.secs,
            self.max_rss_mib,
            cut(self.out()),
            cut(self.err())
        )
    }

    /// Exit 0.
    fn succeeded(&self) -> &Ran {
        assert_eq!(self.code, Some(0), "must succeed: {}", self.show());
        self
    }

    /// The clear error: exit code 1 (not 101, not a signal), `error:` and every needle in
    /// stderr, no panic, and a stderr that stays small.
    fn failed_with(&self, needles: &[&str]) -> &Ran {
        let err = self.err();
        assert_eq!(self.code, Some(1), "must fail with exit 1: {}", self.show());
        assert!(err.contains("error"), "no error message: {}", self.show());
        assert!(!err.contains("panicked"), "a panic: {}", self.show());
        for n in needles {
            assert!(err.contains(n), "the error must say {n:?}: {}", self.show());
        }
        assert!(
            self.stderr.len() < 100_000,
            "stderr is {} bytes: {}",
            self.stderr.len(),
            self.show()
        );
        self
    }
}

/// Runs `p` to its end within `limit` (killed and a failure past it), optionally under an
/// address-space limit (bytes) so that a runaway allocation fails in pallet, not the machine.
fn run_bounded(p: &Pallet, limit: Duration, address_space: Option<u64>) -> Ran {
    let mut cmd = p.command();
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(bytes) = address_space {
        use std::os::unix::process::CommandExt;
        // SAFETY: setrlimit is async-signal-safe and touches only the child's own limits; the
        // closure allocates nothing and uses no locks.
        unsafe {
            cmd.pre_exec(move || {
                let lim = libc::rlimit {
                    rlim_cur: bytes,
                    rlim_max: bytes,
                };
                if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", p.describe()));
    let pipe = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = pipe(
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let err = pipe(
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let pid = child.id() as libc::pid_t;
    let (status, rusage) = loop {
        let mut status = 0;
        // SAFETY: all-zero is a valid rusage (plain integers and timevals).
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: wait4 on our own child with valid pointers to locals; WNOHANG never blocks.
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut ru) };
        if r == pid {
            break (status, ru);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            let (o, e) = (out.join().unwrap(), err.join().unwrap());
            panic!(
                "{} hung: still running after {limit:?}\nstdout:\n{}\nstderr:\n{}",
                p.describe(),
                text(&o[..o.len().min(4000)]),
                text(&e[..e.len().min(4000)])
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let (exited, signaled) = (libc::WIFEXITED(status), libc::WIFSIGNALED(status));
    Ran {
        what: p.describe().chars().take(300).collect(),
        code: exited.then(|| libc::WEXITSTATUS(status)),
        signal: signaled.then(|| libc::WTERMSIG(status)),
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
        secs: start.elapsed().as_secs_f64(),
        max_rss_mib: rusage.ru_maxrss as u64 / 1024,
    }
}

/// [`run_bounded`] with a minute and no memory limit.
fn run(p: &Pallet) -> Ran {
    run_bounded(p, Duration::from_secs(60), None)
}

// ---------------------------------------------------------------------------------------------
// The arena: a store, contexts, outputs and the canary beside them
// ---------------------------------------------------------------------------------------------

/// A random hex string (time, pid and a counter through sha256): canary values and marks.
fn random_hex(what: &str) -> String {
    use sha2::Digest;
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let seed = format!(
        "{what}-{}-{}-{:?}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst),
        std::time::SystemTime::now()
    );
    hex::encode(sha2::Sha256::digest(seed.as_bytes()))[..24].to_string()
}

/// One case's world, in a temp dir T:
///
/// - `T/root`: the store; `T/ctx` (and `T/ctx-*`): build contexts; `T/out*`: outputs;
///   `T/in`: inputs the test wrote (tars, layouts, the docker config);
/// - `T/outside/secret` (a random value) and `T/outside/empty/`: the canary, which no case may
///   change, and whose value no case may read;
/// - a mark: host paths `/tmp/pallet-hostile-MARK`, `/pallet-hostile-MARK` and
///   `/etc/pallet-hostile-MARK` are where hostile entries aim, and must never exist.
struct Arena {
    store: Store,
    secret: String,
    mark: String,
    baseline: testkit::tree::Tree,
}

impl Arena {
    /// A store with busybox:latest imported.
    fn busybox() -> Arena {
        Arena::with(Store::busybox(pallet!()))
    }

    /// A store with nothing in it yet.
    fn empty() -> Arena {
        Arena::with(Store::empty(pallet!()))
    }

    fn with(store: Store) -> Arena {
        let secret = format!("canary-{}", random_hex("secret"));
        let mark = random_hex("mark");
        let t = store.dir();
        std::fs::create_dir_all(t.join("outside/empty")).unwrap();
        std::fs::write(t.join("outside/secret"), &secret).unwrap();
        std::fs::create_dir_all(t.join("ctx")).unwrap();
        std::fs::create_dir_all(t.join("in/docker")).unwrap();
        std::fs::write(t.join("in/pallet-config.json"), "{}").unwrap();
        let baseline = testkit::tree::from_dir(&t.join("outside"));
        Arena {
            store,
            secret,
            mark,
            baseline,
        }
    }

    fn dir(&self) -> &Path {
        self.store.dir()
    }

    fn root(&self) -> &Path {
        self.store.root()
    }

    /// The main build context, `T/ctx` (its `..` is T, where `outside/` is).
    fn ctx(&self) -> PathBuf {
        self.dir().join("ctx")
    }

    /// `T/outside`, the canary directory.
    fn outside(&self) -> PathBuf {
        self.dir().join("outside")
    }

    /// `T/in/NAME`, for inputs.
    fn input(&self, name: &str) -> PathBuf {
        self.dir().join("in").join(name)
    }

    /// `T/out-NAME`, for outputs.
    fn out(&self, name: &str) -> PathBuf {
        self.dir().join(format!("out-{name}"))
    }

    /// `pallet-hostile-MARK`: the name hostile entries try to create on the host.
    fn sentinel(&self) -> String {
        format!("pallet-hostile-{}", self.mark)
    }

    /// The host paths hostile entries aim at.
    fn host_targets(&self) -> Vec<PathBuf> {
        let s = self.sentinel();
        vec![
            PathBuf::from("/tmp").join(&s),
            PathBuf::from("/").join(&s),
            PathBuf::from("/etc").join(&s),
            self.outside().join(&s),
            self.dir().join(&s),
        ]
    }

    /// pallet on this store, with a docker config and registry settings of its own.
    fn pallet(&self) -> Pallet {
        self.store
            .pallet()
            .env("DOCKER_CONFIG", self.input("docker"))
            .env("PALLET_CONFIG", self.input("pallet-config.json"))
    }

    /// Writes the Dockerfile (and files) of the main context.
    fn dockerfile(&self, text: &str) {
        std::fs::write(self.ctx().join("Dockerfile"), text).unwrap();
    }

    /// `pallet build --progress plain ARGS... CTX` with a deadline.
    fn build(&self, args: &[&str]) -> Ran {
        run(&self
            .pallet()
            .args(["build", "--progress", "plain"])
            .args(args)
            .arg(self.ctx()))
    }

    /// The second assertion of every case: nothing written or read outside where it may be.
    /// `printed` is what the case's runs printed.
    fn assert_confined(&self, c: &Case, printed: &[&Ran]) {
        let what = format!("[{}] {}", c.id, c.input);
        // The canary is as it was.
        let now = testkit::tree::from_dir(&self.outside());
        let diff = testkit::tree::compare(&self.baseline, &now);
        assert!(
            diff.is_empty(),
            "{what}: the canary directory changed: {diff:#?}"
        );
        // Nothing new beside the store, the contexts, the outputs and the inputs.
        for name in list_dir_if_exists(self.dir()) {
            let allowed = ["root", "in", "outside"].contains(&name.as_str())
                || name.starts_with("ctx")
                || name.starts_with("out-");
            assert!(allowed, "{what}: {name} appeared beside the store");
        }
        // Nothing where hostile entries aim on the host.
        for p in self.host_targets() {
            assert!(
                std::fs::symlink_metadata(&p).is_err(),
                "{what}: {} exists on the host",
                p.display()
            );
        }
        // The secret's value was never read: not in the store, the outputs, or what was printed.
        let mut files = all_files(self.root());
        for name in list_dir_if_exists(self.dir()) {
            if name.starts_with("out-") || name.starts_with("ctx") {
                files.extend(all_files(&self.dir().join(&name)));
            }
        }
        for f in &files {
            assert!(
                !file_contains(f, self.secret.as_bytes()),
                "{what}: the canary's secret is in {}",
                f.display()
            );
        }
        for r in printed {
            assert!(
                !r.printed().contains(&self.secret),
                "{what}: the canary's secret was printed: {}",
                r.show()
            );
        }
        // No overlay or bind mount left behind under the arena.
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let dir = self.dir().to_string_lossy().into_owned();
        assert!(
            !mounts.lines().any(|l| l.contains(&dir)),
            "{what}: a mount is left under {dir}"
        );
    }

    /// The store's temporaries are gone (a failed command cleans up after itself).
    fn assert_no_leftovers(&self, c: &Case) {
        let left = list_dir_if_exists(&self.root().join("tmp"));
        assert!(left.is_empty(), "[{}]: left in ROOT/tmp: {left:?}", c.id);
    }
}

impl Drop for Arena {
    /// `rm -rf` first: a hostile case may leave a tree too deep for the recursive removal of
    /// the temp dir (which would overflow the test's stack). Never across a mount.
    fn drop(&mut self) {
        let _ = std::process::Command::new("rm")
            .args(["-rf", "--one-file-system"])
            .arg(self.dir())
            .status();
    }
}

// ---------------------------------------------------------------------------------------------
// Crafting tars byte by byte (the tar crate refuses `..` and NUL, which is the point here)
// ---------------------------------------------------------------------------------------------

/// One tar entry, with a name (and link target) of any bytes.
#[derive(Clone, Debug)]
enum E {
    File(Vec<u8>, Vec<u8>),
    Dir(Vec<u8>),
    Sym(Vec<u8>, Vec<u8>),
    Hard(Vec<u8>, Vec<u8>),
    Char(Vec<u8>, u32, u32),
    Block(Vec<u8>, u32, u32),
    Fifo(Vec<u8>),
}

fn file(name: impl AsRef<[u8]>, data: impl AsRef<[u8]>) -> E {
    E::File(name.as_ref().to_vec(), data.as_ref().to_vec())
}
fn dir(name: impl AsRef<[u8]>) -> E {
    E::Dir(name.as_ref().to_vec())
}
fn sym(name: impl AsRef<[u8]>, target: impl AsRef<[u8]>) -> E {
    E::Sym(name.as_ref().to_vec(), target.as_ref().to_vec())
}
fn hard(name: impl AsRef<[u8]>, target: impl AsRef<[u8]>) -> E {
    E::Hard(name.as_ref().to_vec(), target.as_ref().to_vec())
}

/// A PAX extended-header record: `LEN key=value\n`, LEN counting itself.
fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let body = 1 + key.len() + 1 + value.len() + 1;
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    let mut r = format!("{len} {key}=").into_bytes();
    r.extend_from_slice(value);
    r.push(b'\n');
    r
}

/// A ustar header block: the name and link copied raw (truncated to their fields).
fn header(name: &[u8], kind: u8, size: u64, mode: u32, link: &[u8], dev: (u32, u32)) -> [u8; 512] {
    let mut h = [0u8; 512];
    let put = |h: &mut [u8; 512], at: usize, len: usize, v: &[u8]| {
        let n = v.len().min(len);
        h[at..at + n].copy_from_slice(&v[..n]);
    };
    let octal = |h: &mut [u8; 512], at: usize, len: usize, v: u64| {
        let s = format!("{v:0width$o}\0", width = len - 1);
        h[at..at + len].copy_from_slice(s.as_bytes());
    };
    put(&mut h, 0, 100, name);
    octal(&mut h, 100, 8, u64::from(mode));
    octal(&mut h, 108, 8, 0);
    octal(&mut h, 116, 8, 0);
    octal(&mut h, 124, 12, size);
    octal(&mut h, 136, 12, 1_700_000_000);
    h[156] = kind;
    put(&mut h, 157, 100, link);
    put(&mut h, 257, 6, b"ustar\0");
    put(&mut h, 263, 2, b"00");
    put(&mut h, 265, 32, b"root");
    put(&mut h, 297, 32, b"root");
    octal(&mut h, 329, 8, u64::from(dev.0));
    octal(&mut h, 337, 8, u64::from(dev.1));
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    let s = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(s.as_bytes());
    h
}

fn pad(out: &mut Vec<u8>) {
    while !out.len().is_multiple_of(512) {
        out.push(0);
    }
}

/// The entries as an uncompressed tar; names or targets longer than 100 bytes, or holding a
/// NUL, go in a PAX header first.
fn tar(entries: &[E]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        let (name, kind, data, mode, link, devn): (&[u8], u8, &[u8], u32, &[u8], (u32, u32)) =
            match e {
                E::File(n, d) => (n, b'0', d, 0o644, b"", (0, 0)),
                E::Dir(n) => (n, b'5', b"", 0o755, b"", (0, 0)),
                E::Sym(n, t) => (n, b'2', b"", 0o777, t, (0, 0)),
                E::Hard(n, t) => (n, b'1', b"", 0o644, t, (0, 0)),
                E::Char(n, a, b) => (n, b'3', b"", 0o666, b"", (*a, *b)),
                E::Block(n, a, b) => (n, b'4', b"", 0o666, b"", (*a, *b)),
                E::Fifo(n) => (n, b'6', b"", 0o644, b"", (0, 0)),
            };
        let long = |v: &[u8]| v.len() >= 100 || v.contains(&0);
        if long(name) || long(link) {
            let mut pax = Vec::new();
            if long(name) {
                pax.extend(pax_record("path", name));
            }
            if long(link) {
                pax.extend(pax_record("linkpath", link));
            }
            out.extend_from_slice(&header(
                b"PaxHeader",
                b'x',
                pax.len() as u64,
                0o644,
                b"",
                (0, 0),
            ));
            out.extend(pax);
            pad(&mut out);
        }
        out.extend_from_slice(&header(name, kind, data.len() as u64, mode, link, devn));
        out.extend_from_slice(data);
        pad(&mut out);
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}

/// gzip of `data`.
fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

fn sha256(data: &[u8]) -> String {
    testkit::digest::sha256(data)
}

/// The snapshot files named `name` anywhere in the store.
fn find_named(dir: &Path, name: &str) -> Vec<PathBuf> {
    all_files(dir)
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n == name))
        .collect()
}

fn can_run(what: &str) -> bool {
    require(what, &[Root, Busybox, Tool("runc")])
}

// ---------------------------------------------------------------------------------------------
// Layer tars through `pallet import`
// ---------------------------------------------------------------------------------------------

/// What a case must end with: a clear error saying all of these, or success and a check.
enum Want<'a> {
    Fails(Vec<String>),
    Succeeds(Box<dyn Fn(&Ran) + 'a>),
}

fn fails(needles: &[&str]) -> Want<'static> {
    Want::Fails(needles.iter().map(|s| s.to_string()).collect())
}

/// Checks one run against what its case wants, then the canary.
fn judge(arena: &Arena, c: &Case, ran: &Ran, want: &Want) {
    match want {
        Want::Fails(needles) => {
            let needles: Vec<&str> = needles.iter().map(String::as_str).collect();
            ran.failed_with(&needles);
        }
        Want::Succeeds(check) => {
            ran.succeeded();
            check(ran);
        }
    }
    arena.assert_confined(c, &[ran]);
    arena.assert_no_leftovers(c);
}

/// The busybox tree as a tar, with `entries` appended: an image a container can run.
fn busybox_plus(entries: &[E]) -> Vec<u8> {
    let mut base = testkit::busybox::Rootfs::new().tar();
    // The tar crate ends an archive with two zero blocks: drop them, append, end again.
    base.truncate(base.len() - 1024);
    base.extend(tar(entries));
    base
}

/// Major and minor of the block device the store lives on: a real host disk to aim at.
fn host_disk() -> (u32, u32) {
    use std::os::unix::fs::MetadataExt;
    let dev = std::fs::metadata("/").unwrap().dev();
    (libc::major(dev), libc::minor(dev))
}

#[test]
fn layer_tars_through_import() {
    if !can_run("hostile layer tars through import") {
        return;
    }
    let arena = Arena::empty();
    let s = arena.sentinel();
    let outside = arena.outside();
    let out = outside.to_string_lossy().into_owned();
    let snapshots = arena.root().join("snapshots");
    let in_store = |name: &str| find_named(&snapshots, name);
    let cases: Vec<(&str, Vec<E>, Want)> = vec![
        (
            "import-dotdot",
            vec![
                file("ok", "fine"),
                file(format!("../../../../../../../../tmp/{s}"), "pwned"),
            ],
            fails(&["`..` component", "layers may not refer above their root"]),
        ),
        (
            "import-dotdot",
            vec![file(format!("a/../../{s}"), "pwned")],
            fails(&["`..` component"]),
        ),
        (
            "import-absolute",
            vec![
                file(format!("/tmp/{s}"), "absolute"),
                file(format!("/etc/{s}"), "abs"),
            ],
            Want::Succeeds(Box::new(|_| {
                let found = in_store(&s);
                assert_eq!(
                    found.len(),
                    2,
                    "both absolute entries land in the store: {found:?}"
                );
                assert!(found.iter().all(|p| p.starts_with(&snapshots)));
            })),
        ),
        (
            "import-symlink-then-file",
            vec![
                sym("esc", &out),
                file(format!("esc/{s}"), "pwned"),
                file("esc/secret", "overwritten"),
            ],
            fails(&[
                "\"esc\" is a symlink",
                "layers may not create or remove files through symlinks",
            ]),
        ),
        (
            "import-symlink-dotdot",
            vec![
                sym("up", "../../../../../../.."),
                file(format!("up/tmp/{s}"), "pwned"),
            ],
            fails(&["\"up\" is a symlink"]),
        ),
        (
            "import-symlink-dotdot",
            vec![
                dir("d"),
                sym("d/up", ".."),
                sym("d/up2", "up/.."),
                file(format!("d/up2/{s}"), "x"),
            ],
            fails(&["is a symlink"]),
        ),
        (
            "import-symlink-loop",
            vec![sym("a", "b"), sym("b", "a"), file("a/x", "x")],
            fails(&["\"a\" is a symlink"]),
        ),
        (
            "import-hardlink-dotdot",
            vec![hard("h", "../../etc/passwd")],
            fails(&["hardlink target \"../../etc/passwd\"", "`..` component"]),
        ),
        (
            "import-hardlink-dotdot",
            vec![hard("h", format!("../../../../..{out}/secret"))],
            fails(&["`..` component"]),
        ),
        (
            "import-hardlink-absolute",
            vec![hard("h", "/etc/shadow")],
            fails(&["hardlink target \"/etc/shadow\" does not exist"]),
        ),
        (
            "import-hardlink-absolute",
            vec![hard("h", format!("{out}/secret"))],
            fails(&["does not exist"]),
        ),
        (
            "import-whiteout-dotdot",
            vec![dir("a"), file("a/.wh...", "")],
            fails(&["whiteout names \"..\""]),
        ),
        (
            "import-whiteout-dotdot",
            vec![file("../.wh.secret", "")],
            fails(&["`..` component"]),
        ),
        (
            "import-whiteout-dotdot",
            vec![file(".wh..", "")],
            fails(&["whiteout names \".\""]),
        ),
        (
            "import-whiteout-through-symlink",
            vec![
                sym("esc", &out),
                file("esc/.wh.secret", ""),
                file("esc/.wh.empty", ""),
            ],
            fails(&["\"esc\" is a symlink"]),
        ),
        (
            "import-opaque-odd-places",
            vec![
                file(".wh..wh..opq", ""),
                dir(".wh..wh..opq"),
                file(".wh..wh..opq/x", "x"),
                file("f", "kept"),
            ],
            Want::Succeeds(Box::new(|_| {})),
        ),
        (
            "import-opaque-odd-places",
            vec![sym("esc", &out), file("esc/.wh..wh..opq", "")],
            fails(&["\"esc\" is a symlink"]),
        ),
        (
            "import-nul-name",
            vec![file(b"a\0/../../../../tmp/x".to_vec(), "x")],
            fails(&["NUL"]),
        ),
        (
            "import-dir-then-symlink",
            vec![
                dir("d"),
                file("d/f", "f"),
                sym("d", &out),
                file(format!("d/{s}"), "pwned"),
            ],
            fails(&["\"d\" is a symlink"]),
        ),
    ];
    for (n, (id, entries, want)) in cases.iter().enumerate() {
        let c = case(id);
        let path = arena.input(&format!("{n}-{id}.tar"));
        std::fs::write(&path, tar(entries)).unwrap();
        let ran = run(&arena
            .pallet()
            .arg("import")
            .arg(&path)
            .args(["-t", &format!("evil-{n}:1")]));
        judge(&arena, c, &ran, want);
    }
}

/// Device nodes in a layer are made inside the store's snapshot only, and a container of the
/// image cannot open them (runc's device cgroup): a layer cannot hand a build the host's
/// memory or disks.
#[test]
fn layer_device_nodes_stay_in_the_store_and_cannot_be_opened() {
    if !can_run("hostile device nodes") {
        return;
    }
    let c = case("import-devices");
    let arena = Arena::empty();
    let (major, minor) = host_disk();
    let entries = [
        E::Char(b"mem".to_vec(), 1, 1),
        E::Char(b"kmsg".to_vec(), 1, 11),
        E::Block(b"disk".to_vec(), major, minor),
        E::Fifo(b"fifo".to_vec()),
    ];
    let path = arena.input("devices.tar");
    std::fs::write(&path, busybox_plus(&entries)).unwrap();
    let imported = run(&arena
        .pallet()
        .arg("import")
        .arg(&path)
        .args(["-t", "devs:1"]));
    imported.succeeded();
    // The nodes are in the store's snapshot and nowhere else.
    let snapshots = arena.root().join("snapshots");
    let nodes: Vec<PathBuf> = testkit::files::find_dirs(&snapshots, "bin")
        .iter()
        .filter_map(|bin| bin.parent().map(|p| p.join("mem")))
        .filter(|p| std::fs::symlink_metadata(p).is_ok())
        .collect();
    assert_eq!(nodes.len(), 1, "one snapshot holds /mem: {nodes:?}");
    let probe = "for d in mem kmsg disk; do \
                 if head -c 1 /$d >/dev/null 2>&1; then echo READ-$d; else echo DENIED-$d; fi; \
                 if printf x 2>/dev/null >> /$d; then echo WROTE-$d; fi; done";
    let ran = run(&arena
        .pallet()
        .args(["run", "devs:1", "/bin/sh", "-c", probe]));
    ran.succeeded();
    for d in ["mem", "kmsg", "disk"] {
        assert!(ran.out().contains(&format!("DENIED-{d}")), "{}", ran.show());
        assert!(!ran.out().contains(&format!("WROTE-{d}")), "{}", ran.show());
    }
    arena.assert_confined(c, &[&imported, &ran]);
}

/// A layer entry whose name is 20 000 components deep (a 40 KB PAX path) must be refused at
/// once, not unpacked level by level with every prefix of the path remembered.
#[test]
#[ignore = "defect: a deep entry name costs memory and time quadratic in its length (a 1 MB name was OOM-killed at 23 GB), fails late with ENAMETOOLONG and leaves an undeletable tree in ROOT/tmp; see CASES import-deep-name"]
fn deep_entry_name_is_refused_at_once() {
    if !can_run("hostile deep entry name") {
        return;
    }
    let c = case("import-deep-name");
    let arena = Arena::empty();
    let name = format!("{}x", "a/".repeat(20_000));
    let path = arena.input("deep.tar");
    std::fs::write(&path, tar(&[file(name, "x")])).unwrap();
    // A 4 GiB address space: a regression fails here, not in the machine's OOM killer.
    let ran = run_bounded(
        &arena
            .pallet()
            .arg("import")
            .arg(&path)
            .args(["-t", "deep:1"]),
        Duration::from_secs(60),
        Some(4 << 30),
    );
    ran.failed_with(&["too long"]);
    assert!(
        ran.stderr.len() < 8192,
        "the name is echoed whole: {}",
        ran.show()
    );
    assert!(ran.secs < 5.0, "took {:.1}s: {}", ran.secs, ran.show());
    assert!(
        ran.max_rss_mib < 200,
        "{} MiB: {}",
        ran.max_rss_mib,
        ran.show()
    );
    arena.assert_confined(c, &[&ran]);
    arena.assert_no_leftovers(c);
}

/// A 50 MB GNU long name: refused as an oversized extension header, with little memory and
/// a short message.
#[test]
fn huge_entry_name_is_refused() {
    if !can_run("hostile huge entry name") {
        return;
    }
    let c = case("import-huge-name");
    let arena = Arena::empty();
    // GNU 'L' header: the name as the data of a pseudo-entry named ././@LongLink.
    let name = vec![b'n'; 50 << 20];
    let mut bytes = header(
        b"././@LongLink",
        b'L',
        name.len() as u64 + 1,
        0o644,
        b"",
        (0, 0),
    )
    .to_vec();
    bytes.extend_from_slice(&name);
    bytes.push(0);
    pad(&mut bytes);
    bytes.extend(tar(&[file("x", "x")]));
    let path = arena.input("huge.tar");
    std::fs::write(&path, bytes).unwrap();
    let ran = run_bounded(
        &arena
            .pallet()
            .arg("import")
            .arg(&path)
            .args(["-t", "huge:1"]),
        Duration::from_secs(30),
        Some(4 << 30),
    );
    ran.failed_with(&["extension header", "more than 1 MiB"]);
    assert!(
        ran.max_rss_mib < 512,
        "{} MiB: {}",
        ran.max_rss_mib,
        ran.show()
    );
    arena.assert_confined(c, &[&ran]);
    arena.assert_no_leftovers(c);
}
