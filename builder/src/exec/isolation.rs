//! Isolation: the executor and snapshotter pair a build (or `pallet run`) uses on this
//! machine. As root that is runc over overlayfs; the rootless (user namespace) and chroot
//! (unprivileged container) modes are other pairs chosen here, so that nothing above this
//! module knows which one runs.

use super::executor::{Executor, Runc};
use super::runc::{RunError, RunSpec, Stream};
use crate::snapshot::{OverlaySnapshotter, Snapshotter};
use std::path::Path;
use std::sync::Arc;

/// How steps run and what trees they run in.
#[derive(Clone)]
pub struct Isolation {
    /// The mode's name (`root`).
    mode: &'static str,
    pub executor: Arc<dyn Executor>,
    pub snapshotter: Arc<dyn Snapshotter>,
}

impl Isolation {
    /// As root: runc (`--runtime PATH`, else on PATH) over overlayfs.
    pub fn root(runtime: Option<&Path>) -> Result<Isolation, RunError> {
        Ok(Isolation {
            mode: "root",
            executor: Arc::new(Runc::locate(runtime)?),
            snapshotter: Arc::new(OverlaySnapshotter),
        })
    }

    /// For a dry run (`build --explain`): runs nothing and mounts nothing.
    pub fn dry_run() -> Isolation {
        Isolation {
            mode: "dry run",
            executor: Arc::new(DryRun),
            snapshotter: Arc::new(OverlaySnapshotter),
        }
    }

    /// One line for a build's header: `isolation: root (runc /usr/sbin/runc, overlayfs)`.
    pub fn describe(&self) -> String {
        format!(
            "isolation: {} ({}, {})",
            self.mode,
            self.executor.describe(),
            self.snapshotter.describe()
        )
    }
}

/// The executor of a dry run: asked to run, it refuses.
struct DryRun;

impl Executor for DryRun {
    fn describe(&self) -> String {
        "nothing (dry run)".into()
    }

    fn run(
        &self,
        _: &Path,
        _: &Path,
        _: &RunSpec,
        _: &mut dyn FnMut(Stream, &[u8]),
    ) -> Result<i32, RunError> {
        Err(RunError::DryRun)
    }

    fn is_running(&self, _: &Path) -> bool {
        false
    }

    fn signal(&self, _: &Path, _: &str) {}
}
