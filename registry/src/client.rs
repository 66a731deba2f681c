//! One registry client for a process: connection pools per registry (TLS roots, plain HTTP
//! where allowed), auth (anonymous, basic, bearer tokens cached per scope), retries with backoff,
//! and the distribution API calls. Thread-safe: share one `Client` across threads.
//!
//! Reads (manifests, blobs) go to the registry's mirrors first when configured (any registry's,
//! from the config's `registry` table; docker.io's also from `registry-mirrors`), in order, then
//! to the registry; writes go to the reference's registry only. Uploads live in `upload.rs`.

use crate::config::TransferLimits;
use crate::digest::{digest_like, Hasher};
use crate::error::{http_error, Action};
use crate::manifest::{self, Descriptor};
use crate::session::{api_host, Call, Endpoint, Session};
use crate::transport::{self, Body, Method, RequestCounts, SpeedMeter, Transport};
use crate::{DockerConfig, Reference, RegistryConfig, RegistryError};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};

/// Largest manifest accepted (distribution refuses more than 4 MiB).
const MANIFEST_LIMIT: u64 = 8 << 20;

pub struct Client {
    pub(crate) session: Session,
    /// Upload sessions a mount attempt started (registry, repo, digest) -> upload URL.
    pub(crate) pending_uploads: Mutex<HashMap<(String, String, String), String>>,
}

/// A download sink that takes the sha256 of everything written to it, so that
/// [`Client::fetch_blob_hashed`] need not hash the blob again.
pub trait HashingSink: Write {
    /// `sha256:<hex>` of all bytes written so far.
    fn sha256_so_far(&self) -> String;
}

/// A sink that also hashes what it is given (for [`Client::fetch_blob`]).
struct HashingWriter<'a> {
    inner: &'a mut dyn Write,
    hasher: &'a mut Hasher,
}

impl Write for HashingWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Ok if the downloaded bytes hash to the blob's digest.
fn check_digest(
    repository: &Reference,
    blob: &Descriptor,
    actual: String,
) -> Result<(), RegistryError> {
    if actual == blob.digest {
        return Ok(());
    }
    Err(RegistryError::DigestMismatch {
        target: repository.name(),
        what: "blob".into(),
        expected: blob.digest.to_string(),
        actual,
    })
}

/// A manifest or index as fetched: its bytes, media type and sha256 digest.
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    pub bytes: Vec<u8>,
    pub media_type: String,
    pub digest: String,
}

/// Opens a blob's content from the start (called again for each retry).
pub type BlobOpener<'a> = dyn Fn() -> std::io::Result<Box<dyn Read + Send>> + Send + Sync + 'a;

/// Token scopes: pull on a repository.
pub(crate) fn pull_scope(path: &str) -> Vec<String> {
    vec![format!("repository:{path}:pull")]
}

/// Token scopes: pull and push on a repository.
pub(crate) fn push_scope(path: &str) -> Vec<String> {
    vec![format!("repository:{path}:pull,push")]
}

impl Client {
    pub fn new(config: RegistryConfig, credentials: DockerConfig) -> Client {
        Client {
            session: Session::new(Transport::new(config), credentials),
            pending_uploads: Mutex::new(HashMap::new()),
        }
    }

    pub fn config(&self) -> &RegistryConfig {
        &self.session.transport.config
    }

    /// GET /v2/ with the given credentials (or the stored ones): `pallet login` checks them.
    /// `registry` is a host as in a reference (`docker.io`, `localhost:5000`).
    pub fn check_login(
        &self,
        registry: &str,
        credential: Option<&crate::Credential>,
    ) -> Result<(), RegistryError> {
        let host = api_host(registry);
        let stored;
        let cred = match credential {
            Some(c) => Some(c),
            None => {
                stored = self.session.credential(host)?;
                stored.as_ref()
            }
        };
        self.session.check_login(host, cred)
    }

    /// The endpoint for writes to `reference`'s registry.
    pub(crate) fn push_endpoint(
        &self,
        reference: &Reference,
    ) -> Result<Arc<Endpoint>, RegistryError> {
        self.session.endpoint(api_host(reference.domain()), None)
    }

    /// Endpoints to read from, in order: the registry's mirrors, then the registry itself.
    fn pull_endpoints(&self, reference: &Reference) -> Vec<(String, Option<String>)> {
        let mut out = self.config().mirrors_for(reference.domain());
        out.push((api_host(reference.domain()).to_string(), None));
        out
    }

