//! The kit of the hostile suite: pallet run with a deadline and its peak memory ([`Ran`]), the
//! arena of one case (a store, contexts, outputs and the canary beside them: [`Arena`]), tars
//! crafted byte by byte ([`tar`]), and what a case must end with ([`Want`], [`judge`]).

use super::Case;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use testkit::files::{all_files, file_contains, list_dir_if_exists};
use testkit::{pallet, require, text, Need::*, Pallet, Store};

// ---------------------------------------------------------------------------------------------
// Running pallet with a deadline
// ---------------------------------------------------------------------------------------------

/// How one pallet run ended.
pub struct Ran {
    pub what: String,
    /// The exit code, or None when a signal ended it.
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub secs: f64,
    /// Peak resident memory of pallet itself, in MiB.
    pub max_rss_mib: u64,
}

impl Ran {
    pub fn out(&self) -> String {
        text(&self.stdout)
    }
    pub fn err(&self) -> String {
        text(&self.stderr)
    }
    pub fn printed(&self) -> String {
        format!("{}{}", self.out(), self.err())
    }

    /// A shortened account for assertion messages (stderr can be large by mistake).
    pub fn show(&self) -> String {
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
    pub fn succeeded(&self) -> &Ran {
        assert_eq!(self.code, Some(0), "must succeed: {}", self.show());
        self
    }

    /// The clear error: exit code 1 (not 101, not a signal), `error:` and every needle in
    /// stderr, no panic, and a stderr that stays small.
    pub fn failed_with(&self, needles: &[&str]) -> &Ran {
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
pub fn run_bounded(p: &Pallet, limit: Duration, address_space: Option<u64>) -> Ran {
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
    // Reaped by the wait4 loop below (which also reads its peak memory), or killed and
    // waited for past the deadline.
    #[allow(clippy::zombie_processes)]
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
pub fn run(p: &Pallet) -> Ran {
    run_bounded(p, Duration::from_secs(60), None)
}

// ---------------------------------------------------------------------------------------------
// The arena: a store, contexts, outputs and the canary beside them
// ---------------------------------------------------------------------------------------------

/// A random hex string (time, pid and a counter through sha256): canary values and marks.
pub fn random_hex(what: &str) -> String {
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
pub struct Arena {
    pub store: Store,
    pub secret: String,
    pub mark: String,
    pub baseline: testkit::tree::Tree,
}

impl Arena {
    /// A store with busybox:latest imported.
    pub fn busybox() -> Arena {
        Arena::with(Store::busybox(pallet!()))
    }

    /// A store with nothing in it yet.
    pub fn empty() -> Arena {
        Arena::with(Store::empty(pallet!()))
    }

    pub fn with(store: Store) -> Arena {
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

    pub fn dir(&self) -> &Path {
        self.store.dir()
    }

    pub fn root(&self) -> &Path {
        self.store.root()
    }

    /// The main build context, `T/ctx` (its `..` is T, where `outside/` is).
    pub fn ctx(&self) -> PathBuf {
        self.dir().join("ctx")
    }

    /// `T/outside`, the canary directory.
    pub fn outside(&self) -> PathBuf {
        self.dir().join("outside")
    }

    /// `T/in/NAME`, for inputs.
    pub fn input(&self, name: &str) -> PathBuf {
        self.dir().join("in").join(name)
    }

    /// `T/out-NAME`, for outputs.
    pub fn out(&self, name: &str) -> PathBuf {
        self.dir().join(format!("out-{name}"))
    }

    /// `pallet-hostile-MARK`: the name hostile entries try to create on the host.
    pub fn sentinel(&self) -> String {
        format!("pallet-hostile-{}", self.mark)
    }

    /// The host paths hostile entries aim at.
    pub fn host_targets(&self) -> Vec<PathBuf> {
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
    pub fn pallet(&self) -> Pallet {
        self.store
            .pallet()
            .env("DOCKER_CONFIG", self.input("docker"))
            .env("PALLET_CONFIG", self.input("pallet-config.json"))
    }

    /// Writes the Dockerfile (and files) of the main context.
    pub fn dockerfile(&self, text: &str) {
        std::fs::write(self.ctx().join("Dockerfile"), text).unwrap();
    }

    /// `pallet build --progress plain ARGS... CTX` with a deadline.
    pub fn build(&self, args: &[&str]) -> Ran {
        run(&self
            .pallet()
            .args(["build", "--progress", "plain"])
            .args(args)
            .arg(self.ctx()))
    }

    /// The second assertion of every case: nothing written or read outside where it may be.
    /// `printed` is what the case's runs printed.
    pub fn assert_confined(&self, c: &Case, printed: &[&Ran]) {
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
    pub fn assert_no_leftovers(&self, c: &Case) {
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
pub enum E {
    File(Vec<u8>, Vec<u8>),
    Dir(Vec<u8>),
    Sym(Vec<u8>, Vec<u8>),
    Hard(Vec<u8>, Vec<u8>),
    Char(Vec<u8>, u32, u32),
    Block(Vec<u8>, u32, u32),
    Fifo(Vec<u8>),
}

pub fn file(name: impl AsRef<[u8]>, data: impl AsRef<[u8]>) -> E {
    E::File(name.as_ref().to_vec(), data.as_ref().to_vec())
}
pub fn dir(name: impl AsRef<[u8]>) -> E {
    E::Dir(name.as_ref().to_vec())
}
pub fn sym(name: impl AsRef<[u8]>, target: impl AsRef<[u8]>) -> E {
    E::Sym(name.as_ref().to_vec(), target.as_ref().to_vec())
}
pub fn hard(name: impl AsRef<[u8]>, target: impl AsRef<[u8]>) -> E {
    E::Hard(name.as_ref().to_vec(), target.as_ref().to_vec())
}

/// A PAX extended-header record: `LEN key=value\n`, LEN counting itself.
pub fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
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
pub fn header(
    name: &[u8],
    kind: u8,
    size: u64,
    mode: u32,
    link: &[u8],
    dev: (u32, u32),
) -> [u8; 512] {
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

pub fn pad(out: &mut Vec<u8>) {
    while !out.len().is_multiple_of(512) {
        out.push(0);
    }
}

/// One entry's header fields: name, type flag, data, mode, link target, device numbers.
type Fields<'a> = (&'a [u8], u8, &'a [u8], u32, &'a [u8], (u32, u32));

/// The entries as an uncompressed tar; names or targets longer than 100 bytes, or holding a
/// NUL, go in a PAX header first.
pub fn tar(entries: &[E]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        let (name, kind, data, mode, link, devn): Fields = match e {
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
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

pub fn sha256(data: &[u8]) -> String {
    testkit::digest::sha256(data)
}

/// The snapshot files named `name` anywhere in the store.
pub fn find_named(dir: &Path, name: &str) -> Vec<PathBuf> {
    all_files(dir)
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n == name))
        .collect()
}

pub fn can_run(what: &str) -> bool {
    require(what, &[Root, Busybox, Tool("runc")])
}

// ---------------------------------------------------------------------------------------------

/// What a case must end with: a clear error saying all of these, or success and a check.
pub enum Want<'a> {
    Fails(Vec<String>),
    Succeeds(Box<dyn Fn(&Ran) + 'a>),
}

pub fn fails(needles: &[&str]) -> Want<'static> {
    Want::Fails(needles.iter().map(|s| s.to_string()).collect())
}

/// Checks one run against what its case wants, then the canary.
pub fn judge(arena: &Arena, c: &Case, ran: &Ran, want: &Want) {
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
pub fn busybox_plus(entries: &[E]) -> Vec<u8> {
    let mut base = testkit::busybox::Rootfs::new().tar();
    // The tar crate ends an archive with two zero blocks: drop them, append, end again.
    base.truncate(base.len() - 1024);
    base.extend(tar(entries));
    base
}

/// Major and minor of the block device the store lives on: a real host disk to aim at.
pub fn host_disk() -> (u32, u32) {
    use std::os::unix::fs::MetadataExt;
    let dev = std::fs::metadata("/").unwrap().dev();
    (libc::major(dev), libc::minor(dev))
}
