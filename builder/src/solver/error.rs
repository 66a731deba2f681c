//! What a solve fails with: [`SolveError`] names the step, [`StepError`] says how it failed and
//! keeps the typed cause (a runc failure, a file op, a secret, the store, a source, ...). The
//! texts are the ones users have always seen; see the convention in the [solver's
//! doc](super).

use super::keys::context_hash::ContextHashError;
use super::layer_writer::LayerWriteError;
use super::ops::cache_mount::CacheMountError;
use super::secrets::SecretError;
use super::sources::SourceError;
use crate::exec::fileop::FileOpError;
use crate::exec::rootpath::RootPathError;
use crate::exec::user::UserError;
use crate::exec::RunError;
use crate::ssh::SshError;
use crate::store::StoreError;
use graph::Digest;

#[derive(Debug, thiserror::Error)]
pub enum SolveError {
    /// A step failed: which one, and how (its cause kept, typed).
    #[error("{step}: {source}")]
    Step {
        step: String,
        #[source]
        source: StepError,
        /// The Dockerfile lines of the instruction, when the step came from one (boxed: the
        /// error travels in every `Result` of a build).
        lines: Option<Box<(usize, usize)>>,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The graph has no vertex for the result asked for.
    #[error("solve: the graph has no vertex {0}")]
    NoVertex(Digest),
}

impl SolveError {
    /// Step `step` failed with `source`.
    pub(crate) fn step(step: &str, source: impl Into<StepError>) -> SolveError {
        SolveError::Step {
            step: step.to_string(),
            source: source.into(),
            lines: None,
        }
    }

    /// The same error, pointing at the Dockerfile lines of the step's instruction (BuildKit's
    /// source map) unless it points somewhere already.
    pub(crate) fn at(mut self, at: Option<(usize, usize)>) -> SolveError {
        if let SolveError::Step { lines, .. } = &mut self {
            if lines.is_none() {
                *lines = at.map(Box::new);
            }
        }
        self
    }

