//! The vertices a stage reads from or builds on: scratch, the main build context, the
//! directories of `--build-context NAME=DIR` (read in place, or copied into a layer when a
//! stage builds on one), and the sources ADD fetches. One vertex per source, shared by every
//! op that reads it (the graph deduplicates by content).
//!
//! It knows which state is a local context, not which instruction reads it.

use super::{local_source_name, Lowering, NamedContext};
use graph::{CopyAction, Digest, FileAction, FileOp, Meta, Op, Source};
use std::collections::BTreeMap;

impl Lowering<'_> {
    /// The main build context as a source (one vertex, shared by every op that reads it).
    pub(super) fn context_source(&mut self) -> Digest {
        let op = Op::Source(Source::Local {
            name: "context".into(),
            exclude_patterns: self.opts.dockerignore.clone(),
        });
        self.graph.add(
            op,
            Vec::new(),
            Meta {
                name: "[internal] load build context".into(),
                ..Meta::default()
            },
        )
    }

    /// A `--build-context NAME=DIR` directory as a source (one vertex per context), with the
    /// exclusion patterns of its own `.dockerignore`.
    pub(super) fn local_source(&mut self, key: &str) -> Digest {
        let exclude_patterns = match self.opts.named_contexts.get(key) {
            Some(NamedContext::Local { exclude_patterns }) => exclude_patterns.clone(),
            _ => Vec::new(),
        };
        let op = Op::Source(Source::Local {
            name: local_source_name(key),
            exclude_patterns,
        });
        self.graph.add(
            op,
            Vec::new(),
            Meta {
                name: format!("[context {key}] load from client"),
                ..Meta::default()
            },
        )
    }

    /// The vertex of an ADD source that is fetched (URL, git), named after it.
    pub(super) fn remote_source(&mut self, i: usize, src: &str, op: Op) -> Digest {
        let meta = Meta {
            name: format!("ADD {src}"),
            stage: self.states[i].stage_label(),
            ..Meta::default()
        };
        self.graph.add(op, Vec::new(), meta)
    }

    /// The digest of a stage's final state, materialising scratch when nothing was added and
    /// copying a local named context into a layer when the stage builds on it.
    pub(super) fn graph_root(&mut self, idx: usize) -> Digest {
        if let Some(d) = self.states[idx].root.clone() {
            return d;
        }
        let d = match self.states[idx].local.clone() {
            Some(key) => self.local_tree(idx, &key),
            None => self.scratch(),
        };
        self.states[idx].root = Some(d.clone());
        d
    }

    /// The tree `COPY --from` or `--mount from=` reads from state `s`: a local named context
    /// that nothing built on yet is read in place (its source vertex, so only the paths read
    /// go into the step's cache key); anything else is the state's root.
    pub(super) fn source_tree(&mut self, s: usize) -> Digest {
        match (&self.states[s].root, self.states[s].local.clone()) {
            (None, Some(key)) => self.local_source(&key),
            _ => self.graph_root(s),
        }
    }

    /// The local source name `source_tree(s)` reads from, if it is a local directory.
    pub(super) fn local_read_name(&self, s: usize) -> Option<String> {
        let st = &self.states[s];
        match (&st.root, &st.local) {
            (None, Some(key)) => Some(local_source_name(key)),
            _ => None,
        }
    }

    /// A local named context as a layer (`FROM NAME`, then RUN or COPY onto it): the whole
    /// directory (after its `.dockerignore`) copied onto scratch, owned by root as buildx sends it.
    fn local_tree(&mut self, idx: usize, key: &str) -> Digest {
        let source = self.local_source(key);
        let copy = CopyAction::new(0, "/", "/");
        let meta = Meta {
            name: format!("[context {key}] load from client"),
            stage: self.states[idx].stage_label(),
            context_paths: BTreeMap::from([(local_source_name(key), vec!["/".to_string()])]),
            ignore_cache: self.opts.no_cache,
            ..Meta::default()
        };
        self.graph.add(
            Op::File(FileOp {
                on_input: false,
                actions: vec![FileAction::Copy(copy)],
            }),
            vec![source],
            meta,
        )
    }

    fn scratch(&mut self) -> Digest {
        self.graph.add(
            Op::Source(Source::Scratch),
            Vec::new(),
            Meta {
                name: "scratch".into(),
                ..Meta::default()
            },
        )
    }
}
