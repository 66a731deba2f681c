//! File operations confined beneath a root directory, by file descriptor.
//!
//! Every lookup goes one component at a time from an open directory with `O_NOFOLLOW` and
//! `AT_SYMLINK_NOFOLLOW`: a symlink is never traversed, whatever it points to and whenever it
//! appeared, so nothing here can reach outside the root. Paths come in already split into
//! components that are neither empty, `.` nor `..` (see `entry_name::components`).
//!
//! Knows nothing of tar or whiteouts.

use std::ffi::{CStr, CString};
use std::fs::File;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// An open directory.
pub(crate) struct Dir {
    file: File,
}

/// Why a path could not be resolved to a directory. Carries the offending prefix.
#[derive(Debug)]
pub(crate) enum ResolveError {
    /// A component is a symlink, which is never followed.
    Symlink(String),
    /// A component exists and is neither a directory nor a symlink.
    NotDir(String),
    Io(String, io::Error),
}

/// What `lstat` says about a name in a directory.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stat {
    pub mode: libc::mode_t,
    pub rdev: libc::dev_t,
}

impl Stat {
    pub(crate) fn is_dir(self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFDIR
    }
    pub(crate) fn is_symlink(self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFLNK
    }
    /// An overlayfs whiteout: a 0/0 character device.
    pub(crate) fn is_whiteout(self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFCHR && self.rdev == 0
    }
}

fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

impl Dir {
    /// Opens the root itself (following symlinks: the caller chose this path).
    pub(crate) fn open(path: &Path) -> io::Result<Dir> {
        let file = File::options()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(path)?;
        Ok(Dir { file })
    }

    pub(crate) fn file(&self) -> &File {
        &self.file
    }

