//! `ADD <url>` end to end: a tiny HTTP server in the test (127.0.0.1, a random port, fixed
//! files, ETag / If-None-Match -> 304, a 404, a request log), the kit's busybox store, and
//! `pallet build` runs that download, revalidate, pin by
//! `--checksum`, go through HTTP_PROXY unless NO_PROXY says not to, and fail in words that say
//! why.
//!
//! Needs root, runc and busybox-static (scripts/ensure-tools.sh). Without them the tests fail
//! under CI=true and are skipped with a note elsewhere.

use sha2::Digest as _;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use testkit::digest::sha256;
use testkit::progress::{cached, ran};
use testkit::{pallet, require, text, Need::*, Pallet, Store};

fn can_run() -> bool {
    require("ADD <url> test", &[Root, Busybox, Tool("runc")])
}

// ---------------------------------------------------------------------------------------------
// The test server.

#[derive(Clone)]
struct Served {
    body: Vec<u8>,
    etag: Option<String>,
    last_modified: Option<String>,
    /// Answer nothing for this long, then hang up (for the timeout case).
    stall: Option<Duration>,
}

#[derive(Debug, Clone)]
struct Request {
    /// Path and query as requested.
    target: String,
    if_none_match: Option<String>,
    if_modified_since: Option<String>,
    status: u16,
}

#[derive(Default)]
struct State {
    files: HashMap<String, Served>,
    log: Vec<Request>,
}

pub(crate) struct Server {
    port: u16,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
}

impl Server {
    pub(crate) fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, stp) = (state.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stp.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let st = st.clone();
                std::thread::spawn(move || serve(conn, &st));
            }
        });
        Server { port, state, stop }
    }

    pub(crate) fn url(&self, target: &str) -> String {
        format!("http://127.0.0.1:{}{target}", self.port)
    }

    /// Serves `body` at `path` (the query is ignored when matching).
    pub(crate) fn put(
        &self,
        path: &str,
        body: &[u8],
        etag: Option<&str>,
        last_modified: Option<&str>,
    ) {
        self.state.lock().unwrap().files.insert(
            path.to_string(),
            Served {
                body: body.to_vec(),
                etag: etag.map(str::to_string),
                last_modified: last_modified.map(str::to_string),
                stall: None,
            },
        );
    }

    fn stall(&self, path: &str, for_: Duration) {
        self.state.lock().unwrap().files.insert(
            path.to_string(),
            Served {
                body: Vec::new(),
                etag: None,
                last_modified: None,
                stall: Some(for_),
            },
        );
    }

    /// Every request line's target (a path, or `host:port` for a proxy's CONNECT).
    fn targets(&self) -> Vec<String> {
        let st = self.state.lock().unwrap();
        st.log.iter().map(|r| r.target.clone()).collect()
    }

    /// How many requests were made for `path` (with any query).
    pub(crate) fn request_count(&self, path: &str) -> usize {
        self.requests(path).len()
    }

    /// The requests made for `path` (with any query), in order.
    fn requests(&self, path: &str) -> Vec<Request> {
        self.state
            .lock()
            .unwrap()
            .log
            .iter()
            .filter(|r| r.target.split('?').next() == Some(path))
            .cloned()
            .collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag and ends.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn serve(mut conn: TcpStream, state: &Mutex<State>) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 64 * 1024 {
        match conn.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or("");
    let target = request_line.split(' ').nth(1).unwrap_or("/").to_string();
    let mut headers = HashMap::new();
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let path = target.split('?').next().unwrap_or("").to_string();
    let served = state.lock().unwrap().files.get(&path).cloned();
    let mut req = Request {
        target,
        if_none_match: headers.get("if-none-match").cloned(),
        if_modified_since: headers.get("if-modified-since").cloned(),
        status: 0,
    };
    let response = match &served {
        None => {
            req.status = 404;
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 10\r\nConnection: close\r\n\r\nnot found\n"
                .to_vec()
        }
        Some(f) if f.stall.is_some() => {
            state.lock().unwrap().log.push(req);
            std::thread::sleep(f.stall.unwrap());
            return;
        }
        Some(f) => {
            let mut extra = String::new();
            if let Some(e) = &f.etag {
                extra.push_str(&format!("ETag: {e}\r\n"));
            }
            if let Some(lm) = &f.last_modified {
                extra.push_str(&format!("Last-Modified: {lm}\r\n"));
            }
            let fresh = f.etag.is_some() && req.if_none_match.as_deref() == f.etag.as_deref();
            if fresh {
                req.status = 304;
                format!("HTTP/1.1 304 Not Modified\r\n{extra}Connection: close\r\n\r\n")
                    .into_bytes()
            } else {
                req.status = 200;
                let mut r = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n",
                    f.body.len()
                )
                .into_bytes();
                r.extend_from_slice(&f.body);
                r
            }
        }
    };
    state.lock().unwrap().log.push(req);
    let _ = conn.write_all(&response);
    let _ = conn.flush();
    let _ = conn.shutdown(std::net::Shutdown::Both);
}

