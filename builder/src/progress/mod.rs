//! Build progress for people and tools: the solver's events rendered as BuildKit's plain
//! lines (`plain`), one JSON object per line (`json`), or a live redrawn terminal view
//! (`tty`), each ending with the same summary (image, digest, size, time, cache hits and
//! misses). `--progress=auto` picks tty when stderr is a terminal, plain otherwise (buildx).
//!
//! This module owns presentation only: it knows the event types and nothing of how steps run.
//! The JSON schema is documented in README.md ("Progress events").

mod json;
mod plain;
mod tty;

use crate::events::Event;
use std::collections::HashMap;
use std::io::Write;
use std::sync::Mutex;
use std::time::Instant;

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Tty,
    Plain,
    Json,
    /// `quiet` / `none`: no progress at all (errors still reach the CLI's renderer).
    Quiet,
}

/// A `--progress` value that is not a mode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", mode_error_text(.0))]
pub struct ModeError(pub String);

fn mode_error_text(value: &str) -> String {
    if value == "rawjson" {
        "--progress rawjson (BuildKit's raw solve-status JSON) is not supported: use json, \
         pallet's own schema of one event per line"
            .to_string()
    } else {
        format!("invalid --progress \"{value}\": use auto, tty, plain, json, quiet or none")
    }
}

impl Mode {
    /// `auto|tty|plain|json|quiet|none`; auto is tty when stderr is a terminal.
    pub fn parse(s: &str) -> Result<Mode, ModeError> {
        match s {
            "quiet" | "none" => Ok(Mode::Quiet),
            "auto" => Ok(if stderr_is_terminal() {
                Mode::Tty
            } else {
                Mode::Plain
            }),
            "tty" => Ok(Mode::Tty),
            "plain" => Ok(Mode::Plain),
            "json" => Ok(Mode::Json),
            other => Err(ModeError(other.to_string())),
        }
    }
}

fn stderr_is_terminal() -> bool {
    // SAFETY: isatty has no preconditions.
    unsafe { libc::isatty(2) == 1 }
}

/// What a build ended with, for the last lines of every mode.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// The first tag, if any.
    pub image: Option<String>,
    /// Manifest digest.
    pub digest: Option<String>,
    /// Uncompressed size of the layers.
    pub size: Option<u64>,
    pub layers: Option<usize>,
    pub seconds: f64,
    /// `--explain`: nothing ran; misses are steps that would run.
    pub dry_run: bool,
    /// The build failed with this message.
    pub error: Option<String>,
    /// `Some("pull")` / `Some("push")` for those commands (no cache tally); None: a build.
    pub command: Option<&'static str>,
}

/// A progress printer. `event` may be called from any solver thread.
pub trait Printer: Send + Sync {
    fn event(&self, e: Event);
    /// Ends the view (a tty stops redrawing and prints its final state) and prints the summary.
    fn finish(&self, summary: &Summary);
}

/// A printer for `mode` writing to `out` (stderr in the CLI), for a build.
pub fn printer(mode: Mode, out: Box<dyn Write + Send>) -> Box<dyn Printer> {
    printer_for(mode, out, None)
}

/// A printer for `command` (`Summary::command`: None for a build, "pull", "push").
fn printer_for(
    mode: Mode,
    out: Box<dyn Write + Send>,
    command: Option<&'static str>,
) -> Box<dyn Printer> {
    let title = match command {
        Some("pull") => "Pulling",
        Some("push") => "Pushing",
        _ => "Building",
    };
    match mode {
        Mode::Plain => Box::new(plain::Plain::new(out)),
        Mode::Json => Box::new(json::Json::new(out)),
        Mode::Tty => Box::new(tty::Tty::start(out, title)),
        Mode::Quiet => Box::new(Silent),
    }
}

/// `--progress quiet|none`: prints nothing.
struct Silent;

impl Printer for Silent {
    fn event(&self, _: Event) {}
    fn finish(&self, _: &Summary) {}
}

/// A printer on stderr, for a build.
pub fn stderr_printer(mode: Mode) -> Box<dyn Printer> {
    stderr_printer_for(mode, None)
}

/// A printer on stderr for `command` (see [`printer_for`]).
pub fn stderr_printer_for(mode: Mode, command: Option<&'static str>) -> Box<dyn Printer> {
    printer_for(mode, Box::new(std::io::stderr()), command)
}

/// How a step ended up, for the cache tally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Hit,
    Miss,
}

/// Step numbers in order of first appearance (BuildKit's `#N`) and the cache tally.
#[derive(Default)]
struct Steps {
    names: Vec<String>,
    numbers: HashMap<String, usize>,
    outcomes: HashMap<usize, Outcome>,
}

