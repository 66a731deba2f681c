//! The system calls the tree snapshotter makes, relative to open directories and never
//! following a symlink (`O_NOFOLLOW`, `AT_SYMLINK_NOFOLLOW`): whatever a RUN step left in its
//! tree (symlinks to `/etc`, to `..`), a walk of the tree stays in it.

use std::ffi::{CStr, CString, OsStr};
use std::fs::File;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::snapshot::marker;

/// An entry's xattrs, sorted by name.
pub(super) type Xattrs = Vec<(Vec<u8>, Vec<u8>)>;

/// What `lstat` says, as the diff compares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Meta {
    pub dev: u64,
    pub ino: u64,
    /// Type and permission bits.
    pub mode: u32,
    pub nlink: u64,
    pub uid: u32,
    pub gid: u32,
    pub rdev: u64,
    pub size: i64,
    pub mtime: (i64, i64),
    pub ctime: (i64, i64),
    /// Birth time: a directory removed and made again can get the same inode number, never
    /// the same birth time (the baseline is taken after the clock passed every ctime in it).
    pub btime: (i64, i64),
}

impl Meta {
    fn from(st: &libc::statx) -> Meta {
        let time = |t: libc::statx_timestamp| (t.tv_sec, i64::from(t.tv_nsec));
        Meta {
            dev: libc::makedev(st.stx_dev_major, st.stx_dev_minor),
            ino: st.stx_ino,
            mode: u32::from(st.stx_mode),
            nlink: u64::from(st.stx_nlink),
            uid: st.stx_uid,
            gid: st.stx_gid,
            rdev: libc::makedev(st.stx_rdev_major, st.stx_rdev_minor),
            size: st.stx_size as i64,
            mtime: time(st.stx_mtime),
            ctime: time(st.stx_ctime),
            // (0, 0) where the filesystem keeps no birth time.
            btime: if st.stx_mask & libc::STATX_BTIME != 0 {
                time(st.stx_btime)
            } else {
                (0, 0)
            },
        }
    }

    pub fn kind(&self) -> u32 {
        self.mode & libc::S_IFMT
    }
    pub fn is_dir(&self) -> bool {
        self.kind() == libc::S_IFDIR
    }
    pub fn is_file(&self) -> bool {
        self.kind() == libc::S_IFREG
    }
    /// A 0/0 character device: overlayfs's whiteout.
    pub fn is_device_whiteout(&self) -> bool {
        self.kind() == libc::S_IFCHR && self.rdev == 0
    }
    pub fn perms(&self) -> u32 {
        self.mode & 0o7777
    }
    /// (dev, ino): the inode, for hard links.
    pub fn inode(&self) -> (u64, u64) {
        (self.dev, self.ino)
    }
}

fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Adds what was being done, and where, to an I/O error (keeping its kind).
pub(super) fn at(what: &str, path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
}

/// An open directory.
pub(super) struct Fd {
    fd: File,
}

