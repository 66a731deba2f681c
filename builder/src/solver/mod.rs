//! The solver: walks the graph, asks the cache first, and runs what missed. Independent
//! vertices run at the same time; RUN steps wait on runc on threads of their own, everything
//! else (file ops, hashing) runs on the rayon pool (DESIGN.md: 2 cores = 2 rayon threads, never
//! blocked on a container). Identical ops are one vertex in the graph, so they run once.
//!
//! A vertex's result is a stack of layers. Its cache key is blake3 of the vertex digest, its
//! inputs' cache keys and the content of the context files it reads; a key found in the index
//! whose layers are still in the store is a hit. The solver knows nothing of Dockerfiles.

mod cache_mount;
mod context_hash;
mod context_memo;
mod direct_copy;
mod exec_step;
mod explain;
mod file_step;
mod git_source;
mod history;
mod http_source;
mod keys;
mod layer_writer;

pub use crate::events::{Event, MissReason};
pub use explain::explain;

use crate::store::{LayerRecord, StoreError};
use cache::Root;
use graph::{Digest, Graph, Op, Source, Vertex};
use layer_writer::{Layer, Writer};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Instant;

/// How a build runs.
pub struct SolveOptions<'a> {
    pub root: &'a Root,
    /// The OCI runtime (runc).
    pub runtime: PathBuf,
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
}

/// A local directory a build reads (the main context, a `--build-context NAME=DIR`).
#[derive(Debug, Clone)]
pub struct LocalDir {
    pub dir: PathBuf,
    /// Its `.dockerignore` (paths relative to `dir`, '/'-separated).
    pub ignore: Option<context::dockerignore::Matcher>,
}

impl SolveOptions<'_> {
    /// The directory of local source `name`.
    pub(crate) fn local(&self, name: &str) -> Result<&LocalDir, String> {
        self.locals.get(name).ok_or_else(|| {
            format!("the build reads local source \"{name}\", but no directory was given for it")
        })
    }
}

/// Where a `--secret` comes from. Only the id reaches the graph; the value is read when a
/// step mounts it and lives in memory and on a tmpfs only for that step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    File(PathBuf),
    Env(String),
}

impl SecretSource {
    /// Parses `id=ID,src=PATH` / `id=ID,env=VAR` (also `source=`, `type=file|env`).
    pub fn parse(spec: &str) -> Result<(String, SecretSource), String> {
        let (mut id, mut src, mut env, mut kind) = (None, None, None, None);
        for field in spec.split(',') {
            let (k, v) = field.split_once('=').ok_or_else(|| {
                format!("invalid --secret \"{spec}\": \"{field}\" is not key=value")
            })?;
            match k {
                "id" => id = Some(v.to_string()),
                "src" | "source" => src = Some(v.to_string()),
                "env" => env = Some(v.to_string()),
                "type" => kind = Some(v.to_string()),
                other => {
                    return Err(format!(
                        "invalid --secret \"{spec}\": unknown key \"{other}\" (id, src, env, type)"
                    ))
                }
            }
        }
        let id = id.ok_or_else(|| format!("invalid --secret \"{spec}\": id= is required"))?;
        let source = match (kind.as_deref(), src, env) {
            (Some("env"), Some(v), None) | (_, None, Some(v)) => SecretSource::Env(v),
            (Some("file") | None, Some(p), None) => SecretSource::File(PathBuf::from(p)),
            (Some("env"), None, None) => SecretSource::Env(id.clone()),
            (_, Some(_), Some(_)) => {
                return Err(format!(
                    "invalid --secret \"{spec}\": give src= or env=, not both"
                ))
            }
            (Some(t), _, _) if t != "file" && t != "env" => {
                return Err(format!(
                    "invalid --secret \"{spec}\": type must be file or env"
                ))
            }
            _ => {
                return Err(format!(
                    "invalid --secret \"{spec}\": give src=PATH or env=VAR"
                ))
            }
        };
        Ok((id, source))
    }

    /// The secret's bytes, read now.
    pub(crate) fn read(&self, id: &str) -> Result<Vec<u8>, String> {
        match self {
            SecretSource::File(p) => {
                std::fs::read(p).map_err(|e| format!("secret {id}: reading {}: {e}", p.display()))
            }
            SecretSource::Env(v) => std::env::var(v)
                .map(String::into_bytes)
                .map_err(|_| format!("secret {id}: environment variable {v} is not set")),
        }
    }
}

