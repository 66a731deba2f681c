//! One vertex: ask the cache, else run it, and report it. A step's cache key is worked out
//! from its inputs' keys and the context files it reads; a hit is reported `Cached`, a miss
//! with its reasons, then the op runs (RUN, file ops, merge, in [`super::ops`]; sources in
//! [`super::sources`]) and its layers are queued for the layer writer. Each step is
//! remembered in the step history, which explains the next build's misses.

use super::keys::context_hash::ContextWalk;
use super::keys::history;
use super::keys::{self, content, CacheKey};
use super::layer_writer::{Layer, Writer};
use super::scheduler::Done;
use super::sources::{self, Provenance};
use super::{display_name, ops, Output, SolveError, SolveOptions, StepError};
use crate::events::Event;
use crate::store::{fetch_remote, has_layer, LayerRecord};
use graph::{Op, Vertex};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// A vertex being solved, with what its history record needs.
pub(super) struct Step<'a> {
    pub v: &'a Vertex,
    pub input_vertices: &'a [&'a Vertex],
    pub recorder: &'a history::Recorder,
    pub writer: &'a Writer,
    pub walk: &'a ContextWalk,
    /// The definition key of each step whose result is passed on under its content key
    /// (what `--cache-to` files it under).
    pub filed: &'a Mutex<HashMap<String, CacheKey>>,
}

impl Step<'_> {
    /// The key the steps after this one are keyed by: `downstream` (its content key) when it
    /// has one, remembered as filed under `key`; else `key`.
    fn passed(&self, key: CacheKey, downstream: Option<CacheKey>) -> CacheKey {
        match downstream {
            Some(d) if d != key => {
                self.filed
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(self.v.digest.to_string(), key);
                d
            }
            _ => key,
        }
    }

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
        inputs: &[Done],
        key: &CacheKey,
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

/// Asks the cache, else runs the vertex. Returns its output and cache key; a failure points
/// at the vertex's Dockerfile lines.
pub(super) fn run_vertex(
    s: &Step,
    inputs: &[Done],
    opts: &SolveOptions,
    events: &(dyn Fn(Event) + Sync),
) -> Result<Done, SolveError> {
    run_vertex_here(s, inputs, opts, events).map_err(|e| e.at(s.v.meta.lines))
}

