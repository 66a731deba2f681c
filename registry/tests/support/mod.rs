//! Test harness: a real registry (Debian's `docker-registry`, distribution v2.8) on 127.0.0.1,
//! in four configurations, plus a fault-injecting TCP proxy for retry tests. Uses std only, so
//! other crates' tests can include it:
//!
//! ```text
//! #[path = "../../registry/tests/support/mod.rs"]
//! mod support;
//!
//! let Some(reg) = support::Registry::start(support::Config::plain()) else { return };
//! // reg.host() = "127.0.0.1:PORT"; reg.url(); reg.ca_path() (TLS); reg.token_requests()
//! ```
//!
//! - `Config::plain()`: HTTP. `Config::tls()`: HTTPS with a CA and server certificate made here
//!   with the openssl CLI (SAN IP:127.0.0.1, DNS:localhost; `ca_path()` is the CA).
//!   `Config::htpasswd(user, pass)`: Basic auth (bcrypt file from `htpasswd -Bbn`).
//!   `Config::token(user, pass)`: bearer tokens from a small issuer in token.rs (a std
//!   `TcpListener` thread checking Basic credentials and answering `{"token": JWT}`; the JWT is
//!   RS256-signed with `openssl dgst`, its `x5c` header carrying the signing certificate that the
//!   registry trusts through `rootcertbundle`). Anonymous token requests get a token without
//!   access. The OAuth form (POST `grant_type=refresh_token`) accepts the password as refresh
//!   token, to exercise docker's identity tokens. `token_requests()` counts the token requests served.
//! - `Registry::start` returns None (after printing why) when a tool is missing, and panics
//!   instead when `CI=true`. The registry is killed and its directory removed on Drop.
//! - `FaultProxy::start(upstream, faults)`: a plain-TCP proxy that answers `500` or drops the
//!   connection (or cuts the answer after N bytes) for the first N requests matching a method
//!   and path substring, and forwards everything else (with `Connection: close`, so each
//!   request is seen).
//! - `TempDir`: a directory removed on Drop.
//!
//! Files: this one (tools, temp dirs, the registry process), `token.rs` (the issuer, HTTP head
//! parsing, base64), `proxy.rs` (the fault proxy).

#![allow(dead_code, unused_imports)]

mod proxy;
mod token;

pub use proxy::{proxy, Fault, FaultAction, FaultProxy};
pub use token::{base64, read_head, Head, TOKEN_ISSUER, TOKEN_SERVICE};

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use token::TokenServer;

/// True when every tool is on PATH. Missing: panics under `CI=true`, else prints and returns
/// false (the caller skips).
pub fn tools_available(tools: &[&str]) -> bool {
    let missing: Vec<&str> = tools.iter().copied().filter(|t| !on_path(t)).collect();
    if missing.is_empty() {
        return true;
    }
    let msg = format!(
        "missing {} (apt-get install docker-registry apache2-utils openssl, or scripts/ensure-tools.sh)",
        missing.join(", ")
    );
    if std::env::var("CI").map(|v| v == "true").unwrap_or(false) {
        panic!("{msg}");
    }
    eprintln!("skipping: {msg}");
    false
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false)
}

/// A directory under the system temp dir, removed on Drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let dir = std::env::temp_dir().join(format!(
            "{prefix}-{}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// How the registry authenticates and whether it speaks TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Config {
    Plain,
    Tls,
    Htpasswd { user: String, pass: String },
    Token { user: String, pass: String },
}

impl Config {
    pub fn plain() -> Config {
        Config::Plain
    }
    pub fn tls() -> Config {
        Config::Tls
    }
    pub fn htpasswd(user: &str, pass: &str) -> Config {
        Config::Htpasswd {
            user: user.into(),
            pass: pass.into(),
        }
    }
    pub fn token(user: &str, pass: &str) -> Config {
        Config::Token {
            user: user.into(),
            pass: pass.into(),
        }
    }
}