// ---------------------------------------------------------------------------------------------
// Building.

/// `pallet build --progress plain` of `ctx` holding only `dockerfile`, with `pallet` (its store
/// and environment set); returns (success, stderr).
fn build(pallet: Pallet, ctx: &Path, dockerfile: &str) -> (bool, String) {
    testkit::files::write(&ctx.join("Dockerfile"), dockerfile);
    let out = pallet
        .args(["build", "--progress", "plain"])
        .arg(ctx)
        .output();
    (out.status.success(), text(&out.stderr))
}

const LAST_MODIFIED: &str = "Wed, 21 Oct 2015 07:28:00 GMT";
const LAST_MODIFIED_UNIX: i64 = 1_445_412_480;

// ---------------------------------------------------------------------------------------------

#[test]
fn add_url_downloads_revalidates_and_reruns_on_change() {
    if !can_run() {
        return;
    }
    let store = Store::busybox(pallet!());
    let tmp = store.dir();
    let server = Server::start();
    server.put(
        "/file.txt",
        b"hello over http\n",
        Some("\"v1\""),
        Some(LAST_MODIFIED),
    );
    server.put("/plain.txt", b"no date header\n", Some("\"p1\""), None);
    let dockerfile = format!(
        "FROM busybox\n\
         ADD {} /data/\n\
         ADD {} /data/\n\
         RUN cat /data/file.txt && stat -c 'file %a %Y %u:%g' /data/file.txt && stat -c 'plain %a %Y %u:%g' /data/plain.txt\n",
        server.url("/file.txt"),
        server.url("/plain.txt"),
    );
    let ctx = tmp.join("ctx");

    // First build: downloads, the file is 0600 root:root with Last-Modified as mtime (epoch 0
    // without the header), as BuildKit writes it.
    let (ok, log) = build(store.pallet(), &ctx, &dockerfile);
    assert!(ok, "build failed:\n{log}");
    assert!(log.contains("hello over http"), "{log}");
    assert!(
        log.contains(&format!("file 600 {LAST_MODIFIED_UNIX} 0:0")),
        "mode 0600 and mtime from Last-Modified:\n{log}"
    );
    assert!(
        log.contains("plain 600 0 0:0"),
        "mtime 0 without Last-Modified:\n{log}"
    );
    let reqs = server.requests("/file.txt");
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    assert_eq!(reqs[0].if_none_match, None);
    assert_eq!(reqs[0].status, 200);

    // Nothing changed: one conditional request answered 304, every step cached.
    let (ok, log) = build(store.pallet(), &ctx, &dockerfile);
    assert!(ok, "rebuild failed:\n{log}");
    assert!(
        !log.contains("DONE"),
        "a no-change rebuild is all cache hits:\n{log}"
    );
    assert!(
        cached(&log, &format!("ADD {}", server.url("/file.txt"))),
        "{log}"
    );
    assert!(cached(&log, "RUN cat /data/file.txt"), "{log}");
    let reqs = server.requests("/file.txt");
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    assert_eq!(reqs[1].if_none_match.as_deref(), Some("\"v1\""));
    assert_eq!(reqs[1].if_modified_since.as_deref(), Some(LAST_MODIFIED));
    assert_eq!(reqs[1].status, 304);

    // New content under a new ETag: the download, the ADD and the RUN after it run again.
    server.put(
        "/file.txt",
        b"changed content\n",
        Some("\"v2\""),
        Some(LAST_MODIFIED),
    );
    let (ok, log) = build(store.pallet(), &ctx, &dockerfile);
    assert!(ok, "build after the change failed:\n{log}");
    assert!(
        log.contains("changed content"),
        "the RUN step saw the new file:\n{log}"
    );
    assert!(ran(&log, "RUN cat /data/file.txt"), "{log}");
    assert!(
        ran(&log, &format!("ADD {} /data/", server.url("/file.txt"))),
        "{log}"
    );
    assert!(
        cached(&log, &format!("ADD {}", server.url("/plain.txt"))),
        "{log}"
    );
    let reqs = server.requests("/file.txt");
    assert_eq!(reqs.len(), 3);
    assert_eq!(reqs[2].if_none_match.as_deref(), Some("\"v1\""));
    assert_eq!(reqs[2].status, 200);

    // A new ETag but the same bytes and date: downloaded again, yet nothing after it reruns.
    server.put(
        "/file.txt",
        b"changed content\n",
        Some("\"v3\""),
        Some(LAST_MODIFIED),
    );
    let (ok, log) = build(store.pallet(), &ctx, &dockerfile);
    assert!(ok, "{log}");
    assert_eq!(server.requests("/file.txt").last().unwrap().status, 200);
    assert!(
        cached(&log, "RUN cat /data/file.txt"),
        "same content, cached:\n{log}"
    );
}

