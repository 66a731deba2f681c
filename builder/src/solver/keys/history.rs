//! Step history: what the store remembers of the last build of each step, and why a step
//! missed the cache compared with it (the reasons every progress mode prints).
//!
//! A step is identified by the Dockerfile it comes from (its absolute path), its stage and its
//! position in the stage (`[build 2/4]` -> 2), so a step whose text changed is still "the same
//! step" and its report can say "instruction changed". Vertices without a position (internal
//! ops, `ADD <url>` sources) are identified by their digest. Records are small JSON values in
//! the cache index under `step-history/<blake3>`: the cache key, the instruction, the build
//! args, env and variables it used, its input keys (with the base image reference for a
//! FROM), and the content hash of each context file it read (capped: above
//! [`MAX_FILES`] files only the total digest is kept). They are written in one batch at the
//! end of a build.
//!
//! This module knows vertex metadata, never Dockerfile syntax.

use crate::events::MissReason;
use cache::Root;
use graph::{Op, Source, Vertex};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Above this many context files a record keeps only their combined digest.
pub(crate) const MAX_FILES: usize = 5000;
/// How many changed files a reason names.
const NAMED_FILES: usize = 3;

/// The content hashes of the context files one step read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ContextFiles {
    pub digest: String,
    /// (relative path, short content hash), sorted; empty when over [`MAX_FILES`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<(String, String)>,
}

impl ContextFiles {
    /// The files one step read from each local source it reads (`(source name, files)`,
    /// sorted by name) as one record. The main context alone stays as it is (keys and records
    /// of builds without named contexts do not change); otherwise each source's digest is
    /// hashed with its name, and a named context's files are shown as `NAME:path`.
    pub(crate) fn combine(mut parts: Vec<(&str, ContextFiles)>) -> Option<ContextFiles> {
        match parts.as_slice() {
            [] => return None,
            [("context", _)] => return parts.pop().map(|(_, f)| f),
            _ => {}
        }
        let mut h = blake3::Hasher::new();
        let mut files = Vec::new();
        for (name, part) in parts {
            h.update(name.as_bytes());
            h.update(b"\0");
            h.update(part.digest.as_bytes());
            h.update(b"\0");
            files.extend(part.files.into_iter().map(|(p, hash)| {
                if name == "context" {
                    (p, hash)
                } else {
                    (format!("{name}:{p}"), hash)
                }
            }));
        }
        if files.len() > MAX_FILES {
            files.clear();
        }
        Some(ContextFiles {
            digest: format!("blake3:{}", h.finalize().to_hex()),
            files,
        })
    }
}

/// One input of a step as it was built.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct InputRecord {
    /// The input's progress name.
    pub name: String,
    pub key: String,
    /// For an image source: the pinned reference (`name:tag@sha256:...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
}

/// What a build remembers of one step. `key` is the first field, so a record's cache key can
/// be checked without parsing it ([`is_recorded`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StepRecord {
    pub key: String,
    /// The instruction (progress name without its `[stage n/m]` prefix).
    pub instruction: String,
    #[serde(default)]
    pub args: BTreeMap<String, String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub expanded: BTreeMap<String, String>,
    #[serde(default)]
    pub context: Option<ContextFiles>,
    #[serde(default)]
    pub inputs: Vec<InputRecord>,
    /// For a FROM: the pinned base image reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
}

/// The instruction of a progress name: `[build 2/4] RUN x` -> (Some(2), `RUN x`).
fn position(name: &str) -> (Option<usize>, &str) {
    if let Some(rest) = name.strip_prefix('[') {
        if let Some((inside, text)) = rest.split_once("] ") {
            let n = inside
                .rsplit(' ')
                .next()
                .and_then(|p| p.split_once('/'))
                .and_then(|(n, _)| n.trim().parse().ok());
            if n.is_some() {
                return (n, text);
            }
        }
    }
    (None, name)
}

/// The index key of a step's record.
pub(crate) fn step_id(dockerfile: &str, v: &Vertex) -> String {
    let mut h = blake3::Hasher::new();
    h.update(b"pallet.step-history.v1\0");
    h.update(dockerfile.as_bytes());
    h.update(b"\0");
    h.update(v.meta.stage.as_bytes());
    h.update(b"\0");
    match position(&v.meta.name) {
        (Some(n), _) => h.update(format!("position {n}").as_bytes()),
        (None, _) => h.update(format!("vertex {}", v.digest).as_bytes()),
    };
    format!("step-history/blake3:{}", h.finalize().to_hex())
}

