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
    defect("reg-oversized-manifest", "a 9 MiB manifest", "refused before any blob request, the error naming the manifest's 8 MiB limit", "",
        "refused in time and without a blob request, but the error says '127.0.0.1:PORT: the registry is not reachable: the response body is larger than request limit: 8388608 (check the host name and port, proxy settings and that the registry is running)': the cause is misnamed and the advice is wrong (issue 13, point 9)"),
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
    defect("reg-config-size-lie", "a manifest that says its config is 1 TiB (the blob is small)", "an error (or the real config), never an allocation of the claimed size", "",
        "registry/src/pull.rs resolve() does Vec::with_capacity(manifest.config.size): a 300-byte manifest makes pallet abort with 'memory allocation of 1099511627776 bytes failed' (SIGABRT, exit 134) before any check; a size just under the machine's memory would be committed instead"),
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

// ---------------------------------------------------------------------------------------------
// Layer tars through ADD of a local archive
// ---------------------------------------------------------------------------------------------

/// Whether `p` is a regular file holding `content` (symlinks not followed).
fn is_file_with(p: &Path, content: &str) -> bool {
    std::fs::symlink_metadata(p).is_ok_and(|m| m.is_file())
        && std::fs::read_to_string(p).is_ok_and(|c| c == content)
}

/// `ADD evil.tar /dest/` (buildah CVE-2020-10696's shape): each archive is extracted below
/// the destination or refused; a symlink in it never leads the extraction out.
#[test]
fn layer_tars_through_add() {
    if !can_run("hostile archives through ADD") {
        return;
    }
    let arena = Arena::busybox();
    let s = arena.sentinel();
    let out = arena.outside().to_string_lossy().into_owned();
    let (major, minor) = host_disk();
    // Where an absolute host path lands below the destination of output `n`.
    let below = |n: usize, abs: &str| arena.out(&n.to_string()).join("dest").join(abs.trim_start_matches('/'));
    let cases: Vec<(&str, Vec<E>, Box<dyn Fn(usize) -> Want<'static>>)> = vec![
        (
            "add-tar-dotdot",
            vec![file("ok", "ok"), file(format!("../../../../../../../../tmp/{s}"), "pwned")],
            Box::new(|_| fails(&["outside the extraction directory"])),
        ),
        (
            "add-tar-dotdot",
            vec![file(format!("a/../../../{s}"), "pwned")],
            Box::new(|_| fails(&["outside the extraction directory"])),
        ),
        (
            "add-tar-absolute",
            vec![file(format!("/tmp/{s}"), "abs"), file(format!("/etc/{s}"), "abs")],
            Box::new(|n| {
                let (a, b) = (below(n, &format!("/tmp/{s}")), below(n, &format!("/etc/{s}")));
                Want::Succeeds(Box::new(move |_| {
                    assert!(is_file_with(&a, "abs") && is_file_with(&b, "abs"), "{a:?} {b:?}");
                }))
            }),
        ),
        (
            "add-tar-symlink-then-file",
            vec![sym("esc", &out), file(format!("esc/{s}"), "pwned"), file("esc/secret", "overwritten")],
            Box::new(|n| {
                let landed = below(n, &format!("{out}/{s}"));
                let overwritten = below(n, &format!("{out}/secret"));
                Want::Succeeds(Box::new(move |_| {
                    assert!(is_file_with(&landed, "pwned"), "{landed:?}");
                    assert!(is_file_with(&overwritten, "overwritten"), "{overwritten:?}");
                }))
            }),
        ),
        (
            "add-tar-symlink-dotdot",
            vec![sym("up", ".."), sym("up2", "../../../../.."), file(format!("up/{s}"), "one"), file(format!("up2/tmp/{s}"), "two")],
            Box::new(|n| {
                let (one, two) = (below(n, &s), below(n, &format!("tmp/{s}")));
                Want::Succeeds(Box::new(move |_| {
                    assert!(is_file_with(&one, "one") && is_file_with(&two, "two"), "{one:?} {two:?}");
                }))
            }),
        ),
        (
            "add-tar-hardlink-dotdot",
            vec![hard("h", "../../etc/passwd")],
            Box::new(|_| fails(&["outside the extraction directory", "../../etc/passwd"])),
        ),
        (
            "add-tar-hardlink-dotdot",
            vec![hard("h", format!("../../../../..{out}/secret"))],
            Box::new(|_| fails(&["outside the extraction directory"])),
        ),
        (
            "add-tar-hardlink-absolute",
            vec![hard("h", "/etc/shadow")],
            Box::new(|_| fails(&["No such file or directory"])),
        ),
        (
            "add-tar-hardlink-absolute",
            vec![hard("h", format!("{out}/secret"))],
            Box::new(|_| fails(&["No such file or directory"])),
        ),
        (
            "add-tar-devices",
            vec![E::Char(b"mem".to_vec(), 1, 1), E::Block(b"disk".to_vec(), major, minor), E::Fifo(b"fifo".to_vec())],
            Box::new(|n| {
                let dest = arena.out(&n.to_string()).join("dest");
                Want::Succeeds(Box::new(move |_| {
                    use std::os::unix::fs::FileTypeExt;
                    let kind = |f: &str| std::fs::symlink_metadata(dest.join(f)).unwrap().file_type();
                    assert!(kind("mem").is_char_device() && kind("disk").is_block_device() && kind("fifo").is_fifo());
                }))
            }),
        ),
        (
            "add-tar-dir-then-symlink",
            vec![dir("d"), file("d/f", "f"), sym("d", &out), file(format!("d/{s}"), "pwned")],
            Box::new(|n| {
                let landed = below(n, &format!("{out}/{s}"));
                Want::Succeeds(Box::new(move |_| assert!(is_file_with(&landed, "pwned"), "{landed:?}")))
            }),
        ),
    ];
    for (n, (id, entries, want)) in cases.iter().enumerate() {
        let c = case(id);
        std::fs::write(arena.ctx().join(format!("evil-{n}.tar")), tar(entries)).unwrap();
        arena.dockerfile(&format!("FROM busybox\nADD evil-{n}.tar /dest/\n"));
        let dest = format!("type=local,dest={}", arena.out(&n.to_string()).display());
        let ran = arena.build(&["-o", &dest]);
        judge(&arena, c, &ran, &want(n));
    }
}

