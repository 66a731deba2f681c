//! The fault-injecting TCP proxy (std only): see the harness's top comment.

use super::http::read_head;
use std::io::{BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// What the proxy does to a matching request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultAction {
    /// Answer `500 Internal Server Error` (after reading the request body).
    Status500,
    /// Close the connection without an answer.
    Drop,
    /// Forward, but cut the answer after this many bytes (headers included).
    CutAfter(u64),
    /// Answer `429 Too Many Requests` with `Retry-After: N` (seconds).
    TooManyRequests(u32),
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

/// Starts a [`FaultProxy`] in front of `upstream` (`host:port`).
pub fn proxy(upstream: &str, faults: Vec<Fault>) -> FaultProxy {
    FaultProxy::start(upstream, faults)
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
                let (faults, seen, hit, up) =
                    (faults.clone(), s.clone(), h.clone(), upstream.clone());
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
    let Some(head) = read_head(&mut reader) else {
        return;
    };
    seen.lock()
        .unwrap()
        .push(format!("{} {}", head.method, head.path));
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
    let mut cut = None;
    if let Some(action) = action {
        hit.fetch_add(1, Ordering::SeqCst);
        match action {
            FaultAction::CutAfter(n) => cut = Some(n),
            FaultAction::Drop => {
                let _ = client.shutdown(std::net::Shutdown::Both);
            }
            FaultAction::Status500 | FaultAction::TooManyRequests(_) => {
                let len: u64 = head
                    .header("content-length")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                let _ = std::io::copy(&mut (&mut reader).take(len), &mut std::io::sink());
                let (status, extra, body) = match action {
                    FaultAction::TooManyRequests(secs) => (
                        "429 Too Many Requests",
                        format!("Retry-After: {secs}\r\n"),
                        r#"{"errors":[{"code":"TOOMANYREQUESTS","message":"injected rate limit"}]}"#,
                    ),
                    _ => (
                        "500 Internal Server Error",
                        String::new(),
                        r#"{"errors":[{"code":"UNKNOWN","message":"injected fault"}]}"#,
                    ),
                };
                let _ = write!(
                    client,
                    "HTTP/1.1 {status}\r\n{extra}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        }
        if cut.is_none() {
            return;
        }
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
    match cut {
        Some(n) => {
            let _ = std::io::copy(&mut (&mut up_reader).take(n), &mut client);
        }
        None => {
            let _ = std::io::copy(&mut up_reader, &mut client);
        }
    }
    let _ = up_reader.shutdown(std::net::Shutdown::Both);
    let _ = client.shutdown(std::net::Shutdown::Both);
    let _ = to_upstream.join();
}
