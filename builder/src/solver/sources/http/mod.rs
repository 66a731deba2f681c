//! `ADD <url>`: the HTTP(S) source. Its result is a one-file tree, `/<filename>`, committed as a
//! layer of its own, so that the COPY/ADD file op reads it like any stage (`Output::Layers`).
//!
//! As BuildKit's HTTP source (moby/buildkit source/http): the file is mode 0600, owned by
//! 0:0, its mtime the `Last-Modified` header if the server sent one, else the Unix epoch; the
//! body is never decompressed or unpacked.
//!
//! What is kept, all in the store (so `pallet prune` drops it like any cache):
//! - the downloaded bytes as a blob (streamed through the blob writer, which hashes as it
//!   writes: memory does not grow with the file);
//! - `http/url/<url>`: the URL's last answer: ETag, Last-Modified, blob digest. A rebuild
//!   sends `If-None-Match` / `If-Modified-Since`; 304 reuses the blob, anything else downloads
//!   again;
//! - `http/content/<digest>`: the blob and mtime of content by its sha256 (and by a sha384 or
//!   sha512 `--checksum`), the first seen while the blob lives. An `ADD --checksum` whose
//!   content is here makes no request at all (BuildKit also caches by checksum, not URL);
//! - the one-layer tree under the key `http/layer/<content digest>/<mtime>/<filename>`, which
//!   is also the vertex's cache key: downstream steps stay cached while the content (and
//!   mtime) are the same, whatever the ETag, and rerun when they change.
//!
//! Network: `HTTP_PROXY` / `HTTPS_PROXY` / `NO_PROXY` (and lower-case) by Go's rule, the one
//! the registry client also follows (`registry::proxy`), loopback never proxied; 60 s to connect and 60 s of silence at most while reading
//! (`PALLET_HTTP_TIMEOUT=<seconds>` changes both).

mod date;
mod error;

pub use error::HttpError;

use super::{SourceError, SourceStep};
use crate::events::Event;
use crate::solver::keys;
use crate::solver::{CacheKey, SolveError};
use crate::store::{commit_upper, step_dir, LayerRecord};
use cache::{CacheError, Root};
use date::parse_http_date;
use serde::{Deserialize, Serialize};
use sha2::Digest as _;
use std::fs::{OpenOptions, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::time::{Duration, Instant};

/// BuildKit's default permissions for a downloaded file.
const FILE_MODE: u32 = 0o600;
const DEFAULT_TIMEOUT_SECS: u64 = 60;

/// An `ADD <url>` as the graph gives it.
pub(super) struct Request<'a> {
    pub url: &'a str,
    pub filename: &'a str,
    pub checksum: Option<&'a str>,
}

/// Fetches `request` (or finds it by content or by its last answer): reports progress,
/// returns the one-layer tree and its cache key.
pub(super) fn run(
    request: &Request<'_>,
    step: &SourceStep<'_>,
) -> Result<(Vec<LayerRecord>, CacheKey), SolveError> {
    let (name, events) = (step.name, step.events);
    let fetch = Fetch {
        url: request.url,
        filename: request.filename,
        checksum: request.checksum,
        no_cache: step.no_cache,
        root: step.opts.root,
    };
    let start = Instant::now();
    let mut started = false;
    let mut start_once = || {
        if !started {
            started = true;
            events(Event::Started {
                name: name.to_string(),
            });
        }
    };
    match fetch.run(&mut start_once) {
        Ok((layers, key, did_work)) => {
            if did_work {
                start_once();
                events(Event::Done {
                    name: name.to_string(),
                    seconds: start.elapsed().as_secs_f64(),
                });
            } else {
                events(Event::Cached {
                    name: name.to_string(),
                });
            }
            Ok((layers, key))
        }
        Err(e) => {
            // The step's title first, so the error line follows a name.
            start_once();
            events(Event::Failed {
                name: name.to_string(),
                message: e.to_string(),
            });
            Err(SolveError::step(name, SourceError::Http(e)))
        }
    }
}

