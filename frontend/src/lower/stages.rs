//! Stages: what a stage's state is (`StageState`: its base, commands, and the state dispatch
//! builds up), which stage is which (names, `stage-N`, the `--target`), each stage's base and
//! platform from its FROM line (expanded with the global ARGs), and BuildKit's progress names.
//!
//! What a stage reads from other stages (`--from`, ONBUILD) is `dependencies`'; what each
//! instruction does to the state is `dispatch`'s.

use super::env::EnvList;
use super::platform;
use super::{context_key, Lowering, NamedContext, ResolvedImage};
use crate::ast::Span;
use crate::diagnostic::{suggest, FrontendError};
use crate::instructions::{Command, Instruction, Instructions, Stage};
use crate::shell::Expansion;
use graph::image::Image;
use graph::{Digest, Platform};
use reference::Reference;
use std::collections::BTreeMap;

/// One instruction to dispatch in a stage, with the stages it reads from.
#[derive(Debug, Clone)]
pub(super) struct StageCommand {
    pub ins: Instruction,
    pub onbuild: bool,
    /// Index of the stage (or image state) that `COPY --from` / `--mount from=` names.
    pub sources: Vec<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Base {
    Scratch,
    /// A normalized image reference (pinned by digest once resolved).
    Image(String),
    Stage(usize),
    /// A `--build-context NAME=DIR` directory, by context key: the tree is the directory, the
    /// image config empty.
    Local(String),
}

/// A stage (or an image named by `COPY --from`) and, once dispatched, its state.
#[derive(Debug, Clone)]
pub(super) struct StageState {
    pub name: Option<String>,
    /// The name used in messages and results: the stage name, `stage-N`, or the image.
    pub label: String,
    /// The progress prefix name: like `label`, but empty when the build has a single state
    /// (BuildKit prints `[1/3]` then).
    pub display: String,
    pub base: Base,
    /// The base name after ARG expansion, as written.
    pub base_name: String,
    pub platform: Option<Platform>,
    pub span: Span,
    pub commands: Vec<StageCommand>,
    pub deps: Vec<usize>,
    pub unregistered: bool,
    /// A named stage that a `--build-context` of the same name replaces (BuildKit: its
    /// commands are not run; its tree and config are the context's).
    pub replaced: bool,
    pub dispatched: bool,
    pub onbuild_init: bool,
    pub resolved: Option<Option<ResolvedImage>>,
    /// Global ARGs the FROM line expanded (name -> value).
    pub from_args: BTreeMap<String, String>,
    // Dispatch state.
    pub root: Option<Digest>,
    /// While `root` is None: the state's tree is this local context (by key) as it is on
    /// disk. Readers (`COPY --from`, `--mount from=`) use the directory itself; anything that
    /// builds on the tree first copies it into a layer (`Lowering::graph_root`).
    pub local: Option<String>,
    pub image: Image,
    pub env: EnvList,
    pub dir: String,
    pub user: String,
    pub args: Vec<(String, Option<String>)>,
    pub cmd_set: bool,
    pub seen_once: Vec<(&'static str, Span)>,
    pub workdir_set: bool,
    pub cmd_index: usize,
    pub cmd_total: usize,
}

impl StageState {
    pub(super) fn new(base_name: String, span: Span) -> Self {
        StageState {
            name: None,
            label: String::new(),
            display: String::new(),
            base: Base::Scratch,
            base_name,
            platform: None,
            span,
            commands: Vec::new(),
            deps: Vec::new(),
            unregistered: false,
            replaced: false,
            dispatched: false,
            onbuild_init: false,
            resolved: None,
            from_args: Default::default(),
            root: None,
            local: None,
            image: Image::default(),
            env: EnvList::default(),
            dir: "/".into(),
            user: String::new(),
            args: Vec::new(),
            cmd_set: false,
            seen_once: Vec::new(),
            workdir_set: false,
            cmd_index: 0,
            cmd_total: 0,
        }
    }

    /// The name used in messages and `--target` (`builder`, `stage-2`).
    pub fn stage_label(&self) -> String {
        self.label.clone()
    }

