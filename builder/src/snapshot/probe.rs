//! Whether rootless overlayfs (`userxattr`, in pallet's user namespace) mounts on the store's
//! filesystem. The kernel refuses some upper filesystems there that root can use, or that
//! no one can: another overlayfs (pallet in a container whose root is overlay: "filesystem
//! on ... not supported as upperdir"), NFS, some FUSE filesystems. A build asks once, at its
//! start, so the refusal comes with the filesystem's name and what to do, not as a failed
//! mount at the first RUN.
//!
//! A probe costs ~20 ms (mount, unmount, removing overlay's work dir), a third of a no-op
//! rebuild, so a success is remembered in `scratch/userxattr-ok` with the filesystem's device
//! and the kernel's release: the same device under the same kernel gives the same answer.
//!
//! Owns the probe and naming filesystems; knows nothing of builds or stores.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Mounts and unmounts one writable overlay with `userxattr` (an empty lower) in a temp dir
/// under `scratch` (named `pallet-<pid>-…`, so a killed run's is found as leftovers), then
/// removes it. Err: the kernel's refusal, with the filesystem named.
pub(crate) fn rootless_overlay(scratch: &Path) -> io::Result<()> {
    std::fs::create_dir_all(scratch)?;
    let memo = scratch.join(MEMO);
    let key = memo_key(scratch);
    if key
        .as_deref()
        .is_some_and(|k| std::fs::read(&memo).is_ok_and(|m| m == k.as_bytes()))
    {
        return Ok(());
    }
    mount_once(scratch)?;
    if let Some(key) = key {
        // Best effort: without the memo the next build probes again.
        let _ = std::fs::write(&memo, key);
    }
    Ok(())
}

/// The file that remembers a successful probe.
const MEMO: &str = "userxattr-ok";

/// What a probe's answer depends on: the filesystem (its device) and the kernel.
fn memo_key(scratch: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let dev = std::fs::metadata(scratch).ok()?.dev();
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
    Some(format!("dev {dev} kernel {}\n", release.trim()))
}

fn mount_once(scratch: &Path) -> io::Result<()> {
    let dir = tempfile::Builder::new()
        .prefix(&format!("pallet-{}-probe-", std::process::id()))
        .tempdir_in(scratch)?;
    let [lower, upper, work, merged] =
        ["lower", "upper", "work", "merged"].map(|d| dir.path().join(d));
    for d in [&lower, &upper, &work, &merged] {
        std::fs::create_dir(d)?;
    }
    let data = format!(
        "userxattr,lowerdir={},upperdir={},workdir={}",
        lower.display(),
        upper.display(),
        work.display()
    );
    let c = |s: &[u8]| CString::new(s).map_err(|_| io::Error::other("a path with a NUL byte"));
    let (target, data) = (c(merged.as_os_str().as_bytes())?, c(data.as_bytes())?);
    // SAFETY: every pointer is a NUL-terminated string that outlives the call.
    let rc = unsafe {
        libc::mount(
            c"overlay".as_ptr(),
            target.as_ptr(),
            c"overlay".as_ptr(),
            0,
            data.as_ptr().cast(),
        )
    };
    if rc != 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(
            e.kind(),
            format!(
                "the kernel refused an overlayfs mount with userxattr in the store's {} ({}): \
                 {e}",
                scratch.display(),
                filesystem(scratch)
            ),
        ));
    }
    // SAFETY: `target` is NUL-terminated; MNT_DETACH cannot leave it busy.
    unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
    Ok(())
}

/// The type of the filesystem `path` is on, by name where it is a common one (`statfs`'s
/// magic number otherwise).
pub(crate) fn filesystem(path: &Path) -> String {
    let Ok(c) = CString::new(path.as_os_str().as_bytes()) else {
        return "unknown filesystem".into();
    };
    // SAFETY: a zeroed statfs is a valid out-parameter.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is NUL-terminated; statfs writes into `st`.
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
        return "unknown filesystem".into();
    }
    name(st.f_type as u64)
}

fn name(magic: u64) -> String {
    let known = match magic {
        0xEF53 => "ext4",
        0x5846_5342 => "xfs",
        0x9123_683E => "btrfs",
        0x0102_1994 => "tmpfs",
        0x794C_7630 => "overlayfs",
        0x6969 => "nfs",
        0x6573_5546 => "fuse",
        0x2FC1_2FC1 => "zfs",
        0xFF53_4D42 => "cifs",
        0x0102_1997 => "9p",
        _ => return format!("filesystem type {magic:#x}"),
    };
    known.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filesystems_by_name() {
        assert_eq!(name(0x794C_7630), "overlayfs");
        assert_eq!(name(0x1234), "filesystem type 0x1234");
        assert_ne!(filesystem(Path::new("/")), "unknown filesystem");
    }
}
