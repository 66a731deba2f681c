//! Build caches shared through a registry or a directory (`--cache-to`, `--cache-from`):
//! pallet's own format (an OCI image manifest whose config maps cache keys to layer
//! descriptors, [`format`]), exported after a build ([`export`]) and imported lazily at its
//! start ([`import`]: manifest and config only; a layer's bytes move only when a step or an
//! output needs its files). Blob moves go through one interface over a registry repository
//! and an OCI layout directory ([`blobs`]), cache-mount contents (`mounts=true`, `mounts`)
//! included.
//!
//! Knows cache keys as strings, layers and blobs; not Dockerfiles, graphs or the solver.

pub mod blobs;
mod export;
pub mod format;
mod import;
mod mounts;
mod spec;

pub use export::{export, inline_annotation, ExportError, ExportReport, StepResult};
pub use import::Imported;
pub use mounts::{MountReport, UsedMount};
pub use spec::{CacheFrom, CacheSpecError, CacheTo, Location, Mode};
