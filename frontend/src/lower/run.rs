//! RUN: the command line (SHELL, heredocs), its mounts (bind, cache, tmpfs, secret, ssh), the
//! network and security modes, the env it runs with, and its history line, as BuildKit's
//! `dispatchRun` builds them: one exec op over the stage's tree.
//!
//! How each `--mount` becomes an exec mount is `exec_mounts`'; this module knows the order
//! they come in and the env they imply, not their types.

use super::config::with_shell;
use super::env::{EnvList, Expander};
use super::exec_mounts::ExecInputs;
use super::platform;
use super::stages::{uppercase_keyword, StageCommand};
use super::Lowering;
use crate::ast::Span;
use crate::diagnostic::FrontendError;
use crate::instructions::mounts::parse_mount;
use crate::instructions::{InlineFile, RunCommand};
use crate::parser::heredoc_marker;
use crate::shell::{Lexer, VarLookup};
use graph::{Exec, ExecMount, FileAction, FileOp, Meta, MountKind, Network, Op};
use std::collections::{BTreeMap, HashMap};

/// The exec op a RUN becomes, as it is assembled.
#[derive(Default)]
struct RunPlan {
    reads: ExecInputs,
    mounts: Vec<ExecMount>,
}

impl Lowering<'_> {
    /// RUN (`code`, its text) in stage `i`; `used` are the variables its words expanded.
    pub(super) fn dispatch_run(
        &mut self,
        i: usize,
        c: &StageCommand,
        run: RunCommand,
        code: &str,
        used: BTreeMap<String, String>,
    ) -> Result<(), FrontendError> {
        let span = c.ins.span;
        let mut plan = RunPlan::default();
        plan.reads.input(self.graph_root(i));
        let (args, heredoc) = self.run_command_line(i, &run, &mut plan, span)?;
        let mut display = uppercase_keyword(code);
        if let Some(summary) = heredoc {
            display.push_str(&format!(" ({summary})"));
        }
        let mut expanded_from = used;
        expanded_from.extend(self.run_mounts(i, c, &run, &mut plan)?);
        let shown = self.expanded_display(i, &display, &plan.mounts);
        let st = &self.states[i];
        let history = format!(
            "RUN {} # buildkit",
            run_command_string(&args, &st.args, &st.env)
        );
        let exec = self.run_exec(i, &run, args, plan.mounts);
        let context_paths = plan.reads.context_paths;
        let mut meta = self.run_meta(i, c, &shown, expanded_from, context_paths);
        meta.instruction = display;
        let d = self.graph.add(Op::Exec(exec), plan.reads.inputs, meta);
        self.states[i].root = Some(d);
        self.history(i, history, true);
        Ok(())
    }

    /// The words RUN executes: its command with the heredocs it names, then the stage's
    /// shell unless in exec form; and, for a heredoc command, its summary (progress names).
    fn run_command_line(
        &mut self,
        i: usize,
        run: &RunCommand,
        plan: &mut RunPlan,
        span: Span,
    ) -> Result<(Vec<String>, Option<String>), FrontendError> {
        let mut args = run.cmd.args.clone();
        let mut summary = None;
        if let Some(first) = run.cmd.files.first() {
            if args.len() != 1 || !run.cmd.prepend_shell {
                return Err(FrontendError::new(
                    format!("parsing produced an invalid run command: {args:?}"),
                    span,
                ));
            }
            if heredoc_marker(&args[0]).is_some() {
                args = self.heredoc_command(i, first, plan);
                summary = Some(summarize_heredoc(&first.data));
            } else {
                // `cmd <<EOF`: the heredocs follow the line, for the shell to read.
                let mut line = args[0].clone();
                for f in &run.cmd.files {
                    line.push('\n');
                    line.push_str(&f.data);
                    line.push_str(&f.name);
                }
                args = vec![line];
            }
        }
        if run.cmd.prepend_shell {
            args = with_shell(&self.states[i].image, &args);
        }
        Ok((args, summary))
    }

    /// `RUN <<EOF`: the heredoc is the command. A script with a shebang is written to a file,
    /// mounted at /dev/pipes/, and run from there.
    fn heredoc_command(&mut self, i: usize, doc: &InlineFile, plan: &mut RunPlan) -> Vec<String> {
        if !doc.data.starts_with("#!") {
            return vec![doc.data.clone()];
        }
        let action = FileAction::Mkfile {
            path: format!("/{}", doc.name),
            mode: 0o755,
            data: doc.data.clone(),
            owner: None,
            timestamp: None,
        };
        let meta = Meta {
            name: "preparing inline document".into(),
            stage: self.states[i].stage_label(),
            ..Meta::default()
        };
        let script = self.graph.add(
            Op::File(FileOp {
                on_input: false,
                actions: vec![action],
            }),
            Vec::new(),
            meta,
        );
        let input = plan.reads.input(script);
        plan.mounts.push(ExecMount {
            target: "/dev/pipes/".into(),
            kind: MountKind::Input {
                input,
                source: "/".into(),
                readonly: true,
            },
        });
        vec![format!("/dev/pipes/{}", doc.name)]
    }

    /// RUN's `--mount`s, expanded with the stage's variables, as exec mounts. Returns the
    /// variables the expansion used.
    fn run_mounts(
        &mut self,
        i: usize,
        c: &StageCommand,
        run: &RunCommand,
        plan: &mut RunPlan,
    ) -> Result<BTreeMap<String, String>, FrontendError> {
        let span = c.ins.span;
        let env = self.states[i].env.clone();
        let lexer = self.lexer.clone();
        let mut ex = Expander::new(&lexer, &env);
        let mut from_sources = c.sources.iter();
        let mut ssh_mounts = 0;
        for spec in &run.mount_specs {
            let needle = format!("--mount={spec}");
            let m = parse_mount(spec, Some(&mut |w: &str| ex.word(w)))
                .map_err(|e| FrontendError::from_cause(e, span).with_needle(needle.clone()))?;
            let source_state = if m.from.is_some() {
                from_sources.next().copied()
            } else {
                None
            };
            let mut mount = self
                .exec_mount(i, &m, source_state, &mut plan.reads)
                .map_err(|e| FrontendError::from_cause(e, span).with_needle(needle))?;
            // BuildKit (llb ExecOp.Marshal): the Nth ssh mount without a target gets
            // /run/buildkit/ssh_agent.N, N counting this RUN's ssh mounts only.
            if matches!(mount.kind, MountKind::Ssh { .. }) {
                if mount.target.is_empty() {
                    mount.target = format!("/run/buildkit/ssh_agent.{ssh_mounts}");
                }
                ssh_mounts += 1;
            }
            plan.mounts.push(mount);
        }
        Ok(ex.used)
    }

    /// The process RUN starts: the stage's env, WORKDIR and USER, the network and security
    /// modes, and its mounts.
    fn run_exec(
        &self,
        i: usize,
        run: &RunCommand,
        args: Vec<String>,
        mounts: Vec<ExecMount>,
    ) -> Exec {
        let network = match run.network.as_deref() {
            None | Some("default") => Network::Default,
            Some("none") => Network::None,
            Some(_) => Network::Host,
        };
        let st = &self.states[i];
        let mut env = st.env.to_strings();
        // BuildKit: with ssh mounts, SSH_AUTH_SOCK names the first one's target unless the
        // stage's env sets it. Part of the step's env (and so of its cache key), never of the
        // image config.
        let first_ssh = mounts
            .iter()
            .find(|m| matches!(m.kind, MountKind::Ssh { .. }));
        if let Some(first) = first_ssh {
            if st.env.get("SSH_AUTH_SOCK").is_none() {
                env.push(format!("SSH_AUTH_SOCK={}", first.target));
            }
        }
        Exec {
            args,
            env,
            cwd: st.dir.clone(),
            user: st.user.clone(),
            network,
            insecure: run.security.as_deref() == Some("insecure"),
            mounts,
            platform: self.emulated_platform(i),
            // BuildKit's dockerui: the build arg sets the sandbox hostname of every RUN.
            hostname: self
                .opts
                .build_args
                .get("BUILDKIT_SANDBOX_HOSTNAME")
                .cloned()
                .unwrap_or_default(),
            shm_size: self.opts.shm_size,
            ulimits: self.opts.ulimits.clone(),
        }
    }

    /// The platform stage `i`'s RUN steps are for, when the build platform is not it (they
    /// run under emulation); None when they run natively.
    fn emulated_platform(&self, i: usize) -> Option<graph::Platform> {
        let p = self.states[i]
            .platform
            .clone()
            .unwrap_or_else(|| self.target_platform.clone());
        (!platform::runs_natively(&p, &self.build_platform)).then_some(p)
    }

    /// The progress name of a COPY, ADD or WORKDIR as BuildKit shows it (`processCmdEnv`):
    /// the instruction as written, expanded with the stage's variables; as written if that
    /// fails.
    pub(super) fn expanded_name(&self, i: usize, text: &str) -> String {
        self.lexer
            .process_word(text, &self.states[i].env)
            .map(|e| e.result)
            .unwrap_or_else(|_| text.to_string())
    }

    /// The progress name of a RUN as BuildKit shows it: the instruction as written with the
    /// stage's variables expanded (quotes kept, unset ones left as written), and `****` for
    /// a variable a secret mount sets (`env=`); as written if it does not expand.
    fn expanded_display(&self, i: usize, display: &str, mounts: &[ExecMount]) -> String {
        struct Masked<'a> {
            env: &'a EnvList,
            secrets: Vec<&'a str>,
        }
        impl VarLookup for Masked<'_> {
            fn lookup(&self, name: &str) -> Option<String> {
                if self.secrets.contains(&name) {
                    return Some("****".to_string());
                }
                self.env.lookup(name)
            }
        }
        let masked = Masked {
            env: &self.states[i].env,
            secrets: mounts
                .iter()
                .filter_map(|m| match &m.kind {
                    MountKind::Secret { env: Some(e), .. } => Some(e.as_str()),
                    _ => None,
                })
                .collect(),
        };
        let lexer = Lexer {
            raw_quotes: true,
            skip_unset_env: true,
            ..self.lexer.clone()
        };
        lexer
            .process_word(display, &masked)
            .map(|e| e.result)
            .unwrap_or_else(|_| display.to_string())
    }

    /// The exec op's metadata: progress name, the stage's ARGs with their current values,
    /// and the proxy build-args that reach the step without an ARG.
    fn run_meta(
        &mut self,
        i: usize,
        c: &StageCommand,
        display: &str,
        expanded_from: BTreeMap<String, String>,
        context_paths: BTreeMap<String, Vec<String>>,
    ) -> Meta {
        let span = c.ins.span;
        let st = &self.states[i];
        // BuildKit's proxy env: each proxy build arg in any case (of both cases given, the
        // lower-case one, last in sorted order), set in both cases unless empty; a stage
        // variable of the same name keeps its value.
        let mut proxy_env: Vec<String> = Vec::new();
        for kind in [
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "FTP_PROXY",
            "NO_PROXY",
            "ALL_PROXY",
        ] {
            let value = self
                .opts
                .build_args
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case(kind))
                .map(|(_, v)| v)
                .next_back();
            let Some(value) = value.filter(|v| !v.is_empty()) else {
                continue;
            };
            for name in [kind.to_string(), kind.to_ascii_lowercase()] {
                if st.env.get(&name).is_none() {
                    proxy_env.push(format!("{name}={value}"));
                }
            }
        }
        let args: BTreeMap<String, String> = st
            .args
            .iter()
            .map(|(k, v)| {
                let value = st.env.get(k).map(str::to_string).or(v.clone());
                (k.clone(), value.unwrap_or_default())
            })
            .collect();
        let st = &mut self.states[i];
        let filtered = st.name.as_deref().is_some_and(|n| {
            self.opts
                .no_cache_stages
                .iter()
                .any(|f| f.eq_ignore_ascii_case(n))
        });
        Meta {
            name: st.progress_name(display, c.onbuild),
            stage: st.stage_label(),
            lines: Some((span.start_line, span.end_line)),
            args,
            expanded_from,
            context_paths,
            proxy_env,
            ignore_cache: self.opts.no_cache || filtered,
            instruction: String::new(),
        }
    }
}

/// BuildKit's `runCommandString`: `|N K=V ... args` with the stage's ARGs (current values).
fn run_command_string(
    args: &[String],
    build_args: &[(String, Option<String>)],
    env: &EnvList,
) -> String {
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut at: HashMap<&str, usize> = HashMap::new();
    for (k, v) in build_args {
        let value = env
            .get(k)
            .map(str::to_string)
            .or_else(|| v.clone())
            .unwrap_or_default();
        match at.get(k.as_str()) {
            Some(&i) => pairs[i].1 = value,
            None => {
                at.insert(k, pairs.len());
                pairs.push((k.clone(), value));
            }
        }
    }
    let mut words: Vec<String> = Vec::new();
    if !pairs.is_empty() {
        words.push(format!("|{}", pairs.len()));
        words.extend(pairs.into_iter().map(|(k, v)| format!("{k}={v}")));
    }
    words.extend(args.iter().cloned());
    words.join(" ")
}

/// First line of a heredoc, with `...` when there are more (progress names).
fn summarize_heredoc(doc: &str) -> String {
    let doc = doc.trim();
    let mut lines = doc.lines();
    let first = lines.next().unwrap_or("").to_string();
    if lines.next().is_some() {
        first + "..."
    } else {
        first
    }
}
