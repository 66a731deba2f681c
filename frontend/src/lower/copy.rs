//! COPY and ADD: sources (context, stage, image, URL, git, heredoc), destination relative to
//! WORKDIR, --chown/--chmod/--link/--parents/--exclude/--checksum, and their history line, as
//! BuildKit's `dispatchCopy` lowers them: one file op whose inputs are the stage's tree and
//! what it copies from, or, with `--link`, a layer of its own merged onto the tree.
//!
//! It knows how each kind of source is read, not where the sources' vertices come from
//! (`sources`) nor how the stage's state was built (`dispatch`).

use super::git_ref;
use super::paths::{clean_path, go_path_clean, path_relative_to_workdir};
use super::stages::{uppercase_keyword, StageCommand};
use super::Lowering;
use crate::ast::Span;
use crate::diagnostic::FrontendError;
use crate::instructions::{AddCommand, CopyCommand, SourceContent, SourcesAndDest};
use graph::{CopyAction, Digest, FileAction, FileOp, Meta, Op, Source};
use std::collections::BTreeMap;

/// COPY and ADD as one: the flags they share and ADD's own (unset for COPY).
pub(super) struct CopySpec {
    is_add: bool,
    files: SourcesAndDest,
    /// COPY's `--from`, as written (named in errors; the stage is `StageCommand::sources`).
    from: Option<String>,
    chown: Option<String>,
    chmod: Option<String>,
    link: bool,
    parents: bool,
    exclude: Vec<String>,
    checksum: Option<String>,
    keep_git_dir: Option<bool>,
    unpack: Option<bool>,
}

impl From<CopyCommand> for CopySpec {
    fn from(c: CopyCommand) -> Self {
        CopySpec {
            is_add: false,
            files: c.files,
            from: c.from,
            chown: c.chown,
            chmod: c.chmod,
            link: c.link,
            parents: c.parents,
            exclude: c.exclude,
            checksum: None,
            keep_git_dir: None,
            unpack: None,
        }
    }
}

impl From<AddCommand> for CopySpec {
    fn from(a: AddCommand) -> Self {
        CopySpec {
            is_add: true,
            files: a.files,
            from: None,
            chown: a.chown,
            chmod: a.chmod,
            link: a.link,
            parents: false,
            exclude: a.exclude,
            checksum: a.checksum,
            keep_git_dir: a.keep_git_dir,
            unpack: a.unpack,
        }
    }
}

impl CopySpec {
    /// BuildKit's checks of `--chmod` and `--checksum` before any source is read.
    fn check(&self, span: Span) -> Result<(), FrontendError> {
        if let Some(mode) = &self.chmod {
            check_chmod(mode).map_err(|e| {
                FrontendError::from_cause(e, span).with_needle(format!("--chmod={mode}"))
            })?;
        }
        let Some(sum) = &self.checksum else {
            return Ok(());
        };
        let err = |m: &str| FrontendError::new(m, span);
        if self.files.paths.len() != 1 {
            return Err(err("checksum can't be specified for multiple sources"));
        }
        let src = &self.files.paths[0];
        if !is_http(src) && !is_git(src) {
            return Err(err("checksum requires HTTP(S) or Git sources"));
        }
        if is_http(src) && !valid_digest(sum) && unsupported_algorithm(sum) {
            return Err(err(&format!("unsupported digest algorithm: {sum}"))
                .with_hint("write --checksum=sha256:<64 hex digits>"));
        }
        if is_http(src) && !valid_digest(sum) {
            return Err(err(&format!("invalid checksum digest format: {sum}"))
                .with_hint("write --checksum=sha256:<64 hex digits>"));
        }
        Ok(())
    }

    /// The history line up to the sources: `COPY --parents --chown=U --chmod=M`.
    fn history_prefix(&self) -> String {
        let mut msg = String::from(if self.is_add { "ADD" } else { "COPY" });
        if self.parents {
            msg.push_str(" --parents");
        }
        if let Some(o) = &self.chown {
            msg.push_str(&format!(" --chown={o}"));
        }
        if let Some(m) = &self.chmod {
            msg.push_str(&format!(" --chmod={m}"));
        }
        msg
    }

    /// `--link` copies onto scratch and merges the layer after; BuildKit ignores it with
    /// `--chmod`.
    fn use_link(&self) -> bool {
        self.link && self.chmod.is_none()
    }

