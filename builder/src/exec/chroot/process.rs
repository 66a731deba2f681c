//! The step's process: found on the PATH inside the tree, forked, chrooted, its credentials
//! set as runc sets them, its output read on two threads and handed to the caller's thread
//! as it comes, waited for, and its process group killed when it exits.

use std::ffi::{CString, OsStr};
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::exec::runc::{RunError, RunSpec, Stream};
use crate::exec::{rootpath, user};

/// runc's PATH when the environment has none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Docker's default capabilities by number: chown, dac_override, fowner, fsetid, kill,
/// setgid, setuid, setpcap, net_bind_service, net_raw, sys_chroot, mknod, audit_write,
/// setfcap (`runc::DEFAULT_CAPABILITIES`).
const DOCKER_CAPS: [u32; 14] = [0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 27, 29, 31];

/// `args[0]` as a path inside the tree: as given when it has a `/`, else the first
/// executable regular file of that name on the step's PATH (resolved inside the tree).
pub(super) fn find_program(rootfs: &Path, spec: &RunSpec) -> Result<String, RunError> {
    let arg0 = &spec.args[0];
    if arg0.contains('/') {
        return Ok(arg0.clone());
    }
    let path = spec
        .env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    for dir in path.split(':').filter(|d| d.starts_with('/')) {
        let candidate = format!("{}/{arg0}", dir.trim_end_matches('/'));
        let Ok(host) = rootpath::resolve(rootfs, OsStr::new(&candidate), true) else {
            continue;
        };
        use std::os::unix::fs::PermissionsExt;
        if std::fs::symlink_metadata(&host)
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        {
            return Ok(candidate);
        }
    }
    Err(RunError::Setup(format!(
        "exec: \"{arg0}\": executable file not found in $PATH"
    )))
}

/// Runs `program` with the spec's args, env, cwd and user, chrooted into `rootfs`;
/// `track(Some(pgid))` when it started and `track(None)` when it ended.
pub(super) fn run(
    rootfs: &Path,
    program: &str,
    spec: &RunSpec,
    track: &dyn Fn(Option<i32>),
    output: &mut dyn FnMut(Stream, &[u8]),
) -> Result<i32, RunError> {
    let cstr =
        |s: &[u8]| CString::new(s).map_err(|_| RunError::Setup("a NUL byte in a path".into()));
    let root = cstr(rootfs.as_os_str().as_bytes())?;
    let cwd = cstr(spec.cwd.as_bytes())?;
    let (uid, gid) = (spec.uid, spec.gid);
    let groups: Vec<libc::gid_t> = spec.additional_gids.clone();
    // runc's rule: HOME, when the environment has none, from the tree's /etc/passwd, else /.
    let mut env = spec.env.clone();
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        let home = user::resolve(rootfs, &spec.uid.to_string())
            .ok()
            .and_then(|u| u.home)
            .unwrap_or_else(|| "/".into());
        env.push(format!("HOME={home}"));
    }
    let limits = rlimits(spec)?;
    let mut cmd = Command::new(program);
    cmd.arg0(&spec.args[0])
        .args(&spec.args[1..])
        .env_clear()
        .envs(env.iter().filter_map(|e| e.split_once('=')))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    // SAFETY: the closure runs in the child between fork and exec and makes only
    // async-signal-safe system calls (chroot, chdir, umask, prctl, setrlimit, setgroups,
    // setgid, setuid) on data prepared before the fork; it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            let check = |rc: libc::c_int| {
                if rc != 0 {
                    Err(std::io::Error::last_os_error())
                } else {
                    Ok(())
                }
            };
            check(libc::chroot(root.as_ptr()))?;
            check(libc::chdir(cwd.as_ptr()))?;
            libc::umask(0o022);
            for cap in 0..64u32 {
                if !DOCKER_CAPS.contains(&cap)
                    && libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) != 0
                {
                    // Past the last capability this kernel knows.
                    if *libc::__errno_location() == libc::EINVAL {
                        break;
                    }
                    return Err(std::io::Error::last_os_error());
                }
            }
            for (resource, limit) in &limits {
                check(libc::setrlimit(*resource, limit))?;
            }
            check(libc::setgroups(groups.len(), groups.as_ptr()))?;
            check(libc::setgid(gid))?;
            check(libc::setuid(uid))?;
            check(libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ))
        });
    }
    let mut child = cmd.spawn().map_err(|e| {
        RunError::Setup(format!(
            "starting {program} chrooted into {}: {e}",
            rootfs.display()
        ))
    })?;
    let pgid = child.id() as i32;
    track(Some(pgid));
    let (tx, rx) = mpsc::sync_channel::<Msg>(64);
    if let Some(out) = child.stdout.take() {
        let tx = tx.clone();
        std::thread::spawn(move || pump(out, &tx, Stream::Stdout));
    }
    if let Some(err) = child.stderr.take() {
        let tx = tx.clone();
        std::thread::spawn(move || pump(err, &tx, Stream::Stderr));
    }
    std::thread::spawn(move || {
        let status = child.wait();
        // Whatever the step left running in its group goes with it, as with a pid namespace.
        signal_group(pgid, "KILL");
        let _ = tx.send(Msg::Exited(status));
    });
    let mut status = None;
    let mut deadline = None;
    loop {
        let msg = match deadline {
            None => rx.recv().ok(),
            // A process that left the group (setsid) may hold the pipes: not waited for.
            Some(at) => rx.recv_deadline_compat(at),
        };
        match msg {
            Some(Msg::Out(stream, data)) => output(stream, &data),
            Some(Msg::Exited(s)) => {
                status = Some(s);
                deadline = Some(Instant::now() + Duration::from_secs(2));
            }
            None => break,
        }
    }
    track(None);
    let status = status
        .unwrap_or_else(|| Err(std::io::Error::other("the waiting thread ended")))
        .map_err(RunError::prepare("waiting for the step's process"))?;
    Ok(status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
}

