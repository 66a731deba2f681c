//! HTTP plumbing under the client: one ureq `Agent` per registry host, scheme and proxy (its TLS
//! from `tls`; the proxy by Go's rule, `proxy`; pooled keep-alive connections; explicit timeouts;
//! 4xx/5xx returned as responses, never as errors that lose the body; redirects never followed
//! by ureq), request counting by method, and the mapping of connection and TLS failures to
//! errors with a hint. Knows nothing of the distribution API or of auth.

use crate::config::{RegistryConfig, TransferLimits};
use crate::tls::TlsConnector;
use crate::RegistryError;
use std::collections::HashMap;
use std::io::Read;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use ureq::http;
use ureq::unversioned::resolver::DefaultResolver;
use ureq::unversioned::transport::{ConnectProxyConnector, Connector, TcpConnector};

pub(crate) type Response = http::Response<ureq::Body>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Get,
    Head,
    Post,
    Put,
    Patch,
}

impl Method {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
        }
    }
}

/// A request body: replayable (empty, bytes) or a stream read once.
pub(crate) enum Body<'a> {
    Empty,
    Bytes(&'a [u8]),
    Reader(&'a mut dyn Read, u64),
}

impl Body<'_> {
    pub(crate) fn replayable(&self) -> bool {
        !matches!(self, Body::Reader(..))
    }
}

/// Requests made, by method (the no-op push benchmark counts them). Every HTTP request the
/// client sends is counted: `/v2/` pings and token fetches (GET, or POST for identity tokens)
/// included, each retry and each redirect hop too.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestCounts {
    pub get: usize,
    pub head: usize,
    pub post: usize,
    pub put: usize,
    pub patch: usize,
}

impl RequestCounts {
    pub fn total(&self) -> usize {
        self.get + self.head + self.post + self.put + self.patch
    }

    /// Requests made since `earlier` (a snapshot from the same client).
    pub fn since(&self, earlier: &RequestCounts) -> RequestCounts {
        RequestCounts {
            get: self.get - earlier.get,
            head: self.head - earlier.head,
            post: self.post - earlier.post,
            put: self.put - earlier.put,
            patch: self.patch - earlier.patch,
        }
    }
}

#[derive(Default)]
struct Counters {
    get: AtomicUsize,
    head: AtomicUsize,
    post: AtomicUsize,
    put: AtomicUsize,
    patch: AtomicUsize,
}

pub(crate) struct Transport {
    pub(crate) config: RegistryConfig,
    agents: Mutex<HashMap<String, ureq::Agent>>,
    tls: Mutex<HashMap<String, Arc<rustls::ClientConfig>>>,
    counts: Counters,
}

impl Transport {
    pub(crate) fn new(config: RegistryConfig) -> Transport {
        Transport {
            config,
            agents: Mutex::new(HashMap::new()),
            tls: Mutex::new(HashMap::new()),
            counts: Counters::default(),
        }
    }

    pub(crate) fn counts(&self) -> RequestCounts {
        let c = &self.counts;
        RequestCounts {
            get: c.get.load(Ordering::Relaxed),
            head: c.head.load(Ordering::Relaxed),
            post: c.post.load(Ordering::Relaxed),
            put: c.put.load(Ordering::Relaxed),
            patch: c.patch.load(Ordering::Relaxed),
        }
    }