/// The body of `url` as a blob in the store (fetched as `ADD <url>` fetches it: by
/// `--checksum` when that content is stored, conditionally when the URL was fetched before)
/// and its `Last-Modified` time: what a SOURCE_DATE_EPOCH stage's time is read from. The
/// stage's ADD, if the build runs it, then finds the same blob. `offline` (`--explain`):
/// only what the store has from an earlier build, `None` when it has nothing.
pub(crate) fn content_for_epoch(
    root: &Root,
    url: &str,
    checksum: Option<&str>,
    no_cache: bool,
    offline: bool,
) -> Result<Option<(String, Option<i64>)>, HttpError> {
    let fetch = Fetch {
        url,
        filename: "",
        checksum,
        no_cache,
        root,
    };
    let content = match fetch.pinned_content()? {
        Some(c) => c,
        None if offline => {
            let stored = get_record::<UrlRecord>(root, &url_key(url))?
                .filter(|r| root.blobs.contains(&r.digest));
            match stored {
                Some(r) => Content {
                    digest: r.digest,
                    last_modified: r.last_modified,
                },
                None => return Ok(None),
            }
        }
        None => fetch.fetch(&mut || {})?.0,
    };
    let time = content.last_modified.as_deref().and_then(parse_http_date);
    Ok(Some((content.digest, time)))
}

/// What the index remembers of a URL's last answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct UrlRecord {
    /// The blob holding the body (`sha256:`).
    digest: String,
    etag: Option<String>,
    /// The `Last-Modified` header as sent (for `If-Modified-Since` and the file's mtime).
    last_modified: Option<String>,
}

/// What the index remembers of content by the checksum a Dockerfile pins it with.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ContentRecord {
    digest: String,
    last_modified: Option<String>,
}

/// The downloaded bytes (a blob) and the header that sets the file's mtime.
struct Content {
    digest: String,
    last_modified: Option<String>,
}

struct Fetch<'a> {
    url: &'a str,
    filename: &'a str,
    checksum: Option<&'a str>,
    no_cache: bool,
    root: &'a Root,
}

fn url_key(url: &str) -> String {
    format!("http/url/{url}")
}

fn content_key(checksum: &str) -> String {
    format!("http/content/{checksum}")
}