// ---------------------------------------------------------------------------------------------
// Crafted images: in a real registry, behind a hostile front, or in an OCI layout
// ---------------------------------------------------------------------------------------------

use registry::manifest::{OCI_INDEX, OCI_MANIFEST};
use testkit::docker_registry::{Answer, Config, Front, Registry, Rule};

const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// An image made of blobs a test crafted: a config and layers (media type, bytes).
struct Crafted {
    config: Vec<u8>,
    layers: Vec<(String, Vec<u8>)>,
}

/// The host's architecture as OCI names it.
fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// A config for layers with these diff ids (and a `Cmd`).
fn config_json(diff_ids: &[String]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "architecture": arch(), "os": "linux",
        "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .unwrap()
}

impl Crafted {
    /// gzip layers of these tars, and a config whose diff ids are right.
    fn of_tars(tars: &[Vec<u8>]) -> Crafted {
        let diff_ids: Vec<String> = tars.iter().map(|t| sha256(t)).collect();
        Crafted {
            config: config_json(&diff_ids),
            layers: tars
                .iter()
                .map(|t| (OCI_LAYER_GZIP.to_string(), gzip(t)))
                .collect(),
        }
    }

    fn descriptor(media_type: &str, data: &[u8]) -> serde_json::Value {
        serde_json::json!({"mediaType": media_type, "digest": sha256(data), "size": data.len()})
    }

