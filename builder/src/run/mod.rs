//! `pallet run`: one container from an image in the local store, like `docker run --rm`, for
//! smoke tests in CI (`pallet run app pytest`).
//!
//! The image's snapshots are the lowers of a writable tree (the isolation's snapshotter) in a
//! throwaway dir under the store's tmp: everything the container writes is discarded with it,
//! and the snapshots are never written. The process is resolved as docker does ([`process`]),
//! the user in the image's own /etc/passwd, and the container is run by the same executor as a
//! RUN step ([`crate::exec::Executor`]), with the host's network by default (pallet's deliberate difference,
//! as for RUN) or none. SIGINT and SIGTERM are forwarded to it while it runs ([`signals`]).
//! Standard input is not attached; the container's stdout and stderr stay apart (the runner
//! tags each chunk of output with its stream, and the caller writes it to its own stdout or
//! stderr). If pallet dies while the container runs, the runner's watchdog kills and deletes the
//! container and unmounts the overlay ([`crate::exec::runc`]).
//!
//! Owns the life of one run (scratch dirs, overlay, signals); knows nothing of Dockerfiles,
//! graphs or the CLI.

mod process;
mod signals;

pub use crate::exec::{IsolationMode, Stream};
pub use process::{add_home, parse_volume, resolve, Process, ProcessFlags, DEFAULT_PATH};

use crate::exec::user::{self, UserError};
use crate::exec::{self, Isolation, IsolationError, RunSpec, SpecMount};
use crate::store::{ensure_snapshot, step_dir, StoreError, StoredImage};
use cache::Root;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(
        "nothing to run: the image has no ENTRYPOINT or CMD and no command was given \
         (give one after the image: pallet run IMAGE COMMAND [ARG...])"
    )]
    NoCommand,
    #[error("invalid -e {0:?}: the variable name is empty (use -e KEY=VALUE or -e KEY)")]
    BadEnv(String),
    #[error("invalid -v {spec}: {why}")]
    BadVolume { spec: String, why: String },
    #[error("the working directory {0:?} is not absolute (give --workdir an absolute path)")]
    RelativeWorkdir(String),
    #[error("the image's layers: {0}")]
    Store(#[from] StoreError),
    #[error("mounting the image's file tree: {0}")]
    Mount(#[source] std::io::Error),
    /// The image's user (or `--user`) is not in its /etc files.
    #[error("user {user:?}: {source}")]
    User {
        user: String,
        #[source]
        source: UserError,
    },
    #[error(transparent)]
    Runtime(#[from] exec::RunError),
    #[error(transparent)]
    Isolation(#[from] IsolationError),
}

/// How to run: the process flags, `-v` specs, network and runtime.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub process: ProcessFlags,
    /// `-v HOST:CONTAINER[:ro|rw]` as given.
    pub volumes: Vec<String>,
    /// true: the host's network namespace (the default); false: a new one with only `lo`.
    pub host_network: bool,
    /// `--runtime PATH`: the OCI runtime; None: `runc` on PATH.
    pub runtime: Option<PathBuf>,
    /// `--isolation`: how the container runs.
    pub isolation: IsolationMode,
    /// How long a forwarded SIGINT/SIGTERM may take to end the container before SIGKILL.
    pub stop_timeout: Duration,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// The container's exit code (128+N if a signal N killed it).
    pub code: i32,
    /// The signal pallet received (and forwarded) while it ran, if any.
    pub signal: Option<i32>,
}

impl Outcome {
    /// The code for pallet to exit with: the container's, except that a container pallet had
    /// to SIGKILL after forwarding signal N (it ignored N) reports 128+N, as if N had ended it.
    pub fn exit_code(&self) -> i32 {
        match self.signal {
            Some(n) if self.code == 128 + libc::SIGKILL => 128 + n,
            _ => self.code,
        }
    }
}

/// Runs `image` once; the container's output goes to `output` as it comes, in raw chunks
/// tagged with their stream. The scratch dirs and the overlay are removed before this returns,
/// whatever happened.
pub fn run_image(
    root: &Root,
    image: &StoredImage,
    opts: &RunOptions,
    output: &mut dyn FnMut(Stream, &[u8]),
) -> Result<Outcome, RunError> {
    let mounts = opts
        .volumes
        .iter()
        .map(|v| parse_volume(v))
        .collect::<Result<Vec<SpecMount>, _>>()?;
    let hostname = hostname(opts.host_network);
    let lookup = |key: &str| std::env::var(key).ok();
    let mut process = resolve(&image.config.config, &opts.process, &hostname, &lookup)?;

    // Snapshots first (they may need unpacking), top layer first for overlayfs.
    let lowers = image
        .layers
        .iter()
        .rev()
        .map(|diff_id| ensure_snapshot(root, diff_id))
        .collect::<Result<Vec<_>, _>>()?;
    let isolation =
        Isolation::select(opts.isolation, opts.runtime.as_deref())?.check_store(&root.tmp_dir())?;
    crate::store::markers::reconcile(root, isolation.mode())?;
    let scratch = step_dir(root)?;
    let bundle = &scratch.path().join("bundle");
    // Installed before the mount so a signal now still ends in the cleanup below.
    let forwarder = signals::Forwarder::start(
        isolation.executor.clone(),
        bundle.clone(),
        opts.stop_timeout,
    );
    let tree = isolation
        .snapshotter
        .prepare(&lowers, scratch.path())
        .map_err(RunError::Mount)?;
    let merged = tree.root();
    let user = user::resolve(merged, &process.user).map_err(|source| RunError::User {
        user: process.user.clone(),
        source,
    })?;
    add_home(&mut process.env, user.home.as_deref());
    if let Some(signal) = forwarder.received() {
        return Ok(Outcome {
            code: 128 + signal,
            signal: Some(signal),
        });
    }
    let spec = RunSpec {
        args: process.args,
        env: process.env,
        cwd: process.cwd,
        uid: user.uid,
        gid: user.gid,
        additional_gids: user.additional_gids,
        host_network: opts.host_network,
        hostname,
        mounts,
        insecure: false,
        shm_size: 0,
        ulimits: Vec::new(),
    };
    let code = isolation.executor.run(merged, bundle, &spec, output);
    let signal = forwarder.received();
    drop(forwarder);
    drop(tree);
    drop(scratch);
    Ok(Outcome {
        code: code?,
        signal,
    })
}

/// The host's name with the host's network (as docker does for `--network host`), else a
/// random 12-hex-digit one (docker uses the container id's first 12).
fn hostname(host_network: bool) -> String {
    if host_network {
        let mut buf = [0u8; 256];
        // SAFETY: gethostname writes at most `buf.len()` bytes into `buf`.
        if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0 {
            let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
            if let Ok(name) = std::str::from_utf8(&buf[..end]) {
                if !name.is_empty() {
                    return name.to_string();
                }
            }
        }
    }
    let seed = format!("{}-{:?}", std::process::id(), std::time::SystemTime::now());
    blake3::hash(seed.as_bytes()).to_hex()[..12].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_code_after_escalation() {
        let killed = Outcome {
            code: 137,
            signal: Some(libc::SIGTERM),
        };
        assert_eq!(killed.exit_code(), 143);
        let handled = Outcome {
            code: 7,
            signal: Some(libc::SIGTERM),
        };
        assert_eq!(handled.exit_code(), 7);
        let plain = Outcome {
            code: 137,
            signal: None,
        };
        assert_eq!(plain.exit_code(), 137);
        assert_eq!(hostname(false).len(), 12);
        assert!(!hostname(true).is_empty());
    }
}
