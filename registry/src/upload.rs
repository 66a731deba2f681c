//! Blob uploads (the `Client` methods `mount_blob` and `upload_blob`): cross-repository mounts,
//! upload sessions (POST), a monolithic PUT for blobs up to `chunk_size`, PATCH chunks with
//! `Content-Range` then a closing PUT for larger ones. Bodies are streams that cannot be
//! replayed, so a failed upload restarts from a fresh session, reopening the blob.
//! The bytes sent are hashed on the way: content that does not match its digest is reported as
//! such, naming the blob, and never retried.

use crate::client::{push_scope, BlobOpener, Client};
use crate::digest::Hasher;
use crate::error::{http_error, Action};
use crate::manifest::Descriptor;
use crate::session::{Call, Endpoint};
use crate::transport::{self, Body, Method};
use crate::{Reference, RegistryError};
use std::io::Read;

impl Client {
    /// Cross-repository mount from `from_repository` (a path on the same registry). Ok(false)
    /// when the registry started an upload instead (the caller then uploads; `upload_blob`
    /// continues in that session).
    pub fn mount_blob(
        &self,
        repository: &Reference,
        digest: &str,
        from_repository: &str,
    ) -> Result<bool, RegistryError> {
        let ep = self.push_endpoint(repository)?;
        // One token for both: push on the target, pull on the source.
        let mut scopes = push_scope(repository.path());
        scopes.push(format!("repository:{from_repository}:pull"));
        let url = transport::add_query(
            &transport::add_query(&upload_start_url(&ep, repository), "mount", digest),
            "from",
            from_repository,
        );
        let resp = self
            .session
            .call(&ep, Call::new(Method::Post, url.clone(), &scopes))?;
        let status = resp.status().as_u16();
        let location = transport::header(&resp, "location");
        let body = transport::read_body(resp, 1 << 16, &self.config().transfer).unwrap_or_default();
        match (status, location) {
            (201, _) => Ok(true),
            (202, Some(location)) => {
                let session = transport::resolve_url(&url, &location);
                self.pending_uploads.lock().expect("pending lock").insert(
                    (
                        ep.host.clone(),
                        repository.path().to_string(),
                        digest.to_string(),
                    ),
                    session,
                );
                Ok(false)
            }
            _ => Err(http_error(
                &ep.host,
                format!(
                    "mount of blob {digest} from {from_repository} into {}",
                    repository.name()
                ),
                "POST",
                status,
                &body,
                Action::Upload,
            )),
        }
    }