impl Fetch<'_> {
    /// The layers, the cache key, and whether anything was downloaded or committed.
    fn run(
        &self,
        start: &mut dyn FnMut(),
    ) -> Result<(Vec<LayerRecord>, CacheKey, bool), HttpError> {
        if self.filename.is_empty()
            || self.filename == "."
            || self.filename == ".."
            || self.filename.contains(['/', '\0'])
        {
            return Err(HttpError::NoFileName {
                filename: self.filename.to_string(),
            });
        }
        let mut did_work = false;
        let content = match self.pinned_content()? {
            Some(c) => c,
            None => {
                let (c, downloaded) = self.fetch(start)?;
                did_work |= downloaded;
                c
            }
        };
        let mtime = content
            .last_modified
            .as_deref()
            .and_then(parse_http_date)
            .unwrap_or(0);
        let key = CacheKey::new(format!(
            "http/layer/{}/{mtime}/{}",
            content.digest, self.filename
        ));
        if !self.no_cache {
            if let Some(layers) = keys::lookup(self.root, &key)? {
                return Ok((layers, key, did_work));
            }
        }
        start();
        let layer = self.commit(&content.digest, mtime)?;
        let layers = vec![layer];
        keys::record(self.root, &key, &layers)?;
        Ok((layers, key, true))
    }

    /// With `--checksum`, content already downloaded under that digest: no request needed.
    fn pinned_content(&self) -> Result<Option<Content>, HttpError> {
        let Some(sum) = self.checksum else {
            return Ok(None);
        };
        if self.no_cache {
            return Ok(None);
        }
        let Some(rec) = get_record::<ContentRecord>(self.root, &content_key(sum))? else {
            return Ok(None);
        };
        if !self.root.blobs.contains(&rec.digest) {
            return Ok(None);
        }
        Ok(Some(Content {
            digest: rec.digest,
            last_modified: rec.last_modified,
        }))
    }

    /// Asks the server (conditionally when the URL was downloaded before). Returns the content
    /// and whether a body was downloaded (false for a 304).
    fn fetch(&self, start: &mut dyn FnMut()) -> Result<(Content, bool), HttpError> {
        let url = self.url;
        let uri: ureq::http::Uri = url.parse().map_err(HttpError::BadUrl)?;
        let scheme = uri.scheme_str().unwrap_or("");
        if scheme != "http" && scheme != "https" {
            return Err(HttpError::Scheme);
        }
        let host = uri.host().unwrap_or("");
        if host.is_empty() {
            return Err(HttpError::NoHost);
        }
        let port = uri
            .port_u16()
            .unwrap_or(if scheme == "https" { 443 } else { 80 });
        let server = format!("{host}:{port}");
        let previous = if self.no_cache {
            None
        } else {
            get_record::<UrlRecord>(self.root, &url_key(url))?
                .filter(|r| self.root.blobs.contains(&r.digest))
                .filter(|r| r.etag.is_some() || r.last_modified.is_some())
        };

        let timeout = Duration::from_secs(timeout_secs());
        let proxy = registry::proxy::ProxyEnv::from_process()
            .proxy_for(scheme, host, port)
            .map_err(HttpError::Proxy)?;
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_resolve(Some(timeout))
            .timeout_connect(Some(timeout))
            .timeout_per_read(Some(timeout))
            .timeout_per_write(Some(timeout))
            .proxy(proxy)
            .user_agent(concat!("pallet/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        let mut req = agent.get(url);
        if let Some(p) = &previous {
            if let Some(etag) = &p.etag {
                req = req.header("If-None-Match", etag);
            }
            if let Some(lm) = &p.last_modified {
                req = req.header("If-Modified-Since", lm);
            }
        }
        let resp = req.call().map_err(HttpError::request(&server, timeout))?;
        let status = resp.status();
        if status == ureq::http::StatusCode::NOT_MODIFIED {
            if let Some(p) = previous {
                let content = Content {
                    digest: p.digest,
                    last_modified: p.last_modified,
                };
                if self.checksum.is_some() {
                    self.verify(&content.digest)?;
                    self.remember(&content, p.etag)?;
                }
                return Ok((content, false));
            }
            return Err(HttpError::UnaskedNotModified);
        }
        if !status.is_success() {
            return Err(HttpError::Status {
                code: status.as_u16(),
                reason: status.canonical_reason().unwrap_or(""),
            });
        }
        start();
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
                .filter(|s| !s.is_empty())
        };
        let etag = header("etag");
        let last_modified = header("last-modified");
        let mut body = resp.into_body().into_reader();
        let digest = self.download(&mut body, &server, timeout)?;
        let content = Content {
            digest,
            last_modified,
        };
        self.remember(&content, etag)?;
        Ok((content, true))
    }

    /// Streams the body into a blob, checking `--checksum`; nothing is kept on a mismatch.
    fn download(
        &self,
        body: &mut dyn Read,
        server: &str,
        timeout: Duration,
    ) -> Result<String, HttpError> {
        let store = |source: CacheError| HttpError::Blob {
            what: "storing the download",
            source,
        };
        let mut writer = self.root.blobs.writer().map_err(store)?;
        // sha384/sha512 checksums are hashed beside the blob's own sha256.
        let mut other: Option<(&str, Box<dyn sha2::digest::DynDigest>)> =
            match self.checksum.and_then(|c| c.split_once(':')) {
                Some(("sha384", _)) => Some(("sha384", Box::new(sha2::Sha384::new()))),
                Some(("sha512", _)) => Some(("sha512", Box::new(sha2::Sha512::new()))),
                _ => None,
            };
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match body.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(HttpError::request(server, timeout)(ureq::Error::from(e))),
            };
            writer
                .write_all(&buf[..n])
                .map_err(HttpError::io("storing the download"))?;
            if let Some((_, h)) = other.as_mut() {
                h.update(&buf[..n]);
            }
        }
        let mismatch = |expected: &str, actual: &str| HttpError::ChecksumMismatch {
            expected: expected.to_string(),
            actual: actual.to_string(),
        };
        match (self.checksum, other) {
            (Some(sum), Some((algo, h))) => {
                let actual = format!("{algo}:{}", hex::encode(h.finalize()));
                if actual != sum {
                    // Dropping the writer removes its temp file.
                    return Err(mismatch(sum, &actual));
                }
                Ok(writer.commit().map_err(store)?.digest)
            }
            (Some(sum), None) => match writer.commit_expect(sum) {
                Ok(info) => Ok(info.digest),
                Err(CacheError::DigestMismatch { expected, actual }) => {
                    Err(mismatch(&expected, &actual))
                }
                Err(e) => Err(store(e)),
            },
            (None, _) => Ok(writer.commit().map_err(store)?.digest),
        }
    }

    /// A 304 reuses a blob: it must still match `--checksum` if one is given.
    fn verify(&self, digest: &str) -> Result<(), HttpError> {
        let Some(sum) = self.checksum else {
            return Ok(());
        };
        let actual = if sum.starts_with("sha256:") {
            digest.to_string()
        } else {
            let mut h: Box<dyn sha2::digest::DynDigest> = match sum.split_once(':') {
                Some(("sha384", _)) => Box::new(sha2::Sha384::new()),
                Some(("sha512", _)) => Box::new(sha2::Sha512::new()),
                _ => return Err(HttpError::UnsupportedChecksum(sum.to_string())),
            };
            let mut f = self.root.blobs.open(digest)?;
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match f.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => h.update(&buf[..n]),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(HttpError::io(format!("reading {digest}"))(e)),
                }
            }
            format!(
                "{}:{}",
                sum.split(':').next().unwrap_or(""),
                hex::encode(h.finalize())
            )
        };
        if actual != sum {
            return Err(HttpError::UnchangedMismatch {
                expected: sum.to_string(),
                actual,
            });
        }
        Ok(())
    }

    fn remember(&self, content: &Content, etag: Option<String>) -> Result<(), HttpError> {
        let root = self.root;
        put_record(
            root,
            &url_key(self.url),
            &UrlRecord {
                digest: content.digest.clone(),
                etag,
                last_modified: content.last_modified.clone(),
            },
        )?;
        let record = ContentRecord {
            digest: content.digest.clone(),
            last_modified: content.last_modified.clone(),
        };
        // A checksum keeps the first mtime it was seen with while its blob lives, so that a
        // pinned ADD's cache key does not move when another URL serves the same bytes.
        let mut sums = vec![content.digest.clone()];
        if let Some(c) = self.checksum {
            if c != content.digest {
                sums.push(c.to_string());
            }
        }
        for sum in sums {
            let key = content_key(&sum);
            let keep = get_record::<ContentRecord>(root, &key)?
                .is_some_and(|r| r.digest == content.digest && root.blobs.contains(&r.digest));
            if !keep {
                put_record(root, &key, &record)?;
            }
        }
        Ok(())
    }

    /// The one-file tree as a layer: `/<filename>`, 0600, root-owned, the given mtime.
    fn commit(&self, digest: &str, mtime: i64) -> Result<LayerRecord, HttpError> {
        let committing = |what| move |source| HttpError::Commit { what, source };
        let step = step_dir(self.root).map_err(committing("creating a step directory"))?;
        let upper = step.path().join("upper");
        std::fs::create_dir(&upper).map_err(HttpError::io("creating the file tree"))?;
        let dest = upper.join(self.filename);
        let blob = self
            .root
            .blobs
            .path(digest)
            .map_err(|source| HttpError::Blob {
                what: "reading the download",
                source,
            })?;
        // The download is a blob on the same filesystem: the tree's file is that blob,
        // hardlinked, not a second copy (a 200 MB download cost 200 MB more per copy). Nothing
        // writes to a snapshot's files in place; only the mode and mtime change, which no
        // reader of the blob uses. A blob another snapshot links already is copied instead:
        // the mtime belongs to the inode, and that snapshot has its own.
        let unlinked = std::fs::metadata(&blob).is_ok_and(|m| m.nlink() == 1);
        if !unlinked || std::fs::hard_link(&blob, &dest).is_err() {
            let mut src = self
                .root
                .blobs
                .open(digest)
                .map_err(|source| HttpError::Blob {
                    what: "reading the download",
                    source,
                })?;
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(FILE_MODE)
                .open(&dest)
                .map_err(HttpError::io(format!("creating {}", dest.display())))?;
            // File to file: the kernel copies (copy_file_range), nothing is held in memory.
            io::copy(&mut src, &mut f)
                .map_err(HttpError::io(format!("writing {}", dest.display())))?;
        }
        std::fs::set_permissions(&dest, Permissions::from_mode(FILE_MODE))
            .map_err(HttpError::io(format!("chmod {}", dest.display())))?;
        let t = filetime::FileTime::from_unix_time(mtime, 0);
        filetime::set_symlink_file_times(&dest, t, t).map_err(HttpError::io(format!(
            "setting the mtime of {}",
            dest.display()
        )))?;
        commit_upper(self.root, &upper, None).map_err(committing("committing the file"))
    }
}

fn get_record<T: for<'de> Deserialize<'de>>(
    root: &Root,
    key: &str,
) -> Result<Option<T>, CacheError> {
    let bytes = root.index.get_cache(key)?;
    // An unreadable record is treated as absent: it is only a cache.
    Ok(bytes.and_then(|b| serde_json::from_slice(&b).ok()))
}

fn put_record<T: Serialize>(root: &Root, key: &str, value: &T) -> Result<(), CacheError> {
    let bytes = serde_json::to_vec(value).expect("record serializes");
    root.index.put_cache(key, &bytes)
}

fn timeout_secs() -> u64 {
    std::env::var("PALLET_HTTP_TIMEOUT")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|&n| n > 0)
        .unwrap_or(DEFAULT_TIMEOUT_SECS)
}
