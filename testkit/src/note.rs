//! Notes to whoever runs the tests (a skipped test, an optional corpus not found), written
//! straight to the process's stderr: the test harness captures `eprintln!` of passing tests,
//! which would hide them.

use std::io::Write;

/// Writes `text` and a newline to stderr, past the harness's capture.
pub(crate) fn note(text: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{text}");
}