    /// The OCI manifest of this image.
    fn manifest(&self) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": Crafted::descriptor(OCI_CONFIG, &self.config),
            "layers": self.layers.iter().map(|(m, l)| Crafted::descriptor(m, l)).collect::<Vec<_>>(),
        }))
        .unwrap()
    }

    /// (descriptor, bytes) of the config and the layers.
    fn blobs(&self) -> Vec<(registry::Descriptor, Vec<u8>)> {
        let d = |m: &str, b: &[u8]| testkit::registry_client::images::descriptor(m, b);
        std::iter::once((d(OCI_CONFIG, &self.config), self.config.clone()))
            .chain(self.layers.iter().map(|(m, l)| (d(m, l), l.clone())))
            .collect()
    }

    /// Pushes the blobs to `repo` of `reg`, and the manifest as `repo:tag` unless `tag` is
    /// None (a front serves the manifest then).
    fn push(&self, reg: &Registry, dir: &Path, repo: &str, tag: Option<&str>) {
        let client = testkit::registry_client::client_for(reg, dir);
        let target = testkit::registry_client::reference(reg, &format!("{repo}:{}", tag.unwrap_or("blobs")));
        let blobs: Vec<registry::PushBlob> = self
            .blobs()
            .into_iter()
            .map(|(descriptor, data)| registry::PushBlob {
                descriptor,
                open: Box::new(move || {
                    Ok(Box::new(std::io::Cursor::new(data.clone())) as Box<dyn Read + Send>)
                }),
                mount_from: Vec::new(),
            })
            .collect();
        match tag {
            Some(_) => {
                let request = registry::PushRequest {
                    target,
                    manifest_media_type: OCI_MANIFEST.into(),
                    manifest_bytes: self.manifest(),
                    blobs,
                };
                registry::push_image(&client, &request, &|_| {}).unwrap();
            }
            None => {
                for b in &blobs {
                    registry::push::push_blob(&client, &target, b, &|_| {}).unwrap();
                }
            }
        }
    }

    /// Writes the image as an OCI layout at `dir` (tag `1`).
    fn write_layout(&self, dir: &Path) {
        let blobs = dir.join("blobs/sha256");
        std::fs::create_dir_all(&blobs).unwrap();
        let manifest = self.manifest();
        for data in self.blobs().iter().map(|(_, b)| b).chain([&manifest]) {
            std::fs::write(blobs.join(&sha256(data)[7..]), data).unwrap();
        }
        self.write_index(dir, &manifest);
    }

    /// index.json of a layout whose one image has this manifest (blob written too).
    fn write_index(&self, dir: &Path, manifest: &[u8]) {
        std::fs::write(dir.join("blobs/sha256").join(&sha256(manifest)[7..]), manifest).unwrap();
        std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        let index = serde_json::json!({"schemaVersion": 2, "manifests": [{
            "mediaType": OCI_MANIFEST, "digest": sha256(manifest), "size": manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": "1"}}]});
        std::fs::write(dir.join("index.json"), index.to_string()).unwrap();
    }
}

/// A plain-HTTP docker-registry, or None where the gate says skip.
fn start_registry() -> Option<Registry> {
    Registry::start(Config::plain())
}

/// Images whose layers carry hostile entries, pushed to a real registry and used by `FROM` and
/// `COPY --from` (kaniko's cg326: COPY --from a malicious image with ../../../../tini).
#[test]
fn layer_tars_through_a_registry_image() {
    if !can_run("hostile registry images") {
        return;
    }
    let Some(reg) = start_registry() else {
        return;
    };
    let arena = Arena::busybox();
    let s = arena.sentinel();
    let out = arena.outside().to_string_lossy().into_owned();
    let host = reg.host();
    let cases: Vec<(&str, Vec<Vec<E>>, &str, Want)> = vec![
        (
            "from-registry-dotdot",
            vec![vec![file("ok", "ok"), file(format!("../../../../{s}"), "pwned")]],
            "FROM {img}\nRUN true\n",
            fails(&["`..` component"]),
        ),
        (
            "copy-from-registry-dotdot",
            vec![vec![file("../../../../tini", "#!/bin/sh\necho pwned\n"), file(format!("../../../../tmp/{s}"), "x")]],
            "FROM busybox\nCOPY --from={img} /tini /tini\n",
            fails(&["\"../../../../tini\"", "`..` component"]),
        ),
        (
            "from-registry-symlink-then-file",
            vec![vec![sym("esc", &out), file(format!("esc/{s}"), "pwned")]],
            "FROM {img}\n",
            fails(&["\"esc\" is a symlink"]),
        ),
        (
            "from-registry-hardlink-out",
            vec![vec![hard("h", "../../etc/passwd")]],
            "FROM {img}\n",
            fails(&["`..` component"]),
        ),
        (
            "from-registry-hardlink-out",
            vec![vec![hard("h", "/etc/shadow")]],
            "FROM {img}\n",
            fails(&["\"/etc/shadow\" does not exist"]),
        ),
    ];
    for (n, (id, layers, dockerfile, want)) in cases.iter().enumerate() {
        let c = case(id);
        let tars: Vec<Vec<u8>> = layers.iter().map(|l| tar(l)).collect();
        Crafted::of_tars(&tars).push(&reg, &arena.input(""), &format!("evil/n{n}"), Some("1"));
        arena.dockerfile(&dockerfile.replace("{img}", &format!("{host}/evil/n{n}:1")));
        let ran = arena.build(&[]);
        judge(&arena, c, &ran, want);
    }
}

/// Layer 1 has `esc -> OUTSIDE`, layer 2 `esc/pwned` (no directory entry). Each layer alone
/// is fine, so the pull succeeds; a local output applies them in order onto one directory,
/// where `esc` is then a symlink: it must refuse to write through it.
#[test]
fn a_symlink_of_one_layer_does_not_lead_the_next_out_of_a_local_output() {
    if !can_run("hostile two-layer symlink") {
        return;
    }
    let Some(reg) = start_registry() else {
        return;
    };
    let c = case("from-registry-two-layer-symlink");
    let arena = Arena::busybox();
    let s = arena.sentinel();
    let out = arena.outside().to_string_lossy().into_owned();
    let tars = [tar(&[sym("esc", &out)]), tar(&[file(format!("esc/{s}"), "pwned"), file("esc/secret", "overwritten")])];
    Crafted::of_tars(&tars).push(&reg, &arena.input(""), "evil/two", Some("1"));
    arena.dockerfile(&format!("FROM {}/evil/two:1\n", reg.host()));
    let dest = format!("type=local,dest={}", arena.out("two").display());
    let ran = arena.build(&["-o", &dest]);
    ran.failed_with(&["\"esc\" is a symlink"]);
    arena.assert_confined(c, &[&ran]);
}

/// An OCI layout given as a named context, whose layer has `..` entries.
#[test]
fn an_oci_layout_context_with_dotdot_entries_is_refused() {
    if !can_run("hostile OCI layout") {
        return;
    }
    let c = case("oci-layout-dotdot-entry");
    let arena = Arena::busybox();
    let s = arena.sentinel();
    let layout = arena.input("layout");
    Crafted::of_tars(&[tar(&[file(format!("../../../../../tmp/{s}"), "pwned")])]).write_layout(&layout);
    arena.dockerfile("FROM base\nRUN true\n");
    let ctx = format!("base=oci-layout://{}", layout.display());
    let ran = arena.build(&["--build-context", &ctx]);
    ran.failed_with(&["`..` component"]);
    arena.assert_confined(c, &[&ran]);
    arena.assert_no_leftovers(c);
}

/// An OCI layout whose layer digest climbs out of the layout: the layer must not be read from
/// wherever the digest points (the canary's secret, here, with a diff id that matches it).
#[test]
#[ignore = "defect: store/oci_import.rs opens blobs/sha256/<anything> for a layer digest, reading files outside the layout (and storing them when the diff id matches); see CASES oci-layout-digest-traversal"]
fn an_oci_layout_layer_digest_cannot_leave_the_layout() {
    if !can_run("hostile OCI layout digest") {
        return;
    }
    let c = case("oci-layout-digest-traversal");
    let arena = Arena::busybox();
    let layout = arena.input("layout");
    // The layer "is" the canary's secret, as the attacker guessed it: its diff id matches.
    let secret = std::fs::read(arena.outside().join("secret")).unwrap();
    let crafted = Crafted {
        config: config_json(&[sha256(&secret)]),
        layers: vec![],
    };
    crafted.write_layout(&layout);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": Crafted::descriptor(OCI_CONFIG, &crafted.config),
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": "sha256:../../../../outside/secret", "size": secret.len()}],
    }))
    .unwrap();
    crafted.write_index(&layout, &manifest);
    arena.dockerfile("FROM base\nRUN true\n");
    let ctx = format!("base=oci-layout://{}", layout.display());
    let ran = arena.build(&["--build-context", &ctx]);
    ran.failed_with(&["sha256:../../../../outside/secret"]);
    arena.assert_confined(c, &[&ran]);
}

