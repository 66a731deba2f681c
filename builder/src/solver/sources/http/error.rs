//! What an `ADD <url>` fails with, in words that say what to check.

use crate::store::StoreError;
use cache::CacheError;
use std::io;
use std::time::Duration;

/// Why an `ADD <url>` could not be fetched or committed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("the URL names no file (\"{filename}\"): give a URL whose path ends in a file name")]
    NoFileName { filename: String },
    #[error("not a valid URL: {0}")]
    BadUrl(#[source] ureq::http::uri::InvalidUri),
    #[error("only http:// and https:// URLs can be downloaded")]
    Scheme,
    #[error("the URL has no host")]
    NoHost,
    /// `HTTP_PROXY` / `HTTPS_PROXY` names no usable proxy (Go's rule: `registry::proxy`).
    #[error("{0}")]
    Proxy(#[source] registry::proxy::ProxyError),
    /// The request, or reading the body, failed (`timeout`: the silence allowed).
    #[error("{}", describe_request(.server, .source, .timeout))]
    Request {
        server: String,
        timeout: Duration,
        #[source]
        source: Box<ureq::Error>,
    },
    #[error("server answered 304 Not Modified to a request that was not conditional")]
    UnaskedNotModified,
    /// An answer other than success (or 304).
    #[error("{}", format!("server answered {code} {reason}").trim_end())]
    Status { code: u16, reason: &'static str },
    #[error("checksum mismatch: expected {expected}, but the downloaded file is {actual}")]
    ChecksumMismatch { expected: String, actual: String },
    /// A 304 reused a blob that does not match `--checksum`.
    #[error(
        "checksum mismatch: expected {expected}, but the file (unchanged on the server) is {actual}"
    )]
    UnchangedMismatch { expected: String, actual: String },
    #[error("unsupported checksum {0}")]
    UnsupportedChecksum(String),
    /// The store's blobs, while doing `what` (storing or reading the download).
    #[error("{what}: {source}")]
    Blob {
        what: &'static str,
        #[source]
        source: CacheError,
    },
    /// Committing the file as a layer, while doing `what`.
    #[error("{what}: {source}")]
    Commit {
        what: &'static str,
        #[source]
        source: StoreError,
    },
    /// Local file work (`what`: what was being done, with the path).
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    /// The index (the URL's and the content's records) or a blob read back.
    #[error(transparent)]
    Cache(#[from] CacheError),
    /// The cache of the committed layer.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl HttpError {
    /// A failed request or body read from `server`.
    pub(super) fn request(server: &str, timeout: Duration) -> impl Fn(ureq::Error) -> HttpError {
        let server = server.to_string();
        move |source| HttpError::Request {
            server: server.clone(),
            timeout,
            source: Box::new(source),
        }
    }

    /// An I/O failure while doing `what`.
    pub(super) fn io(what: impl Into<String>) -> impl FnOnce(io::Error) -> HttpError {
        let what = what.into();
        move |source| HttpError::Io { what, source }
    }
}

/// A failed request or body read, in words that say what to check.
fn describe_request(server: &str, e: &ureq::Error, timeout: &Duration) -> String {
    let secs = timeout.as_secs();
    let slow = "check the network and that the server answers (PALLET_HTTP_TIMEOUT=<seconds> sets the limit)";
    let proxies = "check the network (and HTTP_PROXY, HTTPS_PROXY, NO_PROXY)";
    match e {
        ureq::Error::Timeout(t) => {
            format!("timed out after {secs} s talking to {server} ({t}): {slow}")
        }
        ureq::Error::Io(io) if io.kind() == io::ErrorKind::TimedOut => {
            format!("timed out after {secs} s talking to {server} ({io}): {slow}")
        }
        ureq::Error::HostNotFound => {
            format!("host not found: {server}: check the URL and the network (DNS)")
        }
        ureq::Error::Io(io) if io.kind() == io::ErrorKind::UnexpectedEof => format!(
            "{server} closed the connection before the whole file arrived: check the network and try again"
        ),
        ureq::Error::Io(io) => format!("cannot download from {server}: {io}: {proxies}"),
        ureq::Error::ConnectProxyFailed(m) => {
            format!("the proxy refused the connection to {server}: {m}: {proxies}")
        }
        other => format!("cannot download from {server}: {other}: {proxies}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_read_as_before() {
        let status = |code, reason| HttpError::Status { code, reason }.to_string();
        assert_eq!(status(404, "Not Found"), "server answered 404 Not Found");
        assert_eq!(status(599, ""), "server answered 599");
        let eof = HttpError::request("h:80", Duration::from_secs(60))(ureq::Error::Io(
            io::Error::from(io::ErrorKind::UnexpectedEof),
        ));
        assert_eq!(
            eof.to_string(),
            "h:80 closed the connection before the whole file arrived: check the network and try again"
        );
        let slow = HttpError::request("h:80", Duration::from_secs(5))(ureq::Error::Io(
            io::Error::from(io::ErrorKind::TimedOut),
        ));
        assert!(
            slow.to_string()
                .starts_with("timed out after 5 s talking to h:80 ("),
            "{slow}"
        );
    }
}
