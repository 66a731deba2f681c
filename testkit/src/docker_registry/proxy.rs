//! The fault-injecting TCP proxy (std only): see the harness's top comment.
//!
//! One request per connection (the forwarded head says `Connection: close`), so every request
//! is seen and logged (`METHOD PATH`). A connection that opens with a TLS handshake (a client
//! trying HTTPS on a plain-HTTP registry) is logged as [`TLS_HELLO`] and passed through raw:
//! the registry answers it as plain HTTP would, and the client learns the port does not speak
//! TLS.

use super::http::read_head;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The log entry of a connection that opened with a TLS handshake instead of an HTTP request.
pub const TLS_HELLO: &str = "TLS ClientHello";

/// How long a stalled connection is held at most when the client never hangs up.
const HOLD_LIMIT: Duration = Duration::from_secs(600);

/// What the proxy does to a matching request. The actions that count body bytes forward the
/// registry's answer head as it is (its `Content-Length` included) and count from the first
/// byte after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultAction {
    /// Answer `500 Internal Server Error` (after reading the request body).
    Status500,
    /// Answer with this status (a 5xx) and a registry error body (after reading the request
    /// body).
    Status(u16),
    /// Close the connection without an answer.
    Drop,
    /// Forward, but cut the answer after this many bytes (headers included).
    CutAfter(u64),
    /// Answer `429 Too Many Requests` with `Retry-After: N` (seconds).
    TooManyRequests(u32),
    /// Forward the answer's head and this many body bytes, then close the connection cleanly:
    /// a truncated body under a `Content-Length` that lies.
    Truncate(u64),
    /// Forward the answer's head and this many body bytes, then hold the connection open and
    /// silent until the client hangs up.
    StallAfter(u64),
    /// Forward the answer's head and this many body bytes, then one byte a second.
    Trickle(u64),
    /// Forward the answer's head and this many body bytes, then reset the connection (RST).
    ResetAfter(u64),
    /// Forward the request's head and this many bytes of its body to the registry, then stop
    /// reading the client's upload and stay silent until it hangs up.
    StallUpload(u64),
    /// Forward the request's head and this many bytes of its body, then reset the connection.
    ResetUpload(u64),
    /// Forward the request whole (the registry acts on it), then never answer: the
    /// connection is held open and silent until the client hangs up.
    Hang,
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

    /// [`Fault::new`] for every matching request.
    pub fn always(method: &str, path_contains: &str, action: FaultAction) -> Fault {
        Fault::new(method, path_contains, action, usize::MAX)
    }
}

/// Starts a [`FaultProxy`] in front of `upstream` (`host:port`).
pub fn proxy(upstream: &str, faults: Vec<Fault>) -> FaultProxy {
    FaultProxy::start(upstream, faults)
}

/// What the proxy's threads share.
struct Shared {
    upstream: String,
    faults: Mutex<Vec<Fault>>,
    seen: Mutex<Vec<String>>,
    hit: AtomicUsize,
}

/// A TCP proxy in front of a plain-HTTP registry that injects faults.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl FaultProxy {
    /// A proxy on 127.0.0.1 and a free port.
    pub fn start(upstream: &str, faults: Vec<Fault>) -> FaultProxy {
        FaultProxy::start_on(IpAddr::V4(Ipv4Addr::LOCALHOST), upstream, faults)
    }

    /// A proxy on `ip` (an address of this machine) and a free port: a registry that is not
    /// on the loopback address.
    pub fn start_on(ip: IpAddr, upstream: &str, faults: Vec<Fault>) -> FaultProxy {
        let listener = TcpListener::bind((ip, 0)).expect("bind proxy");
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            upstream: upstream.to_string(),
            faults: Mutex::new(faults),
            seen: Mutex::new(Vec::new()),
            hit: AtomicUsize::new(0),
        });
        let s = shared.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let s = s.clone();
                std::thread::spawn(move || proxy_connection(client, &s));
            }
        });
        FaultProxy { addr, shared }
    }

    /// `IP:PORT` of the proxy (`127.0.0.1:PORT` unless started on another address).
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// `METHOD PATH` of every request seen, in order ([`TLS_HELLO`] for a TLS handshake).
    pub fn requests(&self) -> Vec<String> {
        self.shared.seen.lock().unwrap().clone()
    }

    /// How many requests got a fault.
    pub fn faults_hit(&self) -> usize {
        self.shared.hit.load(Ordering::SeqCst)
    }

    /// Replaces the faults (and forgets how many were hit): the next scenario on the same
    /// proxy. The request log is kept.
    pub fn set_faults(&self, faults: Vec<Fault>) {
        *self.shared.faults.lock().unwrap() = faults;
        self.shared.hit.store(0, Ordering::SeqCst);
    }
}