// ---------------------------------------------------------------------------------------------
// The build context and the Dockerfile
// ---------------------------------------------------------------------------------------------

/// COPY sources resolve inside the context: a symlink to /etc/passwd is the context's own
/// etc/passwd, and symlinks or `..` that point out of it find nothing.
#[test]
fn copy_sources_stay_in_the_context() {
    if !can_run("hostile COPY sources") {
        return;
    }
    let arena = Arena::busybox();
    let ctx = arena.ctx();
    let out = arena.outside();
    testkit::files::write(&ctx.join("etc/passwd"), "ctx-passwd\n");
    symlink("/etc/passwd", ctx.join("passwd-link")).unwrap();
    symlink(out.join("secret"), ctx.join("secret-link")).unwrap();
    symlink(&out, ctx.join("outside-dir")).unwrap();
    symlink("../outside", ctx.join("outside-rel")).unwrap();
    let cases: Vec<(&str, &str, Want)> = vec![
        ("copy-context-symlink-etc-passwd", "COPY passwd-link /got\n", {
            let got = arena.out("0").join("got");
            Want::Succeeds(Box::new(move |_| {
                assert_eq!(std::fs::read_to_string(&got).unwrap(), "ctx-passwd\n");
            }))
        }),
        ("copy-context-symlink-outside", "COPY secret-link /got\n", fails(&["\"/secret-link\": not found"])),
        ("copy-dotdot-outside", "COPY ../outside/secret /got\n", fails(&["\"/outside/secret\": not found"])),
        ("copy-dotdot-outside", "COPY ../../../../outside /got/\n", fails(&["\"/outside\": not found"])),
        ("copy-symlinked-dir-outside", "COPY outside-dir/ /got/\n", fails(&["\"/outside-dir\": not found"])),
        ("copy-symlinked-dir-outside", "COPY outside-dir/secret /got\n", fails(&["\"/outside-dir/secret\": not found"])),
        ("copy-symlinked-dir-outside", "COPY outside-rel/secret /got\n", fails(&["\"/outside-rel/secret\": not found"])),
    ];
    for (n, (id, copy, want)) in cases.iter().enumerate() {
        let c = case(id);
        arena.dockerfile(&format!("FROM busybox\n{copy}"));
        let dest = format!("type=local,dest={}", arena.out(&n.to_string()).display());
        let ran = arena.build(&["-o", &dest]);
        judge(&arena, c, &ran, want);
    }
}

/// The names in `dir`, sorted, without `Dockerfile` (what a listing of the context shows).
fn context_names(dir: &Path) -> String {
    let mut names = testkit::files::list_dir(dir);
    names.sort();
    names.join("\n") + "\n"
}

/// Bind mounts of the context: `source=../` is the context root (BuildKit cleans the path)
/// and never its parent; `source=/,rw` (buildah CVE-2024-1753) is the context, never the
/// host's root, and its writes reach neither.
#[test]
fn bind_mounts_never_reach_above_the_context() {
    if !can_run("hostile bind mounts") {
        return;
    }
    let arena = Arena::busybox();
    let s = arena.sentinel();
    std::fs::write(arena.ctx().join("a.txt"), "a\n").unwrap();
    arena.dockerfile(
        "FROM busybox\nRUN --mount=type=bind,source=../,target=/x ls /x > /listing\n",
    );
    let dest = arena.out("dotdot");
    let ran = arena.build(&["-o", &format!("type=local,dest={}", dest.display())]);
    judge(&arena, case("bind-source-dotdot"), &ran, &Want::Succeeds(Box::new(|_| {})));
    assert_eq!(testkit::files::read(&dest.join("listing")), context_names(&arena.ctx()));

    arena.dockerfile(&format!(
        "FROM busybox\nRUN --mount=type=bind,source=/,target=/host,rw sh -c \
         'ls /host > /listing; echo pwned > /host/{s}; echo pwned > /host/a.txt; \
          cat /host/etc/shadow /host/../outside/secret > /read 2>/dev/null; true'\n"
    ));
    let listed = context_names(&arena.ctx());
    let dest = arena.out("root-rw");
    let ran = arena.build(&["-o", &format!("type=local,dest={}", dest.display())]);
    judge(&arena, case("bind-source-root-rw"), &ran, &Want::Succeeds(Box::new(|_| {})));
    assert_eq!(testkit::files::read(&dest.join("listing")), listed);
    assert_eq!(testkit::files::read(&dest.join("read")), "");
    // The writes went to a throwaway tree: the context is as it was.
    assert_eq!(testkit::files::read(&arena.ctx().join("a.txt")), "a\n");
    assert!(!arena.ctx().join(&s).exists());
}

