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
//!   `Config::token(user, pass)`: bearer tokens from a small issuer in this file (a std
//!   `TcpListener` thread checking Basic credentials and answering `{"token": JWT}`; the JWT is
//!   RS256-signed with `openssl dgst`, its `x5c` header carrying the signing certificate that the
//!   registry trusts through `rootcertbundle`). Anonymous token requests get a token without
//!   access. `token_requests()` counts the token requests served.
//! - `Registry::start` returns None (after printing why) when a tool is missing, and panics
//!   instead when `CI=true`. The registry is killed and its directory removed on Drop.
//! - `FaultProxy::start(upstream, faults)`: a plain-TCP proxy that answers `500` or drops the
//!   connection for the first N requests matching a method and path substring, and forwards
//!   everything else (with `Connection: close`, so each request is seen).
//! - `TempDir`: a directory removed on Drop.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// True when every tool is on PATH. Missing: panics under `CI=true`, else prints and returns
/// false (the caller skips).
pub fn tools_available(tools: &[&str]) -> bool {
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| !on_path(t))
        .collect();
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
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().subsec_nanos();
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
            assert!(Instant::now() < deadline, "registry not ready:\n{}", self.log());
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
        self.token.as_ref().map(|t| t.count.load(Ordering::SeqCst)).unwrap_or(0)
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
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
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

pub const TOKEN_SERVICE: &str = "pallet-test-registry";
pub const TOKEN_ISSUER: &str = "pallet-test-issuer";

/// The bearer-token issuer for `Config::token`.
struct TokenServer {
    port: u16,
    cert: PathBuf,
    count: Arc<AtomicUsize>,
}

impl TokenServer {
    fn start(dir: &Path, user: &str, pass: &str) -> TokenServer {
        let key = dir.join("token.key");
        let cert = dir.join("token.crt");
        run(Command::new("openssl")
            .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .args(["-days", "2", "-subj", "/CN=pallet test token issuer"]));
        let der = run(Command::new("openssl")
            .args(["x509", "-outform", "DER", "-in"])
            .arg(&cert));
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind token server");
        let port = listener.local_addr().unwrap().port();
        let count = Arc::new(AtomicUsize::new(0));
        let issuer = Issuer {
            key,
            x5c: base64(&der, STD, true),
            expected_auth: format!("Basic {}", base64(format!("{user}:{pass}").as_bytes(), STD, true)),
            user: user.to_string(),
            count: count.clone(),
        };
        let issuer = Arc::new(issuer);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let issuer = issuer.clone();
                std::thread::spawn(move || issuer.serve(stream));
            }
        });
        TokenServer { port, cert, count }
    }

    fn realm(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.port)
    }
}

struct Issuer {
    key: PathBuf,
    x5c: String,
    expected_auth: String,
    user: String,
    count: Arc<AtomicUsize>,
}

impl Issuer {
    fn serve(&self, stream: TcpStream) {
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let Some(head) = read_head(&mut reader) else { return };
        self.count.fetch_add(1, Ordering::SeqCst);
        let target = head.path.clone();
        let query = target.split_once('?').map(|(_, q)| q).unwrap_or("");
        let params: Vec<(String, String)> = query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), unescape(v)))
            .collect();
        let auth = head.header("authorization");
        let (status, body) = match auth {
            Some(a) if a != self.expected_auth => (
                "401 Unauthorized",
                r#"{"details":"invalid username or password"}"#.to_string(),
            ),
            _ => {
                let authenticated = auth.is_some();
                let scopes: Vec<&str> = params
                    .iter()
                    .filter(|(k, _)| k == "scope")
                    .flat_map(|(_, v)| v.split(' '))
                    .collect();
                let token = self.jwt(authenticated, &scopes);
                (
                    "200 OK",
                    format!(r#"{{"token":"{token}","access_token":"{token}","expires_in":300}}"#),
                )
            }
        };
        let mut stream = stream;
        let _ = write!(
            stream,
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
    }

    fn jwt(&self, authenticated: bool, scopes: &[&str]) -> String {
        let access: Vec<String> = if authenticated {
            scopes
                .iter()
                .filter_map(|s| {
                    let (kind, rest) = s.split_once(':')?;
                    let (name, actions) = rest.rsplit_once(':')?;
                    let actions: Vec<String> =
                        actions.split(',').map(|a| format!("\"{a}\"")).collect();
                    Some(format!(
                        r#"{{"type":"{kind}","name":"{name}","actions":[{}]}}"#,
                        actions.join(",")
                    ))
                })
                .collect()
        } else {
            Vec::new()
        };
        static JTI: AtomicUsize = AtomicUsize::new(0);
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
        let header = format!(r#"{{"typ":"JWT","alg":"RS256","x5c":["{}"]}}"#, self.x5c);
        let sub = if authenticated { self.user.as_str() } else { "" };
        let claims = format!(
            r#"{{"iss":"{TOKEN_ISSUER}","sub":"{sub}","aud":"{TOKEN_SERVICE}","exp":{},"nbf":{},"iat":{now},"jti":"{}","access":[{}]}}"#,
            now + 300,
            now - 10,
            JTI.fetch_add(1, Ordering::SeqCst),
            access.join(",")
        );
        let signing_input = format!(
            "{}.{}",
            base64(header.as_bytes(), URL, false),
            base64(claims.as_bytes(), URL, false)
        );
        let mut child = Command::new("openssl")
            .args(["dgst", "-sha256", "-sign"])
            .arg(&self.key)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("openssl dgst");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(signing_input.as_bytes())
            .unwrap();
        let sig = child.wait_with_output().expect("openssl dgst");
        format!("{signing_input}.{}", base64(&sig.stdout, URL, false))
    }
}

/// A parsed HTTP request head.
pub struct Head {
    pub method: String,
    pub path: String,
    /// The request line and headers as received (CRLF-terminated lines, no final blank line).
    pub lines: Vec<String>,
}

impl Head {
    pub fn header(&self, name: &str) -> Option<String> {
        self.lines.iter().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }
}

fn read_head(reader: &mut impl BufRead) -> Option<Head> {
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end_matches(['\r', '\n']).to_string();
        if line.is_empty() {
            break;
        }
        lines.push(line);
    }
    let mut first = lines.first()?.split(' ');
    let method = first.next()?.to_string();
    let path = first.next()?.to_string();
    Some(Head {
        method,
        path,
        lines,
    })
}

