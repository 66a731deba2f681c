//! What a build reports while it runs: progress events (a step started, hit the cache, logged
//! a line, moved bytes, finished or failed) and why a step missed the cache. The solver, the
//! store's pulls and the exporter's pushes send them; the printers in `progress` render them.
//! A leaf: it knows no layer that sends or renders events.

use serde::Serialize;

/// Progress events for the printer.
#[derive(Debug, Clone)]
pub enum Event {
    /// How the build's steps run, once at its start (`mode`: `root`, `rootless`; `description`:
    /// the whole line, `isolation: root (runc /usr/sbin/runc, overlayfs)`). About no step.
    Isolation {
        mode: String,
        description: String,
    },
    Started {
        name: String,
    },
    Cached {
        name: String,
    },
    Log {
        name: String,
        line: String,
    },
    Done {
        name: String,
        seconds: f64,
    },
    Failed {
        name: String,
        message: String,
    },
    /// Why a step runs instead of coming from the cache (after its `Started`; alone in a
    /// dry run, `--explain`).
    Miss {
        name: String,
        reasons: Vec<MissReason>,
    },
    /// Bytes moved for one item of a named step: a blob pulled or pushed, a layer compressed.
    /// `total` is None when the size is not known in advance.
    Transfer {
        name: String,
        item: String,
        done: u64,
        total: Option<u64>,
    },
}

/// Why a step ran instead of coming from the cache.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MissReason {
    /// The store remembers no earlier build of this step.
    FirstBuild,
    /// `--no-cache`.
    NoCache,
    /// Same inputs as last time, but the cached result is gone (pruned).
    CacheGone,
    /// The instruction's text changed.
    InstructionChanged { before: String },
    /// Context files the step reads changed (`files`: up to a few, `more`: how many else).
    ContextFiles { files: Vec<String>, more: usize },
    BuildArg {
        name: String,
        before: Option<String>,
        after: Option<String>,
    },
    Env {
        name: String,
        before: Option<String>,
        after: Option<String>,
    },
    /// The base image's digest changed.
    BaseImage {
        reference: String,
        before: String,
        after: String,
    },
    /// A step this one builds on changed.
    Parent { step: String },
    /// Something else in the step's definition changed (mount or flag options).
    Definition,
    /// The base image is not in the store: the build pulls it first (dry runs only).
    NotInStore { reference: String },
}

fn value(v: &Option<String>) -> String {
    v.as_ref()
        .map_or_else(|| "(unset)".to_string(), |s| format!("{s:?}"))
}

impl std::fmt::Display for MissReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MissReason::FirstBuild => write!(f, "first build of this step"),
            MissReason::NoCache => write!(f, "--no-cache"),
            MissReason::CacheGone => write!(f, "its cached result was pruned"),
            MissReason::InstructionChanged { before } => {
                write!(f, "instruction changed (was: {before})")
            }
            MissReason::ContextFiles { files, more } if files.is_empty() => {
                write!(f, "context files changed ({more} files)")
            }
            MissReason::ContextFiles { files, more } => {
                write!(f, "context files changed: {}", files.join(", "))?;
                if *more > 0 {
                    write!(f, " and {more} more")?;
                }
                Ok(())
            }
            MissReason::BuildArg {
                name,
                before,
                after,
            } => write!(
                f,
                "build arg {name} changed: {} -> {}",
                value(before),
                value(after)
            ),
            MissReason::Env {
                name,
                before,
                after,
            } => write!(
                f,
                "env {name} changed: {} -> {}",
                value(before),
                value(after)
            ),
            MissReason::BaseImage {
                reference,
                before,
                after,
            } => write!(
                f,
                "base image {reference} changed: {} -> {}",
                short_digest(before),
                short_digest(after)
            ),
            MissReason::Parent { step } => write!(f, "parent step changed: {step}"),
            MissReason::Definition => write!(f, "step definition changed (mounts or flags)"),
            MissReason::NotInStore { reference } => {
                write!(f, "{reference} is not in the store: the build pulls it")
            }
        }
    }
}

fn short_digest(d: &str) -> &str {
    let hex = d.split_once(':').map_or(d, |(_, h)| h);
    &hex[..hex.len().min(12)]
}
