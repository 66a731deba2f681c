//! Why rootless mode cannot work on this machine, in words that say what is missing and what to
//! do: no subordinate id range for the user, newuidmap/newgidmap missing or refusing, user
//! namespaces disabled or blocked by seccomp, a kernel older than overlayfs's `userxattr`.
//!
//! Owns the diagnosis (an errno of unshare(2) read against the process's seccomp mode and the
//! sysctls that turn user namespaces off); the checks themselves run in `super`.

use std::fmt;

/// What rootless mode lacks here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unavailable {
    /// The user has no passwd entry (newuidmap needs a name to look up).
    NoUser { uid: u32 },
    /// No range for the user in /etc/subuid or /etc/subgid (`file`), or the file is missing.
    NoRange {
        user: String,
        file: &'static str,
        missing_file: bool,
    },
    /// newuidmap or newgidmap is not on PATH.
    NoTool { tool: &'static str },
    /// newuidmap or newgidmap ran and refused.
    MapFailed {
        tool: &'static str,
        status: String,
        stderr: String,
    },
    /// unshare(CLONE_NEWUSER) failed: how, per the errno and the machine's settings.
    Unshare(UnshareRefusal),
    /// Linux before 5.11: overlayfs has no `userxattr`, so no overlay in a user namespace.
    KernelTooOld { release: String },
    /// Anything else on the way in (a pipe, fork, exec): the OS error.
    Os { what: &'static str, errno: i32 },
}

/// Why unshare(CLONE_NEWUSER) was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnshareRefusal {
    /// ENOSPC: `user.max_user_namespaces` is 0 (or the limit is reached).
    Disabled,
    /// EPERM under a seccomp filter: a container's profile (docker's default) blocks it.
    Seccomp,
    /// EPERM with Debian's `kernel.unprivileged_userns_clone = 0`.
    DebianSysctl,
    /// EPERM/EACCES with Ubuntu's `kernel.apparmor_restrict_unprivileged_userns = 1`.
    AppArmor,
    /// EINVAL: a kernel built without user namespaces.
    NotBuiltIn,
    /// Another errno.
    Other(i32),
}

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unavailable::NoUser { uid } => write!(
                f,
                "uid {uid} has no entry in the password database, so /etc/subuid cannot name \
                 it: run pallet as a user with an account (useradd), or as root"
            ),
            Unavailable::NoRange {
                user,
                file,
                missing_file,
            } => {
                let which = if *file == super::ranges::SUBUID {
                    "subuid"
                } else {
                    "subgid"
                };
                let missing = if *missing_file {
                    format!(" ({file} does not exist)")
                } else {
                    String::new()
                };
                write!(
                    f,
                    "no {which} range for {user} in {file}{missing}: rootless builds map the \
                     image's users to the user's subordinate ids; as root, give {user} a range: \
                     usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {user}"
                )
            }
            Unavailable::NoTool { tool } => write!(
                f,
                "{tool} is missing (it writes the user namespace's id map from /etc/subuid and \
                 /etc/subgid): install it as root: apt-get install uidmap"
            ),
            Unavailable::MapFailed {
                tool,
                status,
                stderr,
            } => write!(
                f,
                "{tool} failed ({status}): {}; check the user's ranges in /etc/subuid and \
                 /etc/subgid, and that {tool} is setuid root (ls -l $(command -v {tool}))",
                if stderr.is_empty() {
                    "no message"
                } else {
                    stderr.trim()
                }
            ),
            Unavailable::Unshare(why) => why.fmt(f),
            Unavailable::KernelTooOld { release } => write!(
                f,
                "the kernel is too old for overlayfs userxattr (Linux {release}; rootless \
                 overlay mounts need 5.11 or later): use a newer kernel, or run pallet as root"
            ),
            Unavailable::Os { what, errno } => {
                write!(f, "{what}: {}", std::io::Error::from_raw_os_error(*errno))
            }
        }
    }
}

impl std::error::Error for Unavailable {}