    /// The agent for requests to `url` trusted as `registry` (`host[:port]`: whose CA files,
    /// pinned certificates and client certificate apply), built on first use. One per
    /// (registry, scheme, proxy): the proxy is Go's pick for `url`'s scheme and host.
    pub(crate) fn agent(&self, registry: &str, url: &str) -> Result<ureq::Agent, RegistryError> {
        let scheme = url.split_once("://").map_or("https", |(s, _)| s);
        let (host, port) = host_and_port(url_host(url), scheme);
        let proxy_error = |source| RegistryError::Proxy {
            registry: registry.to_string(),
            source,
        };
        let proxies = &self.config.proxy;
        let via = proxies.proxy_url(scheme, host, port).map_err(proxy_error)?;
        let key = format!("{registry} {scheme} {}", via.unwrap_or(""));
        if let Some(a) = self.agents.lock().expect("agents lock").get(&key) {
            return Ok(a.clone());
        }
        let proxy = proxies.proxy_for(scheme, host, port).map_err(proxy_error)?;
        let tls = self.tls(registry)?;
        let pool = self.config.max_concurrent.max(1) + 2;
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .proxy(proxy)
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_recv_response(Some(Duration::from_secs(300)))
            .timeout_per_read(Some(self.config.transfer.idle_timeout))
            // A registry that stops reading an upload is as stalled as one that stops sending.
            .timeout_per_write(Some(self.config.transfer.idle_timeout))
            .user_agent(concat!("pallet/", env!("CARGO_PKG_VERSION")))
            .max_idle_connections(pool * 4)
            .max_idle_connections_per_host(pool)
            .build();
        // ureq's own chain (CONNECT proxy, TCP) with our TLS step in place of its rustls one.
        let connector =
            ().chain(ConnectProxyConnector::default())
                .chain(TcpConnector::default())
                .chain(TlsConnector { config: tls });
        let agent = ureq::Agent::with_parts(config, connector, DefaultResolver::default());
        self.agents
            .lock()
            .expect("agents lock")
            .insert(key, agent.clone());
        Ok(agent)
    }

    /// The rustls configuration for `registry`, built once.
    fn tls(&self, registry: &str) -> Result<Arc<rustls::ClientConfig>, RegistryError> {
        if let Some(c) = self.tls.lock().expect("tls lock").get(registry) {
            return Ok(c.clone());
        }
        let config = crate::tls::client_config(&self.config, registry)?;
        self.tls
            .lock()
            .expect("tls lock")
            .insert(registry.to_string(), config.clone());
        Ok(config)
    }

    /// Sends one request (no retry, no auth logic); counts it.
    pub(crate) fn send(
        &self,
        agent: &ureq::Agent,
        method: Method,
        url: &str,
        headers: &[(&str, String)],
        body: &mut Body<'_>,
    ) -> Result<Response, ureq::Error> {
        let counter = match method {
            Method::Get => &self.counts.get,
            Method::Head => &self.counts.head,
            Method::Post => &self.counts.post,
            Method::Put => &self.counts.put,
            Method::Patch => &self.counts.patch,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let mut builder = http::Request::builder().method(method.as_str()).uri(url);
        for (k, v) in headers {
            builder = builder.header(*k, v.as_str());
        }
        let has_body = matches!(method, Method::Post | Method::Put | Method::Patch);
        match body {
            Body::Reader(reader, len) => {
                let request = builder
                    .header("content-length", len.to_string())
                    .body(ureq::SendBody::from_reader(&mut **reader))?;
                agent.run(request)
            }
            Body::Bytes(bytes) => agent.run(builder.body(*bytes)?),
            Body::Empty if has_body => agent.run(builder.body(&[][..])?),
            Body::Empty => agent.run(builder.body(())?),
        }
    }
}

/// What kind of failure a ureq error is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FailureKind {
    /// Certificate verification failed (unknown CA, wrong name, expired).
    Certificate,
    /// The server did not speak TLS (plain HTTP on the port).
    NotTls,
    /// Refused, reset, timed out, DNS: worth a retry (except DNS).
    Connection,
    /// Anything else (bad URL, protocol error).
    Other,
}

pub(crate) fn classify(err: &ureq::Error) -> FailureKind {
    let text = err.to_string();
    let lower = text.to_lowercase();
    if lower.contains("certificate") || lower.contains("unknownissuer") {
        return FailureKind::Certificate;
    }
    if lower.contains("corrupt message")
        || lower.contains("invalidcontenttype")
        || lower.contains("invalid content type")
        || lower.contains("wrong version number")
    {
        return FailureKind::NotTls;
    }
    match err {
        ureq::Error::Io(_)
        | ureq::Error::Timeout(_)
        | ureq::Error::ConnectionFailed
        | ureq::Error::HostNotFound
        | ureq::Error::BodyStalled => FailureKind::Connection,
        _ => FailureKind::Other,
    }
}

