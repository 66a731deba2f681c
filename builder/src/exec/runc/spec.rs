//! The OCI runtime spec (config.json) of one RUN step, built with oci-spec's runtime types.
//!
//! The values follow Docker's default Linux spec (moby `oci/defaults.go`) and BuildKit's
//! executor (`executor/oci/spec.go`, `mounts.go`, containerd's `oci.populateDefaultUnixSpec`):
//!
//! - process: terminal false; Docker's 14 default capabilities in the bounding, permitted and
//!   effective sets (inheritable and ambient empty, as moby and containerd do since
//!   CVE-2022-24769); noNewPrivileges false (BuildKit resets it so setuid binaries such as `su`
//!   and `sudo` work in RUN); RLIMIT_NOFILE 1048576 (capped at the host's fs.nr_open, and at pallet's own hard limit
//!   when pallet lacks CAP_SYS_RESOURCE, as in a container: runc could not set more).
//! - mounts: /proc, /dev (tmpfs 755, 64 MiB), /dev/pts, /dev/shm (tmpfs 1777, 64 MiB),
//!   /dev/mqueue, /sys (sysfs, ro), /etc/resolv.conf and /etc/hosts (ro binds of the files the
//!   runner writes), /sys/fs/cgroup (ro), then the step's own mounts in order.
//! - linux: new pid, ipc, uts and mount namespaces; a new network namespace unless the step uses
//!   the host's (runc brings its loopback up: its `loopback` network strategy is added for every
//!   new netns, so `lo` is UP with 127.0.0.1, and there is no other interface); Docker's masked
//!   and read-only paths; a deny-all device cgroup rule (runc appends its default allow list:
//!   null, zero, full, tty, random, urandom, ptmx, pts); cgroupsPath /pallet/ID; no resource
//!   limits.
//! - seccomp: Docker's default profile ([`super::seccomp`]), as BuildKit applies containerd's
//!   in its sandbox mode: no `unshare`, `mount`, `setns`, `bpf`... without CAP_SYS_ADMIN.
//! - pids: at most [`PIDS_LIMIT`] tasks in the step's cgroup, so a fork bomb in a RUN ends there
//!   instead of taking the host (Docker and BuildKit set none by default; this is a deliberate
//!   difference).
//! - No AppArmor/SELinux label (neither is enabled on the machines pallet targets).
//!
//! Rootless ([`Privilege::Rootless`]: runc runs as uid 0 of pallet's user namespace, with
//! `--rootless=true`; the spec needs no user namespace of its own, since runc is in one and
//! the step's uid/gid are that namespace's, which are the image's), these differ:
//!
//! - cgroups are left alone: no `resources` and no `cgroupsPath`, so no device cgroup rule and
//!   **no pids limit**. A normal user cannot write cgroups here (cgroup v1, or v2 without a
//!   delegated subtree), and runc refuses a limit it cannot set ("cannot set pids limit:
//!   container could not join or create cgroup"). A fork bomb in a rootless RUN is bounded by
//!   the user's own RLIMIT_NPROC instead. Devices are still only runc's default list, bind-mounted
//!   from the host (mknod is not allowed in a user namespace).
//! - RLIMIT_NOFILE is capped at pallet's own hard limit (raising a hard limit needs
//!   CAP_SYS_RESOURCE in the initial namespace, which the capabilities inside do not give).
//! - /sys is the host's /sys bound read-only (rbind, nosuid, noexec, nodev) when the step shares
//!   the host's network namespace: sysfs can only be mounted by the owner of the network
//!   namespace (runc's `spec --rootless` does the same). With `--network=none` the step has a
//!   network namespace of its own and gets a fresh sysfs as in root mode.
//! - The capabilities, seccomp profile, masked paths and namespaces are the same: the
//!   capabilities are the user namespace's, never the host's.

use std::collections::HashSet;
use std::path::Path;

use oci_spec::runtime::{
    Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxDeviceCgroupBuilder,
    LinuxNamespaceBuilder, LinuxNamespaceType, LinuxPidsBuilder, LinuxResourcesBuilder, Mount,
    MountBuilder, PosixRlimit, PosixRlimitBuilder, PosixRlimitType, ProcessBuilder, RootBuilder,
    Spec, SpecBuilder, UserBuilder,
};