/// The record of `v` as built now, given its inputs' records and keys.
pub(crate) fn current(
    v: &Vertex,
    inputs: &[(&Vertex, &str)],
    key: &str,
    context: Option<ContextFiles>,
) -> StepRecord {
    let env = match &v.op {
        Op::Exec(e) => e
            .env
            .iter()
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        _ => BTreeMap::new(),
    };
    let image_of = |v: &Vertex| match &v.op {
        Op::Source(Source::Image { reference, .. }) => Some(reference.clone()),
        _ => None,
    };
    StepRecord {
        instruction: if v.meta.instruction.is_empty() {
            position(&v.meta.name).1.to_string()
        } else {
            v.meta.instruction.clone()
        },
        key: key.to_string(),
        args: v.meta.args.clone(),
        env,
        expanded: v.meta.expanded_from.clone(),
        context,
        inputs: inputs
            .iter()
            .map(|(iv, k)| InputRecord {
                name: iv.meta.name.clone(),
                key: k.to_string(),
                image: image_of(iv),
            })
            .collect(),
        image: image_of(v),
    }
}

/// The remembered record of a step, if any (unreadable records count as none).
pub(crate) fn previous(root: &Root, id: &str) -> Option<StepRecord> {
    let bytes = root.index.get_cache(id).ok()??;
    serde_json::from_slice(&bytes).ok()
}

/// Whether the remembered record of step `id` already has cache key `key` (a cache hit then
/// need not rewrite it: no-op rebuilds write no history).
pub(crate) fn is_recorded(root: &Root, id: &str, key: &str) -> bool {
    let prefix = format!("{{\"key\":{}", serde_json::Value::from(key));
    matches!(root.index.get_cache(id), Ok(Some(b)) if b.starts_with(prefix.as_bytes()))
}

/// Why `cur` missed the cache, compared with `prev`.
pub(crate) fn reasons(
    prev: Option<&StepRecord>,
    cur: &StepRecord,
    no_cache: bool,
) -> Vec<MissReason> {
    if no_cache {
        return vec![MissReason::NoCache];
    }
    let Some(prev) = prev else {
        return vec![MissReason::FirstBuild];
    };
    if prev.key == cur.key {
        return vec![MissReason::CacheGone];
    }
    let mut out = Vec::new();
    if prev.instruction != cur.instruction {
        out.push(MissReason::InstructionChanged {
            before: prev.instruction.clone(),
        });
    }
    let mut named: Vec<String> = Vec::new();
    for (name, before, after) in changed(&prev.args, &cur.args) {
        named.push(name.clone());
        out.push(MissReason::BuildArg {
            name,
            before,
            after,
        });
    }
    for (name, before, after) in changed(&prev.env, &cur.env) {
        if !named.contains(&name) {
            named.push(name.clone());
            out.push(MissReason::Env {
                name,
                before,
                after,
            });
        }
    }
    for (name, before, after) in changed(&prev.expanded, &cur.expanded) {
        if named.contains(&name) {
            continue;
        }
        named.push(name.clone());
        out.push(
            if cur.args.contains_key(&name) || prev.args.contains_key(&name) {
                MissReason::BuildArg {
                    name,
                    before,
                    after,
                }
            } else {
                MissReason::Env {
                    name,
                    before,
                    after,
                }
            },
        );
    }
    if let Some(r) = context_change(prev.context.as_ref(), cur.context.as_ref()) {
        out.push(r);
    }
    if let (Some(before), Some(after)) = (&prev.image, &cur.image) {
        if let Some(r) = base_change(before, after) {
            out.push(r);
        }
    }
    for (i, input) in cur.inputs.iter().enumerate() {
        let Some(old) = prev.inputs.get(i) else {
            out.push(MissReason::Parent {
                step: input.name.clone(),
            });
            continue;
        };
        if old.key == input.key {
            continue;
        }
        match (&old.image, &input.image) {
            (Some(b), Some(a)) => match base_change(b, a) {
                Some(r) => out.push(r),
                None => out.push(MissReason::Parent {
                    step: input.name.clone(),
                }),
            },
            _ => out.push(MissReason::Parent {
                step: input.name.clone(),
            }),
        }
    }
    out.dedup();
    if out.is_empty() {
        out.push(MissReason::Definition);
    }
    out
}

