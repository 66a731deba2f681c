//! The seccomp filter of RUN steps and `pallet run`: Docker's default profile, built from its
//! published rules (moby/profiles `seccomp/default.json`, Apache-2.0), as BuildKit applies
//! containerd's equivalent in its sandbox mode. Default action: EPERM. Allowed: the syscalls
//! an ordinary process needs; `socket` except AF_VSOCK (40) and AF_KCM... as Docker writes it;
//! `personality` for the personas Docker allows; `clone` without namespace flags and `clone3`
//! as ENOSYS (so libc falls back to `clone`, where the flags are checked), because the step has
//! no CAP_SYS_ADMIN; and the syscalls of the capabilities the step holds. So `unshare`,
//! `mount`, `setns`, `bpf`, `keyctl`... fail with EPERM inside a step, as in `docker run`.
//!
//! The rules that depend on a capability are included for the capabilities the step has
//! (Docker's default set: none of them but CAP_SYS_CHROOT); the architecture rules for the
//! architecture pallet runs on (and its 32-bit companions).

use oci_spec::runtime::{
    Arch, Capability, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArgBuilder,
    LinuxSeccompBuilder, LinuxSeccompOperator, LinuxSyscall, LinuxSyscallBuilder,
};

/// Allowed for every process (Docker's unconditional list).
const ALLOWED: &[&str] = &[
    "accept",
    "accept4",
    "access",
    "adjtimex",
    "alarm",
    "bind",
    "brk",
    "cachestat",
    "capget",
    "capset",
    "chdir",
    "chmod",
    "chown",
    "chown32",
    "clock_adjtime",
    "clock_adjtime64",
    "clock_getres",
    "clock_getres_time64",
    "clock_gettime",
    "clock_gettime64",
    "clock_nanosleep",
    "clock_nanosleep_time64",
    "close",
    "close_range",
    "connect",
    "copy_file_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_ctl_old",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_wait",
    "epoll_wait_old",
    "eventfd",
    "eventfd2",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "faccessat",
    "faccessat2",
    "fadvise64",
    "fadvise64_64",
    "fallocate",
    "fanotify_mark",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "fchown",
    "fchown32",
    "fchownat",
    "fcntl",
    "fcntl64",
    "fdatasync",
    "fgetxattr",
    "flistxattr",
    "flock",
    "fork",
    "fremovexattr",
    "fsetxattr",
    "fstat",
    "fstat64",
    "fstatat64",
    "fstatfs",
    "fstatfs64",
    "fsync",
    "ftruncate",
    "ftruncate64",
    "futex",
    "futex_requeue",
    "futex_time64",
    "futex_wait",
    "futex_waitv",
    "futex_wake",
    "futimesat",
    "getcpu",
    "getcwd",
    "getdents",
    "getdents64",
    "getegid",
    "getegid32",
    "geteuid",
    "geteuid32",
    "getgid",
    "getgid32",
    "getgroups",
    "getgroups32",
    "getitimer",
    "getpeername",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getrandom",
    "getresgid",
    "getresgid32",
    "getresuid",
    "getresuid32",
    "getrlimit",
    "get_robust_list",
    "getrusage",
    "getsid",
    "getsockname",
    "getsockopt",
    "get_thread_area",
    "gettid",
    "gettimeofday",
    "getuid",
    "getuid32",
    "getxattr",
    "getxattrat",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "io_cancel",
    "ioctl",
    "io_destroy",
    "io_getevents",
    "io_pgetevents",
    "io_pgetevents_time64",
    "ioprio_get",
    "ioprio_set",
    "io_setup",
    "io_submit",
    "ipc",
    "kill",
    "landlock_add_rule",
    "landlock_create_ruleset",
    "landlock_restrict_self",
    "lchown",
    "lchown32",
    "lgetxattr",
    "link",
    "linkat",
    "listen",
    "listmount",
    "listxattr",
    "listxattrat",
    "llistxattr",
    "_llseek",
    "lremovexattr",
    "lseek",
    "lsetxattr",
    "lstat",
    "lstat64",
    "madvise",
    "map_shadow_stack",
    "membarrier",
    "memfd_create",
    "memfd_secret",
    "mincore",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "mlock",
    "mlock2",
    "mlockall",
    "mmap",
    "mmap2",
    "mprotect",
    "mq_getsetattr",
    "mq_notify",
    "mq_open",
    "mq_timedreceive",
    "mq_timedreceive_time64",
    "mq_timedsend",
    "mq_timedsend_time64",
    "mq_unlink",
    "mremap",
    "mseal",
    "msgctl",
    "msgget",
    "msgrcv",
    "msgsnd",
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    "name_to_handle_at",
    "nanosleep",
    "newfstatat",
    "_newselect",
    "open",
    "openat",
    "openat2",
    "pause",
    "pidfd_open",
    "pidfd_send_signal",
    "pipe",
    "pipe2",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "poll",
    "ppoll",
    "ppoll_time64",
    "prctl",
    "pread64",
    "preadv",
    "preadv2",
    "prlimit64",
    "process_mrelease",
    "pselect6",
    "pselect6_time64",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readahead",
    "readlink",
    "readlinkat",
    "readv",
    "recv",
    "recvfrom",
    "recvmmsg",
    "recvmmsg_time64",
    "recvmsg",
    "remap_file_pages",
    "removexattr",
    "removexattrat",
    "rename",
    "renameat",
    "renameat2",
    "restart_syscall",
    "riscv_hwprobe",
    "rmdir",
    "rseq",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_rr_get_interval_time64",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setparam",
    "sched_setscheduler",
    "sched_yield",
    "seccomp",
    "select",
    "semctl",
    "semget",
    "semop",
    "semtimedop",
    "semtimedop_time64",
    "send",
    "sendfile",
    "sendfile64",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "setfsgid",
    "setfsgid32",
    "setfsuid",
    "setfsuid32",
    "setgid",
    "setgid32",
    "setgroups",
    "setgroups32",
    "setitimer",
    "setpgid",
    "setpriority",
    "setregid",
    "setregid32",
    "setresgid",
    "setresgid32",
    "setresuid",
    "setresuid32",
    "setreuid",
    "setreuid32",
    "setrlimit",
    "set_robust_list",
    "setsid",
    "setsockopt",
    "set_thread_area",
    "set_tid_address",
    "setuid",
    "setuid32",
    "setxattr",
    "setxattrat",
    "shmat",
    "shmctl",
    "shmdt",
    "shmget",
    "shutdown",
    "sigaltstack",
    "signalfd",
    "signalfd4",
    "sigprocmask",
    "sigreturn",
    "socketcall",
    "socketpair",
    "splice",
    "stat",
    "stat64",
    "statfs",
    "statfs64",
    "statmount",
    "statx",
    "symlink",
    "symlinkat",
    "sync",
    "sync_file_range",
    "syncfs",
    "sysinfo",
    "tee",
    "tgkill",
    "time",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_gettime64",
    "timer_settime",
    "timer_settime64",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_gettime64",
    "timerfd_settime",
    "timerfd_settime64",
    "times",
    "tkill",
    "truncate",
    "truncate64",
    "ugetrlimit",
    "umask",
    "uname",
    "unlink",
    "unlinkat",
    "uretprobe",
    "utime",
    "utimensat",
    "utimensat_time64",
    "utimes",
    "vfork",
    "vmsplice",
    "wait4",
    "waitid",
    "waitpid",
    "write",
    "writev",
];