    /// Uploads a blob (monolithic PUT when small, chunked PATCHes when large), retrying with a
    /// fresh upload session when the body's transfer fails. Starting a session (a POST without
    /// a body) is retried by the session layer already: retrying it here too multiplied the
    /// attempts (25 POSTs, ~20 s per blob, against a registry that answers 500 every time).
    pub fn upload_blob(
        &self,
        repository: &Reference,
        blob: &Descriptor,
        open: &BlobOpener<'_>,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<(), RegistryError> {
        let ep = self.push_endpoint(repository)?;
        let policy = &self.config().retry;
        let key = (
            ep.host.clone(),
            repository.path().to_string(),
            blob.digest.to_string(),
        );
        let mut session = self
            .pending_uploads
            .lock()
            .expect("pending lock")
            .remove(&key);
        let mut attempt = 0;
        loop {
            let url = match session.take() {
                Some(url) => url,
                None => self.start_upload(&ep, repository, &blob.digest)?,
            };
            let result = self.upload_in_session(&ep, repository, blob, url, open, progress);
            match result {
                Ok(()) => return Ok(()),
                Err(e) if retry_upload(&e) && attempt + 1 < policy.attempts => {
                    std::thread::sleep(policy.delay(attempt));
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// POST /v2/<name>/blobs/uploads/ -> the session URL.
    fn start_upload(
        &self,
        ep: &Endpoint,
        repository: &Reference,
        digest: &str,
    ) -> Result<String, RegistryError> {
        let scopes = push_scope(repository.path());
        let url = upload_start_url(ep, repository);
        let resp = self
            .session
            .call(ep, Call::new(Method::Post, url.clone(), &scopes))?;
        let status = resp.status().as_u16();
        let location = transport::header(&resp, "location");
        let body = transport::read_body(resp, 1 << 16, &self.config().transfer).unwrap_or_default();
        match (status, location) {
            (202, Some(location)) => Ok(transport::resolve_url(&url, &location)),
            _ => Err(http_error(
                &ep.host,
                format!("upload of blob {digest} to {}", repository.name()),
                "POST",
                status,
                &body,
                Action::Upload,
            )),
        }
    }

    fn upload_in_session(
        &self,
        ep: &Endpoint,
        repository: &Reference,
        blob: &Descriptor,
        mut url: String,
        open: &BlobOpener<'_>,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<(), RegistryError> {
        let target = format!("blob {} of {}", blob.digest, repository.name());
        let reader = open().map_err(|e| RegistryError::Io {
            what: format!("opening {target} to upload"),
            source: e,
        })?;
        let hasher = Hasher::for_digest(&blob.digest).ok_or_else(|| {
            RegistryError::Other(format!("{target}: unsupported digest algorithm"))
        })?;
        let mut source = HashingReader {
            inner: reader,
            hasher,
            count: 0,
            progress,
            error: None,
            eof: false,
        };
        let scopes = push_scope(repository.path());
        let chunk_size = self.config().chunk_size.max(1);
        let monolithic = blob.size <= chunk_size;
        let mut offset = 0;
        // Chunks: PATCH with Content-Range start-end (inclusive), as distribution wants.
        while !monolithic && offset < blob.size {
            let len = chunk_size.min(blob.size - offset);
            let mut chunk = Exact::new(&mut source, len);
            let result = self.session.call(
                ep,
                Call::new(Method::Patch, url.clone(), &scopes)
                    .headers(vec![
                        ("content-type", "application/octet-stream".into()),
                        ("content-range", format!("{offset}-{}", offset + len - 1)),
                    ])
                    .body(Body::Reader(&mut chunk, len)),
            );
            source.check(&target, blob, false)?;
            let resp = result?;
            let status = resp.status().as_u16();
            let location = transport::header(&resp, "location");
            let body =
                transport::read_body(resp, 1 << 16, &self.config().transfer).unwrap_or_default();
            match (status, location) {
                (202, Some(location)) => url = transport::resolve_url(&url, &location),
                _ => {
                    return Err(http_error(
                        &ep.host,
                        target,
                        "PATCH",
                        status,
                        &body,
                        Action::Upload,
                    ))
                }
            }
            offset += len;
        }
        let put_url = transport::add_query(&url, "digest", &blob.digest);
        let mut empty = std::io::empty();
        let mut whole = Exact::new(&mut source, blob.size);
        let body = if monolithic {
            Body::Reader(&mut whole, blob.size)
        } else {
            Body::Reader(&mut empty, 0)
        };
        let result = self.session.call(
            ep,
            Call::new(Method::Put, put_url, &scopes)
                .headers(vec![("content-type", "application/octet-stream".into())])
                .body(body),
        );
        source.check(&target, blob, true)?;
        let resp = result?;
        let status = resp.status().as_u16();
        let body = transport::read_body(resp, 1 << 16, &self.config().transfer).unwrap_or_default();
        if status != 201 && !(200..300).contains(&status) {
            return Err(http_error(
                &ep.host,
                target,
                "PUT",
                status,
                &body,
                Action::Upload,
            ));
        }
        Ok(())
    }
}

fn upload_start_url(ep: &Endpoint, repository: &Reference) -> String {
    format!("{}/v2/{}/blobs/uploads/", ep.base, repository.path())
}

/// Upload failures worth a fresh session: connection, 5xx/408/429, an expired token, a lost
/// session. Never bad content.
fn retry_upload(e: &RegistryError) -> bool {
    e.is_transient()
        || e.status() == Some(401)
        || e.codes()
            .iter()
            .any(|c| c == "BLOB_UPLOAD_UNKNOWN" || c == "BLOB_UPLOAD_INVALID")
}

/// Exactly `remaining` bytes of `inner`: an early end is an error, not a short body (ureq
/// would otherwise wait for the missing bytes forever).
struct Exact<'r> {
    inner: &'r mut dyn Read,
    remaining: u64,
}

impl<'r> Exact<'r> {
    fn new(inner: &'r mut dyn Read, len: u64) -> Exact<'r> {
        Exact {
            inner,
            remaining: len,
        }
    }
}

impl Read for Exact<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.remaining == 0 {
            return Ok(0);
        }
        let max = buf.len().min(self.remaining as usize);
        let n = self.inner.read(&mut buf[..max])?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the blob is shorter than its descriptor says",
            ));
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

/// Counts and hashes what the upload reads; remembers a read error (ureq reports it as its own).
struct HashingReader<'p> {
    inner: Box<dyn Read + Send>,
    hasher: Hasher,
    count: u64,
    progress: &'p (dyn Fn(u64) + Sync),
    error: Option<std::io::Error>,
    eof: bool,
}

impl Read for HashingReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self.inner.read(buf) {
            Ok(0) => {
                self.eof = true;
                Ok(0)
            }
            Ok(n) => {
                self.hasher.update(&buf[..n]);
                self.count += n as u64;
                if n > 0 {
                    (self.progress)(self.count);
                }
                Ok(n)
            }
            Err(e) => {
                let copy = std::io::Error::new(e.kind(), e.to_string());
                self.error = Some(e);
                Err(copy)
            }
        }
    }
}

impl HashingReader<'_> {
    /// After a request: a local read error, a short blob or (at the end, when everything was
    /// read) wrong content. A request that broke off mid-body is the request's error, not this.
    fn check(&mut self, target: &str, blob: &Descriptor, end: bool) -> Result<(), RegistryError> {
        if let Some(e) = self.error.take() {
            return Err(RegistryError::Io {
                what: format!("reading {target} to upload"),
                source: e,
            });
        }
        if self.eof && self.count < blob.size {
            return Err(RegistryError::SizeMismatch {
                target: target.to_string(),
                digest: blob.digest.to_string(),
                expected: blob.size,
                actual: self.count,
            });
        }
        if end && self.count == blob.size {
            // Anything left means the blob is longer than its descriptor says.
            let extra = std::io::copy(&mut self.inner, &mut std::io::sink()).unwrap_or(0);
            if extra > 0 {
                return Err(RegistryError::SizeMismatch {
                    target: target.to_string(),
                    digest: blob.digest.to_string(),
                    expected: blob.size,
                    actual: self.count + extra,
                });
            }
            let actual = self.hasher.clone().finish();
            if actual != blob.digest {
                return Err(RegistryError::DigestMismatch {
                    target: target.to_string(),
                    what: "blob".into(),
                    expected: blob.digest.to_string(),
                    actual,
                });
            }
        }
        Ok(())
    }
}
