//! The solver: walks the graph, asks the cache first, and runs what missed. Identical ops are
//! one vertex in the graph, so they run once. The solver knows nothing of Dockerfiles.
//!
//! Its parts, each with one owner:
//! - [`scheduler`]: the DAG walk, independent vertices at once (RUN on threads of their own,
//!   the rest on rayon);
//! - [`vertex`]: one vertex: cache or run, progress events, step history;
//! - [`sources`]: scratch, local directories, images, `ADD <url>`, `ADD <git>`;
//! - [`ops`]: RUN (through the build's executor and snapshotter), file ops, cache mounts;
//! - [`keys`]: cache keys and records, context-file hashing, miss history, `--explain`;
//! - [`layer_writer`]: step outputs written as diffs (and compressed ahead) off the critical
//!   path;
//! - [`secrets`]: `--secret` sources;
//! - `error`: [`SolveError`] (which step) and [`StepError`] (how it failed, the cause kept).
//!
//! A vertex's result is a stack of layers. Its cache key is blake3 of the vertex digest, its
//! inputs' cache keys and the content of the context files it reads; a key found in the index
//! whose layers are still in the store is a hit.
//!
//! # Errors
//!
//! The project's convention, for the solver and every layer below the CLI: each owner has a
//! thiserror type of its own ([`SolveError`] and [`StepError`] here; `HttpError`, `GitError`,
//! `ContextHashError`, `LayerWriteError`, `RunError`, `SshError`, `StoreError`, ...), and a
//! failure keeps its cause, typed:
//! - an error's `Display` includes its cause's message (`"{what}: {source}"`, or
//!   `#[error(transparent)]`), so the text users see is the whole story, as it was when errors
//!   were strings; the CLI's renderer prints `Display` only and never walks the chain;
//! - `source()` returns the typed cause (`#[source]`/`#[from]` fields) for code that inspects
//!   it: an I/O failure with context is `Io { what, source: std::io::Error }`, so that walking
//!   `source()` down to the `std::io::Error` tells a full disk (`ENOSPC`) from other failures;
//! - a variant with no cause (the user's mistake, a refused value) carries the facts its
//!   message names (an id, a path, a code) rather than a preformatted string, unless nothing
//!   could branch on it (`StoreError::Layer`, `FileOpError::User`, `StepError::BadGraph`);
//! - a cause shared by several waiters (a layer's diff, a context walk) is held in an `Arc`
//!   behind `#[error(transparent)]`, which keeps both its text and its `source()`;
//! - every error type is `Send + Sync + 'static`, so the CLI can hold any of them as its
//!   cause.

mod error;
mod keys;
mod layer_writer;
mod ops;
mod scheduler;
mod secrets;
mod sources;
mod vertex;

pub use crate::events::{Event, MissReason};
pub use error::{SolveError, StepError};
pub use keys::context_hash::ContextHashError;
pub use keys::explain::explain;
pub use keys::CacheKey;
pub use layer_writer::LayerWriteError;
pub use ops::cache_mount::{lock_exclusive as lock_cache_mount, CacheMountError, UsedCacheMounts};
pub use secrets::{SecretError, SecretSource, SecretSpecProblem};
pub(crate) use sources::{commit_time_for_epoch, content_for_epoch, redact_git_url};
pub use sources::{GitError, GitFailure, HttpError, SourceError};

use crate::exec::Executor;
use crate::remote_cache::{Imported, StepResult};
use crate::snapshot::Snapshotter;
use crate::store::LayerRecord;
use cache::Root;
use context::dockerignore::Matcher;
use graph::{Digest, Graph, Op, Vertex};
use keys::context_hash::{hash_paths, ContextWalk};
use layer_writer::{Layer, Writer};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// How a build runs.
pub struct SolveOptions<'a> {
    pub root: &'a Root,
    /// What runs RUN steps (runc today).
    pub executor: &'a dyn Executor,
    /// What makes the trees steps run in and read from (overlayfs today).
    pub snapshotter: &'a dyn Snapshotter,
    /// The local directories `Source::Local` vertices name: `context` (the main build
    /// context) and each `--build-context NAME=DIR`.
    pub locals: BTreeMap<String, LocalDir>,
    /// `--no-cache`: run every step.
    pub no_cache: bool,
    /// SOURCE_DATE_EPOCH: layer mtimes are clamped to it.
    pub epoch: Option<i64>,
    /// `--secret` sources by id.
    pub secrets: HashMap<String, SecretSource>,
    /// `--ssh` agent sockets by id (the private agents behind key files run for the build).
    /// Only ids reach the graph and the cache keys, never these paths.
    pub ssh: HashMap<String, PathBuf>,
    /// The Dockerfile's absolute path: with the stage and position, it names a step whose
    /// last build the store remembers (cache-miss reasons). Empty: no step history.
    pub dockerfile: String,
    /// The build will export or push with this compression: compress each layer in the
    /// background as soon as its diff is written (export then finds it done). None: only
    /// when exporting.
    pub compress: Option<codec::Compression>,
    /// `--cache-from`: the imported caches a step that misses locally is looked up in.
    pub cache_from: Option<&'a Imported>,
    /// The registry client that fetches a remote cache's layers when a step needs their files.
    pub registry: Option<&'a registry::Client>,
    /// Filled as RUN steps mount caches (`--cache-to ...,mounts=true` exports them).
    pub cache_mounts: UsedCacheMounts,
}

