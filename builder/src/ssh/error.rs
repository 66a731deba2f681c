//! What `--ssh` and the sockets it forwards fail with, each message naming the `--ssh` id and
//! what to do.

use std::io;
use std::path::PathBuf;
use std::process::ExitStatus;

/// Why an `--ssh` could not be parsed or served, or a step's agent socket not made.
#[derive(Debug, thiserror::Error)]
pub enum SshError {
    #[error("invalid --ssh \"{0}\": write ID, ID=SOCKET or ID=KEY[,KEY...] (e.g. --ssh default)")]
    BadSpec(String),
    #[error("--ssh {0}: the id is given twice")]
    Repeated(String),
    #[error(
        "--ssh {0}: SSH_AUTH_SOCK is not set, so there is no agent to forward: start one \
         (eval $(ssh-agent); ssh-add) or name a socket or key: --ssh {0}=PATH"
    )]
    NoAgent(String),
    /// A path of `--ssh id=...` (or `$SSH_AUTH_SOCK`) cannot be looked at.
    #[error("--ssh {id}: {}: {source}", path.display())]
    Path {
        id: String,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "--ssh {id}: {} is not a socket (SSH_AUTH_SOCK must name an agent's socket)",
        path.display()
    )]
    NotSocket { id: String, path: PathBuf },
    #[error("--ssh {0}: give one agent socket or key files, not both")]
    SocketAndKeys(String),
    #[error("--ssh {0}: only one agent socket is allowed")]
    Sockets(String),
    #[error("--ssh {id}: reading {}: {source}", path.display())]
    ReadKey {
        id: String,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A key file pallet's private agent cannot take.
    #[error("--ssh {id}: {}: {problem}", path.display())]
    BadKey {
        id: String,
        path: PathBuf,
        problem: KeyProblem,
    },
    #[error("--ssh {id}: creating a directory for its agent: {source}")]
    AgentDir {
        id: String,
        #[source]
        source: io::Error,
    },
    #[error(
        "--ssh {id}: key files are served by a private ssh-agent, which could not start \
         ({source}): install openssh-client, or load the keys into your agent and pass \
         --ssh {id}=$SSH_AUTH_SOCK"
    )]
    AgentStart {
        id: String,
        #[source]
        source: io::Error,
    },
    /// The private agent exited before it listened; `stderr`: what it said.
    #[error("--ssh {id}: ssh-agent exited ({status}): {stderr}")]
    AgentExited {
        id: String,
        status: ExitStatus,
        stderr: String,
    },
    #[error("--ssh {id}: ssh-agent did not open {} within 10 s", socket.display())]
    AgentSilent { id: String, socket: PathBuf },
    #[error("--ssh {id}: running ssh-add: {source}: install openssh-client")]
    SshAddStart {
        id: String,
        #[source]
        source: io::Error,
    },
    #[error("--ssh {id}: running ssh-add: {source}")]
    SshAdd {
        id: String,
        #[source]
        source: io::Error,
    },
    /// ssh-add refused a key; `stderr`: what it said.
    #[error("--ssh {id}: ssh-add refused {}: {stderr}", path.display())]
    SshAddRefused {
        id: String,
        path: PathBuf,
        stderr: String,
    },
    /// A RUN step's forwarding socket could not be created at `path`.
    #[error("creating the ssh agent socket {}: {source}", path.display())]
    Socket {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("setting owner {uid}:{gid} and mode {mode:o} on the ssh agent socket: {source}")]
    SocketOwner {
        uid: u32,
        gid: u32,
        mode: u32,
        #[source]
        source: io::Error,
    },
}

/// What is wrong with a key file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyProblem {
    #[error(
        "the key is protected by a passphrase, which a build cannot ask for: load it into an \
         agent (ssh-add KEY) and pass --ssh ID=$SSH_AUTH_SOCK"
    )]
    Passphrase,
    #[error("not a private key file (nor an agent socket)")]
    NotAKey,
}
