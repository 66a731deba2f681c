//! The ops a step runs when it misses the cache: RUN ([`run`]: the executor over a snapshot,
//! with its mounts), file ops ([`file`]: COPY/ADD/WORKDIR, with [`direct_copy`] writing
//! straight into a fresh upper dir where no layer below has the path), and persistent cache
//! mounts ([`cache_mount`]). Each returns the step's layer stack.

pub(super) mod cache_mount;
pub(super) mod direct_copy;
pub(super) mod file;
pub(super) mod run;
