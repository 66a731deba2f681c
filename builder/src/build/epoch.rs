//! The resolver lowering asks, with the second question answered: the time of a
//! SOURCE_DATE_EPOCH stage's remote source (`graph::resolve::EpochSource`). Images are the
//! wrapped resolver's; an `ADD <url>` source is fetched into the store as the ADD itself
//! would be, and its time is the `Last-Modified` header, else the latest mtime of a regular
//! file when the body is a tar archive (plain, gzip, bzip2, xz, zstd), else none; an
//! `ADD <git>` source's time is its commit's committer time (fetched as the ADD fetches it).

use crate::events::Event;
use crate::exec::fileop::archive_max_mtime;
use crate::solver::{commit_time_for_epoch, content_for_epoch, redact_git_url as redact};
use cache::Root;
use graph::resolve::{EpochSource, ImageResolver, ResolveError, ResolvedImage};
use graph::Platform;

pub(crate) struct WithSourceEpochs<'a> {
    pub images: &'a dyn ImageResolver,
    pub root: &'a Root,
    /// `--no-cache`: fetch the URL again rather than trust the last answer.
    pub no_cache: bool,
    pub events: &'a (dyn Fn(Event) + Sync),
    /// The `--ssh default` agent, for a git remote over ssh.
    pub ssh_default: Option<std::path::PathBuf>,
    /// `--explain`: no network; a URL's time from what an earlier build stored, a git
    /// ref's none.
    pub offline: bool,
}

impl ImageResolver for WithSourceEpochs<'_> {
    fn resolve(
        &self,
        reference: &str,
        platform: &Platform,
    ) -> Result<Option<ResolvedImage>, ResolveError> {
        self.images.resolve(reference, platform)
    }

    fn source_epoch(&self, source: &EpochSource) -> Result<Option<i64>, ResolveError> {
        let from = match source {
            EpochSource::Http { url, .. } => url.clone(),
            EpochSource::Git {
                remote, reference, ..
            } if reference.is_empty() => redact(remote),
            EpochSource::Git {
                remote, reference, ..
            } => format!("{}#{reference}", redact(remote)),
        };
        let name = format!("[internal] resolve SOURCE_DATE_EPOCH from {from}");
        (self.events)(Event::Started { name: name.clone() });
        let started = std::time::Instant::now();
        let result = self.time_of(source);
        (self.events)(match &result {
            Ok(time) => {
                (self.events)(Event::Log {
                    name: name.clone(),
                    line: match time {
                        Some(t) => format!("SOURCE_DATE_EPOCH={t}"),
                        None => {
                            "no time (no Last-Modified, not a tar archive): SOURCE_DATE_EPOCH unset"
                                .into()
                        }
                    },
                });
                Event::Done {
                    name,
                    seconds: started.elapsed().as_secs_f64(),
                }
            }
            Err(e) => Event::Failed {
                name,
                message: e.to_string(),
            },
        });
        result
    }
}

impl WithSourceEpochs<'_> {
    fn time_of(&self, source: &EpochSource) -> Result<Option<i64>, ResolveError> {
        match source {
            EpochSource::Git { .. } if self.offline => Ok(None),
            EpochSource::Git {
                remote,
                reference,
                checksum,
            } => commit_time_for_epoch(
                self.root,
                remote,
                reference,
                checksum.as_deref(),
                self.ssh_default.clone(),
            )
            .map(Some)
            .map_err(|e| ResolveError::new(redact(remote), e)),
            EpochSource::Http { url, checksum } => {
                let fetched = content_for_epoch(
                    self.root,
                    url,
                    checksum.as_deref(),
                    self.no_cache,
                    self.offline,
                )
                .map_err(|e| ResolveError::new(url.clone(), e))?;
                let Some((digest, last_modified)) = fetched else {
                    return Ok(None);
                };
                if last_modified.is_some() {
                    return Ok(last_modified);
                }
                let path = self
                    .root
                    .blobs
                    .path(&digest)
                    .map_err(|e| ResolveError::new(url.clone(), e))?;
                archive_max_mtime(&path).map_err(|e| {
                    ResolveError::new(
                        url.clone(),
                        std::io::Error::new(
                            e.kind(),
                            format!("reading the download {}: {e}", path.display()),
                        ),
                    )
                })
            }
        }
    }
}