impl fmt::Display for UnshareRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnshareRefusal::Disabled => write!(
                f,
                "user namespaces are disabled (sysctl user.max_user_namespaces is 0, or its \
                 limit is reached): as root, sysctl -w user.max_user_namespaces=15000"
            ),
            UnshareRefusal::Seccomp => write!(
                f,
                "seccomp blocks unshare(CLONE_NEWUSER) (a container's default profile does): \
                 run the container with --security-opt seccomp=unconfined (and apparmor=unconfined), \
                 or use --isolation chroot"
            ),
            UnshareRefusal::DebianSysctl => write!(
                f,
                "unprivileged user namespaces are disabled (sysctl \
                 kernel.unprivileged_userns_clone is 0): as root, sysctl -w \
                 kernel.unprivileged_userns_clone=1"
            ),
            UnshareRefusal::AppArmor => write!(
                f,
                "AppArmor restricts unprivileged user namespaces (sysctl \
                 kernel.apparmor_restrict_unprivileged_userns is 1): as root, allow them for \
                 pallet with an AppArmor profile, or sysctl -w \
                 kernel.apparmor_restrict_unprivileged_userns=0"
            ),
            UnshareRefusal::NotBuiltIn => write!(
                f,
                "this kernel has no user namespaces (built without CONFIG_USER_NS): run pallet \
                 as root"
            ),
            UnshareRefusal::Other(errno) => write!(
                f,
                "unshare(CLONE_NEWUSER) was refused: {}",
                std::io::Error::from_raw_os_error(*errno)
            ),
        }
    }
}

/// The reason behind unshare(CLONE_NEWUSER) failing with `errno`, read from this process's
/// seccomp mode and the sysctls that turn user namespaces off.
pub fn unshare_refusal(errno: i32) -> UnshareRefusal {
    let read = |p: &str| std::fs::read_to_string(p).map(|s| s.trim().to_string());
    let seccomp = read("/proc/self/status").ok().and_then(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("Seccomp:"))
            .map(|v| v.trim() == "2")
    });
    classify(
        errno,
        seccomp.unwrap_or(false),
        read("/proc/sys/kernel/unprivileged_userns_clone")
            .ok()
            .as_deref(),
        read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns")
            .ok()
            .as_deref(),
    )
}

/// [`unshare_refusal`] on given facts.
pub fn classify(
    errno: i32,
    seccomp_filter: bool,
    debian_clone: Option<&str>,
    apparmor_restrict: Option<&str>,
) -> UnshareRefusal {
    match errno {
        libc::ENOSPC | libc::EUSERS => UnshareRefusal::Disabled,
        libc::EINVAL => UnshareRefusal::NotBuiltIn,
        libc::EPERM | libc::EACCES => {
            if debian_clone == Some("0") {
                UnshareRefusal::DebianSysctl
            } else if apparmor_restrict == Some("1") {
                UnshareRefusal::AppArmor
            } else if seccomp_filter {
                UnshareRefusal::Seccomp
            } else {
                UnshareRefusal::Other(errno)
            }
        }
        other => UnshareRefusal::Other(other),
    }
}

/// `(major, minor)` of a kernel release string (`6.18.44-fc` -> (6, 18)).
pub fn kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// The running kernel's release (uname -r).
pub fn kernel_release() -> String {
    // SAFETY: a zeroed utsname is a valid out-parameter.
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: uname writes into the struct we pass.
    if unsafe { libc::uname(&mut uts) } != 0 {
        return String::new();
    }
    // SAFETY: uname NUL-terminates release.
    unsafe { std::ffi::CStr::from_ptr(uts.release.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_name_their_cause_and_the_fix() {
        assert_eq!(
            classify(libc::ENOSPC, false, None, None),
            UnshareRefusal::Disabled
        );
        assert_eq!(
            classify(libc::EPERM, true, None, None),
            UnshareRefusal::Seccomp
        );
        assert_eq!(
            classify(libc::EPERM, false, Some("0"), None),
            UnshareRefusal::DebianSysctl
        );
        assert_eq!(
            classify(libc::EACCES, false, Some("1"), Some("1")),
            UnshareRefusal::AppArmor
        );
        assert_eq!(
            classify(libc::EPERM, false, None, None),
            UnshareRefusal::Other(libc::EPERM)
        );
        let text = Unavailable::Unshare(UnshareRefusal::Disabled).to_string();
        assert!(text.contains("user.max_user_namespaces"), "{text}");
        let text = Unavailable::Unshare(UnshareRefusal::Seccomp).to_string();
        assert!(text.contains("seccomp blocks unshare"), "{text}");
        let text = Unavailable::NoTool { tool: "newuidmap" }.to_string();
        assert!(text.contains("apt-get install uidmap"), "{text}");
        let text = Unavailable::NoRange {
            user: "alice".into(),
            file: super::super::ranges::SUBUID,
            missing_file: false,
        }
        .to_string();
        assert!(
            text.starts_with("no subuid range for alice in /etc/subuid"),
            "{text}"
        );
        let text = Unavailable::KernelTooOld {
            release: "5.10.0".into(),
        }
        .to_string();
        assert!(text.contains("too old for overlayfs userxattr"), "{text}");
    }

    #[test]
    fn kernel_versions() {
        assert_eq!(kernel_version("6.18.44-fc-v1272"), Some((6, 18)));
        assert_eq!(kernel_version("5.10.0-28-amd64"), Some((5, 10)));
        assert_eq!(kernel_version("junk"), None);
    }
}