fn unescape(v: &str) -> String {
    let bytes = v.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).to_string()
}

const STD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Base64 with the given alphabet, padded or not.
pub fn base64(data: &[u8], alphabet: &[u8; 64], pad: bool) -> String {
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(alphabet[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else if pad {
                out.push('=');
            }
        }
    }
    out
}

/// What the proxy does to a matching request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultAction {
    /// Answer `500 Internal Server Error` (after reading the request body).
    Status500,
    /// Close the connection without an answer.
    Drop,
}

/// A fault for the first `times` requests whose method is `method` (or "*") and whose path
/// contains `path_contains`.
#[derive(Debug, Clone)]
pub struct Fault {
    pub method: String,
    pub path_contains: String,
    pub action: FaultAction,
    pub times: usize,
}

impl Fault {
    pub fn new(method: &str, path_contains: &str, action: FaultAction, times: usize) -> Fault {
        Fault {
            method: method.into(),
            path_contains: path_contains.into(),
            action,
            times,
        }
    }
}

/// A TCP proxy in front of a plain-HTTP registry that injects faults.
pub struct FaultProxy {
    port: u16,
    seen: Arc<Mutex<Vec<String>>>,
    faults_hit: Arc<AtomicUsize>,
}

impl FaultProxy {
    pub fn start(upstream: &str, faults: Vec<Fault>) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().unwrap().port();
        let faults = Arc::new(Mutex::new(faults));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let faults_hit = Arc::new(AtomicUsize::new(0));
        let upstream = upstream.to_string();
        let (s, h) = (seen.clone(), faults_hit.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (faults, seen, hit, up) = (faults.clone(), s.clone(), h.clone(), upstream.clone());
                std::thread::spawn(move || proxy_connection(client, &up, &faults, &seen, &hit));
            }
        });
        FaultProxy {
            port,
            seen,
            faults_hit,
        }
    }

    /// `127.0.0.1:PORT` of the proxy.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `METHOD PATH` of every request seen, in order.
    pub fn requests(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }

    /// How many requests got a fault.
    pub fn faults_hit(&self) -> usize {
        self.faults_hit.load(Ordering::SeqCst)
    }
}

fn proxy_connection(
    client: TcpStream,
    upstream: &str,
    faults: &Mutex<Vec<Fault>>,
    seen: &Mutex<Vec<String>>,
    hit: &AtomicUsize,
) {
    let mut reader = BufReader::new(client.try_clone().unwrap());
    let mut client = client;
    // One request per connection: the forwarded head says `Connection: close`.
    let Some(head) = read_head(&mut reader) else { return };
    seen.lock().unwrap().push(format!("{} {}", head.method, head.path));
    let action = {
        let mut faults = faults.lock().unwrap();
        faults
            .iter_mut()
            .find(|f| {
                f.times > 0
                    && (f.method == "*" || f.method.eq_ignore_ascii_case(&head.method))
                    && head.path.contains(&f.path_contains)
            })
            .map(|f| {
                f.times -= 1;
                f.action
            })
    };
    if let Some(action) = action {
        hit.fetch_add(1, Ordering::SeqCst);
        match action {
            FaultAction::Drop => {
                let _ = client.shutdown(std::net::Shutdown::Both);
            }
            FaultAction::Status500 => {
                let len: u64 = head
                    .header("content-length")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                let _ = std::io::copy(&mut (&mut reader).take(len), &mut std::io::sink());
                let body = r#"{"errors":[{"code":"UNKNOWN","message":"injected fault"}]}"#;
                let _ = write!(
                    client,
                    "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        }
        return;
    }
    let Ok(mut up) = TcpStream::connect(upstream) else {
        return;
    };
    let mut forwarded = String::new();
    for line in &head.lines {
        let name = line.split(':').next().unwrap_or("").trim();
        if !name.eq_ignore_ascii_case("connection") {
            forwarded.push_str(line);
            forwarded.push_str("\r\n");
        }
    }
    forwarded.push_str("Connection: close\r\n\r\n");
    if up.write_all(forwarded.as_bytes()).is_err() {
        return;
    }
    // Body (and anything else the client sends) upstream; the answer back.
    let mut up_reader = up.try_clone().unwrap();
    let to_upstream = std::thread::spawn(move || {
        let _ = std::io::copy(&mut reader, &mut up);
        let _ = up.shutdown(std::net::Shutdown::Write);
    });
    let _ = std::io::copy(&mut up_reader, &mut client);
    let _ = client.shutdown(std::net::Shutdown::Both);
    let _ = to_upstream.join();
}