    /// The copy action every source starts from: destination, owner, mode, exclusions.
    fn base_action(&self, dest: String, timestamp: Option<i64>) -> CopyAction {
        CopyAction {
            input: 0,
            src: String::new(),
            dest,
            owner: self.chown.clone(),
            mode: self.chmod.clone(),
            follow_symlinks: false,
            dir_contents_only: false,
            allow_wildcard: false,
            allow_empty_wildcard: false,
            create_dest_path: true,
            attempt_unpack: false,
            include_patterns: Vec::new(),
            exclude_patterns: self.exclude.clone(),
            required_paths: Vec::new(),
            timestamp,
        }
    }
}

/// The file op a COPY/ADD becomes, as its sources are read: inputs (0 is the stage's tree
/// unless `--link`), one copy action per source, and the local paths it reads.
#[derive(Default)]
struct CopyPlan {
    inputs: Vec<Digest>,
    actions: Vec<FileAction>,
    context_paths: BTreeMap<String, Vec<String>>,
    /// The input that local sources (the context or `--from`) are read from, once added.
    local_input: Option<usize>,
}

impl CopyPlan {
    /// Adds an input; returns its index.
    fn input(&mut self, d: Digest) -> usize {
        self.inputs.push(d);
        self.inputs.len() - 1
    }
}

/// One COPY/ADD being lowered: what each of its sources needs to know.
struct CopyStep<'a> {
    /// The stage's index.
    stage: usize,
    command: &'a StageCommand,
    spec: CopySpec,
    /// The copy action every source starts from.
    base: CopyAction,
    span: Span,
}

