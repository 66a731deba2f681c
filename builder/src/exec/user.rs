//! USER resolution as docker does it: `name`, `uid`, `name:group`, `uid:gid`, looked up in the
//! rootfs's /etc/passwd and /etc/group (never the host's); supplementary groups from /etc/group.
//!
//! The rules are those of runc's `libcontainer/user.GetExecUser`, which BuildKit calls
//! (`executor/oci/user.go`):
//!
//! - `""` is root (0:0), with no supplementary groups;
//! - `uid:gid` with both parts numeric (or `root`) is taken as is, without reading any file;
//! - a user name must have an entry in /etc/passwd (`unable to find user NAME: no matching entries
//!   in passwd file`); a numeric uid may have none, then the gid is 0 unless given;
//! - a group name must have an entry in /etc/group; a numeric gid may have none;
//! - supplementary groups are the groups whose member list names the user, and only when no
//!   group was given explicitly.
//!
//! The files are read through [`root_path`], which resolves symlinks as if `rootfs` were `/`, so a
//! rootfs whose /etc is a symlink to `/etc` reads its own /etc, never the host's.
//!
//! This module owns name lookup and root-confined path resolution; it knows nothing of runc or
//! Dockerfiles.

use super::rootpath;
use std::ffi::OsStr;
use std::io;
use std::path::{Path, PathBuf};

/// Why a user or group could not be resolved in an image.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error(
        "unable to find user {0}: no matching entries in passwd file \
         (/etc/passwd in the image; add the user or use a numeric uid)"
    )]
    NoUser(String),
    #[error(
        "unable to find group {0}: no matching entries in group file \
         (/etc/group in the image; add the group or use a numeric gid)"
    )]
    NoGroup(String),
    #[error("uids and gids must be in range 0-{MAX_ID} (got {0})")]
    OutOfRange(i64),
    /// `/etc/passwd` or `/etc/group` (`file`) could not be found in the rootfs.
    #[error("resolving {file} in {}: {source}", rootfs.display())]
    Resolve {
        file: &'static str,
        rootfs: PathBuf,
        #[source]
        source: io::Error,
    },
    /// `file` of the image (at host path `path`) could not be read.
    #[error("reading {file} of the image ({}): {source}", path.display())]
    Read {
        file: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    /// The user's home from /etc/passwd (for HOME), if found.
    pub home: Option<String>,
}

/// Ids must be in 0..=2^31-1 (runc's range check).
const MAX_ID: i64 = i32::MAX as i64;

/// Resolves `user` ("" means root) against `rootfs`. Unknown names are an error naming the
/// file that was searched; numeric ids need no entry.
///
/// The primary group is always among the additional groups, first unless it is listed
/// already (BuildKit's `ensureAdditionalGids`, containerd's fix for CVE-2023-25173).
pub fn resolve(rootfs: &Path, user: &str) -> Result<ResolvedUser, UserError> {
    let mut found = resolve_ids(rootfs, user)?;
    if !found.additional_gids.contains(&found.gid) {
        found.additional_gids.insert(0, found.gid);
    }
    Ok(found)
}

