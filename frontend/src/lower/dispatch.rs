//! Dispatch: applies each instruction of a stage to its state, in order (BuildKit's
//! `dispatch`). It sets up a stage from its base (another stage, an image, a local context,
//! scratch), expands each instruction's words with the stage's variables (the UndefinedVar
//! check), and hands the instruction to its dispatcher: RUN in `run`, COPY and ADD in `copy`,
//! the config-only instructions in `config`; WORKDIR and ARG here. It also writes history.
//!
//! It knows the order and the expansion, not what the other instructions do.

use super::env::Expander;
use super::paths::normalize_workdir;
use super::stages::{uppercase_keyword, Base, StageCommand};
use super::Lowering;
use crate::ast::Span;
use crate::diagnostic::{suggest_exact, FrontendError};
use crate::instructions::{ArgDef, Command, Instruction};
use crate::lint::looks_like_secret;
use crate::shell::Lexer;
use graph::image::{History, Image};
use graph::time::rfc3339;
use graph::{FileAction, FileOp, Meta, Op, Platform, Source};
use std::collections::BTreeMap;

pub(super) const DEFAULT_PATH: &str =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const HISTORY_COMMENT: &str = "buildkit.dockerfile.v0";

/// BuildKit's `emptyImage`: the config of a scratch base (and of a local named context).
fn empty_image(platform: &Platform) -> Image {
    let mut image = Image {
        os: platform.os.clone(),
        architecture: platform.architecture.clone(),
        variant: (!platform.variant.is_empty()).then(|| platform.variant.clone()),
        ..Image::default()
    };
    image.config.working_dir = "/".into();
    image.config.env = vec![format!("PATH={DEFAULT_PATH}")];
    image
}