/// The machine's first IPv4 address that is not loopback (the one a route to the outside
/// would use), if it has one.
pub fn non_loopback_ipv4() -> Option<IpAddr> {
    // Connecting a UDP socket sends nothing; it only picks the source address of the route.
    let probe = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    let ip = ["192.0.2.1:9", "10.255.255.1:9", "8.8.8.8:53"]
        .iter()
        .find_map(|to| {
            probe.connect(to).ok()?;
            let ip = probe.local_addr().ok()?.ip();
            (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
        })?;
    // It must be bindable here.
    TcpListener::bind((ip, 0)).ok().map(|_| ip)
}

fn proxy_connection(client: TcpStream, shared: &Shared) {
    let mut reader = BufReader::new(client.try_clone().unwrap());
    let client = client;
    // A TLS handshake starts with a handshake record (0x16).
    if reader.fill_buf().ok().and_then(|b| b.first().copied()) == Some(0x16) {
        shared.seen.lock().unwrap().push(TLS_HELLO.to_string());
        return pass_raw(reader, client, &shared.upstream);
    }
    let Some(head) = read_head(&mut reader) else {
        return;
    };
    shared
        .seen
        .lock()
        .unwrap()
        .push(format!("{} {}", head.method, head.path));
    let action = {
        let mut faults = shared.faults.lock().unwrap();
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
    if action.is_some() {
        shared.hit.fetch_add(1, Ordering::SeqCst);
    }
    let request_len: u64 = head
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut client = client;
    match action {
        Some(FaultAction::Drop) => {
            let _ = client.shutdown(Shutdown::Both);
            return;
        }
        Some(FaultAction::Status500) => return answer_error(reader, client, 500, 0, request_len),
        Some(FaultAction::Status(status)) => {
            return answer_error(reader, client, status, 0, request_len)
        }
        Some(FaultAction::TooManyRequests(secs)) => {
            return answer_error(reader, client, 429, secs, request_len)
        }
        _ => {}
    }
    let Ok(mut up) = TcpStream::connect(&shared.upstream) else {
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
    // The upload's faults: part of the body goes upstream, then silence or a reset.
    if let Some(FaultAction::StallUpload(n) | FaultAction::ResetUpload(n)) = action {
        // No more than the body: a shorter one goes up whole, then the fault.
        let _ = std::io::copy(&mut (&mut reader).take(n.min(request_len)), &mut up);
        // The client's socket must have no other descriptor left for a reset to be sent.
        drop(reader);
        if let Some(FaultAction::ResetUpload(_)) = action {
            reset(client);
        } else {
            hold(&client);
        }
        let _ = up.shutdown(Shutdown::Both);
        return;
    }
    let mut up_reader = BufReader::new(up.try_clone().unwrap());
    let (n, then) = match action {
        Some(FaultAction::Truncate(n)) => (n, Then::Close),
        Some(FaultAction::StallAfter(n)) => (n, Then::Stall),
        Some(FaultAction::Trickle(n)) => (n, Then::Trickle),
        Some(FaultAction::ResetAfter(n)) => (n, Then::Reset),
        Some(FaultAction::Hang) => (0, Then::Hang),
        cut => {
            // Body (and anything else the client sends) upstream; the answer back, cut after
            // N bytes when asked.
            let to_upstream = std::thread::spawn(move || {
                let _ = std::io::copy(&mut reader, &mut up);
                let _ = up.shutdown(Shutdown::Write);
            });
            match cut {
                Some(FaultAction::CutAfter(n)) => {
                    let _ = std::io::copy(&mut (&mut up_reader).take(n), &mut client);
                }
                _ => {
                    let _ = std::io::copy(&mut up_reader, &mut client);
                }
            }
            let _ = up_reader.get_ref().shutdown(Shutdown::Both);
            let _ = client.shutdown(Shutdown::Both);
            let _ = to_upstream.join();
            return;
        }
    };
    // A fault in the answer's body: the request body goes up first, whole, and the client's
    // socket keeps one descriptor (a reset needs that).
    if std::io::copy(&mut (&mut reader).take(request_len), &mut up).is_err() {
        return;
    }
    drop(reader);
    if let Then::Hang = then {
        hold(&client);
        let _ = up.shutdown(Shutdown::Both);
        return;
    }
    let mut answer_head = Vec::new();
    while !answer_head.ends_with(b"\r\n\r\n") {
        match up_reader.read_until(b'\n', &mut answer_head) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    let sent = client.write_all(&answer_head).is_ok()
        && std::io::copy(&mut (&mut up_reader).take(n), &mut client).is_ok();
    let _ = up.shutdown(Shutdown::Both);
    if !sent {
        return;
    }
    match then {
        Then::Close => {
            let _ = client.shutdown(Shutdown::Both);
        }
        Then::Stall => hold(&client),
        Then::Trickle => trickle(&mut up_reader, &mut client),
        Then::Reset => reset(client),
        Then::Hang => {}
    }
}

/// What follows the first bytes of an answer.
enum Then {
    Close,
    Stall,
    Trickle,
    Reset,
    Hang,
}

/// Answers a registry error (`status`, with `Retry-After` when `retry_after` > 0) after
/// reading the request body.
fn answer_error(
    mut reader: BufReader<TcpStream>,
    mut client: TcpStream,
    status: u16,
    retry_after: u32,
    request_len: u64,
) {
    let _ = std::io::copy(&mut (&mut reader).take(request_len), &mut std::io::sink());
    let (reason, code, extra) = match status {
        429 => (
            "Too Many Requests",
            "TOOMANYREQUESTS",
            format!("Retry-After: {retry_after}\r\n"),
        ),
        500 => ("Internal Server Error", "UNKNOWN", String::new()),
        502 => ("Bad Gateway", "UNKNOWN", String::new()),
        503 => ("Service Unavailable", "UNAVAILABLE", String::new()),
        504 => ("Gateway Timeout", "UNKNOWN", String::new()),
        _ => ("Error", "UNKNOWN", String::new()),
    };
    let message = if status == 429 {
        "injected rate limit"
    } else {
        "injected fault"
    };
    let body = format!(r#"{{"errors":[{{"code":"{code}","message":"{message}"}}]}}"#);
    let _ = write!(
        client,
        "HTTP/1.1 {status} {reason}\r\n{extra}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = client.shutdown(Shutdown::Both);
}

/// Holds a connection open and silent until the client hangs up, or for [`HOLD_LIMIT`].
/// Nothing the client sends is read (a stalled upload's writes block).
fn hold(client: &TcpStream) {
    use std::os::fd::AsRawFd;
    let started = Instant::now();
    while started.elapsed() < HOLD_LIMIT {
        let mut fd = libc::pollfd {
            fd: client.as_raw_fd(),
            events: libc::POLLRDHUP,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the call; the fd is `client`'s and stays open.
        let ready = unsafe { libc::poll(&mut fd, 1, 200) };
        if ready < 0 || fd.revents & (libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR) != 0 {
            return;
        }
    }
}

/// The rest of the answer, one byte a second, until it ends or the client hangs up.
fn trickle(from: &mut impl Read, client: &mut TcpStream) {
    let mut byte = [0u8; 1];
    let started = Instant::now();
    while started.elapsed() < HOLD_LIMIT {
        match from.read(&mut byte) {
            Ok(1) => {}
            _ => return,
        }
        if client.write_all(&byte).is_err() {
            return;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Resets the connection: closing with SO_LINGER 0 sends RST instead of FIN. `client` must
/// be the socket's last descriptor.
fn reset(client: TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket fd owned by `client` for the call; the option value is a
    // `linger` of the size passed.
    unsafe {
        libc::setsockopt(
            client.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
    drop(client);
}

/// Passes bytes both ways unchanged (a TLS handshake to a plain-HTTP registry).
fn pass_raw(mut reader: BufReader<TcpStream>, mut client: TcpStream, upstream: &str) {
    let Ok(mut up) = TcpStream::connect(upstream) else {
        return;
    };
    let mut up_reader = up.try_clone().unwrap();
    let to_upstream = std::thread::spawn(move || {
        let _ = std::io::copy(&mut reader, &mut up);
        let _ = up.shutdown(Shutdown::Write);
    });
    let _ = std::io::copy(&mut up_reader, &mut client);
    let _ = client.shutdown(Shutdown::Both);
    let _ = up_reader.shutdown(Shutdown::Both);
    let _ = to_upstream.join();
}
