//! `RUN --mount=type=ssh` and `pallet build --ssh` end to end, with real OpenSSH tools: a
//! `ssh-agent` holding a freshly generated ed25519 key, the host's `ssh-add` (and the shared
//! libraries `ldd` names) copied into the build context so a RUN on busybox can ask the
//! forwarded agent for its keys, and the exported image unpacked with umoci. Also git over
//! ssh (`ADD ssh://...`) against a real `sshd` on 127.0.0.1, with the agent of `--ssh default`.
//!
//! Needs root, runc, umoci, ssh-agent/ssh-add/ssh-keygen (openssh-client), sshd
//! (openssh-server), git and busybox-static (scripts/ensure-tools.sh). Without them the tests
//! fail under CI=true and are skipped with a note elsewhere. Every agent and sshd a test
//! starts is killed when the test ends, pass or fail.

mod common;
use common::text;

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn can_run(tools: &[&str]) -> bool {
    let mut all = vec!["runc", "umoci", "ssh-agent", "ssh-add", "ssh-keygen", "ldd"];
    all.extend_from_slice(tools);
    common::require("ssh mount test", &all)
}

/// `pallet --root ROOT ARGS` with `env` set (a `None` value removes the variable).
fn pallet(root: &Path, args: &[&str], env: &[(&str, Option<&str>)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pallet"));
    cmd.arg("--root").arg(root).args(args);
    cmd.env_remove("SSH_AUTH_SOCK");
    for (k, v) in env {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    cmd.output().expect("run pallet")
}

/// A fresh ed25519 key pair at `path` (and `path.pub`); its SHA256 fingerprint.
fn keygen(path: &Path, passphrase: &str) -> String {
    let out = Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-C",
            "pallet-test",
            "-N",
            passphrase,
            "-f",
        ])
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success(), "ssh-keygen: {}", text(&out.stderr));
    fingerprint(&path.with_extension("pub"))
}

/// `ssh-keygen -lf KEY.pub`'s fingerprint field (`SHA256:...`).
fn fingerprint(public: &Path) -> String {
    let out = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(public)
        .output()
        .unwrap();
    assert!(out.status.success(), "ssh-keygen -l: {}", text(&out.stderr));
    text(&out.stdout)
        .split_whitespace()
        .nth(1)
        .expect("a fingerprint")
        .to_string()
}

/// An `ssh-agent -D` on a socket of the test's; killed on drop.
struct Agent {
    child: Child,
    socket: PathBuf,
}

impl Agent {
    fn start(socket: PathBuf, keys: &[&Path]) -> Agent {
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start ssh-agent");
        let agent = Agent { child, socket };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::os::unix::net::UnixStream::connect(&agent.socket).is_err() {
            assert!(Instant::now() < deadline, "ssh-agent did not listen");
            std::thread::sleep(Duration::from_millis(10));
        }
        for key in keys {
            let out = Command::new("ssh-add")
                .arg("-q")
                .arg(key)
                .env("SSH_AUTH_SOCK", &agent.socket)
                .output()
                .unwrap();
            assert!(out.status.success(), "ssh-add: {}", text(&out.stderr));
        }
        agent
    }