fn resolve_ids(rootfs: &Path, user: &str) -> Result<ResolvedUser, UserError> {
    if user.is_empty() {
        // BuildKit looks the default user up as "0" (oci.GetUser), so root gets its groups
        // from /etc/group (busybox: 0 and 10, wheel); when that fails it is 0:0 alone.
        if let Ok(found) = resolve_ids(rootfs, "0") {
            return Ok(found);
        }
        let passwd = read_db(rootfs, "/etc/passwd")?;
        let home = passwd
            .as_deref()
            .and_then(|p| parse_passwd(p).into_iter().find(|e| e.uid == 0))
            .map(|e| e.home);
        return Ok(ResolvedUser {
            uid: 0,
            gid: 0,
            additional_gids: Vec::new(),
            home,
        });
    }
    // `name:group`; anything after a second ':' is ignored, as runc does.
    let mut parts = user.splitn(3, ':');
    let user_arg = parts.next().unwrap_or("");
    let group_arg = parts.next().unwrap_or("");
    if user.contains(':') {
        if let (Some(uid), Some(gid)) = (fast_id(user_arg), fast_id(group_arg)) {
            return Ok(ResolvedUser {
                uid,
                gid,
                additional_gids: Vec::new(),
                home: None,
            });
        }
    }

    let passwd = read_db(rootfs, "/etc/passwd")?;
    let uid_num = parse_int(user_arg);
    let entries = passwd.as_deref().map(parse_passwd).unwrap_or_default();
    let found = entries.into_iter().find(|e| match uid_num {
        Some(n) if !user_arg.is_empty() => i64::from(e.uid) == n,
        _ if user_arg.is_empty() => e.uid == 0,
        _ => e.name == user_arg,
    });

    let mut resolved = ResolvedUser {
        uid: 0,
        gid: 0,
        additional_gids: Vec::new(),
        home: None,
    };
    let mut matched_name = None;
    match found {
        Some(e) => {
            resolved.uid = e.uid;
            resolved.gid = e.gid;
            resolved.home = Some(e.home);
            matched_name = Some(e.name);
        }
        None if user_arg.is_empty() => {}
        None => match uid_num {
            Some(n) => resolved.uid = checked_id(n)?,
            None => return Err(UserError::NoUser(user_arg.to_string())),
        },
    }

    if group_arg.is_empty() && matched_name.is_none() {
        return Ok(resolved);
    }
    let group = read_db(rootfs, "/etc/group")?;
    let groups = group.as_deref().map(parse_group).unwrap_or_default();
    if group_arg.is_empty() {
        let name = matched_name.unwrap_or_default();
        resolved.additional_gids = groups
            .iter()
            .filter(|g| g.members.contains(&name))
            .map(|g| g.gid)
            .collect();
        return Ok(resolved);
    }
    let gid_num = parse_int(group_arg);
    let hit = groups.iter().find(|g| match gid_num {
        Some(n) => i64::from(g.gid) == n,
        None => g.name == group_arg,
    });
    resolved.gid = match (hit, gid_num) {
        (Some(g), _) => g.gid,
        (None, Some(n)) => checked_id(n)?,
        (None, None) => return Err(UserError::NoGroup(group_arg.to_string())),
    };
    Ok(resolved)
}

/// The fast path of BuildKit's `ParseUIDGID`: a number, or `root` for 0.
fn fast_id(s: &str) -> Option<u32> {
    if s == "root" {
        return Some(0);
    }
    s.parse::<u32>().ok()
}

/// Go's `strconv.Atoi`: optional sign, decimal digits.
fn parse_int(s: &str) -> Option<i64> {
    s.parse::<i64>().ok()
}

fn checked_id(n: i64) -> Result<u32, UserError> {
    if (0..=MAX_ID).contains(&n) {
        Ok(n as u32)
    } else {
        Err(UserError::OutOfRange(n))
    }
}

/// Reads a file of the image; a missing file is `None` (an image without /etc/passwd can still
/// run as a numeric uid), any other failure is an error.
fn read_db(rootfs: &Path, file: &'static str) -> Result<Option<String>, UserError> {
    let real = root_path(rootfs, file).map_err(|source| UserError::Resolve {
        file,
        rootfs: rootfs.to_path_buf(),
        source,
    })?;
    match std::fs::read(&real) {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
        Err(e)
            if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR) =>
        {
            Ok(None)
        }
        Err(source) => Err(UserError::Read {
            file,
            path: real,
            source,
        }),
    }
}

struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

/// The colon-separated fields of one /etc/passwd or /etc/group line (missing fields read "").
struct Fields<'a>(Vec<&'a str>);

impl<'a> Fields<'a> {
    fn get(&self, i: usize) -> &'a str {
        self.0.get(i).copied().unwrap_or("")
    }
}

/// The non-blank lines of a passwd/group file, split into fields.
fn records(text: &str) -> impl Iterator<Item = Fields<'_>> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| Fields(l.split(':').collect()))
}

/// `name:password:uid:gid:gecos:home:shell`; unparsable numbers read as 0 (as runc does).
fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    records(text)
        .map(|f| PasswdEntry {
            name: f.get(0).to_string(),
            uid: f.get(2).parse().unwrap_or(0),
            gid: f.get(3).parse().unwrap_or(0),
            home: f.get(5).to_string(),
        })
        .collect()
}