/// A local directory a build reads (the main context, a `--build-context NAME=DIR`).
#[derive(Debug, Clone)]
pub struct LocalDir {
    pub dir: PathBuf,
    /// Its `.dockerignore` (paths relative to `dir`, '/'-separated).
    pub ignore: Option<Matcher>,
}

impl SolveOptions<'_> {
    /// The directory of local source `name`.
    pub(crate) fn local(&self, name: &str) -> Result<&LocalDir, StepError> {
        self.locals.get(name).ok_or_else(|| StepError::NoLocalDir {
            name: name.to_string(),
        })
    }
}

/// What a vertex produced.
#[derive(Debug, Clone)]
pub(crate) enum Output {
    Layers(Vec<Layer>),
    /// A local source (the main context or a named one), by name: a directory read in place.
    Local(String),
}

/// The content hash of the files of directory `context` that `paths` select (the part of a COPY's cache key that
/// changes when a file is edited), as a build computes it: memoized in the store's index by
/// file metadata. For benchmarks and tools; builds call it through the solver.
pub fn context_hash(
    root: &Root,
    context: &Path,
    paths: &[String],
    ignore: Option<&Matcher>,
) -> Result<String, ContextHashError> {
    let walk = ContextWalk::default();
    hash_paths(root, context, paths, ignore, &walk, true).map(|f| f.digest)
}

/// What a solve gives: the target's layers, bottom first, and every step's cache key and
/// layer stack (what `--cache-to` exports).
pub struct Solved {
    pub layers: Vec<LayerRecord>,
    pub steps: Vec<StepResult>,
    /// Each vertex's layer stack, bottom first, by vertex digest (sources too; what a
    /// mode=max provenance lists per step).
    pub chains: Chains,
}

/// Layer stacks by vertex digest.
pub type Chains = HashMap<String, Vec<LayerRecord>>;

/// Runs the graph up to `root`; returns its layers, bottom first, and its steps.
pub fn solve(
    graph: &Graph,
    root: &Digest,
    opts: &SolveOptions,
    events: &(dyn Fn(Event) + Sync),
) -> Result<Solved, SolveError> {
    let mut s = solve_graph(graph, std::slice::from_ref(root), opts, events)?;
    Ok(Solved {
        layers: s.roots.remove(0),
        steps: s.steps,
        chains: s.chains,
    })
}

/// What a solve of several roots gives: each root's layers, bottom first, in the order of
/// the roots, every step's cache key and layer stack (`in_image`: under any root's image),
/// and each vertex's layer stack.
pub struct SolvedRoots {
    pub layers: Vec<Vec<LayerRecord>>,
    pub steps: Vec<StepResult>,
    pub chains: Chains,
}

/// Runs the graph (one or several graphs merged: a multi-platform build's, whose identical
/// vertices are one) up to each of `roots`.
pub fn solve_roots(
    graph: &Graph,
    roots: &[Digest],
    opts: &SolveOptions,
    events: &(dyn Fn(Event) + Sync),
) -> Result<SolvedRoots, SolveError> {
    solve_graph(graph, roots, opts, events).map(|s| SolvedRoots {
        layers: s.roots,
        steps: s.steps,
        chains: s.chains,
    })
}

