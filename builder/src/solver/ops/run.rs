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

use crate::exec::{self, RunSpec, SpecMount};
use crate::snapshot::{Active, View};
use crate::solver::layer_writer::{Layer, Writer};
use crate::solver::scheduler::Done;
use crate::solver::{Output, SolveOptions};
use graph::{Exec, MountKind, Network, Vertex};
use std::path::{Path, PathBuf};

/// The overlay lower dirs of a layer stack, top first. A layer that occurs twice (two steps
/// with identical diffs) is kept only at its topmost place: overlayfs refuses a repeated
/// lowerdir ("conflicting lowerdir path"), and the lower copy cannot show anything the
/// identical upper one does not.
pub(super) fn lowers(opts: &SolveOptions, layers: &[Layer]) -> Result<Vec<PathBuf>, String> {
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
) -> Result<Vec<Layer>, String> {
    let Some((Output::Layers(base), _)) = inputs.first() else {
        return Err("RUN needs a file tree to run in".into());
    };
    let step = crate::store::step_dir(opts.root).map_err(|e| e.to_string())?;
    let bundle = &step.path().join("bundle");
    std::fs::create_dir_all(bundle).map_err(|e| format!("creating {}: {e}", bundle.display()))?;
    let lower_dirs = lowers(opts, base)?;
    let tree = opts
        .snapshotter
        .prepare(&lower_dirs, step.path())
        .map_err(|e| format!("mounting the step's file tree: {e}"))?;
    let merged = tree.root();
    let user = exec::user::resolve(merged, &e.user)?;
    let mut guards = Guards::default();
    let mut mounts = Vec::new();
    let mut secret_env = Vec::new();
    let mut secret_files = Vec::new();
    let mut leases = Vec::new();
    let mut ssh = SshSockets::default();
    for (n, m) in e.mounts.iter().enumerate() {
        if let MountKind::Ssh {
            id,
            required,
            mode,
            uid,
            gid,
        } = &m.kind
        {
            // BuildKit: an ssh id the client did not forward fails a required mount and
            // leaves an optional one out.
            let Some(agent) = opts.ssh.get(id) else {
                if *required {
                    return Err(format!(
                        "no SSH agent or key \"{id}\" was forwarded, and this step's ssh mount \
                         (target {}) is required: pass --ssh {id}=$SSH_AUTH_SOCK or --ssh {id}=KEYFILE",
                        m.target
                    ));
                }
                continue;
            };
            let source = ssh.proxy(n, agent, *uid, *gid, *mode)?;
            mounts.push(SpecMount::Bind {
                source,
                target: m.target.clone(),
                readonly: true,
            });
            continue;
        }
        if let MountKind::Secret {
            id,
            env,
            required,
            mode,
            uid,
            gid,
        } = &m.kind
        {
            let Some(source) = opts.secrets.get(id) else {
                if *required {
                    return Err(format!("secret {id} is required by this step but was not given: pass --secret id={id},src=PATH (or env=VAR)"));
                }
                continue;
            };
            let value = source.read(id).map_err(|e| e.to_string())?;
            if let Some(var) = env {
                let text = String::from_utf8(value.clone()).map_err(|_| {
                    format!(
                        "secret {id} is not UTF-8 text, so it cannot be an environment variable"
                    )
                })?;
                secret_env.push(format!("{var}={text}"));
            }
            if !m.target.is_empty() {
                let file = SecretFile::create(&value, *mode, *uid, *gid)?;
                mounts.push(SpecMount::Bind {
                    source: file.path.clone(),
                    target: m.target.clone(),
                    readonly: true,
                });
                secret_files.push(file);
            }
            continue;
        }
        mounts.push(spec_mount(
            n,
            m,
            inputs,
            opts,
            step.path(),
            &mut guards,
            &mut leases,
        )?);
    }
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
        hostname: "buildkitsandbox".into(),
        mounts,
    };
    let mut tail: Vec<String> = Vec::new();
    let code = opts
        .executor
        .run_lines(merged, bundle, &spec, &mut |line| {
            log(line);
            tail.push(line.to_string());
            if tail.len() > 20 {
                tail.remove(0);
            }
        })
        .map_err(|e| e.to_string())?;
    drop(secret_files);
    drop(ssh);
    drop(leases);
    drop(guards);
    if code != 0 {
        let shown: Vec<String> = e.args.iter().map(|a| a.to_string()).collect();
        let mut msg = format!(
            "process \"{}\" did not complete successfully: exit code: {code}",
            shown.join(" ")
        );
        if !tail.is_empty() {
            msg.push_str(&format!("\n  last output:\n    {}", tail.join("\n    ")));
        }
        return Err(msg);
    }
    let upper = tree.commit().map_err(|e| e.to_string())?;
    let snapshot = crate::store::adopt_upper(opts.root, &upper).map_err(|e| e.to_string())?;
    let mut out = base.clone();
    out.push(writer.commit(&snapshot, opts.epoch));
    Ok(out)
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
) -> Result<PathBuf, String> {
    match inputs.get(input).map(|i| &i.0) {
        Some(Output::Local(name)) => Ok(opts.local(name)?.dir.clone()),
        Some(Output::Layers(ls)) => {
            let mnt = step.join(format!("input-{n}-{input}"));
            std::fs::create_dir_all(&mnt)
                .map_err(|e| format!("creating {}: {e}", mnt.display()))?;
            let view = opts
                .snapshotter
                .view(&lowers(opts, ls)?, &mnt)
                .map_err(|e| format!("mounting a --mount source: {e}"))?;
            let root = view.root().to_path_buf();
            guards.views.push(view);
            Ok(root)
        }
        None => Err(format!("a mount names a missing input {input}")),
    }
}

