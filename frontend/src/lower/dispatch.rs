//! Dispatch: applies each instruction of a stage to its state, in order. Config instructions
//! (ENV, LABEL, CMD, ...) change the image config and write history exactly as BuildKit's
//! `dispatch*` functions do; RUN and COPY/ADD are in `run` and `copy`.

use super::env::Expander;
use super::paths::normalize_workdir;
use super::ports::parse_port_spec;
use super::stages::{uppercase_keyword, Base, StageCommand};
use super::Lowering;
use crate::diagnostic::FrontendError;
use crate::duration;
use crate::instructions::{ArgDef, Command, Instruction};
use crate::lint::looks_like_secret;
use graph::image::{Empty, HealthConfig, History, Image};
use graph::{FileAction, FileOp, Meta, Op, Source};

pub(super) const DEFAULT_PATH: &str =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const HISTORY_COMMENT: &str = "buildkit.dockerfile.v0";

/// BuildKit's `emptyImage`: the config of a scratch base (and of a local named context).
fn empty_image(platform: &graph::Platform) -> Image {
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
            self.init_stage(i)?;
            self.states[i].dispatched = true;
        }
        for i in 0..self.states.len() {
            if !reachable.contains(&i) || self.states[i].dispatched {
                continue;
            }
            self.init_stage(i)?;
            let commands = self.states[i].commands.clone();
            for c in &commands {
                self.dispatch(i, c).map_err(|e| e.at(c.ins.span))?;
            }
            self.states[i].dispatched = true;
        }
        Ok(())
    }

    /// Sets a stage's initial state from its base: another stage, an image, a local named
    /// context, or scratch.
    fn init_stage(&mut self, i: usize) -> Result<(), FrontendError> {
        let platform = self.states[i]
            .platform
            .clone()
            .unwrap_or_else(|| self.target_platform.clone());
        match self.states[i].base.clone() {
            Base::Stage(b) => {
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
            Base::Image(reference) => {
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
                    image.variant =
                        (!platform.variant.is_empty()).then(|| platform.variant.clone());
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
            Base::Local(key) => {
                let st = &mut self.states[i];
                st.local = Some(key);
                if st.replaced {
                    // BuildKit loads a stage-replacing context with no image config and never
                    // dispatches the stage (resolveBaseImage marks it dispatched).
                    st.platform.get_or_insert(platform);
                    return Ok(());
                }
                // BuildKit: a named context without an image config gets emptyImage(platform),
                // the same config as scratch. Its FROM counts as step 1 but has no vertex of
                // its own: the directory is the tree ("[context NAME] load from client").
                st.progress_name("", false);
                st.image = empty_image(&platform);
            }
            Base::Scratch => {
                let st = &mut self.states[i];
                st.image = empty_image(&platform);
            }
        }
        let st = &mut self.states[i];
        if st.platform.is_none() {
            st.platform = Some(platform);
        }
        if st.image.config.env_get("PATH").is_none() {
            st.image.config.env.push(format!("PATH={DEFAULT_PATH}"));
        }
        for kv in &st.image.config.env.clone() {
            let (k, v) = kv.split_once('=').unwrap_or((kv.as_str(), ""));
            st.env.set(k, v);
        }
        if !st.image.config.working_dir.is_empty() {
            st.dir = normalize_workdir(&st.dir, &st.image.config.working_dir.clone());
        }
        if !st.image.config.user.is_empty() {
            st.user = st.image.config.user.clone();
        }
        Ok(())
    }

    fn dispatch(&mut self, i: usize, c: &StageCommand) -> Result<(), FrontendError> {
        let span = c.ins.span;
        let mut ins: Instruction = c.ins.clone();
        let env = self.states[i].env.clone();
        let mut ex = Expander::new(&self.lexer, &env);
        ins.command
            .expand(&mut |w| ex.word(w))
            .map_err(|e| FrontendError::from_cause(e, span))?;
        if let Some(contents) = ins.command.heredoc_sources_mut() {
            let mut raw = crate::shell::Lexer::new('\\');
            raw.skip_process_quotes = true;
            let mut rex = Expander::new(&raw, &env);
            for content in contents.iter_mut().filter(|c| c.expand) {
                content.data = rex
                    .word(&content.data)
                    .map_err(|e| FrontendError::from_cause(e, span))?;
            }
            ex.used.extend(rex.used);
        }
        let used = ex.used;
        for name in ex.unset {
            let declared = self.states[i].args.iter().any(|(k, _)| *k == name);
            if !declared && !matches!(ins.command, Command::Arg(_)) {
                self.linter.run(
                    "UndefinedVar",
                    format!("Usage of undefined variable '${name}'"),
                    Some(span),
                );
            }
        }
        match ins.command {
            Command::Env(kvs) => {
                let mut msg = String::from("ENV");
                for kv in &kvs {
                    if kv.legacy {
                        self.linter.run("LegacyKeyValueFormat", "\"ENV key=value\" should be used instead of legacy \"ENV key value\" format".into(), Some(span));
                    }
                    if looks_like_secret(&kv.key) {
                        self.linter.run("SecretsUsedInArgOrEnv", format!("Do not use ARG or ENV instructions for sensitive data (ENV \"{}\")", kv.key), Some(span));
                    }
                    msg.push_str(&format!(" {}={}", kv.key, kv.value));
                    let st = &mut self.states[i];
                    st.env.set(&kv.key, &kv.value);
                    st.image.config.env_set(&kv.key, &kv.value);
                }
                self.history(i, msg, false);
            }
            Command::Label(kvs) => {
                let mut msg = String::from("LABEL");
                for kv in &kvs {
                    if kv.legacy {
                        self.linter.run("LegacyKeyValueFormat", "\"LABEL key=value\" should be used instead of legacy \"LABEL key value\" format".into(), Some(span));
                    }
                    self.states[i]
                        .image
                        .config
                        .labels
                        .insert(kv.key.clone(), kv.value.clone());
                    msg.push_str(&format!(" {}={}", kv.key, kv.value));
                }
                self.history(i, msg, false);
            }
            Command::Maintainer(m) => {
                self.states[i].image.author = Some(m.clone());
                self.history(i, format!("MAINTAINER {m}"), false);
            }
            Command::Onbuild(expr) => self.states[i].image.config.on_build.push(expr),
            Command::Workdir(path) => {
                self.dispatch_workdir(i, &ins.code, &path, c.onbuild, used, span)?
            }
            Command::Cmd(form) | Command::Entrypoint(form) => {
                let is_cmd = ins.keyword == "cmd";
                let name = if is_cmd { "CMD" } else { "ENTRYPOINT" };
                self.once(i, name, span);
                let st = &mut self.states[i];
                let mut args = form.args.clone();
                if form.prepend_shell {
                    if st.image.config.shell.is_empty() {
                        self.linter.run("JSONArgsRecommended", format!("JSON arguments recommended for {name} to prevent unintended behavior related to OS signals"), Some(span));
                    }
                    let st = &self.states[i];
                    args = with_shell(&st.image, &args);
                }
                let st = &mut self.states[i];
                let shown = go_quote_list(&args);
                if is_cmd {
                    st.image.config.cmd = Some(args);
                    st.image.config.args_escaped = true;
                    st.cmd_set = true;
                } else {
                    st.image.config.entrypoint =
                        (!args.is_empty() || form.prepend_shell).then_some(args);
                    if !st.cmd_set {
                        st.image.config.cmd = None;
                    }
                }
                self.history(i, format!("{name} {shown}"), false);
            }
            Command::Healthcheck(h) => {
                self.once(i, "HEALTHCHECK", span);
                let shown = format!(
                    "HEALTHCHECK {{Test:[{}] Interval:{} Timeout:{} StartPeriod:{} StartInterval:{} Retries:{}}}",
                    h.test.join(" "),
                    duration::format(h.interval),
                    duration::format(h.timeout),
                    duration::format(h.start_period),
                    duration::format(h.start_interval),
                    h.retries
                );
                self.states[i].image.config.healthcheck = Some(HealthConfig {
                    test: h.test,
                    interval: h.interval,
                    timeout: h.timeout,
                    start_period: h.start_period,
                    start_interval: h.start_interval,
                    retries: h.retries,
                });
                self.history(i, shown, false);
            }
            Command::Expose(ports) => {
                let env = self.states[i].env.clone();
                let mut ex = Expander::new(&self.lexer, &env);
                let mut words = Vec::new();
                for p in &ports {
                    words.extend(ex.words(p).map_err(|e| FrontendError::from_cause(e, span))?);
                }
                let mut specs = Vec::new();
                for w in &words {
                    if w.contains(':') {
                        self.linter.run("ExposeInvalidFormat", format!("EXPOSE instruction should not define an IP address or host-port mapping, found '{w}'"), Some(span));
                    }
                    if let Some((_, proto)) = w.split_once('/') {
                        if proto != proto.to_lowercase() {
                            self.linter.run("ExposeProtoCasing", format!("Defined protocol '{proto}' in EXPOSE instruction should be lowercase"), Some(span));
                        }
                    }
                    specs.extend(parse_port_spec(w).map_err(|e| {
                        FrontendError::from_cause(e, span).with_needle(w.clone())
                    })?);
                }
                for s in &specs {
                    self.states[i]
                        .image
                        .config
                        .exposed_ports
                        .insert(s.clone(), Empty {});
                }
                self.history(i, format!("EXPOSE [{}]", specs.join(" ")), false);
            }
            Command::User(user) => {
                let st = &mut self.states[i];
                st.user = user.clone();
                st.image.config.user = user.clone();
                self.history(i, format!("USER {user}"), false);
            }
            Command::Volume(vols) => {
                for v in &vols {
                    if v.is_empty() {
                        return Err(FrontendError::new(
                            "VOLUME specified can not be an empty string",
                            span,
                        ));
                    }
                    self.states[i]
                        .image
                        .config
                        .volumes
                        .insert(v.clone(), Empty {});
                }
                self.history(i, format!("VOLUME [{}]", vols.join(" ")), false);
            }
            Command::StopSignal(sig) => {
                check_signal(&sig)
                    .map_err(|e| FrontendError::from_cause(e, span).with_needle(sig.clone()))?;
                self.states[i].image.config.stop_signal = sig.clone();
                self.history(i, format!("STOPSIGNAL {sig}"), false);
            }
            Command::Shell(shell) => {
                self.states[i].image.config.shell = shell.clone();
                self.history(i, format!("SHELL [{}]", shell.join(" ")), false);
            }
            Command::Arg(defs) => self.dispatch_arg(i, &defs, span)?,
            Command::Run(run) => self.dispatch_run(i, c, run, &ins.code, used)?,
            Command::Copy(copy) => self.dispatch_copy(i, c, copy.into(), &ins.code, used)?,
            Command::Add(add) => self.dispatch_copy(i, c, add.into(), &ins.code, used)?,
        }
        Ok(())
    }

    /// MultipleInstructionsDisallowed: CMD, ENTRYPOINT and HEALTHCHECK once per stage.
    fn once(&mut self, i: usize, name: &'static str, span: crate::ast::Span) {
        if self.states[i].seen_once.contains(&name) {
            self.linter.run("MultipleInstructionsDisallowed", format!("Multiple {name} instructions should not be used in the same stage because only the last one will be used"), Some(span));
        } else {
            self.states[i].seen_once.push(name);
        }
    }

    fn dispatch_workdir(
        &mut self,
        i: usize,
        code: &str,
        path: &str,
        onbuild: bool,
        used: std::collections::BTreeMap<String, String>,
        span: crate::ast::Span,
    ) -> Result<(), FrontendError> {
        if !self.states[i].workdir_set && !path.starts_with('/') {
            self.linter.run("WorkdirRelativePath", format!("Relative workdir \"{path}\" can have unexpected results if the base image changes"), Some(span));
        }
        let st = &mut self.states[i];
        st.workdir_set = true;
        let wd = normalize_workdir(&st.image.config.working_dir.clone(), path);
        st.image.config.working_dir = wd.clone();
        st.dir = wd.clone();
        let with_layer = wd != "/";
        if with_layer {
            let owner = (!st.image.config.user.is_empty()).then(|| st.image.config.user.clone());
            let name = st.progress_name(&uppercase_keyword(code), onbuild);
            let meta = Meta {
                name,
                stage: st.stage_label(),
                lines: Some((span.start_line, span.end_line)),
                expanded_from: used,
                ignore_cache: self.opts.no_cache,
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
        Ok(())
    }

    /// ARG in a stage: `--build-arg` wins, then the default (expanded), then the global ARG of
    /// the same name; the value joins the stage's variables (not the image's Env).
    fn dispatch_arg(
        &mut self,
        i: usize,
        defs: &[ArgDef],
        span: crate::ast::Span,
    ) -> Result<(), FrontendError> {
        let mut shown = Vec::new();
        for def in defs {
            self.declared_args.push(def.key.clone());
            if looks_like_secret(&def.key) {
                self.linter.run(
                    "SecretsUsedInArgOrEnv",
                    format!(
                        "Do not use ARG or ENV instructions for sensitive data (ARG \"{}\")",
                        def.key
                    ),
                    Some(span),
                );
            }
            let value = if let Some(v) = self.opts.build_args.get(&def.key) {
                Some(v.clone())
            } else if let Some(d) = &def.value {
                let env = self.states[i].env.clone();
                let mut ex = Expander::new(&self.lexer, &env);
                Some(ex.word(d).map_err(|e| FrontendError::from_cause(e, span))?)
            } else {
                self.global_args.get(&def.key).map(str::to_string)
            };
            let st = &mut self.states[i];
            if let Some(v) = &value {
                st.env.set(&def.key, v);
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
        let created = self.epoch.map(graph::time::rfc3339);
        self.states[i].image.history.push(History {
            created,
            created_by,
            comment: HISTORY_COMMENT.into(),
            empty_layer: !with_layer,
            ..History::default()
        });
    }
}

/// The stage's shell (SHELL, default `/bin/sh -c`) followed by the command line as one word.
pub(super) fn with_shell(image: &Image, args: &[String]) -> Vec<String> {
    let mut out = if image.config.shell.is_empty() {
        vec!["/bin/sh".to_string(), "-c".to_string()]
    } else {
        image.config.shell.clone()
    };
    out.push(args.join(" "));
    out
}

/// Go's `%q` of a `[]string`: `["/bin/sh" "-c" "echo hi"]`.
pub(super) fn go_quote_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| crate::parser::go_quote(s)).collect();
    format!("[{}]", quoted.join(" "))
}

/// A STOPSIGNAL moby's `signal.ParseSignal` refuses, as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Invalid signal: {0}")]
pub struct InvalidSignal(pub String);

/// moby's `signal.ParseSignal`: a number, or a known name with or without `SIG`.
fn check_signal(sig: &str) -> Result<(), InvalidSignal> {
    let invalid = || InvalidSignal(sig.to_string());
    if let Ok(n) = sig.parse::<i64>() {
        return if n > 0 { Ok(()) } else { Err(invalid()) };
    }
    const NAMES: &[&str] = &[
        "ABRT", "ALRM", "BUS", "CHLD", "CLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT",
        "KILL", "PIPE", "POLL", "PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM",
        "TRAP", "TSTP", "TTIN", "TTOU", "URG", "USR1", "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ",
        "UNUSED",
    ];
    let upper = sig.to_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    let rt = name
        .strip_prefix("RTMIN")
        .or_else(|| name.strip_prefix("RTMAX"));
    let rt_ok =
        rt.is_some_and(|r| r.is_empty() || r.trim_start_matches(['+', '-']).parse::<u8>().is_ok());
    if NAMES.contains(&name) || rt_ok {
        Ok(())
    } else {
        Err(invalid())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals() {
        for ok in ["SIGTERM", "term", "9", "SIGRTMIN+3", "USR1"] {
            assert!(check_signal(ok).is_ok(), "{ok}");
        }
        for bad in ["SIGFOO", "0", "-1", ""] {
            assert!(check_signal(bad).is_err(), "{bad}");
        }
    }
}
