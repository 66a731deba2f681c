//! A normal user made for one test (rootless mode's tests): `useradd` with a home, optionally a
//! subordinate id range appended to /etc/subuid and /etc/subgid (`usermod --add-subuids`), and
//! `userdel -r` when the [`TestUser`] drops (which removes the home, everything pallet left in
//! it, and the user's subuid/subgid lines). Needs root.
//!
//! ```text
//! let user = TestUser::with_subids();
//! let ctx = user.give(&testkit::repo::testdata("examples").join("ml-busybox"), "ctx");
//! let out = user.pallet(pallet!()).args(["build", "-t", "ml:dev"]).arg(&ctx).output();
//! ```
//!
//! Users are made one at a time within a test binary (useradd locks /etc/passwd and fails
//! rather than waits when another holds it; it is retried too, for other processes). Each
//! range is 65536 ids at 2_000_000_000 + (uid mod 30000) * 65536: unique per uid and far
//! above the ranges useradd hands out itself (SUB_UID_MIN..SUB_UID_MAX of login.defs).

use crate::pallet::Pallet;
use crate::run::{assert_success, output, text};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

/// One user at a time is added or removed by this process.
static USERS: Mutex<()> = Mutex::new(());

/// The ids of a user's subordinate range.
pub const SUBID_COUNT: u32 = 65_536;

/// A user that exists while this value lives.
pub struct TestUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
    /// The first id of the subordinate range (None: the user has none).
    pub subid_start: Option<u32>,
}

impl TestUser {
    /// A user with a home and a subordinate range of [`SUBID_COUNT`] uids and gids.
    pub fn with_subids() -> TestUser {
        let mut user = TestUser::without_subids();
        let start = 2_000_000_000 + (user.uid % 30_000) * SUBID_COUNT;
        let range = format!("{start}-{}", start + SUBID_COUNT - 1);
        let _one = USERS.lock().unwrap_or_else(|e| e.into_inner());
        retry(
            Command::new("usermod")
                .args(["--add-subuids", &range, "--add-subgids", &range])
                .arg(&user.name),
        );
        user.subid_start = Some(start);
        user
    }

    /// A user with a home and no subordinate range (useradd is told to add none).
    pub fn without_subids() -> TestUser {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "pt{}x{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let _one = USERS.lock().unwrap_or_else(|e| e.into_inner());
        retry(
            Command::new("useradd")
                .args(["--create-home", "--user-group", "--shell", "/bin/sh"])
                .args(["-K", "SUB_UID_COUNT=0", "-K", "SUB_GID_COUNT=0"])
                .arg(&name),
        );
        let id = |flag: &str| -> u32 {
            let out = output(Command::new("id").arg(flag).arg(&name));
            text(&out.stdout).trim().parse().unwrap()
        };
        let (uid, gid) = (id("-u"), id("-g"));
        let home = PathBuf::from(format!("/home/{name}"));
        assert!(home.is_dir(), "useradd made no {}", home.display());
        TestUser {
            name,
            uid,
            gid,
            home,
            subid_start: None,
        }
    }

    /// `pallet` run as this user: uid and gid set (supplementary groups dropped), HOME, USER
    /// and LOGNAME theirs, in their home, with no PALLET_ROOT or XDG_DATA_HOME from the test's
    /// environment. A binary the user cannot reach is copied into the home first.
    pub fn pallet(&self, pallet: Pallet) -> Pallet {
        let bin = pallet.bin().to_path_buf();
        let bin = if reachable_by_others(&bin) {
            bin
        } else {
            let copy = self.home.join("pallet-bin");
            if !copy.exists() {
                std::fs::copy(&bin, &copy).unwrap();
                std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
            }
            copy
        };
        pallet
            .with_bin(bin)
            .as_user(self.uid, self.gid)
            .env("HOME", &self.home)
            .env("USER", &self.name)
            .env("LOGNAME", &self.name)
            .env_remove("PALLET_ROOT")
            .env_remove("XDG_DATA_HOME")
            .env_remove("XDG_RUNTIME_DIR")
            .current_dir(&self.home)
    }

    /// A copy of the directory `from` at `HOME/name`, owned by the user.
    pub fn give(&self, from: &Path, name: &str) -> PathBuf {
        let to = self.home.join(name);
        crate::files::copy_dir(from, &to);
        self.chown_all(&to);
        to
    }

    /// Writes `content` at `HOME/name` (parents made), owned by the user.
    pub fn file(&self, name: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let path = self.home.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, content).unwrap();
        self.chown_all(&path);
        path
    }

    /// Gives `path` and everything under it to the user.
    pub fn chown_all(&self, path: &Path) {
        assert_success(
            "chown",
            &output(
                Command::new("chown")
                    .arg("-R")
                    .arg(format!("{}:{}", self.uid, self.gid))
                    .arg(path),
            ),
        );
    }

    /// The host uid that `uid` of the user's namespace is: 0 is the user, 1.. the range.
    pub fn host_uid(&self, uid: u32) -> u32 {
        match uid {
            0 => self.uid,
            n => self.subid_start.expect("a user with subordinate ids") + n - 1,
        }
    }

    /// The pids of the user's processes still running (none after a command ends).
    pub fn processes(&self) -> Vec<u32> {
        let mut pids = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(status) = std::fs::read_to_string(entry.path().join("status")) else {
                continue;
            };
            let zombie = status
                .lines()
                .any(|l| l.starts_with("State:") && l.contains('Z'));
            let uid = status
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().next()?.parse::<u32>().ok());
            if uid == Some(self.uid) && !zombie {
                pids.push(pid);
            }
        }
        pids
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let _one = USERS.lock().unwrap_or_else(|e| e.into_inner());
        // -f: even if a process of the user is left (a failed test); -r: home and mail too.
        let out = output(Command::new("userdel").args(["-r", "-f"]).arg(&self.name));
        let err = text(&out.stderr);
        if !out.status.success() && !err.contains("mail spool") {
            crate::note::note(&format!("userdel {}: {err}", self.name));
        }
    }
}

/// Runs `cmd` until it succeeds, while it fails because another process holds the lock of
/// /etc/passwd or /etc/subuid (shadow's tools fail instead of waiting).
fn retry(cmd: &mut Command) {
    for attempt in 0.. {
        let out = output(cmd);
        if out.status.success() {
            return;
        }
        let err = text(&out.stderr);
        if attempt < 50 && err.contains("lock") {
            std::thread::sleep(std::time::Duration::from_millis(100));
            continue;
        }
        assert_success(&format!("{cmd:?}"), &out);
    }
}

/// Whether every directory above `path` is searchable and `path` itself readable and executable
/// by anyone.
fn reachable_by_others(path: &Path) -> bool {
    let mode = |p: &Path| std::fs::metadata(p).map(|m| m.mode()).unwrap_or(0);
    mode(path) & 0o005 == 0o005
        && path
            .ancestors()
            .skip(1)
            .all(|dir| dir.as_os_str().is_empty() || mode(dir) & 0o001 != 0)
}
