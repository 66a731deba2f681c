//! SSH agent forwarding for builds (`pallet build --ssh`, `RUN --mount=type=ssh`, git sources
//! over ssh), as buildx and BuildKit do it.
//!
//! - [`SshSpec`]: one `--ssh` flag as buildx parses it: `ID` (the agent at `$SSH_AUTH_SOCK`),
//!   `ID=SOCKET` or `ID=KEY[,KEY...]` (private key files). `default` is the id a mount without
//!   `id=` asks for.
//! - [`Agents`]: every `--ssh` resolved to an agent socket for the length of a build. Key files
//!   are loaded into a private `ssh-agent` that pallet starts on a socket in a temp dir of its
//!   own and kills when the build ends (BuildKit loads them into an in-process keyring; an
//!   agent of our own gives the same answers without an implementation of the key formats
//!   and signatures in pallet). Passphrase-protected keys are refused, as BuildKit refuses
//!   them: a build has no one to ask.
//! - [`AgentProxy`]: what a RUN step sees. A listening socket in a pallet-owned temp dir, with
//!   the mount's uid, gid and mode, bind-mounted at the mount's target; each connection is
//!   forwarded to the agent, read-only like BuildKit's (identities and signatures pass; adding,
//!   removing, locking keys and extensions are refused). The user's own socket is never
//!   mounted, chowned or chmodded, and its path is in no cache key.
//!
//! Nothing here knows of Dockerfiles or of the graph.

mod agent;
mod error;
mod proxy;

pub use error::{KeyProblem, SshError};
pub use proxy::AgentProxy;

use agent::PrivateAgent;
use std::collections::HashMap;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

/// The id `RUN --mount=type=ssh` uses without `id=`, and the one git sources over ssh use.
pub const DEFAULT_ID: &str = "default";

/// One `--ssh` flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshSpec {
    pub id: String,
    /// Empty: the agent at `$SSH_AUTH_SOCK`.
    pub paths: Vec<PathBuf>,
}

impl SshSpec {
    /// buildx's syntax: `ID` or `ID=PATH[,PATH...]`.
    pub fn parse(spec: &str) -> Result<SshSpec, SshError> {
        let (id, paths) = match spec.split_once('=') {
            Some((id, paths)) => (
                id,
                paths
                    .split(',')
                    .filter(|p| !p.is_empty())
                    .map(PathBuf::from)
                    .collect(),
            ),
            None => (spec, Vec::new()),
        };
        if id.is_empty() {
            return Err(SshError::BadSpec(spec.to_string()));
        }
        Ok(SshSpec {
            id: id.to_string(),
            paths,
        })
    }
}

/// What one `--ssh` turned out to be, after looking at its paths.
#[derive(Debug, PartialEq, Eq)]
enum Resolved {
    Socket(PathBuf),
    Keys(Vec<PathBuf>),
}

fn resolve(spec: &SshSpec, auth_sock: Option<&str>) -> Result<Resolved, SshError> {
    let id = &spec.id;
    if spec.paths.is_empty() {
        return match auth_sock.filter(|s| !s.is_empty()) {
            Some(sock) => check_socket(id, Path::new(sock)).map(Resolved::Socket),
            None => Err(SshError::NoAgent(id.clone())),
        };
    }
    let mut sockets = Vec::new();
    let mut keys = Vec::new();
    for p in &spec.paths {
        let meta = std::fs::metadata(p).map_err(|source| SshError::Path {
            id: id.clone(),
            path: p.clone(),
            source,
        })?;
        if meta.file_type().is_socket() {
            sockets.push(p.clone());
        } else {
            keys.push(p.clone());
        }
    }
    match (sockets.len(), keys.is_empty()) {
        (0, _) => Ok(Resolved::Keys(keys)),
        (1, true) => Ok(Resolved::Socket(sockets.remove(0))),
        (1, false) => Err(SshError::SocketAndKeys(id.clone())),
        _ => Err(SshError::Sockets(id.clone())),
    }
}

fn check_socket(id: &str, path: &Path) -> Result<PathBuf, SshError> {
    let meta = std::fs::metadata(path).map_err(|source| SshError::Path {
        id: id.to_string(),
        path: path.to_path_buf(),
        source,
    })?;
    if !meta.file_type().is_socket() {
        return Err(SshError::NotSocket {
            id: id.to_string(),
            path: path.to_path_buf(),
        });
    }
    Ok(path.to_path_buf())
}

/// Every `--ssh` of a build as an agent socket; private agents for key files run until this
/// is dropped.
#[derive(Default)]
pub struct Agents {
    sockets: HashMap<String, PathBuf>,
    private: Vec<PrivateAgent>,
}

impl Agents {
    /// Resolves the specs (`$SSH_AUTH_SOCK` for those without paths) and starts an agent for
    /// each set of key files. Refuses a repeated id, as buildx does.
    pub fn start(specs: &[SshSpec]) -> Result<Agents, SshError> {
        let auth_sock = std::env::var("SSH_AUTH_SOCK").ok();
        let mut agents = Agents::default();
        for spec in specs {
            if agents.sockets.contains_key(&spec.id) {
                return Err(SshError::Repeated(spec.id.clone()));
            }
            let socket = match resolve(spec, auth_sock.as_deref())? {
                Resolved::Socket(s) => s,
                Resolved::Keys(keys) => {
                    let agent = PrivateAgent::start(&spec.id, &keys)?;
                    let socket = agent.socket().to_path_buf();
                    agents.private.push(agent);
                    socket
                }
            };
            agents.sockets.insert(spec.id.clone(), socket);
        }
        Ok(agents)
    }

    /// Agent sockets by id, for the solver.
    pub fn sockets(&self) -> HashMap<String, PathBuf> {
        self.sockets.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs() {
        assert_eq!(
            SshSpec::parse("default").unwrap(),
            SshSpec {
                id: "default".into(),
                paths: vec![]
            }
        );
        assert_eq!(
            SshSpec::parse("gh=/a/k1,/a/k2").unwrap().paths,
            vec![PathBuf::from("/a/k1"), PathBuf::from("/a/k2")]
        );
        assert!(SshSpec::parse("=/x").is_err());
        assert!(SshSpec::parse("default=").unwrap().paths.is_empty());
    }

    #[test]
    fn resolving() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("agent.sock");
        let _l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let key = dir.path().join("key");
        std::fs::write(&key, "k").unwrap();
        let spec = |s: &str| SshSpec::parse(s).unwrap();
        let none = resolve(&spec("default"), None).unwrap_err().to_string();
        assert!(none.contains("SSH_AUTH_SOCK is not set"), "{none}");
        assert_eq!(
            resolve(&spec("default"), sock.to_str()).unwrap(),
            Resolved::Socket(sock.clone())
        );
        let not_sock = resolve(&spec("default"), key.to_str())
            .unwrap_err()
            .to_string();
        assert!(not_sock.contains("is not a socket"), "{not_sock}");
        assert_eq!(
            resolve(&spec(&format!("x={}", sock.display())), None).unwrap(),
            Resolved::Socket(sock.clone())
        );
        assert_eq!(
            resolve(&spec(&format!("x={}", key.display())), None).unwrap(),
            Resolved::Keys(vec![key.clone()])
        );
        let missing = resolve(&spec("x=/nonexistent/key"), None)
            .unwrap_err()
            .to_string();
        assert!(missing.contains("/nonexistent/key"), "{missing}");
        let mixed = resolve(
            &spec(&format!("x={},{}", sock.display(), key.display())),
            None,
        );
        assert!(mixed.unwrap_err().to_string().contains("not both"));
    }
}
