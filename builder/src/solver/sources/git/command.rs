//! Running git: a clean environment, no shell, a process group of its own killed after a
//! silence timeout, and errors that show git's last lines with any password scrubbed.

use super::url::password;
use super::{GitError, TAIL_LINES};
use std::io::{self, Read};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Seconds git may stay silent before it is killed (`PALLET_GIT_TIMEOUT`).
const DEFAULT_TIMEOUT_SECS: u64 = 300;

/// Runs `f` on a thread of its own; the calling rayon thread runs other jobs while it waits.
pub(super) fn off_pool<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        let h = s.spawn(f);
        while !h.is_finished() {
            match rayon::yield_now() {
                Some(rayon::Yield::Executed) => {}
                _ => std::thread::sleep(Duration::from_millis(5)),
            }
        }
        match h.join() {
            Ok(v) => v,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// A git command that failed: how, and what it printed.
#[derive(Debug)]
pub(super) struct CommandError {
    pub(super) how: GitFailure,
    pub(super) stderr: String,
}

/// How a git command failed.
#[derive(Debug, thiserror::Error)]
pub enum GitFailure {
    #[error("cannot run git ({0}): install git (scripts/ensure-tools.sh)")]
    Spawn(#[source] io::Error),
    /// It ran and exited (or was killed) unsuccessfully.
    #[error("{0}")]
    Exit(ExitStatus),
    /// Stopped after this many seconds without output.
    #[error("stopped after {0} s without output (PALLET_GIT_TIMEOUT=<seconds> sets the limit)")]
    Silent(u64),
    #[error("lost track of the git process")]
    Lost,
}

impl CommandError {
    /// The last lines of git's stderr (progress lines collapsed), the password scrubbed.
    pub(super) fn tail(&self, remote: &str) -> String {
        let mut lines: Vec<&str> = self
            .stderr
            .lines()
            .map(|l| l.rsplit('\r').find(|s| !s.trim().is_empty()).unwrap_or(""))
            .filter(|l| !l.trim().is_empty())
            .collect();
        let skip = lines.len().saturating_sub(TAIL_LINES);
        lines.drain(..skip);
        let text = lines.join("\n");
        match password(remote) {
            Some(p) => text.replace(p, "xxxxx"),
            None => text,
        }
    }

    /// The error of git `command` (`ls-remote`, `fetch`, ...) for `url` (`remote` with its
    /// password redacted).
    pub(super) fn describe(self, command: &'static str, url: &str, remote: &str) -> GitError {
        GitError::Command {
            command,
            url: url.to_string(),
            tail: self.tail(remote),
            source: self.how,
        }
    }
}

/// The ssh git runs. Keys come from the forwarded agent only, never from ~/.ssh (BuildKit's
/// git has no other keys either). Host keys: the user's known_hosts, or the file
/// `PALLET_SSH_KNOWN_HOSTS` names; an unknown host fails (batch mode), it is never trusted on
/// first use.
fn ssh_command() -> String {
    let mut cmd = "ssh -o BatchMode=yes -o IdentityFile=none".to_string();
    if let Some(file) = std::env::var_os("PALLET_SSH_KNOWN_HOSTS").filter(|f| !f.is_empty()) {
        // GIT_SSH_COMMAND goes through a shell: the path single-quoted.
        let file = file.to_string_lossy().replace('\'', "'\\''");
        cmd.push_str(&format!(" -o UserKnownHostsFile='{file}'"));
    }
    cmd
}

/// How git is run: clean environment, a silence timeout, a process group to kill.
pub(super) struct Git {
    timeout: Duration,
    /// The agent socket ssh uses (`--ssh default`, for ssh remotes); None: no agent.
    ssh_auth_sock: Option<PathBuf>,
}

impl Git {
    pub(super) fn new(ssh_auth_sock: Option<PathBuf>) -> Git {
        let secs = std::env::var("PALLET_GIT_TIMEOUT")
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|&n| n > 0)
            .unwrap_or(DEFAULT_TIMEOUT_SECS);
        Git {
            timeout: Duration::from_secs(secs),
            ssh_auth_sock,
        }
    }

    pub(super) fn command(&self, dir: Option<&Path>, args: &[&str]) -> Command {
        let mut cmd = Command::new("git");
        cmd.env_clear();
        let path = std::env::var("PATH").unwrap_or_else(|_| {
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()
        });
        cmd.env("PATH", path)
            .env("LC_ALL", "C")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_SSH_COMMAND", ssh_command())
            // A transfer slower than 1 KB/s for a minute is a stall (http only).
            .env("GIT_HTTP_LOW_SPEED_LIMIT", "1000")
            .env("GIT_HTTP_LOW_SPEED_TIME", "60");
        // ssh finds known_hosts and its config under HOME; proxies as the user set them.
        // The agent is only ever the one `--ssh default` forwarded.
        if let Some(sock) = &self.ssh_auth_sock {
            cmd.env("SSH_AUTH_SOCK", sock);
        }
        for k in [
            "HOME",
            "http_proxy",
            "https_proxy",
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "no_proxy",
            "NO_PROXY",
            "ALL_PROXY",
            "all_proxy",
        ] {
            if let Ok(v) = std::env::var(k) {
                cmd.env(k, v);
            }
        }
        // No transport that reads the host: a submodule URL cannot name a local path.
        cmd.args([
            "-c",
            "protocol.file.allow=never",
            "-c",
            "protocol.ext.allow=never",
        ]);
        if let Some(d) = dir {
            cmd.arg("-C").arg(d);
        }
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        cmd
    }

    /// Runs git; its stdout on success. Stopped (with its children) after `timeout` without
    /// output.
    pub(super) fn run(&self, dir: Option<&Path>, args: &[&str]) -> Result<String, CommandError> {
        let mut child = self.command(dir, args).spawn().map_err(|e| CommandError {
            how: GitFailure::Spawn(e),
            stderr: String::new(),
        })?;
        let activity = Arc::new(Mutex::new(Instant::now()));
        let reader = |mut pipe: Box<dyn Read + Send>, activity: Arc<Mutex<Instant>>| {
            std::thread::spawn(move || {
                let mut all = Vec::new();
                let mut buf = [0u8; 8192];
                loop {
                    match pipe.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            *activity.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
                            all.extend_from_slice(&buf[..n]);
                            // Keep the end: errors are at the end, progress is not needed.
                            if all.len() > 256 * 1024 {
                                all.drain(..all.len() - 128 * 1024);
                            }
                        }
                    }
                }
                all
            })
        };
        let out = reader(
            Box::new(child.stdout.take().expect("piped stdout")),
            activity.clone(),
        );
        let err = reader(
            Box::new(child.stderr.take().expect("piped stderr")),
            activity.clone(),
        );
        let mut timed_out = false;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) => {}
                Err(_) => break None,
            }
            let idle = activity.lock().unwrap_or_else(|p| p.into_inner()).elapsed();
            if idle > self.timeout {
                timed_out = true;
                // The group: git and the helpers it started (fetch-pack, ssh, remote-https).
                // SAFETY: kill has no memory preconditions; the group is the child's own.
                unsafe {
                    libc::kill(-(child.id() as i32), libc::SIGKILL);
                }
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let stdout = out.join().unwrap_or_default();
        let stderr = String::from_utf8_lossy(&err.join().unwrap_or_default()).into_owned();
        match status {
            Some(s) if s.success() => Ok(String::from_utf8_lossy(&stdout).into_owned()),
            Some(s) => Err(CommandError {
                how: GitFailure::Exit(s),
                stderr,
            }),
            None if timed_out => Err(CommandError {
                how: GitFailure::Silent(self.timeout.as_secs()),
                stderr,
            }),
            None => Err(CommandError {
                how: GitFailure::Lost,
                stderr,
            }),
        }
    }

    /// As `run`; a server without shallow support (dumb HTTP) is asked again without
    /// `--depth` (BuildKit does the same).
    pub(super) fn run_shallow(
        &self,
        dir: Option<&Path>,
        args: &[&str],
    ) -> Result<String, CommandError> {
        match self.run(dir, args) {
            Err(e) if e.stderr.contains("shallow") || e.stderr.contains("--depth") => {
                let deep: Vec<&str> = args.iter().copied().filter(|a| *a != "--depth=1").collect();
                self.run(dir, &deep)
            }
            r => r,
        }
    }
}
