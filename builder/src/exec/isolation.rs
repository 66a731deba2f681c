//! Isolation: the executor and snapshotter pair a build (or `pallet run`) uses on this
//! machine, chosen by `--isolation auto|root|rootless|chroot`. As root that is runc over
//! overlayfs; the rootless (user namespace) and chroot (unprivileged container) modes are other
//! pairs chosen here, so that nothing above this module knows which one runs. A mode that is
//! asked for and cannot work here says what is missing and what to do.

use super::executor::{Executor, Runc};
use super::runc::{RunError, RunSpec, Stream};
use crate::snapshot::{OverlaySnapshotter, Snapshotter};
use std::path::Path;
use std::sync::Arc;

/// The isolation a user asks for (`--isolation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IsolationMode {
    /// The best this machine allows: root when running as root.
    #[default]
    Auto,
    /// runc over overlayfs, as root.
    Root,
    /// A user namespace from the user's subuid/subgid ranges: rootless runc over overlayfs
    /// with `userxattr`.
    Rootless,
    /// chroot over a copied tree, for unprivileged containers (no namespaces, no mounts).
    Chroot,
}

impl std::str::FromStr for IsolationMode {
    type Err = IsolationError;
    fn from_str(s: &str) -> Result<IsolationMode, IsolationError> {
        match s {
            "auto" => Ok(IsolationMode::Auto),
            "root" => Ok(IsolationMode::Root),
            "rootless" => Ok(IsolationMode::Rootless),
            "chroot" => Ok(IsolationMode::Chroot),
            other => Err(IsolationError::Unknown(other.to_string())),
        }
    }
}

/// Why no isolation could be had.
#[derive(Debug, thiserror::Error)]
pub enum IsolationError {
    #[error("unknown --isolation {0:?}: use auto, root, rootless or chroot")]
    Unknown(String),
    /// The runtime is missing (root mode).
    #[error(transparent)]
    Runtime(#[from] RunError),
    /// The mode cannot work here: why, and what to do.
    #[error("isolation {mode} cannot work here: {why}")]
    Unavailable { mode: &'static str, why: String },
}

/// How steps run and what trees they run in.
#[derive(Clone)]
pub struct Isolation {
    /// The mode's name (`root`).
    mode: &'static str,
    pub executor: Arc<dyn Executor>,
    pub snapshotter: Arc<dyn Snapshotter>,
}

impl Isolation {
    /// The isolation `mode` asks for, on this machine.
    pub fn select(
        mode: IsolationMode,
        runtime: Option<&Path>,
    ) -> Result<Isolation, IsolationError> {
        let root = is_root();
        match mode {
            IsolationMode::Auto | IsolationMode::Root if root => Ok(Isolation::root(runtime)?),
            IsolationMode::Root => Err(IsolationError::Unavailable {
                mode: "root",
                why: "pallet is not running as root (run it with sudo)".into(),
            }),
            IsolationMode::Auto => Err(IsolationError::Unavailable {
                mode: "auto",
                why: "pallet needs root for now: steps run in overlay mounts and containers \
                      (runc), which need root here; rootless builds are a later issue (run it \
                      with sudo)"
                    .into(),
            }),
            IsolationMode::Rootless => Err(IsolationError::Unavailable {
                mode: "rootless",
                why: "rootless builds (a user namespace from /etc/subuid) are not built yet; \
                      run as root (sudo)"
                    .into(),
            }),
            IsolationMode::Chroot => Err(IsolationError::Unavailable {
                mode: "chroot",
                why: "chroot builds (for unprivileged containers) are not built yet; run as \
                      root (sudo)"
                    .into(),
            }),
        }
    }

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

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
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
