//! Helpers for the progress tests: a store holding a minimal busybox-static image, a build
//! context with a Dockerfile and files, pallet runs, and JSON event streams.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub fn pallet(root: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pallet"))
        .arg("--root")
        .arg(root)
        .args(args)
        .output()
        .expect("run pallet")
}

/// A temp dir with a store (`root`) holding busybox-static as busybox:latest (/bin/busybox and
/// a symlink per applet, /etc/passwd, /tmp).
pub fn store_with_busybox() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    import_busybox(&root, tmp.path(), &[]);
    (tmp, root)
}

/// Imports busybox-static plus `extra` files as busybox:latest (another digest per `extra`).
pub fn import_busybox(root: &Path, dir: &Path, extra: &[(&str, &[u8])]) {
    let tar_path = dir.join(format!("busybox-{}.tar", extra.len()));
    let mut tar = tar::Builder::new(std::fs::File::create(&tar_path).unwrap());
    let mut add = |path: &str, kind: tar::EntryType, mode: u32, data: &[u8], link: &str| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(data.len() as u64);
        h.set_mtime(1_700_000_000);
        if kind == tar::EntryType::Symlink {
            tar.append_link(&mut h, path, link).unwrap();
        } else {
            tar.append_data(&mut h, path, data).unwrap();
        }
    };
    for d in ["bin", "etc", "tmp"] {
        add(d, tar::EntryType::Directory, 0o755, b"", "");
    }
    add(
        "bin/busybox",
        tar::EntryType::Regular,
        0o755,
        &std::fs::read("/bin/busybox").unwrap(),
        "",
    );
    add(
        "etc/passwd",
        tar::EntryType::Regular,
        0o644,
        b"root:x:0:0:root:/root:/bin/sh\n",
        "",
    );
    for (path, data) in extra {
        add(path, tar::EntryType::Regular, 0o644, data, "");
    }
    let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
    for applet in text(&list.stdout).lines() {
        if !applet.is_empty() && applet != "busybox" {
            add(
                &format!("bin/{applet}"),
                tar::EntryType::Symlink,
                0o777,
                b"",
                "busybox",
            );
        }
    }
    tar.finish().unwrap();
    drop(tar);
    let out = pallet(
        root,
        &["import", tar_path.to_str().unwrap(), "-t", "busybox:latest"],
    );
    assert!(out.status.success(), "import: {}", text(&out.stderr));
}

/// `dir/ctx` with a Dockerfile and the given files.
pub fn context(dir: &Path, dockerfile: &str, files: &[(&str, &str)]) -> PathBuf {
    let ctx = dir.join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), dockerfile).unwrap();
    for (name, data) in files {
        std::fs::write(ctx.join(name), data).unwrap();
    }
    ctx
}

/// The JSON lines of a `--progress=json` stderr (other lines, such as warnings, skipped).
pub fn events(stderr: &[u8]) -> Vec<serde_json::Value> {
    text(stderr)
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Events of one kind about the step whose name contains `needle`.
pub fn about<'a>(
    events: &'a [serde_json::Value],
    kind: &str,
    needle: &str,
) -> Vec<&'a serde_json::Value> {
    events
        .iter()
        .filter(|e| e["event"] == kind && e["name"].as_str().is_some_and(|n| n.contains(needle)))
        .collect()
}

/// The messages of the miss reasons of the step whose name contains `needle`.
pub fn reasons(events: &[serde_json::Value], needle: &str) -> Vec<serde_json::Value> {
    about(events, "step.miss", needle)
        .iter()
        .flat_map(|e| e["reasons"].as_array().cloned().unwrap_or_default())
        .collect()
}

/// The number of files under `dir`.
pub fn count_files(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| {
            let p = e.path();
            if p.is_dir() && !p.is_symlink() {
                count_files(&p)
            } else {
                1
            }
        })
        .sum()
}