    /// BuildKit's progress prefix: `[builder 2/5] `.
    pub fn progress_name(&mut self, text: &str, onbuild: bool) -> String {
        if self.cmd_total == 0 {
            return text.to_string();
        }
        self.cmd_index += 1;
        let width = self.cmd_total.to_string().len();
        let mut out = String::from("[");
        if !self.display.is_empty() {
            out.push_str(&self.display);
            out.push(' ');
        }
        out.push_str(&format!("{:>width$}/{}] ", self.cmd_index, self.cmd_total));
        if onbuild {
            out.push_str("ONBUILD ");
        }
        out + text
    }
}

/// BuildKit numbers these in progress names (`[2/5] RUN ...`): ADD, COPY, RUN, WORKDIR.
pub(super) fn counts_as_step(command: &Command) -> bool {
    matches!(
        command,
        Command::Add(_) | Command::Copy(_) | Command::Run(_) | Command::Workdir(_)
    )
}

/// `RUN echo hi` -> `RUN echo hi` with the keyword upper-cased (progress names).
pub(super) fn uppercase_keyword(code: &str) -> String {
    match code.split_once(' ') {
        Some((k, rest)) => format!("{} {rest}", k.to_uppercase()),
        None => code.to_uppercase(),
    }
}

impl Lowering<'_> {
    /// One state per stage, with the base name expanded against the global ARGs.
    pub(super) fn build_states(&mut self, ins: &Instructions) -> Result<(), FrontendError> {
        for (i, st) in ins.stages.iter().enumerate() {
            let state = self.stage_state(i, st)?;
            self.states.push(state);
        }
        Ok(())
    }

    /// Stage `i` before dispatch: name and label, the global ARGs its FROM used, platform,
    /// base, and commands (a stage that a named context replaces keeps none of them).
    fn stage_state(&mut self, i: usize, st: &Stage) -> Result<StageState, FrontendError> {
        let base_name = self.expand_base_name(st)?;
        let mut state = StageState::new(base_name.result.clone(), st.span);
        for name in &base_name.matched {
            if let Some(v) = self.global_args.get(name) {
                state.from_args.insert(name.clone(), v.to_string());
            }
        }
        if let Some(p) = &st.platform {
            state.platform = Some(self.stage_platform(st, p)?);
        }
        state.name = st.name.clone();
        state.label = match &st.name {
            Some(n) => n.clone(),
            None => format!("stage-{i}"),
        };
        state.display = state.label.clone();
        // BuildKit (dockerfile2llb buildDispatchStates): a named context with the stage's
        // name replaces the stage; its commands are never run.
        if let Some(name) = &st.name {
            let key = context_key(name);
            if let Some(ctx) = self.opts.named_contexts.get(&key) {
                state.base = context_base(&key, ctx);
                state.replaced = true;
                return Ok(state);
            }
        }
        state.base = self.stage_base(&base_name.result, st.span)?;
        // BuildKit counts the FROM of every base that is not scratch or a stage.
        state.cmd_total = usize::from(matches!(state.base, Base::Image(_) | Base::Local(_)))
            + st.commands
                .iter()
                .filter(|c| counts_as_step(&c.command))
                .count();
        state.commands = st
            .commands
            .iter()
            .map(|c| StageCommand {
                ins: c.clone(),
                onbuild: false,
                sources: Vec::new(),
            })
            .collect();
        Ok(state)
    }

    /// FROM's base name expanded with the global ARGs (UndefinedArgInFrom for names no ARG
    /// declared); blank is an error.
    fn expand_base_name(&mut self, st: &Stage) -> Result<Expansion, FrontendError> {
        let ex = self
            .lexer
            .process_word(&st.base, &self.global_args)
            .map_err(|e| FrontendError::from_cause(e, st.span))?;
        for name in &ex.unmatched {
            if !self.declared_args.contains(name) {
                self.linter.run(
                    "UndefinedArgInFrom",
                    format!("FROM argument '{name}' is not declared"),
                    Some(st.span),
                );
            }
        }
        if ex.result.is_empty() {
            return Err(FrontendError::new(
                format!("base name ({}) should not be blank", st.base),
                st.span,
            )
            .with_hint("the ARG it uses has no value: give it a default or pass --build-arg"));
        }
        Ok(ex)
    }

