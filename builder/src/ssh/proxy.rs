//! The socket a RUN step's ssh mount shows: a listener pallet owns, chowned and chmodded as
//! the mount asks, forwarding each connection to an agent, one request and its answer at a
//! time (the agent protocol is strictly request/response: `uint32 length, byte type, body`).
//!
//! Read-only, as BuildKit's forwarding is (sshprovider's readOnlyAgent): listing identities
//! (11) and signing (13) reach the agent; anything else (adding or removing keys, locking,
//! extensions) is answered SSH_AGENT_FAILURE (5) without reaching it.

use super::SshError;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

const REQUEST_IDENTITIES: u8 = 11;
const SIGN_REQUEST: u8 = 13;
const FAILURE: u8 = 5;
/// OpenSSH's own limit on an agent message.
const MAX_MESSAGE: usize = 256 * 1024;

/// A forwarding socket at `path`; stops listening and removes the socket on drop. Connections
/// already open end when either side closes (the step's processes are gone by then).
pub struct AgentProxy {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl AgentProxy {
    pub fn start(
        agent: &Path,
        path: &Path,
        uid: u32,
        gid: u32,
        mode: u32,
    ) -> Result<AgentProxy, SshError> {
        let listener = UnixListener::bind(path).map_err(|source| SshError::Socket {
            path: path.to_path_buf(),
            source,
        })?;
        let set = std::os::unix::fs::chown(path, Some(uid), Some(gid)).and_then(|()| {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o7777))
        });
        if let Err(source) = set {
            let _ = std::fs::remove_file(path);
            return Err(SshError::SocketOwner {
                uid,
                gid,
                mode,
                source,
            });
        }
        let stop = Arc::new(AtomicBool::new(false));
        let accept = {
            let stop = stop.clone();
            let agent = agent.to_path_buf();
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let agent = agent.clone();
                    std::thread::spawn(move || {
                        let _ = forward(conn, &agent);
                    });
                }
            })
        };
        Ok(AgentProxy {
            path: path.to_path_buf(),
            stop,
            accept: Some(accept),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for AgentProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees `stop`.
        let _ = UnixStream::connect(&self.path);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Serves one client connection until it closes. The agent connection opens with the first
/// request that may reach it.
fn forward(mut client: UnixStream, agent: &Path) -> std::io::Result<()> {
    let mut upstream: Option<UnixStream> = None;
    loop {
        let Some(request) = read_message(&mut client)? else {
            return Ok(());
        };
        if !matches!(request.first(), Some(&REQUEST_IDENTITIES | &SIGN_REQUEST)) {
            write_message(&mut client, &[FAILURE])?;
            continue;
        }
        let up = match &mut upstream {
            Some(u) => u,
            None => upstream.insert(UnixStream::connect(agent)?),
        };
        write_message(up, &request)?;
        let Some(answer) = read_message(up)? else {
            return Ok(());
        };
        write_message(&mut client, &answer)?;
    }
}

/// One message's body; None at a clean end of stream.
fn read_message(s: &mut UnixStream) -> std::io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    match s.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len == 0 || len > MAX_MESSAGE {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("agent message of {len} bytes"),
        ));
    }
    let mut body = vec![0u8; len];
    s.read_exact(&mut body)?;
    Ok(Some(body))
}

fn write_message(s: &mut UnixStream, body: &[u8]) -> std::io::Result<()> {
    let mut msg = Vec::with_capacity(4 + body.len());
    msg.extend_from_slice(&(body.len() as u32).to_be_bytes());
    msg.extend_from_slice(body);
    s.write_all(&msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake agent that answers every request with its type + 100, to see what passes.
    fn echo_agent(path: &Path) {
        let l = UnixListener::bind(path).unwrap();
        std::thread::spawn(move || {
            for c in l.incoming() {
                let mut c = c.unwrap();
                while let Ok(Some(m)) = read_message(&mut c) {
                    write_message(&mut c, &[m[0] + 100]).unwrap();
                }
            }
        });
    }

    #[test]
    fn read_only_forwarding() {
        let dir = tempfile::tempdir().unwrap();
        let agent = dir.path().join("agent");
        echo_agent(&agent);
        let sock = dir.path().join("proxy");
        let proxy = AgentProxy::start(&agent, &sock, 0, 0, 0o640).unwrap();
        use std::os::unix::fs::MetadataExt;
        assert_eq!(std::fs::metadata(&sock).unwrap().mode() & 0o7777, 0o640);
        let mut c = UnixStream::connect(proxy.path()).unwrap();
        for (ty, want) in [
            (11u8, 111u8),
            (13, 113),
            (17, FAILURE),
            (27, FAILURE),
            (19, FAILURE),
        ] {
            write_message(&mut c, &[ty, 1, 2]).unwrap();
            assert_eq!(
                read_message(&mut c).unwrap().unwrap(),
                vec![want],
                "type {ty}"
            );
        }
        drop(c);
        drop(proxy);
        assert!(!sock.exists());
    }
}