/// Namespace flags `clone` must not have without CAP_SYS_ADMIN: CLONE_NEWNS, NEWCGROUP,
/// NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET (Docker's mask, 0x7E020000).
const CLONE_NAMESPACE_FLAGS: u64 = 0x7E02_0000;

/// ENOSYS: what `clone3` answers without CAP_SYS_ADMIN (its flags are in memory, where a
/// filter cannot look; libc then uses `clone`).
const ENOSYS: u32 = 38;

/// The syscalls a capability adds (Docker's `includes.caps` rules).
fn by_capability(cap: Capability) -> &'static [&'static str] {
    match cap {
        Capability::DacReadSearch => &["open_by_handle_at"],
        Capability::SysAdmin => &[
            "bpf",
            "clone",
            "clone3",
            "fanotify_init",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "lookup_dcookie",
            "lsm_get_self_attr",
            "lsm_list_modules",
            "lsm_set_self_attr",
            "mount",
            "mount_setattr",
            "move_mount",
            "open_tree",
            "perf_event_open",
            "quotactl",
            "quotactl_fd",
            "setdomainname",
            "sethostname",
            "setns",
            "syslog",
            "umount",
            "umount2",
            "unshare",
        ],
        Capability::SysBoot => &["reboot"],
        Capability::SysChroot => &["chroot"],
        Capability::SysModule => &["delete_module", "init_module", "finit_module"],
        Capability::SysPacct => &["acct"],
        Capability::SysPtrace => &[
            "kcmp",
            "pidfd_getfd",
            "process_madvise",
            "process_vm_readv",
            "process_vm_writev",
            "ptrace",
        ],
        Capability::SysRawio => &["iopl", "ioperm"],
        Capability::SysTime => &["settimeofday", "stime", "clock_settime", "clock_settime64"],
        Capability::SysTtyConfig => &["vhangup"],
        Capability::SysNice => &[
            "get_mempolicy",
            "mbind",
            "set_mempolicy",
            "set_mempolicy_home_node",
        ],
        Capability::Syslog => &["syslog"],
        Capability::Bpf => &["bpf"],
        Capability::Perfmon => &["perf_event_open"],
        _ => &[],
    }
}

