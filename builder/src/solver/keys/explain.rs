//! `pallet build --explain`: a dry run against the cache. Computes every step's cache key the
//! way a build would (vertex digests, input keys, context file hashes), reports which steps
//! would come from the cache and, for the others, why not: the same reasons a build prints.
//! Runs nothing and writes nothing (not even the context-file memo).
//!
//! Keys do not depend on step outputs, so the whole graph is walked in order without running
//! it. A step found by its definition key passes on the key its record names (its content
//! key, when it has one); a step that a build would find only by its content key
//! (`super::content`: another stage rebuilt with the same files) is reported as a miss here,
//! and so are the steps after it. The one exception is `ADD <url>`, whose key is the downloaded content: the dry run
//! assumes the content of its last build (and says "first build" if there was none).

use super::context_hash::ContextWalk;
use super::history::{self, StepRecord};
use super::{downstream_of, source_key, step_key, CacheKey};
use crate::events::{Event, MissReason};
use crate::solver::{display_name, SolveError, SolveOptions};
use crate::store::{get_image, has_layer};
use graph::{Digest, Graph, Op, Source, Vertex};
use std::collections::HashMap;

/// Reports the cache state of every step `root` needs: `Cached` for a hit, `Miss` (with the
/// reasons, no `Started`) for a step that would run. Returns (hits, misses).
pub fn explain(
    graph: &Graph,
    roots: &[Digest],
    opts: &SolveOptions,
    events: &(dyn Fn(Event) + Sync),
) -> Result<(usize, usize), SolveError> {
    let walk = ContextWalk::default();
    let mut g = graph.clone();
    let roots: Vec<&str> = roots.iter().map(|r| r.as_str()).collect();
    g.prune_to_all(&roots);
    let by_digest: HashMap<&str, &Vertex> =
        g.vertices.iter().map(|v| (v.digest.as_str(), v)).collect();
    let mut keys_of: HashMap<&str, CacheKey> = HashMap::new();
    let (mut hits, mut misses) = (0, 0);
    // Graph order is topological: inputs come first.
    for v in &g.vertices {
        let name = display_name(v);
        let inputs: Vec<(&Vertex, &str)> = v
            .inputs
            .iter()
            .map(|i| (by_digest[i.as_str()], keys_of[i.as_str()].as_str()))
            .collect();
        let id = (!opts.dockerfile.is_empty()).then(|| history::step_id(&opts.dockerfile, v));
        let previous = id.as_ref().and_then(|id| history::previous(opts.root, id));
        let no_cache = opts.no_cache || v.meta.ignore_cache;
        // A hit's record may pass its content key on (`super::Record::downstream`).
        let mut downstream = None;
        let (key, hit, record) = match &v.op {
            Op::Source(Source::Scratch | Source::Local { .. }) => {
                keys_of.insert(&v.digest, source_key(v));
                continue;
            }
            Op::Source(Source::Image { reference, .. }) => {
                let key = source_key(v);
                let name_only = reference
                    .rsplit_once('@')
                    .map_or(reference.as_str(), |(n, _)| n);
                if !matches!(get_image(opts.root, name_only), Ok(Some(_))) {
                    events(Event::Miss {
                        name,
                        reasons: vec![MissReason::NotInStore {
                            reference: name_only.to_string(),
                        }],
                    });
                    misses += 1;
                    keys_of.insert(&v.digest, key);
                    continue;
                }
                (key.clone(), true, history::current(v, &inputs, &key, None))
            }
            Op::Source(Source::Http { .. }) => match &previous {
                Some(p) if !no_cache => (
                    CacheKey::new(p.key.clone()),
                    cached(opts, &p.key),
                    p.clone(),
                ),
                _ => {
                    let key = CacheKey::new(format!("http-unknown/{}", v.digest));
                    (key.clone(), false, history::current(v, &inputs, &key, None))
                }
            },
            // As for a URL: the commit of its last build is assumed (no ls-remote here).
            Op::Source(Source::Git { .. }) => match &previous {
                Some(p) if !no_cache => (
                    CacheKey::new(p.key.clone()),
                    cached(opts, &p.key),
                    p.clone(),
                ),
                _ => {
                    let key = CacheKey::new(format!("git-unknown/{}", v.digest));
                    (key.clone(), false, history::current(v, &inputs, &key, None))
                }
            },
            _ => {
                let input_keys: Vec<&str> = inputs.iter().map(|(_, k)| *k).collect();
                let (key, context) = step_key(v, &input_keys, opts, &walk, false)
                    .map_err(|e| SolveError::step(&name, e))?;
                let hit = !no_cache && cached(opts, &key);
                if hit {
                    downstream = opts
                        .root
                        .index
                        .get_cache(&key)
                        .ok()
                        .flatten()
                        .and_then(|bytes| downstream_of(&bytes));
                }
                let record = history::current(v, &inputs, &key, context);
                (key, hit, record)
            }
        };
        report(&name, hit, previous.as_ref(), &record, no_cache, events);
        if hit {
            hits += 1;
        } else {
            misses += 1;
        }
        if v.meta.ignore_cache && !opts.no_cache {
            // Run past the cache (`--no-cache-filter`): the steps after it are keyed by what
            // it makes, unknown before it runs.
            downstream = Some(CacheKey::new(format!("made-unknown/{}", v.digest)));
        }
        keys_of.insert(&v.digest, downstream.unwrap_or(key));
    }
    Ok((hits, misses))
}

fn report(
    name: &str,
    hit: bool,
    previous: Option<&StepRecord>,
    record: &StepRecord,
    no_cache: bool,
    events: &(dyn Fn(Event) + Sync),
) {
    if hit {
        events(Event::Cached {
            name: name.to_string(),
        });
    } else {
        events(Event::Miss {
            name: name.to_string(),
            reasons: history::reasons(previous, record, no_cache),
        });
    }
}

/// Whether a cache record exists for `key` with all its layer blobs (read only: a real
/// lookup would also unpack missing snapshots).
fn cached(opts: &SolveOptions, key: &str) -> bool {
    let Ok(Some(bytes)) = opts.root.index.get_cache(key) else {
        return false;
    };
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return false;
    };
    let Some(layers) = value.get("layers").and_then(|l| l.as_array()) else {
        return false;
    };
    layers.iter().all(|l| {
        l.get("diff_id")
            .and_then(|d| d.as_str())
            .is_some_and(|d| has_layer(opts.root, d))
    })
}