    /// Runs `op` against each read endpoint until one succeeds; the last error otherwise.
    fn with_pull_endpoints<T>(
        &self,
        reference: &Reference,
        mut op: impl FnMut(&Endpoint) -> Result<T, RegistryError>,
    ) -> Result<T, RegistryError> {
        let endpoints = self.pull_endpoints(reference);
        let mut last = None;
        for (host, scheme) in &endpoints {
            let result = self
                .session
                .endpoint(host, scheme.as_deref())
                .and_then(|ep| op(&ep));
            match result {
                Ok(v) => return Ok(v),
                // A mirror that fails (down, missing the image) falls back to the next one.
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("at least the registry itself"))
    }

    /// The manifest or index a tag or digest names (accepts OCI and Docker media types).
    /// With a digest reference the content's digest is verified.
    pub fn get_manifest(&self, reference: &Reference) -> Result<FetchedManifest, RegistryError> {
        self.with_pull_endpoints(reference, |ep| self.get_manifest_at(ep, reference))
    }

    fn manifest_url(ep: &Endpoint, reference: &Reference) -> String {
        let id = reference.digest().or(reference.tag()).unwrap_or("latest");
        format!("{}/v2/{}/manifests/{id}", ep.base, reference.path())
    }

    fn get_manifest_at(
        &self,
        ep: &Endpoint,
        reference: &Reference,
    ) -> Result<FetchedManifest, RegistryError> {
        let scopes = pull_scope(reference.path());
        let limits = &self.config().transfer;
        let policy = &self.config().retry;
        // A body that breaks off (ends early, a reset, silence) is asked for again.
        let mut attempt = 0;
        let (status, content_type, bytes) = loop {
            let resp = self.session.call(
                ep,
                Call::new(Method::Get, Self::manifest_url(ep, reference), &scopes)
                    .headers(vec![("accept", manifest::MANIFEST_ACCEPT.to_string())]),
            )?;
            let status = resp.status().as_u16();
            let content_type = transport::header(&resp, "content-type");
            match transport::read_body(resp, MANIFEST_LIMIT, limits) {
                Ok(bytes) => break (status, content_type, bytes),
                // Not a connection problem: the registry answered, with too much (issue 13).
                Err(transport::BodyError::Transport(ureq::Error::BodyExceedsLimit(_))) => {
                    return Err(RegistryError::InvalidManifest {
                        target: reference.to_string(),
                        message: format!(
                            "the manifest is larger than pallet's limit of {} MiB for a \
                             manifest or index (real ones are a few KB); the registry or the \
                             image is broken or hostile",
                            MANIFEST_LIMIT >> 20
                        ),
                    })
                }
                Err(e) => {
                    let e = e.into_error(&ep.host, &reference.to_string(), limits);
                    let broke = matches!(
                        e,
                        RegistryError::Broken { .. } | RegistryError::Silent { .. }
                    );
                    if !broke || attempt + 1 >= policy.attempts {
                        return Err(e);
                    }
                    std::thread::sleep(policy.delay(attempt));
                    attempt += 1;
                }
            }
        };
        if status != 200 {
            return Err(http_error(
                &ep.host,
                reference.to_string(),
                "GET",
                status,
                &bytes,
                Action::Manifest,
            ));
        }
        let digest = digest_like(reference.digest().unwrap_or("sha256:"), &bytes);
        if let Some(expected) = reference.digest() {
            if digest != expected {
                return Err(RegistryError::DigestMismatch {
                    target: reference.to_string(),
                    what: "manifest".into(),
                    expected: expected.to_string(),
                    actual: digest,
                });
            }
        }
        let media_type = manifest::detect_media_type(content_type.as_deref(), &bytes);
        Ok(FetchedManifest {
            bytes,
            media_type,
            digest,
        })
    }

    /// HEAD: the digest a tag points at now, None if the tag does not exist.
    pub fn head_manifest(&self, reference: &Reference) -> Result<Option<String>, RegistryError> {
        self.with_pull_endpoints(reference, |ep| {
            let scopes = pull_scope(reference.path());
            let resp = self.session.call(
                ep,
                Call::new(Method::Head, Self::manifest_url(ep, reference), &scopes)
                    .headers(vec![("accept", manifest::MANIFEST_ACCEPT.to_string())]),
            )?;
            let status = resp.status().as_u16();
            let digest = transport::header(&resp, "docker-content-digest");
            let _ = transport::read_body(resp, 1 << 16, &self.config().transfer);
            match status {
                200 => match digest {
                    Some(d) => Ok(Some(d)),
                    // Some registries omit the header: the digest of the content then.
                    None => self.get_manifest_at(ep, reference).map(|m| Some(m.digest)),
                },
                404 => Ok(None),
                _ => Err(http_error(
                    &ep.host,
                    reference.to_string(),
                    "HEAD",
                    status,
                    b"",
                    Action::Manifest,
                )),
            }
        })
    }

    /// Streams a blob into `sink`, verifying size and sha256 before returning Ok; a broken
    /// connection resumes with a Range request. `progress(bytes_so_far)`. On error the sink may
    /// hold part of the blob: write to a temporary file and keep it only on Ok.
    pub fn fetch_blob(
        &self,
        repository: &Reference,
        blob: &Descriptor,
        sink: &mut dyn Write,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<(), RegistryError> {
        let target = format!("blob {} of {}", blob.digest, repository.name());
        let mut hasher = Hasher::for_digest(&blob.digest).ok_or_else(|| {
            RegistryError::Other(format!("{target}: unsupported digest algorithm"))
        })?;
        let mut hashing = HashingWriter {
            inner: sink,
            hasher: &mut hasher,
        };
        self.fetch_blob_checked(repository, blob, &target, &mut hashing, progress)?;
        check_digest(repository, blob, hasher.finish())
    }

    /// [`Client::fetch_blob`] into a sink that takes the sha256 of what it is given (a
    /// content-addressed blob writer): a sha256 blob is checked against the sink's hash instead
    /// of hashing the same bytes a second time. Other algorithms are hashed here as usual.
    pub fn fetch_blob_hashed(
        &self,
        repository: &Reference,
        blob: &Descriptor,
        sink: &mut dyn HashingSink,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<(), RegistryError> {
        if !blob.digest.starts_with("sha256:") {
            return self.fetch_blob(repository, blob, sink, progress);
        }
        let target = format!("blob {} of {}", blob.digest, repository.name());
        self.fetch_blob_checked(repository, blob, &target, sink, progress)?;
        check_digest(repository, blob, sink.sha256_so_far())
    }

    /// The download and its size check (the digest is the caller's to check).
    fn fetch_blob_checked(
        &self,
        repository: &Reference,
        blob: &Descriptor,
        target: &str,
        sink: &mut dyn Write,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<(), RegistryError> {
        let mut written: u64 = 0;
        self.with_pull_endpoints(repository, |ep| {
            self.fetch_blob_at(ep, repository, blob, target, sink, progress, &mut written)
        })?;
        if written != blob.size {
            return Err(RegistryError::SizeMismatch {
                target: repository.name(),
                digest: blob.digest.to_string(),
                expected: blob.size,
                actual: written,
            });
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn fetch_blob_at(
        &self,
        ep: &Endpoint,
        repository: &Reference,
        blob: &Descriptor,
        target: &str,
        sink: &mut dyn Write,
        progress: &(dyn Fn(u64) + Sync),
        written: &mut u64,
    ) -> Result<(), RegistryError> {
        let scopes = pull_scope(repository.path());
        let url = format!("{}/v2/{}/blobs/{}", ep.base, repository.path(), blob.digest);
        let policy = &self.config().retry;
        let limits = &self.config().transfer;
        let mut meter = SpeedMeter::new(limits, *written);
        let (mut stalls, mut silences) = (0, 0);
        loop {
            let mut headers = Vec::new();
            if *written > 0 {
                headers.push(("range", format!("bytes={written}-")));
            }
            let resp = self.session.call(
                ep,
                Call::new(Method::Get, url.clone(), &scopes).headers(headers),
            )?;
            let status = resp.status().as_u16();
            // 200 on a range request: the server ignored it; skip what we already have.
            let mut skip = match status {
                206 => 0,
                200 => *written,
                _ => {
                    let body = transport::read_body(resp, 1 << 16, &self.config().transfer)
                        .unwrap_or_default();
                    return Err(http_error(
                        &ep.host,
                        target.to_string(),
                        "GET",
                        status,
                        &body,
                        Action::Blob,
                    ));
                }
            };
            let before = *written;
            let mut reader = resp.into_body().into_reader();
            let mut buf = vec![0u8; 256 * 1024];
            let broken = loop {
                let n = match reader.read(&mut buf) {
                    Ok(0) => break None,
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => break Some(e),
                };
                let mut chunk = &buf[..n];
                if skip > 0 {
                    let s = skip.min(n as u64) as usize;
                    chunk = &chunk[s..];
                    skip -= s as u64;
                }
                if chunk.is_empty() {
                    continue;
                }
                if *written + chunk.len() as u64 > blob.size {
                    return Err(RegistryError::SizeMismatch {
                        target: repository.name(),
                        digest: blob.digest.to_string(),
                        expected: blob.size,
                        actual: *written + chunk.len() as u64,
                    });
                }
                sink.write_all(chunk).map_err(|e| RegistryError::Io {
                    what: format!("writing {target}"),
                    source: e,
                })?;
                *written += chunk.len() as u64;
                progress(*written);
                if let Some(speed) = meter.too_slow(*written) {
                    return Err(RegistryError::TooSlow {
                        registry: ep.host.clone(),
                        target: target.to_string(),
                        speed,
                        min_speed: limits.min_speed,
                        window: limits.speed_window.as_secs(),
                    });
                }
            };
            let Some(err) = broken else {
                return Ok(());
            };
            // A read that timed out: the registry went silent. Resume, but not for long.
            let silent = err.kind() == std::io::ErrorKind::TimedOut
                || err.to_string().to_lowercase().contains("timeout");
            silences = match (*written > before, silent) {
                (true, _) => 0,
                (false, true) => silences + 1,
                (false, false) => silences,
            };
            if silences >= TransferLimits::SILENCES {
                return Err(RegistryError::Stalled {
                    registry: ep.host.clone(),
                    target: target.to_string(),
                    at: *written,
                    idle: limits.idle_timeout.as_secs(),
                });
            }
            // Resume after a broken connection; give up after `attempts` tries without progress.
            stalls = if *written > before { 0 } else { stalls + 1 };
            if stalls + 1 >= policy.attempts {
                let what = transport::interruption(&err).unwrap_or_else(|| err.to_string());
                return Err(RegistryError::Broken {
                    registry: ep.host.clone(),
                    message: format!(
                        "{target}: the download broke at byte {written} of {}, {} times \
                         without progress: {what}",
                        blob.size, policy.attempts
                    ),
                });
            }
            std::thread::sleep(policy.delay(stalls));
        }
    }

    /// HEAD /v2/<name>/blobs/<digest> with pull rights only (through mirrors, as a pull):
    /// whether a reader can fetch the blob (a build cache's layers, checked at import).
    pub fn blob_readable(
        &self,
        repository: &Reference,
        digest: &str,
    ) -> Result<bool, RegistryError> {
        self.with_pull_endpoints(repository, |ep| {
            self.head_blob(ep, repository, digest, &pull_scope(repository.path()))
        })
    }

    /// HEAD /v2/<name>/blobs/<digest>.
    pub fn blob_exists(&self, repository: &Reference, digest: &str) -> Result<bool, RegistryError> {
        let ep = self.push_endpoint(repository)?;
        self.head_blob(&ep, repository, digest, &push_scope(repository.path()))
    }

    fn head_blob(
        &self,
        ep: &Endpoint,
        repository: &Reference,
        digest: &str,
        scopes: &[String],
    ) -> Result<bool, RegistryError> {
        let resp = self.session.call(
            ep,
            Call::new(
                Method::Head,
                format!("{}/v2/{}/blobs/{digest}", ep.base, repository.path()),
                scopes,
            ),
        )?;
        let status = resp.status().as_u16();
        let _ = transport::read_body(resp, 1 << 16, &self.config().transfer);
        match status {
            200 => Ok(true),
            404 => Ok(false),
            _ => Err(http_error(
                &ep.host,
                format!("blob {digest} of {}", repository.name()),
                "HEAD",
                status,
                b"",
                Action::Blob,
            )),
        }
    }

    /// PUT a manifest under the reference's tag (or digest); returns the digest.
    pub fn put_manifest(
        &self,
        reference: &Reference,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<String, RegistryError> {
        let ep = self.push_endpoint(reference)?;
        let scopes = push_scope(reference.path());
        let digest = digest_like(reference.digest().unwrap_or("sha256:"), bytes);
        if let Some(expected) = reference.digest() {
            if expected != digest {
                return Err(RegistryError::DigestMismatch {
                    target: reference.to_string(),
                    what: "manifest".into(),
                    expected: expected.to_string(),
                    actual: digest,
                });
            }
        }
        let resp = self.session.call(
            &ep,
            Call::new(Method::Put, Self::manifest_url(&ep, reference), &scopes)
                .headers(vec![("content-type", media_type.to_string())])
                .body(Body::Bytes(bytes)),
        )?;
        let status = resp.status().as_u16();
        let theirs = transport::header(&resp, "docker-content-digest");
        let body = transport::read_body(resp, 1 << 16, &self.config().transfer).unwrap_or_default();
        if !(200..300).contains(&status) {
            return Err(http_error(
                &ep.host,
                reference.to_string(),
                "PUT",
                status,
                &body,
                Action::Manifest,
            ));
        }
        if let Some(theirs) =
            theirs.filter(|t| t.starts_with(digest.split(':').next().unwrap_or("")))
        {
            if theirs != digest {
                return Err(RegistryError::DigestMismatch {
                    target: reference.to_string(),
                    what: "manifest (the registry's Docker-Content-Digest)".into(),
                    expected: digest,
                    actual: theirs,
                });
            }
        }
        Ok(digest)
    }

    pub fn request_counts(&self) -> RequestCounts {
        self.session.transport.counts()
    }
}
