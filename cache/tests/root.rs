//! Where the store lives by default. The environment is process-global, so each case runs in a
//! child process (this test binary, re-executed with `--exact child_default_path`) with the
//! environment it needs; the test process's own environment is never changed.

use cache::Root;
use std::path::PathBuf;
use std::process::Command;

/// Set in a child: the path `Root::default_path()` must return.
const EXPECT: &str = "PALLET_CACHE_TEST_EXPECT_ROOT";

fn check(env: &[(&str, Option<&str>)], expected: PathBuf) {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "--exact",
            "child_default_path",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(EXPECT, &expected);
    for (name, value) in env {
        match value {
            Some(value) => command.env(name, value),
            None => command.env_remove(name),
        };
    }
    let out = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{env:?} -> expected {expected:?}:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn default_path_follows_the_environment() {
    // SAFETY: geteuid has no preconditions.
    let is_root = unsafe { libc::geteuid() } == 0;
    let unless_root = |p: &str| {
        if is_root {
            PathBuf::from("/var/lib/pallet")
        } else {
            PathBuf::from(p)
        }
    };

    check(
        &[
            ("PALLET_ROOT", Some("/custom/root")),
            ("XDG_DATA_HOME", Some("/xdg")),
        ],
        PathBuf::from("/custom/root"),
    );
    check(
        &[
            ("PALLET_ROOT", None),
            ("XDG_DATA_HOME", Some("/xdg")),
            ("HOME", Some("/home/h")),
        ],
        unless_root("/xdg/pallet"),
    );
    check(
        &[
            ("PALLET_ROOT", Some("")),
            ("XDG_DATA_HOME", None),
            ("HOME", Some("/home/h")),
        ],
        unless_root("/home/h/.local/share/pallet"),
    );
}

#[test]
fn child_default_path() {
    let Some(expected) = std::env::var_os(EXPECT) else {
        return;
    };
    assert_eq!(Root::default_path(), PathBuf::from(expected));
}
