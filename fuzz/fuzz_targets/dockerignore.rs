//! `.dockerignore`: `context::dockerignore::read_patterns`, `Matcher::new` (on the cleaned
//! patterns and on the raw lines), then `is_excluded`, `is_excluded_in` and `can_skip_dir`.
//!
//! Input: the ignore file's text, then a NUL byte, then context paths one per line (a few
//! common paths are always tried too). Invariants, for clean relative paths as the context
//! walk gives them: never a panic; the walker's incremental answer (`ancestors_matched` from
//! the root down, then `is_excluded_in`) equals `is_excluded`; a directory that
//! `can_skip_dir` says may be skipped is excluded, and so is every path below it (skipping it
//! loses nothing an exception would bring back).
#![no_main]

use context::dockerignore::{read_patterns, Matcher};
use libfuzzer_sys::fuzz_target;

const PATHS: [&str; 12] = [
    "a",
    "a/b",
    "a/b/c.txt",
    "node_modules/pkg/index.js",
    ".git/HEAD",
    "src/app/main.py",
    "src/app/main.pyc",
    "Dockerfile",
    ".dockerignore",
    "build/out/keep/x",
    "docs/[x]/*?",
    "a b/c\\d",
];

/// A path as the context walk gives it: relative, '/'-separated, no empty, `.` or `..` part.
fn is_clean(p: &str) -> bool {
    !p.is_empty() && p.split('/').all(|c| !c.is_empty() && c != "." && c != "..")
}

fn check(m: &Matcher, paths: &[&str]) {
    assert!(
        !m.is_excluded("") && !m.is_excluded("."),
        "the root is excluded"
    );
    let _ = m.has_exceptions();
    for &p in paths {
        let excluded = m.is_excluded(p);
        let _ = m.can_skip_dir(p);
        if !is_clean(p) {
            continue;
        }
        // The walker's way: flags from the root down to the parent, then one decision.
        let parts: Vec<&str> = p.split('/').collect();
        let mut flags = m.root_flags();
        for depth in 1..parts.len() {
            flags = m.ancestors_matched(&parts[..depth].join("/"), &flags);
        }
        assert_eq!(
            m.is_excluded_in(p, &flags),
            excluded,
            "{p:?}: the walker's answer differs from is_excluded ({m:?})"
        );
        // A skippable ancestor means p is excluded.
        for depth in 1..parts.len() {
            let dir = parts[..depth].join("/");
            if m.can_skip_dir(&dir) {
                assert!(
                    excluded,
                    "{dir:?} may be skipped but {p:?} below it is not excluded ({m:?})"
                );
            }
        }
        if m.can_skip_dir(p) {
            assert!(excluded, "{p:?} may be skipped but is not excluded");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let (file, rest) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let Ok(text) = std::str::from_utf8(file) else {
        return;
    };
    let extra = String::from_utf8_lossy(rest);
    let mut paths: Vec<&str> = PATHS.to_vec();
    paths.extend(extra.split('\n'));

    let patterns = read_patterns(text).expect("read_patterns never fails");
    for p in &patterns {
        // As moby's reader: a lone `/` stays (it matches nothing), any other leading `/` goes.
        // (After a `!` it may stay: moby reads the line `/!/x` as the pattern `!/x`.)
        assert!(
            p == "/" || !p.starts_with('/'),
            "{text:?}: pattern {p:?} keeps its leading /"
        );
    }
    if let Ok(m) = Matcher::new(&patterns) {
        check(&m, &paths);
    }
    let raw: Vec<String> = text.lines().map(str::to_string).collect();
    if let Ok(m) = Matcher::new(&raw) {
        check(&m, &paths);
    }
});