/// The architectures the filter covers, and the syscalls only they have.
fn architecture() -> (Vec<Arch>, &'static [&'static str]) {
    match std::env::consts::ARCH {
        "x86_64" => (
            vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32],
            &["arch_prctl", "modify_ldt"],
        ),
        "aarch64" => (
            vec![Arch::ScmpArchAarch64, Arch::ScmpArchArm],
            &[
                "arm_fadvise64_64",
                "arm_sync_file_range",
                "sync_file_range2",
                "breakpoint",
                "cacheflush",
                "set_tls",
            ],
        ),
        "riscv64" => (vec![Arch::ScmpArchRiscv64], &["riscv_flush_icache"]),
        "s390x" => (
            vec![Arch::ScmpArchS390x, Arch::ScmpArchS390],
            &[
                "s390_pci_mmio_read",
                "s390_pci_mmio_write",
                "s390_runtime_instr",
            ],
        ),
        "powerpc64" => (
            vec![Arch::ScmpArchPpc64le],
            &["sync_file_range2", "swapcontext"],
        ),
        _ => (vec![Arch::ScmpArchNative], &[]),
    }
}

fn allow(names: &[&str]) -> LinuxSyscall {
    rule(names, LinuxSeccompAction::ScmpActAllow, &[])
}

/// A rule; `args` as (index, value, op), all of which must hold.
fn rule(
    names: &[&str],
    action: LinuxSeccompAction,
    args: &[(usize, u64, LinuxSeccompOperator)],
) -> LinuxSyscall {
    let mut b = LinuxSyscallBuilder::default()
        .names(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
        .action(action);
    if !args.is_empty() {
        b = b.args(
            args.iter()
                .map(|&(index, value, op)| {
                    let mut a = LinuxSeccompArgBuilder::default()
                        .index(index)
                        .value(value)
                        .op(op);
                    if op == LinuxSeccompOperator::ScmpCmpMaskedEq {
                        a = a.value_two(0u64);
                    }
                    a.build().expect("a seccomp argument rule builds")
                })
                .collect::<Vec<_>>(),
        );
    }
    b.build().expect("a seccomp rule builds")
}

/// Docker's default profile for a process holding `caps`.
pub fn default_profile(caps: &[Capability]) -> LinuxSeccomp {
    use LinuxSeccompOperator::{ScmpCmpEq, ScmpCmpGt, ScmpCmpLt, ScmpCmpMaskedEq};
    let (arches, arch_only) = architecture();
    let mut rules = vec![allow(ALLOWED), allow(arch_only)];
    // ptrace and process_vm_* are safe on kernels from 4.8 (Docker's minKernel); older
    // kernels cannot run this pallet's runc anyway.
    rules.push(allow(&["process_vm_readv", "process_vm_writev", "ptrace"]));
    // socket(): every family but AF_VSOCK (40)... Docker's three ranges.
    for (value, op) in [(38, ScmpCmpLt), (39, ScmpCmpEq), (40, ScmpCmpGt)] {
        rules.push(rule(
            &["socket"],
            LinuxSeccompAction::ScmpActAllow,
            &[(0, value, op)],
        ));
    }
    // personality(): the personas Docker allows (PER_LINUX, PER_LINUX32, UNAME26 variants,
    // and the query 0xffffffff).
    for value in [0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff] {
        rules.push(rule(
            &["personality"],
            LinuxSeccompAction::ScmpActAllow,
            &[(0, value, ScmpCmpEq)],
        ));
    }
    for cap in caps {
        let names = by_capability(*cap);
        if !names.is_empty() {
            rules.push(allow(names));
        }
    }
    if !caps.contains(&Capability::SysAdmin) {
        let flags_arg = if std::env::consts::ARCH == "s390x" {
            1
        } else {
            0
        };
        rules.push(rule(
            &["clone"],
            LinuxSeccompAction::ScmpActAllow,
            &[(flags_arg, CLONE_NAMESPACE_FLAGS, ScmpCmpMaskedEq)],
        ));
        let mut clone3 = rule(&["clone3"], LinuxSeccompAction::ScmpActErrno, &[]);
        clone3.set_errno_ret(Some(ENOSYS));
        rules.push(clone3);
    }
    LinuxSeccompBuilder::default()
        .default_action(LinuxSeccompAction::ScmpActErrno)
        .default_errno_ret(1u32)
        .architectures(arches)
        .syscalls(rules)
        .build()
        .expect("the seccomp profile builds")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed_names(p: &LinuxSeccomp) -> Vec<String> {
        p.syscalls()
            .iter()
            .flatten()
            .filter(|r| r.action() == LinuxSeccompAction::ScmpActAllow && r.args().is_none())
            .flat_map(|r| r.names().clone())
            .collect()
    }

    #[test]
    fn steps_without_sys_admin_cannot_unshare_or_mount() {
        let p = default_profile(&super::super::spec::DEFAULT_CAPABILITIES);
        let names = allowed_names(&p);
        for denied in [
            "unshare", "mount", "setns", "keyctl", "bpf", "umount2", "clone3",
        ] {
            assert!(!names.iter().any(|n| n == denied), "{denied} is allowed");
        }
        for needed in [
            "read",
            "execve",
            "openat",
            "chroot",
            "wait4",
            "rt_sigaction",
        ] {
            assert!(names.iter().any(|n| n == needed), "{needed} is not allowed");
        }
        assert_eq!(p.default_action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(p.default_errno_ret(), Some(1));
        let clone = p
            .syscalls()
            .iter()
            .flatten()
            .find(|r| r.names() == &["clone".to_string()])
            .expect("a clone rule");
        let arg = clone.args().as_ref().unwrap()[0];
        assert_eq!(arg.value(), CLONE_NAMESPACE_FLAGS);
        assert_eq!(arg.op(), LinuxSeccompOperator::ScmpCmpMaskedEq);
    }

    #[test]
    fn sys_admin_allows_what_docker_allows_with_it() {
        let p = default_profile(&[Capability::SysAdmin]);
        let names = allowed_names(&p);
        assert!(names.iter().any(|n| n == "unshare") && names.iter().any(|n| n == "mount"));
        assert!(p
            .syscalls()
            .iter()
            .flatten()
            .all(|r| r.action() != LinuxSeccompAction::ScmpActErrno));
    }
}
