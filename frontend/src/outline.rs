//! What `docker buildx build --call targets|outline` shows, without building: BuildKit's
//! `frontend.targets` and `frontend.outline` subrequests (dockerfile2llb's ListTargets and
//! Dockerfile2Outline), their JSON (`result.json`) and the text buildx prints
//! (subrequests' PrintTargets and PrintOutline, Go tabwriter columns).
//!
//! - targets: every stage in order: name, the doc comment above its FROM (`# NAME text`),
//!   the base as written, the platform flag, its line; the last stage is the default.
//! - outline: the target stage (`--target`, else the last) and the stages it needs (its base
//!   stage, `COPY --from` and `RUN --mount from=` stages, recursively): the build args they
//!   declare and the global ARGs their FROM lines use (with what those ARGs' defaults use),
//!   each with its value after `--build-arg` overrides and its doc comment (`# NAME text`
//!   above the ARG); the secrets and ssh agents their RUN mounts name; sorted by line.
//!
//! Knows parsed instructions and word expansion; nothing is resolved or run.

use crate::ast::{Dockerfile, Node, Span};
use crate::diagnostic::FrontendError;
use crate::instructions::mounts::{parse_mount, MountType};
use crate::instructions::{parse_dockerfile, ArgDef, Command, Stage};
use crate::shell::{Lexer, VarLookup};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// A line range as BuildKit's `pb.Location` gives it (lines 1-based; no characters).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Location {
    pub ranges: Vec<Range>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Range {
    pub start: Position,
    pub end: Position,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Position {
    pub line: usize,
}

impl Location {
    fn of(span: Span) -> Location {
        Location {
            ranges: vec![Range {
                start: Position {
                    line: span.start_line,
                },
                end: Position {
                    line: span.end_line,
                },
            }],
        }
    }

    fn line(&self) -> usize {
        self.ranges.first().map_or(0, |r| r.start.line)
    }
}

/// One stage of `--call targets`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Target {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub default: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub base: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub platform: String,
    pub location: Location,
}

/// `--call targets`: the stages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetList {
    pub targets: Vec<Target>,
}

/// A build arg of the outline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Arg {
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub value: String,
    pub location: Location,
}

/// A secret or an ssh agent a RUN mount of the outline names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Needed {
    pub name: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub required: bool,
    pub location: Location,
}

/// `--call outline`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outline {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<Arg>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<Needed>,
    #[serde(skip_serializing_if = "Vec::is_empty", rename = "ssh")]
    pub ssh: Vec<Needed>,
}

/// BuildKit's getDocComment: the first comment line that starts with `NAME `, without it.
fn doc_comment(node: Option<&Node>, name: &str) -> String {
    if name.is_empty() {
        return String::new();
    }
    let prefix = format!("{name} ");
    node.into_iter()
        .flat_map(|n| n.prev_comment.iter())
        .find_map(|line| line.strip_prefix(&prefix))
        .unwrap_or("")
        .to_string()
}

/// The node that starts at `span` (instructions keep spans, nodes keep comments).
fn node_at(df: &Dockerfile, span: Span) -> Option<&Node> {
    df.nodes
        .iter()
        .find(|n| n.span.start_line == span.start_line)
}

/// The name a stage is written with in FROM (`AS Name` keeps its case in the description
/// lookup; the stage's name is lower-cased).
fn written_name(stage: &Stage) -> String {
    stage.name.clone().unwrap_or_default()
}

/// `--call targets`.
pub fn targets(df: &Dockerfile) -> Result<TargetList, FrontendError> {
    let ins = parse_dockerfile(df)?;
    let last = ins.stages.len().saturating_sub(1);
    let targets = ins
        .stages
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let name = written_name(s);
            Target {
                description: doc_comment(node_at(df, s.span), &name),
                name,
                default: i == last,
                base: s.base.clone(),
                platform: s.platform.clone().unwrap_or_default(),
                location: Location::of(s.span),
            }
        })
        .collect();
    Ok(TargetList { targets })
}

/// Variables for expansion: a map, remembering which names were looked up.
struct Vars<'a> {
    values: &'a BTreeMap<String, String>,
    used: std::cell::RefCell<BTreeSet<String>>,
}

impl VarLookup for Vars<'_> {
    fn lookup(&self, name: &str) -> Option<String> {
        self.used.borrow_mut().insert(name.to_string());
        self.values.get(name).cloned()
    }
}

/// `word` expanded with `values`; the names it read. An expansion error keeps the word.
fn expand(
    lexer: &Lexer,
    word: &str,
    values: &BTreeMap<String, String>,
) -> (String, BTreeSet<String>) {
    let vars = Vars {
        values,
        used: Default::default(),
    };
    let result = lexer
        .process_word(word, &vars)
        .map_or_else(|_| word.to_string(), |e| e.result);
    (result, vars.used.into_inner())
}

/// A declared ARG: its value, what its default read, where and its doc comment.
#[derive(Clone)]
struct ArgInfo {
    value: String,
    deps: BTreeSet<String>,
    span: Span,
    description: String,
}