impl Steps {
    /// The step's number, and whether it is new.
    fn number(&mut self, name: &str) -> (usize, bool) {
        if let Some(n) = self.numbers.get(name) {
            return (*n, false);
        }
        self.names.push(name.to_string());
        let n = self.names.len();
        self.numbers.insert(name.to_string(), n);
        (n, true)
    }

    fn observe(&mut self, e: &Event) {
        // Only the solver's steps count: pulls and pushes start and finish but are no cache
        // lookups (a step that runs always reports its `Miss`).
        let (name, outcome) = match e {
            Event::Cached { name } => (name, Outcome::Hit),
            Event::Miss { name, .. } => (name, Outcome::Miss),
            _ => return,
        };
        let (n, _) = self.number(name);
        self.outcomes.insert(n, outcome);
    }

    /// (hits, misses).
    fn tally(&self) -> (usize, usize) {
        let hits = self
            .outcomes
            .values()
            .filter(|o| **o == Outcome::Hit)
            .count();
        (hits, self.outcomes.len() - hits)
    }
}

/// The name an event is about ("" for [`Event::Isolation`], which is about no step).
fn event_name(e: &Event) -> &str {
    match e {
        Event::Isolation { .. } => "",
        Event::Started { name }
        | Event::Cached { name }
        | Event::Log { name, .. }
        | Event::Done { name, .. }
        | Event::Failed { name, .. }
        | Event::Miss { name, .. }
        | Event::Transfer { name, .. } => name,
    }
}

/// Human size (`4.2MB`), as `pallet images` prints it.
pub(crate) fn human_size(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n}B")
    } else {
        format!("{v:.1}{}", UNITS[u])
    }
}

/// The summary as text (plain and tty): one line, or two with an error.
fn summary_text(s: &Summary, hits: usize, misses: usize) -> String {
    let cache = format!(
        "cache: {hits} hit{}, {misses} miss{}",
        if hits == 1 { "" } else { "s" },
        if misses == 1 { "" } else { "es" }
    );
    if s.dry_run {
        return format!(
            "pallet: explain (dry run, nothing built): {hits} step{} cached, {misses} would run\n",
            if hits == 1 { "" } else { "s" }
        );
    }
    let (verb, done) = match s.command {
        Some("pull") => ("pull", "pulled"),
        Some("push") => ("push", "pushed"),
        _ => ("build", "built"),
    };
    // Pulls and pushes have no steps to tally.
    let cache = if s.command.is_some() {
        String::new()
    } else {
        format!("; {cache}")
    };
    if s.error.is_some() {
        return format!("pallet: {verb} failed after {:.1}s{cache}\n", s.seconds);
    }
    let mut out = format!("pallet: {done}");
    if let Some(image) = &s.image {
        out.push_str(&format!(" {image}"));
    }
    if let Some(d) = &s.digest {
        out.push_str(&format!(" {d}"));
    }
    let mut facts = Vec::new();
    if let Some(size) = s.size {
        facts.push(human_size(size));
    }
    if let Some(l) = s.layers {
        facts.push(format!("{l} layer{}", if l == 1 { "" } else { "s" }));
    }
    if !facts.is_empty() {
        out.push_str(&format!(" ({})", facts.join(", ")));
    }
    out.push_str(&format!(" in {:.1}s{cache}\n", s.seconds));
    out
}

/// A writer shared by a printer's callers (and its redraw thread).
struct Out {
    w: Mutex<Box<dyn Write + Send>>,
    start: Instant,
}

impl Out {
    fn new(w: Box<dyn Write + Send>) -> Out {
        Out {
            w: Mutex::new(w),
            start: Instant::now(),
        }
    }

    fn write(&self, text: &str) {
        let mut w = self.w.lock().expect("progress output lock");
        let _ = w.write_all(text.as_bytes());
        let _ = w.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_count_hits_and_misses_once() {
        let mut s = Steps::default();
        for e in [
            Event::Cached { name: "a".into() },
            Event::Started { name: "b".into() },
            Event::Started {
                name: "[internal] push".into(),
            },
            Event::Miss {
                name: "b".into(),
                reasons: Vec::new(),
            },
            Event::Miss {
                name: "c".into(),
                reasons: Vec::new(),
            },
        ] {
            s.observe(&e);
        }
        assert_eq!(s.tally(), (1, 2));
        assert_eq!(s.number("b"), (2, false));
    }

    #[test]
    fn summary_lines() {
        let s = Summary {
            image: Some("docker.io/library/app:dev".into()),
            digest: Some("sha256:abc".into()),
            size: Some(4_200_000),
            layers: Some(2),
            seconds: 3.12,
            ..Summary::default()
        };
        assert_eq!(
            summary_text(&s, 3, 1),
            "pallet: built docker.io/library/app:dev sha256:abc (4.2MB, 2 layers) in 3.1s; cache: 3 hits, 1 miss\n"
        );
    }
}
