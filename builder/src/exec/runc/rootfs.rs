//! What the runner prepares in and around the rootfs before `runc run`, and tidies after: the
//! /etc/hosts and /etc/resolv.conf files it bind-mounts, the working directory, and the "mount
//! stubs" runc creates for mount targets missing from the image.
//!
//! - hosts: `127.0.0.1 localhost HOSTNAME` and `::1 localhost ip6-localhost ip6-loopback`
//!   (BuildKit's `executor/oci/hosts.go`).
//! - resolv.conf (BuildKit's `executor/oci/resolvconf.go`): with the host's network the host's
//!   /etc/resolv.conf as it is (a systemd-resolved stub at 127.0.0.53 is reachable from the host
//!   namespace); with a network namespace of its own, the upstream file of systemd-resolved
//!   (/run/systemd/resolve/resolv.conf) when the host's names only loopback resolvers, loopback
//!   nameservers removed, and Docker's defaults (8.8.8.8, 8.8.4.4) when none is left.
//! - working directory: created when missing, mode 755, owned by the step's uid:gid (BuildKit
//!   does the same); kept in the layer.
//! - mount stubs: empty files or dirs runc creates as mount targets (/etc/hosts in an image
//!   without one, a bind target) are removed after the run and their parent's times restored, so
//!   they do not end up in the layer (BuildKit's `executor/stubs.go`).

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::RunError;
use crate::exec::user::root_path;

const HOST_RESOLV_CONF: &str = "/etc/resolv.conf";
const RESOLVED_UPSTREAM: &str = "/run/systemd/resolve/resolv.conf";

pub fn hosts_file(hostname: &str) -> String {
    format!("127.0.0.1\tlocalhost {hostname}\n::1\tlocalhost ip6-localhost ip6-loopback\n")
}

/// The resolv.conf for a step, from the host's files.
pub fn resolv_conf(host_network: bool) -> String {
    let host = std::fs::read_to_string(HOST_RESOLV_CONF).unwrap_or_default();
    let upstream = std::fs::read_to_string(RESOLVED_UPSTREAM).ok();
    resolv_conf_from(&host, upstream.as_deref(), host_network)
}