/// Cache mount ids and sources cannot traverse (buildah CVE-2024-9675): an id is a name,
/// whatever its slashes and dots, and a `source=` path stays in the (empty or seeded) cache.
#[test]
fn cache_mount_ids_and_sources_cannot_traverse() {
    if !can_run("hostile cache mounts") {
        return;
    }
    let arena = Arena::busybox();
    let s = arena.sentinel();
    arena.dockerfile(&format!(
        "FROM busybox\n\
         RUN --mount=type=cache,id=../../outside,target=/c sh -c 'echo pwned > /c/{s}; echo x > /c/secret; ls -A /c > /c1'\n\
         RUN --mount=type=cache,id=../../../../../../../../etc,target=/c sh -c 'echo pwned > /c/{s}'\n\
         RUN --mount=type=cache,id=/tmp,target=/c sh -c 'echo pwned > /c/{s}'\n"
    ));
    let dest = arena.out("id");
    let ran = arena.build(&["-o", &format!("type=local,dest={}", dest.display())]);
    let c = case("cache-id-traversal");
    judge(&arena, c, &ran, &Want::Succeeds(Box::new(|_| {})));
    // Where the writes went: caches under the store.
    let caches = find_named(&arena.root().join("cache-mounts"), &s);
    assert_eq!(caches.len(), 3, "{caches:?}");
    assert_eq!(testkit::files::read(&dest.join("c1")), format!("{s}\nsecret\n"));

    arena.dockerfile(&format!(
        "FROM busybox AS seed\nRUN echo seeded > /seedfile\n\
         FROM busybox\n\
         RUN --mount=type=cache,source=../../../../..,target=/c sh -c 'ls -A /c > /fresh; echo pwned > /c/{s}'\n\
         RUN --mount=type=cache,id=seeded,from=seed,source=../../../../..,target=/c sh -c 'ls -A /c > /seeded'\n"
    ));
    let dest = arena.out("source");
    let ran = arena.build(&["-o", &format!("type=local,dest={}", dest.display())]);
    let c = case("cache-source-traversal");
    judge(&arena, c, &ran, &Want::Succeeds(Box::new(|_| {})));
    assert_eq!(testkit::files::read(&dest.join("fresh")), "");
    let seeded = testkit::files::read(&dest.join("seeded"));
    assert!(seeded.lines().any(|l| l == "seedfile") && seeded.lines().any(|l| l == "bin"), "{seeded}");
    // The stage's root, not the host's.
    assert!(!seeded.lines().any(|l| l == "work" || l == "boot" || l == "usr"), "{seeded}");
}

/// runc CVE-2024-21626 ("Leaky Vessels"): a working directory of /proc/self/fd/N would be a
/// directory runc leaked from the host. The step must not start there, and whatever it runs
/// must not read the host's files through it; an ordinary step holds no fd to a host path.
#[test]
fn workdir_proc_self_fd_does_not_reach_the_host() {
    if !can_run("runc CVE-2024-21626") {
        return;
    }
    let c = case("workdir-proc-self-fd");
    let arena = Arena::busybox();
    let secret = arena.outside().join("secret");
    let up = format!("../../../../../../../..{}", secret.display());
    let mut printed = Vec::new();
    for fd in 3..=8 {
        arena.dockerfile(&format!(
            "FROM busybox\nWORKDIR /proc/self/fd/{fd}\nRUN cat {up}; cat {}; ls -la .\n",
            secret.display()
        ));
        let ran = arena.build(&[]);
        // runc refuses to start the process (or the cat finds nothing): never the secret.
        ran.failed_with(&[&format!("/proc/self/fd/{fd}")]);
        printed.push(ran);
    }
    // A plain step's open descriptors: pipes and the null device, never a host directory.
    arena.dockerfile("FROM busybox\nRUN ls -l /proc/self/fd/ | cat > /fds\n");
    let dest = arena.out("fds");
    let ran = arena.build(&["--no-cache", "-o", &format!("type=local,dest={}", dest.display())]);
    ran.succeeded();
    let fds = testkit::files::read(&dest.join("fds"));
    for line in fds.lines().filter(|l| l.contains("->")) {
        let target = line.rsplit("-> ").next().unwrap();
        let fine = target.starts_with("pipe:")
            || target.starts_with("socket:")
            || target.starts_with("anon_inode:")
            || target == "/dev/null"
            || target.starts_with("/proc/");
        assert!(fine, "a step holds {target}:\n{fds}");
    }
    printed.push(ran);
    let refs: Vec<&Ran> = printed.iter().collect();
    arena.assert_confined(c, &refs);
}

/// runc CVE-2024-21626 through `pallet run -w`.
#[test]
fn run_workdir_proc_self_fd_does_not_reach_the_host() {
    if !can_run("runc CVE-2024-21626 in pallet run") {
        return;
    }
    let c = case("run-workdir-proc-self-fd");
    let arena = Arena::busybox();
    let secret = arena.outside().join("secret");
    let up = format!("../../../../../../../..{}", secret.display());
    let mut printed = Vec::new();
    for fd in 3..=8 {
        let ran = run(&arena.pallet().args([
            "run",
            "-w",
            &format!("/proc/self/fd/{fd}"),
            "busybox",
            "cat",
            &up,
        ]));
        assert_ne!(ran.code, Some(0), "{}", ran.show());
        assert!(ran.code.is_some() && ran.code != Some(101), "{}", ran.show());
        printed.push(ran);
    }
    let refs: Vec<&Ran> = printed.iter().collect();
    arena.assert_confined(c, &refs);
}

