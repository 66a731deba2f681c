//! COPY and ADD: sources (context, stage, image, URL, git, heredoc), destination relative to
//! WORKDIR, --chown/--chmod/--link/--parents/--exclude/--checksum, and their history line, as
//! BuildKit's `dispatchCopy` lowers them.

use super::paths::{clean_path, path_relative_to_workdir};
use super::stages::{uppercase_keyword, StageCommand};
use super::Lowering;
use crate::diagnostic::FrontendError;
use crate::instructions::{Command, Instruction};
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
            Some(super::NamedContext::Local { exclude_patterns }) => exclude_patterns.clone(),
            _ => Vec::new(),
        };
        let op = Op::Source(Source::Local {
            name: super::local_source_name(key),
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
    fn remote_source(&mut self, i: usize, src: &str, op: Op) -> Digest {
        let meta = Meta {
            name: format!("ADD {src}"),
            stage: self.states[i].stage_label(),
            ..Meta::default()
        };
        self.graph.add(op, Vec::new(), meta)
    }

    pub(super) fn dispatch_copy(
        &mut self,
        i: usize,
        c: &StageCommand,
        ins: Instruction,
        used: BTreeMap<String, String>,
    ) -> Result<(), FrontendError> {
        let span = ins.span;
        let err = |m: String| FrontendError::new(m, span);
        let is_add = matches!(ins.command, Command::Add(_));
        let (files, chown, chmod, link, exclude, parents, checksum, keep_git_dir, unpack) =
            match ins.command {
                Command::Copy(c) => (
                    c.files, c.chown, c.chmod, c.link, c.exclude, c.parents, None, false, None,
                ),
                Command::Add(a) => (
                    a.files,
                    a.chown,
                    a.chmod,
                    a.link,
                    a.exclude,
                    false,
                    a.checksum,
                    a.keep_git_dir,
                    a.unpack,
                ),
                _ => unreachable!("dispatch_copy is called for COPY and ADD"),
            };
        let dest = path_relative_to_workdir(&self.states[i].dir, &files.dest);
        if let Some(mode) = &chmod {
            check_chmod(mode).map_err(|e| {
                FrontendError::from_cause(e, span).with_needle(format!("--chmod={mode}"))
            })?;
        }
        if let Some(sum) = &checksum {
            if files.paths.len() != 1 {
                return Err(err(
                    "checksum can't be specified for multiple sources".into()
                ));
            }
            let src = &files.paths[0];
            if !is_http(src) && !is_git(src) {
                return Err(err("checksum requires HTTP(S) or Git sources".into()));
            }
            if is_http(src) && !valid_digest(sum) {
                return Err(err(format!("invalid checksum digest format: {sum}"))
                    .with_hint("write --checksum=sha256:<64 hex digits>"));
            }
        }

        let mut msg = String::from(if is_add { "ADD" } else { "COPY" });
        if parents {
            msg.push_str(" --parents");
        }
        if let Some(o) = &chown {
            msg.push_str(&format!(" --chown={o}"));
        }
        if let Some(m) = &chmod {
            msg.push_str(&format!(" --chmod={m}"));
        }

        // Input 0 is the stage's tree unless --link copies onto scratch and merges after.
        let use_link = link && chmod.is_none();
        let mut inputs: Vec<Digest> = if use_link {
            Vec::new()
        } else {
            vec![self.graph_root(i)]
        };
        let mut actions = Vec::new();
        let mut context_paths: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let source_state = c.sources.first().copied();
        let mut local_input: Option<usize> = None;
        let base = CopyAction {
            input: 0,
            src: String::new(),
            dest: dest.clone(),
            owner: chown.clone(),
            mode: chmod.clone(),
            follow_symlinks: false,
            dir_contents_only: false,
            allow_wildcard: false,
            allow_empty_wildcard: false,
            create_dest_path: true,
            attempt_unpack: false,
            include_patterns: Vec::new(),
            exclude_patterns: exclude.clone(),
            required_paths: Vec::new(),
            timestamp: self.epoch,
        };
        for src in &files.paths {
            msg.push_str(&format!(" {src}"));
            if is_git(src) {
                if !is_add {
                    return Err(err("source can't be a git ref for COPY".into())
                        .with_hint("use ADD for git sources"));
                }
                let (remote, reference, subdir) = split_git(src);
                let op = Op::Source(Source::Git {
                    remote,
                    reference,
                    subdir,
                    keep_git_dir,
                    checksum: checksum.clone(),
                });
                inputs.push(self.remote_source(i, src, op));
                actions.push(FileAction::Copy(CopyAction {
                    input: inputs.len() - 1,
                    src: "/".into(),
                    ..base.clone()
                }));
            } else if is_http(src) {
                if !is_add {
                    return Err(err("source can't be a URL for COPY".into())
                        .with_hint("use ADD for URLs, or RUN curl"));
                }
                let filename = url_filename(src);
                let op = Op::Source(Source::Http {
                    url: src.clone(),
                    filename: filename.clone(),
                    checksum: checksum.clone(),
                });
                inputs.push(self.remote_source(i, src, op));
                actions.push(FileAction::Copy(CopyAction {
                    input: inputs.len() - 1,
                    src: format!("/{filename}"),
                    attempt_unpack: unpack.unwrap_or(false),
                    ..base.clone()
                }));
            } else {
                let input = match local_input {
                    Some(n) => n,
                    None => {
                        let d = match source_state {
                            Some(s) => {
                                if !self.states[s].dispatched {
                                    let from = match &c.ins.command {
                                        Command::Copy(cc) => cc.from.clone().unwrap_or_default(),
                                        _ => String::new(),
                                    };
                                    return Err(err(format!(
                                        "cannot copy from stage \"{from}\", it needs to be defined before current stage \"{}\"",
                                        self.states[i].stage_label()
                                    ))
                                    .with_hint("move that stage above this one"));
                                }
                                self.source_tree(s)
                            }
                            None => self.context_source(),
                        };
                        inputs.push(d);
                        local_input = Some(inputs.len() - 1);
                        inputs.len() - 1
                    }
                };
                let (src_path, include, required) = if parents {
                    let (pivot, pattern) = match src.split_once("/./") {
                        Some((p, pat)) => (p.to_string(), pat.to_string()),
                        None => ("/".to_string(), src.clone()),
                    };
                    let pattern = clean_path(&pattern).trim_start_matches('/').to_string();
                    let required = if !has_wildcards(&pivot) && !has_wildcards(&pattern) {
                        vec![clean_path(&format!("{pivot}/{pattern}"))]
                    } else {
                        Vec::new()
                    };
                    (clean_path(&pivot), vec![pattern], required)
                } else {
                    (clean_path(src), Vec::new(), Vec::new())
                };
                let local = match source_state {
                    None => Some("context".to_string()),
                    Some(s) => self.local_read_name(s),
                };
                if let Some(name) = local {
                    context_paths.entry(name).or_default().push(clean_path(src));
                }
                actions.push(FileAction::Copy(CopyAction {
                    input,
                    src: src_path,
                    follow_symlinks: true,
                    dir_contents_only: true,
                    allow_wildcard: true,
                    allow_empty_wildcard: true,
                    attempt_unpack: unpack.unwrap_or(is_add),
                    include_patterns: include,
                    required_paths: required,
                    ..base.clone()
                }));
            }
        }
        for content in &files.contents {
            msg.push_str(&format!(" <<{}", content.path));
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
                stage: self.states[i].stage_label(),
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
            inputs.push(d);
            actions.push(FileAction::Copy(CopyAction {
                input: inputs.len() - 1,
                src: path,
                ..base.clone()
            }));
        }
        msg.push_str(&format!(" {}", files.dest));

        let st = &mut self.states[i];
        let name = st.progress_name(&uppercase_keyword(&ins.code), c.onbuild);
        let meta = Meta {
            name: name.clone(),
            stage: st.stage_label(),
            lines: Some((span.start_line, span.end_line)),
            expanded_from: used,
            context_paths,
            ignore_cache: self.opts.no_cache,
            ..Meta::default()
        };
        let file_op = Op::File(FileOp {
            on_input: !use_link,
            actions,
        });
        let d = if use_link {
            let layer = self.graph.add(file_op, inputs, meta.clone());
            let root = self.graph_root(i);
            self.graph.add(
                Op::Merge,
                vec![root, layer],
                Meta {
                    name: format!("LINK {name}"),
                    ..meta
                },
            )
        } else {
            self.graph.add(file_op, inputs, meta)
        };
        self.states[i].root = Some(d);
        self.history(i, format!("{msg} # buildkit"), true);
        Ok(())
    }
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

fn is_http(src: &str) -> bool {
    (src.starts_with("http://") || src.starts_with("https://")) && !is_git(src)
}

/// Git sources as BuildKit recognises them: `git@host:repo`, `git://`, `ssh://`, or an
/// HTTP(S) URL whose path ends in `.git`.
fn is_git(src: &str) -> bool {
    if src.starts_with("git@") || src.starts_with("git://") || src.starts_with("ssh://") {
        return true;
    }
    if src.starts_with("http://") || src.starts_with("https://") {
        let base = src.split(['#', '?']).next().unwrap_or(src);
        return base.ends_with(".git");
    }
    false
}

/// `remote#ref:subdir` -> (remote, ref, subdir).
fn split_git(src: &str) -> (String, String, String) {
    let (remote, fragment) = src.split_once('#').unwrap_or((src, ""));
    let (reference, subdir) = fragment.split_once(':').unwrap_or((fragment, ""));
    (
        remote.to_string(),
        reference.to_string(),
        subdir.to_string(),
    )
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

/// A `--chmod` value BuildKit refuses (its texts), as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChmodError {
    /// All digits, but not octal or above 07777.
    #[error("invalid chmod parameter: '{0}'. it should be octal string and between 0 and 07777")]
    Octal(String),
    #[error("invalid chmod parameter: '{0}'. it should be an octal number (0755) or a symbolic mode (u+x,go-w)")]
    Symbolic(String),
}

/// `--chmod`: octal up to 07777, or a symbolic mode (`u+x`, `go-w`, `a=rX,u+s`).
fn check_chmod(mode: &str) -> Result<(), ChmodError> {
    if mode.bytes().all(|b| b.is_ascii_digit()) && !mode.is_empty() {
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
        for bad in ["8", "17777", "u", "q+x", "u+x,"] {
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
        assert_eq!(
            split_git("https://h/r.git#main:sub"),
            ("https://h/r.git".into(), "main".into(), "sub".into())
        );
    }
}