    pub(crate) fn fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }

    pub(crate) fn try_clone(&self) -> io::Result<Dir> {
        Ok(Dir {
            file: self.file.try_clone()?,
        })
    }

    /// `lstat` of `name` in this directory; None when it does not exist.
    pub(crate) fn stat(&self, name: &CStr) -> io::Result<Option<Stat>> {
        let mut st = MaybeUninit::<libc::stat>::uninit();
        // SAFETY: valid fd, NUL-terminated name, `st` is written by the kernel on success.
        let ret = unsafe {
            libc::fstatat(
                self.fd(),
                name.as_ptr(),
                st.as_mut_ptr(),
                libc::AT_SYMLINK_NOFOLLOW,
            )
        };
        match cvt(ret) {
            Ok(_) => {
                // SAFETY: fstatat succeeded, so `st` is initialized.
                let st = unsafe { st.assume_init() };
                Ok(Some(Stat {
                    mode: st.st_mode,
                    rdev: st.st_rdev,
                }))
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The whole `lstat` of `name` in this directory (owner, size, times, inode).
    pub(crate) fn lstat(&self, name: &CStr) -> io::Result<libc::stat> {
        let mut st = MaybeUninit::<libc::stat>::uninit();
        // SAFETY: valid fd, NUL-terminated name, `st` is written by the kernel on success.
        let ret = unsafe {
            libc::fstatat(
                self.fd(),
                name.as_ptr(),
                st.as_mut_ptr(),
                libc::AT_SYMLINK_NOFOLLOW,
            )
        };
        cvt(ret)?;
        // SAFETY: fstatat succeeded, so `st` is initialized.
        Ok(unsafe { st.assume_init() })
    }

    /// Opens the regular file `name` for reading; fails (ELOOP) rather than follow a symlink,
    /// and does not block if a fifo took its place.
    pub(crate) fn open_read(&self, name: &CStr) -> io::Result<File> {
        let flags = libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC;
        // SAFETY: valid fd and NUL-terminated name.
        let fd = cvt(unsafe { libc::openat(self.fd(), name.as_ptr(), flags) })?;
        // SAFETY: `fd` was just returned by openat and is owned by nobody else.
        Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// The target of the symlink `name` in this directory.
    pub(crate) fn read_link(&self, name: &CStr) -> io::Result<Vec<u8>> {
        let mut buf = vec![0u8; 4096];
        loop {
            // SAFETY: valid fd, NUL-terminated name, `buf` is writable for its length.
            let n = unsafe {
                libc::readlinkat(self.fd(), name.as_ptr(), buf.as_mut_ptr().cast(), buf.len())
            };
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            let n = n as usize;
            if n < buf.len() {
                buf.truncate(n);
                return Ok(buf);
            }
            buf.resize(buf.len() * 2, 0);
        }
    }

    /// Opens the subdirectory `name`; fails (ELOOP/ENOTDIR) rather than follow a symlink.
    pub(crate) fn open_dir(&self, name: &CStr) -> io::Result<Dir> {
        let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
        // SAFETY: valid fd and NUL-terminated name.
        let fd = cvt(unsafe { libc::openat(self.fd(), name.as_ptr(), flags) })?;
        Ok(Dir {
            // SAFETY: `fd` was just returned by openat and is owned by nobody else.
            file: File::from(unsafe { OwnedFd::from_raw_fd(fd) }),
        })
    }

    /// Creates the regular file `name`, which must not exist (never opens through a symlink).
    pub(crate) fn create_file(&self, name: &CStr) -> io::Result<File> {
        let flags =
            libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC;
        // SAFETY: valid fd and NUL-terminated name.
        let fd =
            cvt(unsafe { libc::openat(self.fd(), name.as_ptr(), flags, 0o600 as libc::c_uint) })?;
        // SAFETY: `fd` was just returned by openat and is owned by nobody else.
        Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    pub(crate) fn mkdir(&self, name: &CStr, mode: libc::mode_t) -> io::Result<()> {
        // SAFETY: valid fd and NUL-terminated name.
        cvt(unsafe { libc::mkdirat(self.fd(), name.as_ptr(), mode) }).map(drop)
    }

    pub(crate) fn mknod(
        &self,
        name: &CStr,
        mode: libc::mode_t,
        dev: libc::dev_t,
    ) -> io::Result<()> {
        // SAFETY: valid fd and NUL-terminated name.
        cvt(unsafe { libc::mknodat(self.fd(), name.as_ptr(), mode, dev) }).map(drop)
    }

    pub(crate) fn symlink(&self, name: &CStr, target: &CStr) -> io::Result<()> {
        // SAFETY: valid fd and NUL-terminated strings.
        cvt(unsafe { libc::symlinkat(target.as_ptr(), self.fd(), name.as_ptr()) }).map(drop)
    }

    /// Hard-links `target_name` in `target_dir` as `name` here. A symlink target is linked
    /// itself, never followed.
    pub(crate) fn link_from(
        &self,
        name: &CStr,
        target_dir: &Dir,
        target_name: &CStr,
    ) -> io::Result<()> {
        // SAFETY: valid fds and NUL-terminated names; flags 0 = do not follow symlinks.
        let ret = unsafe {
            libc::linkat(
                target_dir.fd(),
                target_name.as_ptr(),
                self.fd(),
                name.as_ptr(),
                0,
            )
        };
        cvt(ret).map(drop)
    }

    /// `lchown` of `name` in this directory.
    pub(crate) fn chown(&self, name: &CStr, uid: u32, gid: u32) -> io::Result<()> {
        // SAFETY: valid fd and NUL-terminated name.
        let ret = unsafe {
            libc::fchownat(
                self.fd(),
                name.as_ptr(),
                uid,
                gid,
                libc::AT_SYMLINK_NOFOLLOW,
            )
        };
        cvt(ret).map(drop)
    }

    /// chmod of `name`, which the caller just created and knows is not a symlink.
    pub(crate) fn chmod(&self, name: &CStr, mode: libc::mode_t) -> io::Result<()> {
        // SAFETY: valid fd and NUL-terminated name.
        cvt(unsafe { libc::fchmodat(self.fd(), name.as_ptr(), mode, 0) }).map(drop)
    }

    /// Sets atime and mtime of `name` (a symlink itself, not its target) to `(secs, nanos)`.
    pub(crate) fn set_times(&self, name: &CStr, (secs, nanos): (i64, u32)) -> io::Result<()> {
        let times = timespecs(secs, nanos);
        let flags = libc::AT_SYMLINK_NOFOLLOW;
        // SAFETY: valid fd, NUL-terminated name, two timespecs.
        let ret = unsafe { libc::utimensat(self.fd(), name.as_ptr(), times.as_ptr(), flags) };
        cvt(ret).map(drop)
    }

    /// `lsetxattr` on `name` in this directory, for entries that cannot be opened (symlinks,
    /// devices, fifos): through `/proc/self/fd`, whose last component is not followed.
    pub(crate) fn set_xattr_at(
        &self,
        name: &CStr,
        key: &std::ffi::OsStr,
        value: &[u8],
    ) -> io::Result<()> {
        let path = Path::new("/proc/self/fd")
            .join(self.fd().to_string())
            .join(std::ffi::OsStr::from_bytes(name.to_bytes()));
        xattr::set(path, key, value)
    }

    /// Removes `name` and everything under it, never following symlinks. Missing is fine.
    pub(crate) fn remove_all(&self, name: &CStr) -> io::Result<()> {
        let Some(st) = self.stat(name)? else {
            return Ok(());
        };
        if st.is_dir() {
            let child = self.open_dir(name)?;
            // Make sure we may list and unlink inside (matters when not root).
            if st.mode & 0o700 != 0o700 {
                // SAFETY: valid fd.
                cvt(unsafe { libc::fchmod(child.fd(), 0o700) })?;
            }
            for entry in child.names()? {
                child.remove_all(&entry)?;
            }
            // SAFETY: valid fd and NUL-terminated name.
            cvt(unsafe { libc::unlinkat(self.fd(), name.as_ptr(), libc::AT_REMOVEDIR) })?;
        } else {
            // SAFETY: valid fd and NUL-terminated name.
            cvt(unsafe { libc::unlinkat(self.fd(), name.as_ptr(), 0) })?;
        }
        Ok(())
    }

    /// Names in this directory, without `.` and `..`.
    pub(crate) fn names(&self) -> io::Result<Vec<CString>> {
        names_in(self.fd())
    }
}

/// Sets atime and mtime of an open file to `(secs, nanos)` (any value: the filesystem clamps
/// to what it can store).
pub(crate) fn set_fd_times(file: &File, (secs, nanos): (i64, u32)) -> io::Result<()> {
    let times = timespecs(secs, nanos);
    // SAFETY: valid fd, two timespecs.
    cvt(unsafe { libc::futimens(file.as_raw_fd(), times.as_ptr()) }).map(drop)
}

fn timespecs(secs: i64, nanos: u32) -> [libc::timespec; 2] {
    let ts = libc::timespec {
        tv_sec: secs as libc::time_t,
        tv_nsec: nanos.min(999_999_999) as _,
    };
    [ts, ts]
}

/// Opens the directory at `components` under `root`, one component at a time, never following
/// a symlink. With `create`, missing directories are made (mode 0755, like tar and containerd);
/// without, a missing component gives `Ok(None)`.
pub(crate) fn resolve_dir(
    root: &Dir,
    components: &[&[u8]],
    create: bool,
) -> Result<Option<Dir>, ResolveError> {
    let mut dir = root
        .try_clone()
        .map_err(|e| ResolveError::Io(String::new(), e))?;
    for (i, comp) in components.iter().enumerate() {
        let prefix = || String::from_utf8_lossy(&components[..=i].join(&b'/')).into_owned();
        let name = CString::new(*comp).map_err(|_| ResolveError::Io(prefix(), nul_error()))?;
        let io_err = |e| ResolveError::Io(prefix(), e);
        match dir.stat(&name).map_err(io_err)? {
            None if !create => return Ok(None),
            None => match dir.mkdir(&name, 0o755) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
                Err(e) => return Err(io_err(e)),
            },
            Some(st) if st.is_dir() => {}
            Some(st) if st.is_symlink() => return Err(ResolveError::Symlink(prefix())),
            Some(_) => return Err(ResolveError::NotDir(prefix())),
        }
        // O_NOFOLLOW|O_DIRECTORY: if a symlink or file took its place since the stat, fail.
        dir = match dir.open_dir(&name) {
            Ok(d) => d,
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                return Err(ResolveError::Symlink(prefix()))
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => match dir.stat(&name) {
                Ok(Some(st)) if st.is_symlink() => return Err(ResolveError::Symlink(prefix())),
                _ => return Err(ResolveError::NotDir(prefix())),
            },
            Err(e) => return Err(io_err(e)),
        };
    }
    Ok(Some(dir))
}

pub(crate) fn nul_error() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, "name contains a NUL byte")
}

/// Names in the directory open at `fd`, without `.` and `..`, in the order readdir gives them.
/// `fd` stays open: the stream reads a duplicate of it.
pub(crate) fn names_in(fd: RawFd) -> io::Result<Vec<CString>> {
    // The stream gets its own fd: closedir closes it, and `fd` stays open.
    // SAFETY: valid fd.
    let dup = cvt(unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) })?;
    // SAFETY: `dup` is a directory fd we own; on success the stream owns it.
    let stream = unsafe { libc::fdopendir(dup) };
    if stream.is_null() {
        let err = io::Error::last_os_error();
        // SAFETY: fdopendir failed, so `dup` is still ours to close.
        unsafe { libc::close(dup) };
        return Err(err);
    }
    // The duplicate shares the file offset: start from the beginning.
    // SAFETY: `stream` is a valid DIR*.
    unsafe { libc::rewinddir(stream) };
    let mut names = Vec::new();
    let result = loop {
        // SAFETY: resetting errno distinguishes end of stream from error.
        unsafe { *libc::__errno_location() = 0 };
        // SAFETY: `stream` is a valid DIR*.
        let entry = unsafe { libc::readdir64(stream) };
        if entry.is_null() {
            let err = io::Error::last_os_error();
            break if err.raw_os_error() == Some(0) {
                Ok(())
            } else {
                Err(err)
            };
        }
        // SAFETY: readdir returned a valid dirent whose d_name is NUL-terminated.
        let name = unsafe { CStr::from_ptr((*entry).d_name.as_ptr()) };
        if name.to_bytes() != b"." && name.to_bytes() != b".." {
            names.push(name.to_owned());
        }
    };
    // SAFETY: `stream` is valid and closed exactly once.
    unsafe { libc::closedir(stream) };
    result.map(|()| names)
}
