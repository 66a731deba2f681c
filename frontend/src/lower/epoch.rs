//! SOURCE_DATE_EPOCH as BuildKit's `dockerfile2llb` resolves it (epoch.go): the build arg, or
//! the global ARG's value when not empty, is
//!
//! - a Unix time in seconds: the epoch;
//! - empty (a build arg given as `SOURCE_DATE_EPOCH=`): unset;
//! - `context`: the main context's time; a local directory has none, so the build goes on as
//!   if SOURCE_DATE_EPOCH were unset;
//! - the name of a `--build-context`: its time; pallet's named contexts (directories, images,
//!   OCI layouts) have none, as in BuildKit;
//! - the name of a stage (any case): a *source-only* stage, `FROM scratch` with ARGs and one
//!   remote `ADD` (a URL, or a git repository: its commit's committer time), whose time the
//!   resolver gives (`ImageResolver::source_epoch`); the stage itself is built only if the
//!   target needs it;
//! - anything else: `invalid SOURCE_DATE_EPOCH: VALUE`.
//!
//! The value the build sees afterwards (`ARG SOURCE_DATE_EPOCH`, RUN's environment) is the
//! number, or nothing when there is no time.

use super::copy::{is_git, is_http};
use super::env::EnvList;
use super::git_ref;
use super::{context_key, Lowering};
use crate::diagnostic::FrontendError;
use crate::instructions::{Command, Stage};
use graph::resolve::EpochSource;

const KEY: &str = "SOURCE_DATE_EPOCH";

impl Lowering<'_> {
    /// Resolves SOURCE_DATE_EPOCH (after the global ARGs) into `self.epoch`, and puts the
    /// number (or nothing) where the build reads the variable.
    pub(super) fn source_date_epoch(&mut self, stages: &[Stage]) -> Result<(), FrontendError> {
        let value = match self.opts.build_args.get(KEY) {
            Some(v) => v.clone(),
            None => match self.global_args.get(KEY) {
                Some(v) if !v.is_empty() => v.to_string(),
                _ => return Ok(()),
            },
        };
        if let Ok(n) = value.parse::<i64>() {
            self.epoch = Some(n);
            return Ok(());
        }
        // An empty build arg unsets it (BuildKit resolves "" to no time too).
        self.epoch = if value.is_empty()
            || value == "context"
            || self.opts.named_contexts.contains_key(&context_key(&value))
        {
            None
        } else if let Some(stage) = stages.iter().find(|s| {
            s.name
                .as_deref()
                .is_some_and(|n| n.eq_ignore_ascii_case(&value))
        }) {
            let source = self
                .epoch_source(stage)
                .map_err(|m| FrontendError::new(m, stage.span))?;
            self.resolver.source_epoch(&source).map_err(|e| {
                FrontendError::new(
                    format!(
                        "failed to resolve SOURCE_DATE_EPOCH from stage {}: {e}",
                        stage.name.as_deref().unwrap_or_default()
                    ),
                    stage.span,
                )
            })?
        } else {
            return Err(FrontendError::global(format!("invalid SOURCE_DATE_EPOCH: {value}"))
                .with_hint(
                    "SOURCE_DATE_EPOCH is a Unix time in seconds (e.g. $(git log -1 --format=%ct)), \
                     `context`, or the name of a stage that is FROM scratch with one ADD of a URL or git ref",
                ));
        };
        let number = self.epoch.map(|n| n.to_string());
        // BuildKit's setBuildArgValue: replaced where it was set, removed when there is none.
        if self.opts.build_args.contains_key(KEY) {
            let args = &mut self.opts.to_mut().build_args;
            match &number {
                Some(n) => args.insert(KEY.to_string(), n.clone()),
                None => args.remove(KEY),
            };
        }
        if self.global_args.get(KEY).is_some() {
            match &number {
                Some(n) => self.global_args.inherit(KEY, n),
                None => self.global_args.remove(KEY),
            }
        }
        Ok(())
    }

    /// The one remote source of a SOURCE_DATE_EPOCH stage, or why the stage is not
    /// source-only (BuildKit's texts).
    fn epoch_source(&self, stage: &Stage) -> Result<EpochSource, String> {
        // The stage's words see the global ARGs without SOURCE_DATE_EPOCH itself.
        let mut env: EnvList = self.global_args.clone();
        env.remove(KEY);
        let expand = |word: &str, env: &EnvList| {
            self.lexer
                .process_word(word, env)
                .map(|e| e.result)
                .map_err(|e| e.to_string())
        };
        let base = expand(&stage.base, &env).map_err(|e| {
            format!(
                "failed to process source stage base name {:?}: {e}",
                stage.base
            )
        })?;
        if base != "scratch" {
            return Err("SOURCE_DATE_EPOCH stage must use FROM scratch".into());
        }
        let mut source = None;
        for ins in &stage.commands {
            match &ins.command {
                Command::Arg(defs) => {
                    for def in defs {
                        if let Some(v) = self.opts.build_args.get(&def.key) {
                            env.inherit(&def.key, v);
                        } else if let Some(d) = &def.value {
                            let v = expand(d, &env)?;
                            env.inherit(&def.key, &v);
                        }
                    }
                }
                Command::Add(add) => {
                    if source.is_some() {
                        return Err(
                            "SOURCE_DATE_EPOCH stage must contain exactly one remote ADD".into(),
                        );
                    }
                    if !add.files.contents.is_empty() || add.files.paths.len() != 1 {
                        return Err(
                            "SOURCE_DATE_EPOCH stage must contain exactly one remote ADD source"
                                .into(),
                        );
                    }
                    let src = expand(&add.files.paths[0], &env)?;
                    let checksum = match &add.checksum {
                        Some(c) => Some(expand(c, &env)?),
                        None => None,
                    };
                    if is_git(&src) {
                        let g = git_ref::parse(&src)?;
                        source = Some(EpochSource::Git {
                            remote: g.remote,
                            reference: g.reference,
                            checksum: checksum.or(g.checksum),
                        });
                        continue;
                    }
                    if !is_http(&src) {
                        return Err(
                            "SOURCE_DATE_EPOCH stage source must be a single HTTP(S) or Git ADD"
                                .into(),
                        );
                    }
                    source = Some(EpochSource::Http { url: src, checksum });
                }
                _ => {
                    return Err(format!(
                        "SOURCE_DATE_EPOCH stage does not meet source-only requirements: \
                         unsupported {} instruction",
                        ins.keyword
                    ))
                }
            }
        }
        source.ok_or_else(|| "SOURCE_DATE_EPOCH stage must contain exactly one remote ADD".into())
    }
}