use super::seccomp::default_profile;
use super::{Privilege, RunError, RunSpec, SpecMount};

/// Docker's default capability set (moby `oci.DefaultCapabilities`).
pub const DEFAULT_CAPABILITIES: [Capability; 14] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

/// Docker's masked paths.
const MASKED_PATHS: [&str; 10] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
];

/// Docker's read-only paths.
const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Tasks a step's cgroup may hold: far above what a build step forks (a parallel compile of a
/// large project is a few hundred), far below what takes a host down.
pub const PIDS_LIMIT: i64 = 32_768;

/// linux/capability.h
const CAP_SYS_RESOURCE: u32 = 24;

/// The open-files limit of the step (soft and hard).
const NOFILE: u64 = 1_048_576;

/// Paths the runner wrote for the step, bind-mounted read-only.
pub struct EtcFiles<'a> {
    pub hosts: &'a Path,
    pub resolv_conf: &'a Path,
}

/// The spec for `spec` over `rootfs`, as container `id`.
pub fn build(
    spec: &RunSpec,
    rootfs: &Path,
    hostname: &str,
    etc: &EtcFiles<'_>,
    id: &str,
    privilege: Privilege,
) -> Result<Spec, RunError> {
    let rootless = privilege == Privilege::Rootless;
    let err = |what: &'static str, source: oci_spec::OciSpecError| RunError::Spec { what, source };
    let caps: HashSet<Capability> = DEFAULT_CAPABILITIES.into_iter().collect();
    let capabilities = LinuxCapabilitiesBuilder::default()
        .bounding(caps.clone())
        .permitted(caps.clone())
        .effective(caps)
        .inheritable(HashSet::new())
        .ambient(HashSet::new())
        .build()
        .map_err(|e| err("capabilities", e))?;
    let user = UserBuilder::default()
        .uid(spec.uid)
        .gid(spec.gid)
        .additional_gids(spec.additional_gids.clone())
        .build()
        .map_err(|e| err("user", e))?;
    let rlimits = rlimits(spec, rootless)?;
    let process = ProcessBuilder::default()
        .terminal(false)
        .user(user)
        .args(spec.args.clone())
        .env(spec.env.clone())
        .cwd(spec.cwd.clone())
        .capabilities(capabilities)
        .rlimits(rlimits)
        .no_new_privileges(false)
        .build()
        .map_err(|e| err("process", e))?;

    let mut namespaces = vec![
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Mount,
    ];
    if !spec.host_network {
        namespaces.push(LinuxNamespaceType::Network);
    }
    let namespaces = namespaces
        .into_iter()
        .map(|typ| LinuxNamespaceBuilder::default().typ(typ).build())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err("namespaces", e))?;
    let deny_all = LinuxDeviceCgroupBuilder::default()
        .allow(false)
        .access("rwm")
        .build()
        .map_err(|e| err("devices", e))?;
    let pids = LinuxPidsBuilder::default()
        .limit(PIDS_LIMIT)
        .build()
        .map_err(|e| err("pids", e))?;
    let resources = LinuxResourcesBuilder::default()
        .devices(vec![deny_all])
        .pids(pids)
        .build()
        .map_err(|e| err("resources", e))?;
    let mut linux = LinuxBuilder::default();
    if !rootless {
        linux = linux
            .resources(resources)
            .cgroups_path(format!("/pallet/{id}"));
    }
    let linux = linux
        .namespaces(namespaces)
        .masked_paths(
            MASKED_PATHS
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>(),
        )
        .readonly_paths(
            READONLY_PATHS
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>(),
        )
        .seccomp(default_profile(&DEFAULT_CAPABILITIES))
        .build()
        .map_err(|e| err("linux", e))?;

    let root = RootBuilder::default()
        .path(rootfs)
        .readonly(false)
        .build()
        .map_err(|e| err("root", e))?;
    SpecBuilder::default()
        .version("1.0.2-dev")
        .root(root)
        .hostname(hostname)
        .process(process)
        .mounts(mounts(spec, etc, rootless).map_err(|e| err("mounts", e))?)
        .linux(linux)
        .build()
        .map_err(|e| err("spec", e))
}

