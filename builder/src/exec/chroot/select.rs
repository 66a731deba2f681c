//! Whether chroot isolation is what this machine allows, and whether it can work here: auto
//! picks it as root when a mount is refused (a probe tmpfs mount fails with EPERM: an
//! unprivileged container), and it needs uid 0 with CAP_SYS_CHROOT.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;

/// CAP_SYS_CHROOT's bit in the capability sets.
const CAP_SYS_CHROOT: u32 = 18;

/// Whether this process may mount: a 4 KiB tmpfs on a fresh temp dir, unmounted at once.
/// Only a refusal (EPERM, EACCES) says no; anything else leaves the decision to root mode,
/// whose own errors then say what failed.
pub(crate) fn mounts_allowed() -> bool {
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
