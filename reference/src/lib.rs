//! Image references (`busybox`, `ghcr.io/o/app:1.2`, `localhost:5000/a@sha256:...`) parsed
//! and normalized the way docker does (`distribution/reference`: `ParseNormalizedNamed`,
//! `ParseDockerRef`, `TagNameOnly`, `FamiliarString`), with its grammar and error messages.
//!
//! This module owns the reference grammar, docker's normalization rules (default registry
//! `docker.io`, `library/` for official images, `index.docker.io` -> `docker.io`) and the
//! familiar short form. It must not know about registries' endpoints, auth, mirrors or
//! manifests, nor about builds: it only turns strings into validated names and back.
//!
//! Grammar (from distribution):
//!
//! ```text
//! reference        := name [ ":" tag ] [ "@" digest ]
//! name             := [domain '/'] path-component ['/' path-component]*
//! domain           := host [':' port-number]
//! host             := domain-name | '[' IPv6 hex digits and ':' ']'
//! domain-name      := domain-component ['.' domain-component]*
//! domain-component := /([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])/
//! path-component   := /[a-z0-9]+/ [separator /[a-z0-9]+/]*   separator := /[_.]|__|[-]+/
//! tag              := /[\w][\w.-]{0,127}/
//! digest           := algorithm ":" /[0-9a-fA-F]{32,}/
//! algorithm        := /[A-Za-z][A-Za-z0-9]*/ [/[-_+.]/ /[A-Za-z][A-Za-z0-9]*/]*
//! ```
//!
//! A first component is a domain when it contains `.` or `:`, is `localhost`, or has an
//! uppercase letter; otherwise the name is on Docker Hub. The path may be at most 255
//! characters. Digests are checked as go-digest does: `sha256`, `sha384` and `sha512` with
//! lowercase hex of exactly their length; other well-formed algorithms are "unsupported".
//!
//! One deliberate difference: a first component that is picked as the domain but is not a
//! valid one (`foo_bar.com/x`) is an invalid reference here, while distribution returns a
//! name with an empty domain, which no registry client can use.

mod digest;

pub use digest::{Digest, DigestError};

use std::fmt;
use std::str::FromStr;

const DEFAULT_DOMAIN: &str = "docker.io";
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
const OFFICIAL_REPO_PREFIX: &str = "library/";
const DEFAULT_TAG: &str = "latest";

/// Maximum length of the path (the repository name without its domain).
pub const REPOSITORY_NAME_MAX: usize = 255;
/// Maximum length of a tag.
pub const TAG_MAX: usize = 128;

/// A normalized image reference: always has a domain, may have a tag, a digest, or both.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<String>,
}

/// Why a string is not a reference. Display is distribution's message followed by the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("invalid reference format: {input:?}")]
    InvalidFormat { input: String },
    #[error("invalid reference format: repository name ({remote}) must be lowercase: {input:?}")]
    RemoteNameNotLowercase { remote: String, input: String },
    #[error("repository name must be lowercase: {input:?}")]
    NameContainsUppercase { input: String },
    #[error(
        "invalid repository name ({input}), cannot specify 64-byte hexadecimal strings: {input:?}"
    )]
    HexIdentifier { input: String },
    #[error("repository name must not be more than {REPOSITORY_NAME_MAX} characters: {input:?}")]
    NameTooLong { input: String },
    #[error("invalid checksum digest format: {input:?}")]
    DigestInvalidFormat { input: String },
    #[error("invalid checksum digest length: {input:?}")]
    DigestInvalidLength { input: String },
    #[error("unsupported digest algorithm: {input:?}")]
    DigestUnsupported { input: String },
}

impl ReferenceError {
    /// The string that failed to parse.
    pub fn input(&self) -> &str {
        match self {
            ReferenceError::InvalidFormat { input }
            | ReferenceError::RemoteNameNotLowercase { input, .. }
            | ReferenceError::NameContainsUppercase { input }
            | ReferenceError::HexIdentifier { input }
            | ReferenceError::NameTooLong { input }
            | ReferenceError::DigestInvalidFormat { input }
            | ReferenceError::DigestInvalidLength { input }
            | ReferenceError::DigestUnsupported { input } => input,
        }
    }
}