    fn sock(&self) -> &str {
        self.socket.to_str().unwrap()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Copies the host's `ssh-add` and the libraries `ldd` lists into `tools/` (same paths), for
/// `COPY tools/ /` onto busybox.
fn ssh_add_tools(tools: &Path) {
    let ldd = Command::new("ldd")
        .arg("/usr/bin/ssh-add")
        .output()
        .unwrap();
    assert!(ldd.status.success(), "ldd: {}", text(&ldd.stderr));
    let mut files = vec!["/usr/bin/ssh-add".to_string()];
    for word in text(&ldd.stdout).split_whitespace() {
        if word.starts_with('/') {
            files.push(word.to_string());
        }
    }
    for f in files {
        let dest = tools.join(f.trim_start_matches('/'));
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(&f, &dest).unwrap_or_else(|e| panic!("copy {f}: {e}"));
    }
}

/// A store with busybox:latest and a context with `tools/` (ssh-add) and this Dockerfile.
fn setup(tmp: &Path, dockerfile: &str) -> (PathBuf, PathBuf) {
    let root = tmp.join("root");
    let tar = tmp.join("busybox.tar");
    common::busybox_rootfs_tar(&tar);
    let out = pallet(
        &root,
        &["import", tar.to_str().unwrap(), "-t", "busybox:latest"],
        &[],
    );
    assert!(out.status.success(), "import: {}", text(&out.stderr));
    let ctx = tmp.join("ctx");
    ssh_add_tools(&ctx.join("tools"));
    std::fs::write(ctx.join("Dockerfile"), dockerfile).unwrap();
    (root, ctx)
}

/// The layers of the single image in an OCI layout directory: each as its list of paths.
fn layer_paths(layout: &Path) -> Vec<Vec<String>> {
    let blob = |digest: &str| {
        let hex = digest.strip_prefix("sha256:").unwrap();
        std::fs::read(layout.join("blobs/sha256").join(hex)).unwrap()
    };
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let manifest: serde_json::Value =
        serde_json::from_slice(&blob(index["manifests"][0]["digest"].as_str().unwrap())).unwrap();
    let mut layers = Vec::new();
    for l in manifest["layers"].as_array().unwrap() {
        let data = blob(l["digest"].as_str().unwrap());
        let mut raw = Vec::new();
        if l["mediaType"].as_str().unwrap().ends_with("gzip") {
            flate2::read::GzDecoder::new(&data[..])
                .read_to_end(&mut raw)
                .unwrap();
        } else {
            raw = data;
        }
        let mut paths = Vec::new();
        for e in tar::Archive::new(&raw[..]).entries().unwrap() {
            paths.push(e.unwrap().path().unwrap().to_string_lossy().into_owned());
        }
        layers.push(paths);
    }
    layers
}

fn unpack(tmp: &Path, layout: &Path) -> PathBuf {
    let bundle = tmp.join("bundle");
    let _ = std::fs::remove_dir_all(&bundle);
    let out = Command::new("umoci")
        .args(["unpack", "--image", &format!("{}:latest", layout.display())])
        .arg(&bundle)
        .output()
        .unwrap();
    assert!(out.status.success(), "umoci unpack: {}", text(&out.stderr));
    bundle.join("rootfs")
}

fn read(rootfs: &Path, file: &str) -> String {
    std::fs::read_to_string(rootfs.join(file))
        .unwrap_or_else(|e| panic!("{file}: {e}"))
        .trim()
        .to_string()
}

const FORWARDING: &str = "FROM busybox\n\
COPY tools/ /\n\
RUN --mount=type=ssh ssh-add -l > /keys; echo \"$SSH_AUTH_SOCK\" > /sock-env; \
stat -c '%a %u %g %F' /run/buildkit/ssh_agent.0 > /sock-stat; \
ssh-add -D 2> /remove-err || echo refused > /remove; ssh-add -l > /keys-after\n\
RUN --mount=type=ssh,id=other,target=/tmp/agent,uid=1000,gid=1000,mode=0660 --mount=type=ssh \
stat -c '%a %u %g %F' /tmp/agent /run/buildkit/ssh_agent.1 > /multi-stat; \
echo \"$SSH_AUTH_SOCK\" > /multi-env\n\
RUN --mount=type=ssh,id=absent if [ -e /run/buildkit ]; then echo present; else echo none; fi > /absent\n";

/// The agent is reachable from a RUN (ssh-add -l lists the key), through a socket with the
/// mount's owner and mode, read-only (ssh-add -D is refused), with SSH_AUTH_SOCK set as
/// BuildKit sets it; an optional id that was not given is left out; nothing of it reaches a
/// layer; and another agent at another path is a cache hit.
#[test]
fn agent_reaches_run_and_nothing_else() {
    if !can_run(&[]) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let key = tmp.path().join("id_test");
    let fp = keygen(&key, "");
    let other_key = tmp.path().join("id_other");
    keygen(&other_key, "");
    let (root, ctx) = setup(tmp.path(), FORWARDING);
    let agent = Agent::start(tmp.path().join("agent-1.sock"), &[&key]);
    let layout = tmp.path().join("oci");
    let dest = format!("type=oci,dest={},tar=false", layout.display());
    let other = format!("other={}", other_key.display());
    let args = [
        "build",
        "-t",
        "ssh-test",
        "--progress",
        "plain",
        "--ssh",
        "default",
        "--ssh",
        &other,
        "-o",
        &dest,
        ctx.to_str().unwrap(),
    ];
    let out = pallet(&root, &args, &[("SSH_AUTH_SOCK", Some(agent.sock()))]);
    let log = text(&out.stderr);
    assert!(out.status.success(), "build failed:\n{log}");

    let rootfs = unpack(tmp.path(), &layout);
    let keys = read(&rootfs, "keys");
    assert_eq!(keys.lines().count(), 1, "{keys}");
    assert_eq!(keys.split_whitespace().nth(1), Some(fp.as_str()), "{keys}");
    assert_eq!(read(&rootfs, "sock-env"), "/run/buildkit/ssh_agent.0");
    assert_eq!(read(&rootfs, "sock-stat"), "600 0 0 socket");
    // Read-only: the agent refused to drop its keys, and still has them.
    assert_eq!(read(&rootfs, "remove"), "refused");
    assert_eq!(read(&rootfs, "keys-after"), keys);
    let agent_keys = Command::new("ssh-add")
        .arg("-l")
        .env("SSH_AUTH_SOCK", agent.sock())
        .output()
        .unwrap();
    assert!(text(&agent_keys.stdout).contains(&fp));
    // Two ssh mounts: the one without a target is ssh_agent.1 (its index), SSH_AUTH_SOCK is
    // the first one's target; uid/gid/mode as asked.
    assert_eq!(
        read(&rootfs, "multi-stat"),
        "660 1000 1000 socket\n600 0 0 socket"
    );
    assert_eq!(read(&rootfs, "multi-env"), "/tmp/agent");
    // Not required and not given: no mount at all.
    assert_eq!(read(&rootfs, "absent"), "none");
    // No mount point, no parent created for one, in any layer or in the unpacked tree.
    for (n, paths) in layer_paths(&layout).iter().enumerate() {
        for p in paths {
            assert!(
                !p.contains("run/buildkit")
                    && !p.trim_end_matches('/').ends_with("run")
                    && !p.contains("tmp/agent"),
                "layer {n} has {p}"
            );
        }
    }
    assert!(!rootfs.join("run").exists());
    assert!(!rootfs.join("tmp/agent").exists());
    // Nor does the agent's path reach the store: it is in no key, no record.
    for f in common::all_files(&root) {
        assert!(
            !common::file_contains(&f, agent.sock().as_bytes()),
            "the agent's socket path is in {}",
            f.display()
        );
    }

    // Another agent, another socket path, the same ids: every step is a cache hit.
    let agent2 = Agent::start(tmp.path().join("agent-2.sock"), &[&other_key]);
    drop(agent);
    let out = pallet(&root, &args, &[("SSH_AUTH_SOCK", Some(agent2.sock()))]);
    let log = text(&out.stderr);
    assert!(out.status.success(), "rebuild failed:\n{log}");
    assert!(log.contains("cache: 5 hits, 0 misses"), "{log}");
}

/// Processes whose command line mentions `needle`.
fn processes_with(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(needle) {
                found.push(cmdline);
            }
        }
    }
    found
}