#[cfg(test)]
mod secret_tests {
    use super::*;

    #[test]
    fn secret_specs() {
        assert_eq!(
            SecretSource::parse("id=aws,src=/x").unwrap(),
            ("aws".into(), SecretSource::File("/x".into()))
        );
        assert_eq!(
            SecretSource::parse("id=tok,env=GH_TOKEN").unwrap(),
            ("tok".into(), SecretSource::Env("GH_TOKEN".into()))
        );
        assert_eq!(
            SecretSource::parse("type=env,id=TOK").unwrap(),
            ("TOK".into(), SecretSource::Env("TOK".into()))
        );
        assert!(SecretSource::parse("src=/x").is_err());
        assert!(SecretSource::parse("id=a").is_err());
        assert!(SecretSource::parse("id=a,src=/x,env=Y").is_err());
        assert!(SecretSource::parse("id=a,bogus=1").is_err());
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SolveError {
    /// A step failed: which one, how, and the tail of its output.
    #[error("{step}: {message}")]
    Step { step: String, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
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
    root: &cache::Root,
    context: &std::path::Path,
    paths: &[String],
    ignore: Option<&context::dockerignore::Matcher>,
) -> Result<String, String> {
    let walk = context_hash::ContextWalk::default();
    context_hash::hash_paths(root, context, paths, ignore, &walk, true).map(|f| f.digest)
}

/// Runs the graph up to `root`; returns its layers, bottom first.
pub fn solve(
    graph: &Graph,
    root: &Digest,
    opts: &SolveOptions,
    events: &(dyn Fn(Event) + Sync),
) -> Result<Vec<LayerRecord>, SolveError> {
    let by_digest: HashMap<&str, &Vertex> = graph
        .vertices
        .iter()
        .map(|v| (v.digest.as_str(), v))
        .collect();
    let mut remaining: HashMap<&str, usize> = HashMap::new();
    let mut users: HashMap<&str, Vec<&str>> = HashMap::new();
    for v in &graph.vertices {
        let mut unique: Vec<&str> = v.inputs.iter().map(graph::Digest::as_str).collect();
        unique.sort();
        unique.dedup();
        remaining.insert(&v.digest, unique.len());
        for i in unique {
            users.entry(i).or_default().push(&v.digest);
        }
    }
    let mut ready: Vec<&str> = remaining
        .iter()
        .filter(|(_, n)| **n == 0)
        .map(|(d, _)| *d)
        .collect();
    ready.sort();
    let mut results: HashMap<&str, (Output, String)> = HashMap::new();
    let (tx, rx) = mpsc::channel::<(&str, Result<(Output, String), SolveError>)>();
    let mut running = 0usize;
    let mut failure: Option<SolveError> = None;
    let recorder = history::Recorder::default();
    let recorder = &recorder;
    let by_digest = &by_digest;

    let walk = context_hash::ContextWalk::default();
    let walk = &walk;
    let (writer, queue) = Writer::new();
    let writer = &writer;
    let steps_done = std::sync::atomic::AtomicBool::new(false);
    let written = std::thread::scope(|threads| {
        let writer_threads = queue.start(threads, opts.root, opts.compress);
        // Context files are hashed ahead, last steps first: a big COPY at the end of the
        // build then finds them hashed during earlier steps (errors are the step's to report).
        let steps_done = &steps_done;
        threads.spawn(move || {
            for v in graph.vertices.iter().rev() {
                if steps_done.load(std::sync::atomic::Ordering::Relaxed) {
                    return;
                }
                let _ = context_files(v, opts, walk, true);
            }
        });
        rayon::in_place_scope(|pool| loop {
            while failure.is_none() {
                let Some(d) = ready.pop() else { break };
                let v = by_digest[d];
                let inputs: Vec<(Output, String)> = v
                    .inputs
                    .iter()
                    .map(|i| results[i.as_str()].clone())
                    .collect();
                let input_vertices: Vec<&Vertex> =
                    v.inputs.iter().map(|i| by_digest[i.as_str()]).collect();
                let tx = tx.clone();
                running += 1;
                let job = move || {
                    let step = Step {
                        v,
                        input_vertices: &input_vertices,
                        recorder,
                        writer,
                        walk,
                    };
                    let r = run_vertex(&step, &inputs, opts, events);
                    let _ = tx.send((v.digest.as_str(), r));
                };
                if matches!(v.op, Op::Exec(_)) {
                    threads.spawn(job);
                } else {
                    pool.spawn(move |_| job());
                }
            }
            if running == 0 {
                break;
            }
            let (d, r) = rx.recv().expect("a running step reports back");
            running -= 1;
            match r {
                Ok(out) => {
                    results.insert(d, out);
                    for u in users.get(d).into_iter().flatten() {
                        let n = remaining.get_mut(u).expect("user is a vertex");
                        *n -= 1;
                        if *n == 0 {
                            ready.push(u);
                        }
                    }
                }
                Err(e) => {
                    if failure.is_none() {
                        failure = Some(e);
                    }
                }
            }
        });
        steps_done.store(true, std::sync::atomic::Ordering::Relaxed);
        // Every step is done (nothing mounts a snapshot): wait for the diffs and records.
        writer.finish(writer_threads, opts.root)
    });
    // The history of the steps that finished, also when another failed.
    if let Err(e) = recorder.flush(opts.root) {
        events(Event::Log {
            name: "[internal] step history".into(),
            line: format!("warning: cache-miss history not saved: {e}"),
        });
    }
    if let Some(e) = failure {
        return Err(e);
    }
    if let Err(message) = written {
        return Err(SolveError::Step {
            step: "[internal] writing layers".into(),
            message,
        });
    }
    match results.remove(root.as_str()) {
        Some((Output::Layers(l), _)) => l
            .iter()
            .map(Layer::diff)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|message| SolveError::Step {
                step: "[internal] writing layers".into(),
                message,
            }),
        Some((Output::Local(_), _)) => Ok(Vec::new()),
        None => Err(SolveError::Step {
            step: "solve".into(),
            message: format!("the graph has no vertex {root}"),
        }),
    }
}

/// The progress name of a vertex; unnamed ones (internal ops) by kind and short digest.
pub(crate) fn display_name(v: &Vertex) -> String {
    if !v.meta.name.is_empty() {
        return v.meta.name.clone();
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

/// A vertex being solved, with what its history record needs.
struct Step<'a> {
    v: &'a Vertex,
    input_vertices: &'a [&'a Vertex],
    recorder: &'a history::Recorder,
    writer: &'a Writer,
    walk: &'a context_hash::ContextWalk,
}

impl Step<'_> {
    /// Remembers this step as built now (when the build has a Dockerfile to name it by).
    fn remember(&self, opts: &SolveOptions, record: &history::StepRecord) {
        if !opts.dockerfile.is_empty() {
            self.recorder
                .add(history::step_id(&opts.dockerfile, self.v), record);
        }
    }

    /// Remembers a cache hit unless the store already has this very record.
    fn remember_hit(&self, opts: &SolveOptions, record: &history::StepRecord) {
        if opts.dockerfile.is_empty()
            || history::is_recorded(
                opts.root,
                &history::step_id(&opts.dockerfile, self.v),
                &record.key,
            )
        {
            return;
        }
        self.remember(opts, record);
    }

    fn record(
        &self,
        inputs: &[(Output, String)],
        key: &str,
        context: Option<history::ContextFiles>,
    ) -> history::StepRecord {
        let pairs: Vec<(&Vertex, &str)> = self
            .input_vertices
            .iter()
            .zip(inputs)
            .map(|(v, (_, k))| (*v, k.as_str()))
            .collect();
        history::current(self.v, &pairs, key, context)
    }
}

/// The hashes of the files `v` reads from each local source, by source name: worked out once
/// per build and source selection (in `walk`), by the background warm-up or the step itself.
fn context_files<'v>(
    v: &'v Vertex,
    opts: &SolveOptions,
    walk: &context_hash::ContextWalk,
    remember: bool,
) -> Result<Vec<(&'v str, history::ContextFiles)>, String> {
    let mut parts = Vec::new();
    for (name, paths) in &v.meta.context_paths {
        let local = opts.local(name)?;
        let files = context_hash::hash_paths(
            opts.root,
            &local.dir,
            paths,
            local.ignore.as_ref(),
            walk,
            remember,
        )?;
        parts.push((name.as_str(), files));
    }
    Ok(parts)
}

