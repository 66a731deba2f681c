//! RUN: the command line (SHELL, heredocs), its mounts (bind, cache, tmpfs, secret, ssh), the
//! network and security modes, the env it runs with, and its history line, as BuildKit's
//! `dispatchRun` builds them.

use super::dispatch::with_shell;
use super::env::Expander;
use super::paths::{clean_path, go_path_clean};
use super::stages::{uppercase_keyword, StageCommand};
use super::{Lowering, PROXY_ARGS};
use crate::diagnostic::FrontendError;
use crate::instructions::mounts::parse_mount;
use crate::instructions::{Mount, MountType, RunCommand};
use crate::parser::heredoc_marker;
use graph::{Digest, Exec, ExecMount, FileAction, FileOp, Meta, MountKind, Network, Op};
use std::collections::BTreeMap;

impl Lowering<'_> {
    pub(super) fn dispatch_run(
        &mut self,
        i: usize,
        c: &StageCommand,
        run: RunCommand,
        code: &str,
        used: BTreeMap<String, String>,
    ) -> Result<(), FrontendError> {
        let span = c.ins.span;
        let err = |m: String| FrontendError::new(m, span);
        let mut inputs = vec![self.graph_root(i)];
        let mut mounts = Vec::new();
        let mut args = run.cmd.args.clone();
        let mut display = uppercase_keyword(code);
        if let Some(first) = run.cmd.files.first() {
            if args.len() != 1 || !run.cmd.prepend_shell {
                return Err(err(format!(
                    "parsing produced an invalid run command: {args:?}"
                )));
            }
            if heredoc_marker(&args[0]).is_some() {
                let data = first.data.clone();
                if data.starts_with("#!") {
                    // A script with a shebang: write it to a file and run that.
                    let file = format!("/{}", first.name);
                    let action = FileAction::Mkfile {
                        path: file.clone(),
                        mode: 0o755,
                        data: data.clone(),
                        owner: None,
                        timestamp: None,
                    };
                    let meta = Meta {
                        name: "preparing inline document".into(),
                        stage: self.states[i].stage_label(),
                        ..Meta::default()
                    };
                    let doc = self.graph.add(
                        Op::File(FileOp {
                            on_input: false,
                            actions: vec![action],
                        }),
                        Vec::new(),
                        meta,
                    );
                    inputs.push(doc);
                    mounts.push(ExecMount {
                        target: "/dev/pipes/".into(),
                        kind: MountKind::Input {
                            input: inputs.len() - 1,
                            source: "/".into(),
                            readonly: true,
                        },
                    });
                    args = vec![format!("/dev/pipes/{}", first.name)];
                } else {
                    args = vec![data.clone()];
                }
                display.push_str(&format!(" ({})", summarize_heredoc(&data)));
            } else {
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

        let env = self.states[i].env.clone();
        let lexer = self.lexer.clone();
        let mut ex = Expander::new(&lexer, &env);
        let mut context_paths: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut from_sources = c.sources.iter();
        let mut ssh_mounts = 0;
        for spec in &run.mount_specs {
            let m = parse_mount(spec, Some(&mut |w: &str| ex.word(w))).map_err(|e| {
                FrontendError::from_cause(e, span).with_needle(format!("--mount={spec}"))
            })?;
            let source_state = if m.from.is_some() {
                from_sources.next().copied()
            } else {
                None
            };
            let mut mount = self
                .exec_mount(i, &m, source_state, &mut inputs, &mut context_paths)
                .map_err(|e| err(e).with_needle(format!("--mount={spec}")))?;
            // BuildKit (llb ExecOp.Marshal): the Nth ssh mount without a target gets
            // /run/buildkit/ssh_agent.N, N counting this RUN's ssh mounts only.
            if matches!(mount.kind, MountKind::Ssh { .. }) {
                if mount.target.is_empty() {
                    mount.target = format!("/run/buildkit/ssh_agent.{ssh_mounts}");
                }
                ssh_mounts += 1;
            }
            mounts.push(mount);
        }
        let mut expanded_from = used;
        expanded_from.extend(ex.used);

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
        let exec = Exec {
            args: args.clone(),
            env,
            cwd: st.dir.clone(),
            user: st.user.clone(),
            network,
            insecure: run.security.as_deref() == Some("insecure"),
            mounts,
        };
        let proxy_env: Vec<String> = self
            .opts
            .build_args
            .iter()
            .filter(|(k, _)| PROXY_ARGS.contains(&k.as_str()) && st.env.get(k).is_none())
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let args_meta: BTreeMap<String, String> = st
            .args
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    st.env
                        .get(k)
                        .map(str::to_string)
                        .or(v.clone())
                        .unwrap_or_default(),
                )
            })
            .collect();
        let history = format!(
            "RUN {} # buildkit",
            run_command_string(&args, &st.args, &st.env)
        );
        let st = &mut self.states[i];
        let name = st.progress_name(&display, c.onbuild);
        let meta = Meta {
            name,
            stage: st.stage_label(),
            lines: Some((span.start_line, span.end_line)),
            args: args_meta,
            expanded_from,
            context_paths,
            proxy_env,
            ignore_cache: self.opts.no_cache,
        };
        let d = self.graph.add(Op::Exec(exec), inputs, meta);
        self.states[i].root = Some(d);
        self.history(i, history, true);
        Ok(())
    }

    /// One `--mount` as an exec mount; inputs it needs are appended to `inputs`.
    fn exec_mount(
        &mut self,
        i: usize,
        m: &Mount,
        source_state: Option<usize>,
        inputs: &mut Vec<Digest>,
        context_paths: &mut BTreeMap<String, Vec<String>>,
    ) -> Result<ExecMount, String> {
        let dir = self.states[i].dir.clone();
        let resolve = |t: &str| {
            if t.starts_with('/') {
                clean_path(t)
            } else {
                clean_path(&format!("{dir}/{t}"))
            }
        };
        let mut source_input = |this: &mut Self| -> Result<usize, String> {
            let d = match source_state {
                Some(s) => {
                    if !this.states[s].dispatched {
                        return Err(format!(
                            "cannot mount from stage \"{}\", it needs to be defined before current stage \"{}\"",
                            this.states[s].stage_label(),
                            this.states[i].stage_label()
                        ));
                    }
                    let read = clean_path(m.source.as_deref().unwrap_or("/"));
                    if let Some(name) = this.local_read_name(s) {
                        context_paths.entry(name).or_default().push(read);
                    }
                    this.source_tree(s)
                }
                None => {
                    context_paths
                        .entry("context".into())
                        .or_default()
                        .push(clean_path(m.source.as_deref().unwrap_or("/")));
                    this.context_source()
                }
            };
            inputs.push(d);
            Ok(inputs.len() - 1)
        };
        // BuildKit: a missing or relative target is joined to WORKDIR; `/` itself is refused.
        let raw_target = m.target.as_deref().unwrap_or("");
        let dir_target = || -> Result<String, String> {
            let t = resolve(raw_target);
            if t == "/" {
                return Err(format!("invalid mount target \"{t}\""));
            }
            Ok(t)
        };
        match m.kind {
            MountType::Bind => {
                let target = dir_target()?;
                let input = source_input(self)?;
                Ok(ExecMount {
                    target,
                    kind: MountKind::Input {
                        input,
                        source: clean_path(m.source.as_deref().unwrap_or("/")),
                        readonly: m.readonly,
                    },
                })
            }
            MountType::Cache => {
                let target = dir_target()?;
                let from = match &m.from {
                    Some(_) => Some((
                        source_input(self)?,
                        clean_path(m.source.as_deref().unwrap_or("/")),
                    )),
                    None => None,
                };
                // The default id is the target as written (BuildKit's path.Clean(target)), so
                // `target=.cache` is one cache whatever the WORKDIR.
                let id = m.id.clone().unwrap_or_else(|| go_path_clean(raw_target));
                Ok(ExecMount {
                    target,
                    kind: MountKind::Cache {
                        id,
                        sharing: m.sharing.clone().unwrap_or_else(|| "shared".into()),
                        from,
                        mode: m.mode.unwrap_or(0o755),
                        uid: m.uid.unwrap_or(0),
                        gid: m.gid.unwrap_or(0),
                    },
                })
            }
            MountType::Tmpfs => {
                let target = dir_target()?;
                Ok(ExecMount {
                    target,
                    kind: MountKind::Tmpfs { size: m.size },
                })
            }
            MountType::Secret => {
                let id =
                    m.id.clone()
                        .or_else(|| {
                            m.target
                                .as_deref()
                                .map(|t| t.rsplit('/').next().unwrap_or(t).to_string())
                        })
                        .or_else(|| m.source.clone())
                        .ok_or("a secret mount needs id= (or a target to take its name from)")?;
                let target = match (&m.target, &m.env) {
                    (Some(t), _) => resolve(t),
                    (None, Some(_)) => String::new(),
                    (None, None) => format!("/run/secrets/{id}"),
                };
                let kind = MountKind::Secret {
                    id,
                    env: m.env.clone(),
                    required: m.required,
                    mode: m.mode.unwrap_or(0o400),
                    uid: m.uid.unwrap_or(0),
                    gid: m.gid.unwrap_or(0),
                };
                Ok(ExecMount { target, kind })
            }
            MountType::Ssh => {
                let id = m.id.clone().unwrap_or_else(|| "default".into());
                // No target: empty here, numbered by the caller (ssh_agent.N).
                let target = m.target.as_deref().map(resolve).unwrap_or_default();
                Ok(ExecMount {
                    target,
                    kind: MountKind::Ssh {
                        id,
                        required: m.required,
                        mode: m.mode.unwrap_or(0o600),
                        uid: m.uid.unwrap_or(0),
                        gid: m.gid.unwrap_or(0),
                    },
                })
            }
        }
    }
}

/// BuildKit's `runCommandString`: `|N K=V ... args` with the stage's ARGs (current values).
fn run_command_string(
    args: &[String],
    build_args: &[(String, Option<String>)],
    env: &super::env::EnvList,
) -> String {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for (k, v) in build_args {
        let value = env
            .get(k)
            .map(str::to_string)
            .or_else(|| v.clone())
            .unwrap_or_default();
        match pairs.iter_mut().find(|(pk, _)| pk == k) {
            Some(slot) => slot.1 = value,
            None => pairs.push((k.clone(), value)),
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