#[test]
fn add_url_checksum_pins_the_content() {
    if !can_run() {
        return;
    }
    let store = Store::busybox(pallet!());
    let tmp = store.dir();
    let server = Server::start();
    let body = b"pinned content\n";
    server.put("/pinned.txt", body, Some("\"k1\""), Some(LAST_MODIFIED));
    let sum = sha256(body);
    let dockerfile = format!(
        "FROM busybox\nADD --checksum={sum} {} /data/\nRUN cat /data/pinned.txt\n",
        server.url("/pinned.txt")
    );
    let ctx = tmp.join("ctx");
    let (ok, log) = build(store.pallet(), &ctx, &dockerfile);
    assert!(ok, "build with the right checksum failed:\n{log}");
    assert!(log.contains("pinned content"), "{log}");
    assert_eq!(server.requests("/pinned.txt").len(), 1);

    // Cached by checksum: no request at all.
    let (ok, log) = build(store.pallet(), &ctx, &dockerfile);
    assert!(ok, "{log}");
    assert!(!log.contains("DONE"), "{log}");
    assert!(cached(&log, "RUN cat /data/pinned.txt"), "{log}");
    assert_eq!(
        server.requests("/pinned.txt").len(),
        1,
        "a pinned rebuild asks the server nothing"
    );

    // sha512 pins work too (hashed beside the blob's sha256).
    let sum512 = format!("sha512:{}", hex::encode(sha2::Sha512::digest(body)));
    let (ok, log) = build(
        store.pallet(),
        &tmp.join("ctx512"),
        &format!(
            "FROM busybox\nADD --checksum={sum512} {} /data/\nRUN cat /data/pinned.txt\n",
            server.url("/pinned.txt")
        ),
    );
    assert!(ok, "sha512 checksum:\n{log}");

    // A wrong checksum fails, naming the URL and both digests, and keeps nothing.
    let other = b"some other content\n";
    server.put("/other.txt", other, Some("\"o1\""), None);
    let wrong = sha256(b"what we expected");
    let (ok, log) = build(
        store.pallet(),
        &tmp.join("ctx-wrong"),
        &format!(
            "FROM busybox\nADD --checksum={wrong} {} /data/\n",
            server.url("/other.txt")
        ),
    );
    assert!(!ok, "a wrong checksum must fail:\n{log}");
    let actual = sha256(other);
    assert!(log.contains(&server.url("/other.txt")), "{log}");
    assert!(log.contains(&wrong), "expected digest named:\n{log}");
    assert!(log.contains(&actual), "actual digest named:\n{log}");
    let blob = store
        .root()
        .join("blobs/sha256")
        .join(actual.trim_start_matches("sha256:"));
    assert!(!blob.exists(), "a mismatched download is not kept");
}

