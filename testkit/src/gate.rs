//! Whether a test can run on this machine: one rule for every test that needs root, tools on
//! PATH or busybox-static. When something is missing the test skips with a note, except under
//! `CI=true`, where a skip would hide a missing install step: there it is a failure.
//!
//! ```text
//! use testkit::{require, Need::*};
//! if !require("ADD <git> test", &[Root, Busybox, Tool("runc"), Tool("git")]) {
//!     return;
//! }
//! ```

use std::path::Path;

/// Something a test needs from the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need<'a> {
    /// Running as root (overlay mounts, runc, file owners).
    Root,
    /// `/bin/busybox`, statically linked (Debian's busybox-static): the base of image tests.
    Busybox,
    /// A program on PATH.
    Tool(&'a str),
    /// linux/arm64 under emulation: Debian's arm64 busybox-static in testkit's cache and
    /// qemu-user-static's aarch64 handler line (registered by `pallet binfmt --install`).
    Arm64,
}

/// True when every need is met. Otherwise: a panic under `CI=true`, else a note on stderr
/// ("skipping WHAT: ...") and false, so that the caller returns.
pub fn require(what: &str, needs: &[Need]) -> bool {
    let missing = unmet(needs);
    if missing.is_empty() {
        return true;
    }
    let why = missing.join("; ");
    if ci() {
        panic!("{what}: {why}; CI=true, so this is a failure, not a skip");
    }
    crate::note::note(&format!("skipping {what}: {why}"));
    false
}

/// What of `needs` this machine lacks, each in words that say how to get it.
fn unmet(needs: &[Need]) -> Vec<String> {
    let mut missing = Vec::new();
    if needs.contains(&Need::Root) && !is_root() {
        missing.push("needs root (overlay mounts, runc and file owners)".to_string());
    }
    let mut absent: Vec<&str> = needs
        .iter()
        .filter_map(|n| match n {
            Need::Tool(tool) if !on_path(tool) => Some(*tool),
            _ => None,
        })
        .collect();
    if needs.contains(&Need::Busybox) && !Path::new("/bin/busybox").is_file() {
        absent.push("/bin/busybox (busybox-static)");
    }
    let arm64 = crate::busybox::arm64_busybox();
    if needs.contains(&Need::Arm64) && !arm64.is_file() {
        absent.push("the arm64 busybox-static (busybox-static:arm64)");
    }
    if needs.contains(&Need::Arm64) && !Path::new("/usr/lib/binfmt.d/qemu-aarch64.conf").is_file() {
        absent.push("qemu-user-static");
    }
    if !absent.is_empty() {
        missing.push(format!(
            "{} missing: run scripts/ensure-tools.sh",
            absent.join(", ")
        ));
    }
    missing
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Whether an executable file named `tool` is in a directory of PATH.
pub fn on_path(tool: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            std::fs::metadata(dir.join(tool))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}

/// Whether `CI=true`: every skip is a failure.
pub fn ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}
