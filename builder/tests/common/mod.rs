//! Helpers shared by the integration tests that need root and real tools (runc, umoci, skopeo,
//! busybox-static): one rule for when such a test runs, skips, or fails.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

/// Whether `tool` is on PATH.
pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// True when the test can run: root, `tools` on PATH and /bin/busybox (busybox-static). Else
/// it fails under CI=true (a skipped test there would hide a missing install step) and skips
/// with a note elsewhere. `what` names the test group in the note.
pub fn require(what: &str, tools: &[&str]) -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let missing: Vec<&str> = tools.iter().copied().filter(|t| !have(t)).collect();
    let busybox = Path::new("/bin/busybox").exists();
    if root && missing.is_empty() && busybox {
        return true;
    }
    let why = if !root {
        "these tests need root (overlay mounts and runc)".to_string()
    } else {
        let mut m = missing.join(", ");
        if !busybox {
            m.push_str(if m.is_empty() {
                "/bin/busybox (busybox-static)"
            } else {
                ", /bin/busybox (busybox-static)"
            });
        }
        format!("{m} missing: run scripts/ensure-tools.sh")
    };
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{why}; CI=true, so this is a failure, not a skip");
    }
    eprintln!("skipping {what}: {why}");
    false
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Writes a busybox-static root file tree as a tar at `dest` with the repository's own script
/// (scripts/make-busybox-rootfs.sh), for `pallet import`.
pub fn busybox_rootfs_tar(dest: &Path) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/make-busybox-rootfs.sh");
    let out = Command::new("bash")
        .arg(script)
        .arg(dest)
        .output()
        .expect("run make-busybox-rootfs.sh");
    assert!(
        out.status.success(),
        "make-busybox-rootfs.sh: {}",
        text(&out.stderr)
    );
}

/// Every regular file under `dir` (symlinks not followed), for grepping a store or an image
/// for values that must not leak.
pub fn all_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            match std::fs::symlink_metadata(&p) {
                Ok(m) if m.is_dir() => dirs.push(p),
                Ok(m) if m.is_file() => out.push(p),
                _ => {}
            }
        }
    }
    out
}

/// Whether `file` holds `needle`. A file gone since it was listed holds nothing: a store is
/// live (the detached settle after a build removes its `unsynced/` markers).
pub fn file_contains(file: &Path, needle: &[u8]) -> bool {
    match std::fs::read(file) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        read => read.unwrap().windows(needle.len()).any(|w| w == needle),
    }
}
