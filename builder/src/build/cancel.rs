//! Ctrl-C and SIGTERM during a build: say so, kill the containers of the steps that run (through
//! the executor, which finds them by their bundle dirs), remove what this build put in the
//! store's tmp/ and pending snapshots (its step dirs with everything its RUNs wrote, unmounted
//! first), and exit with 128 + the signal, as a shell reports it.
//!
//! The handler only records the signal (an atomic store, async-signal-safe); a watcher thread
//! does the rest (it polls every 50 ms, and wakes at once when the build ends). The previous
//! handlers are restored when the guard is dropped.

use crate::exec::Executor;
use crate::store::remove_own_temporaries;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

static SIGNAL: AtomicI32 = AtomicI32::new(0);

extern "C" fn record(signal: libc::c_int) {
    SIGNAL.store(signal, Ordering::SeqCst);
}

/// Cancels the build on SIGINT/SIGTERM while it lives.
pub struct CancelOnSignal {
    /// Dropping it wakes the watcher at once, so a build's exit never waits for a poll tick.
    stop: Option<mpsc::Sender<()>>,
    watcher: Option<JoinHandle<()>>,
    previous: Vec<(libc::c_int, libc::sigaction)>,
}

impl CancelOnSignal {
    /// Installs the handlers for a build on the store at `root` whose steps run on
    /// `executor`.
    pub fn install(root: PathBuf, executor: Arc<dyn Executor>) -> CancelOnSignal {
        SIGNAL.store(0, Ordering::SeqCst);
        let mut previous = Vec::new();
        for signal in [libc::SIGINT, libc::SIGTERM] {
            // SAFETY: a zeroed sigaction is a valid value; `record` only stores to an atomic,
            // which is async-signal-safe; the pointers are valid for the call.
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = record as extern "C" fn(libc::c_int) as libc::sighandler_t;
                action.sa_flags = libc::SA_RESTART;
                libc::sigemptyset(&mut action.sa_mask);
                let mut old: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(signal, &action, &mut old) == 0 {
                    previous.push((signal, old));
                }
            }
        }
        let (stop, stopped) = mpsc::channel::<()>();
        let watcher = std::thread::spawn(move || loop {
            match stopped.recv_timeout(Duration::from_millis(50)) {
                Err(RecvTimeoutError::Timeout) => {}
                Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
            }
            let signal = SIGNAL.load(Ordering::SeqCst);
            if signal != 0 {
                cancel(&root, executor.as_ref(), signal);
            }
        });
        CancelOnSignal {
            stop: Some(stop),
            watcher: Some(watcher),
            previous,
        }
    }
}

fn cancel(root: &Path, executor: &dyn Executor, signal: i32) -> ! {
    let name = if signal == libc::SIGINT {
        "SIGINT"
    } else {
        "SIGTERM"
    };
    eprintln!(
        "\npallet: build cancelled ({name}); stopping its steps and removing its temporary files"
    );
    let bundles = own_bundles(root);
    for bundle in &bundles {
        executor.signal(bundle, "KILL");
    }
    // The containers must be gone before their trees are unmounted and removed.
    for _ in 0..100 {
        if !bundles.iter().any(|b| executor.is_running(b)) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // Steps that were ending when the signal came (their container just killed, their tree
    // still mounted or being written) may leave or make something after a sweep: sweep
    // until two in a row, 50 ms apart, find nothing (at most 2 s).
    remove_own_temporaries(root);
    let mut quiet = 0;
    for _ in 0..40 {
        std::thread::sleep(Duration::from_millis(50));
        quiet = if remove_own_temporaries(root) == 0 && own_temporaries(root) == 0 {
            quiet + 1
        } else {
            0
        };
        if quiet == 2 {
            break;
        }
    }
    std::process::exit(128 + signal);
}

/// How many entries of tmp/ this process's tag still names (what a sweep could not remove).
fn own_temporaries(root: &Path) -> usize {
    let prefix = format!("-{}-", std::process::id());
    std::fs::read_dir(root.join("tmp")).map_or(0, |rd| {
        rd.flatten()
            .filter(|e| e.file_name().to_string_lossy().contains(&prefix))
            .count()
    })
}

/// The bundle dirs of this process's running steps (`tmp/pallet-<pid>-*/bundle`).
fn own_bundles(root: &Path) -> Vec<PathBuf> {
    let prefix = format!("pallet-{}-", std::process::id());
    let Ok(rd) = std::fs::read_dir(root.join("tmp")) else {
        return Vec::new();
    };
    rd.flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path().join("bundle"))
        .filter(|b| b.is_dir())
        .collect()
}

impl Drop for CancelOnSignal {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(w) = self.watcher.take() {
            let _ = w.join();
        }
        for (signal, old) in &self.previous {
            // SAFETY: restores a disposition sigaction gave us.
            unsafe {
                libc::sigaction(*signal, old, std::ptr::null_mut());
            }
        }
    }
}