/// Worth retrying: connection problems other than an unknown host.
pub(crate) fn is_transient(err: &ureq::Error) -> bool {
    classify(err) == FailureKind::Connection && !matches!(err, ureq::Error::HostNotFound)
}

/// The error for a failed exchange with `registry`, naming what happened: no connection at
/// all (unreachable), silence past the idle timeout `idle` (stalled), an answer that ends
/// early or a reset (broken), a TLS problem; with what to do about it.
pub(crate) fn connection_error(registry: &str, err: &ureq::Error, idle: Duration) -> RegistryError {
    let message = err.to_string();
    match classify(err) {
        FailureKind::Certificate => {
            let lower = message.to_lowercase();
            let refused_us = lower.contains("received fatal alert")
                && ["badcertificate", "certificaterequired", "unknownca"]
                    .iter()
                    .any(|a| lower.contains(a));
            let hint = if refused_us {
                format!(
                    "the registry refused the connection for want of a client certificate it \
                     accepts: put client.cert and client.key in /etc/docker/certs.d/{registry}/ \
                     (or a keypair in the config's registry table)"
                )
            } else if lower.contains("causedasendentity") {
                format!(
                    "the registry's certificate is a self-signed CA certificate that is not \
                     configured for {registry}: put it in /etc/docker/certs.d/{registry}/ca.crt \
                     or pass --registry-ca {registry}=FILE (or --insecure-registry {registry} \
                     to skip verification)"
                )
            } else if lower.contains("unknownissuer") || lower.contains("unknown issuer") {
                format!(
                    "the registry's certificate is signed by an unknown authority: put its CA \
                     in /etc/docker/certs.d/{registry}/ca.crt or pass --registry-ca \
                     {registry}=FILE (or --insecure-registry {registry} to skip verification)"
                )
            } else if lower.contains("notvalidforname") || lower.contains("not valid for name") {
                format!(
                    "the certificate is not valid for {registry}: use the name it was issued for"
                )
            } else if lower.contains("expired") {
                "the registry's certificate has expired (or the clock is wrong)".to_string()
            } else {
                format!(
                    "check the registry's certificate; its CA goes in \
                     /etc/docker/certs.d/{registry}/ca.crt or --registry-ca {registry}=FILE"
                )
            };
            RegistryError::Tls {
                registry: registry.to_string(),
                message,
                hint,
            }
        }
        FailureKind::NotTls => RegistryError::InsecureNotAllowed {
            registry: registry.to_string(),
            message: format!("the registry does not speak HTTPS ({message})"),
        },
        _ => match err {
            ureq::Error::Timeout(t) => match t {
                ureq::Timeout::Connect | ureq::Timeout::Resolve => RegistryError::Unreachable {
                    registry: registry.to_string(),
                    message,
                },
                ureq::Timeout::PerWrite | ureq::Timeout::SendBody | ureq::Timeout::SendRequest => {
                    RegistryError::Silent {
                        registry: registry.to_string(),
                        doing: "reading the upload",
                        idle: idle.as_secs(),
                        message,
                    }
                }
                _ => RegistryError::Silent {
                    registry: registry.to_string(),
                    doing: "sending",
                    idle: idle.as_secs(),
                    message,
                },
            },
            ureq::Error::Io(e) => match interruption(e) {
                Some(what) => RegistryError::Broken {
                    registry: registry.to_string(),
                    message: what,
                },
                None => RegistryError::Unreachable {
                    registry: registry.to_string(),
                    message,
                },
            },
            ureq::Error::Protocol(_) => RegistryError::Broken {
                registry: registry.to_string(),
                message: format!("the answer is not valid HTTP ({message})"),
            },
            _ => RegistryError::Unreachable {
                registry: registry.to_string(),
                message,
            },
        },
    }
}