#[allow(clippy::too_many_arguments)]
fn spec_mount(
    n: usize,
    m: &graph::ExecMount,
    inputs: &[Done],
    opts: &SolveOptions,
    step: &Path,
    guards: &mut Guards,
    leases: &mut Vec<super::cache_mount::CacheLease>,
) -> Result<SpecMount, String> {
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
                    .map_err(|e| format!("mounting a writable view of {source}: {e}"))?;
                let root = tree.root().to_path_buf();
                guards.writable.push(tree);
                root
            } else {
                // A single file: a throwaway copy takes the writes.
                let copy = step.join(format!("rw-{n}-file"));
                std::fs::copy(&src, &copy)
                    .map_err(|e| format!("copying {source} for a writable mount: {e}"))?;
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
            let req = super::cache_mount::CacheRequest {
                id,
                sharing,
                mode: *mode,
                uid: *uid,
                gid: *gid,
                seed,
            };
            let (dir, lease) = super::cache_mount::prepare(&opts.root.cache_mounts_dir(), &req)?;
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
        MountKind::Secret { id, .. } => Err(format!(
            "RUN --mount=type=secret (id {id}) is not built yet"
        )),
        MountKind::Ssh { .. } => Err("ssh mounts are set up by the step itself".into()),
    }
}

/// The forwarding sockets of a step's ssh mounts, in a 0700 temp dir of their own (short
/// paths: a socket path must fit in 108 bytes); stopped and removed when the step ends.
#[derive(Default)]
struct SshSockets {
    // Before `dir`: fields drop in order, and the sockets go before their directory.
    proxies: Vec<crate::ssh::AgentProxy>,
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
    ) -> Result<PathBuf, String> {
        let dir = match &self.dir {
            Some(d) => d,
            None => self.dir.insert(
                tempfile::Builder::new()
                    .prefix("pallet-ssh-")
                    .tempdir()
                    .map_err(|e| format!("creating a directory for ssh agent sockets: {e}"))?,
            ),
        };
        let proxy = crate::ssh::AgentProxy::start(
            agent,
            &dir.path().join(format!("{n}.sock")),
            uid,
            gid,
            mode,
        )?;
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
    fn create(value: &[u8], mode: u32, uid: u32, gid: u32) -> Result<SecretFile, String> {
        use std::io::Write;
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let dir = Path::new("/dev/shm");
        if !dir.is_dir() {
            return Err(
                "secret mounts need a tmpfs at /dev/shm (so secrets never touch the disk)".into(),
            );
        }
        let path = dir.join(format!(
            "pallet-secret-{}-{}",
            std::process::id(),
            blake3::hash(&rand_bytes()).to_hex()
        ));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| format!("creating a secret file: {e}"))?;
        let file = SecretFile { path };
        f.write_all(value)
            .map_err(|e| format!("writing a secret file: {e}"))?;
        std::os::unix::fs::chown(&file.path, Some(uid), Some(gid))
            .map_err(|e| format!("chown of a secret file: {e}"))?;
        std::fs::set_permissions(&file.path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| format!("chmod of a secret file: {e}"))?;
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
fn confined(root: &Path, rel: &str) -> Result<PathBuf, String> {
    let path = crate::exec::rootpath::resolve(root, std::ffi::OsStr::new(rel), true)
        .map_err(|e| format!("mount source {rel}: {e}"))?;
    if std::fs::symlink_metadata(&path).is_err() {
        return Err(format!("mount source {rel} does not exist in its source"));
    }
    Ok(path)
}