impl Reference {
    /// Parses and normalizes like `ParseNormalizedNamed`: `busybox` becomes
    /// `docker.io/library/busybox`. No default tag is added; tag and digest are both kept.
    pub fn parse(s: &str) -> Result<Reference, ReferenceError> {
        let input = || s.to_string();
        if is_identifier(s) {
            return Err(ReferenceError::HexIdentifier { input: input() });
        }
        let (domain, remainder) = split_docker_domain(s);
        let remote = remainder.split(':').next().unwrap_or_default();
        if remote.to_lowercase() != remote {
            return Err(ReferenceError::RemoteNameNotLowercase {
                remote: remote.to_string(),
                input: input(),
            });
        }
        let full = format!("{domain}/{remainder}");
        let Some(parts) = split_reference(&full) else {
            let lower = full.to_lowercase();
            return Err(if lower != full && split_reference(&lower).is_some() {
                ReferenceError::NameContainsUppercase { input: input() }
            } else {
                ReferenceError::InvalidFormat { input: input() }
            });
        };
        if parts.path.len() > REPOSITORY_NAME_MAX {
            return Err(ReferenceError::NameTooLong { input: input() });
        }
        if let Some(digest) = parts.digest {
            check_digest(digest).map_err(|make| make(input()))?;
        }
        // The grammar can read an invalid domain as a path component (`foo_bar.com/x`), and
        // distribution then returns a name with an empty domain. We need one, so we refuse.
        if parts.domain != Some(domain.as_str()) {
            return Err(ReferenceError::InvalidFormat { input: input() });
        }
        Ok(Reference {
            domain: domain.clone(),
            path: parts.path.to_string(),
            tag: parts.tag.map(str::to_string),
            digest: parts.digest.map(str::to_string),
        })
    }

    /// `ParseDockerRef`: like [`Reference::parse`], then a reference with both tag and digest
    /// keeps only the digest, and one with neither gets `:latest`.
    pub fn parse_docker_ref(s: &str) -> Result<Reference, ReferenceError> {
        let mut r = Reference::parse(s)?;
        if r.tag.is_some() && r.digest.is_some() {
            r.tag = None;
            return Ok(r);
        }
        Ok(r.with_default_tag())
    }

    /// `TagNameOnly`: adds the tag `latest` when there is neither tag nor digest.
    pub fn with_default_tag(mut self) -> Reference {
        if self.tag.is_none() && self.digest.is_none() {
            self.tag = Some(DEFAULT_TAG.to_string());
        }
        self
    }

    /// Registry host, with port if any: `docker.io`, `localhost:5000`, `[::1]:5000`.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// Repository path on the registry: `library/busybox`.
    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// Digest such as `sha256:<64 hex>`.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// Full name without tag or digest: `docker.io/library/busybox`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The short form docker shows (`FamiliarString`): `busybox:latest`, `user/app`,
    /// `ghcr.io/o/app@sha256:...`.
    pub fn familiar(&self) -> String {
        let mut out = if self.domain == DEFAULT_DOMAIN {
            match self.path.strip_prefix(OFFICIAL_REPO_PREFIX) {
                Some(rest) if !rest.contains('/') => rest.to_string(),
                _ => self.path.clone(),
            }
        } else {
            self.name()
        };
        push_suffixes(&mut out, self.tag(), self.digest());
        out
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = self.name();
        push_suffixes(&mut out, self.tag(), self.digest());
        f.write_str(&out)
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reference::parse(s)
    }
}

fn push_suffixes(out: &mut String, tag: Option<&str>, digest: Option<&str>) {
    if let Some(tag) = tag {
        out.push(':');
        out.push_str(tag);
    }
    if let Some(digest) = digest {
        out.push('@');
        out.push_str(digest);
    }
}

/// A 64-character lowercase hex string, which docker reserves for image IDs.
fn is_identifier(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// distribution's `splitDockerDomain`: picks the domain and the remainder (path, tag and
/// digest), adding `docker.io` and `library/` as docker does.
fn split_docker_domain(name: &str) -> (String, String) {
    let Some((first, rest)) = name.split_once('/') else {
        return (
            DEFAULT_DOMAIN.to_string(),
            format!("{OFFICIAL_REPO_PREFIX}{name}"),
        );
    };
    let (domain, remainder) = if first == LEGACY_DEFAULT_DOMAIN {
        (DEFAULT_DOMAIN, rest)
    } else if first == "localhost" || first.contains(['.', ':']) || first.to_lowercase() != first {
        (first, rest)
    } else {
        (DEFAULT_DOMAIN, name)
    };
    let remainder = if domain == DEFAULT_DOMAIN && !remainder.contains('/') {
        format!("{OFFICIAL_REPO_PREFIX}{remainder}")
    } else {
        remainder.to_string()
    };
    (domain.to_string(), remainder)
}

/// The pieces of a string matching the reference grammar.
struct Parts<'a> {
    domain: Option<&'a str>,
    path: &'a str,
    tag: Option<&'a str>,
    digest: Option<&'a str>,
}

