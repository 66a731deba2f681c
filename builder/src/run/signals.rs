//! SIGINT/SIGTERM forwarding for `pallet run`: while a container runs, the signals pallet gets
//! are passed on to it with `runc kill`, and a container that is still running `stop_timeout`
//! after the first one (a process that ignores it, such as a PID 1 without a handler) or when
//! a second signal arrives is killed with SIGKILL.
//!
//! The handlers only record the signal (an atomic store, async-signal-safe); a watcher thread
//! polls the record and asks the executor to signal what runs with the run's bundle dir
//! (`runc --root BUNDLE/runc-state kill ID SIGNAL` for runc), so it needs no hook into the
//! running call. A signal that arrives before the container exists is delivered as soon as it
//! does. The previous handlers are restored when the forwarder is dropped. The record is
//! process-wide: one forwarder (one `pallet run`) at a time per process.
//!
//! Owns signal dispositions and the watcher thread; knows nothing of images or overlays.

use crate::exec::Executor;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The last signal received (0: none), how many arrived, and whether the last came from the
/// terminal (Ctrl-C): the kernel sends those to the whole foreground process group, so runc got
/// it too and forwards it itself; pallet then only keeps the stop timer.
static LAST: AtomicI32 = AtomicI32::new(0);
static COUNT: AtomicU32 = AtomicU32::new(0);
static FROM_TTY: AtomicBool = AtomicBool::new(false);

const FORWARDED: [libc::c_int; 2] = [libc::SIGINT, libc::SIGTERM];
const POLL: Duration = Duration::from_millis(50);

extern "C" fn record(signal: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    let code = if info.is_null() {
        0
    } else {
        // SAFETY: with SA_SIGINFO the kernel passes a valid siginfo_t (checked for null above).
        unsafe { (*info).si_code }
    };
    FROM_TTY.store(code == libc::SI_KERNEL, Ordering::SeqCst);
    LAST.store(signal, Ordering::SeqCst);
    COUNT.fetch_add(1, Ordering::SeqCst);
}

/// Forwards SIGINT/SIGTERM to the containers under a runc state dir until dropped.
pub struct Forwarder {
    stop: Arc<AtomicBool>,
    watcher: Option<JoinHandle<()>>,
    previous: Vec<(libc::c_int, libc::sigaction)>,
}

impl Forwarder {
    /// Installs the handlers and starts the watcher, which signals through `executor` what
    /// runs with `bundle` (it may not have started yet).
    pub fn start(
        executor: Arc<dyn Executor>,
        bundle: PathBuf,
        stop_timeout: Duration,
    ) -> Forwarder {
        LAST.store(0, Ordering::SeqCst);
        COUNT.store(0, Ordering::SeqCst);
        FROM_TTY.store(false, Ordering::SeqCst);
        let mut previous = Vec::new();
        for signal in FORWARDED {
            // SAFETY: a zeroed sigaction is a valid value; `record` only touches atomics, which
            // is async-signal-safe; sigaction's pointers are valid for the call.
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = record
                    as extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void)
                    as libc::sighandler_t;
                action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
                libc::sigemptyset(&mut action.sa_mask);
                let mut old: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(signal, &action, &mut old) == 0 {
                    previous.push((signal, old));
                }
            }
        }
        let stop = Arc::new(AtomicBool::new(false));
        let watcher = Watcher {
            executor,
            bundle,
            stop_timeout,
            stop: stop.clone(),
        };
        Forwarder {
            stop,
            watcher: Some(std::thread::spawn(move || watcher.run())),
            previous,
        }
    }

    /// The signal pallet received since [`start`](Self::start), if any.
    pub fn received(&self) -> Option<i32> {
        match LAST.load(Ordering::SeqCst) {
            0 => None,
            n => Some(n),
        }
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(watcher) = self.watcher.take() {
            let _ = watcher.join();
        }
        for (signal, old) in &self.previous {
            // SAFETY: restores a disposition sigaction gave us.
            unsafe {
                libc::sigaction(*signal, old, std::ptr::null_mut());
            }
        }
    }
}

struct Watcher {
    executor: Arc<dyn Executor>,
    bundle: PathBuf,
    stop_timeout: Duration,
    stop: Arc<AtomicBool>,
}

impl Watcher {
    fn run(self) {
        let mut forwarded = 0u32;
        let mut first_at: Option<Instant> = None;
        let mut killed = false;
        while !self.stop.load(Ordering::SeqCst) {
            std::thread::sleep(POLL);
            let count = COUNT.load(Ordering::SeqCst);
            if count == 0 || killed {
                continue;
            }
            if !self.executor.is_running(&self.bundle) {
                continue;
            }
            let since = *first_at.get_or_insert_with(Instant::now);
            if count >= 2 || since.elapsed() >= self.stop_timeout {
                self.executor.signal(&self.bundle, "KILL");
                killed = true;
            } else if count > forwarded {
                if !FROM_TTY.load(Ordering::SeqCst) {
                    let signal = LAST.load(Ordering::SeqCst);
                    self.executor.signal(&self.bundle, &signal.to_string());
                }
                forwarded = count;
            }
        }
    }
}
