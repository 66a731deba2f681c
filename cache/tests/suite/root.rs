//! Where the store lives by default. The environment is process-global, so each case runs in a
//! child process (this test binary, re-executed with `--exact child_default_path`) with the
//! environment it needs; the test process's own environment is never changed.

use cache::Root;
use std::path::PathBuf;
use testkit::{self_exec, text};

/// Set in a child: the path `Root::default_path()` must return.
const EXPECT: &str = "PALLET_CACHE_TEST_EXPECT_ROOT";

fn check(env: &[(&str, Option<&str>)], expected: PathBuf) {
    let mut command = self_exec::test(module_path!(), "child_default_path");
    command.env(EXPECT, &expected);
    for (name, value) in env {
        match value {
            Some(value) => command.env(name, value),
            None => command.env_remove(name),
        };
    }
    let out = command.output().unwrap();
    assert!(
        self_exec::passed(&out),
        "{env:?} -> expected {expected:?}:\n{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

#[test]
fn default_path_follows_the_environment() {
    let is_root = testkit::gate::is_root();
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