/// Matches `s` against the whole reference grammar (distribution's `ReferenceRegexp` with its
/// anchored-name split). A first component that is a valid domain is taken as the domain.
fn split_reference(s: &str) -> Option<Parts<'_>> {
    let (name_tag, digest) = match s.split_once('@') {
        Some((name_tag, digest)) => (name_tag, Some(digest)),
        None => (s, None),
    };
    if digest.is_some_and(|d| !is_digest(d)) {
        return None;
    }
    // Neither path components nor tags contain ':' or '/', so a ':' after the last '/' can
    // only start the tag.
    let last_start = name_tag.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match name_tag[last_start..].find(':') {
        Some(j) => (
            &name_tag[..last_start + j],
            Some(&name_tag[last_start + j + 1..]),
        ),
        None => (name_tag, None),
    };
    if tag.is_some_and(|t| !is_tag(t)) {
        return None;
    }
    if let Some((first, path)) = name.split_once('/') {
        if is_domain(first) && path.split('/').all(is_path_component) {
            return Some(Parts {
                domain: Some(first),
                path,
                tag,
                digest,
            });
        }
    }
    name.split('/').all(is_path_component).then_some(Parts {
        domain: None,
        path: name,
        tag,
        digest,
    })
}

/// `[a-z0-9]+` joined by separators `.`, `_`, `__` or one or more `-`.
fn is_path_component(s: &str) -> bool {
    let b = s.as_bytes();
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    let mut i = 0;
    loop {
        let start = i;
        while i < b.len() && alnum(b[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == b.len() {
            return true;
        }
        match b[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if b.get(i) == Some(&b'_') {
                    i += 1;
                }
            }
            b'-' => {
                while b.get(i) == Some(&b'-') {
                    i += 1;
                }
            }
            _ => return false,
        }
    }
}

/// `host[:port]` where host is a domain name or a bracketed IPv6 address.
fn is_domain(s: &str) -> bool {
    let (host_ok, port) = if let Some(inner) = s.strip_prefix('[') {
        let Some((addr, after)) = inner.split_once(']') else {
            return false;
        };
        let ok = !addr.is_empty() && addr.bytes().all(|c| c.is_ascii_hexdigit() || c == b':');
        match after {
            "" => (ok, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (ok, Some(port)),
                None => return false,
            },
        }
    } else {
        let (host, port) = match s.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (s, None),
        };
        (host.split('.').all(is_domain_component), port)
    };
    host_ok && port.is_none_or(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()))
}

fn is_domain_component(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        }
        _ => false,
    }
}

/// `[\w][\w.-]{0,127}`.
fn is_tag(s: &str) -> bool {
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= TAG_MAX
        && word(b[0])
        && b[1..].iter().all(|&c| word(c) || c == b'.' || c == b'-')
}

/// distribution's digest grammar: `algorithm:hex` with at least 32 hex digits.
fn is_digest(s: &str) -> bool {
    let Some((algorithm, hex)) = s.split_once(':') else {
        return false;
    };
    let component_ok = |c: &str| {
        let b = c.as_bytes();
        !b.is_empty() && b[0].is_ascii_alphabetic() && b.iter().all(u8::is_ascii_alphanumeric)
    };
    algorithm.split(['-', '_', '+', '.']).all(component_ok)
        && hex.len() >= 32
        && hex.bytes().all(|c| c.is_ascii_hexdigit())
}

type MakeError = fn(String) -> ReferenceError;

/// go-digest's `Digest.Validate` for a string already matching [`is_digest`].
fn check_digest(digest: &str) -> Result<(), MakeError> {
    let (algorithm, hex) = digest.split_once(':').unwrap_or((digest, ""));
    let size = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        // go-digest's own grammar wants a lowercase algorithm; a well-formed but unknown one
        // is "unsupported".
        _ if algorithm.bytes().any(|c| c.is_ascii_uppercase()) => {
            return Err(|input| ReferenceError::DigestInvalidFormat { input })
        }
        _ => return Err(|input| ReferenceError::DigestUnsupported { input }),
    };
    if hex.len() != size {
        return Err(|input| ReferenceError::DigestInvalidLength { input });
    }
    if !hex.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(|input| ReferenceError::DigestInvalidFormat { input });
    }
    Ok(())
}