/// BuildKit CVE-2024-23652: a mount whose target runs through a symlink in the image that
/// points at a host path. The mount points are made, and removed after the step, inside the
/// container's root: the host path is untouched.
#[test]
fn a_mount_target_through_an_image_symlink_leaves_the_host_alone() {
    if !can_run("BuildKit CVE-2024-23652") {
        return;
    }
    let c = case("mount-target-symlink-out");
    let arena = Arena::busybox();
    let (out, s) = (arena.outside(), arena.sentinel());
    arena.dockerfile(&format!(
        "FROM busybox\nRUN ln -s {out} /victim && ln -s {out}/secret /victim-file\n\
         RUN --mount=type=tmpfs,target=/victim/secret \
             --mount=type=cache,target=/victim/empty \
             --mount=type=bind,target=/victim/{s} \
             sh -c 'ls /victim/ /victim/{s} > /dev/null; true'\n\
         RUN ls -la /victim/ > /after 2>&1; true\n",
        out = out.display()
    ));
    let dest = arena.out("after");
    let ran = arena.build(&["-o", &format!("type=local,dest={}", dest.display())]);
    judge(&arena, c, &ran, &Want::Succeeds(Box::new(|_| {})));
    // A file mounted onto a symlink to a host file: runc makes the mount point inside the
    // root, or refuses; either way the host file stays.
    arena.dockerfile(&format!(
        "FROM busybox\nRUN ln -s {out}/secret /victim-file\n\
         RUN --mount=type=bind,source=Dockerfile,target=/victim-file cat /victim-file > /dev/null\n",
        out = out.display()
    ));
    let ran = arena.build(&[]);
    assert!(ran.code == Some(0) || ran.code == Some(1), "{}", ran.show());
    if ran.code == Some(1) {
        ran.failed_with(&["/victim-file"]);
    }
    arena.assert_confined(c, &[&ran]);
    arena.assert_no_leftovers(c);
}

/// BuildKit CVE-2024-23651 analog: a cache mount holds a symlink to a host path; later steps
/// write through it and mount below it. Inside the container the link resolves in the
/// container's root; nothing reaches the host.
#[test]
fn a_symlink_in_a_cache_mount_does_not_lead_out() {
    if !can_run("BuildKit CVE-2024-23651 analog") {
        return;
    }
    let c = case("cache-mount-symlink-out");
    let arena = Arena::busybox();
    let (out, s) = (arena.outside(), arena.sentinel());
    arena.dockerfile(&format!(
        "FROM busybox\n\
         RUN --mount=type=cache,id=c,target=/c ln -sfn {out} /c/link && ln -sfn {out}/empty /c/elink\n\
         RUN --mount=type=cache,id=c,target=/c sh -c 'echo pwned > /c/link/{s}; echo x > /c/link/secret; cat /c/link/secret; true'\n\
         RUN --mount=type=cache,id=c,target=/c --mount=type=tmpfs,target=/c/elink/t sh -c 'echo in > /c/elink/t/f; true'\n\
         RUN --mount=type=cache,id=c,target=/c --mount=type=cache,id=d,target=/c/link/d sh -c 'echo pwned > /c/link/d/{s}; true'\n",
        out = out.display()
    ));
    let ran = arena.build(&[]);
    judge(&arena, c, &ran, &Want::Succeeds(Box::new(|_| {})));
}

// ---------------------------------------------------------------------------------------------
// Registries that serve what an attacker wants
// ---------------------------------------------------------------------------------------------

/// A crafted answer for `GET /v2/REPO/manifests/REF` of a front.
fn manifest_rule(repo: &str, reference: &str, media_type: &str, body: Vec<u8>) -> Rule {
    Rule::get(
        &format!("/v2/{repo}/manifests/{reference}"),
        Answer::manifest(media_type, body),
    )
}

/// A manifest over `config` and `layers` (descriptors as JSON values).
fn manifest_json(config: serde_json::Value, layers: Vec<serde_json::Value>) -> serde_json::Value {
    serde_json::json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": layers})
}

/// One hostile registry answer, pulled with `pallet pull`: the real registry holds `image`'s
/// blobs under `evil/ID`, the front serves `manifest` (and `extra` rules) for it. Returns the
/// run and the front (its request log).
struct Pulled {
    ran: Ran,
    front: Front,
}

fn pull_through_front(
    arena: &Arena,
    reg: &Registry,
    id: &str,
    image: &Crafted,
    manifest: (&str, Vec<u8>),
    extra: Vec<Rule>,
) -> Pulled {
    let repo = format!("evil/{id}");
    image.push(reg, &arena.input(""), &repo, None);
    let mut rules = vec![manifest_rule(&repo, "1", manifest.0, manifest.1)];
    rules.extend(extra);
    let front = Front::start(&reg.host(), rules);
    let ran = run(&arena.pallet().args(["pull", &format!("{}/{repo}:1", front.host())]));
    Pulled { ran, front }
}

/// A small image of one real layer (a file named after the case).
fn small_image(id: &str) -> Crafted {
    Crafted::of_tars(&[tar(&[file(format!("from-{id}"), id)])])
}

/// The store has no image whose name contains `needle`.
fn no_image(arena: &Arena, needle: &str) {
    let ran = run(&arena.pallet().arg("images"));
    ran.succeeded();
    assert!(!ran.out().contains(needle), "{}", ran.show());
}