/// [`resolv_conf`] on given contents (`upstream`: systemd-resolved's file, if present).
pub fn resolv_conf_from(host: &str, upstream: Option<&str>, host_network: bool) -> String {
    let servers = nameservers(host);
    if host_network && !servers.is_empty() {
        return host.to_string();
    }
    let mut base = host;
    if servers.iter().all(|s| is_loopback(s)) {
        if let Some(up) = upstream {
            base = up;
        }
    }
    let mut out = String::new();
    for line in base.lines() {
        if nameserver(line).is_some_and(is_loopback) {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    if nameservers(&out).is_empty() {
        out.push_str("nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
    }
    out
}

fn nameserver(line: &str) -> Option<&str> {
    let mut words = line.split_whitespace();
    (words.next() == Some("nameserver"))
        .then(|| words.next())
        .flatten()
}

fn nameservers(text: &str) -> Vec<&str> {
    text.lines().filter_map(nameserver).collect()
}

fn is_loopback(addr: &str) -> bool {
    addr.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

/// Creates `cwd` inside `rootfs` when missing: each missing component mode 755, owned by
/// `uid:gid`. Symlinks on the way resolve inside the rootfs.
pub fn ensure_cwd(rootfs: &Path, cwd: &str, uid: u32, gid: u32) -> Result<(), RunError> {
    let target = root_path(rootfs, cwd).map_err(RunError::prepare(format!(
        "resolving the working directory {cwd}"
    )))?;
    let mut missing = Vec::new();
    let mut at = target.as_path();
    while at != rootfs && std::fs::symlink_metadata(at).is_err() {
        missing.push(at.to_path_buf());
        match at.parent() {
            Some(parent) => at = parent,
            None => break,
        }
    }
    for dir in missing.iter().rev() {
        let created = std::fs::create_dir(dir)
            .and_then(|()| std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)))
            .and_then(|()| std::os::unix::fs::chown(dir, Some(uid), Some(gid)));
        created.map_err(RunError::prepare(format!(
            "creating the working directory {cwd} ({})",
            dir.display()
        )))?;
    }
    Ok(())
}

/// Mount targets missing from the rootfs before the run (deepest first, then their missing
/// parents), to remove after the run if runc left them empty.
pub struct MountStubs {
    paths: Vec<PathBuf>,
}

impl MountStubs {
    pub fn find(rootfs: &Path, targets: &[&str]) -> MountStubs {
        let mut paths = Vec::new();
        for target in targets {
            let Ok(real) = root_path(rootfs, target) else {
                continue;
            };
            let mut at = real.as_path();
            while at != rootfs && at.starts_with(rootfs) && missing(at) {
                if !paths.iter().any(|p: &PathBuf| p == at) {
                    paths.push(at.to_path_buf());
                }
                match at.parent() {
                    Some(parent) => at = parent,
                    None => break,
                }
            }
        }
        // Children before parents, whichever target they came from.
        paths.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        MountStubs { paths }
    }

    /// Removes the stubs that are still empty, keeping their parents' times.
    pub fn clean(&self) {
        for path in &self.paths {
            let Ok(meta) = std::fs::symlink_metadata(path) else {
                continue;
            };
            let empty = if meta.is_dir() {
                std::fs::read_dir(path)
                    .map(|mut d| d.next().is_none())
                    .unwrap_or(false)
            } else {
                meta.len() == 0
            };
            if !empty {
                continue;
            }
            let parent = path.parent().unwrap_or(path);
            let times = std::fs::metadata(parent).ok().map(|m| {
                (
                    filetime::FileTime::from_last_access_time(&m),
                    filetime::FileTime::from_last_modification_time(&m),
                )
            });
            let removed = if meta.is_dir() {
                std::fs::remove_dir(path)
            } else {
                std::fs::remove_file(path)
            };
            if let Err(e) = removed {
                eprintln!(
                    "pallet: warning: removing mount stub {}: {e}",
                    path.display()
                );
                continue;
            }
            if let Some((atime, mtime)) = times {
                if let Err(e) = filetime::set_file_times(parent, atime, mtime) {
                    eprintln!(
                        "pallet: warning: restoring the times of {}: {e}",
                        parent.display()
                    );
                }
            }
        }
    }
}

fn missing(p: &Path) -> bool {
    match std::fs::symlink_metadata(p) {
        Ok(_) => false,
        Err(e) => e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_rules() {
        let stub = "nameserver 127.0.0.53\noptions edns0\nsearch lan\n";
        let up = "nameserver 192.168.1.1\nsearch lan\n";
        assert_eq!(resolv_conf_from(stub, Some(up), true), stub);
        assert_eq!(resolv_conf_from(stub, Some(up), false), up);
        assert_eq!(
            resolv_conf_from(stub, None, false),
            "options edns0\nsearch lan\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n"
        );
        let plain = "nameserver 10.0.0.2\n";
        assert_eq!(resolv_conf_from(plain, Some(up), false), plain);
        assert_eq!(
            resolv_conf_from("", None, true),
            "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"
        );
    }

    #[test]
    fn cwd_and_stubs() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join("etc")).unwrap();
        ensure_cwd(root, "/a/b/c", 1234, 5678).unwrap();
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(root.join("a/b/c")).unwrap();
        assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (1234, 5678, 0o755));
        ensure_cwd(root, "/a/b/c", 0, 0).unwrap();

        let stubs = MountStubs::find(root, &["/etc/hosts", "/mnt/x/y", "/a"]);
        std::fs::write(root.join("etc/hosts"), "").unwrap();
        std::fs::create_dir_all(root.join("mnt/x/y")).unwrap();
        std::fs::write(root.join("mnt/keep"), "x").unwrap();
        stubs.clean();
        assert!(!root.join("etc/hosts").exists());
        assert!(!root.join("mnt/x").exists());
        assert!(root.join("mnt/keep").exists() && root.join("a").exists());
    }
}