#[test]
fn add_url_query_string_names_the_file_by_its_path() {
    if !can_run() {
        return;
    }
    let store = Store::busybox(pallet!());
    let tmp = store.dir();
    let server = Server::start();
    server.put("/dl/tool.sh", b"echo tool v2\n", Some("\"t2\""), None);
    let url = server.url("/dl/tool.sh?version=2&arch=amd64");
    let (ok, log) = build(
        store.pallet(),
        &tmp.join("ctx"),
        &format!("FROM busybox\nADD {url} /opt/\nRUN ls /opt && sh /opt/tool.sh\n"),
    );
    assert!(ok, "{log}");
    assert!(log.lines().any(|l| l.ends_with(" tool.sh")), "{log}");
    assert!(log.contains("tool v2"), "{log}");
    let reqs = server.requests("/dl/tool.sh");
    assert_eq!(reqs[0].target, "/dl/tool.sh?version=2&arch=amd64");
}

#[test]
fn add_url_errors_say_what_went_wrong() {
    if !can_run() {
        return;
    }
    let store = Store::busybox(pallet!());
    let tmp = store.dir();
    let server = Server::start();

    // 404.
    let missing = server.url("/missing.txt");
    let (ok, log) = build(
        store.pallet(),
        &tmp.join("ctx404"),
        &format!("FROM busybox\nADD {missing} /data/\n"),
    );
    assert!(!ok, "{log}");
    assert!(
        log.contains(&format!("ADD {missing}: server answered 404 Not Found")),
        "{log}"
    );

    // Nothing listening.
    let port = testkit::net::free_port();
    let refused = format!("http://127.0.0.1:{port}/file.txt");
    let (ok, log) = build(
        store.pallet(),
        &tmp.join("ctx-refused"),
        &format!("FROM busybox\nADD {refused} /data/\n"),
    );
    assert!(!ok, "{log}");
    assert!(log.contains(&format!("ADD {refused}:")), "{log}");
    assert!(log.contains("check the network"), "{log}");

    // A server that never answers: the timeout (1 s here) names the URL.
    server.stall("/slow.txt", Duration::from_secs(5));
    let slow = server.url("/slow.txt");
    let (ok, log) = build(
        store.pallet().env("PALLET_HTTP_TIMEOUT", "1"),
        &tmp.join("ctx-slow"),
        &format!("FROM busybox\nADD {slow} /data/\n"),
    );
    assert!(!ok, "{log}");
    assert!(log.contains(&format!("ADD {slow}: timed out")), "{log}");
    assert!(log.contains("check the network"), "{log}");
}

#[test]
fn add_url_goes_through_the_proxy_variables_name() {
    if !can_run() {
        return;
    }
    let store = Store::busybox(pallet!());
    let tmp = store.dir();
    // The test server plays the proxy: it answers the tunnel request with a 404.
    let proxy = Server::start();
    let proxy_url = proxy.url("");
    let far = "http://pallet-proxy-test.invalid/file.txt";
    let dockerfile = format!("FROM busybox\nADD {far} /data/\n");
    let (ok, log) = build(
        store
            .pallet()
            .env("HTTP_PROXY", &proxy_url)
            .env("NO_PROXY", ""),
        &tmp.join("ctx"),
        &dockerfile,
    );
    assert!(!ok, "{log}");
    assert!(
        proxy
            .targets()
            .iter()
            .any(|t| t.contains("pallet-proxy-test.invalid")),
        "the request went to the proxy: {:?}\n{log}",
        proxy.targets()
    );
    // NO_PROXY names the host: no proxy (and so a DNS failure for a .invalid name).
    let before = proxy.targets().len();
    let (ok, log) = build(
        store
            .pallet()
            .env("HTTP_PROXY", &proxy_url)
            .env("NO_PROXY", ".invalid"),
        &tmp.join("ctx"),
        &dockerfile,
    );
    assert!(!ok, "{log}");
    assert_eq!(proxy.targets().len(), before, "NO_PROXY bypasses the proxy");
    assert!(log.contains("check the network"), "{log}");
}
