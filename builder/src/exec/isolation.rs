//! Isolation: the executor and snapshotter pair a build (or `pallet run`) uses on this
//! machine, chosen by `--isolation auto|root|rootless|chroot`. As root that is runc over
//! overlayfs; rootless (the command run by the CLI in a forked child in a user namespace, see
//! `userns`) it is `runc --rootless` over overlayfs with `userxattr`; the chroot (unprivileged container) mode
//! is another pair chosen here, so that nothing above this module knows which one runs. A mode
//! that is asked for and cannot work here says what is missing and what to do.
//!
//! The choice costs a root build one geteuid and one environment lookup (`userns::inside`
//! reads /proc only when pallet's marker variable is set).

use super::chroot::{self, Chroot};
use super::executor::{Executor, Runc};
use super::runc::{Privilege, RunError, RunSpec, Stream};
use crate::snapshot::{OverlaySnapshotter, Snapshotter, TreeSnapshotter};
use crate::userns;
use std::path::Path;
use std::sync::Arc;

/// The isolation a user asks for (`--isolation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IsolationMode {
    /// The best this machine allows: root when running as root, rootless for a normal user
    /// with subordinate ids, newuidmap and user namespaces.
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
    /// What the header line says in parentheses (`runc /usr/sbin/runc, overlayfs`).
    parts: String,
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
        // Only inside pallet's user namespace is the euid 0 without being root.
        let rootless = root && userns::inside();
        match mode {
            // Root that cannot mount: an unprivileged container.
            IsolationMode::Auto if root && !rootless && !chroot::select::mounts_allowed() => {
                Isolation::chroot()
            }
            IsolationMode::Auto | IsolationMode::Root if root && !rootless => {
                Ok(Isolation::root(runtime)?)
            }
            IsolationMode::Auto | IsolationMode::Rootless if rootless => {
                Ok(Isolation::rootless(runtime)?)
            }
            IsolationMode::Root => Err(IsolationError::Unavailable {
                mode: "root",
                why: "pallet is not running as root (run it with sudo, or use --isolation \
                      rootless as a normal user)"
                    .into(),
            }),
            IsolationMode::Rootless if root => Err(IsolationError::Unavailable {
                mode: "rootless",
                why: "pallet is running as root, and rootless mode is a normal user's: run \
                      pallet as that user, or use --isolation root"
                    .into(),
            }),
            IsolationMode::Auto | IsolationMode::Rootless => {
                let name = if mode == IsolationMode::Auto {
                    "auto"
                } else {
                    "rootless"
                };
                let why = match userns::unavailable() {
                    Some(why) if mode == IsolationMode::Auto => format!(
                        "pallet is not root, and rootless mode lacks something: {why}; or run \
                         it as root (sudo)"
                    ),
                    Some(why) => why.to_string(),
                    None => "pallet is not root and did not enter its user namespace (run \
                             pallet itself, not the library, as a normal user)"
                        .into(),
                };
                Err(IsolationError::Unavailable { mode: name, why })
            }
            IsolationMode::Chroot => Isolation::chroot(),
        }
    }

    /// As root: runc (`--runtime PATH`, else on PATH) over overlayfs.
    pub fn root(runtime: Option<&Path>) -> Result<Isolation, RunError> {
        let executor = Runc::locate(runtime)?;
        let snapshotter = OverlaySnapshotter;
        Ok(Isolation {
            mode: "root",
            parts: format!("{}, {}", executor.describe(), snapshotter.describe()),
            executor: Arc::new(executor),
            snapshotter: Arc::new(snapshotter),
        })
    }

    /// Inside pallet's user namespace (a normal user): `runc --rootless=true` over overlayfs
    /// with `userxattr`.
    pub fn rootless(runtime: Option<&Path>) -> Result<Isolation, RunError> {
        let executor = Runc::locate(runtime)?.with_privilege(Privilege::Rootless);
        let snapshotter = OverlaySnapshotter;
        Ok(Isolation {
            mode: "rootless",
            parts: format!("user namespace, {}", snapshotter.describe()),
            executor: Arc::new(executor),
            snapshotter: Arc::new(snapshotter),
        })
    }

    /// chroot over copied trees, for unprivileged containers (no mounts, no namespaces):
    /// `exec::Chroot` over `snapshot::TreeSnapshotter`.
    pub fn chroot() -> Result<Isolation, IsolationError> {
        if let Some(why) = chroot::select::missing() {
            return Err(IsolationError::Unavailable {
                mode: "chroot",
                why,
            });
        }
        Ok(Isolation {
            mode: "chroot",
            parts: "no mounts, no user namespaces".into(),
            executor: Arc::new(Chroot::new()),
            snapshotter: Arc::new(TreeSnapshotter::new()),
        })
    }

    /// For a dry run (`build --explain`): runs nothing and mounts nothing.
    pub fn dry_run() -> Isolation {
        Isolation {
            mode: "dry run",
            parts: format!("{}, {}", DryRun.describe(), OverlaySnapshotter.describe()),
            executor: Arc::new(DryRun),
            snapshotter: Arc::new(OverlaySnapshotter),
        }
    }

    /// One line for a build's header: `isolation: root (runc /usr/sbin/runc, overlayfs)`,
    /// `isolation: rootless (user namespace, overlayfs userxattr)`.
    pub fn describe(&self) -> String {
        format!("isolation: {} ({})", self.mode, self.parts)
    }

    /// The mode's name: `root`, `rootless`, `chroot`, `dry run`.
    pub fn mode(&self) -> &'static str {
        self.mode
    }

    /// Checks that the snapshotter can make trees in the store whose tmp dir is `scratch`
    /// (rootless: one overlay mount; root: nothing), and gives the isolation to build with. A
    /// build and `pallet run` ask before their first step. Where the kernel refuses rootless
    /// overlayfs on the store's filesystem (another overlayfs, NFS, some FUSE filesystems),
    /// rootless mode falls back to copied trees (the [`TreeSnapshotter`] chroot mode uses,
    /// with the same rootless runc), and the header line says so with the refusal. Err: a
    /// refusal with no fallback, what refused and what to do.
    pub fn check_store(self, scratch: &Path) -> Result<Isolation, IsolationError> {
        let refused = match self.snapshotter.probe(scratch) {
            Ok(()) => return Ok(self),
            Err(e) => e,
        };
        if self.mode == "rootless" {
            let trees = TreeSnapshotter::new();
            return Ok(Isolation {
                parts: format!(
                    "user namespace, {} ({} refuses overlayfs userxattr)",
                    trees.describe(),
                    crate::snapshot::filesystem(scratch)
                ),
                snapshotter: Arc::new(trees),
                ..self
            });
        }
        Err(IsolationError::Unavailable {
            mode: self.mode,
            why: format!(
                "{refused}; put the store on a local ext4, xfs or btrfs filesystem (--root DIR, \
                 PALLET_ROOT or XDG_DATA_HOME), or run pallet as root"
            ),
        })
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