impl Lowering<'_> {
    /// COPY or ADD (`code`, its text) in stage `i`.
    pub(super) fn dispatch_copy(
        &mut self,
        i: usize,
        c: &StageCommand,
        spec: CopySpec,
        code: &str,
        used: BTreeMap<String, String>,
    ) -> Result<(), FrontendError> {
        let span = c.ins.span;
        spec.check(span)?;
        let dest = path_relative_to_workdir(&self.states[i].dir, &spec.files.dest);
        let step = CopyStep {
            stage: i,
            command: c,
            base: spec.base_action(dest, self.epoch),
            spec,
            span,
        };
        let mut plan = CopyPlan::default();
        if !step.spec.use_link() {
            plan.input(self.graph_root(i));
        }
        let mut msg = step.spec.history_prefix();
        for src in &step.spec.files.paths {
            msg.push_str(&format!(" {src}"));
            let action = if is_git(src) {
                self.git_source(&step, src, &mut plan)?
            } else if is_http(src) {
                self.http_source(&step, src, &mut plan)?
            } else {
                self.local_copy_source(&step, src, &mut plan)?
            };
            plan.actions.push(FileAction::Copy(action));
        }
        for content in &step.spec.files.contents {
            msg.push_str(&format!(" <<{}", content.path));
            let action = self.heredoc_source(&step, content, &mut plan);
            plan.actions.push(FileAction::Copy(action));
        }
        msg.push_str(&format!(" {}", step.spec.files.dest));
        let written = uppercase_keyword(code);
        let shown = self.expanded_name(i, &written);
        let d = self.add_copy_op(&step, (&shown, &written), used, plan);
        self.states[i].root = Some(d);
        self.history(i, format!("{msg} # buildkit"), true);
        Ok(())
    }

    /// `ADD <git ref>`: the repository (at the ref, the subdirectory) as a fetched source.
    fn git_source(
        &mut self,
        step: &CopyStep,
        src: &str,
        plan: &mut CopyPlan,
    ) -> Result<CopyAction, FrontendError> {
        let copy = &step.spec;
        if !copy.is_add {
            return Err(
                FrontendError::new("source can't be a git ref for COPY", step.span)
                    .with_hint("use ADD for git sources"),
            );
        }
        let g = git_ref::parse(src).map_err(|m| FrontendError::new(m, step.span))?;
        // As BuildKit: the URL's keep-git-dir and commit must agree with the flags.
        if let (Some(flag), Some(query)) = (copy.keep_git_dir, g.keep_git_dir) {
            if flag != query {
                return Err(FrontendError::new(
                    "inconsistent keep-git-dir configuration",
                    step.span,
                ));
            }
        }
        if let (Some(flag), Some(query)) = (&copy.checksum, &g.checksum) {
            if flag != query {
                return Err(FrontendError::new(
                    format!("checksum mismatch {flag:?} != {query:?}"),
                    step.span,
                ));
            }
        }
        let op = Op::Source(Source::Git {
            remote: g.remote,
            reference: g.reference,
            subdir: g.subdir,
            keep_git_dir: g.keep_git_dir.or(copy.keep_git_dir).unwrap_or(false),
            checksum: g.checksum.or_else(|| copy.checksum.clone()),
            skip_submodules: g.submodules == Some(false),
        });
        let d = self.remote_source(step.stage, src, op);
        Ok(CopyAction {
            input: plan.input(d),
            src: "/".into(),
            ..step.base.clone()
        })
    }

    /// `ADD <url>`: the download as a fetched source, unpacked only with `--unpack`.
    fn http_source(
        &mut self,
        step: &CopyStep,
        src: &str,
        plan: &mut CopyPlan,
    ) -> Result<CopyAction, FrontendError> {
        let copy = &step.spec;
        if !copy.is_add {
            return Err(
                FrontendError::new("source can't be a URL for COPY", step.span)
                    .with_hint("use ADD for URLs, or RUN curl"),
            );
        }
        let filename = url_filename(src);
        let op = Op::Source(Source::Http {
            url: src.to_string(),
            filename: filename.clone(),
            checksum: copy.checksum.clone(),
        });
        let d = self.remote_source(step.stage, src, op);
        Ok(CopyAction {
            input: plan.input(d),
            src: format!("/{filename}"),
            attempt_unpack: copy.unpack.unwrap_or(false),
            ..step.base.clone()
        })
    }

    /// A path in the context or in the `--from` stage: wildcards allowed, directories copied
    /// by their contents, local archives unpacked by ADD; the path read is recorded for the
    /// step's cache key when the tree is a local directory.
    fn local_copy_source(
        &mut self,
        step: &CopyStep,
        src: &str,
        plan: &mut CopyPlan,
    ) -> Result<CopyAction, FrontendError> {
        let copy = &step.spec;
        let input = match plan.local_input {
            Some(n) => n,
            None => {
                let d = self.copy_from_tree(step)?;
                let n = plan.input(d);
                plan.local_input = Some(n);
                n
            }
        };
        let (src_path, include, required) = parents_split(src, copy.parents);
        let local = match step.command.sources.first() {
            None => {
                self.lint_ignored_source(step, src);
                Some("context".to_string())
            }
            Some(&s) => self.local_read_name(s),
        };
        if let Some(name) = local {
            plan.context_paths
                .entry(name)
                .or_default()
                .push(clean_path(src));
        }
        Ok(CopyAction {
            input,
            src: src_path,
            follow_symlinks: true,
            dir_contents_only: true,
            allow_wildcard: true,
            allow_empty_wildcard: true,
            attempt_unpack: copy.unpack.unwrap_or(copy.is_add),
            include_patterns: include,
            required_paths: required,
            ..step.base.clone()
        })
    }

    /// CopyIgnoredFile (BuildKit's `validateCopySourcePath`): a source of the main context
    /// that its `.dockerignore` excludes, as written (a wildcard is matched as text). Not
    /// checked when the file has exceptions (`!path`): what they bring back cannot be told
    /// without the files. `.` is only reported when a pattern excludes every root entry.
    fn lint_ignored_source(&mut self, step: &CopyStep, src: &str) {
        let Some(m) = &self.ignore else { return };
        if m.has_exceptions() {
            return;
        }
        let shown = go_path_clean(src);
        let rel = shown.trim_start_matches('/');
        let excluded = if rel.is_empty() || rel == "." {
            m.excludes_root_entries()
        } else {
            m.is_excluded(rel)
        };
        if excluded {
            let cmd = if step.spec.is_add { "Add" } else { "Copy" };
            self.linter.run(
                "CopyIgnoredFile",
                format!("Attempting to {cmd} file {shown:?} that is excluded by .dockerignore"),
                Some(step.span),
            );
        }
    }

    /// The tree local sources are read from: the `--from` stage (which must be dispatched
    /// already, i.e. defined above), or the main context.
    fn copy_from_tree(&mut self, step: &CopyStep) -> Result<Digest, FrontendError> {
        let Some(&s) = step.command.sources.first() else {
            return Ok(self.context_source());
        };
        if !self.states[s].dispatched {
            return Err(FrontendError::new(
                format!(
                    "cannot copy from stage \"{}\", it needs to be defined before current stage \"{}\"",
                    step.spec.from.as_deref().unwrap_or_default(),
                    self.states[step.stage].stage_label()
                ),
                step.span,
            )
            .with_hint("move that stage above this one"));
        }
        Ok(self.source_tree(s))
    }

    /// `COPY <<EOF /dst`: the heredoc written to a file of its own, then copied.
    fn heredoc_source(
        &mut self,
        step: &CopyStep,
        content: &SourceContent,
        plan: &mut CopyPlan,
    ) -> CopyAction {
        let path = clean_path(&content.path);
        let mk = FileAction::Mkfile {
            path: path.clone(),
            mode: 0o644,
            data: content.data.clone(),
            owner: None,
            timestamp: self.epoch,
        };
        let meta = Meta {
            name: "preparing inline document".into(),
            stage: self.states[step.stage].stage_label(),
            ..Meta::default()
        };
        let d = self.graph.add(
            Op::File(FileOp {
                on_input: false,
                actions: vec![mk],
            }),
            Vec::new(),
            meta,
        );
        CopyAction {
            input: plan.input(d),
            src: path,
            ..step.base.clone()
        }
    }

    /// The file op itself, with its progress name and metadata; with `--link`, its layer
    /// merged onto the stage's tree. Returns the stage's new root.
    fn add_copy_op(
        &mut self,
        step: &CopyStep,
        (progress, written): (&str, &str),
        used: BTreeMap<String, String>,
        plan: CopyPlan,
    ) -> Digest {
        let (i, span, use_link) = (step.stage, step.span, step.spec.use_link());
        let st = &mut self.states[i];
        let name = st.progress_name(progress, step.command.onbuild);
        let meta = Meta {
            name: name.clone(),
            stage: st.stage_label(),
            lines: Some((span.start_line, span.end_line)),
            expanded_from: used,
            context_paths: plan.context_paths,
            ignore_cache: self.opts.no_cache,
            instruction: written.to_string(),
            ..Meta::default()
        };
        let file_op = Op::File(FileOp {
            on_input: !use_link,
            actions: plan.actions,
        });
        if !use_link {
            return self.graph.add(file_op, plan.inputs, meta);
        }
        let layer = self.graph.add(file_op, plan.inputs, meta.clone());
        let root = self.graph_root(i);
        self.graph.add(
            Op::Merge,
            vec![root, layer],
            Meta {
                name: format!("LINK {name}"),
                ..meta
            },
        )
    }
}

