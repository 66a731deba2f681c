//! Whether chroot isolation is what this machine allows, and whether it can work here: auto
//! picks it as root when a mount is refused (a probe tmpfs mount fails with EPERM: an
//! unprivileged container), and it needs uid 0 with CAP_SYS_CHROOT.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;

/// CAP_SYS_CHROOT's bit in the capability sets.
const CAP_SYS_CHROOT: u32 = 18;

/// Whether this process may mount. Only a refusal (EPERM, EACCES) says no; anything else
/// leaves the decision to root mode, whose own errors then say what failed.
///
/// The probe makes a tmpfs with the new mount API (`fsopen`, `fsconfig`, `fsmount`): the
/// mount is never attached anywhere and goes with its fd, so a pallet killed mid-probe leaves
/// nothing mounted. Kernels without that API (before 5.2) get a 4 KiB tmpfs mounted on a
/// fresh temp dir and detached at once.
pub(crate) fn mounts_allowed() -> bool {
    match detached_tmpfs() {
        Ok(()) => true,
        Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => attached_tmpfs(),
        Err(e) => !matches!(e.raw_os_error(), Some(libc::EPERM | libc::EACCES)),
    }
}

/// A tmpfs made and dropped without being attached to any directory.
fn detached_tmpfs() -> std::io::Result<()> {
    const FSOPEN_CLOEXEC: libc::c_uint = 1;
    const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
    const FSMOUNT_CLOEXEC: libc::c_uint = 1;
    let last = std::io::Error::last_os_error;
    // SAFETY: fsopen takes a NUL-terminated name and flags; it returns an fd or -1.
    let fs = unsafe { libc::syscall(libc::SYS_fsopen, c"tmpfs".as_ptr(), FSOPEN_CLOEXEC) };
    if fs < 0 {
        return Err(last());
    }
    let fs = fs as libc::c_int;
    // SAFETY: `fs` is the fs context fd just opened; CREATE takes no key or value.
    let created = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs,
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    };
    let result = if created < 0 {
        Err(last())
    } else {
        // SAFETY: `fs` holds a created superblock; the mount fd is closed right away.
        let mnt = unsafe { libc::syscall(libc::SYS_fsmount, fs, FSMOUNT_CLOEXEC, 0) };
        if mnt < 0 {
            Err(last())
        } else {
            // SAFETY: `mnt` is an fd we own and close once.
            unsafe { libc::close(mnt as libc::c_int) };
            Ok(())
        }
    };
    // SAFETY: `fs` is an fd we own and close once.
    unsafe { libc::close(fs) };
    result
}

/// The older probe: a 4 KiB tmpfs on a fresh temp dir, unmounted at once.
fn attached_tmpfs() -> bool {
    let Ok(dir) = tempfile::Builder::new().prefix("pallet-probe-").tempdir() else {
        return true;
    };
    let Ok(target) = CString::new(dir.path().as_os_str().as_bytes()) else {
        return true;
    };
    // SAFETY: NUL-terminated strings; the data string is NUL-terminated too.
    let rc = unsafe {
        libc::mount(
            c"pallet-probe".as_ptr(),
            target.as_ptr(),
            c"tmpfs".as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            c"size=4k".as_ptr().cast(),
        )
    };
    if rc != 0 {
        let e = std::io::Error::last_os_error();
        return !matches!(e.raw_os_error(), Some(libc::EPERM | libc::EACCES));
    }
    // SAFETY: NUL-terminated path of the mount just made.
    unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
    true
}

/// Why chroot isolation cannot work here, if it cannot.
pub(crate) fn missing() -> Option<String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    if uid != 0 {
        return Some(format!(
            "it needs uid 0 (an unprivileged container's root) and runs as uid {uid}; as a \
             normal user use --isolation rootless"
        ));
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok());
    match eff {
        Some(caps) if caps & (1 << CAP_SYS_CHROOT) == 0 => Some(
            "CAP_SYS_CHROOT is not among this process's capabilities (docker gives it by \
             default; a --cap-drop or a pod securityContext took it away: add SYS_CHROOT back)"
                .into(),
        ),
        _ => None,
    }
}

#[cfg(test)]
mod probe_tests {
    use super::*;

    /// As root on a host (CI runs as root), the probe says mounts work and leaves no mount.
    #[test]
    fn the_probe_leaves_no_mount() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return;
        }
        let before = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(mounts_allowed());
        assert!(detached_tmpfs().is_ok(), "the new mount API works here");
        let after = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert_eq!(
            before
                .lines()
                .filter(|l| l.contains("pallet-probe"))
                .count(),
            after.lines().filter(|l| l.contains("pallet-probe")).count()
        );
        assert_eq!(before.lines().count(), after.lines().count());
    }
}
