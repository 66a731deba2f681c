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

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use testkit::files::{all_files, file_contains};
use testkit::git::git;
use testkit::oci_layout::{umoci_unpack, Layout};
use testkit::{pallet, require, text, Need, Need::*, Pallet, Store};

fn can_run(tools: &[&str]) -> bool {
    let mut needs = vec![Root, Busybox, Tool("runc"), Tool("umoci")];
    needs.extend(
        ["ssh-agent", "ssh-add", "ssh-keygen", "ldd"]
            .iter()
            .chain(tools)
            .map(|t| Need::Tool(t)),
    );
    require("ssh mount test", &needs)
}

/// pallet on `store` without the test process's own SSH agent: a test forwards only the
/// agents it starts.
fn without_host_agent(store: &Store) -> Pallet {
    store.pallet().env_remove("SSH_AUTH_SOCK")
}

/// A fresh ed25519 key pair at `path` (and `path.pub`); its SHA256 fingerprint.
pub(super) fn keygen(path: &Path, passphrase: &str) -> String {
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
pub(super) struct Agent {
    child: Child,
    pub(super) socket: PathBuf,
}

impl Agent {
    pub(super) fn start(socket: PathBuf, keys: &[&Path]) -> Agent {
        Agent::start_as(socket, keys, None)
    }

    /// [`Agent::start`] with the agent running as `user` (uid, gid): an agent answers only
    /// its own uid and root.
    pub(super) fn start_as(socket: PathBuf, keys: &[&Path], user: Option<(u32, u32)>) -> Agent {
        let mut agent = Command::new("ssh-agent");
        if let Some((uid, gid)) = user {
            std::os::unix::process::CommandExt::uid(&mut agent, uid);
            std::os::unix::process::CommandExt::gid(&mut agent, gid);
        }
        let child = agent
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

    pub(super) fn sock(&self) -> &str {
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
pub(super) fn ssh_add_tools(tools: &Path) {
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

/// `DIR/ctx` with `tools/` (ssh-add) and this Dockerfile.
fn context_with_ssh_add(dir: &Path, dockerfile: &str) -> PathBuf {
    let ctx = dir.join("ctx");
    ssh_add_tools(&ctx.join("tools"));
    std::fs::write(ctx.join("Dockerfile"), dockerfile).unwrap();
    ctx
}

/// The image of the OCI layout `layout`, unpacked by umoci into `DIR/bundle` (emptied first).
fn unpack(dir: &Path, layout: &Path) -> PathBuf {
    let bundle = dir.join("bundle");
    let _ = std::fs::remove_dir_all(&bundle);
    umoci_unpack(layout, "latest", &bundle)
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
    let store = Store::busybox(pallet!());
    let tmp = store.dir();
    let key = tmp.join("id_test");
    let fp = keygen(&key, "");
    let other_key = tmp.join("id_other");
    keygen(&other_key, "");
    let ctx = context_with_ssh_add(tmp, FORWARDING);
    let agent = Agent::start(tmp.join("agent-1.sock"), &[&key]);
    let layout = tmp.join("oci");
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
    let out = without_host_agent(&store)
        .args(args)
        .env("SSH_AUTH_SOCK", agent.sock())
        .output();
    let log = text(&out.stderr);
    assert!(out.status.success(), "build failed:\n{log}");

    let rootfs = unpack(tmp, &layout);
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
    for (n, paths) in Layout::new(&layout).layer_paths().iter().enumerate() {
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
    for f in all_files(store.root()) {
        assert!(
            !file_contains(&f, agent.sock().as_bytes()),
            "the agent's socket path is in {}",
            f.display()
        );
    }

    // Another agent, another socket path, the same ids: every step is a cache hit.
    let agent2 = Agent::start(tmp.join("agent-2.sock"), &[&other_key]);
    drop(agent);
    let out = without_host_agent(&store)
        .args(args)
        .env("SSH_AUTH_SOCK", agent2.sock())
        .output();
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
    let store = Store::busybox(pallet!());
    let tmp = store.dir();
    let k1 = tmp.join("k1");
    let k2 = tmp.join("k2");
    let fp1 = keygen(&k1, "");
    let fp2 = keygen(&k2, "");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&k2, std::fs::Permissions::from_mode(0o644)).unwrap();
    let ctx = context_with_ssh_add(
        tmp,
        "FROM busybox\nCOPY tools/ /\nRUN --mount=type=ssh,id=deploy,required ssh-add -l > /keys\n",
    );
    let pallet_tmp = tmp.join("pallet-tmp");
    std::fs::create_dir(&pallet_tmp).unwrap();
    let layout = tmp.join("oci");
    let spec = format!("deploy={},{}", k1.display(), k2.display());
    let out = without_host_agent(&store)
        .args([
            "build",
            "-t",
            "ssh-test",
            "--ssh",
            &spec,
            "-o",
            &format!("type=oci,dest={},tar=false", layout.display()),
            ctx.to_str().unwrap(),
        ])
        .env("TMPDIR", pallet_tmp.to_str().unwrap())
        .output();
    assert!(out.status.success(), "build failed:\n{}", text(&out.stderr));
    let keys = read(&unpack(tmp, &layout), "keys");
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
    let store = Store::busybox(pallet!());
    let tmp = store.dir();
    let locked = tmp.join("locked");
    keygen(&locked, "a passphrase");
    let ctx = context_with_ssh_add(
        tmp,
        "FROM busybox\nRUN --mount=type=ssh,id=gh,required=true true\n",
    );
    // No SSH_AUTH_SOCK in pallet's environment, whatever the test process has.
    let build = |ssh: &[&str]| {
        let mut args = vec!["build"];
        for s in ssh {
            args.extend(["--ssh", s]);
        }
        args.push(ctx.to_str().unwrap());
        let out = without_host_agent(&store).args(&args).output();
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
        text(&out.stderr)
    };
    // A required id that was not given: the RUN and the id are named.
    let err = build(&[]);
    assert!(
        err.contains("RUN --mount=type=ssh,id=gh,required=true true")
            && err.contains("no SSH agent or key \"gh\" was forwarded")
            && err.contains("--ssh gh="),
        "{err}"
    );
    // --ssh default without an agent in the environment.
    let err = build(&["default"]);
    assert!(err.contains("SSH_AUTH_SOCK is not set"), "{err}");
    // A path that does not exist.
    let err = build(&["gh=/nonexistent/id_ed25519"]);
    assert!(
        err.contains("--ssh gh: /nonexistent/id_ed25519: No such file"),
        "{err}"
    );
    // A key with a passphrase.
    let spec = format!("gh={}", locked.display());
    let err = build(&[&spec]);
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
        let port = testkit::net::free_port();
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
        testkit::net::wait_listening(port, Duration::from_secs(10), "sshd");
        d
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `ADD ssh://...` fetches with the agent of `--ssh default` (and only with it: without
/// `--ssh default` the build stops and says so, as BuildKit does), from a real sshd.
#[test]
fn git_over_ssh_uses_the_forwarded_agent() {
    if !can_run(&["git", "sshd"]) {
        return;
    }
    let store = Store::busybox(pallet!());
    let tmp = store.dir();
    let key = tmp.join("id_git");
    keygen(&key, "");
    let srv = tmp.join("srv");
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
    let known_hosts = tmp.join("known_hosts");
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
    let ctx = context_with_ssh_add(tmp, &format!("FROM scratch\nADD {url} /src\n"));
    let dest = tmp.join("out");
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
    let agent = Agent::start(tmp.join("agent.sock"), &[&key]);
    let a = args(false);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let out = without_host_agent(&store)
        .args(&a)
        .env("PALLET_SSH_KNOWN_HOSTS", kh)
        .env("SSH_AUTH_SOCK", agent.sock())
        .output();
    let err = text(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("--ssh default"), "{err}");

    let a = args(true);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let out = without_host_agent(&store)
        .args(&a)
        .env("PALLET_SSH_KNOWN_HOSTS", kh)
        .env("SSH_AUTH_SOCK", agent.sock())
        .output();
    assert!(out.status.success(), "build failed:\n{}", text(&out.stderr));
    assert_eq!(
        std::fs::read_to_string(dest.join("src/hello.txt")).unwrap(),
        "over ssh\n"
    );

    // An agent without the authorized key is refused by the server: the key came from the
    // agent, not from anywhere else.
    let stranger = tmp.join("id_stranger");
    keygen(&stranger, "");
    let other = Agent::start(tmp.join("other.sock"), &[&stranger]);
    let out = without_host_agent(&store)
        .args([a.as_slice(), &["--no-cache"]].concat())
        .env("PALLET_SSH_KNOWN_HOSTS", kh)
        .env("SSH_AUTH_SOCK", other.sock())
        .output();
    let err = text(&out.stderr);
    assert!(!out.status.success(), "a stranger's key was accepted");
    assert!(err.contains("Permission denied"), "{err}");
}
