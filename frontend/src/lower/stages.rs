//! Stages: which stage is which (names, indexes, `stage-N`), what each depends on (its base,
//! `COPY --from`, `RUN --mount=from=`, ONBUILD triggers), the target and the stages it needs,
//! and base-image resolution.

use super::env::EnvList;
use super::{Lowering, ResolvedImage};
use crate::ast::Span;
use crate::diagnostic::{suggest, FrontendError};
use crate::instructions::{self, mounts::parse_mount, Command, Instruction, Instructions};
use graph::image::Image;
use graph::{Digest, Platform};

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
    pub from_args: std::collections::BTreeMap<String, String>,
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
    pub seen_once: Vec<&'static str>,
    pub workdir_set: bool,
    pub cmd_index: usize,
    pub cmd_total: usize,
}

impl StageState {
    fn new(base_name: String, span: Span) -> Self {
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
            let ex = self
                .lexer
                .process_word(&st.base, &self.global_args)
                .map_err(|e| FrontendError::new(e.message, st.span))?;
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
            let mut state = StageState::new(ex.result.clone(), st.span);
            for name in &ex.matched {
                if let Some(v) = self.global_args.get(name) {
                    state.from_args.insert(name.clone(), v.to_string());
                }
            }
            if let Some(p) = &st.platform {
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
                    .with_needle(p.clone()));
                }
                let plat = super::platform::parse(&pex.result).map_err(|e| {
                    FrontendError::new(format!("failed to parse platform {p}: {e}"), st.span)
                        .with_needle(p.clone())
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
                state.platform = Some(plat);
            }
            state.name = st.name.clone();
            state.label = match &st.name {
                Some(n) => n.clone(),
                None => format!("stage-{i}"),
            };
            state.display = state.label.clone();
            // BuildKit (dockerfile2llb buildDispatchStates): a named context with the stage's
            // name replaces the stage; its commands are never run.
            if let Some(ctx) = st
                .name
                .as_ref()
                .and_then(|n| self.opts.named_contexts.get(&super::context_key(n)))
            {
                state.base =
                    context_base(&super::context_key(st.name.as_deref().unwrap_or("")), ctx);
                state.replaced = true;
                self.states.push(state);
                continue;
            }
            // The most recent stage of that name so far (BuildKit overwrites its name map).
            let base_stage = self
                .states
                .iter()
                .rposition(|s| s.name.as_deref() == Some(ex.result.as_str()));
            let key = super::context_key(&ex.result);
            state.base = match base_stage {
                Some(b) => Base::Stage(b),
                None if ex.result == "scratch" => Base::Scratch,
                None => match self.opts.named_contexts.get(&key) {
                    Some(ctx) => context_base(&key, ctx),
                    None => Base::Image(normalize(&ex.result, st.span)?),
                },
            };
            // BuildKit counts the FROM of every base that is not scratch or a stage.
            let mut total = usize::from(matches!(state.base, Base::Image(_) | Base::Local(_)));
            total += st
                .commands
                .iter()
                .filter(|c| {
                    matches!(
                        c.command,
                        Command::Add(_) | Command::Copy(_) | Command::Run(_) | Command::Workdir(_)
                    )
                })
                .count();
            state.cmd_total = total;
            state.commands = st
                .commands
                .iter()
                .map(|c| StageCommand {
                    ins: c.clone(),
                    onbuild: false,
                    sources: Vec::new(),
                })
                .collect();
            self.states.push(state);
        }
        Ok(())
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
        let mut e = FrontendError::global(format!("target stage \"{target}\" could not be found"));
        e = match suggest(target, names.iter().copied()) {
            Some(s) => e.with_hint(format!("did you mean {s}?")),
            None if names.is_empty() => {
                e.with_hint("this Dockerfile has no named stages (FROM IMAGE AS NAME)")
            }
            None => e.with_hint(format!("the named stages are: {}", names.join(", "))),
        };
        Err(e)
    }

    /// Links each `COPY --from` and `RUN --mount ... from=` to a stage (by name or index) or
    /// to a new image state, then rejects cycles.
    pub(super) fn build_dependencies(&mut self) -> Result<(), FrontendError> {
        for i in 0..self.states.len() {
            let cmds = std::mem::take(&mut self.states[i].commands);
            let mut linked = Vec::with_capacity(cmds.len());
            for mut c in cmds {
                c.sources = self.command_sources(&c.ins)?;
                self.states[i].deps.extend(c.sources.iter().copied());
                linked.push(c);
            }
            self.states[i].commands = linked;
        }
        if self.states.iter().filter(|s| !s.unregistered).count() == 1 && self.states.len() == 1 {
            self.states[0].display.clear();
        }
        self.check_cycles()
    }

    fn command_sources(&mut self, ins: &Instruction) -> Result<Vec<usize>, FrontendError> {
        let mut froms = Vec::new();
        match &ins.command {
            Command::Copy(c) => {
                if let Some(from) = &c.from {
                    let ex = self
                        .lexer
                        .process_word(from, &EnvList::default())
                        .map_err(|e| FrontendError::new(e.message, ins.span))?;
                    if ex.result != *from {
                        return Err(FrontendError::new(
                            "variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround",
                            ins.span,
                        )
                        .with_needle(format!("--from={from}")));
                    }
                    froms.push(from.clone());
                }
            }
            Command::Run(r) => {
                for spec in &r.mount_specs {
                    let m = parse_mount(spec, None)
                        .map_err(|e| FrontendError::from_cause(e, ins.span))?;
                    if let Some(from) = m.from {
                        froms.push(from);
                    }
                }
            }
            _ => {}
        }
        froms
            .iter()
            .map(|f| self.state_for_from(f, ins.span))
            .collect()
    }

    /// `--from=NAME|INDEX|IMAGE`: a stage by name or index, else an image.
    fn state_for_from(&mut self, from: &str, span: Span) -> Result<usize, FrontendError> {
        let lower = from.to_lowercase();
        if let Some(i) = self
            .states
            .iter()
            .rposition(|s| s.name.as_deref() == Some(lower.as_str()))
        {
            return Ok(i);
        }
        if let Ok(n) = from.parse::<i64>() {
            let count = self.states.len() as i64;
            if n < 0 || n >= count {
                return Err(FrontendError::new(format!("invalid stage index {n}"), span)
                    .with_hint(format!(
                        "stage indexes start at 0; this Dockerfile has {count} stage(s) before it"
                    )));
            }
            return Ok(n as usize);
        }
        let key = super::context_key(from);
        let base = match self.opts.named_contexts.get(&key) {
            Some(ctx) => context_base(&key, ctx),
            None => Base::Image(normalize(from, span)?),
        };
        if let Some(i) = self
            .states
            .iter()
            .position(|s| s.unregistered && s.base == base)
        {
            return Ok(i);
        }
        let mut st = StageState::new(from.to_string(), span);
        st.base = base;
        st.unregistered = true;
        st.label = from.to_string();
        st.display = from.to_string();
        self.states.push(st);
        Ok(self.states.len() - 1)
    }

    fn check_cycles(&self) -> Result<(), FrontendError> {
        fn visit(
            s: &[StageState],
            i: usize,
            path: &mut Vec<usize>,
            done: &mut Vec<bool>,
        ) -> Result<(), FrontendError> {
            if done[i] {
                return Ok(());
            }
            if let Some(pos) = path.iter().position(|p| *p == i) {
                let names: Vec<String> = path[pos..]
                    .iter()
                    .chain([&i])
                    .map(|j| s[*j].stage_label())
                    .collect();
                return Err(FrontendError::new(
                    format!(
                        "circular dependency detected on stage: {}",
                        names.join(" -> ")
                    ),
                    s[i].span,
                ));
            }
            path.push(i);
            let mut next = s[i].deps.clone();
            if let Base::Stage(b) = s[i].base {
                next.push(b);
            }
            for n in next {
                visit(s, n, path, done)?;
            }
            path.pop();
            done[i] = true;
            Ok(())
        }
        let mut done = vec![false; self.states.len()];
        for i in 0..self.states.len() {
            visit(&self.states, i, &mut Vec::new(), &mut done)?;
        }
        Ok(())
    }

    fn reachable_from(&self, target: usize) -> Vec<usize> {
        let mut seen = vec![false; self.states.len()];
        let mut stack = vec![target];
        while let Some(i) = stack.pop() {
            if std::mem::replace(&mut seen[i], true) {
                continue;
            }
            if let Base::Stage(b) = self.states[i].base {
                stack.push(b);
            }
            stack.extend(self.states[i].deps.iter().copied());
        }
        (0..self.states.len()).filter(|i| seen[*i]).collect()
    }

    /// The stages the target needs, after resolving base images and adding ONBUILD triggers
    /// (which may name further stages).
    pub(super) fn resolve_reachable(&mut self, target: usize) -> Result<Vec<usize>, FrontendError> {
        loop {
            let reachable = self.reachable_from(target);
            let mut new_deps = false;
            for &i in &reachable {
                self.resolve_base(i)?;
                if self.states[i].onbuild_init || self.states[i].unregistered {
                    continue;
                }
                self.states[i].onbuild_init = true;
                let mut triggers: Vec<String> = match &self.states[i].resolved {
                    Some(Some(r)) => r.image.config.on_build.clone(),
                    _ => Vec::new(),
                };
                if let Base::Stage(b) = self.states[i].base {
                    for c in &self.states[b].commands {
                        if let Command::Onbuild(expr) = &c.ins.command {
                            triggers.push(expr.clone());
                        }
                    }
                }
                let mut cmds = Vec::new();
                for t in triggers {
                    let ins = self.parse_trigger(&t, self.states[i].span)?;
                    let sources = self.command_sources(&ins)?;
                    new_deps |= !sources.is_empty();
                    self.states[i].deps.extend(sources.iter().copied());
                    if matches!(
                        ins.command,
                        Command::Add(_) | Command::Copy(_) | Command::Run(_) | Command::Workdir(_)
                    ) {
                        self.states[i].cmd_total += 1;
                    }
                    cmds.push(StageCommand {
                        ins,
                        onbuild: true,
                        sources,
                    });
                }
                cmds.append(&mut self.states[i].commands);
                self.states[i].commands = cmds;
            }
            if !new_deps {
                self.check_cycles()?;
                return Ok(reachable);
            }
        }
    }

    fn parse_trigger(&self, trigger: &str, span: Span) -> Result<Instruction, FrontendError> {
        let df = crate::parser::parse(trigger.as_bytes()).map_err(|e| {
            FrontendError::new(
                format!("invalid ONBUILD trigger {trigger:?}: {}", e.message),
                span,
            )
        })?;
        if df.nodes.len() != 1 {
            return Err(FrontendError::new(
                "onbuild trigger should be a single expression",
                span,
            ));
        }
        let mut node = df.nodes[0].clone();
        node.span = span;
        instructions::parse_instruction(&node).map_err(|e| FrontendError {
            span,
            needle: None,
            ..e
        })
    }

    /// Asks the resolver for an image base's config, once.
    fn resolve_base(&mut self, i: usize) -> Result<(), FrontendError> {
        let Base::Image(reference) = self.states[i].base.clone() else {
            return Ok(());
        };
        if self.states[i].resolved.is_some() {
            return Ok(());
        }
        let platform = self.states[i]
            .platform
            .clone()
            .unwrap_or_else(|| self.target_platform.clone());
        let span = self.states[i].span;
        let resolved = self
            .resolver
            .resolve(&reference, &platform)
            .map_err(|e| FrontendError::new(format!("{}: {e}", self.states[i].base_name), span))?;
        if resolved.is_none()
            && !self.states[i].unregistered
            && !self.unresolved_reported.contains(&reference)
        {
            self.unresolved_reported.push(reference.clone());
            self.linter.note(
                format!(
                    "base image {reference} is not in the local store: lowered with an empty image config \
                     (its ENV, WORKDIR, USER, SHELL and ONBUILD are unknown here)"
                ),
                Some(span),
            );
        }
        self.states[i].resolved = Some(resolved);
        Ok(())
    }
}

/// The base a named context gives a state.
fn context_base(key: &str, ctx: &super::NamedContext) -> Base {
    match ctx {
        super::NamedContext::Image(reference) => Base::Image(reference.clone()),
        super::NamedContext::Local { .. } => Base::Local(key.to_string()),
    }
}

/// docker's reference normalisation (`python:3` -> `docker.io/library/python:3`), with the
/// error pointing at the FROM/--from that named it.
fn normalize(name: &str, span: Span) -> Result<String, FrontendError> {
    reference::Reference::parse_docker_ref(name)
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
