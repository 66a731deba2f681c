//! The busybox-static root file tree that image tests start from, written as a tar (for
//! `pallet import`) or as a directory (for runc directly). One definition, so every test builds
//! on the same base:
//!
//! - `/bin/busybox` (the host's `/bin/busybox`, Debian's busybox-static) and a symlink to it
//!   per applet it lists;
//! - `/etc/passwd` and `/etc/group` with `root` and `app` (1000:1000, home /home/app);
//! - `/root`, `/home/app`, and `/tmp` (1777);
//! - every entry owned by 0:0 with the mtime 2023-11-14 (1_700_000_000): the same tar, byte for
//!   byte, on every run, so a fresh store imports the same image digest.
//!
//! [`Rootfs::file`] adds or replaces files (another `/etc/group`, a file that makes the image's
//! digest another one).

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

/// The host's busybox-static binary.
pub const BUSYBOX: &str = "/bin/busybox";

/// Debian's arm64 busybox-static binary, which scripts/ensure-tools.sh downloads
/// (`apt-get download busybox-static:arm64`) and unpacks into
/// `$PALLET_TESTKIT_CACHE/arm64/bin/busybox` (default `/var/cache/pallet-testkit`).
pub fn arm64_busybox() -> std::path::PathBuf {
    std::env::var_os("PALLET_TESTKIT_CACHE")
        .filter(|v| !v.is_empty())
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from("/var/cache/pallet-testkit"))
        .join("arm64/bin/busybox")
}

const MTIME: u64 = 1_700_000_000;
const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n";
const GROUP: &str = "root:x:0:\napp:x:1000:\n";
/// Directories and their modes, parents first.
const DIRS: &[(&str, u32)] = &[
    ("bin", 0o755),
    ("etc", 0o755),
    ("home", 0o755),
    ("home/app", 0o755),
    ("root", 0o755),
    ("tmp", 0o1777),
];

/// A busybox-static root file tree, with the files a test adds.
#[derive(Clone, Debug)]
pub struct Rootfs {
    /// Regular files by path (no leading slash): mode and content.
    files: BTreeMap<String, (u32, Vec<u8>)>,
}

impl Default for Rootfs {
    fn default() -> Rootfs {
        Rootfs::new()
    }
}

impl Rootfs {
    /// The standard tree (see the module doc).
    pub fn new() -> Rootfs {
        Rootfs::with_busybox(Path::new(BUSYBOX))
    }

    /// The standard tree for linux/arm64: Debian's arm64 busybox-static ([`arm64_busybox`]);
    /// the applets are the host's busybox's list (the same Debian version).
    pub fn arm64() -> Rootfs {
        Rootfs::with_busybox(&arm64_busybox())
    }

    /// The standard tree with the busybox binary at `binary`.
    fn with_busybox(binary: &Path) -> Rootfs {
        let busybox = std::fs::read(binary).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (run scripts/ensure-tools.sh: busybox-static)",
                binary.display()
            )
        });
        let mut files = BTreeMap::new();
        files.insert("bin/busybox".to_string(), (0o755, busybox));
        files.insert(
            "etc/passwd".to_string(),
            (0o644, PASSWD.as_bytes().to_vec()),
        );
        files.insert("etc/group".to_string(), (0o644, GROUP.as_bytes().to_vec()));
        Rootfs { files }
    }

    /// Adds a regular file (mode 0644), or replaces one; its directory must be in the tree.
    pub fn file(mut self, path: &str, content: impl Into<Vec<u8>>) -> Rootfs {
        let path = path.trim_start_matches('/').to_string();
        self.files.insert(path, (0o644, content.into()));
        self
    }

    /// The applets busybox lists (not `busybox` itself): one symlink each in /bin.
    fn applets() -> Vec<String> {
        let list = crate::run::ok(Command::new(BUSYBOX).arg("--list"));
        list.lines()
            .filter(|a| !a.is_empty() && *a != "busybox" && !a.contains('/'))
            .map(str::to_string)
            .collect()
    }

    /// The tree as an uncompressed tar.
    pub fn tar(&self) -> Vec<u8> {
        let mut tar = tar::Builder::new(Vec::new());
        let header = |kind: tar::EntryType, mode: u32, size: u64| {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(kind);
            h.set_mode(mode);
            h.set_size(size);
            h.set_mtime(MTIME);
            h.set_uid(0);
            h.set_gid(0);
            h
        };
        for (dir, mode) in DIRS {
            let mut h = header(tar::EntryType::Directory, *mode, 0);
            tar.append_data(&mut h, dir, std::io::empty()).unwrap();
        }
        for (path, (mode, content)) in &self.files {
            let mut h = header(tar::EntryType::Regular, *mode, content.len() as u64);
            tar.append_data(&mut h, path, content.as_slice()).unwrap();
        }
        for applet in Rootfs::applets() {
            let mut h = header(tar::EntryType::Symlink, 0o777, 0);
            tar.append_link(&mut h, format!("bin/{applet}"), "busybox")
                .unwrap();
        }
        tar.into_inner().unwrap()
    }

    /// Writes the tree as a tar at `path`.
    pub fn write_tar(&self, path: &Path) {
        std::fs::write(path, self.tar()).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }

    /// Writes the tree into the directory `root` (created), owned by whoever runs the test.
    pub fn write_dir(&self, root: &Path) {
        std::fs::create_dir_all(root).unwrap();
        for (dir, mode) in DIRS {
            let d = root.join(dir);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::set_permissions(&d, std::fs::Permissions::from_mode(*mode)).unwrap();
        }
        for (path, (mode, content)) in &self.files {
            let p = root.join(path);
            std::fs::write(&p, content).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(*mode)).unwrap();
        }
        for applet in Rootfs::applets() {
            std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
        }
    }
}
