//! One file op (COPY/ADD/WORKDIR/heredoc): applied on a writable tree over its first input
//! (the build's snapshotter; or on an empty tree, or straight into the upper dir when
//! [`super::direct_copy`] allows), reading sources from local directories or from read-only
//! views of other inputs' trees, and the changes committed as the op's layer.

use super::direct_copy::{self, LowerView};
use super::run::lowers;
use crate::events::Event;
use crate::exec::fileop::{self, Owner};
use crate::exec::user;
use crate::snapshot::View;
use crate::solver::layer_writer::{Layer, Writer};
use crate::solver::scheduler::Done;
use crate::solver::vertex::fetch_inputs;
use crate::solver::{LocalDir, Output, SolveOptions, StepError};
use crate::store::path_index::{self, PathIndex};
use crate::store::{adopt_upper, step_dir};
use crate::store::{fetch_path_index, has_layer};
use graph::{CopyAction, FileAction, FileOp};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub(in crate::solver) fn run(
    f: &FileOp,
    name: &str,
    inputs: &[Done],
    opts: &SolveOptions,
    writer: &Writer,
    events: &(dyn Fn(Event) + Sync),
) -> Result<Vec<Layer>, StepError> {
    let step = step_dir(opts.root)?;
    let upper = &step.path().join("upper");
    std::fs::create_dir_all(upper)
        .map_err(StepError::io(format!("creating {}", upper.display())))?;
    // Where the actions write, and the writable tree when there is one.
    let (base, dest_root, tree) = if f.on_input {
        let Some((Output::Layers(base), _)) = inputs.first() else {
            return Err(StepError::BadGraph(
                "a file operation needs a file tree to apply to".into(),
            ));
        };
        if direct_over_remote(f, name, base, opts, upper, events)? {
            (base.clone(), upper.clone(), None)
        } else {
            fetch_inputs(&inputs[..1], opts, events)?;
            let lower_dirs = lowers(opts, base)?;
            let views: Vec<&dyn LowerView> =
                lower_dirs.iter().map(|d| d as &dyn LowerView).collect();
            if direct_copy::prepare(f, &views, upper)? {
                (base.clone(), upper.clone(), None)
            } else {
                let tree = opts
                    .snapshotter
                    .prepare(&lower_dirs, step.path())
                    .map_err(StepError::mount("mounting the step's file tree"))?;
                (base.clone(), tree.root().to_path_buf(), Some(tree))
            }
        }
    } else {
        (Vec::new(), upper.clone(), None)
    };
    let mut sources = CopySources {
        inputs,
        opts,
        step: step.path(),
        roots: HashMap::new(),
        views: Vec::new(),
    };
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
                fileop::mkdir(&dest_root, path, *mode, *parents, o, *timestamp)?;
            }
            FileAction::Mkfile {
                path,
                mode,
                data,
                owner,
                timestamp,
            } => {
                let o = resolve_owner(&dest_root, owner.as_deref())?;
                fileop::mkfile(&dest_root, path, *mode, data.as_bytes(), o, *timestamp)?;
            }
            FileAction::Copy(c) => {
                let (src_root, local) = sources.get(c.input)?;
                copy(c, &src_root, &dest_root, local)?;
            }
        }
    }
    drop(sources);
    let upper = match tree {
        Some(tree) => tree.commit().map_err(StepError::Snapshot)?,
        None => upper.clone(),
    };
    let snapshot = adopt_upper(opts.root, &upper)?;
    let mut out = base;
    out.push(writer.commit(&snapshot, opts.epoch, name));
    Ok(out)
}

