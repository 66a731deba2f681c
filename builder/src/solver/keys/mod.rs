//! Cache keys and records: key = blake3(vertex digest, input keys, context content hash);
//! record = the vertex's layer stack, valid while every layer is still in the store. Also what
//! goes into a key besides the graph: the hashes of the context files a step reads
//! ([`context_hash`], memoized by file metadata in [`context_memo`]), the step history that
//! explains a miss ([`history`]), and the dry run that reports hits and misses ([`explain`]).

pub(super) mod content;
pub(super) mod context_hash;
mod context_memo;
pub(super) mod explain;
pub(super) mod history;

use super::{SolveOptions, StepError};
use crate::store::{created_at, ensure_snapshot, has_layer, stored_at, LayerRecord, StoreError};
use cache::Root;
use context_hash::ContextWalk;
use graph::Vertex;
use std::fmt;

/// A cache key: what the index files a step's result under (`step/blake3:...`,
/// `source/...`, `http/layer/...`, `git/layer/...`). The same Dockerfile, context and base
/// give the same keys on every machine.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct CacheKey(String);

impl CacheKey {
    /// A key made by a source from its fetched content (`http/layer/...`).
    pub(crate) fn new(key: String) -> CacheKey {
        CacheKey(key)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for CacheKey {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The key of a source whose result depends on its definition only (scratch, a local
/// directory, a pinned image).
pub(super) fn source_key(v: &Vertex) -> CacheKey {
    CacheKey(format!("source/{}", v.digest))
}

/// The version every step key starts from. It changes when what a step makes from the same
/// inputs changes (v2: RUN's supplementary groups as BuildKit's, sockets in the context copied,
/// COPY --chmod's parent modes; v3: the op without its inputs' digests): results cached before
/// are not taken for the new meaning. (Content keys, [`content`], are new keys beside the
/// definition keys: they changed no existing key's meaning.)
const KEY_VERSION: &str = "pallet.cache.v3\0";

/// The digest of `v`'s op alone: keys count the inputs by their cache keys (or content), not
/// by their definitions, as in BuildKit. An input whose definition changed but whose result
/// did not (an `ADD <git>` that gained `--checksum` of the commit it already resolved to)
/// keeps the step cached.
fn op_digest(v: &Vertex) -> String {
    graph::digest_of(&v.op, &[]).to_string()
}

pub(super) fn vertex_key(v: &Vertex, inputs: &[&str], context: Option<&str>) -> CacheKey {
    let mut h = blake3::Hasher::new();
    h.update(KEY_VERSION.as_bytes());
    h.update(op_digest(v).as_bytes());
    for i in inputs {
        h.update(b"\0input\0");
        h.update(i.as_bytes());
    }
    if let Some(c) = context {
        h.update(b"\0context\0");
        h.update(c.as_bytes());
    }
    CacheKey(format!("step/blake3:{}", h.finalize().to_hex()))
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Record {
    layers: Vec<LayerRecord>,
    /// The key the steps that use this result are keyed by, when it is not the key this
    /// record is filed under: a step with a content key ([`content`]) files its result under
    /// its definition key too, and the steps after it are keyed by its content key, whichever
    /// key found it (so they stay cached when it is found by content).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    downstream: Option<CacheKey>,
}

/// A step's cached result.
pub(super) struct Hit {
    pub layers: Vec<LayerRecord>,
    /// See [`Record::downstream`].
    pub downstream: Option<CacheKey>,
}

/// A cached result whose layers can all be found (snapshots re-unpacked from blobs if gone).
pub(super) fn lookup(root: &Root, key: &CacheKey) -> Result<Option<Vec<LayerRecord>>, StoreError> {
    Ok(lookup_step(root, key)?.map(|h| h.layers))
}

/// [`lookup`] with the key the steps after it are keyed by.
pub(super) fn lookup_step(root: &Root, key: &CacheKey) -> Result<Option<Hit>, StoreError> {
    let Some(bytes) = root.index.get_cache(key.as_str())? else {
        return Ok(None);
    };
    let Ok(record) = serde_json::from_slice::<Record>(&bytes) else {
        return Ok(None);
    };
    let mut layers = record.layers;
    for l in &mut layers {
        if !has_layer(root, &l.diff_id) {
            return Ok(None);
        }
        ensure_snapshot(root, &l.diff_id)?;
        if l.created.is_none() {
            // A record from before layers kept their time: the blob's is as stable.
            l.created = blob_time(root, &l.diff_id);
        }
    }
    Ok(Some(Hit {
        layers,
        downstream: record.downstream,
    }))
}

/// The key a step's record (bytes as stored) passes to the steps after it, if not its own.
pub(super) fn downstream_of(bytes: &[u8]) -> Option<CacheKey> {
    serde_json::from_slice::<Record>(bytes).ok()?.downstream
}

/// When a layer was stored (RFC 3339), from its blob's mtime.
fn blob_time(root: &Root, diff_id: &str) -> Option<String> {
    created_at(stored_at(root, diff_id)?)
}

pub(super) fn record(
    root: &Root,
    key: &CacheKey,
    layers: &[LayerRecord],
) -> Result<(), StoreError> {
    record_step(root, key, layers, None)
}

/// [`record`] with the key the steps after it are keyed by, when not `key`.
pub(super) fn record_step(
    root: &Root,
    key: &CacheKey,
    layers: &[LayerRecord],
    downstream: Option<&CacheKey>,
) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec(&Record {
        layers: layers.to_vec(),
        downstream: downstream.filter(|d| *d != key).cloned(),
    })
    .expect("record serializes");
    root.index.put_cache(key.as_str(), &bytes)?;
    Ok(())
}

/// The hashes of the files `v` reads from each local source, by source name: worked out once
/// per build and source selection (in `walk`), by the background warm-up or the step itself.
pub(super) fn context_files<'v>(
    v: &'v Vertex,
    opts: &SolveOptions,
    walk: &ContextWalk,
    remember: bool,
) -> Result<Vec<(&'v str, history::ContextFiles)>, StepError> {
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
pub(super) fn step_key(
    v: &Vertex,
    input_keys: &[&str],
    opts: &SolveOptions,
    walk: &ContextWalk,
    remember: bool,
) -> Result<(CacheKey, Option<history::ContextFiles>), StepError> {
    let context = history::ContextFiles::combine(context_files(v, opts, walk, remember)?);
    let key = vertex_key(v, input_keys, context.as_ref().map(|c| c.digest.as_str()));
    Ok((key, context))
}