/// What a broken connection's error says happened, in words: an answer that ended early (ureq
/// reports a close and a reset mid-answer alike) or a reset; None for other I/O errors (a
/// refused connection, no route).
pub(crate) fn interruption(e: &std::io::Error) -> Option<String> {
    use std::io::ErrorKind::*;
    match e.kind() {
        UnexpectedEof => Some(
            "the answer ends early: the registry closed the connection before its end \
             (a truncated answer, or a reset)"
                .to_string(),
        ),
        ConnectionReset | ConnectionAborted | BrokenPipe => {
            Some(format!("the connection was reset ({e})"))
        }
        _ => None,
    }
}

/// `Retry-After` in seconds (HTTP dates are not worth parsing here), capped at a minute.
pub(crate) fn retry_after(resp: &Response) -> Option<Duration> {
    let secs: u64 = header(resp, "retry-after")?.trim().parse().ok()?;
    Some(Duration::from_secs(secs.min(60)))
}

pub(crate) fn header(resp: &Response, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// Why a small body could not be read.
#[derive(Debug)]
pub(crate) enum BodyError {
    /// The connection failed (or went silent for the idle timeout, or the body is over its
    /// limit).
    Transport(ureq::Error),
    /// The body came slower than the minimum speed for a whole window (bytes/s).
    TooSlow(u64),
}

impl BodyError {
    /// The error for `target` at `registry`.
    pub(crate) fn into_error(
        self,
        registry: &str,
        target: &str,
        limits: &TransferLimits,
    ) -> RegistryError {
        match self {
            BodyError::Transport(e) => connection_error(registry, &e, limits.idle_timeout),
            BodyError::TooSlow(speed) => RegistryError::TooSlow {
                registry: registry.to_string(),
                target: target.to_string(),
                speed,
                min_speed: limits.min_speed,
                window: limits.speed_window.as_secs(),
            },
        }
    }
}

/// Reads a response body up to `limit` bytes (error bodies, manifests, token answers) under
/// the transfer limits: each read waits at most the idle timeout (the agent's), and a body
/// that comes slower than the minimum speed for a whole window fails (a manifest trickled a
/// byte a second would otherwise take minutes, an error body hours).
pub(crate) fn read_body(
    resp: Response,
    limit: u64,
    limits: &TransferLimits,
) -> Result<Vec<u8>, BodyError> {
    let mut reader = resp.into_body().into_with_config().limit(limit).reader();
    let mut meter = SpeedMeter::new(limits, 0);
    let mut out = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => return Ok(out),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(BodyError::Transport(ureq::Error::from(e))),
        };
        out.extend_from_slice(&buf[..n]);
        if let Some(speed) = meter.too_slow(out.len() as u64) {
            return Err(BodyError::TooSlow(speed));
        }
    }
}

/// Bytes per window of a transfer, to tell a registry that trickles from a slow one.
pub(crate) struct SpeedMeter {
    window: Duration,
    min_bytes: u64,
    started: std::time::Instant,
    at_start: u64,
}

impl SpeedMeter {
    pub(crate) fn new(limits: &TransferLimits, written: u64) -> SpeedMeter {
        SpeedMeter {
            window: limits.speed_window,
            min_bytes: limits
                .min_speed
                .saturating_mul(limits.speed_window.as_secs().max(1)),
            started: std::time::Instant::now(),
            at_start: written,
        }
    }

    /// At the end of each window: the window's speed (bytes/s) when it was too slow.
    pub(crate) fn too_slow(&mut self, written: u64) -> Option<u64> {
        let elapsed = self.started.elapsed();
        if elapsed < self.window {
            return None;
        }
        let moved = written - self.at_start;
        self.started = std::time::Instant::now();
        self.at_start = written;
        (moved < self.min_bytes).then(|| moved / elapsed.as_secs().max(1))
    }
}

