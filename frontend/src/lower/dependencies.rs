//! Which stages a stage needs: each `COPY --from` and `RUN --mount=from=` linked to a stage
//! (by name or index) or to a state of its own for an image or named context, ONBUILD
//! triggers of the base (which may link more), cycles refused, the stages the target
//! reaches, and their base images resolved (the one question lowering asks outside).
//!
//! It knows instructions only for what they read from other stages.

use super::env::EnvList;
use super::stages::{context_base, counts_as_step, normalize, Base, StageCommand, StageState};
use super::{context_key, Lowering};
use crate::ast::Span;
use crate::diagnostic::FrontendError;
use crate::instructions::{mounts::parse_mount, parse_instruction, Command, Instruction};
use crate::parser;
use graph::Platform;

impl Lowering<'_> {
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
        let key = context_key(from);
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
                    if counts_as_step(&ins.command) {
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
        let df = parser::parse(trigger.as_bytes()).map_err(|e| {
            FrontendError::new(format!("invalid ONBUILD trigger {trigger:?}: {e}"), span)
                .with_cause(e)
        })?;
        if df.nodes.len() != 1 {
            return Err(FrontendError::new(
                "onbuild trigger should be a single expression",
                span,
            ));
        }
        let mut node = df.nodes[0].clone();
        node.span = span;
        parse_instruction(&node).map_err(|e| FrontendError {
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
        let resolved = self.resolver.resolve(&reference, &platform).map_err(|e| {
            FrontendError::new(format!("{}: {e}", self.states[i].base_name), span).with_cause(e)
        })?;
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
        if let Some(r) = resolved.as_ref().filter(|_| !self.states[i].unregistered) {
            let img = &r.image;
            // BuildKit's validateBaseImagePlatform: OS and architecture (variants aside).
            if !img.os.is_empty()
                && (img.os != platform.os || img.architecture != platform.architecture)
            {
                let actual = Platform {
                    os: img.os.clone(),
                    architecture: img.architecture.clone(),
                    variant: img.variant.clone().unwrap_or_default(),
                };
                self.linter.run(
                    "InvalidBaseImagePlatform",
                    format!(
                        "Base image {} was pulled with platform \"{actual}\", expected \"{platform}\" for current build",
                        self.states[i].base_name
                    ),
                    Some(span),
                );
            }
        }
        self.states[i].resolved = Some(resolved);
        Ok(())
    }
}