    /// The Dockerfile lines of the step that failed, if it came from an instruction.
    pub fn lines(&self) -> Option<(usize, usize)> {
        match self {
            SolveError::Step { lines, .. } => lines.as_deref().copied(),
            _ => None,
        }
    }
}

/// The longest command, step name or output line a message quotes, in characters.
pub(crate) const SHOWN_MAX: usize = 2000;

/// `text` cut to [`SHOWN_MAX`] characters, with `…` and the full length where it was cut: a
/// step's name and command come from the Dockerfile and can be megabytes (a 50 MB line made of
/// continuations), and progress and errors quote them several times.
pub(crate) fn shortened(text: &str) -> String {
    match text.char_indices().nth(SHOWN_MAX) {
        None => text.to_string(),
        Some((cut, _)) => format!("{}… ({} bytes)", &text[..cut], text.len()),
    }
}

/// How one step failed.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// RUN's process exited with a non-zero code: the command and the last lines of its
    /// output.
    #[error(
        "process \"{command}\" did not complete successfully: exit code: {code}{}",
        last_output(.tail)
    )]
    Run {
        code: i32,
        command: String,
        tail: Vec<String>,
    },
    /// The executor could not run the process.
    #[error(transparent)]
    Exec(#[from] RunError),
    #[error(transparent)]
    FileOp(#[from] FileOpError),
    /// RUN's user is not in the image.
    #[error(transparent)]
    User(#[from] UserError),
    /// A `--chown` user or group is not in the destination tree.
    #[error("--chown={owner}: {source}")]
    Chown {
        owner: String,
        #[source]
        source: UserError,
    },
    /// The snapshotter could not make a tree (`what`: which one).
    #[error("{what}: {source}")]
    Mount {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// The snapshotter could not give a step's changes back (its own words say what it was
    /// doing).
    #[error("{0}")]
    Snapshot(#[source] std::io::Error),
    /// A `--mount` source path cannot be resolved in its tree.
    #[error("mount source {path}: {source}")]
    MountSource {
        path: String,
        #[source]
        source: RootPathError,
    },
    #[error("mount source {path} does not exist in its source")]
    MountSourceMissing { path: String },
    #[error(transparent)]
    CacheMount(#[from] CacheMountError),
    #[error(
        "secret {id}: not found: this step requires it; pass --secret id={id},src=PATH (or env=VAR)"
    )]
    SecretNotGiven { id: String },
    #[error("secret {id} is not UTF-8 text, so it cannot be an environment variable")]
    SecretNotText { id: String },
    #[error("secret mounts need a tmpfs at /dev/shm (so secrets never touch the disk)")]
    NoShm,
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error(
        "no SSH agent or key \"{id}\" was forwarded, and this step's ssh mount (target {target}) \
         is required: pass --ssh {id}=$SSH_AUTH_SOCK or --ssh {id}=KEYFILE"
    )]
    SshNotForwarded { id: String, target: String },
    #[error(transparent)]
    Ssh(#[from] SshError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A source (image, `ADD <url>`, `ADD <git>`) could not bring its tree in. Boxed: the
    /// largest cause, and a rare one.
    #[error(transparent)]
    Source(Box<SourceError>),
    /// The context files a step reads could not be hashed for its cache key.
    #[error(transparent)]
    ContextHash(#[from] ContextHashError),
    /// A layer's diff or a cache record could not be written.
    #[error(transparent)]
    LayerWrite(#[from] LayerWriteError),
    #[error("the build reads local source \"{name}\", but no directory was given for it")]
    NoLocalDir { name: String },
    /// Local file work of the step (`what`: what was being done, with the path).
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// The graph asks for what a step cannot do: a lowering bug, never the user's (the text
    /// says what).
    #[error("{0}")]
    BadGraph(String),
}

impl From<SourceError> for StepError {
    fn from(e: SourceError) -> StepError {
        StepError::Source(Box::new(e))
    }
}

impl StepError {
    /// An I/O failure while doing `what`.
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> StepError {
        let what = what.into();
        move |source| StepError::Io { what, source }
    }

    /// A tree the snapshotter could not make while doing `what`.
    pub(crate) fn mount(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> StepError {
        let what = what.into();
        move |source| StepError::Mount { what, source }
    }
}

/// The last lines of a failed RUN's output, as they follow its exit code.
fn last_output(tail: &[String]) -> String {
    if tail.is_empty() {
        String::new()
    } else {
        format!("\n  last output:\n    {}", tail.join("\n    "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_run_reads_as_before() {
        let e = StepError::Run {
            code: 7,
            command: "/bin/sh -c exit 7".into(),
            tail: vec!["one".into(), "two".into()],
        };
        assert_eq!(
            SolveError::step("[2/2] RUN exit 7", e).to_string(),
            "[2/2] RUN exit 7: process \"/bin/sh -c exit 7\" did not complete successfully: \
             exit code: 7\n  last output:\n    one\n    two"
        );
        let quiet = StepError::Run {
            code: 1,
            command: "false".into(),
            tail: Vec::new(),
        };
        assert_eq!(
            quiet.to_string(),
            "process \"false\" did not complete successfully: exit code: 1"
        );
    }

    /// The first `std::io::Error` in `e`'s source chain (what issue 13 looks for).
    fn io_cause<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a std::io::Error> {
        let mut cause = Some(e);
        while let Some(c) = cause {
            if let Some(io) = c.downcast_ref::<std::io::Error>() {
                return Some(io);
            }
            cause = c.source();
        }
        None
    }

    #[test]
    fn a_full_disk_is_found_through_shared_and_transparent_causes() {
        let full = || std::io::Error::from_raw_os_error(libc::ENOSPC);
        let written = StoreError::Io {
            what: "writing the layer of /x".into(),
            source: full(),
        };
        let shared = LayerWriteError::Diff {
            step: "[2/2] RUN make".into(),
            source: std::sync::Arc::new(written),
        };
        let e = SolveError::step("[2/2] RUN make", shared);
        assert_eq!(
            e.to_string(),
            format!("[2/2] RUN make: writing the layer of /x: {}", full())
        );
        assert_eq!(
            io_cause(&e).and_then(|io| io.raw_os_error()),
            Some(libc::ENOSPC)
        );
        let hashing = ContextHashError::Shared(std::sync::Arc::new(ContextHashError::Read {
            path: "/ctx/a".into(),
            source: full(),
        }));
        let e = SolveError::step("[1/2] COPY a /a", hashing);
        assert_eq!(
            io_cause(&e).and_then(|io| io.raw_os_error()),
            Some(libc::ENOSPC)
        );
    }

    #[test]
    fn errors_can_be_held_as_the_clis_cause() {
        fn cause<E: std::error::Error + Send + Sync + 'static>() {}
        cause::<SolveError>();
        cause::<SecretError>();
        cause::<SshError>();
    }

    #[test]
    fn io_causes_stay_inspectable() {
        let e = SolveError::step(
            "[1/1] COPY",
            StepError::io("creating /x")(std::io::Error::from_raw_os_error(libc::ENOSPC)),
        );
        assert!(e.to_string().starts_with("[1/1] COPY: creating /x: "));
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        let mut found = None;
        while let Some(c) = cause {
            if let Some(io) = c.downcast_ref::<std::io::Error>() {
                found = io.raw_os_error();
            }
            cause = c.source();
        }
        assert_eq!(found, Some(libc::ENOSPC));
    }
}