enum Msg {
    Out(Stream, Vec<u8>),
    Exited(std::io::Result<std::process::ExitStatus>),
}

trait RecvDeadline {
    fn recv_deadline_compat(&self, at: Instant) -> Option<Msg>;
}

impl RecvDeadline for mpsc::Receiver<Msg> {
    fn recv_deadline_compat(&self, at: Instant) -> Option<Msg> {
        self.recv_timeout(at.saturating_duration_since(Instant::now()))
            .ok()
    }
}

fn pump(mut from: impl Read, tx: &mpsc::SyncSender<Msg>, stream: Stream) {
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => {
                if tx.send(Msg::Out(stream, chunk[..n].to_vec())).is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// Sends `signal` (`TERM`, `KILL`, or a number) to the process group `pgid`.
pub(super) fn signal_group(pgid: i32, signal: &str) {
    let sig = match signal {
        "TERM" | "SIGTERM" => libc::SIGTERM,
        "KILL" | "SIGKILL" => libc::SIGKILL,
        "INT" | "SIGINT" => libc::SIGINT,
        n => match n.parse() {
            Ok(n) => n,
            Err(_) => return,
        },
    };
    // SAFETY: kill has no memory-safety preconditions; a negative pid names the group.
    unsafe { libc::kill(-pgid, sig) };
}

/// `--ulimit`s as setrlimit arguments (-1: unlimited). The chroot has no /dev/shm tmpfs of
/// its own, so `--shm-size` has nothing to size here.
fn rlimits(spec: &RunSpec) -> Result<Vec<(libc::__rlimit_resource_t, libc::rlimit)>, RunError> {
    spec.ulimits
        .iter()
        .map(|u| {
            let resource = match u.name.as_str() {
                "core" => libc::RLIMIT_CORE,
                "cpu" => libc::RLIMIT_CPU,
                "data" => libc::RLIMIT_DATA,
                "fsize" => libc::RLIMIT_FSIZE,
                "locks" => libc::RLIMIT_LOCKS,
                "memlock" => libc::RLIMIT_MEMLOCK,
                "msgqueue" => libc::RLIMIT_MSGQUEUE,
                "nice" => libc::RLIMIT_NICE,
                "nofile" => libc::RLIMIT_NOFILE,
                "nproc" => libc::RLIMIT_NPROC,
                "rss" => libc::RLIMIT_RSS,
                "rtprio" => libc::RLIMIT_RTPRIO,
                "rttime" => libc::RLIMIT_RTTIME,
                "sigpending" => libc::RLIMIT_SIGPENDING,
                "stack" => libc::RLIMIT_STACK,
                other => return Err(RunError::Setup(format!("--ulimit {other}: unknown limit"))),
            };
            let value = |v: i64| u64::try_from(v).unwrap_or(libc::RLIM_INFINITY);
            Ok((
                resource,
                libc::rlimit {
                    rlim_cur: value(u.soft),
                    rlim_max: value(u.hard),
                },
            ))
        })
        .collect()
}