/// Writes `spec` as JSON to `path`, with capability lists sorted (oci-spec keeps them in hash
/// sets) so the same step writes the same file.
pub fn write(spec: &Spec, path: &Path) -> Result<(), RunError> {
    let mut value = serde_json::to_value(spec).map_err(RunError::SpecJson)?;
    if let Some(caps) = value
        .pointer_mut("/process/capabilities")
        .and_then(|c| c.as_object_mut())
    {
        for list in caps.values_mut() {
            if let Some(items) = list.as_array_mut() {
                items.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
            }
        }
    }
    let text = serde_json::to_vec_pretty(&value).map_err(RunError::SpecJson)?;
    std::fs::write(path, text).map_err(RunError::prepare(format!("writing {}", path.display())))
}

fn mounts(
    spec: &RunSpec,
    etc: &EtcFiles<'_>,
    rootless: bool,
) -> Result<Vec<Mount>, oci_spec::OciSpecError> {
    fn m(
        dest: &str,
        typ: &str,
        source: &Path,
        options: &[&str],
    ) -> Result<Mount, oci_spec::OciSpecError> {
        MountBuilder::default()
            .destination(dest)
            .typ(typ)
            .source(source)
            .options(options.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .build()
    }
    let p = Path::new;
    let ro_bind = ["nosuid", "noexec", "nodev", "rbind", "ro"];
    // BuildKit's default, 64 MiB, unless --shm-size says otherwise.
    let shm_size = match spec.shm_size {
        0 => "size=65536k".to_string(),
        bytes => format!("size={bytes}"),
    };
    let mut out = vec![
        m("/proc", "proc", p("proc"), &["nosuid", "noexec", "nodev"])?,
        m(
            "/dev",
            "tmpfs",
            p("tmpfs"),
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        )?,
        m(
            "/dev/pts",
            "devpts",
            p("devpts"),
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        )?,
        m(
            "/dev/shm",
            "tmpfs",
            p("shm"),
            &["nosuid", "noexec", "nodev", "mode=1777", &shm_size],
        )?,
        m(
            "/dev/mqueue",
            "mqueue",
            p("mqueue"),
            &["nosuid", "noexec", "nodev"],
        )?,
        if rootless && spec.host_network {
            m(
                "/sys",
                "bind",
                p("/sys"),
                &["rbind", "nosuid", "noexec", "nodev", "ro"],
            )?
        } else {
            m(
                "/sys",
                "sysfs",
                p("sysfs"),
                &["nosuid", "noexec", "nodev", "ro"],
            )?
        },
        m("/etc/resolv.conf", "bind", etc.resolv_conf, &ro_bind)?,
        m("/etc/hosts", "bind", etc.hosts, &ro_bind)?,
        m(
            "/sys/fs/cgroup",
            "cgroup",
            p("cgroup"),
            &["ro", "nosuid", "noexec", "nodev"],
        )?,
    ];
    for mount in &spec.mounts {
        out.push(match mount {
            SpecMount::Bind {
                source,
                target,
                readonly,
            } => m(
                target,
                "bind",
                // runc reads a relative source against the bundle dir, not our cwd.
                &std::path::absolute(source).map_err(|e| {
                    oci_spec::OciSpecError::Other(format!("mount source {}: {e}", source.display()))
                })?,
                &["rbind", if *readonly { "ro" } else { "rw" }],
            )?,
            SpecMount::Tmpfs { target, size } => {
                let size = size.map(|s| format!("size={s}"));
                let mut opts = vec!["nosuid"];
                opts.extend(size.as_deref());
                m(target, "tmpfs", p("tmpfs"), &opts)?
            }
        });
    }
    Ok(out)
}

/// The process's rlimits: RLIMIT_NOFILE (see [`nofile_limit`]) unless `--ulimit nofile=`
/// replaces it, and each `--ulimit` (docker's names; -1 is unlimited).
fn rlimits(spec: &RunSpec, rootless: bool) -> Result<Vec<PosixRlimit>, RunError> {
    let build = |typ: PosixRlimitType, soft: u64, hard: u64| {
        PosixRlimitBuilder::default()
            .typ(typ)
            .soft(soft)
            .hard(hard)
            .build()
            .map_err(|source| RunError::Spec {
                what: "rlimits",
                source,
            })
    };
    let mut out = Vec::new();
    if !spec.ulimits.iter().any(|u| u.name == "nofile") {
        let nofile = nofile_limit(rootless);
        out.push(build(PosixRlimitType::RlimitNofile, nofile, nofile)?);
    }
    for u in &spec.ulimits {
        let typ = rlimit_type(&u.name).ok_or_else(|| {
            RunError::Setup(format!(
                "--ulimit {}: unknown limit (docker's names: {})",
                u.name,
                graph::ULIMIT_NAMES.join(", ")
            ))
        })?;
        // -1: unlimited (RLIM_INFINITY).
        let value = |v: i64| u64::try_from(v).unwrap_or(u64::MAX);
        out.push(build(typ, value(u.soft), value(u.hard))?);
    }
    Ok(out)
}

fn rlimit_type(name: &str) -> Option<PosixRlimitType> {
    Some(match name {
        "core" => PosixRlimitType::RlimitCore,
        "cpu" => PosixRlimitType::RlimitCpu,
        "data" => PosixRlimitType::RlimitData,
        "fsize" => PosixRlimitType::RlimitFsize,
        "locks" => PosixRlimitType::RlimitLocks,
        "memlock" => PosixRlimitType::RlimitMemlock,
        "msgqueue" => PosixRlimitType::RlimitMsgqueue,
        "nice" => PosixRlimitType::RlimitNice,
        "nofile" => PosixRlimitType::RlimitNofile,
        "nproc" => PosixRlimitType::RlimitNproc,
        "rss" => PosixRlimitType::RlimitRss,
        "rtprio" => PosixRlimitType::RlimitRtprio,
        "rttime" => PosixRlimitType::RlimitRttime,
        "sigpending" => PosixRlimitType::RlimitSigpending,
        "stack" => PosixRlimitType::RlimitStack,
        _ => return None,
    })
}

/// 1048576, lowered to what runc can set: the host's fs.nr_open, and without CAP_SYS_RESOURCE
/// (pallet itself in a container) or rootless (capabilities of a user namespace do not raise
/// hard limits) pallet's own hard limit, which cannot be raised.
fn nofile_limit(rootless: bool) -> u64 {
    let mut limit = NOFILE;
    if let Some(max) = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
    {
        limit = limit.min(max);
    }
    if rootless || !has_sys_resource() {
        let mut current = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes into the struct we pass.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut current) } == 0 {
            limit = limit.min(current.rlim_max);
        }
    }
    limit
}