/// `name:tag@sha256:a` vs `name:tag@sha256:b`: the base image moved.
fn base_change(before: &str, after: &str) -> Option<MissReason> {
    if before == after {
        return None;
    }
    let (rb, db) = before.rsplit_once('@').unwrap_or((before, ""));
    let (ra, da) = after.rsplit_once('@').unwrap_or((after, ""));
    Some(MissReason::BaseImage {
        reference: if rb == ra {
            ra.to_string()
        } else {
            format!("{rb} -> {ra}")
        },
        before: db.to_string(),
        after: da.to_string(),
    })
}

type Change = (String, Option<String>, Option<String>);

fn changed(before: &BTreeMap<String, String>, after: &BTreeMap<String, String>) -> Vec<Change> {
    let mut names: Vec<&String> = before.keys().chain(after.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter(|n| before.get(*n) != after.get(*n))
        .map(|n| (n.clone(), before.get(n).cloned(), after.get(n).cloned()))
        .collect()
}

fn context_change(
    before: Option<&ContextFiles>,
    after: Option<&ContextFiles>,
) -> Option<MissReason> {
    let (b, a) = match (before, after) {
        (None, None) => return None,
        (Some(b), Some(a)) if b.digest == a.digest => return None,
        (Some(b), Some(a)) => (b, a),
        (None, Some(a)) => {
            return Some(files_reason(
                a.files.iter().map(|(p, _)| p.clone()).collect(),
            ))
        }
        (Some(b), None) => {
            return Some(files_reason(
                b.files.iter().map(|(p, _)| p.clone()).collect(),
            ))
        }
    };
    if b.files.is_empty() || a.files.is_empty() {
        return Some(MissReason::ContextFiles {
            files: Vec::new(),
            more: a.files.len().max(b.files.len()),
        });
    }
    let old: BTreeMap<&str, &str> = b
        .files
        .iter()
        .map(|(p, h)| (p.as_str(), h.as_str()))
        .collect();
    let new: BTreeMap<&str, &str> = a
        .files
        .iter()
        .map(|(p, h)| (p.as_str(), h.as_str()))
        .collect();
    let mut diff = Vec::new();
    for (p, h) in &new {
        match old.get(p) {
            None => diff.push(format!("{p} (added)")),
            Some(o) if o != h => diff.push(p.to_string()),
            _ => {}
        }
    }
    for p in old.keys().filter(|p| !new.contains_key(*p)) {
        diff.push(format!("{p} (removed)"));
    }
    Some(files_reason(diff))
}

fn files_reason(mut files: Vec<String>) -> MissReason {
    let more = files.len().saturating_sub(NAMED_FILES);
    files.truncate(NAMED_FILES);
    MissReason::ContextFiles { files, more }
}

/// Records collected during a build, written in one batch at its end.
#[derive(Default)]
pub(crate) struct Recorder {
    pending: Mutex<Vec<(String, Vec<u8>)>>,
}

impl Recorder {
    pub fn add(&self, id: String, record: &StepRecord) {
        let bytes = serde_json::to_vec(record).expect("step records serialize");
        self.pending
            .lock()
            .expect("recorder lock")
            .push((id, bytes));
    }

    /// Writes what was collected (one index transaction).
    pub fn flush(&self, root: &Root) -> Result<(), cache::CacheError> {
        let pending = std::mem::take(&mut *self.pending.lock().expect("recorder lock"));
        // A no-op rebuild records what is already there: no commit then.
        root.index.put_cache_changed(&pending).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(key: &str) -> StepRecord {
        StepRecord {
            instruction: "RUN echo $V".into(),
            key: key.into(),
            ..StepRecord::default()
        }
    }

    #[test]
    fn recorded_keys_are_checked_without_parsing() {
        let tmp = tempfile::tempdir().unwrap();
        let root = Root::open(tmp.path()).unwrap();
        let r = Recorder::default();
        r.add("step-history/x".into(), &rec("step/blake3:\"k\""));
        r.flush(&root).unwrap();
        assert!(is_recorded(&root, "step-history/x", "step/blake3:\"k\""));
        assert!(!is_recorded(&root, "step-history/x", "step/blake3:"));
        assert!(!is_recorded(&root, "step-history/y", "step/blake3:\"k\""));
    }

    #[test]
    fn context_files_of_several_sources_are_combined_and_labelled() {
        let part = |digest: &str, file: &str| ContextFiles {
            digest: digest.into(),
            files: vec![(file.into(), digest.into())],
        };
        assert_eq!(ContextFiles::combine(Vec::new()), None);
        // The main context alone is unchanged (old keys and records stay valid).
        assert_eq!(
            ContextFiles::combine(vec![("context", part("d1", "a.txt"))]),
            Some(part("d1", "a.txt"))
        );
        let named = ContextFiles::combine(vec![("libs", part("d1", "a.txt"))]).unwrap();
        assert_ne!(named.digest, "d1");
        assert_eq!(
            named.files,
            vec![("libs:a.txt".to_string(), "d1".to_string())]
        );
        // The source name is part of the digest: same files under another name differ.
        let other = ContextFiles::combine(vec![("docs", part("d1", "a.txt"))]).unwrap();
        assert_ne!(named.digest, other.digest);
        let both = ContextFiles::combine(vec![
            ("context", part("d1", "a.txt")),
            ("libs", part("d2", "b.txt")),
        ])
        .unwrap();
        let edited = ContextFiles::combine(vec![
            ("context", part("d1", "a.txt")),
            ("libs", part("d3", "b.txt")),
        ])
        .unwrap();
        assert_ne!(both.digest, edited.digest);
        let mut prev = rec("a");
        prev.context = Some(both);
        let mut cur = rec("b");
        cur.context = Some(edited);
        assert_eq!(
            reasons(Some(&prev), &cur, false)[0].to_string(),
            "context files changed: libs:b.txt"
        );
    }

    #[test]
    fn positions_are_read_from_progress_names() {
        assert_eq!(position("[build 2/4] RUN x"), (Some(2), "RUN x"));
        assert_eq!(position("[ 3/12] COPY a b"), (Some(3), "COPY a b"));
        assert_eq!(position("[internal] load"), (None, "[internal] load"));
        assert_eq!(position("ADD http://x"), (None, "ADD http://x"));
    }

    #[test]
    fn reasons_name_what_changed() {
        let cur = rec("b");
        assert_eq!(reasons(None, &cur, false), vec![MissReason::FirstBuild]);
        assert_eq!(reasons(Some(&cur), &cur, true), vec![MissReason::NoCache]);
        assert_eq!(
            reasons(Some(&cur), &cur, false),
            vec![MissReason::CacheGone]
        );

        let mut prev = rec("a");
        prev.args.insert("V".into(), "1".into());
        let mut cur = rec("b");
        cur.args.insert("V".into(), "2".into());
        cur.expanded.insert("V".into(), "2".into());
        let r = reasons(Some(&prev), &cur, false);
        assert_eq!(r.len(), 1, "{r:?}");
        assert_eq!(r[0].to_string(), "build arg V changed: \"1\" -> \"2\"");

        // An ENV value the RUN sees (not a build arg) is named as env.
        let mut prev = rec("a");
        prev.env.insert("MODE".into(), "debug".into());
        let mut cur = rec("b");
        cur.env.insert("MODE".into(), "release".into());
        cur.expanded.insert("MODE".into(), "release".into());
        assert_eq!(
            reasons(Some(&prev), &cur, false)
                .iter()
                .map(|r| r.to_string())
                .collect::<Vec<_>>(),
            ["env MODE changed: \"debug\" -> \"release\""]
        );

        let mut prev = rec("a");
        prev.context = Some(ContextFiles {
            digest: "x".into(),
            files: vec![("a.txt".into(), "1".into()), ("b.txt".into(), "2".into())],
        });
        let mut cur = rec("b");
        cur.context = Some(ContextFiles {
            digest: "y".into(),
            files: vec![("a.txt".into(), "9".into()), ("c.txt".into(), "3".into())],
        });
        assert_eq!(
            reasons(Some(&prev), &cur, false)[0].to_string(),
            "context files changed: a.txt, c.txt (added), b.txt (removed)"
        );

        let mut prev = rec("a");
        prev.inputs.push(InputRecord {
            name: "[1/2] FROM busybox".into(),
            key: "k1".into(),
            image: Some("busybox:latest@sha256:aaaa".into()),
        });
        let mut cur = rec("b");
        cur.inputs.push(InputRecord {
            name: "[1/2] FROM busybox".into(),
            key: "k2".into(),
            image: Some("busybox:latest@sha256:bbbb".into()),
        });
        assert_eq!(
            reasons(Some(&prev), &cur, false)[0].to_string(),
            "base image busybox:latest changed: aaaa -> bbbb"
        );
        cur.inputs[0].image = None;
        assert_eq!(
            reasons(Some(&prev), &cur, false),
            vec![MissReason::Parent {
                step: "[1/2] FROM busybox".into()
            }]
        );
    }
}