/// `location` made absolute against `base_url` (`scheme://host[:port]...`).
pub(crate) fn resolve_url(base_url: &str, location: &str) -> String {
    if location.starts_with("http://") || location.starts_with("https://") {
        return location.to_string();
    }
    let scheme_end = base_url.find("://").map(|i| i + 3).unwrap_or(0);
    let origin_end = base_url[scheme_end..]
        .find('/')
        .map(|i| scheme_end + i)
        .unwrap_or(base_url.len());
    let origin = &base_url[..origin_end];
    if location.starts_with("//") {
        return format!("{}{location}", &base_url[..scheme_end - 2]);
    }
    if location.starts_with('/') {
        return format!("{origin}{location}");
    }
    let path = base_url[origin_end..].split('?').next().unwrap_or("");
    let dir = path.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
    format!("{origin}{dir}/{location}")
}

/// `url` with `key=value` appended to its query.
pub(crate) fn add_query(url: &str, key: &str, value: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{key}={}", crate::encoding::query_escape(value))
}

/// The host (brackets kept for IPv6) and port of `host[:port]`, the port defaulting by scheme.
fn host_and_port<'a>(authority: &'a str, scheme: &str) -> (&'a str, u16) {
    let default = if scheme == "http" { 80 } else { 443 };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !p.contains(']') && (!h.contains(':') || h.ends_with(']')) => (h, p),
        _ => return (authority, default),
    };
    (host, port.parse().unwrap_or(default))
}

/// `host[:port]` of an absolute URL.
pub(crate) fn url_host(url: &str) -> &str {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    rest.split(['/', '?']).next().unwrap_or(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let base = "https://r:5000/v2/a/blobs/uploads/";
        assert_eq!(
            resolve_url(base, "/v2/a/blobs/uploads/x?s=1"),
            "https://r:5000/v2/a/blobs/uploads/x?s=1"
        );
        assert_eq!(resolve_url(base, "http://s3/x"), "http://s3/x");
        assert_eq!(resolve_url(base, "//cdn/x"), "https://cdn/x");
        assert_eq!(
            resolve_url(base, "x"),
            "https://r:5000/v2/a/blobs/uploads/x"
        );
        assert_eq!(
            add_query("http://h/u?_state=a", "digest", "sha256:ab"),
            "http://h/u?_state=a&digest=sha256%3Aab"
        );
        assert_eq!(
            add_query("http://h/u", "digest", "d"),
            "http://h/u?digest=d"
        );
        assert_eq!(url_host("https://h:1/x?y"), "h:1");
        assert_eq!(url_host("http://h?y"), "h");
        assert_eq!(host_and_port("h:5000", "https"), ("h", 5000));
        assert_eq!(host_and_port("h", "http"), ("h", 80));
        assert_eq!(host_and_port("[::1]:5000", "https"), ("[::1]", 5000));
        assert_eq!(host_and_port("[::1]", "https"), ("[::1]", 443));
    }

    /// Each failure is named for what happened: only a connection that never opened is
    /// "not reachable".
    #[test]
    fn connection_errors_name_what_happened() {
        use std::io::{Error, ErrorKind};
        let idle = Duration::from_secs(7);
        let said = |e: ureq::Error| connection_error("r:5000", &e, idle).to_string();
        let eof = said(ureq::Error::Io(Error::new(
            ErrorKind::UnexpectedEof,
            "Peer disconnected",
        )));
        assert!(
            eof.contains("ends early") && !eof.contains("not reachable"),
            "{eof}"
        );
        let reset = said(ureq::Error::Io(ErrorKind::ConnectionReset.into()));
        assert!(
            reset.contains("reset") && !reset.contains("not reachable"),
            "{reset}"
        );
        let silent = said(ureq::Error::Timeout(ureq::Timeout::PerRead));
        assert!(
            silent.contains("stopped sending (nothing for 7 s"),
            "{silent}"
        );
        let upload = said(ureq::Error::Timeout(ureq::Timeout::PerWrite));
        assert!(upload.contains("stopped reading the upload"), "{upload}");
        for unreachable in [
            ureq::Error::Timeout(ureq::Timeout::Connect),
            ureq::Error::Io(ErrorKind::ConnectionRefused.into()),
            ureq::Error::ConnectionFailed,
        ] {
            let text = said(unreachable);
            assert!(text.contains("not reachable"), "{text}");
        }
    }
}
