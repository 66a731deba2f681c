//! Running one test of the current test binary in a child process, for what a test cannot do
//! in its own process: a process-wide environment, or two processes at once. The child test
//! finds its job in environment variables and does nothing in a normal run.
//!
//! ```text
//! let out = self_exec::test(module_path!(), "child_default_path").env("X", "1").output().unwrap();
//! self_exec::assert_passed(&out, "default path");
//! ```

use crate::run::text;
use std::process::{Command, Output};

/// The current test binary, asked to run exactly the test `name` of the module `module`
/// (`module_path!()` of the caller: the crate name alone in a test file of its own, the crate
/// and module path in a merged one), alone, with its output shown.
pub fn test(module: &str, name: &str) -> Command {
    // `module_path!()` starts with the crate's name; test names in the harness do not.
    let path = match module.split_once("::") {
        Some((_, inner)) => format!("{inner}::{name}"),
        None => name.to_string(),
    };
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", &path, "--nocapture", "--test-threads=1"]);
    cmd
}

/// Whether the child ran the one test and it passed (a filtered-out test also exits 0).
pub fn passed(out: &Output) -> bool {
    out.status.success() && text(&out.stdout).contains("1 passed")
}

/// Panics unless the child ran the one test and it passed, showing its output.
pub fn assert_passed(out: &Output, what: &str) {
    assert!(
        passed(out),
        "{what}: the child test failed ({}):\n{}\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
}
