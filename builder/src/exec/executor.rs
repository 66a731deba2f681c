//! The executor seam: what runs one process in a prepared root file tree. runc, as root or
//! rootless, is the one there is today; a chroot executor for unprivileged containers plugs in
//! here. The solver's RUN steps and `pallet run` hold a `&dyn Executor` and know
//! nothing of runc's command line.

use super::runc::{self, Privilege, RunError, RunSpec, Stream};
use std::path::{Path, PathBuf};

/// Runs processes in root file trees that a snapshotter prepared.
pub trait Executor: Send + Sync {
    /// What runs steps, for the build's header line (`runc /usr/sbin/runc`).
    fn describe(&self) -> String;

    /// Runs `spec` in `rootfs` with scratch files under `bundle`; hands the output to `output`
    /// in raw chunks tagged with their stream, as it comes; returns the exit code (128+N when
    /// signal N killed it).
    fn run(
        &self,
        rootfs: &Path,
        bundle: &Path,
        spec: &RunSpec,
        output: &mut dyn FnMut(Stream, &[u8]),
    ) -> Result<i32, RunError>;

    /// Whether a mount's source stays where it is while the step runs (a bind mount), so
    /// one cache dir can serve several steps at once. The chroot executor moves the dir into
    /// the step's tree instead: steps that share a cache then take turns.
    fn mounts_in_place(&self) -> bool {
        true
    }

    /// Whether a process started with `bundle` is running now.
    fn is_running(&self, bundle: &Path) -> bool;

    /// Sends `signal` (`TERM`, `KILL`, or a number) to what runs with `bundle`; quiet when it
    /// has just exited.
    fn signal(&self, bundle: &Path, signal: &str);

    /// [`Executor::run`] with the output as lines (without the newline; long lines in
    /// pieces), each stream's lines in order: what a build step's log shows.
    fn run_lines(
        &self,
        rootfs: &Path,
        bundle: &Path,
        spec: &RunSpec,
        output: &mut dyn FnMut(&str),
    ) -> Result<i32, RunError> {
        let mut lines = runc::Lines::default();
        let code = self.run(rootfs, bundle, spec, &mut |stream, data| {
            lines.push(stream, data, output)
        });
        lines.finish(output);
        code
    }
}

/// runc: a bundle per process, its state under the bundle; as root, or rootless (as uid 0 of
/// pallet's user namespace, see [`Privilege`]).
#[derive(Debug, Clone)]
pub struct Runc {
    path: PathBuf,
    privilege: Privilege,
}

impl Runc {
    /// `--runtime PATH` (or a bare name looked up on PATH), else `runc` on PATH.
    pub fn locate(explicit: Option<&Path>) -> Result<Runc, RunError> {
        runc::find_runtime(explicit).map(|path| Runc {
            path,
            privilege: Privilege::Root,
        })
    }

    /// runc at `path`, unchecked (a run reports a runtime that is not there).
    pub fn at(path: PathBuf) -> Runc {
        Runc {
            path,
            privilege: Privilege::Root,
        }
    }

    /// The same runtime run with `privilege`.
    pub fn with_privilege(self, privilege: Privilege) -> Runc {
        Runc { privilege, ..self }
    }

    /// The runtime binary.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Executor for Runc {
    fn describe(&self) -> String {
        match self.privilege {
            Privilege::Root => format!("runc {}", self.path.display()),
            Privilege::Rootless => format!("runc {} --rootless", self.path.display()),
        }
    }

    fn run(
        &self,
        rootfs: &Path,
        bundle: &Path,
        spec: &RunSpec,
        output: &mut dyn FnMut(Stream, &[u8]),
    ) -> Result<i32, RunError> {
        runc::run_streams(&self.path, self.privilege, rootfs, bundle, spec, output)
    }

    fn is_running(&self, bundle: &Path) -> bool {
        !runc::containers(bundle).is_empty()
    }

    fn signal(&self, bundle: &Path, signal: &str) {
        for id in runc::containers(bundle) {
            runc::kill(&self.path, bundle, &id, signal);
        }
    }
}
