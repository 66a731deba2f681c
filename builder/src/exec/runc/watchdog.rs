//! The container must not outlive pallet. Two mechanisms, because neither is enough alone:
//!
//! - `runc run` is started with `PR_SET_PDEATHSIG` = SIGKILL ([`die_with_parent`]): when
//!   pallet dies, runc dies. That alone would orphan the container, though: its init process
//!   keeps running (runc forwards signals it can catch, never its own SIGKILL, and a PID 1
//!   ignores SIGTERM it has no handler for).
//! - A watchdog: a small `sh` started before runc, in a process group of its own (a Ctrl-C in
//!   the terminal does not reach it) and ignoring INT, TERM and HUP, that blocks reading a pipe
//!   whose write end only pallet holds. When the run ends normally pallet writes `done` and the
//!   watchdog exits. When pallet dies in any way (SIGKILL, SIGTERM or SIGINT without a handler,
//!   a crash), the pipe closes without `done`, and the watchdog runs
//!   `runc --root STATE kill ID KILL`, then `runc --root STATE delete --force ID` (retried while
//!   the container's state dir exists, for a container caught while being created), unmounts the
//!   rootfs (the step's overlay) and removes the empty runc state dir.
//!
//! A shell script rather than a fork of pallet: forking a multithreaded process and running Rust
//! in the child is unsound, and re-executing pallet would need a hidden CLI entry point. The
//! script takes its paths as positional arguments (never interpolated into the script text).

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

const SCRIPT: &str = r#"trap '' INT TERM HUP
IFS= read -r line
[ "$line" = done ] && exit 0
"$1" --root "$2" kill "$3" KILL >/dev/null 2>&1
i=0
while [ -d "$2/$3" ] && [ "$i" -lt 50 ]; do
  "$1" --root "$2" delete --force "$3" >/dev/null 2>&1 && break
  sleep 0.1
  i=$((i+1))
done
umount "$4" >/dev/null 2>&1 || umount -l "$4" >/dev/null 2>&1
rmdir "$2" >/dev/null 2>&1
exit 0
"#;

/// The watchdog of one container; tell it the run is over with [`Watchdog::done`] (or drop it).
pub(super) struct Watchdog {
    child: Option<Child>,
}

impl Watchdog {
    /// Starts the watchdog for container `id` under the runc state dir `state`, whose rootfs
    /// is `rootfs`. `None` if `sh` could not be started (the run goes on unguarded).
    pub(super) fn start(runtime: &Path, state: &Path, id: &str, rootfs: &Path) -> Option<Watchdog> {
        let child = Command::new("/bin/sh")
            .arg("-c")
            .arg(SCRIPT)
            .arg("pallet-watchdog")
            .arg(runtime)
            .arg(state)
            .arg(id)
            .arg(rootfs)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .ok()?;
        Some(Watchdog { child: Some(child) })
    }

    /// The run is over and cleaned up: the watchdog exits without touching anything.
    pub(super) fn done(mut self) {
        self.finish();
    }

    fn finish(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Some(mut stdin) = child.stdin.take() {
                let _ = stdin.write_all(b"done\n");
            }
            let _ = child.wait();
        }
    }
}

impl Drop for Watchdog {
    /// pallet is alive to run this, so whoever dropped it has cleaned up (or will): disarm.
    fn drop(&mut self) {
        self.finish();
    }
}

/// Makes `cmd`'s process receive SIGKILL when the thread that spawned it (pallet's waiting
/// thread) ends, and refuses to start it if pallet is already gone.
pub(super) fn die_with_parent(cmd: &mut Command) {
    // SAFETY: getpid is async-signal-safe and called before the fork.
    let parent = unsafe { libc::getpid() };
    // SAFETY: the closure runs between fork and exec and only calls prctl and getppid, which
    // are async-signal-safe; it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            if libc::getppid() != parent {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}
