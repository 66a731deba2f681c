//! pallet in a new user and mount namespace, as rootlesskit and buildah's `unshare` make it:
//!
//! 1. This process (still single-threaded: called first thing in `main`) makes two
//!    close-on-exec pipes and forks.
//! 2. The child sets SIGKILL as its parent-death signal, calls
//!    `unshare(CLONE_NEWUSER | CLONE_NEWNS)`, makes its mount tree private (so the overlays it
//!    mounts never propagate anywhere), says "ready" on the first pipe and waits on the second.
//! 3. The parent writes the child's maps with `newuidmap PID 0 UID 1 1 START COUNT ...` and
//!    `newgidmap` (setuid helpers that check /etc/subuid and /etc/subgid; both run at once),
//!    then says "go".
//! 4. The child, uid 0 of a namespace whose maps are written and holding every capability in it
//!    (and none outside) since its unshare, sets the environment it was given and goes on with
//!    the command itself: no exec, so the command pays one fork, not a second start of pallet
//!    (a third of the cost of entering, measured: bench/rootless.sh).
//! 5. The parent waits for it and exits with its status. It forwards SIGINT, SIGTERM, SIGHUP
//!    and SIGQUIT that a process sent (`kill`); those the terminal sends reach the child too,
//!    being in the same process group, so they are not sent twice.
//!
//! Until "go" the child calls only async-signal-safe functions (no allocation, no locks).
//! Going on with Rust code after the fork is sound because the process had one thread when it
//! forked: no lock can be held by a thread that does not exist in the child.
//!
//! Failures before "go" come back as [`Unavailable`]: the child writes a tag and the errno on
//! the first pipe; it closes the pipe once it runs the command.

use super::ranges::{self, Range};
use super::why::{self, Unavailable};
use std::ffi::OsString;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};

/// What the namespace is made of.
pub struct Maps<'a> {
    pub uid: u32,
    pub gid: u32,
    pub uid_ranges: &'a [Range],
    pub gid_ranges: &'a [Range],
    pub newuidmap: &'a Path,
    pub newgidmap: &'a Path,
}

// Tags on the status pipe.
const READY: u8 = b'R';
const GO: u8 = b'G';
const UNSHARE_FAILED: u8 = b'U';
const PRIVATE_FAILED: u8 = b'M';

/// The child's pid, for the forwarding signal handler (0: none).
static CHILD: AtomicI32 = AtomicI32::new(0);

/// Which side of the fork [`run`] returned in.
pub enum Side {
    /// The parent, after the child ended: its exit code (128+N when signal N ended it).
    Parent(i32),
    /// The child, in the namespace with `env` set: it runs the command.
    Inside,
}

/// Forks, enters the namespace in the child and writes its maps; in the child, sets `env` and
/// returns [`Side::Inside`]; in the parent, waits for the child and returns its exit code.
pub fn run(maps: &Maps<'_>, env: &[(OsString, OsString)]) -> Result<Side, Unavailable> {
    let os = |what: &'static str| {
        move |e: std::io::Error| Unavailable::Os {
            what,
            errno: e.raw_os_error().unwrap_or(libc::EIO),
        }
    };
    let (status_r, status_w) = pipe().map_err(os("creating a pipe"))?;
    let (go_r, go_w) = pipe().map_err(os("creating a pipe"))?;
    // SAFETY: getpid has no preconditions.
    let parent = unsafe { libc::getpid() };
    // SAFETY: this process is single-threaded here (see the module doc); until "go" the child
    // only calls async-signal-safe functions.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(os("fork")(std::io::Error::last_os_error()));
    }
    if pid == 0 {
        close(status_r);
        close(go_w);
        // SAFETY: in the child of a single-threaded process, before "go": raw syscalls only.
        unsafe { child(parent, status_w, go_r) };
        close(go_r);
        close(status_w); // The parent reads its end: the child runs the command.
        for (key, value) in env {
            // Single-threaded still: nothing reads the environment concurrently.
            std::env::set_var(key, value);
        }
        return Ok(Side::Inside);
    }
    close(status_w);
    close(go_r);
    let result = parent_side(pid, maps, status_r, go_w);
    close(status_r);
    if let Err(e) = result {
        // SAFETY: pid is our child; kill and waitpid have no memory preconditions.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
            libc::waitpid(pid, std::ptr::null_mut(), 0);
        }
        return Err(e);
    }
    Ok(Side::Parent(wait_forwarding(pid)))
}

fn pipe() -> std::io::Result<(i32, i32)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two fds into the array we pass.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((fds[0], fds[1]))
}

fn close(fd: i32) {
    // SAFETY: fd is one of ours, closed once.
    unsafe { libc::close(fd) };
}

/// The child until "go": returns once the parent wrote the maps; exits (127) on a failure,
/// which it reports on `status`.
///
/// # Safety
/// Called in the child of a fork of a single-threaded process.
unsafe fn child(parent: libc::pid_t, status: i32, go: i32) {
    // SAFETY: async-signal-safe syscalls on valid pointers (the whole body), per the contract.
    unsafe {
        let report = |tag: u8| {
            let errno = *libc::__errno_location();
            let mut msg = [0u8; 5];
            msg[0] = tag;
            msg[1..].copy_from_slice(&errno.to_ne_bytes());
            libc::write(status, msg.as_ptr().cast(), msg.len());
            libc::_exit(127);
        };
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        );
        if libc::getppid() != parent {
            libc::_exit(127);
        }
        if libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNS) != 0 {
            report(UNSHARE_FAILED);
        }
        let root = c"/";
        let flags = libc::MS_REC | libc::MS_PRIVATE;
        if libc::mount(
            std::ptr::null(),
            root.as_ptr(),
            std::ptr::null(),
            flags,
            std::ptr::null(),
        ) != 0
        {
            report(PRIVATE_FAILED);
        }
        let ready = [READY];
        libc::write(status, ready.as_ptr().cast(), 1);
        let mut byte = [0u8];
        loop {
            let n = libc::read(go, byte.as_mut_ptr().cast(), 1);
            if n == 1 && byte[0] == GO {
                return;
            }
            if n < 0 && *libc::__errno_location() == libc::EINTR {
                continue;
            }
            libc::_exit(127); // The parent gave up (its end closed).
        }
    }
}

