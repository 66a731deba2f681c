//! A private `ssh-agent` holding the key files of one `--ssh ID=KEY[,KEY...]`: started in the
//! foreground (`-D`) on a socket in a 0700 temp dir, keys added with `ssh-add -` (read from a
//! pipe, so a key's file mode does not matter, as it does not to BuildKit), killed and its
//! directory removed on drop. The agent also dies with pallet (PR_SET_PDEATHSIG) if pallet is
//! killed outright.

use super::{KeyProblem, SshError};
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub(super) struct PrivateAgent {
    child: Child,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl PrivateAgent {
    pub(super) fn start(id: &str, keys: &[PathBuf]) -> Result<PrivateAgent, SshError> {
        let mut loaded = Vec::new();
        for k in keys {
            let data = std::fs::read(k).map_err(|source| SshError::ReadKey {
                id: id.to_string(),
                path: k.clone(),
                source,
            })?;
            check_key(&data).map_err(|problem| SshError::BadKey {
                id: id.to_string(),
                path: k.clone(),
                problem,
            })?;
            loaded.push((k, data));
        }
        let dir = tempfile::Builder::new()
            .prefix("pallet-ssh-agent-")
            .tempdir()
            .map_err(|source| SshError::AgentDir {
                id: id.to_string(),
                source,
            })?;
        let socket = dir.path().join("agent.sock");
        let mut cmd = Command::new("ssh-agent");
        cmd.arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        // SAFETY: prctl is async-signal-safe and touches nothing of the parent.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let child = cmd.spawn().map_err(|source| SshError::AgentStart {
            id: id.to_string(),
            source,
        })?;
        let mut agent = PrivateAgent {
            child,
            socket,
            _dir: dir,
        };
        agent.wait_ready(id)?;
        for (path, data) in loaded {
            agent.add(id, path, &data)?;
        }
        Ok(agent)
    }

    pub(super) fn socket(&self) -> &Path {
        &self.socket
    }

    fn wait_ready(&mut self, id: &str) -> Result<(), SshError> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if std::os::unix::net::UnixStream::connect(&self.socket).is_ok() {
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = self.child.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                return Err(SshError::AgentExited {
                    id: id.to_string(),
                    status,
                    stderr: err.trim().to_string(),
                });
            }
            if Instant::now() > deadline {
                return Err(SshError::AgentSilent {
                    id: id.to_string(),
                    socket: self.socket.clone(),
                });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn add(&self, id: &str, path: &Path, data: &[u8]) -> Result<(), SshError> {
        let mut cmd = Command::new("ssh-add");
        cmd.arg("-q")
            .arg("-")
            .env("SSH_AUTH_SOCK", &self.socket)
            .env("SSH_ASKPASS_REQUIRE", "never")
            .env_remove("DISPLAY")
            .env_remove("SSH_ASKPASS")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        // No controlling terminal: ssh-add can never stop to ask for a passphrase.
        // SAFETY: setsid is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
        let mut child = cmd.spawn().map_err(|source| SshError::SshAddStart {
            id: id.to_string(),
            source,
        })?;
        if let Some(mut stdin) = child.stdin.take() {
            // A write error shows as ssh-add's own failure below.
            let _ = stdin.write_all(data);
        }
        let out = child
            .wait_with_output()
            .map_err(|source| SshError::SshAdd {
                id: id.to_string(),
                source,
            })?;
        if !out.status.success() {
            return Err(SshError::SshAddRefused {
                id: id.to_string(),
                path: path.to_path_buf(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(())
    }
}

impl Drop for PrivateAgent {
    fn drop(&mut self) {
        // SAFETY: kill on our own child's pid; it has not been reaped yet.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let _ = self.child.wait();
    }
}

/// Refuses what cannot be a usable private key without a passphrase, with a reason a user can
/// act on. OpenSSH's format names its cipher right after the magic: an unencrypted key's body
/// starts with base64("openssh-key-v1\0" + string "none"). PEM keys say ENCRYPTED in a header.
fn check_key(data: &[u8]) -> Result<(), KeyProblem> {
    let text = String::from_utf8_lossy(data);
    if text.contains("-----BEGIN OPENSSH PRIVATE KEY-----") {
        let body: String = text
            .lines()
            .skip_while(|l| !l.starts_with("-----BEGIN"))
            .skip(1)
            .take_while(|l| !l.starts_with("-----END"))
            .map(str::trim)
            .collect();
        const MAGIC: &str = "b3BlbnNzaC1rZXktdjE"; // "openssh-key-v1"
        const UNENCRYPTED: &str = "b3BlbnNzaC1rZXktdjEAAAAABG5vbmU"; // ... "\0\0\0\x04none"
        if body.starts_with(MAGIC) && !body.starts_with(UNENCRYPTED) {
            return Err(KeyProblem::Passphrase);
        }
        return Ok(());
    }
    if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----")
        || (text.contains("PRIVATE KEY-----") && text.contains("Proc-Type: 4,ENCRYPTED"))
    {
        return Err(KeyProblem::Passphrase);
    }
    if text.contains("PRIVATE KEY-----") {
        return Ok(());
    }
    Err(KeyProblem::NotAKey)
}

#[cfg(test)]
mod tests {
    use super::{check_key, KeyProblem};

    #[test]
    fn key_checks() {
        let plain = "-----BEGIN OPENSSH PRIVATE KEY-----\n\
            b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n\
            -----END OPENSSH PRIVATE KEY-----\n";
        assert!(check_key(plain.as_bytes()).is_ok());
        // aes256-ctr: the cipher name's length is 10, not 4.
        let enc = "-----BEGIN OPENSSH PRIVATE KEY-----\n\
            b3BlbnNzaC1rZXktdjEAAAAACmFlczI1Ni1jdHIAAAAGYmNyeXB0AAAAGAAAABDx\n\
            -----END OPENSSH PRIVATE KEY-----\n";
        assert_eq!(check_key(enc.as_bytes()), Err(KeyProblem::Passphrase));
        let pem = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nx\n-----END RSA PRIVATE KEY-----\n";
        assert_eq!(check_key(pem.as_bytes()), Err(KeyProblem::Passphrase));
        assert!(KeyProblem::Passphrase.to_string().contains("passphrase"));
        assert_eq!(check_key(b"hello"), Err(KeyProblem::NotAKey));
        assert!(KeyProblem::NotAKey
            .to_string()
            .contains("not a private key"));
    }
}
