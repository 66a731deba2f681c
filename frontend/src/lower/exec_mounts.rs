//! `RUN --mount` lowered to exec mounts: the target relative to WORKDIR, the tree a bind or
//! cache mount reads (the context, a stage, a named context) as an input of the exec op, and
//! BuildKit's defaults per type (cache id and sharing, modes, secret and ssh targets).
//!
//! It takes mounts already parsed and expanded (`instructions::Mount`); which stage a
//! `from=` names was settled when stages were linked.

use super::paths::{clean_path, go_path_clean};
use super::Lowering;
use crate::instructions::{Mount, MountType};
use graph::{Digest, ExecMount, MountKind};
use std::collections::BTreeMap;

/// A mount that cannot be lowered (the `--mount` text is where the caller points).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExecMountError {
    /// `from=` names a stage defined after the one that mounts it.
    #[error("cannot mount from stage \"{stage}\", it needs to be defined before current stage \"{current}\"")]
    StageNotYetDefined { stage: String, current: String },
    /// A bind, cache or tmpfs mount over `/` itself.
    #[error("invalid mount target \"{0}\"")]
    RootTarget(String),
    #[error("a secret mount needs id= (or a target to take its name from)")]
    SecretWithoutId,
}

/// What an exec op reads: its inputs (0 is the stage's tree) and, per local source, the
/// paths read from it (part of the step's cache key).
#[derive(Default)]
pub(super) struct ExecInputs {
    pub inputs: Vec<Digest>,
    pub context_paths: BTreeMap<String, Vec<String>>,
}

impl ExecInputs {
    /// Adds an input; returns its index.
    pub fn input(&mut self, d: Digest) -> usize {
        self.inputs.push(d);
        self.inputs.len() - 1
    }
}

/// One mount of stage `stage` being lowered.
struct MountStep<'a> {
    stage: usize,
    mount: &'a Mount,
    /// The state `from=` names, if any.
    source_state: Option<usize>,
    /// The stage's WORKDIR, which relative targets join.
    dir: String,
}

impl MountStep<'_> {
    /// A target as the mount sees it: absolute, clean, relative ones joined to WORKDIR.
    fn resolve(&self, t: &str) -> String {
        if t.starts_with('/') {
            clean_path(t)
        } else {
            clean_path(&format!("{}/{t}", self.dir))
        }
    }

    /// The directory a bind, cache or tmpfs mount covers; BuildKit refuses `/` itself.
    fn dir_target(&self) -> Result<String, ExecMountError> {
        let t = self.resolve(self.raw_target());
        if t == "/" {
            return Err(ExecMountError::RootTarget(t));
        }
        Ok(t)
    }

    /// `target=` as written (empty when missing).
    fn raw_target(&self) -> &str {
        self.mount.target.as_deref().unwrap_or("")
    }

    /// `source=`, clean (`/` when missing).
    fn source(&self) -> String {
        clean_path(self.mount.source.as_deref().unwrap_or("/"))
    }
}

impl Lowering<'_> {
    /// One `--mount` of stage `i` as an exec mount; the inputs it reads are added to `reads`.
    /// A missing ssh target is left empty for the caller to number.
    pub(super) fn exec_mount(
        &mut self,
        i: usize,
        m: &Mount,
        source_state: Option<usize>,
        reads: &mut ExecInputs,
    ) -> Result<ExecMount, ExecMountError> {
        let step = MountStep {
            stage: i,
            mount: m,
            source_state,
            dir: self.states[i].dir.clone(),
        };
        match m.kind {
            MountType::Bind => self.bind_mount(&step, reads),
            MountType::Cache => self.cache_mount(&step, reads),
            MountType::Tmpfs => Ok(ExecMount {
                target: step.dir_target()?,
                kind: MountKind::Tmpfs { size: m.size },
            }),
            MountType::Secret => secret_mount(&step),
            MountType::Ssh => Ok(ssh_mount(&step)),
        }
    }

    fn bind_mount(
        &mut self,
        step: &MountStep,
        reads: &mut ExecInputs,
    ) -> Result<ExecMount, ExecMountError> {
        let target = step.dir_target()?;
        let input = self.mount_source_input(step, reads)?;
        Ok(ExecMount {
            target,
            kind: MountKind::Input {
                input,
                source: step.source(),
                readonly: step.mount.readonly,
            },
        })
    }

    fn cache_mount(
        &mut self,
        step: &MountStep,
        reads: &mut ExecInputs,
    ) -> Result<ExecMount, ExecMountError> {
        let m = step.mount;
        let target = step.dir_target()?;
        let from = match &m.from {
            Some(_) => Some((self.mount_source_input(step, reads)?, step.source())),
            None => None,
        };
        // The default id is the target as written (BuildKit's path.Clean(target)), so
        // `target=.cache` is one cache whatever the WORKDIR.
        let id =
            m.id.clone()
                .unwrap_or_else(|| go_path_clean(step.raw_target()));
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

    /// The input a bind (or seeded cache) mount reads: the `from=` state, which must be
    /// dispatched already, or the main context. Records the path read.
    fn mount_source_input(
        &mut self,
        step: &MountStep,
        reads: &mut ExecInputs,
    ) -> Result<usize, ExecMountError> {
        let read = step.source();
        let d = match step.source_state {
            Some(s) => {
                if !self.states[s].dispatched {
                    return Err(ExecMountError::StageNotYetDefined {
                        stage: self.states[s].stage_label(),
                        current: self.states[step.stage].stage_label(),
                    });
                }
                if let Some(name) = self.local_read_name(s) {
                    reads.context_paths.entry(name).or_default().push(read);
                }
                self.source_tree(s)
            }
            None => {
                reads
                    .context_paths
                    .entry("context".into())
                    .or_default()
                    .push(read);
                self.context_source()
            }
        };
        Ok(reads.input(d))
    }
}

/// A secret: its id (given, or the target's file name, or the source), its file (the
/// target, none when it only sets `env=`, else /run/secrets/ID) and mode.
fn secret_mount(step: &MountStep) -> Result<ExecMount, ExecMountError> {
    let m = step.mount;
    let id =
        m.id.clone()
            .or_else(|| {
                m.target
                    .as_deref()
                    .map(|t| t.rsplit('/').next().unwrap_or(t).to_string())
            })
            .or_else(|| m.source.clone())
            .ok_or(ExecMountError::SecretWithoutId)?;
    let target = match (&m.target, &m.env) {
        (Some(t), _) => step.resolve(t),
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

/// An ssh agent socket (`id` default `default`); without a target, empty here and numbered
/// by the caller (`ssh_agent.N`).
fn ssh_mount(step: &MountStep) -> ExecMount {
    let m = step.mount;
    ExecMount {
        target: m
            .target
            .as_deref()
            .map(|t| step.resolve(t))
            .unwrap_or_default(),
        kind: MountKind::Ssh {
            id: m.id.clone().unwrap_or_else(|| "default".into()),
            required: m.required,
            mode: m.mode.unwrap_or(0o600),
            uid: m.uid.unwrap_or(0),
            gid: m.gid.unwrap_or(0),
        },
    }
}