/// A plain COPY on top of layers some of which only a remote cache has: answered from their
/// path indexes (fetched, small) and the other layers' snapshots, without fetching the
/// layers. False: the step does not qualify, or a remote layer has no usable index (a bad one
/// is one warning); the caller fetches the layers and goes on as usual.
fn direct_over_remote(
    f: &FileOp,
    name: &str,
    base: &[Layer],
    opts: &SolveOptions,
    upper: &Path,
    events: &(dyn Fn(Event) + Sync),
) -> Result<bool, StepError> {
    let remote = |l: &Layer| matches!(l, Layer::Stored(r) if !has_layer(opts.root, &r.diff_id));
    let Some(imported) = opts.cache_from else {
        return Ok(false);
    };
    if !base.iter().any(remote) || direct_copy::plain_destination(f).is_none() {
        return Ok(false);
    }
    enum View {
        Dir(PathBuf),
        Index(PathIndex),
    }
    let mut views: Vec<View> = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    let mut from_index = 0;
    for l in base.iter().rev() {
        if let Layer::Stored(r) = l {
            if seen.contains(&r.diff_id) {
                continue;
            }
            seen.push(r.diff_id.clone());
        }
        if !remote(l) {
            views.push(View::Dir(l.snapshot(opts.root)?));
            continue;
        }
        let Layer::Stored(r) = l else { continue };
        let Some((blob, source)) = imported.path_index(&r.diff_id) else {
            return Ok(false);
        };
        let parsed = fetch_path_index(opts.root, opts.registry, source, &blob.digest, blob.size)
            .map_err(|e| e.to_string())
            .and_then(|bytes| path_index::parse(&bytes).map_err(|e| e.to_string()));
        match parsed {
            Ok(index) => {
                views.push(View::Index(index));
                from_index += 1;
            }
            Err(why) => {
                events(Event::Log {
                    name: name.to_string(),
                    line: format!(
                        "warning: the path index of layer {} ({}) cannot be used: {why}; \
                         fetching the layer instead",
                        r.diff_id, blob.digest
                    ),
                });
                return Ok(false);
            }
        }
    }
    let lowers: Vec<&dyn LowerView> = views
        .iter()
        .map(|v| match v {
            View::Dir(d) => d as &dyn LowerView,
            View::Index(i) => i as &dyn LowerView,
        })
        .collect();
    if !direct_copy::prepare(f, &lowers, upper)? {
        return Ok(false);
    }
    events(Event::Log {
        name: name.to_string(),
        line: format!(
            "COPY over {from_index} remote layers answered from their path indexes \
             (layers not fetched)"
        ),
    });
    Ok(true)
}

/// The trees COPY actions read, by input: local directories in place, other inputs through
/// read-only views, each mounted once per op and released when the op ends.
struct CopySources<'a> {
    inputs: &'a [Done],
    opts: &'a SolveOptions<'a>,
    step: &'a Path,
    roots: HashMap<usize, PathBuf>,
    views: Vec<Box<dyn View>>,
}

impl<'a> CopySources<'a> {
    /// The root to copy from, and the local directory when it is one (its `.dockerignore`
    /// applies, and its files belong to root).
    fn get(&mut self, input: usize) -> Result<(PathBuf, Option<&'a LocalDir>), StepError> {
        match self.inputs.get(input).map(|i| &i.0) {
            Some(Output::Local(name)) => {
                let local = self.opts.local(name)?;
                Ok((local.dir.clone(), Some(local)))
            }
            Some(Output::Layers(ls)) => {
                if let Some(root) = self.roots.get(&input) {
                    return Ok((root.clone(), None));
                }
                let mnt = self.step.join(format!("src-{input}"));
                std::fs::create_dir_all(&mnt)
                    .map_err(StepError::io(format!("creating {}", mnt.display())))?;
                let view = self
                    .opts
                    .snapshotter
                    .view(&lowers(self.opts, ls)?, &mnt)
                    .map_err(StepError::mount("mounting a COPY source"))?;
                let root = view.root().to_path_buf();
                self.views.push(view);
                self.roots.insert(input, root.clone());
                Ok((root, None))
            }
            None => Err(StepError::BadGraph(format!(
                "COPY names a missing input {input}"
            ))),
        }
    }
}

/// One COPY action. Files from a local directory (the context or a named one) belong to root
/// unless --chown says otherwise (docker's rule; buildx sends them with uid and gid 0), and
/// its `.dockerignore` applies; files from a stage or image keep their owners; an ADDed
/// archive's entries keep the owners recorded in it.
fn copy(
    c: &CopyAction,
    src_root: &Path,
    dest_root: &Path,
    local: Option<&LocalDir>,
) -> Result<(), StepError> {
    let chown = resolve_owner(dest_root, c.owner.as_deref())?;
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
    fileop::copy_with_owners(src_root, dest_root, c, owner, chown, exclude)?;
    Ok(())
}

/// `--chown` names are resolved in the destination tree, as BuildKit does.
fn resolve_owner(dest_root: &Path, owner: Option<&str>) -> Result<Option<Owner>, StepError> {
    match owner {
        None | Some("") => Ok(None),
        Some(o) => {
            let u = user::resolve(dest_root, o).map_err(|source| StepError::Chown {
                owner: o.to_string(),
                source,
            })?;
            Ok(Some(Owner {
                uid: u.uid,
                gid: u.gid,
            }))
        }
    }
}
