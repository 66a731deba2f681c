//! One file op (COPY/ADD/WORKDIR/heredoc): applied on a writable tree over its first input
//! (the build's snapshotter; or on an empty tree, or straight into the upper dir when
//! [`super::direct_copy`] allows), reading sources from local directories or from read-only
//! views of other inputs' trees, and the changes committed as the op's layer.

use super::run::lowers;
use crate::exec::fileop::{self, Owner};
use crate::snapshot::View;
use crate::solver::layer_writer::{Layer, Writer};
use crate::solver::scheduler::Done;
use crate::solver::{Output, SolveOptions};
use graph::{FileAction, FileOp};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub(in crate::solver) fn run(
    f: &FileOp,
    inputs: &[Done],
    opts: &SolveOptions,
    writer: &Writer,
) -> Result<Vec<Layer>, String> {
    let step = crate::store::step_dir(opts.root).map_err(|e| e.to_string())?;
    let upper = &step.path().join("upper");
    std::fs::create_dir_all(upper).map_err(|e| format!("creating {}: {e}", upper.display()))?;
    // Where the actions write, and the writable tree when there is one.
    let (base, dest_root, tree) = if f.on_input {
        let Some((Output::Layers(base), _)) = inputs.first() else {
            return Err("a file operation needs a file tree to apply to".into());
        };
        let lower_dirs = lowers(opts, base)?;
        if super::direct_copy::prepare(f, &lower_dirs, upper)? {
            (base.clone(), upper.clone(), None)
        } else {
            let tree = opts
                .snapshotter
                .prepare(&lower_dirs, step.path())
                .map_err(|e| format!("mounting the step's file tree: {e}"))?;
            (base.clone(), tree.root().to_path_buf(), Some(tree))
        }
    } else {
        (Vec::new(), upper.clone(), None)
    };
    let mut sources: HashMap<usize, PathBuf> = HashMap::new();
    let mut views: Vec<Box<dyn View>> = Vec::new();
    for action in &f.actions {
        match action {
            FileAction::Mkdir {
                path,
                mode,
                parents,
                owner,
                timestamp,
            } => {
                let o = resolve_owner(&dest_root, owner.as_deref())?;
                fileop::mkdir(&dest_root, path, *mode, *parents, o, *timestamp)
                    .map_err(|e| e.to_string())?;
            }
            FileAction::Mkfile {
                path,
                mode,
                data,
                owner,
                timestamp,
            } => {
                let o = resolve_owner(&dest_root, owner.as_deref())?;
                fileop::mkfile(&dest_root, path, *mode, data.as_bytes(), o, *timestamp)
                    .map_err(|e| e.to_string())?;
            }
            FileAction::Copy(c) => {
                let (src_root, local) = match inputs.get(c.input).map(|i| &i.0) {
                    Some(Output::Local(name)) => {
                        let local = opts.local(name)?;
                        (local.dir.clone(), Some(local))
                    }
                    Some(Output::Layers(ls)) => {
                        let root = match sources.get(&c.input) {
                            Some(p) => p.clone(),
                            None => {
                                let mnt = step.path().join(format!("src-{}", c.input));
                                std::fs::create_dir_all(&mnt)
                                    .map_err(|e| format!("creating {}: {e}", mnt.display()))?;
                                let view = opts
                                    .snapshotter
                                    .view(&lowers(opts, ls)?, &mnt)
                                    .map_err(|e| format!("mounting a COPY source: {e}"))?;
                                let root = view.root().to_path_buf();
                                views.push(view);
                                sources.insert(c.input, root.clone());
                                root
                            }
                        };
                        (root, None)
                    }
                    None => return Err(format!("COPY names a missing input {}", c.input)),
                };
                // Files from a local directory (the context or a named one) belong to root
                // unless --chown says otherwise (docker's rule; buildx sends them with uid and
                // gid 0); files from a stage or image keep their owners; an ADDed archive's
                // entries keep the owners recorded in it.
                let chown = resolve_owner(&dest_root, c.owner.as_deref())?;
                let owner = match chown {
                    None if local.is_some() => Some(Owner { uid: 0, gid: 0 }),
                    other => other,
                };
                let ignore = local.and_then(|l| l.ignore.as_ref());
                let exclude_ignored = |rel: &str| ignore.is_some_and(|m| m.is_excluded(rel));
                let exclude: Option<fileop::Exclude> = if local.is_some() {
                    Some(&exclude_ignored)
                } else {
                    None
                };
                fileop::copy_with_owners(&src_root, &dest_root, c, owner, chown, exclude)
                    .map_err(|e| e.to_string())?;
            }
        }
    }
    drop(views);
    let upper = match tree {
        Some(tree) => tree.commit().map_err(|e| e.to_string())?,
        None => upper.clone(),
    };
    let snapshot = crate::store::adopt_upper(opts.root, &upper).map_err(|e| e.to_string())?;
    let mut out = base;
    out.push(writer.commit(&snapshot, opts.epoch));
    Ok(out)
}

/// `--chown` names are resolved in the destination tree, as BuildKit does.
fn resolve_owner(dest_root: &Path, owner: Option<&str>) -> Result<Option<Owner>, String> {
    match owner {
        None | Some("") => Ok(None),
        Some(o) => {
            let u = crate::exec::user::resolve(dest_root, o)
                .map_err(|e| format!("--chown={o}: {e}"))?;
            Ok(Some(Owner {
                uid: u.uid,
                gid: u.gid,
            }))
        }
    }
}