#[test]
fn hostile_manifests_and_configs_are_refused() {
    if !can_run("hostile registry answers") {
        return;
    }
    let Some(reg) = start_registry() else {
        return;
    };
    let arena = Arena::empty();
    let img = |id: &str| small_image(id);

    // Not JSON at all.
    let i = img("json");
    let body = br#"{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "layers": [{"#.to_vec();
    let p = pull_through_front(&arena, &reg, "json", &i, (OCI_MANIFEST, body), vec![]);
    p.ran.failed_with(&["invalid manifest"]);
    assert!(!p.front.saw("/blobs/"), "{:#?}", p.front.lines());
    arena.assert_confined(case("reg-invalid-json"), &[&p.ran]);

    // A layer digest that climbs: refused before any request uses it (issue 13, defect 8).
    let i = img("traversal");
    let m = manifest_json(
        Crafted::descriptor(OCI_CONFIG, &i.config),
        vec![serde_json::json!({"mediaType": OCI_LAYER_GZIP, "digest": "sha256:../../../../tmp/x", "size": 10})],
    );
    let p = pull_through_front(&arena, &reg, "traversal", &i, (OCI_MANIFEST, serde_json::to_vec(&m).unwrap()), vec![]);
    p.ran.failed_with(&["sha256:../../../../tmp/x"]);
    for r in p.front.lines() {
        assert!(!r.contains("..") && !r.contains("tmp/x") && !r.contains("%2E"), "{r}");
        assert!(!r.contains("/blobs/"), "a blob was requested: {:#?}", p.front.lines());
    }
    arena.assert_confined(case("reg-digest-traversal"), &[&p.ran]);

    // A config whose diff ids are not its layers'.
    let mut i = img("diffid");
    i.config = config_json(&[sha256(b"not this layer")]);
    let m = i.manifest();
    let p = pull_through_front(&arena, &reg, "diffid", &i, (OCI_MANIFEST, m), vec![]);
    p.ran.failed_with(&["does not match its diff id"]);
    no_image(&arena, "diffid");
    arena.assert_confined(case("reg-diffid-mismatch"), &[&p.ran]);
    arena.assert_no_leftovers(case("reg-diffid-mismatch"));

    // A diff id that climbs from the store's snapshots to the canary.
    let mut i = img("diffid-climb");
    i.config = config_json(&["sha256:../../outside/empty".to_string()]);
    let m = i.manifest();
    let p = pull_through_front(&arena, &reg, "diffid-climb", &i, (OCI_MANIFEST, m), vec![]);
    p.ran.failed_with(&["sha256:../../outside/empty"]);
    no_image(&arena, "diffid-climb");
    arena.assert_confined(case("reg-diffid-traversal"), &[&p.ran]);
    arena.assert_no_leftovers(case("reg-diffid-traversal"));

    // A layer blob that is not what its digest says (same size, other bytes).
    let i = img("tampered");
    let (digest, layer) = (sha256(&i.layers[0].1), &i.layers[0].1);
    let mut other = layer.clone();
    other.reverse();
    let blob_rule = Rule::get(&format!("/v2/evil/tampered/blobs/{digest}"), Answer::blob(other));
    let p = pull_through_front(&arena, &reg, "tampered", &i, (OCI_MANIFEST, i.manifest()), vec![blob_rule]);
    p.ran.failed_with(&[&digest]);
    no_image(&arena, "tampered");
    let hex = &digest["sha256:".len()..];
    assert!(!arena.root().join("blobs/sha256").join(hex).exists());
    arena.assert_confined(case("reg-blob-digest-mismatch"), &[&p.ran]);
    arena.assert_no_leftovers(case("reg-blob-digest-mismatch"));

    // A layer media type no one knows.
    let mut i = img("mediatype");
    i.layers[0].0 = "application/vnd.evil.layer.v1+exe".into();
    let p = pull_through_front(&arena, &reg, "mediatype", &i, (OCI_MANIFEST, i.manifest()), vec![]);
    p.ran.failed_with(&["application/vnd.evil.layer.v1+exe"]);
    no_image(&arena, "mediatype");
    arena.assert_confined(case("reg-unknown-media-type"), &[&p.ran]);
    arena.assert_no_leftovers(case("reg-unknown-media-type"));

}

/// A manifest whose config descriptor says 1 TiB (the blob is a few hundred bytes): a clear
/// error or the real config, never an allocation of what the manifest claims.
#[test]
#[ignore = "defect: registry::pull::resolve allocates Vec::with_capacity(config.size) from the manifest: 'memory allocation of 1099511627776 bytes failed', SIGABRT; see CASES reg-config-size-lie"]
fn a_config_size_lie_is_not_allocated() {
    if !can_run("hostile config size") {
        return;
    }
    let Some(reg) = start_registry() else {
        return;
    };
    let arena = Arena::empty();
    let i = small_image("cfgsize");
    let mut config = Crafted::descriptor(OCI_CONFIG, &i.config);
    config["size"] = serde_json::json!(1u64 << 40);
    let layers = vec![Crafted::descriptor(OCI_LAYER_GZIP, &i.layers[0].1)];
    let m = serde_json::to_vec(&manifest_json(config, layers)).unwrap();
    let p = pull_through_front(&arena, &reg, "cfgsize", &i, (OCI_MANIFEST, m), vec![]);
    p.ran.failed_with(&["config"]);
    assert!(p.ran.max_rss_mib < 512, "{}", p.ran.show());
    arena.assert_confined(case("reg-config-size-lie"), &[&p.ran]);
}

/// A 9 MiB manifest (the cap is 8 MiB): refused before any blob is requested, with memory
/// bounded, and for what it is.
#[test]
#[ignore = "defect: the 8 MiB manifest cap is reported as 'the registry is not reachable ... check the host name and port, proxy settings and that the registry is running' (issue 13, point 9 names exactly this); see CASES reg-oversized-manifest"]
fn an_oversized_manifest_is_refused_for_what_it_is() {
    if !can_run("hostile oversized manifest") {
        return;
    }
    let Some(reg) = start_registry() else {
        return;
    };
    let arena = Arena::empty();
    let i = small_image("big");
    let mut m = serde_json::from_slice::<serde_json::Value>(&i.manifest()).unwrap();
    m["annotations"] = serde_json::json!({"pad": "x".repeat(9 << 20)});
    let p = pull_through_front(&arena, &reg, "big", &i, (OCI_MANIFEST, serde_json::to_vec(&m).unwrap()), vec![]);
    assert!(!p.front.saw("/blobs/"), "{:#?}", p.front.lines());
    assert!(p.ran.max_rss_mib < 512, "{}", p.ran.show());
    arena.assert_confined(case("reg-oversized-manifest"), &[&p.ran]);
    p.ran.failed_with(&["manifest", "8 MiB"]);
    assert!(!p.ran.err().contains("not reachable"), "{}", p.ran.show());
}