/// `--ssh ID=KEY,KEY`: pallet's own agent serves both keys (a 0644 key too, as BuildKit
/// takes it), and is gone with its socket directory when the build ends.
#[test]
fn key_files_are_served_by_a_private_agent() {
    if !can_run(&[]) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let k1 = tmp.path().join("k1");
    let k2 = tmp.path().join("k2");
    let fp1 = keygen(&k1, "");
    let fp2 = keygen(&k2, "");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&k2, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (root, ctx) = setup(
        tmp.path(),
        "FROM busybox\nCOPY tools/ /\nRUN --mount=type=ssh,id=deploy,required ssh-add -l > /keys\n",
    );
    let pallet_tmp = tmp.path().join("pallet-tmp");
    std::fs::create_dir(&pallet_tmp).unwrap();
    let layout = tmp.path().join("oci");
    let spec = format!("deploy={},{}", k1.display(), k2.display());
    let out = pallet(
        &root,
        &[
            "build",
            "-t",
            "ssh-test",
            "--ssh",
            &spec,
            "-o",
            &format!("type=oci,dest={},tar=false", layout.display()),
            ctx.to_str().unwrap(),
        ],
        &[("TMPDIR", Some(pallet_tmp.to_str().unwrap()))],
    );
    assert!(out.status.success(), "build failed:\n{}", text(&out.stderr));
    let keys = read(&unpack(tmp.path(), &layout), "keys");
    let got: Vec<&str> = keys
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    assert_eq!(got, vec![fp1.as_str(), fp2.as_str()], "{keys}");
    // The private agent ran in pallet's TMPDIR; it and its directory are gone.
    let leftover: Vec<_> = std::fs::read_dir(&pallet_tmp).unwrap().flatten().collect();
    assert!(leftover.is_empty(), "left in TMPDIR: {leftover:?}");
    let agents = processes_with(pallet_tmp.to_str().unwrap());
    assert!(agents.is_empty(), "still running: {agents:?}");
}

