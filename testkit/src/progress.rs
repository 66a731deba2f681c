//! pallet's build progress as tests read it: the JSON event stream of `--progress=json` and the
//! step lines of `--progress=plain` (`#3 [2/3] COPY ...`, `#3 CACHED`, `#3 DONE 0.1s`).

use crate::run::text;
use serde_json::Value;

/// The JSON lines of a `--progress=json` stderr (other lines, such as warnings, skipped).
pub fn events(stderr: &[u8]) -> Vec<Value> {
    text(stderr)
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Events of one kind (`step.started`, `step.miss`, ...) about the steps whose name contains
/// `needle`.
pub fn about<'a>(events: &'a [Value], kind: &str, needle: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["event"] == kind && e["name"].as_str().is_some_and(|n| n.contains(needle)))
        .collect()
}

/// The cache-miss reasons of the steps whose name contains `needle`.
pub fn reasons(events: &[Value], needle: &str) -> Vec<Value> {
    about(events, "step.miss", needle)
        .iter()
        .flat_map(|e| e["reasons"].as_array().cloned().unwrap_or_default())
        .collect()
}

/// The number (`#3`) of the first step of a plain log whose title contains `needle`; panics
/// with the log when there is none.
pub fn step_number(log: &str, needle: &str) -> String {
    log.lines()
        .find(|l| l.starts_with('#') && l.contains(needle))
        .and_then(|l| l.split(' ').next())
        .map(str::to_string)
        .unwrap_or_else(|| panic!("no step {needle:?} in:\n{log}"))
}

/// Whether the step titled with `needle` was a cache hit in this plain log.
pub fn cached(log: &str, needle: &str) -> bool {
    let n = step_number(log, needle);
    log.lines().any(|l| l == format!("{n} CACHED"))
}

/// Whether the step titled with `needle` ran in this plain log.
pub fn ran(log: &str, needle: &str) -> bool {
    let n = step_number(log, needle);
    log.lines().any(|l| l.starts_with(&format!("{n} DONE")))
}

/// The manifest digest in a build's summary line (`pallet: built [NAME] sha256:... (...)`):
/// the `sha256:` word after the last "built ", whether or not the image has a name. Panics
/// with the log when there is none.
pub fn built_digest(log: &str) -> String {
    log.rsplit("built ")
        .next()
        .and_then(|s| {
            s.split_whitespace()
                .take(2)
                .find(|w| w.starts_with("sha256:"))
        })
        .unwrap_or_else(|| panic!("no digest in:\n{log}"))
        .to_string()
}
