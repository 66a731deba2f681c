//! The chroot executor: RUN where there are no namespaces and no mounts (an unprivileged
//! container: docker's default capabilities and seccomp, uid 0 inside). The step's process is
//! forked, chrooted into the tree the snapshotter made (CAP_SYS_CHROOT is in docker's default
//! set), given the working directory, umask 022, the user, groups and environment runc would
//! give it, and a capability bounding set cut to docker's default; it runs in a process group
//! of its own, killed as a whole when the step ends (no pid namespace does it here).
//!
//! What runc mounts is stood in for without mounts (`place`): /etc/hosts and resolv.conf
//! written, cache dirs moved in, bind sources and secrets copied in, tmpfs as empty dirs, all
//! undone before the tree is diffed. /dev and /proc: `dev`. `RUN --network=none` and ssh
//! mounts need a namespace or a mount and fail at their step, saying so.
//!
//! This is isolation of files only: the step shares the container's processes, network and
//! kernel view (see the README).

mod dev;
mod place;
mod process;
pub(crate) mod select;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::executor::Executor;
use super::runc::{rootfs, RunError, RunSpec, SpecMount, Stream, DEFAULT_HOSTNAME};

/// Runs steps chrooted into plain directory trees.
#[derive(Default)]
pub struct Chroot {
    /// The process group of what runs with each bundle.
    running: Mutex<HashMap<PathBuf, i32>>,
}

impl Chroot {
    pub fn new() -> Chroot {
        Chroot::default()
    }
}

impl Executor for Chroot {
    fn describe(&self) -> String {
        "chroot".into()
    }

    /// Cache dirs are moved into the tree (`place`), not bound.
    fn mounts_in_place(&self) -> bool {
        false
    }

    fn run(
        &self,
        rootfs: &Path,
        bundle: &Path,
        spec: &RunSpec,
        output: &mut dyn FnMut(Stream, &[u8]),
    ) -> Result<i32, RunError> {
        spec.check()?;
        if !spec.host_network {
            return Err(RunError::Setup(
                "RUN --network=none needs a network namespace of its own, which chroot \
                 isolation cannot make (no namespaces here); drop --network=none from this \
                 step, or build where --isolation root or rootless works"
                    .into(),
            ));
        }
        // Signals name the bundle as the caller gave it.
        let key = bundle.to_path_buf();
        let rootfs = std::path::absolute(rootfs)
            .map_err(RunError::prepare(format!("resolving {}", rootfs.display())))?;
        std::fs::create_dir_all(bundle).map_err(RunError::prepare(format!(
            "creating the bundle dir {}",
            bundle.display()
        )))?;
        let bundle = std::path::absolute(bundle)
            .map_err(RunError::prepare(format!("resolving {}", bundle.display())))?;
        let hostname = if spec.hostname.is_empty() {
            DEFAULT_HOSTNAME
        } else {
            &spec.hostname
        };
        // Undone in reverse order of making, on every return (drops), before the diff.
        let mut placed = place::Placements::new(&rootfs, &bundle);
        placed
            .file("/etc/hosts", &rootfs::hosts_file(hostname))
            .and_then(|()| placed.file("/etc/resolv.conf", &rootfs::resolv_conf(true)))
            .map_err(RunError::prepare("standing in for runc's /etc binds"))?;
        let mut dev =
            dev::Dev::make(&rootfs).map_err(RunError::prepare("making the step's /dev"))?;
        rootfs::ensure_cwd(&rootfs, &spec.cwd, spec.uid, spec.gid)?;
        for m in &spec.mounts {
            stand_in(&mut placed, m)?;
        }
        let program = process::find_program(&rootfs, spec)?;
        let code = process::run(
            &rootfs,
            &program,
            spec,
            &|pgid| {
                let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
                match pgid {
                    Some(pgid) => running.insert(key.clone(), pgid),
                    None => running.remove(&key),
                };
            },
            output,
        );
        dev.undo()
            .map_err(RunError::prepare("removing the step's /dev nodes"))?;
        placed.undo().map_err(RunError::prepare(
            "taking the step's stand-ins for mounts out",
        ))?;
        code
    }

    fn is_running(&self, bundle: &Path) -> bool {
        let running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        running.contains_key(bundle)
    }

    fn signal(&self, bundle: &Path, signal: &str) {
        let pgid = {
            let running = self.running.lock().unwrap_or_else(|p| p.into_inner());
            running.get(bundle).copied()
        };
        if let Some(pgid) = pgid {
            process::signal_group(pgid, signal);
        }
    }
}

/// One of the step's mounts, stood in for in the tree.
fn stand_in(placed: &mut place::Placements, m: &SpecMount) -> Result<(), RunError> {
    match m {
        SpecMount::Tmpfs { target, .. } => {
            placed
                .empty_dir(target, 0o1777)
                .map_err(RunError::prepare(format!(
                    "standing in for the tmpfs at {target}"
                )))
        }
        SpecMount::Bind {
            source,
            target,
            readonly,
        } => {
            let meta = std::fs::metadata(source).map_err(RunError::prepare(format!(
                "reading the mount source {}",
                source.display()
            )))?;
            use std::os::unix::fs::FileTypeExt;
            if meta.file_type().is_socket() {
                return Err(RunError::Setup(format!(
                    "the mount at {target} is a socket (an ssh agent): chroot isolation cannot \
                     bind a socket into the step's tree (no mounts here); build where \
                     --isolation root or rootless works, or drop --mount=type=ssh"
                )));
            }
            // A writable dir is a cache dir or a throwaway tree: moved in and back out.
            let done = if meta.is_dir() && !readonly {
                placed.move_dir(target, source)
            } else {
                placed.copy(target, source)
            };
            done.map_err(RunError::prepare(format!(
                "standing in for the mount at {target} (chroot isolation moves or copies it \
                 into the tree)"
            )))
        }
    }
}