/// What a user gets wrong, and what pallet says.
#[test]
fn ssh_errors_say_what_to_do() {
    if !can_run(&[]) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let locked = tmp.path().join("locked");
    keygen(&locked, "a passphrase");
    let (root, ctx) = setup(
        tmp.path(),
        "FROM busybox\nRUN --mount=type=ssh,id=gh,required=true true\n",
    );
    let build = |ssh: &[&str], env: &[(&str, Option<&str>)]| {
        let mut args = vec!["build"];
        for s in ssh {
            args.extend(["--ssh", s]);
        }
        args.push(ctx.to_str().unwrap());
        let out = pallet(&root, &args, env);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
        text(&out.stderr)
    };
    // A required id that was not given: the RUN and the id are named.
    let err = build(&[], &[]);
    assert!(
        err.contains("RUN --mount=type=ssh,id=gh,required=true true")
            && err.contains("no SSH agent or key \"gh\" was forwarded")
            && err.contains("--ssh gh="),
        "{err}"
    );
    // --ssh default without an agent in the environment.
    let err = build(&["default"], &[("SSH_AUTH_SOCK", None)]);
    assert!(err.contains("SSH_AUTH_SOCK is not set"), "{err}");
    // A path that does not exist.
    let err = build(&["gh=/nonexistent/id_ed25519"], &[]);
    assert!(
        err.contains("--ssh gh: /nonexistent/id_ed25519: No such file"),
        "{err}"
    );
    // A key with a passphrase.
    let spec = format!("gh={}", locked.display());
    let err = build(&[&spec], &[]);
    assert!(err.contains("protected by a passphrase"), "{err}");
}

/// An `sshd` on 127.0.0.1 (a throwaway host key, one authorized key, root's shell runs
/// git-upload-pack); killed on drop.
struct Sshd {
    child: Child,
    port: u16,
    host_key_pub: String,
}

