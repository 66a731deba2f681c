//! One RUN step: a writable tree over the input's snapshots (the build's snapshotter), its
//! mounts, the process (the build's executor), and the tree's changes committed as the step's
//! layer. The runner removes the stubs runc creates for /etc/hosts,
//! resolv.conf and the step's mounts; /proc, /dev and /sys that runc creates on a base without
//! them stay in the layer as empty directories, as they do with BuildKit.
//!
//! Secret and ssh mounts carry nothing into the graph but their ids: a secret is read when
//! the step starts and shown as a file on a tmpfs; an ssh mount is a forwarding socket
//! (`crate::ssh::AgentProxy`) to the agent `--ssh` named. Their mount points are stubs like
//! any other, so neither reaches the layer.

use super::cache_mount::{self, CacheLease, CacheRequest};
use crate::exec::{rootpath, user, RunSpec, SpecMount};
use crate::snapshot::{Active, View};
use crate::solver::error::shortened;
use crate::solver::layer_writer::{Layer, Writer};
use crate::solver::scheduler::Done;
use crate::solver::{Output, SolveOptions, StepError};
use crate::ssh::AgentProxy;
use crate::store::{adopt_upper, step_dir};
use graph::{Exec, ExecMount, MountKind, Network, Vertex};
use std::ffi::OsStr;
use std::fs::{OpenOptions, Permissions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The overlay lower dirs of a layer stack, top first. A layer that occurs twice (two steps
/// with identical diffs) is kept only at its topmost place: overlayfs refuses a repeated
/// lowerdir ("conflicting lowerdir path"), and the lower copy cannot show anything the
/// identical upper one does not.
pub(in crate::solver) fn lowers(
    opts: &SolveOptions,
    layers: &[Layer],
) -> Result<Vec<PathBuf>, StepError> {
    let mut out: Vec<PathBuf> = Vec::new();
    for l in layers.iter().rev() {
        let p = l.snapshot(opts.root)?;
        if !out.contains(&p) {
            out.push(p);
        }
    }
    Ok(out)
}

pub(in crate::solver) fn run(
    v: &Vertex,
    e: &Exec,
    inputs: &[Done],
    opts: &SolveOptions,
    writer: &Writer,
    log: &dyn Fn(&str),
) -> Result<Vec<Layer>, StepError> {
    let Some((Output::Layers(base), _)) = inputs.first() else {
        return Err(StepError::BadGraph(
            "RUN needs a file tree to run in".into(),
        ));
    };
    let step = step_dir(opts.root)?;
    let bundle = &step.path().join("bundle");
    std::fs::create_dir_all(bundle)
        .map_err(StepError::io(format!("creating {}", bundle.display())))?;
    let lower_dirs = lowers(opts, base)?;
    let tree = opts
        .snapshotter
        .prepare(&lower_dirs, step.path())
        .map_err(StepError::mount("mounting the step's file tree"))?;
    let merged = tree.root();
    let user = user::resolve(merged, &e.user)?;
    let mut held = Held::default();
    let (mounts, secret_env) = step_mounts(e, inputs, opts, step.path(), &mut held, log)?;
    let mut env = e.env.clone();
    env.extend(v.meta.proxy_env.iter().cloned());
    env.extend(secret_env);
    let spec = RunSpec {
        args: e.args.clone(),
        env,
        cwd: e.cwd.clone(),
        uid: user.uid,
        gid: user.gid,
        additional_gids: user.additional_gids,
        host_network: e.network != Network::None,
        hostname: if e.hostname.is_empty() {
            "buildkitsandbox".into()
        } else {
            e.hostname.clone()
        },
        mounts,
        insecure: e.insecure,
        shm_size: e.shm_size,
        ulimits: e.ulimits.clone(),
    };
    if let Some(p) = &e.platform {
        // The build checked the handler before the first step (see crate::binfmt).
        log(&format!("#emulated {p} (binfmt_misc, QEMU user emulation)"));
    }
    let mut tail: Vec<String> = Vec::new();
    let code = opts
        .executor
        .run_lines(merged, bundle, &spec, &mut |line| {
            log(line);
            tail.push(shortened(line));
            if tail.len() > 20 {
                tail.remove(0);
            }
        })?;
    drop(held);
    if code != 0 {
        return Err(StepError::Run {
            code,
            command: shortened(&e.args.join(" ")),
            tail,
        });
    }
    let upper = tree.commit().map_err(StepError::Snapshot)?;
    let snapshot = adopt_upper(opts.root, &upper)?;
    let mut out = base.clone();
    out.push(writer.commit(&snapshot, opts.epoch, &crate::solver::display_name(v)));
    Ok(out)
}

/// What a step's mounts hold while it runs; released when it ends, in this order (fields
/// drop in order): secret files, ssh sockets, cache leases, then the trees mounts read.
#[derive(Default)]
struct Held {
    secret_files: Vec<SecretFile>,
    ssh: SshSockets,
    leases: Vec<CacheLease>,
    guards: Guards,
}

/// The step's mounts for the runtime, in `e.mounts` order, and the environment its secrets
/// add (`env=`). What they hold goes into `held`.
fn step_mounts(
    e: &Exec,
    inputs: &[Done],
    opts: &SolveOptions,
    step: &Path,
    held: &mut Held,
    log: &dyn Fn(&str),
) -> Result<(Vec<SpecMount>, Vec<String>), StepError> {
    let mut mounts = Vec::new();
    let mut secret_env = Vec::new();
    for (n, m) in e.mounts.iter().enumerate() {
        let mount = match &m.kind {
            MountKind::Ssh { .. } => ssh_mount(n, m, opts, &mut held.ssh)?,
            MountKind::Secret { .. } => {
                secret_mount(m, opts, &mut secret_env, &mut held.secret_files)?
            }
            _ => Some(spec_mount(
                n,
                m,
                inputs,
                opts,
                step,
                &mut held.guards,
                &mut held.leases,
                log,
            )?),
        };
        mounts.extend(mount);
    }
    Ok((mounts, secret_env))
}

/// An ssh mount: a forwarding socket to the agent `--ssh` named. BuildKit: an ssh id the
/// client did not forward fails a required mount and leaves an optional one out (None).
fn ssh_mount(
    n: usize,
    m: &ExecMount,
    opts: &SolveOptions,
    ssh: &mut SshSockets,
) -> Result<Option<SpecMount>, StepError> {
    let MountKind::Ssh {
        id,
        required,
        mode,
        uid,
        gid,
    } = &m.kind
    else {
        return Ok(None);
    };
    let Some(agent) = opts.ssh.get(id) else {
        if *required {
            return Err(StepError::SshNotForwarded {
                id: id.clone(),
                target: m.target.clone(),
            });
        }
        return Ok(None);
    };
    let source = ssh.proxy(n, agent, *uid, *gid, *mode)?;
    Ok(Some(SpecMount::Bind {
        source,
        target: m.target.clone(),
        readonly: true,
    }))
}

/// A secret mount: its value read now, as an environment variable (`env=`) and/or a file on
/// a tmpfs (the mount, when it has a target). A secret not given fails a required mount and
/// leaves an optional one out (None).
fn secret_mount(
    m: &ExecMount,
    opts: &SolveOptions,
    secret_env: &mut Vec<String>,
    files: &mut Vec<SecretFile>,
) -> Result<Option<SpecMount>, StepError> {
    let MountKind::Secret {
        id,
        env,
        required,
        mode,
        uid,
        gid,
    } = &m.kind
    else {
        return Ok(None);
    };
    let Some(source) = opts.secrets.get(id) else {
        if *required {
            return Err(StepError::SecretNotGiven { id: id.clone() });
        }
        return Ok(None);
    };
    let value = source.read(id)?;
    if let Some(var) = env {
        let text = String::from_utf8(value.clone())
            .map_err(|_| StepError::SecretNotText { id: id.clone() })?;
        secret_env.push(format!("{var}={text}"));
    }
    if m.target.is_empty() {
        return Ok(None);
    }
    let file = SecretFile::create(&value, *mode, *uid, *gid)?;
    let mount = SpecMount::Bind {
        source: file.path.clone(),
        target: m.target.clone(),
        readonly: true,
    };
    files.push(file);
    Ok(Some(mount))
}

/// The trees a step's mounts read: views of other stages, throwaway writable trees for `rw`
/// bind mounts. Released when the step ends.
#[derive(Default)]
struct Guards {
    views: Vec<Box<dyn View>>,
    writable: Vec<Box<dyn Active>>,
}

/// The file tree of a step input: a local directory (read in place), or a read-only view of
/// a stage's layers.
fn input_root(
    n: usize,
    input: usize,
    inputs: &[Done],
    opts: &SolveOptions,
    step: &Path,
    guards: &mut Guards,
) -> Result<PathBuf, StepError> {
    match inputs.get(input).map(|i| &i.0) {
        Some(Output::Local(name)) => Ok(opts.local(name)?.dir.clone()),
        Some(Output::Layers(ls)) => {
            let mnt = step.join(format!("input-{n}-{input}"));
            std::fs::create_dir_all(&mnt)
                .map_err(StepError::io(format!("creating {}", mnt.display())))?;
            let view = opts
                .snapshotter
                .view(&lowers(opts, ls)?, &mnt)
                .map_err(StepError::mount("mounting a --mount source"))?;
            let root = view.root().to_path_buf();
            guards.views.push(view);
            Ok(root)
        }
        None => Err(StepError::BadGraph(format!(
            "a mount names a missing input {input}"
        ))),
    }
}

#[allow(clippy::too_many_arguments)]
fn spec_mount(
    n: usize,
    m: &ExecMount,
    inputs: &[Done],
    opts: &SolveOptions,
    step: &Path,
    guards: &mut Guards,
    leases: &mut Vec<CacheLease>,
    log: &dyn Fn(&str),
) -> Result<SpecMount, StepError> {
    match &m.kind {
        MountKind::Input {
            input,
            source,
            readonly,
        } => {
            let src_root = input_root(n, *input, inputs, opts, step, guards)?;
            let src = confined(&src_root, source)?;
            let src = if *readonly {
                src
            } else if src.is_dir() {
                // rw bind mounts: writes land in a throwaway tree, never in the source.
                let tree = opts
                    .snapshotter
                    .prepare(&[src], &step.join(format!("rw-{n}")))
                    .map_err(StepError::mount(format!(
                        "mounting a writable view of {source}"
                    )))?;
                let root = tree.root().to_path_buf();
                guards.writable.push(tree);
                root
            } else {
                // A single file: a throwaway copy takes the writes.
                let copy = step.join(format!("rw-{n}-file"));
                std::fs::copy(&src, &copy).map_err(StepError::io(format!(
                    "copying {source} for a writable mount"
                )))?;
                copy
            };
            Ok(SpecMount::Bind {
                source: src,
                target: m.target.clone(),
                readonly: *readonly,
            })
        }
        MountKind::Cache {
            id,
            sharing,
            from,
            mode,
            uid,
            gid,
        } => {
            let seed = match from {
                Some((input, source)) => Some((
                    input_root(n, *input, inputs, opts, step, guards)?,
                    source.clone(),
                )),
                None => None,
            };
            // A shared cache is in one step's tree at a time where mounts are moved in.
            let sharing = match sharing.as_str() {
                "shared" if !opts.executor.mounts_in_place() => "locked",
                s => s,
            };
            let req = CacheRequest {
                id,
                sharing,
                mode: *mode,
                uid: *uid,
                gid: *gid,
                seed,
            };
            let (dir, lease) = cache_mount::prepare(&opts.root.cache_mounts_dir(), &req)?;
            if !lease.is_throwaway() {
                opts.cache_mounts.record(id, sharing, &dir);
                // `--cache-from` with mounts: an empty local cache is filled from the
                // remote one first (under the lease; a failure is a warning and an empty
                // mount).
                if let Some(imported) = opts.cache_from {
                    match imported.restore_mount(opts.registry, id, &dir) {
                        Some(Ok(line)) | Some(Err(line)) => log(&line),
                        None => {}
                    }
                }
            }
            leases.push(lease);
            Ok(SpecMount::Bind {
                source: dir,
                target: m.target.clone(),
                readonly: false,
            })
        }
        MountKind::Tmpfs { size } => Ok(SpecMount::Tmpfs {
            target: m.target.clone(),
            size: *size,
        }),
        MountKind::Secret { id, .. } => Err(StepError::BadGraph(format!(
            "RUN --mount=type=secret (id {id}) is not built yet"
        ))),
        MountKind::Ssh { .. } => Err(StepError::BadGraph(
            "ssh mounts are set up by the step itself".into(),
        )),
    }
}

/// The forwarding sockets of a step's ssh mounts, in a 0700 temp dir of their own (short
/// paths: a socket path must fit in 108 bytes); stopped and removed when the step ends.
#[derive(Default)]
struct SshSockets {
    // Before `dir`: fields drop in order, and the sockets go before their directory.
    proxies: Vec<AgentProxy>,
    dir: Option<tempfile::TempDir>,
}

impl SshSockets {
    fn proxy(
        &mut self,
        n: usize,
        agent: &Path,
        uid: u32,
        gid: u32,
        mode: u32,
    ) -> Result<PathBuf, StepError> {
        let dir = match &self.dir {
            Some(d) => d,
            None => self.dir.insert(
                tempfile::Builder::new()
                    .prefix("pallet-ssh-")
                    .tempdir()
                    .map_err(StepError::io("creating a directory for ssh agent sockets"))?,
            ),
        };
        let proxy =
            AgentProxy::start(agent, &dir.path().join(format!("{n}.sock")), uid, gid, mode)?;
        let path = proxy.path().to_path_buf();
        self.proxies.push(proxy);
        Ok(path)
    }
}

/// A secret's value as a file on a tmpfs (/dev/shm), never on the store's disk; removed when
/// the step ends.
struct SecretFile {
    path: PathBuf,
}

impl SecretFile {
    fn create(value: &[u8], mode: u32, uid: u32, gid: u32) -> Result<SecretFile, StepError> {
        let dir = Path::new("/dev/shm");
        if !dir.is_dir() {
            return Err(StepError::NoShm);
        }
        let path = dir.join(format!(
            "pallet-secret-{}-{}",
            std::process::id(),
            blake3::hash(&rand_bytes()).to_hex()
        ));
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(StepError::io("creating a secret file"))?;
        let file = SecretFile { path };
        f.write_all(value)
            .map_err(StepError::io("writing a secret file"))?;
        std::os::unix::fs::chown(&file.path, Some(uid), Some(gid))
            .map_err(StepError::io("chown of a secret file"))?;
        std::fs::set_permissions(&file.path, Permissions::from_mode(mode))
            .map_err(StepError::io("chmod of a secret file"))?;
        Ok(file)
    }
}

impl Drop for SecretFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn rand_bytes() -> [u8; 16] {
    let mut b = [0u8; 16];
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    b.copy_from_slice(&nanos.to_le_bytes());
    b
}

/// `root/rel` with symlinks resolved inside `root` only (the shared `exec::rootpath`
/// resolver): a context symlink pointing out of the context cannot expose host files to a RUN.
fn confined(root: &Path, rel: &str) -> Result<PathBuf, StepError> {
    let path = rootpath::resolve(root, OsStr::new(rel), true).map_err(|source| {
        StepError::MountSource {
            path: rel.to_string(),
            source,
        }
    })?;
    if std::fs::symlink_metadata(&path).is_err() {
        return Err(StepError::MountSourceMissing {
            path: rel.to_string(),
        });
    }
    Ok(path)
}
