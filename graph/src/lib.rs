//! The LLB-like graph: the narrow waist between the frontend and everything after it.
//!
//! A graph is a DAG of content-addressed vertices. Each vertex is one op (a source, a command
//! execution, a file operation, a merge) and the digests of its inputs; its digest is blake3 of
//! both, so the same Dockerfile and args give the same digests on every machine, and identical
//! ops in one build collapse into one vertex. Context file contents are not in the digest (the
//! cache adds them to its keys). `Meta` rides along outside the digest: source span, progress
//! name, the args and env values used, the local-source paths read. Nothing here is
//! Dockerfile-specific; the solver executes it without knowing where it came from.

pub mod image;
mod ops;
pub mod resolve;
pub mod time;

pub use ops::*;

use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;

/// A vertex's identity: `blake3:<hex>` of its op and its inputs' digests ([`digest_of`]).
/// Only the graph makes them; everything else reads them as text.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Digest(String);

impl Digest {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for Digest {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for Digest {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Digest {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<str> for Digest {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for Digest {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

/// Information about a vertex that does not change what it computes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Meta {
    /// Progress name, BuildKit style: `[builder 2/5] RUN pip install -r requirements.txt`.
    pub name: String,
    /// The stage the op belongs to (`builder`, `stage-1`).
    pub stage: String,
    /// Dockerfile lines `(start, end)`, 1-based, when the op comes from an instruction.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lines: Option<(usize, usize)>,
    /// Build args in scope with their values (what a cache-miss report compares).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub args: BTreeMap<String, String>,
    /// Variables this op's words were expanded with (name -> value; unset names absent).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub expanded_from: BTreeMap<String, String>,
    /// Paths the op reads from each local source it has as an input, by the source's name
    /// (`context` for the main build context, else a `--build-context` directory):
    /// `/requirements.txt`, `/` for everything. Their contents go into the op's cache key.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub context_paths: BTreeMap<String, Vec<String>>,
    /// Proxy variables from `--build-arg http_proxy=...`: given to RUN but, as in BuildKit,
    /// not part of the cache key or the history.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub proxy_env: Vec<String>,
    /// `--no-cache` (or `--no-cache-filter`) applies to this op.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub ignore_cache: bool,
    /// The instruction as written (`RUN echo $V`) when the progress name shows it with its
    /// variables expanded, as BuildKit's names do: what a cache-miss report compares, so that
    /// a new variable value is reported as such, not as another instruction.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub instruction: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Vertex {
    pub digest: Digest,
    pub op: Op,
    pub inputs: Vec<Digest>,
    pub meta: Meta,
}

/// A DAG of vertices in topological order (inputs before users), without duplicates.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Graph {
    pub vertices: Vec<Vertex>,
}

impl Graph {
    /// Adds an op; returns its digest. An identical op with identical inputs is stored once
    /// (the first metadata wins), which is how identical work runs once per build.
    pub fn add(&mut self, op: Op, inputs: Vec<Digest>, meta: Meta) -> Digest {
        let digest = digest_of(&op, &inputs);
        if !self.vertices.iter().any(|v| v.digest == digest) {
            self.vertices.push(Vertex {
                digest: digest.clone(),
                op,
                inputs,
                meta,
            });
        }
        digest
    }

    pub fn get(&self, digest: &str) -> Option<&Vertex> {
        self.vertices.iter().find(|v| v.digest == digest)
    }

    /// Keeps only the vertices `root` depends on (and `root`), preserving order.
    pub fn prune_to(&mut self, root: &str) {
        self.prune_to_all(&[root]);
    }

    /// Keeps only the vertices one of `roots` depends on (and the roots), preserving order: a
    /// multi-platform build's merged graph, one root per platform.
    pub fn prune_to_all(&mut self, roots: &[&str]) {
        let mut keep: std::collections::HashSet<String> = std::collections::HashSet::new();
        let mut stack: Vec<String> = roots.iter().map(|r| r.to_string()).collect();
        while let Some(d) = stack.pop() {
            if keep.contains(&d) {
                continue;
            }
            if let Some(v) = self.get(&d) {
                stack.extend(v.inputs.iter().map(|i| i.to_string()));
            }
            keep.insert(d);
        }
        self.vertices.retain(|v| keep.contains(v.digest.as_str()));
    }
}

/// The digest of an op and its inputs: blake3 over a canonical JSON encoding (struct fields in
/// declaration order, maps sorted), prefixed with a version so a change of encoding changes
/// every digest instead of colliding with old ones.
pub fn digest_of(op: &Op, inputs: &[Digest]) -> Digest {
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"pallet.graph.v1\0");
    let encoded = serde_json::to_vec(&(op, inputs)).expect("ops serialize to JSON");
    hasher.update(&encoded);
    Digest(format!("blake3:{}", hasher.finalize().to_hex()))
}