/// `name:password:gid:member,member`.
fn parse_group(text: &str) -> Vec<GroupEntry> {
    records(text)
        .map(|f| GroupEntry {
            name: f.get(0).to_string(),
            gid: f.get(2).parse().unwrap_or(0),
            members: f
                .get(3)
                .split(',')
                .filter(|m| !m.is_empty())
                .map(str::to_string)
                .collect(),
        })
        .collect()
}

/// The host path of `path` inside `root`, resolving symlinks as if `root` were `/`: `..` stops at
/// the root, absolute link targets restart at the root. Components that do not exist are joined
/// as they are (the result may not exist). Like containerd's `fs.RootPath`.
pub fn root_path(root: &Path, path: &str) -> io::Result<PathBuf> {
    Ok(rootpath::resolve(root, OsStr::new(path), true)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rootfs() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("etc/group"),
            "root:x:0:\napp:x:1000:app\nstaff:x:50:app,other\n",
        )
        .unwrap();
        dir
    }

    #[test]
    fn docker_rules() {
        let r = rootfs();
        let p = r.path();
        // The primary group is always an additional one too (BuildKit's ensureAdditionalGids).
        let root = ResolvedUser {
            uid: 0,
            gid: 0,
            additional_gids: vec![0],
            home: Some("/root".into()),
        };
        assert_eq!(resolve(p, "").unwrap(), root);
        let app = resolve(p, "app").unwrap();
        assert_eq!(
            (app.uid, app.gid, app.additional_gids.clone()),
            (1000, 1000, vec![1000, 50])
        );
        assert_eq!(app.home.as_deref(), Some("/home/app"));
        assert_eq!(resolve(p, "1000").unwrap(), app);
        let n = resolve(p, "4242").unwrap();
        assert_eq!(
            (n.uid, n.gid, n.additional_gids.clone(), n.home),
            (4242, 0, vec![0], None)
        );
        let g = resolve(p, "app:staff").unwrap();
        assert_eq!((g.uid, g.gid, g.additional_gids), (1000, 50, vec![50]));
        let g = resolve(p, "4242:77").unwrap();
        assert_eq!((g.uid, g.gid, g.additional_gids), (4242, 77, vec![77]));
        let g = resolve(p, "app:77").unwrap();
        assert_eq!((g.uid, g.gid), (1000, 77));
        assert_eq!(resolve(p, "root:root").unwrap().gid, 0);
        let e = resolve(p, "nobody").unwrap_err().to_string();
        assert!(
            e.starts_with("unable to find user nobody: no matching entries in passwd file"),
            "{e}"
        );
        let e = resolve(p, "app:nogroup").unwrap_err().to_string();
        assert!(
            e.starts_with("unable to find group nogroup: no matching entries in group file"),
            "{e}"
        );
        assert!(resolve(p, "-1").is_err());
    }

    #[test]
    fn missing_files_allow_numeric_only() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(resolve(dir.path(), "12").unwrap().uid, 12);
        assert_eq!(resolve(dir.path(), "").unwrap().home, None);
        assert!(resolve(dir.path(), "app").is_err());
    }

    #[test]
    fn symlinked_etc_stays_in_root() {
        let r = rootfs();
        let p = r.path();
        std::fs::rename(p.join("etc"), p.join("real-etc")).unwrap();
        std::os::unix::fs::symlink("/real-etc", p.join("etc")).unwrap();
        assert_eq!(resolve(p, "app").unwrap().uid, 1000);
        // A link that climbs out is clamped at the root.
        std::fs::remove_file(p.join("etc")).unwrap();
        std::os::unix::fs::symlink("../../../../../../real-etc", p.join("etc")).unwrap();
        assert_eq!(
            root_path(p, "/etc/passwd").unwrap(),
            p.join("real-etc/passwd")
        );
        assert_eq!(resolve(p, "app").unwrap().uid, 1000);
        std::fs::remove_dir_all(p.join("real-etc")).unwrap();
        assert!(resolve(p, "app").is_err());
        assert_eq!(
            resolve(p, "").unwrap().home,
            None,
            "the host's /etc/passwd was read"
        );
        assert_eq!(root_path(p, "/a/../../b").unwrap(), p.join("b"));
        std::os::unix::fs::symlink("loop", p.join("loop")).unwrap();
        assert!(root_path(p, "/loop/x").is_err());
    }
}
