//! pallet: a daemonless container image builder.
//!
//! The flow runs one way (ARCHITECTURE.md): the `frontend` crate lowers a Dockerfile to the
//! `graph` crate's ops -> `solver` runs them (asking the store's cache first) -> `exec` (runc
//! over overlayfs, file ops) -> `snapshot` (layers as tar diffs) -> `store` -> `export` (OCI
//! and Docker images, push). `build` drives one build end to end; `cli` is a thin layer over
//! `build`, the store and `run`. Leaves any layer may use: `events` (progress events), `fill`,
//! and the crates `graph`, `context`, `codec`, `reference`.

pub mod binfmt;
pub mod build;
pub mod cli;
pub mod events;
pub mod exec;
pub mod export;
mod fill;
pub mod progress;
pub mod remote_cache;
pub mod run;
pub mod snapshot;
pub mod solver;
pub mod ssh;
pub mod store;
pub mod userns;