/// A running `docker-registry serve`.
pub struct Registry {
    child: Child,
    port: u16,
    config: Config,
    ca: Option<PathBuf>,
    token: Option<TokenServer>,
    dir: TempDir,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Runs a command, panicking with its stderr when it fails.
pub fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

impl Registry {
    /// Starts a registry; None (skip) when docker-registry/openssl/htpasswd are missing.
    pub fn start(config: Config) -> Option<Registry> {
        let mut tools = vec!["docker-registry"];
        match &config {
            Config::Plain => {}
            Config::Tls | Config::Token { .. } => tools.push("openssl"),
            Config::Htpasswd { .. } => tools.push("htpasswd"),
        }
        if !tools_available(&tools) {
            return None;
        }
        let dir = TempDir::new("pallet-registry-test");
        let d = dir.path();
        let port = free_port();
        let mut http = format!("  addr: 127.0.0.1:{port}\n  secret: pallet-test-secret\n");
        let mut auth = String::new();
        let mut ca = None;
        let mut token = None;
        match &config {
            Config::Plain => {}
            Config::Tls => {
                let pki = make_pki(d);
                http += &format!(
                    "  tls:\n    certificate: {}\n    key: {}\n",
                    pki.server_cert.display(),
                    pki.server_key.display()
                );
                ca = Some(pki.ca_cert);
            }
            Config::Htpasswd { user, pass } => {
                let line = run(Command::new("htpasswd").args(["-Bbn", user, pass]));
                std::fs::write(d.join("htpasswd"), line).unwrap();
                auth = format!(
                    "auth:\n  htpasswd:\n    realm: pallet-test\n    path: {}\n",
                    d.join("htpasswd").display()
                );
            }
            Config::Token { user, pass } => {
                let server = TokenServer::start(d, user, pass);
                auth = format!(
                    "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
                    server.realm(),
                    TOKEN_SERVICE,
                    TOKEN_ISSUER,
                    server.cert.display()
                );
                token = Some(server);
            }
        }
        let yml = format!(
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
             http:\n{http}{auth}",
            d.join("data").display()
        );
        std::fs::write(d.join("config.yml"), yml).unwrap();
        let log = std::fs::File::create(d.join("registry.log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(d.join("config.yml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start docker-registry");
        let mut reg = Registry {
            child,
            port,
            config,
            ca,
            token,
            dir,
        };
        reg.wait_ready();
        Some(reg)
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("docker-registry exited ({status}):\n{}", self.log());
            }
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
                if self.ca.is_some() {
                    return; // TLS: the listener is up once it accepts.
                }
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let _ = s.write_all(b"GET /v2/ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
                let mut buf = [0u8; 12];
                if s.read_exact(&mut buf).is_ok() && buf.starts_with(b"HTTP/1.") {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "registry not ready:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT` or `https://...`.
    pub fn url(&self) -> String {
        let scheme = if self.ca.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.host())
    }

    /// The CA that signed the TLS certificate (TLS configuration only).
    pub fn ca_path(&self) -> Option<&Path> {
        self.ca.as_deref()
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Token requests served by the token issuer (0 without token auth).
    pub fn token_requests(&self) -> usize {
        self.token
            .as_ref()
            .map(|t| t.count.load(Ordering::SeqCst))
            .unwrap_or(0)
    }

    /// A scratch directory that lives as long as the registry.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The registry's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Pki {
    ca_cert: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
}

/// A CA and a server certificate for 127.0.0.1/localhost (P-256 keys: fast to make).
fn make_pki(dir: &Path) -> Pki {
    let p = |n: &str| dir.join(n);
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    run(Command::new("openssl")
        .args(["req", "-x509"])
        .args(ec)
        .arg("-keyout")
        .arg(p("ca.key"))
        .arg("-out")
        .arg(p("ca.crt"))
        .args(["-days", "2", "-subj", "/CN=pallet test CA"])
        .args(["-addext", "basicConstraints=critical,CA:TRUE"])
        .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"]));
    run(Command::new("openssl")
        .arg("req")
        .args(ec)
        .arg("-keyout")
        .arg(p("server.key"))
        .arg("-out")
        .arg(p("server.csr"))
        .args(["-subj", "/CN=localhost"]));
    std::fs::write(
        p("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
         keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(Command::new("openssl")
        .args(["x509", "-req", "-in"])
        .arg(p("server.csr"))
        .arg("-CA")
        .arg(p("ca.crt"))
        .arg("-CAkey")
        .arg(p("ca.key"))
        .args(["-CAcreateserial", "-days", "2", "-extfile"])
        .arg(p("server.ext"))
        .arg("-out")
        .arg(p("server.crt")));
    Pki {
        ca_cert: p("ca.crt"),
        server_cert: p("server.crt"),
        server_key: p("server.key"),
    }
}