/// Declares `defs` (one ARG instruction at `span`) over `values`/`infos`.
fn declare(
    lexer: &Lexer,
    df: &Dockerfile,
    defs: &[ArgDef],
    span: Span,
    build_args: &BTreeMap<String, String>,
    values: &mut BTreeMap<String, String>,
    infos: &mut BTreeMap<String, ArgInfo>,
) {
    for d in defs {
        let (default, mut deps) = match &d.value {
            Some(v) => {
                let (value, deps) = expand(lexer, v, values);
                (Some(value), deps)
            }
            None => (None, BTreeSet::new()),
        };
        // `ARG FOO=${FOO}x` reads the FOO before it, and so what that one read.
        if deps.contains(&d.key) {
            if let Some(previous) = infos.get(&d.key) {
                deps.extend(previous.deps.iter().cloned());
            }
        }
        let value = build_args
            .get(&d.key)
            .cloned()
            .or(default)
            .or_else(|| values.get(&d.key).cloned())
            .unwrap_or_default();
        values.insert(d.key.clone(), value.clone());
        infos.insert(
            d.key.clone(),
            ArgInfo {
                value,
                deps,
                span,
                description: doc_comment(node_at(df, span), &d.key),
            },
        );
    }
}

/// `--call outline` for `target` (None: the last stage), with `--build-arg` overrides.
pub fn outline(
    df: &Dockerfile,
    target: Option<&str>,
    build_args: &BTreeMap<String, String>,
) -> Result<Outline, FrontendError> {
    let ins = parse_dockerfile(df)?;
    let lexer = Lexer::new(df.directives.escape);
    let mut meta_values = BTreeMap::new();
    let mut meta = BTreeMap::new();
    for (defs, span) in &ins.meta_args {
        declare(
            &lexer,
            df,
            defs,
            *span,
            build_args,
            &mut meta_values,
            &mut meta,
        );
    }
    let index_of = |name: &str| {
        let lower = name.to_lowercase();
        ins.stages
            .iter()
            .rposition(|s| s.name.as_deref() == Some(lower.as_str()))
            .or_else(|| name.parse::<usize>().ok().filter(|&n| n < ins.stages.len()))
    };
    let top = match target {
        Some(t) => index_of(t).ok_or_else(|| {
            FrontendError::new(
                format!("target stage \"{t}\" could not be found"),
                Span::default(),
            )
        })?,
        None => ins.stages.len().checked_sub(1).ok_or_else(|| {
            FrontendError::new("the Dockerfile has no stage (no FROM)", Span::default())
        })?,
    };

    let mut args: Vec<Arg> = Vec::new();
    let mut secrets: Vec<Needed> = Vec::new();
    let mut ssh: Vec<Needed> = Vec::new();
    let mut meta_used = BTreeSet::new();
    let mut pending = vec![top];
    let mut seen = BTreeSet::new();
    while let Some(i) = pending.pop() {
        if !seen.insert(i) {
            continue;
        }
        let stage = &ins.stages[i];
        let (base, used) = expand(&lexer, &stage.base, &meta_values);
        meta_used.extend(used.into_iter().filter(|n| meta.contains_key(n)));
        if let Some(b) = index_of(&base).filter(|&b| b < i) {
            pending.push(b);
        }
        let mut values = BTreeMap::new();
        let mut infos = BTreeMap::new();
        for c in &stage.commands {
            match &c.command {
                Command::Arg(defs) => {
                    // A stage's ARG without a default takes the global ARG's value (and so
                    // uses the global ARG).
                    for d in defs.iter().filter(|d| d.value.is_none()) {
                        if let Some(v) = meta_values.get(&d.key) {
                            values.insert(d.key.clone(), v.clone());
                            meta_used.insert(d.key.clone());
                        }
                    }
                    declare(
                        &lexer,
                        df,
                        defs,
                        c.span,
                        build_args,
                        &mut values,
                        &mut infos,
                    );
                }
                Command::Copy(copy) => {
                    if let Some(from) = copy.from.as_deref().and_then(index_of) {
                        pending.push(from);
                    }
                }
                Command::Run(run) => {
                    for spec in &run.mount_specs {
                        let vars = Vars {
                            values: &values,
                            used: Default::default(),
                        };
                        let mut ex = |w: &str| lexer.process_word(w, &vars).map(|e| e.result);
                        let Ok(m) = parse_mount(spec, Some(&mut ex)) else {
                            continue;
                        };
                        if let Some(from) = m.from.as_deref().and_then(index_of) {
                            pending.push(from);
                        }
                        let entry = |name: String| Needed {
                            name,
                            required: m.required,
                            location: Location::of(c.span),
                        };
                        match m.kind {
                            MountType::Secret => {
                                let name = m.id.clone().filter(|s| !s.is_empty()).or_else(|| {
                                    m.target
                                        .as_deref()
                                        .and_then(|t| t.rsplit('/').next().map(str::to_string))
                                });
                                if let Some(n) = name {
                                    if !secrets.iter().any(|s| s.name == n) {
                                        secrets.push(entry(n));
                                    }
                                }
                            }
                            MountType::Ssh => {
                                let n = m.id.clone().filter(|s| !s.is_empty());
                                let n = n.unwrap_or_else(|| "default".to_string());
                                if !ssh.iter().any(|s| s.name == n) {
                                    ssh.push(entry(n));
                                }
                            }
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        for (name, info) in infos {
            if !args.iter().any(|a| a.name == name) {
                args.push(Arg {
                    name,
                    description: info.description,
                    value: info.value,
                    location: Location::of(info.span),
                });
            }
        }
    }
    // The global ARGs the FROM lines read, with what their defaults read.
    let mut stack: Vec<String> = meta_used.into_iter().collect();
    let mut done = BTreeSet::new();
    while let Some(name) = stack.pop() {
        if !done.insert(name.clone()) {
            continue;
        }
        let Some(info) = meta.get(&name) else {
            continue;
        };
        stack.extend(info.deps.iter().cloned());
        if !args.iter().any(|a| a.name == name) {
            args.push(Arg {
                name,
                description: info.description.clone(),
                value: info.value.clone(),
                location: Location::of(info.span),
            });
        }
    }
    args.sort_by_key(|a| a.location.line());
    secrets.sort_by_key(|s| s.location.line());
    ssh.sort_by_key(|s| s.location.line());
    let stage = &ins.stages[top];
    let name = written_name(stage);
    Ok(Outline {
        description: doc_comment(node_at(df, stage.span), &name),
        name,
        args,
        secrets,
        ssh,
    })
}

/// Go's text/tabwriter with flags 0 and a space as padding character: each tab-terminated
/// cell padded to its column's widest cell plus `padding`; the cell after the last tab as is.
fn tabwriter(rows: &[Vec<String>], padding: usize) -> String {
    let columns = rows
        .iter()
        .map(|r| r.len().saturating_sub(1))
        .max()
        .unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter(|r| c + 1 < r.len())
                .map(|r| r[c].chars().count())
                .max()
                .unwrap_or(0)
                + padding
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        for (c, cell) in row.iter().enumerate() {
            out.push_str(cell);
            if c + 1 < row.len() {
                let pad = widths[c].saturating_sub(cell.chars().count());
                out.push_str(&" ".repeat(pad));
            }
        }
        out.push('\n');
    }
    out
}

/// The text `docker buildx build --call targets` prints (BuildKit's PrintTargets).
pub fn print_targets(list: &TargetList) -> String {
    let mut rows = vec![vec!["TARGET".to_string(), "DESCRIPTION".to_string()]];
    for t in &list.targets {
        let name = match (t.name.is_empty(), t.default) {
            (true, true) => "(default)".to_string(),
            (false, true) => format!("{} (default)", t.name),
            _ => t.name.clone(),
        };
        rows.push(vec![name, t.description.clone()]);
    }
    tabwriter(&rows, 1)
}

/// The text `docker buildx build --call outline` prints (BuildKit's PrintOutline).
pub fn print_outline(o: &Outline) -> String {
    let mut out = String::new();
    if !o.name.is_empty() || !o.description.is_empty() {
        let name = if o.name.is_empty() {
            "(default)"
        } else {
            &o.name
        };
        let mut rows = vec![vec!["TARGET:".to_string(), name.to_string()]];
        if !o.description.is_empty() {
            rows.push(vec!["DESCRIPTION:".to_string(), o.description.clone()]);
        }
        out.push_str(&tabwriter(&rows, 1));
        out.push('\n');
    }
    if !o.args.is_empty() {
        let mut rows = vec![vec![
            "BUILD ARG".to_string(),
            "VALUE".to_string(),
            "DESCRIPTION".to_string(),
        ]];
        for a in &o.args {
            rows.push(vec![a.name.clone(), a.value.clone(), a.description.clone()]);
        }
        out.push_str(&tabwriter(&rows, 3));
        out.push('\n');
    }
    for (title, list) in [("SECRET", &o.secrets), ("SSH", &o.ssh)] {
        if list.is_empty() {
            continue;
        }
        let mut rows = vec![vec![title.to_string(), "REQUIRED".to_string()]];
        for s in list {
            let required = if s.required { "true" } else { "" };
            rows.push(vec![s.name.clone(), required.to_string()]);
        }
        out.push_str(&tabwriter(&rows, 3));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tabwriter_pads_like_go() {
        let rows = vec![
            vec!["TARGET".to_string(), "DESCRIPTION".to_string()],
            vec!["build".to_string(), "compiles".to_string()],
            vec!["binary (default)".to_string(), String::new()],
        ];
        assert_eq!(
            tabwriter(&rows, 1),
            "TARGET           DESCRIPTION\nbuild            compiles\nbinary (default) \n"
        );
    }
}