/// Indexes that loop or nest: a bounded number of requests and a clear error.
#[test]
fn hostile_indexes_end_quickly() {
    if !can_run("hostile registry indexes") {
        return;
    }
    let Some(reg) = start_registry() else {
        return;
    };
    let arena = Arena::empty();
    let platform = serde_json::json!({"os": "linux", "architecture": arch()});

    // An index that lists itself: served at its tag and at the digest it names.
    let i = small_image("loop");
    let named = sha256(b"the index itself");
    let index = serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_INDEX, "digest": named, "size": 300, "platform": platform}]}))
    .unwrap();
    let again = manifest_rule("evil/loop", &named, OCI_INDEX, index.clone());
    let p = pull_through_front(&arena, &reg, "loop", &i, (OCI_INDEX, index), vec![again]);
    p.ran.failed_with(&[&named]);
    let gets = p.front.lines().iter().filter(|l| l.contains("/manifests/")).count();
    assert!(gets <= 4, "{:#?}", p.front.lines());
    arena.assert_confined(case("reg-index-self-loop"), &[&p.ran]);

    // An index nested 100 deep over a real manifest, each level served at its digest.
    let i = small_image("nested");
    let manifest = i.manifest();
    let mut rules = vec![manifest_rule("evil/nested", &sha256(&manifest), OCI_MANIFEST, manifest.clone())];
    let (mut below, mut below_type) = (manifest, OCI_MANIFEST);
    for _ in 0..100 {
        let index = serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX,
            "manifests": [{"mediaType": below_type, "digest": sha256(&below), "size": below.len(), "platform": platform}]}))
        .unwrap();
        rules.push(manifest_rule("evil/nested", &sha256(&index), OCI_INDEX, index.clone()));
        (below, below_type) = (index, OCI_INDEX);
    }
    let p = pull_through_front(&arena, &reg, "nested", &i, (OCI_INDEX, below), rules);
    p.ran.failed_with(&["not an image manifest"]);
    let gets = p.front.lines().iter().filter(|l| l.contains("/manifests/")).count();
    assert!(gets <= 4, "{:#?}", p.front.lines());
    arena.assert_confined(case("reg-index-nested"), &[&p.ran]);
}

/// A foreign (non-distributable) layer whose `urls` point elsewhere: pallet takes blobs from
/// the registry by digest only, never from a URL a manifest names (no request forgery).
#[test]
fn foreign_layer_urls_are_never_fetched() {
    if !can_run("hostile foreign layer urls") {
        return;
    }
    let Some(reg) = start_registry() else {
        return;
    };
    let c = case("reg-foreign-urls");
    let arena = Arena::empty();
    let i = small_image("foreign");
    let repo = "evil/foreign";
    i.push(&reg, &arena.input(""), repo, None);
    // The front is also where the URL points: its log shows whether anything went there.
    let witness = Front::start(&reg.host(), vec![]);
    let mut layer = Crafted::descriptor("application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", &i.layers[0].1);
    layer["urls"] = serde_json::json!([format!("http://{}/ssrf-{}", witness.host(), arena.mark)]);
    let m = serde_json::to_vec(&manifest_json(Crafted::descriptor(OCI_CONFIG, &i.config), vec![layer])).unwrap();
    let front = Front::start(&reg.host(), vec![manifest_rule(repo, "1", OCI_MANIFEST, m)]);
    let ran = run(&arena.pallet().args(["pull", &format!("{}/{repo}:1", front.host())]));
    assert!(ran.code == Some(0) || ran.code == Some(1), "{}", ran.show());
    if ran.code == Some(1) {
        ran.failed_with(&[]);
    }
    assert!(witness.requests().is_empty(), "{:#?}", witness.lines());
    assert!(!front.saw("ssrf-"), "{:#?}", front.lines());
    arena.assert_confined(c, &[&ran]);
}

/// A 12 MiB config (one huge label): pulled or refused, with memory bounded.
#[test]
fn a_huge_config_is_handled() {
    if !can_run("hostile huge config") {
        return;
    }
    let Some(reg) = start_registry() else {
        return;
    };
    let c = case("reg-huge-config");
    let arena = Arena::empty();
    let mut i = small_image("hugecfg");
    let layer_tar = tar(&[file("from-hugecfg", "hugecfg")]);
    i.config = serde_json::to_vec(&serde_json::json!({
        "architecture": arch(), "os": "linux",
        "config": {"Labels": {"pad": "y".repeat(12 << 20)}},
        "rootfs": {"type": "layers", "diff_ids": [sha256(&layer_tar)]},
    }))
    .unwrap();
    i.push(&reg, &arena.input(""), "evil/hugecfg", Some("1"));
    let ran = run_bounded(
        &arena.pallet().args(["pull", &format!("{}/evil/hugecfg:1", reg.host())]),
        Duration::from_secs(60),
        Some(4 << 30),
    );
    assert!(ran.code == Some(0) || ran.code == Some(1), "{}", ran.show());
    if ran.code == Some(1) {
        ran.failed_with(&["config"]);
    }
    assert!(ran.max_rss_mib < 512, "{}", ran.show());
    arena.assert_confined(c, &[&ran]);
}
