//! Errors that say what failed, where (reference, HTTP method and status) and what to do. The
//! registry's error JSON (UNAUTHORIZED, DENIED, NAME_UNKNOWN, BLOB_UNKNOWN, MANIFEST_INVALID...)
//! is turned into that message. Never contains credentials or tokens: nothing here is built from
//! a request's headers, only from the reference, the URL path and the registry's answer.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The registry settings file is malformed.
    #[error("{}: {message}", path.display())]
    Config { path: PathBuf, message: String },

    /// docker's config.json or a credential helper failed.
    #[error("credentials ({location}): {message}")]
    Credentials { location: String, message: String },

    /// No connection (DNS, refused, a connect timeout) after the retries.
    #[error(
        "{registry}: the registry is not reachable: {message} \
         (check the host name and port, proxy settings and that the registry is running)"
    )]
    Unreachable { registry: String, message: String },

    /// The registry answered, then went silent for the idle timeout (no answer to a request,
    /// or it stopped reading an upload), after the retries.
    #[error(
        "{registry}: the registry stopped {doing} (nothing for {idle} s, after the retries: \
         {message}); it is stalled or overloaded: try again later, or raise \
         PALLET_REGISTRY_IDLE_TIMEOUT"
    )]
    Silent {
        registry: String,
        /// `sending` (no answer, no body bytes) or `reading the upload`.
        doing: &'static str,
        idle: u64,
        message: String,
    },

    /// A connection broke mid-exchange, after the retries: an answer that ends before its
    /// length (the registry closed the connection early, or reset it), or a reset.
    #[error(
        "{registry}: {message}; the registry or the network failed mid-transfer: try again later"
    )]
    Broken { registry: String, message: String },

    /// A download went silent for the idle timeout, twice in a row without a byte.
    #[error(
        "{registry}: {target}: the registry stopped sending at byte {at} (nothing for {idle} s, \
         twice); it is stalled or overloaded: try again later, or raise \
         PALLET_REGISTRY_IDLE_TIMEOUT"
    )]
    Stalled {
        registry: String,
        target: String,
        at: u64,
        idle: u64,
    },

    /// A download ran below the minimum speed for a whole window.
    #[error(
        "{registry}: {target}: the download ran at {speed} bytes/s for {window} s, below the \
         minimum of {min_speed} bytes/s; the registry or the network is too slow (lower \
         PALLET_REGISTRY_MIN_SPEED to wait longer)"
    )]
    TooSlow {
        registry: String,
        target: String,
        speed: u64,
        min_speed: u64,
        window: u64,
    },

    /// The TLS handshake failed (unknown CA, wrong host name...).
    #[error("{registry}: TLS: {message}; {hint}")]
    Tls {
        registry: String,
        message: String,
        hint: String,
    },

    /// HTTP_PROXY / HTTPS_PROXY cannot be used.
    #[error("{registry}: {source}")]
    Proxy {
        registry: String,
        #[source]
        source: crate::proxy::ProxyError,
    },

    /// The registry answered HTTPS with plain HTTP, or HTTP is needed but not allowed.
    #[error("{registry}: {message}; use --insecure-registry {registry} if it serves plain HTTP")]
    InsecureNotAllowed { registry: String, message: String },

    /// The registry refused the request: HTTP status, its error codes and what to do.
    #[error("{0}")]
    Http(Box<HttpFailure>),

    /// Content did not hash to the digest that names it.
    #[error(
        "{target}: {what} {expected} does not match its content (content digest {actual}); \
         the data is corrupt (or was changed after the digest was computed)"
    )]
    DigestMismatch {
        target: String,
        /// `blob`, `manifest`, `config`.
        what: String,
        expected: String,
        actual: String,
    },

    /// Content was not as long as its descriptor says.
    #[error("{target}: blob {digest} has {actual} bytes, its descriptor says {expected}")]
    SizeMismatch {
        target: String,
        digest: String,
        expected: u64,
        actual: u64,
    },

    /// An index has no manifest for the wanted platform.
    #[error(
        "{reference}: no image for platform {wanted}; the index has: {}",
        if available.is_empty() { "nothing".to_string() } else { available.join(", ") }
    )]
    PlatformNotFound {
        reference: String,
        wanted: String,
        available: Vec<String>,
    },

    /// A manifest or index that cannot be read (bad JSON, unknown media type).
    #[error("{target}: invalid manifest: {message}")]
    InvalidManifest { target: String, message: String },

    /// Local I/O: writing a blob to its sink, opening a blob to upload.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },

    #[error("{0}")]
    Other(String),
}

/// A registry's error answer, with what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{method} {target}: {}{}; {hint}", status_reason(*status), codes_text(codes, message))]
pub struct HttpFailure {
    /// `host[:port]` of the registry (or token server) that answered.
    pub registry: String,
    /// What was asked for: `localhost:5000/app:1.0`, `blob sha256:... of localhost:5000/app`.
    pub target: String,
    pub method: String,
    pub status: u16,
    /// The registry's error codes (`MANIFEST_UNKNOWN`, ...), in order.
    pub codes: Vec<String>,
    /// The registry's messages joined.
    pub message: String,
    pub hint: String,
}

impl RegistryError {
    /// The `Http` variant from its parts.
    pub fn http(
        registry: &str,
        target: String,
        method: &str,
        status: u16,
        message: String,
        hint: String,
    ) -> RegistryError {
        RegistryError::Http(Box::new(HttpFailure {
            registry: registry.to_string(),
            target,
            method: method.to_string(),
            status,
            codes: Vec::new(),
            message,
            hint,
        }))
    }

