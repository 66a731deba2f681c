//! Waiting with a deadline: for a condition, for a child process to exit. Polls; never waits
//! past the limit.

use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

/// Polls `done` every `every` until it holds or `limit` has passed; the last answer.
pub fn until(limit: Duration, every: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if done() {
            return true;
        }
        std::thread::sleep(every);
    }
    done()
}

/// The exit status of `child` if it exits within `limit` (polled every `every`).
pub fn exit(child: &mut Child, limit: Duration, every: Duration) -> Option<ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(every);
    }
    None
}
