//! A real registry for tests: Debian's `docker-registry` (distribution v2.8) on 127.0.0.1 and a
//! free port, in four configurations, plus a fault-injecting TCP proxy for retry tests.
//!
//! ```text
//! let Some(reg) = Registry::start(Config::plain()) else { return };
//! // reg.host() = "127.0.0.1:PORT"; reg.url(); reg.ca_path() (TLS); reg.token_requests()
//! ```
//!
//! - `Config::plain()`: HTTP. `Config::tls()`: HTTPS with a CA and a server certificate made
//!   here with the openssl CLI (SAN IP:127.0.0.1, DNS:localhost; `ca_path()` is the CA).
//!   `Config::self_signed()`: HTTPS with the certificate docker's documentation makes with one
//!   `openssl req -x509` line (CA:TRUE, self-signed, SAN IP:127.0.0.1; `ca_path()` is that
//!   certificate). `Config::client_cert()`: `tls()` plus a required client certificate
//!   (`http.tls.clientcas`); `client_cert()` gives a certificate and key it accepts.
//!   `Config::htpasswd(user, pass)`: Basic auth (bcrypt file from `htpasswd -Bbn`).
//!   `Config::token(user, pass)`: bearer tokens from the issuer in token.rs.
//!   `token_requests()` counts the token requests served.
//! - `Registry::start` returns None when a tool is missing, by the [gate](crate::gate) rule
//!   (a skip with a note; a failure under `CI=true`). The registry is killed and its directory
//!   removed on Drop.
//! - `FaultProxy::start(upstream, faults)`: a plain-TCP proxy that, for the first N requests
//!   matching a method and path substring, answers a 5xx or `429` with `Retry-After`, drops
//!   the connection, cuts the answer after N bytes, truncates its body under a `Content-Length`
//!   that lies, stalls (silent, held open), trickles it a byte a second or resets it after N
//!   body bytes, stalls or resets an upload after N bytes of its body, or forwards the request
//!   and never answers; it forwards everything else (with `Connection: close`, so each request
//!   is seen and logged, a TLS handshake as `TLS_HELLO`). `FaultProxy::start_on(ip, ...)`
//!   listens on another address of the machine (`non_loopback_ipv4()`), for a registry that is
//!   not on loopback.
//! - `Front::start(upstream, rules)`: a hostile front that answers chosen requests with bytes
//!   the test crafted (a manifest no registry would store, a redirect, a wrong blob), forwards
//!   the rest and logs every request with its headers.
//!
//! Files: this one (the registry process and its configuration), `pki.rs` (TLS material),
//! `token.rs` (the issuer), `proxy.rs` (the fault proxy), `front.rs` (the hostile front),
//! `http.rs` (request heads, base64).

mod front;
mod http;
mod pki;
mod proxy;
mod token;

pub use front::{Answer, Front, Rule, Seen};
pub use http::{base64, STD};
pub use proxy::{non_loopback_ipv4, proxy, Fault, FaultAction, FaultProxy, TLS_HELLO};
pub use token::{TOKEN_ISSUER, TOKEN_SERVICE};

use crate::gate::{require, Need};
use crate::net::free_port;
use crate::run::ok_bytes as run;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use token::TokenServer;

/// How the registry authenticates and whether it speaks TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Config {
    Plain,
    Tls,
    /// docker's documented self-signed certificate, with Basic auth when given.
    SelfSigned {
        htpasswd: Option<(String, String)>,
    },
    ClientCert,
    Htpasswd {
        user: String,
        pass: String,
    },
    Token {
        user: String,
        pass: String,
    },
}

impl Config {
    pub fn plain() -> Config {
        Config::Plain
    }
    pub fn tls() -> Config {
        Config::Tls
    }
    pub fn self_signed() -> Config {
        Config::SelfSigned { htpasswd: None }
    }
    /// [`Config::self_signed`] with Basic auth.
    pub fn self_signed_htpasswd(user: &str, pass: &str) -> Config {
        Config::SelfSigned {
            htpasswd: Some((user.into(), pass.into())),
        }
    }
    pub fn client_cert() -> Config {
        Config::ClientCert
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
    client: Option<(PathBuf, PathBuf)>,
    token: Option<TokenServer>,
    dir: tempfile::TempDir,
}

impl Registry {
    /// Starts a registry; None (skip) when docker-registry/openssl/htpasswd are missing.
    pub fn start(config: Config) -> Option<Registry> {
        let mut tools = vec!["docker-registry"];
        match &config {
            Config::Plain => {}
            Config::Tls | Config::SelfSigned { .. } | Config::ClientCert | Config::Token { .. } => {
                tools.push("openssl")
            }
            Config::Htpasswd { .. } => tools.push("htpasswd"),
        }
        if matches!(&config, Config::SelfSigned { htpasswd: Some(_) }) {
            tools.push("htpasswd");
        }
        let needs: Vec<Need> = tools.into_iter().map(Need::Tool).collect();
        if !require("a test with a real registry", &needs) {
            return None;
        }
        let dir = crate::files::temp_dir("pallet-registry-test");
        let d = dir.path();
        let port = free_port();
        let mut http = format!("  addr: 127.0.0.1:{port}\n  secret: pallet-test-secret\n");
        let mut auth = String::new();
        let mut ca = None;
        let mut client = None;
        let mut token = None;
        match &config {
            Config::Plain => {}
            Config::Tls => {
                let pki = pki::make_pki(d);
                http += &format!(
                    "  tls:\n    certificate: {}\n    key: {}\n",
                    pki.server_cert.display(),
                    pki.server_key.display()
                );
                ca = Some(pki.ca_cert);
            }
            Config::SelfSigned { htpasswd } => {
                let (cert, key) = pki::docker_documented(d);
                http += &format!(
                    "  tls:\n    certificate: {}\n    key: {}\n",
                    cert.display(),
                    key.display()
                );
                ca = Some(cert);
                if let Some((user, pass)) = htpasswd {
                    auth = htpasswd_auth(d, user, pass);
                }
            }
            Config::ClientCert => {
                let pki = pki::make_pki(d);
                let (client_ca, cert, key) = pki::client_pki(d);
                http += &format!(
                    "  tls:\n    certificate: {}\n    key: {}\n    clientcas:\n      - {}\n",
                    pki.server_cert.display(),
                    pki.server_key.display(),
                    client_ca.display()
                );
                ca = Some(pki.ca_cert);
                client = Some((cert, key));
            }
            Config::Htpasswd { user, pass } => {
                auth = htpasswd_auth(d, user, pass);
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
            client,
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

    /// A client certificate and key the registry accepts (`Config::client_cert` only).
    pub fn client_cert(&self) -> Option<(&Path, &Path)> {
        self.client
            .as_ref()
            .map(|(c, k)| (c.as_path(), k.as_path()))
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

/// The `auth:` section for Basic auth with one bcrypt user (file from `htpasswd -Bbn`).
fn htpasswd_auth(dir: &Path, user: &str, pass: &str) -> String {
    let line = run(Command::new("htpasswd").args(["-Bbn", user, pass]));
    std::fs::write(dir.join("htpasswd"), line).unwrap();
    format!(
        "auth:\n  htpasswd:\n    realm: pallet-test\n    path: {}\n",
        dir.join("htpasswd").display()
    )
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