impl Lowering<'_> {
    /// Dispatches every reachable stage in definition order.
    pub(super) fn dispatch_all(&mut self, reachable: &[usize]) -> Result<(), FrontendError> {
        let images: Vec<usize> = reachable
            .iter()
            .copied()
            .filter(|i| self.states[*i].unregistered)
            .collect();
        for i in images {
            self.init_stage(i);
            self.states[i].dispatched = true;
        }
        for i in 0..self.states.len() {
            if !reachable.contains(&i) || self.states[i].dispatched {
                continue;
            }
            self.init_stage(i);
            let commands = self.states[i].commands.clone();
            for c in &commands {
                self.dispatch(i, c).map_err(|e| e.at(c.ins.span))?;
            }
            self.states[i].dispatched = true;
        }
        Ok(())
    }

    /// Sets a stage's initial state from its base: another stage, an image, a local named
    /// context, or scratch; then takes the base config's Env, WorkingDir and User.
    fn init_stage(&mut self, i: usize) {
        let platform = self.states[i]
            .platform
            .clone()
            .unwrap_or_else(|| self.target_platform.clone());
        match self.states[i].base.clone() {
            Base::Stage(b) => self.inherit_stage(i, b),
            Base::Image(reference) => self.init_from_image(i, reference, &platform),
            Base::Local(key) => {
                let st = &mut self.states[i];
                st.local = Some(key);
                if st.replaced {
                    // BuildKit loads a stage-replacing context with no image config and never
                    // dispatches the stage (resolveBaseImage marks it dispatched).
                    st.platform.get_or_insert(platform);
                    return;
                }
                // BuildKit: a named context without an image config gets emptyImage(platform),
                // the same config as scratch. Its FROM counts as step 1 but has no vertex of
                // its own: the directory is the tree ("[context NAME] load from client").
                st.progress_name("", false);
                st.image = empty_image(&platform);
            }
            Base::Scratch => self.states[i].image = empty_image(&platform),
        }
        self.apply_base_config(i, platform);
    }

    /// `FROM stage`: the stage's state so far (its ONBUILD triggers are not inherited).
    fn inherit_stage(&mut self, i: usize, b: usize) {
        let base = self.states[b].clone();
        let st = &mut self.states[i];
        st.root = base.root;
        st.local = base.local;
        st.image = base.image;
        st.image.config.on_build.clear();
        st.env = base.env;
        st.dir = base.dir;
        st.user = base.user;
        st.workdir_set = base.workdir_set;
        st.args.extend(base.args);
        if st.platform.is_none() {
            st.platform = base.platform;
        }
    }

    /// `FROM image`: its resolved config (an empty one when unknown), pinned by digest, and
    /// its source vertex unless the image has no layers at all.
    fn init_from_image(&mut self, i: usize, reference: String, platform: &Platform) {
        let resolved = self.states[i].resolved.clone().flatten();
        let (pinned, mut image) = match resolved {
            Some(r) => (r.reference, r.image),
            None => (reference, Image::default()),
        };
        image.created = None;
        image.config.on_build.clear();
        if image.os.is_empty() {
            image.os = platform.os.clone();
            image.architecture = platform.architecture.clone();
            image.variant = (!platform.variant.is_empty()).then(|| platform.variant.clone());
        }
        let empty_base = !image.history.is_empty()
            && image.rootfs.diff_ids.is_empty()
            && image.history.iter().all(|h| h.empty_layer);
        let st = &mut self.states[i];
        let name = st.progress_name(&format!("FROM {pinned}"), false);
        let meta = Meta {
            name,
            stage: st.stage_label(),
            lines: Some((st.span.start_line, st.span.end_line)),
            args: st.from_args.clone(),
            ..Meta::default()
        };
        st.image = image;
        if !empty_base {
            let op = Op::Source(Source::Image {
                reference: pinned,
                platform: platform.clone(),
            });
            self.states[i].root = Some(self.graph.add(op, Vec::new(), meta));
        }
    }

    /// The stage's platform, and its variables, WORKDIR and USER from the base's config
    /// (PATH defaulted as BuildKit does).
    fn apply_base_config(&mut self, i: usize, platform: Platform) {
        let st = &mut self.states[i];
        if st.platform.is_none() {
            st.platform = Some(platform);
        }
        if st.image.config.env_get("PATH").is_none() {
            st.image.config.env.push(format!("PATH={DEFAULT_PATH}"));
        }
        for kv in &st.image.config.env.clone() {
            let (k, v) = kv.split_once('=').unwrap_or((kv.as_str(), ""));
            st.env.inherit(k, v);
        }
        if !st.image.config.working_dir.is_empty() {
            st.dir = normalize_workdir(&st.dir, &st.image.config.working_dir.clone());
        }
        if !st.image.config.user.is_empty() {
            st.user = st.image.config.user.clone();
        }
    }

    /// One instruction of stage `i`: its words expanded, then its dispatcher.
    fn dispatch(&mut self, i: usize, c: &StageCommand) -> Result<(), FrontendError> {
        let span = c.ins.span;
        let (ins, used) = self.expand_instruction(i, &c.ins)?;
        match ins.command {
            Command::Env(kvs) => self.dispatch_env(i, &kvs, span)?,
            Command::Label(kvs) => self.dispatch_label(i, &kvs, span),
            Command::Maintainer(m) => self.dispatch_maintainer(i, m),
            Command::Onbuild(expr) => self.states[i].image.config.on_build.push(expr),
            Command::Workdir(path) => {
                self.dispatch_workdir(i, &ins.code, &path, c.onbuild, used, span)
            }
            Command::Cmd(form) => self.dispatch_cmd(i, "CMD", form, span),
            Command::Entrypoint(form) => self.dispatch_cmd(i, "ENTRYPOINT", form, span),
            Command::Healthcheck(h) => self.dispatch_healthcheck(i, h, span),
            Command::Expose(ports) => self.dispatch_expose(i, &ports, span)?,
            Command::User(user) => self.dispatch_user(i, user),
            Command::Volume(vols) => self.dispatch_volume(i, &vols, span)?,
            Command::StopSignal(sig) => self.dispatch_stopsignal(i, sig, span)?,
            Command::Shell(shell) => self.dispatch_shell(i, shell),
            Command::Arg(defs) => self.dispatch_arg(i, &defs, span)?,
            Command::Run(run) => self.dispatch_run(i, c, run, &ins.code, used)?,
            Command::Copy(copy) => self.dispatch_copy(i, c, copy.into(), &ins.code, used)?,
            Command::Add(add) => self.dispatch_copy(i, c, add.into(), &ins.code, used)?,
        }
        Ok(())
    }

    /// The instruction with the words BuildKit expands expanded against the stage's
    /// variables (heredoc sources of COPY/ADD with raw quotes, as its `ExpandRaw` does), and
    /// the variables that were used. Unset ones an ARG did not declare are UndefinedVar.
    fn expand_instruction(
        &mut self,
        i: usize,
        ins: &Instruction,
    ) -> Result<(Instruction, BTreeMap<String, String>), FrontendError> {
        let span = ins.span;
        let mut ins = ins.clone();
        // Borrowed, not cloned: a stage with 20k variables must not copy them per instruction.
        let env = &self.states[i].env;
        let mut ex = Expander::new(&self.lexer, env);
        ins.command
            .expand(&mut |w| ex.word(w))
            .map_err(|e| FrontendError::from_cause(e, span))?;
        if let Some(contents) = ins.command.heredoc_sources_mut() {
            let mut raw = Lexer::new('\\');
            raw.skip_process_quotes = true;
            let mut rex = Expander::new(&raw, env);
            for content in contents.iter_mut().filter(|c| c.expand) {
                content.data = rex
                    .word(&content.data)
                    .map_err(|e| FrontendError::from_cause(e, span))?;
            }
            ex.used.extend(rex.used);
        }
        let Expander { used, unset, .. } = ex;
        for name in unset {
            let declared = self.states[i].args.iter().any(|(k, _)| *k == name);
            if !declared && !matches!(ins.command, Command::Arg(_)) {
                // BuildKit's "did you mean": the closest variable the stage has, by case.
                let hint = suggest_exact(&name, self.states[i].env.keys())
                    .map(|s| format!(" (did you mean ${s}?)"))
                    .unwrap_or_default();
                self.linter.run(
                    "UndefinedVar",
                    format!("Usage of undefined variable '${name}'{hint}"),
                    Some(span),
                );
            }
        }
        Ok((ins, used))
    }

    /// MultipleInstructionsDisallowed: CMD, ENTRYPOINT and HEALTHCHECK once per stage. As
    /// BuildKit, the warning points at the previous one: it is the one that is ignored.
    pub(super) fn once(&mut self, i: usize, name: &'static str, span: Span) {
        let seen = &mut self.states[i].seen_once;
        match seen.iter_mut().find(|(n, _)| *n == name) {
            Some((_, previous)) => {
                let at = std::mem::replace(previous, span);
                self.linter.run("MultipleInstructionsDisallowed", format!("Multiple {name} instructions should not be used in the same stage because only the last one will be used"), Some(at));
            }
            None => seen.push((name, span)),
        }
    }

    /// SecretsUsedInArgOrEnv for an ARG or ENV (`keyword`) named `key`.
    pub(super) fn lint_secret_name(&mut self, keyword: &str, key: &str, span: Span) {
        if looks_like_secret(key) {
            self.linter.run(
                "SecretsUsedInArgOrEnv",
                format!(
                    "Do not use ARG or ENV instructions for sensitive data ({keyword} \"{key}\")"
                ),
                Some(span),
            );
        }
    }

    /// WORKDIR: the new directory (relative to the current one), created in a layer of its
    /// own unless it is `/`.
    fn dispatch_workdir(
        &mut self,
        i: usize,
        code: &str,
        path: &str,
        onbuild: bool,
        used: BTreeMap<String, String>,
        span: Span,
    ) {
        if !self.states[i].workdir_set && !path.starts_with('/') {
            self.linter.run("WorkdirRelativePath", format!("Relative workdir \"{path}\" can have unexpected results if the base image changes"), Some(span));
        }
        let written = uppercase_keyword(code);
        let shown = self.expanded_name(i, &written);
        let st = &mut self.states[i];
        st.workdir_set = true;
        let wd = normalize_workdir(&st.image.config.working_dir.clone(), path);
        st.image.config.working_dir = wd.clone();
        st.dir = wd.clone();
        let with_layer = wd != "/";
        if with_layer {
            let owner = (!st.image.config.user.is_empty()).then(|| st.image.config.user.clone());
            let name = st.progress_name(&shown, onbuild);
            let meta = Meta {
                name,
                stage: st.stage_label(),
                lines: Some((span.start_line, span.end_line)),
                expanded_from: used,
                ignore_cache: self.opts.no_cache,
                instruction: written,
                ..Meta::default()
            };
            let action = FileAction::Mkdir {
                path: wd.clone(),
                mode: 0o755,
                parents: true,
                owner,
                timestamp: self.epoch,
            };
            let input = self.graph_root(i);
            let d = self.graph.add(
                Op::File(FileOp {
                    on_input: true,
                    actions: vec![action],
                }),
                vec![input],
                meta,
            );
            self.states[i].root = Some(d);
        }
        self.history(i, format!("WORKDIR {wd}"), with_layer);
    }

    /// ARG in a stage: `--build-arg` wins, then the default (expanded), then the global ARG of
    /// the same name; the value joins the stage's variables (not the image's Env).
    fn dispatch_arg(&mut self, i: usize, defs: &[ArgDef], span: Span) -> Result<(), FrontendError> {
        let mut shown = Vec::new();
        for def in defs {
            self.declared_args.insert(def.key.clone());
            self.lint_secret_name("ARG", &def.key, span);
            let value = if let Some(v) = self.opts.build_args.get(&def.key) {
                Some(v.clone())
            } else if let Some(d) = &def.value {
                let mut ex = Expander::new(&self.lexer, &self.states[i].env);
                Some(ex.word(d).map_err(|e| FrontendError::from_cause(e, span))?)
            } else {
                self.global_args.get(&def.key).map(str::to_string)
            };
            let st = &mut self.states[i];
            if let Some(v) = &value {
                st.env
                    .set(&def.key, v)
                    .map_err(|e| FrontendError::from_cause(e, span))?;
            }
            st.args.push((def.key.clone(), value.clone()));
            shown.push(match &value {
                Some(v) => format!("{}={v}", def.key),
                None => def.key.clone(),
            });
        }
        self.history(i, format!("ARG {}", shown.join(" ")), false);
        Ok(())
    }

    /// Appends a history entry (BuildKit's `commitToHistory`).
    pub(super) fn history(&mut self, i: usize, created_by: String, with_layer: bool) {
        let created = self.epoch.map(rfc3339);
        self.states[i].image.history.push(History {
            created,
            created_by,
            comment: HISTORY_COMMENT.into(),
            empty_layer: !with_layer,
            ..History::default()
        });
    }
}
