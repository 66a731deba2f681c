//! A private `ssh-agent` holding the key files of one `--ssh ID=KEY[,KEY...]`: started in the
//! foreground (`-D`) on a socket in a 0700 temp dir, keys added with `ssh-add -` (read from a
//! pipe, so a key's file mode does not matter, as it does not to BuildKit), killed and its
//! directory removed on drop. The agent also dies with pallet (PR_SET_PDEATHSIG) if pallet is
//! killed outright.

use std::io::Write;
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
    pub(super) fn start(id: &str, keys: &[PathBuf]) -> Result<PrivateAgent, String> {
        let mut loaded = Vec::new();
        for k in keys {
            let data = std::fs::read(k)
                .map_err(|e| format!("--ssh {id}: reading {}: {e}", k.display()))?;
            check_key(&data).map_err(|why| format!("--ssh {id}: {}: {why}", k.display()))?;
            loaded.push((k, data));
        }
        let dir = tempfile::Builder::new()
            .prefix("pallet-ssh-agent-")
            .tempdir()
            .map_err(|e| format!("--ssh {id}: creating a directory for its agent: {e}"))?;
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
        let child = cmd.spawn().map_err(|e| {
            format!(
                "--ssh {id}: key files are served by a private ssh-agent, which could not start \
                 ({e}): install openssh-client, or load the keys into your agent and pass \
                 --ssh {id}=$SSH_AUTH_SOCK"
            )
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

    fn wait_ready(&mut self, id: &str) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if std::os::unix::net::UnixStream::connect(&self.socket).is_ok() {
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = self.child.stderr.take() {
                    use std::io::Read;
                    let _ = e.read_to_string(&mut err);
                }
                return Err(format!(
                    "--ssh {id}: ssh-agent exited ({status}): {}",
                    err.trim()
                ));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "--ssh {id}: ssh-agent did not open {} within 10 s",
                    self.socket.display()
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn add(&self, id: &str, path: &Path, data: &[u8]) -> Result<(), String> {
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
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("--ssh {id}: running ssh-add: {e}: install openssh-client"))?;
        if let Some(mut stdin) = child.stdin.take() {
            // A write error shows as ssh-add's own failure below.
            let _ = stdin.write_all(data);
        }
        let out = child
            .wait_with_output()
            .map_err(|e| format!("--ssh {id}: running ssh-add: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "--ssh {id}: ssh-add refused {}: {}",
                path.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
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
fn check_key(data: &[u8]) -> Result<(), String> {
    const PASSPHRASE: &str = "the key is protected by a passphrase, which a build cannot ask \
        for: load it into an agent (ssh-add KEY) and pass --ssh ID=$SSH_AUTH_SOCK";
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
            return Err(PASSPHRASE.into());
        }
        return Ok(());
    }
    if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----")
        || (text.contains("PRIVATE KEY-----") && text.contains("Proc-Type: 4,ENCRYPTED"))
    {
        return Err(PASSPHRASE.into());
    }
    if text.contains("PRIVATE KEY-----") {
        return Ok(());
    }
    Err("not a private key file (nor an agent socket)".into())
}

#[cfg(test)]
mod tests {
    use super::check_key;

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
        assert!(check_key(enc.as_bytes())
            .unwrap_err()
            .contains("passphrase"));
        let pem = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nx\n-----END RSA PRIVATE KEY-----\n";
        assert!(check_key(pem.as_bytes())
            .unwrap_err()
            .contains("passphrase"));
        assert!(check_key(b"hello")
            .unwrap_err()
            .contains("not a private key"));
    }
}