/// Whether this process's effective capabilities include CAP_SYS_RESOURCE (bit 24).
fn has_sys_resource() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << CAP_SYS_RESOURCE) != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_has_docker_defaults() {
        let run = RunSpec {
            args: vec!["sh".into()],
            env: vec!["PATH=/bin".into()],
            cwd: "/".into(),
            uid: 1000,
            gid: 1000,
            additional_gids: vec![50],
            host_network: true,
            hostname: "h".into(),
            mounts: vec![SpecMount::Tmpfs {
                target: "/t".into(),
                size: Some(1024),
            }],
            insecure: false,
            shm_size: 0,
            ulimits: vec![],
        };
        let etc = EtcFiles {
            hosts: Path::new("/b/hosts"),
            resolv_conf: Path::new("/b/resolv.conf"),
        };
        let spec = build(&run, Path::new("/r"), "h", &etc, "id1", Privilege::Root).unwrap();
        let v = serde_json::to_value(&spec).unwrap();
        assert_eq!(
            v["process"]["user"]["additionalGids"],
            serde_json::json!([50])
        );
        assert_eq!(v["process"]["noNewPrivileges"], false);
        assert_eq!(
            v["process"]["capabilities"]["bounding"]
                .as_array()
                .unwrap()
                .len(),
            14
        );
        let ns: Vec<_> = v["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].clone())
            .collect();
        assert!(!ns.contains(&serde_json::json!("network")), "{ns:?}");
        let mounts = v["mounts"].as_array().unwrap();
        assert_eq!(
            mounts.last().unwrap()["options"],
            serde_json::json!(["nosuid", "size=1024"])
        );
        assert_eq!(v["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(v["linux"]["resources"]["pids"]["limit"], PIDS_LIMIT);
    }
}