/// The parent's part until the child runs the command: wait for "ready", write the maps, say
/// "go", and see the child close its status pipe.
fn parent_side(pid: i32, maps: &Maps<'_>, status: i32, go: i32) -> Result<(), Unavailable> {
    let first = read_status(status);
    match first {
        Some((READY, _)) => {}
        Some((UNSHARE_FAILED, errno)) => {
            return Err(Unavailable::Unshare(why::unshare_refusal(errno)))
        }
        Some((PRIVATE_FAILED, errno)) => {
            return Err(Unavailable::Os {
                what: "making the new mount namespace private",
                errno,
            })
        }
        _ => {
            return Err(Unavailable::Os {
                what: "entering a user namespace (the child ended)",
                errno: libc::ECHILD,
            })
        }
    }
    let uid = start_map(maps.newuidmap, "newuidmap", pid, maps.uid, maps.uid_ranges);
    let gid = start_map(maps.newgidmap, "newgidmap", pid, maps.gid, maps.gid_ranges);
    let written = match (uid, gid) {
        (Ok(u), Ok(g)) => {
            let (u, g) = (finish_map(u, "newuidmap"), finish_map(g, "newgidmap"));
            u.and(g)
        }
        (Err(e), other) | (other @ Ok(_), Err(e)) => {
            if let Ok(mut started) = other {
                let _ = started.wait();
            }
            Err(e)
        }
    };
    if let Err(e) = written {
        close(go);
        return Err(e);
    }
    let byte = [GO];
    // SAFETY: go is our open pipe end; the buffer is valid for one byte.
    let n = unsafe { libc::write(go, byte.as_ptr().cast(), 1) };
    close(go);
    if n != 1 {
        return Err(Unavailable::Os {
            what: "starting pallet in the user namespace",
            errno: libc::EPIPE,
        });
    }
    Ok(())
}

/// A tag and an errno from the status pipe; None at its end.
fn read_status(fd: i32) -> Option<(u8, i32)> {
    let mut buf = [0u8; 5];
    let mut len = 0;
    while len < buf.len() {
        // SAFETY: reading into the unfilled part of buf.
        let n = unsafe { libc::read(fd, buf[len..].as_mut_ptr().cast(), buf.len() - len) };
        if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        if n <= 0 {
            break;
        }
        len += n as usize;
        if buf[0] == READY {
            return Some((READY, 0));
        }
    }
    match len {
        0 => None,
        5 => Some((buf[0], i32::from_ne_bytes([buf[1], buf[2], buf[3], buf[4]]))),
        _ => Some((buf[0], libc::EIO)),
    }
}

/// Starts `tool PID 0 OWN 1 1 START COUNT ...` (newuidmap or newgidmap).
fn start_map(
    tool: &Path,
    name: &'static str,
    pid: i32,
    own: u32,
    ranges: &[Range],
) -> Result<Child, Unavailable> {
    Command::new(tool)
        .arg(pid.to_string())
        .args(ranges::map_args(own, ranges))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Unavailable::NoTool { tool: name },
            _ => Unavailable::MapFailed {
                tool: name,
                status: "could not start".into(),
                stderr: e.to_string(),
            },
        })
}

/// Waits for a map writer; Err with its message when it failed.
fn finish_map(child: Child, name: &'static str) -> Result<(), Unavailable> {
    let out = child
        .wait_with_output()
        .map_err(|e| Unavailable::MapFailed {
            tool: name,
            status: "could not be waited for".into(),
            stderr: e.to_string(),
        })?;
    if out.status.success() {
        return Ok(());
    }
    Err(Unavailable::MapFailed {
        tool: name,
        status: out.status.to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

extern "C" fn forward(signal: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    let code = if info.is_null() {
        0
    } else {
        // SAFETY: with SA_SIGINFO the kernel passes a valid siginfo_t (checked for null above).
        unsafe { (*info).si_code }
    };
    let child = CHILD.load(Ordering::SeqCst);
    // What the terminal sends (SI_KERNEL) the child got itself: same process group.
    if child > 0 && code != libc::SI_KERNEL {
        // SAFETY: kill is async-signal-safe.
        unsafe { libc::kill(child, signal) };
    }
}

/// Waits for `pid`, forwarding the signals a process sends this one; returns its exit code.
fn wait_forwarding(pid: i32) -> i32 {
    CHILD.store(pid, Ordering::SeqCst);
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT] {
        // SAFETY: a zeroed sigaction is valid; `forward` is async-signal-safe; pointers valid.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = forward
                as extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void)
                as libc::sighandler_t;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
    let mut status = 0;
    loop {
        // SAFETY: waitpid writes the status into our variable.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            break;
        }
        if r < 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return 255;
        }
    }
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        255
    }
}