fn run_vertex_here(
    s: &Step,
    inputs: &[Done],
    opts: &SolveOptions,
    events: &(dyn Fn(Event) + Sync),
) -> Result<Done, SolveError> {
    let v = s.v;
    let name = display_name(v);
    let step = |e: StepError| SolveError::step(&name, e);
    if let Op::Source(source) = &v.op {
        let source_step = sources::SourceStep {
            name: &name,
            key: keys::source_key(v),
            no_cache: opts.no_cache || v.meta.ignore_cache,
            opts,
            events,
        };
        let (out, key, provenance) = sources::run(source, source_step)?;
        match provenance {
            Provenance::Given => {}
            Provenance::Stored => s.remember_hit(opts, &s.record(inputs, &key, None)),
            Provenance::Fetched => s.remember(opts, &s.record(inputs, &key, None)),
        }
        return Ok((out, key));
    }
    let input_keys: Vec<&str> = inputs.iter().map(|(_, k)| k.as_str()).collect();
    let (key, context) = keys::step_key(v, &input_keys, opts, s.walk, true).map_err(step)?;
    let context_digest = context.as_ref().map(|c| c.digest.clone());
    let record = s.record(inputs, &key, context);
    let no_cache = opts.no_cache || v.meta.ignore_cache;
    if !no_cache {
        if let Some(hit) = keys::lookup_step(opts.root, &key)? {
            events(Event::Cached { name: name.clone() });
            s.remember_hit(opts, &record);
            return Ok((stored(hit.layers), s.passed(key, hit.downstream)));
        }
        if let Some(imported) = opts.cache_from {
            if let Some(found) = imported.lookup(opts.root, &key)? {
                events(Event::Log {
                    name: name.clone(),
                    line: format!("CACHED (from {})", found.from),
                });
                events(Event::Cached { name: name.clone() });
                s.remember_hit(opts, &record);
                let downstream = found.downstream.map(|d| CacheKey::new(d.to_string()));
                return Ok((stored(found.layers), s.passed(key, downstream)));
            }
        }
    }
    // Missed by definition: a step that reads other stages at selected paths is also looked
    // up by what it reads there (`keys::content`).
    let content = content_key(s, inputs, context_digest.as_deref(), opts, events)?;
    if let (Some(ck), false) = (&content, no_cache) {
        // Local only: a remote cache files steps under their definition keys.
        if let Some(hit) = keys::lookup_step(opts.root, ck)? {
            let layers = hit.layers;
            // The content key, unless its record passes on another (what a step run past the
            // cache made).
            let downstream = hit.downstream.or_else(|| content.clone());
            events(Event::Log {
                name: name.clone(),
                line: "CACHED by content: the files it reads from other stages are unchanged"
                    .into(),
            });
            events(Event::Cached { name: name.clone() });
            s.remember_hit(opts, &record);
            // The next build with the same definition finds it by its definition key.
            keys::record_step(opts.root, &key, &layers, downstream.as_ref())?;
            return Ok((stored(layers), s.passed(key, downstream)));
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
    // Layers a remote cache answered are fetched now: this step runs on top of them. A file
    // op's first input is its own to fetch: a plain COPY may need only the layers' path
    // indexes (`ops::file`).
    let own_fetch = matches!(&v.op, Op::File(f) if f.on_input) && !inputs.is_empty();
    let to_fetch = if own_fetch { &inputs[1..] } else { inputs };
    fetch_inputs(to_fetch, opts, events).map_err(step)?;
    let result = match &v.op {
        Op::Exec(e) => ops::run::run(v, e, inputs, opts, s.writer, &|line| {
            events(Event::Log {
                name: name.clone(),
                line: line.to_string(),
            })
        }),
        Op::File(f) => ops::file::run(f, &name, inputs, opts, s.writer, events),
        Op::Merge => merge(inputs),
        Op::Source(_) => Err(StepError::BadGraph("a source is not a step".into())),
    };
    match result {
        Ok(layers) => {
            let downstream = if v.meta.ignore_cache && !opts.no_cache {
                // Run past the cache (`--no-cache-filter`) while the steps after it use
                // theirs: they are keyed by what it made, not by its definition, or they would
                // find the results made from its previous run.
                Some(made_key(&key, &layers).map_err(step)?)
            } else {
                content.clone()
            };
            // Written once the layers' diffs are (the writer runs jobs in order).
            s.writer.record(&key, &layers, downstream.as_ref());
            if let Some(ck) = &content {
                s.writer.record(ck, &layers, downstream.as_ref());
            }
            s.remember(opts, &record);
            events(Event::Done {
                name: name.clone(),
                seconds: start.elapsed().as_secs_f64(),
            });
            Ok((Output::Layers(layers), s.passed(key, downstream)))
        }
        Err(e) => {
            events(Event::Failed {
                name: name.clone(),
                message: e.to_string(),
            });
            Err(step(e))
        }
    }
}

/// The content key of the step (`keys::content`) when it reads other stages at selected
/// paths, with those stages' layers fetched first if a remote cache answered them. A key that
/// cannot be worked out is one log line: the step runs, and reports what is wrong itself.
fn content_key(
    s: &Step,
    inputs: &[Done],
    context: Option<&str>,
    opts: &SolveOptions,
    events: &(dyn Fn(Event) + Sync),
) -> Result<Option<CacheKey>, SolveError> {
    let name = display_name(s.v);
    if !content::applies(s.v) {
        return Ok(None);
    }
    let read: Vec<Done> = content::read_inputs(s.v, inputs)
        .into_iter()
        .map(|i| inputs[i].clone())
        .collect();
    fetch_inputs(&read, opts, events).map_err(|e| SolveError::step(&name, e))?;
    let started = Instant::now();
    let mut hashed = content::Hashed::default();
    match content::content_key(s.v, inputs, context, opts, &mut hashed) {
        Ok(key) => {
            if hashed.entries > 0 {
                events(Event::Log {
                    name,
                    line: format!(
                        "content key: {} entries ({:.1} MB) read from other stages in {:.2}s",
                        hashed.entries,
                        hashed.bytes as f64 / 1e6,
                        started.elapsed().as_secs_f64()
                    ),
                });
            }
            Ok(key)
        }
        Err(e) => {
            events(Event::Log {
                name,
                line: format!("no content-based cache key: {e}"),
            });
            Ok(None)
        }
    }
}

/// The key of what a step made: its key and its layers' diff ids (waiting for their diffs).
fn made_key(key: &CacheKey, layers: &[Layer]) -> Result<CacheKey, StepError> {
    let mut h = blake3::Hasher::new();
    h.update(b"made\0");
    h.update(key.as_bytes());
    for l in layers {
        h.update(b"\0");
        h.update(l.diff()?.diff_id.as_bytes());
    }
    Ok(CacheKey::new(format!(
        "step/blake3:{}",
        h.finalize().to_hex()
    )))
}

/// Layers fetched at once from a remote cache.
const FETCH_CONCURRENCY: usize = 3;

/// Brings into the store the input layers it knows only by a remote descriptor, a few at once.
pub(super) fn fetch_inputs(
    inputs: &[Done],
    opts: &SolveOptions,
    events: &(dyn Fn(Event) + Sync),
) -> Result<(), StepError> {
    let mut missing: Vec<&str> = Vec::new();
    for (out, _) in inputs {
        let Output::Layers(layers) = out else {
            continue;
        };
        for l in layers {
            if let Layer::Stored(l) = l {
                if !has_layer(opts.root, &l.diff_id) && !missing.contains(&l.diff_id.as_str()) {
                    missing.push(&l.diff_id);
                }
            }
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failure = std::sync::Mutex::new(None);
    std::thread::scope(|threads| {
        for _ in 0..FETCH_CONCURRENCY.min(missing.len()) {
            threads.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if i >= missing.len() || failure.lock().expect("lock").is_some() {
                    return;
                }
                if let Err(e) = fetch_remote(opts.root, opts.registry, missing[i], events) {
                    failure.lock().expect("lock").get_or_insert(e);
                    return;
                }
            });
        }
    });
    match failure.into_inner().expect("lock") {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

pub(super) fn stored(layers: Vec<LayerRecord>) -> Output {
    Output::Layers(layers.into_iter().map(Layer::Stored).collect())
}

fn merge(inputs: &[Done]) -> Result<Vec<Layer>, StepError> {
    let mut out = Vec::new();
    for (o, _) in inputs {
        match o {
            Output::Layers(l) => out.extend(l.iter().cloned()),
            Output::Local(name) => {
                return Err(StepError::BadGraph(format!(
                    "cannot merge local source {name} as a layer"
                )))
            }
        }
    }
    Ok(out)
}