impl Sshd {
    fn start(dir: &Path, authorized: &Path) -> Sshd {
        let host_key = dir.join("host_key");
        keygen(&host_key, "");
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = dir.join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nAuthorizedKeysFile {}\n\
                 PidFile {}\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nPubkeyAuthentication yes\n\
                 PermitRootLogin prohibit-password\n",
                host_key.display(),
                authorized.display(),
                dir.join("sshd.pid").display()
            ),
        )
        .unwrap();
        // sshd refuses to start without its privilege separation directory.
        std::fs::create_dir_all("/run/sshd").unwrap();
        let sshd = ["/usr/sbin/sshd", "/sbin/sshd"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("sshd (openssh-server)");
        let child = Command::new(sshd)
            .arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start sshd");
        let d = Sshd {
            child,
            port,
            host_key_pub: std::fs::read_to_string(host_key.with_extension("pub")).unwrap(),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "sshd did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        d
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=Test", "-c", "user.email=test@example.com"])
        .args(["-c", "init.defaultBranch=main"])
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", text(&out.stderr));
}

/// `ADD ssh://...` fetches with the agent of `--ssh default` (and only with it: without
/// `--ssh default` the build stops and says so, as BuildKit does), from a real sshd.
#[test]
fn git_over_ssh_uses_the_forwarded_agent() {
    if !can_run(&["git", "sshd"]) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let key = tmp.path().join("id_git");
    keygen(&key, "");
    let srv = tmp.path().join("srv");
    std::fs::create_dir_all(&srv).unwrap();
    let authorized = srv.join("authorized_keys");
    std::fs::copy(key.with_extension("pub"), &authorized).unwrap();
    let sshd = Sshd::start(&srv, &authorized);
    let repo = srv.join("repo.git");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q"]);
    std::fs::write(repo.join("hello.txt"), "over ssh\n").unwrap();
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "one"]);

    // A known_hosts of the test's own (ssh reads root's from the passwd entry, not HOME, and
    // the test must not write there) knows the throwaway host key.
    let known_hosts = tmp.path().join("known_hosts");
    let host_key = sshd
        .host_key_pub
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>();
    std::fs::write(
        &known_hosts,
        format!("[127.0.0.1]:{} {}\n", sshd.port, host_key.join(" ")),
    )
    .unwrap();
    let url = format!("ssh://root@127.0.0.1:{}{}", sshd.port, repo.display());
    let (root, ctx) = setup(tmp.path(), &format!("FROM scratch\nADD {url} /src\n"));
    let dest = tmp.path().join("out");
    let args = |ssh: bool| {
        let mut a = vec!["build".to_string()];
        if ssh {
            a.extend(["--ssh".into(), "default".into()]);
        }
        a.extend([
            "-o".into(),
            format!("type=local,dest={}", dest.display()),
            ctx.display().to_string(),
        ]);
        a
    };
    let kh = known_hosts.to_str().unwrap();

    // Without --ssh default: refused before any connection, even with an agent around.
    let agent = Agent::start(tmp.path().join("agent.sock"), &[&key]);
    let a = args(false);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let out = pallet(
        &root,
        &a,
        &[
            ("PALLET_SSH_KNOWN_HOSTS", Some(kh)),
            ("SSH_AUTH_SOCK", Some(agent.sock())),
        ],
    );
    let err = text(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("--ssh default"), "{err}");

    let a = args(true);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let out = pallet(
        &root,
        &a,
        &[
            ("PALLET_SSH_KNOWN_HOSTS", Some(kh)),
            ("SSH_AUTH_SOCK", Some(agent.sock())),
        ],
    );
    assert!(out.status.success(), "build failed:\n{}", text(&out.stderr));
    assert_eq!(
        std::fs::read_to_string(dest.join("src/hello.txt")).unwrap(),
        "over ssh\n"
    );

    // An agent without the authorized key is refused by the server: the key came from the
    // agent, not from anywhere else.
    let stranger = tmp.path().join("id_stranger");
    keygen(&stranger, "");
    let other = Agent::start(tmp.path().join("other.sock"), &[&stranger]);
    let out = pallet(
        &root,
        &[a.as_slice(), &["--no-cache"]].concat(),
        &[
            ("PALLET_SSH_KNOWN_HOSTS", Some(kh)),
            ("SSH_AUTH_SOCK", Some(other.sock())),
        ],
    );
    let err = text(&out.stderr);
    assert!(!out.status.success(), "a stranger's key was accepted");
    assert!(err.contains("Permission denied"), "{err}");
}