    /// The HTTP status when the registry answered with an error.
    pub fn status(&self) -> Option<u16> {
        match self {
            RegistryError::Http(f) => Some(f.status),
            _ => None,
        }
    }

    /// The registry's error codes (`MANIFEST_UNKNOWN`, ...), empty for other errors.
    pub fn codes(&self) -> &[String] {
        match self {
            RegistryError::Http(f) => &f.codes,
            _ => &[],
        }
    }

    /// True when the registry said the thing does not exist (404 or a *_UNKNOWN code).
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404) || self.codes().iter().any(|c| c.ends_with("_UNKNOWN"))
    }

    /// True for errors worth retrying: unreachable, 5xx, 408, 429.
    pub fn is_transient(&self) -> bool {
        match self {
            RegistryError::Unreachable { .. }
            | RegistryError::Silent { .. }
            | RegistryError::Broken { .. } => true,
            RegistryError::Http(f) => f.status >= 500 || f.status == 408 || f.status == 429,
            _ => false,
        }
    }

    /// True when authentication failed (401) or access was denied (403).
    pub fn is_auth(&self) -> bool {
        matches!(self.status(), Some(401) | Some(403))
    }
}

fn status_reason(status: u16) -> String {
    let reason = match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Payload Too Large",
        416 => "Range Not Satisfiable",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    };
    if reason.is_empty() {
        status.to_string()
    } else {
        format!("{status} {reason}")
    }
}

fn codes_text(codes: &[String], message: &str) -> String {
    match (codes.is_empty(), message.is_empty()) {
        (true, true) => String::new(),
        (true, false) => format!(": {message}"),
        (false, true) => format!(": {}", codes.join(", ")),
        (false, false) => format!(": {}: {message}", codes.join(", ")),
    }
}

/// The registry's error body: `{"errors": [{"code", "message", "detail"}]}`.
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct ErrorBody {
    #[serde(default)]
    pub errors: Vec<ErrorEntry>,
}

#[derive(Debug, serde::Deserialize)]
pub(crate) struct ErrorEntry {
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub message: String,
}

/// What the caller was doing, for the error message and the hint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    Ping,
    Token,
    Manifest,
    Blob,
    Upload,
}

/// Builds the `Http` error from a response's status and body.
pub(crate) fn http_error(
    registry: &str,
    target: String,
    method: &str,
    status: u16,
    body: &[u8],
    action: Action,
) -> RegistryError {
    let parsed: ErrorBody = serde_json::from_slice(body).unwrap_or_default();
    let codes: Vec<String> = parsed
        .errors
        .iter()
        .map(|e| e.code.clone())
        .filter(|c| !c.is_empty())
        .collect();
    let mut message = parsed
        .errors
        .iter()
        .map(|e| e.message.clone())
        .filter(|m| !m.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    if codes.is_empty() && message.is_empty() && action == Action::Token {
        // Token servers answer in many shapes ({"details": ...}, plain text); keep it short.
        let text = String::from_utf8_lossy(body);
        message = text.trim().chars().take(200).collect();
    }
    let hint = hint(registry, status, &codes, action);
    RegistryError::Http(Box::new(HttpFailure {
        registry: registry.to_string(),
        target,
        method: method.to_string(),
        status,
        codes,
        message,
        hint,
    }))
}

fn hint(registry: &str, status: u16, codes: &[String], action: Action) -> String {
    let login = format!("run `pallet login {registry}`");
    let code = codes.first().map(String::as_str).unwrap_or("");
    match code {
        "UNAUTHORIZED" => {
            format!("authentication required or the credentials were rejected: {login}")
        }
        "DENIED" => format!(
            "access denied: check the repository name and that the account may use it ({login})"
        ),
        "NAME_UNKNOWN" => "the repository does not exist: check the repository name".into(),
        "NAME_INVALID" => "the registry refuses this repository name".into(),
        // distribution 2.8 also answers MANIFEST_UNKNOWN for a repository that does not exist.
        "MANIFEST_UNKNOWN" => {
            "the repository or tag does not exist: check the repository name and the tag".into()
        }
        "BLOB_UNKNOWN" => "the registry does not have this blob".into(),
        "MANIFEST_BLOB_UNKNOWN" => {
            "the manifest references a blob the registry does not have: push the blobs first".into()
        }
        "MANIFEST_INVALID" | "MANIFEST_UNVERIFIED" => {
            "the registry rejected the manifest (media type or references)".into()
        }
        "TAG_INVALID" => "the registry refuses this tag".into(),
        "DIGEST_INVALID" => {
            "the uploaded content does not match its digest: the blob is corrupt".into()
        }
        "SIZE_INVALID" => "the uploaded content does not have its declared size".into(),
        "BLOB_UPLOAD_UNKNOWN" | "BLOB_UPLOAD_INVALID" => {
            "the upload session was lost: push again".into()
        }
        "TOOMANYREQUESTS" => format!("rate limited: wait, or {login} for a higher limit"),
        "UNSUPPORTED" => "the registry does not support this operation".into(),
        _ => match status {
            401 if action == Action::Token => {
                format!("wrong username or password: {login}")
            }
            401 => format!("authentication required or the credentials were rejected: {login}"),
            403 => format!("access denied: check the repository name and your access ({login})"),
            404 if action == Action::Manifest => {
                "the repository or tag does not exist: check the name and tag".into()
            }
            404 if action == Action::Ping => {
                "no registry API (/v2/) at this address: check the host and port".into()
            }
            404 => "not found: check the repository name".into(),
            429 => format!("rate limited: wait, or {login} for a higher limit"),
            s if s >= 500 => "the registry failed; try again later".into(),
            _ => "the registry refused the request".into(),
        },
    }
}