    /// `FROM --platform=P`: expanded with the global ARGs and parsed, with BuildKit's checks
    /// of constant and redundant values.
    fn stage_platform(&mut self, st: &Stage, p: &str) -> Result<Platform, FrontendError> {
        let pex = self.lexer.process_word(p, &self.global_args).map_err(|e| {
            FrontendError::new(
                format!("failed to process arguments for platform {p}: {e}"),
                st.span,
            )
            .with_cause(e)
        })?;
        if pex.result.is_empty() {
            return Err(FrontendError::new(
                format!("empty platform value from expression {p}"),
                st.span,
            )
            .with_needle(p));
        }
        let plat = platform::parse(&pex.result).map_err(|e| {
            FrontendError::new(format!("failed to parse platform {p}: {e}"), st.span)
                .with_needle(p)
                .with_cause(e)
        })?;
        // BuildKit: a constant is fine when the stage name says which platform it is
        // for (`AS build-amd64`); any variable, even unset, is not a constant.
        let named_for_it = st.name.as_deref().is_some_and(|n| {
            n.contains(plat.os.as_str()) || n.contains(plat.architecture.as_str())
        });
        if pex.matched.is_empty() && pex.unmatched.is_empty() && !named_for_it {
            self.linter.run(
                "FromPlatformFlagConstDisallowed",
                format!("FROM --platform flag should not use constant value \"{p}\""),
                Some(st.span),
            );
        } else if p == "$TARGETPLATFORM" || p == "${TARGETPLATFORM}" {
            self.linter.run("RedundantTargetPlatform", "Setting platform to predefined $TARGETPLATFORM in FROM is redundant as this is the default behavior".into(), Some(st.span));
        }
        Ok(plat)
    }

    /// What a FROM names (expanded): the most recent stage of that name so far (BuildKit
    /// overwrites its name map), scratch, a named context, or an image.
    fn stage_base(&self, name: &str, span: Span) -> Result<Base, FrontendError> {
        if let Some(b) = self
            .states
            .iter()
            .rposition(|s| s.name.as_deref() == Some(name))
        {
            return Ok(Base::Stage(b));
        }
        if name == "scratch" {
            return Ok(Base::Scratch);
        }
        let key = context_key(name);
        Ok(match self.opts.named_contexts.get(&key) {
            Some(ctx) => context_base(&key, ctx),
            None => Base::Image(normalize(name, span)?),
        })
    }

    pub(super) fn resolve_target(&self) -> Result<usize, FrontendError> {
        let Some(target) = &self.opts.target else {
            return Ok(self.states.len() - 1);
        };
        let t = target.to_lowercase();
        if let Some(i) = self
            .states
            .iter()
            .rposition(|s| s.name.as_deref() == Some(t.as_str()))
        {
            return Ok(i);
        }
        let names: Vec<&str> = self
            .states
            .iter()
            .filter_map(|s| s.name.as_deref())
            .collect();
        let not_found = format!("target stage \"{target}\" could not be found");
        if let Some(s) = suggest(target, names.iter().copied()) {
            // BuildKit's text, the suggestion in the message.
            return Err(FrontendError::global(format!(
                "{not_found} (did you mean {s}?)"
            )));
        }
        let e = FrontendError::global(not_found);
        let e = if names.is_empty() {
            e.with_hint("this Dockerfile has no named stages (FROM IMAGE AS NAME)")
        } else {
            e.with_hint(format!("the named stages are: {}", names.join(", ")))
        };
        Err(e)
    }
}

/// The base a named context gives a state (`scratch`: the empty image, as BuildKit's
/// `docker-image://scratch`).
pub(super) fn context_base(key: &str, ctx: &NamedContext) -> Base {
    match ctx {
        NamedContext::Image(reference) if reference == "scratch" => Base::Scratch,
        NamedContext::Image(reference) => Base::Image(reference.clone()),
        NamedContext::Local { .. } => Base::Local(key.to_string()),
    }
}

/// docker's reference normalisation (`python:3` -> `docker.io/library/python:3`), with the
/// error pointing at the FROM/--from that named it.
pub(super) fn normalize(name: &str, span: Span) -> Result<String, FrontendError> {
    Reference::parse_docker_ref(name)
        .map(|r| r.to_string())
        .map_err(|e| {
            let mut err =
                FrontendError::new(format!("failed to parse stage name \"{name}\": {e}"), span)
                    .with_needle(name.to_string());
            let odd = name.chars().find(|c| !(c.is_ascii_alphanumeric() || "._-/:@".contains(*c)));
            if name.contains('#') {
                err = err.with_hint("a '#' after an instruction is not a comment in a Dockerfile");
            } else if let Some(c) = odd {
                err = err.with_hint(format!(
                    "'{c}' cannot appear in an image reference (letters, digits and . _ - / : @ can)"
                ));
            } else if name.chars().any(|c| c.is_ascii_uppercase()) {
                err = err.with_hint("repository names must be lowercase");
            }
            err
        })
}