/// `--parents`: a source `pivot/./pattern` copies `pattern` with its directories, from
/// `pivot` (`/` without a `/./`). Returns the path to copy from, the include patterns, and
/// the path that must exist when nothing in it is a wildcard. Without `--parents`, the
/// cleaned source.
fn parents_split(src: &str, parents: bool) -> (String, Vec<String>, Vec<String>) {
    if !parents {
        return (clean_path(src), Vec::new(), Vec::new());
    }
    let (pivot, pattern) = match src.split_once("/./") {
        Some((p, pat)) => (p.to_string(), pat.to_string()),
        None => ("/".to_string(), src.to_string()),
    };
    let pattern = clean_path(&pattern).trim_start_matches('/').to_string();
    let required = if !has_wildcards(&pivot) && !has_wildcards(&pattern) {
        vec![clean_path(&format!("{pivot}/{pattern}"))]
    } else {
        Vec::new()
    };
    (clean_path(&pivot), vec![pattern], required)
}

fn has_wildcards(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'*' | b'?' | b'[' => return true,
            b'\\' => i += 1,
            _ => {}
        }
        i += 1;
    }
    false
}

pub(super) fn is_http(src: &str) -> bool {
    (src.starts_with("http://") || src.starts_with("https://")) && !is_git(src)
}