/// Each root's layers, every step's result (`in_image` when under any root's image) and
/// every vertex's layer stack.
fn solve_graph(
    graph: &Graph,
    roots: &[Digest],
    opts: &SolveOptions,
    events: &(dyn Fn(Event) + Sync),
) -> Result<Solution, SolveError> {
    let by_digest: HashMap<&str, &Vertex> = graph
        .vertices
        .iter()
        .map(|v| (v.digest.as_str(), v))
        .collect();
    let recorder = history_recorder();
    let walk = ContextWalk::default();
    let filed = std::sync::Mutex::new(HashMap::new());
    let (writer, queue) = Writer::new();
    let steps_done = AtomicBool::new(false);
    let (recorder_ref, writer_ref, walk_ref, by_digest) = (&recorder, &writer, &walk, &by_digest);
    let filed_ref = &filed;
    let run = move |v: &Vertex, inputs: Vec<scheduler::Done>| {
        let input_vertices: Vec<&Vertex> = v.inputs.iter().map(|i| by_digest[i.as_str()]).collect();
        let step = vertex::Step {
            v,
            input_vertices: &input_vertices,
            recorder: recorder_ref,
            writer: writer_ref,
            walk: walk_ref,
            filed: filed_ref,
        };
        vertex::run_vertex(&step, &inputs, opts, events)
    };
    let (finished, written) = std::thread::scope(|threads| {
        let writer_threads = queue.start(threads, opts.root, opts.compress);
        let writer = &writer;
        // Context files are hashed ahead, last steps first: a big COPY at the end of the
        // build then finds them hashed during earlier steps (errors are the step's to report).
        let (steps_done, walk) = (&steps_done, &walk);
        threads.spawn(move || {
            for v in graph.vertices.iter().rev() {
                if steps_done.load(Ordering::Relaxed) {
                    return;
                }
                let _ = keys::context_files(v, opts, walk, true);
            }
        });
        let finished = scheduler::run_all(graph, threads, &run);
        steps_done.store(true, Ordering::Relaxed);
        // Every step is done (nothing mounts a snapshot): wait for the diffs and records.
        let written = writer.finish(writer_threads, opts.root);
        (finished, written)
    });
    // The history of the steps that finished, also when another failed.
    if let Err(e) = recorder.flush(opts.root) {
        events(Event::Log {
            name: "[internal] step history".into(),
            line: format!("warning: cache-miss history not saved: {e}"),
        });
    }
    let scheduler::Finished { results, failure } = finished;
    if let Some(e) = failure {
        return Err(e);
    }
    // A layer that could not be written is the step's that made it (a full disk names it).
    let writing = |e: LayerWriteError| {
        let step = e.step().unwrap_or("[internal] writing layers").to_string();
        SolveError::step(&step, e)
    };
    written.map_err(writing)?;
    let layers = roots
        .iter()
        .map(|root| match results.get(root.as_str()) {
            Some((Output::Layers(l), _)) => l
                .iter()
                .map(Layer::diff)
                .collect::<Result<Vec<_>, _>>()
                .map_err(writing),
            Some((Output::Local(_), _)) => Ok(Vec::new()),
            None => Err(SolveError::NoVertex(root.clone())),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let filed = filed.into_inner().unwrap_or_else(|p| p.into_inner());
    let steps = solved_steps(graph, &results, &layers, &filed).map_err(writing)?;
    let mut chains = Chains::new();
    for (digest, (output, _)) in &results {
        if let Output::Layers(l) = output {
            let chain = l
                .iter()
                .map(Layer::diff)
                .collect::<Result<Vec<_>, _>>()
                .map_err(writing)?;
            chains.insert(digest.to_string(), chain);
        }
    }
    Ok(Solution {
        roots: layers,
        steps,
        chains,
    })
}

/// What [`solve_graph`] gives: each root's layers, every step, every vertex's stack.
struct Solution {
    roots: Vec<Vec<LayerRecord>>,
    steps: Vec<StepResult>,
    chains: Chains,
}

/// Every step (not a source) whose result is layers, in graph order; `in_image` when its
/// stack is the bottom of one of the images' (a multi-platform build has one per platform).
fn solved_steps(
    graph: &Graph,
    results: &HashMap<&str, scheduler::Done>,
    images: &[Vec<LayerRecord>],
    filed: &HashMap<String, CacheKey>,
) -> Result<Vec<StepResult>, LayerWriteError> {
    let mut steps = Vec::new();
    for v in &graph.vertices {
        if matches!(v.op, Op::Source(_)) {
            continue;
        }
        let Some((Output::Layers(l), key)) = results.get(v.digest.as_str()) else {
            continue;
        };
        let layers = l.iter().map(Layer::diff).collect::<Result<Vec<_>, _>>()?;
        let in_image = images.iter().any(|image| {
            layers.len() <= image.len()
                && layers
                    .iter()
                    .zip(image)
                    .all(|(a, b)| a.diff_id == b.diff_id)
        });
        // A step passed on under its content key is filed under its definition key.
        let (key, downstream) = match filed.get(v.digest.as_str()) {
            Some(def) => (def.to_string(), Some(key.to_string())),
            None => (key.to_string(), None),
        };
        steps.push(StepResult {
            key,
            downstream,
            layers,
            in_image,
        });
    }
    Ok(steps)
}

fn history_recorder() -> keys::history::Recorder {
    keys::history::Recorder::default()
}

/// The progress name of a vertex; unnamed ones (internal ops) by kind and short digest.
pub(crate) fn display_name(v: &Vertex) -> String {
    if !v.meta.name.is_empty() {
        return error::shortened(&v.meta.name);
    }
    let kind = match &v.op {
        Op::Source(_) => "source",
        Op::Exec(_) => "exec",
        Op::File(_) => "file",
        Op::Merge => "merge",
    };
    let short = v.digest.trim_start_matches("blake3:");
    format!("[internal] {kind} {}", &short[..short.len().min(12)])
}

fn stored(layers: Vec<LayerRecord>) -> Output {
    vertex::stored(layers)
}
