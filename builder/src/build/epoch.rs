//! The resolver lowering asks, with the second question answered: the time of a
//! SOURCE_DATE_EPOCH stage's remote source (`graph::resolve::EpochSource`). Images are the
//! wrapped resolver's; an `ADD <url>` source is fetched into the store as the ADD itself
//! would be, and its time is the `Last-Modified` header, else the latest mtime of a regular
//! file when the body is a tar archive (plain, gzip, bzip2, xz, zstd), else none.

use crate::exec::fileop::archive_max_mtime;
use crate::solver::content_for_epoch;
use cache::Root;
use graph::resolve::{EpochSource, ImageResolver, ResolveError, ResolvedImage};
use graph::Platform;

pub(super) struct WithSourceEpochs<'a> {
    pub images: &'a dyn ImageResolver,
    pub root: &'a Root,
    /// `--no-cache`: fetch the URL again rather than trust the last answer.
    pub no_cache: bool,
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
        match source {
            EpochSource::Http { url, checksum } => {
                let (digest, last_modified) =
                    content_for_epoch(self.root, url, checksum.as_deref(), self.no_cache)
                        .map_err(|e| ResolveError::new(url.clone(), e))?;
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