impl AsRawFd for Fd {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl Fd {
    /// Opens the directory at `path` (its own symlinks followed: the caller chose it).
    pub fn open_path(path: &Path) -> io::Result<Fd> {
        let c = cpath(path)?;
        let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC;
        // SAFETY: NUL-terminated path.
        let fd = cvt(unsafe { libc::open(c.as_ptr(), flags) })?;
        // SAFETY: `fd` was just returned by open and is owned by nobody else.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Fd {
            fd: File::from(owned),
        })
    }

    /// The subdirectory `name`; ELOOP/ENOTDIR rather than follow a symlink.
    pub fn open_dir(&self, name: &CStr) -> io::Result<Fd> {
        let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
        // SAFETY: valid fd and NUL-terminated name.
        let fd = cvt(unsafe { libc::openat(self.as_raw_fd(), name.as_ptr(), flags) })?;
        // SAFETY: `fd` was just returned by openat and is owned by nobody else.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Fd {
            fd: File::from(owned),
        })
    }

    /// The regular file `name`, for reading.
    pub fn open_file(&self, name: &CStr) -> io::Result<File> {
        let flags = libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NOCTTY;
        // SAFETY: valid fd and NUL-terminated name.
        let fd = cvt(unsafe { libc::openat(self.as_raw_fd(), name.as_ptr(), flags) })?;
        // SAFETY: `fd` was just returned by openat and is owned by nobody else.
        Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Creates the regular file `name` (which must not exist), owner-only until its metadata
    /// is set.
    pub fn create_file(&self, name: &CStr) -> io::Result<File> {
        let flags =
            libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC;
        // SAFETY: valid fd and NUL-terminated name.
        let fd = cvt(unsafe {
            libc::openat(
                self.as_raw_fd(),
                name.as_ptr(),
                flags,
                0o600 as libc::c_uint,
            )
        })?;
        // SAFETY: `fd` was just returned by openat and is owned by nobody else.
        Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// The directory as a file (for f*xattr calls).
    pub fn file(&self) -> &File {
        &self.fd
    }

    /// This directory's own metadata.
    pub fn meta(&self) -> io::Result<Meta> {
        fstat(self.as_raw_fd())
    }

    /// `lstat` of `name`; None when it does not exist.
    pub fn stat(&self, name: &CStr) -> io::Result<Option<Meta>> {
        match statx(self.as_raw_fd(), name, libc::AT_SYMLINK_NOFOLLOW) {
            Ok(m) => Ok(Some(m)),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Names in this directory (no `.`, `..`), sorted bytewise.
    pub fn names(&self) -> io::Result<Vec<CString>> {
        let mut names = crate::snapshot::beneath::names_in(self.as_raw_fd())?;
        names.sort_unstable();
        Ok(names)
    }

    pub fn mkdir(&self, name: &CStr, mode: u32) -> io::Result<()> {
        // SAFETY: valid fd and NUL-terminated name.
        cvt(unsafe { libc::mkdirat(self.as_raw_fd(), name.as_ptr(), mode) }).map(drop)
    }

    pub fn mknod(&self, name: &CStr, mode: u32, dev: u64) -> io::Result<()> {
        // SAFETY: valid fd and NUL-terminated name.
        cvt(unsafe { libc::mknodat(self.as_raw_fd(), name.as_ptr(), mode, dev) }).map(drop)
    }

    pub fn symlink(&self, name: &CStr, target: &CStr) -> io::Result<()> {
        // SAFETY: valid fd and NUL-terminated strings.
        cvt(unsafe { libc::symlinkat(target.as_ptr(), self.as_raw_fd(), name.as_ptr()) }).map(drop)
    }

    /// The target of the symlink `name`.
    pub fn readlink(&self, name: &CStr) -> io::Result<CString> {
        let mut buf = vec![0u8; 256];
        loop {
            // SAFETY: valid fd, NUL-terminated name, `buf` has `buf.len()` writable bytes.
            let n = unsafe {
                libc::readlinkat(
                    self.as_raw_fd(),
                    name.as_ptr(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                )
            };
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            let n = n as usize;
            if n < buf.len() {
                buf.truncate(n);
                return CString::new(buf).map_err(|_| nul_error());
            }
            buf.resize(buf.len() * 2, 0);
        }
    }

    /// Hard-links `src_name` in `src` as `name` here (a symlink itself, never its target).
    pub fn link_from(&self, name: &CStr, src: &Fd, src_name: &CStr) -> io::Result<()> {
        // SAFETY: valid fds and NUL-terminated names; flags 0: do not follow.
        let ret = unsafe {
            libc::linkat(
                src.as_raw_fd(),
                src_name.as_ptr(),
                self.as_raw_fd(),
                name.as_ptr(),
                0,
            )
        };
        cvt(ret).map(drop)
    }

    /// Renames `name` here to `to_name` in `to` (replacing nothing: fails if it exists).
    pub fn rename_to(&self, name: &CStr, to: &Fd, to_name: &CStr) -> io::Result<()> {
        // SAFETY: valid fds and NUL-terminated names.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_renameat2,
                self.as_raw_fd(),
                name.as_ptr(),
                to.as_raw_fd(),
                to_name.as_ptr(),
                libc::RENAME_NOREPLACE,
            )
        };
        if ret < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    pub fn unlink(&self, name: &CStr) -> io::Result<()> {
        // SAFETY: valid fd and NUL-terminated name.
        cvt(unsafe { libc::unlinkat(self.as_raw_fd(), name.as_ptr(), 0) }).map(drop)
    }

    pub fn rmdir(&self, name: &CStr) -> io::Result<()> {
        // SAFETY: valid fd and NUL-terminated name.
        cvt(unsafe { libc::unlinkat(self.as_raw_fd(), name.as_ptr(), libc::AT_REMOVEDIR) })
            .map(drop)
    }

    /// Removes `name` and everything under it, never following a symlink. Missing is fine.
    pub fn remove_all(&self, name: &CStr) -> io::Result<()> {
        match self.unlink(name) {
            Ok(()) => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EISDIR) => {}
            Err(e) => return Err(e),
        }
        let child = self.open_dir(name)?;
        for entry in child.names()? {
            child.remove_all(&entry)?;
        }
        match self.rmdir(name) {
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
            other => other,
        }
    }

    /// `lchown` of `name`.
    pub fn chown(&self, name: &CStr, uid: u32, gid: u32) -> io::Result<()> {
        // SAFETY: valid fd and NUL-terminated name.
        let ret = unsafe {
            libc::fchownat(
                self.as_raw_fd(),
                name.as_ptr(),
                uid,
                gid,
                libc::AT_SYMLINK_NOFOLLOW,
            )
        };
        cvt(ret).map(drop)
    }

    /// chmod of `name`, which the caller knows is not a symlink.
    pub fn chmod(&self, name: &CStr, mode: u32) -> io::Result<()> {
        // SAFETY: valid fd and NUL-terminated name.
        cvt(unsafe { libc::fchmodat(self.as_raw_fd(), name.as_ptr(), mode, 0) }).map(drop)
    }

    /// Sets the atime and mtime of `name` (a symlink itself) to `mtime`.
    pub fn set_mtime(&self, name: &CStr, mtime: (i64, i64)) -> io::Result<()> {
        let t = timespecs(mtime);
        // SAFETY: valid fd, NUL-terminated name, two timespecs.
        let ret = unsafe {
            libc::utimensat(
                self.as_raw_fd(),
                name.as_ptr(),
                t.as_ptr(),
                libc::AT_SYMLINK_NOFOLLOW,
            )
        };
        cvt(ret).map(drop)
    }

    /// A path to `name` in this directory for the l*xattr calls (last component not followed).
    pub fn xattr_path(&self, name: &CStr) -> std::path::PathBuf {
        marker::proc_path(self.as_raw_fd(), name)
    }
}

pub(super) fn fstat(fd: RawFd) -> io::Result<Meta> {
    statx(fd, c"", libc::AT_EMPTY_PATH)
}

/// statx of `name` in `dir` (with `flags`), basic stats and the birth time.
fn statx(dir: RawFd, name: &CStr, flags: libc::c_int) -> io::Result<Meta> {
    let mut st = MaybeUninit::<libc::statx>::uninit();
    let mask = libc::STATX_BASIC_STATS | libc::STATX_BTIME;
    // SAFETY: valid fd, NUL-terminated name, `st` written by the kernel on success.
    cvt(unsafe { libc::statx(dir, name.as_ptr(), flags, mask, st.as_mut_ptr()) })?;
    // SAFETY: statx succeeded, so `st` is initialized.
    Ok(Meta::from(unsafe { &st.assume_init() }))
}

/// Sets the atime and mtime of an open file to `mtime`.
pub(super) fn set_fd_mtime(fd: RawFd, mtime: (i64, i64)) -> io::Result<()> {
    let t = timespecs(mtime);
    // SAFETY: valid fd, two timespecs.
    cvt(unsafe { libc::futimens(fd, t.as_ptr()) }).map(drop)
}

fn timespecs((secs, nanos): (i64, i64)) -> [libc::timespec; 2] {
    let ts = libc::timespec {
        tv_sec: secs as libc::time_t,
        tv_nsec: nanos.clamp(0, 999_999_999) as _,
    };
    [ts, ts]
}

/// Copies the rest of `from` into `to`: copy_file_range (in the kernel; a reflink where the
/// filesystem has them), else read and write.
pub(super) fn copy_data(from: &File, to: &File, buf: &mut Vec<u8>) -> io::Result<u64> {
    let mut total = 0u64;
    let mut kernel = true;
    loop {
        if kernel {
            // SAFETY: valid fds; null offsets use and advance the files' own offsets.
            let n = unsafe {
                libc::copy_file_range(
                    from.as_raw_fd(),
                    std::ptr::null_mut(),
                    to.as_raw_fd(),
                    std::ptr::null_mut(),
                    1 << 30,
                    0,
                )
            };
            if n > 0 {
                total += n as u64;
                continue;
            }
            if n == 0 {
                return Ok(total);
            }
            let err = io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(
                    libc::EXDEV | libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP | libc::EPERM,
                ) => {
                    kernel = false;
                }
                _ => return Err(err),
            }
        }
        if buf.is_empty() {
            buf.resize(128 * 1024, 0);
        }
        use std::io::{Read, Write};
        let n = match (&*from).read(buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        (&*to).write_all(&buf[..n])?;
        total += n as u64;
    }
}

/// The xattrs of the entry at `path` (l*xattr: not followed), sorted by name; the overlay's
/// own markers and SELinux labels left out, as the layer writer leaves them out.
pub(super) fn xattrs(path: &Path) -> io::Result<Xattrs> {
    let names = match xattr::list(path) {
        Ok(n) => n,
        Err(e) if marker::unsupported(&e) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    collect_xattrs(names, |n| xattr::get(path, n))
}

/// [`xattrs`] of an open file or directory.
pub(super) fn fd_xattrs(file: &File) -> io::Result<Xattrs> {
    use xattr::FileExt;
    let names = match file.list_xattr() {
        Ok(n) => n,
        Err(e) if marker::unsupported(&e) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    collect_xattrs(names, |n| file.get_xattr(n))
}

fn collect_xattrs(
    names: xattr::XAttrs,
    get: impl Fn(&OsStr) -> io::Result<Option<Vec<u8>>>,
) -> io::Result<Xattrs> {
    let mut out = Vec::new();
    for name in names {
        if crate::snapshot::whiteout::is_private_xattr(name.as_bytes()) {
            continue;
        }
        if let Some(value) = get(&name)? {
            out.push((name.as_bytes().to_vec(), value));
        }
    }
    out.sort();
    Ok(out)
}

/// Sets each of `wanted` on the entry at `path` (l*xattr).
pub(super) fn set_xattrs(path: &Path, wanted: &[(Vec<u8>, Vec<u8>)]) -> io::Result<()> {
    for (name, value) in wanted {
        xattr::set(path, OsStr::from_bytes(name), value)?;
    }
    Ok(())
}

pub(super) fn cpath(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| nul_error())
}

fn nul_error() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, "name contains a NUL byte")
}

/// CLOCK_REALTIME_COARSE: the clock the kernel stamps most inode times from.
pub(super) fn coarse_now() -> (i64, i64) {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut ts) };
    (ts.tv_sec, ts.tv_nsec)
}

/// A second fd of the open directory `dir`.
pub(super) fn dup(dir: &Fd) -> io::Result<Fd> {
    // SAFETY: valid fd.
    let fd = cvt(unsafe { libc::fcntl(dir.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0) })?;
    // SAFETY: `fd` was just returned by fcntl and is owned by nobody else.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    Ok(Fd {
        fd: File::from(owned),
    })
}