/// Git sources as BuildKit recognises them: `git@host:repo`, `git://`, `ssh://`, or an
/// HTTP(S) URL whose path ends in `.git`.
pub(super) fn is_git(src: &str) -> bool {
    if src.starts_with("git@") || src.starts_with("git://") || src.starts_with("ssh://") {
        return true;
    }
    if src.starts_with("http://") || src.starts_with("https://") {
        let base = src.split(['#', '?']).next().unwrap_or(src);
        return base.ends_with(".git");
    }
    false
}

fn url_filename(url: &str) -> String {
    let no_scheme = url.split_once("://").map_or(url, |(_, r)| r);
    let path = no_scheme.find('/').map_or("", |i| &no_scheme[i..]);
    let path = path.split(['?', '#']).next().unwrap_or("");
    match path.trim_end_matches('/').rsplit('/').next() {
        Some(base) if !base.is_empty() && base != "." => base.to_string(),
        _ => "__unnamed__".to_string(),
    }
}

fn valid_digest(s: &str) -> bool {
    match s.split_once(':') {
        Some(("sha256", hex)) => {
            hex.len() == 64
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        }
        Some(("sha384", hex)) => hex.len() == 96 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
        Some(("sha512", hex)) => hex.len() == 128 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
        _ => false,
    }
}

/// A well-formed digest of an algorithm other than sha256/384/512 (`md5:...`): go-digest's
/// "unsupported digest algorithm", where a malformed one is an "invalid ... format".
fn unsupported_algorithm(sum: &str) -> bool {
    let Some((alg, hex)) = sum.split_once(':') else {
        return false;
    };
    let alg_ok = !alg.is_empty()
        && alg.split(['.', '+', '_', '-']).all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        });
    let hex_ok = !hex.is_empty()
        && hex
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"=_-".contains(&b));
    alg_ok && hex_ok && !matches!(alg, "sha256" | "sha384" | "sha512")
}

/// A `--chmod` value BuildKit refuses (its texts), as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChmodError {
    /// Starts with a digit, but is not octal or is above 07777.
    #[error("invalid chmod parameter: '{0}'. it should be octal string and between 0 and 07777")]
    Octal(String),
    #[error("invalid chmod parameter: '{0}'. it should be an octal number (0755) or a symbolic mode (u+x,go-w)")]
    Symbolic(String),
}

/// `--chmod`: octal up to 07777, or a symbolic mode (`u+x`, `go-w`, `a=rX,u+s`).
fn check_chmod(mode: &str) -> Result<(), ChmodError> {
    // BuildKit (dchapes-mode) reads a value that starts with a digit as octal, so `64a` gets
    // the octal text too (its tests assert it).
    if mode.starts_with(|c: char| c.is_ascii_digit()) {
        return match u32::from_str_radix(mode, 8) {
            Ok(v) if v <= 0o7777 => Ok(()),
            _ => Err(ChmodError::Octal(mode.to_string())),
        };
    }
    let symbolic = || ChmodError::Symbolic(mode.to_string());
    for clause in mode.split(',') {
        let who_end = clause
            .find(|c: char| !"ugoa".contains(c))
            .unwrap_or(clause.len());
        let mut rest = &clause[who_end..];
        if rest.is_empty() {
            return Err(symbolic());
        }
        while !rest.is_empty() {
            let op = rest.chars().next().unwrap_or(' ');
            if !"+-=".contains(op) {
                return Err(symbolic());
            }
            rest = &rest[1..];
            let perm_end = rest
                .find(|c: char| !"rwxXstugo".contains(c))
                .unwrap_or(rest.len());
            rest = &rest[perm_end..];
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chmod_values() {
        for ok in ["755", "0644", "7777", "u+x", "go-w", "a=rX,u+s"] {
            assert!(check_chmod(ok).is_ok(), "{ok}");
        }
        for bad in ["8", "17777", "u", "q+x", "u+x,", "64a"] {
            assert!(check_chmod(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sources() {
        assert!(is_git("https://github.com/moby/buildkit.git#v0.12:docs"));
        assert!(is_git("git@github.com:moby/buildkit.git"));
        assert!(!is_git("https://example.com/file.tar.gz"));
        assert_eq!(
            url_filename("https://example.com/a/b.tar.gz?x=1"),
            "b.tar.gz"
        );
        assert_eq!(url_filename("https://example.com"), "__unnamed__");
    }
}
