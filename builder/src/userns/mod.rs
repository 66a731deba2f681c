//! The user namespace a normal user's pallet runs in (rootless mode).
//!
//! As a normal user, a command that uses the store runs in a user and mount namespace of its
//! own: uid 0 there is the user, uids 1..N are the user's subordinate range from /etc/subuid
//! (gids likewise from /etc/subgid), written by the setuid `newuidmap`/`newgidmap`. [`enter`]
//! makes it: pallet forks, the child unshares and waits, the parent writes the maps, the child
//! sets [`MARKER`] and goes on with the command ([`spawn`] has the steps), and the parent exits
//! with its status. Inside, pallet is root of the namespace: it mounts overlays (`userxattr`),
//! chowns to the image's ids and runs rootless runc, and what it stats is the image's
//! ownership (a file of uid 0 in the image is the user's on the host, uid 1000 is START+999).
//! Nothing outside the ranges is reachable: a root-only host file stays unreadable.
//!
//! A leaf: the CLI calls [`enter`], `exec::Isolation` and the snapshot code ask [`inside`] (an
//! environment lookup, plus one read of /proc/self/uid_map only when the marker is set, so a
//! root build pays nothing for it). Knows nothing of builds, stores or runc.
//!
//! Files: `ranges` (subuid/subgid and the map arguments), `spawn` (fork, unshare, maps, exec,
//! wait), `why` (what is missing when it cannot work, and what to do).

mod ranges;
mod spawn;
mod why;

pub use why::{Unavailable, UnshareRefusal};

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::OnceLock;

/// Who this pallet is to the kernel, which decides what it may do: mount options, xattr
/// namespaces, device nodes, cgroups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Privilege {
    /// Real root (or pallet not in its namespace): overlayfs keeps `trusted.overlay.*`
    /// xattrs; runc sets cgroups, mounts sysfs, raises any rlimit.
    Root,
    /// Root of pallet's user namespace (rootless mode): overlay mounts with `userxattr` keep
    /// `user.overlay.*` xattrs; `trusted.*` cannot be written, device nodes cannot be made,
    /// cgroups are not writable; runc runs with `--rootless=true`.
    Rootless,
}

impl Privilege {
    /// This process's: Rootless inside pallet's user namespace ([`inside`]), else Root.
    pub fn of_this_process() -> Privilege {
        if inside() {
            Privilege::Rootless
        } else {
            Privilege::Root
        }
    }
}

/// Set (to the parent's pid) in the pallet that runs inside the namespace.
pub const MARKER: &str = "PALLET_USERNS";

/// Whether this process is pallet inside its user namespace: [`MARKER`] is set, the
/// effective uid is 0, and the uid map is not the initial namespace's identity map (so a
/// stray variable in a real root's environment changes nothing).
pub fn inside() -> bool {
    static INSIDE: OnceLock<bool> = OnceLock::new();
    *INSIDE.get_or_init(|| {
        std::env::var_os(MARKER).is_some()
            // SAFETY: geteuid has no preconditions and cannot fail.
            && unsafe { libc::geteuid() } == 0
            && std::fs::read_to_string("/proc/self/uid_map")
                .is_ok_and(|map| !is_identity_map(&map))
    })
}

fn is_identity_map(map: &str) -> bool {
    let fields: Vec<&str> = map.split_whitespace().collect();
    fields == ["0", "0", "4294967295"]
}

/// What the namespace will be: the user, their ranges and the two helpers. Reads /etc/passwd
/// (through NSS), /etc/subuid, /etc/subgid and PATH; forks nothing.
pub struct Plan {
    uid: u32,
    gid: u32,
    uid_ranges: Vec<ranges::Range>,
    gid_ranges: Vec<ranges::Range>,
    newuidmap: PathBuf,
    newgidmap: PathBuf,
}

impl Plan {
    /// The plan for the calling user, or what is missing.
    pub fn for_current_user() -> Result<Plan, Unavailable> {
        // SAFETY: getuid/getgid have no preconditions and cannot fail.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        let release = why::kernel_release();
        if why::kernel_version(&release).is_some_and(|v| v < (5, 11)) {
            return Err(Unavailable::KernelTooOld { release });
        }
        let user = ranges::user_name(uid).ok_or(Unavailable::NoUser { uid })?;
        let read = |file: &'static str| {
            let missing = |missing_file| Unavailable::NoRange {
                user: user.clone(),
                file,
                missing_file,
            };
            match ranges::read(file.as_ref(), &user, uid) {
                Ok(r) if r.is_empty() => Err(missing(false)),
                Ok(r) => Ok(r),
                Err(_) => Err(missing(true)),
            }
        };
        let uid_ranges = read(ranges::SUBUID)?;
        let gid_ranges = read(ranges::SUBGID)?;
        let tool = |tool: &'static str| find_on_path(tool).ok_or(Unavailable::NoTool { tool });
        Ok(Plan {
            uid,
            gid,
            uid_ranges,
            gid_ranges,
            newuidmap: tool("newuidmap")?,
            newgidmap: tool("newgidmap")?,
        })
    }

    /// How many uids the namespace maps (the user's own and the subordinate ones).
    pub fn uids(&self) -> u64 {
        ranges::mapped(&self.uid_ranges)
    }
}

pub use spawn::Side;

/// Forks; the child enters a new user and mount namespace, adds `env` to its environment and
/// returns [`Side::Inside`] to run the command; the parent waits for it and returns
/// [`Side::Parent`] with its exit code. Err (nothing ran) when the namespace cannot be made
/// here. Must be called before any thread starts (it forks).
pub fn enter(env: &[(OsString, OsString)]) -> Result<Side, Unavailable> {
    let plan = Plan::for_current_user()?;
    let mut env = env.to_vec();
    // SAFETY: getpid has no preconditions.
    let parent = unsafe { libc::getpid() };
    env.push((MARKER.into(), parent.to_string().into()));
    let maps = spawn::Maps {
        uid: plan.uid,
        gid: plan.gid,
        uid_ranges: &plan.uid_ranges,
        gid_ranges: &plan.gid_ranges,
        newuidmap: &plan.newuidmap,
        newgidmap: &plan.newgidmap,
    };
    spawn::run(&maps, &env)
}

/// Why rootless mode is not in use: what [`remember`] was told when entering failed, else what
/// [`Plan::for_current_user`] finds missing (None when nothing is: the namespace was simply
/// not tried, as for a command that does not need it).
pub fn unavailable() -> Option<Unavailable> {
    REASON
        .get()
        .cloned()
        .or_else(|| Plan::for_current_user().err())
}

static REASON: OnceLock<Unavailable> = OnceLock::new();

/// Keeps why entering the namespace failed, for the errors of commands that needed it.
pub fn remember(why: Unavailable) {
    let _ = REASON.set(why);
}

fn find_on_path(tool: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(tool))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_initial_namespace_is_the_identity_map() {
        assert!(is_identity_map("         0          0 4294967295\n"));
        assert!(!is_identity_map("0 1000 1\n1 100000 65536\n"));
    }
}