/// The cache key of a non-source vertex and the context files it read (`remember`: keep the
/// file-content memo; false in a dry run).
fn step_key(
    v: &Vertex,
    input_keys: &[&str],
    opts: &SolveOptions,
    walk: &context_hash::ContextWalk,
    remember: bool,
) -> Result<(String, Option<history::ContextFiles>), String> {
    let context = history::ContextFiles::combine(context_files(v, opts, walk, remember)?);
    let key = keys::vertex_key(v, input_keys, context.as_ref().map(|c| c.digest.as_str()));
    Ok((key, context))
}

/// Asks the cache, else runs the vertex. Returns its output and cache key.
fn run_vertex(
    s: &Step,
    inputs: &[(Output, String)],
    opts: &SolveOptions,
    events: &(dyn Fn(Event) + Sync),
) -> Result<(Output, String), SolveError> {
    let v = s.v;
    let name = display_name(v);
    let step = |message: String| SolveError::Step {
        step: name.clone(),
        message,
    };
    // Sources need no cache record: the store or the context is the source of truth.
    match &v.op {
        Op::Source(Source::Scratch) => {
            return Ok((Output::Layers(Vec::new()), keys::source_key(v)))
        }
        Op::Source(Source::Local { name: local, .. }) => {
            opts.local(local).map_err(step)?;
            return Ok((Output::Local(local.clone()), keys::source_key(v)));
        }
        Op::Source(Source::Image { reference, .. }) => {
            let layers = keys::image_layers(opts.root, reference).map_err(step)?;
            events(Event::Cached { name: name.clone() });
            let key = keys::source_key(v);
            s.remember_hit(opts, &s.record(inputs, &key, None));
            return Ok((stored(layers), key));
        }
        Op::Source(Source::Http { .. }) => {
            let (out, key) = http_source::run(v, &name, opts, events)?;
            s.remember(opts, &s.record(inputs, &key, None));
            return Ok((out, key));
        }
        Op::Source(Source::Git { .. }) => {
            let (layers, key) = git_source::run(v, &name, opts, events)?;
            s.remember(opts, &s.record(inputs, &key, None));
            return Ok((stored(layers), key));
        }
        _ => {}
    }
    let input_keys: Vec<&str> = inputs.iter().map(|(_, k)| k.as_str()).collect();
    let (key, context) = step_key(v, &input_keys, opts, s.walk, true).map_err(step)?;
    let record = s.record(inputs, &key, context);
    let no_cache = opts.no_cache || v.meta.ignore_cache;
    if !no_cache {
        if let Some(layers) = keys::lookup(opts.root, &key)? {
            events(Event::Cached { name: name.clone() });
            s.remember_hit(opts, &record);
            return Ok((stored(layers), key));
        }
    }
    let previous = (!opts.dockerfile.is_empty())
        .then(|| history::previous(opts.root, &history::step_id(&opts.dockerfile, v)))
        .flatten();
    events(Event::Started { name: name.clone() });
    if no_cache || !opts.dockerfile.is_empty() {
        events(Event::Miss {
            name: name.clone(),
            reasons: history::reasons(previous.as_ref(), &record, no_cache),
        });
    }
    let start = Instant::now();
    let result = match &v.op {
        Op::Exec(e) => exec_step::run(v, e, inputs, opts, s.writer, &|line| {
            events(Event::Log {
                name: name.clone(),
                line: line.to_string(),
            })
        }),
        Op::File(f) => file_step::run(f, inputs, opts, s.writer),
        Op::Merge => merge(inputs),
        Op::Source(_) => unreachable!("sources returned above"),
    };
    match result {
        Ok(layers) => {
            // Written once the layers' diffs are (the writer runs jobs in order).
            s.writer.record(&key, &layers);
            s.remember(opts, &record);
            events(Event::Done {
                name: name.clone(),
                seconds: start.elapsed().as_secs_f64(),
            });
            Ok((Output::Layers(layers), key))
        }
        Err(message) => {
            events(Event::Failed {
                name: name.clone(),
                message: message.clone(),
            });
            Err(step(message))
        }
    }
}

fn stored(layers: Vec<LayerRecord>) -> Output {
    Output::Layers(layers.into_iter().map(Layer::Stored).collect())
}

fn merge(inputs: &[(Output, String)]) -> Result<Vec<Layer>, String> {
    let mut out = Vec::new();
    for (o, _) in inputs {
        match o {
            Output::Layers(l) => out.extend(l.iter().cloned()),
            Output::Local(name) => {
                return Err(format!("cannot merge local source {name} as a layer"))
            }
        }
    }
    Ok(out)
}
