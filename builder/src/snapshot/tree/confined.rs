//! Directories inside a tree reached without following symlinks, for the chroot executor's
//! stand-ins for mounts: whatever a step left in the tree (a parent replaced by a symlink to
//! `/`), putting things in and taking them out again stays inside the tree.

use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::rc::Rc;

use super::copy::{self, Links};
use super::sys::{self, Fd};

/// An open directory inside a tree.
pub struct TreeDir(Fd);

fn cname(name: &OsStr) -> io::Result<CString> {
    CString::new(name.as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "name contains a NUL byte"))
}

/// The directory `comps` (plain names) below `root`, each opened with `O_NOFOLLOW`: a
/// component that is a symlink now fails (ELOOP/ENOTDIR) instead of leading out.
pub fn open_beneath(root: &Path, comps: &[&OsStr]) -> io::Result<TreeDir> {
    let mut dir = Fd::open_path(root)?;
    for c in comps {
        dir = dir.open_dir(&cname(c)?)?;
    }
    Ok(TreeDir(dir))
}

impl TreeDir {
    /// What is at `name`: None if nothing; Some(true) for a directory.
    pub fn kind(&self, name: &OsStr) -> io::Result<Option<bool>> {
        Ok(self.0.stat(&cname(name)?)?.map(|m| m.is_dir()))
    }

    pub fn open(&self, name: &OsStr) -> io::Result<TreeDir> {
        Ok(TreeDir(self.0.open_dir(&cname(name)?)?))
    }

    pub fn mkdir(&self, name: &OsStr, mode: u32) -> io::Result<()> {
        let n = cname(name)?;
        self.0.mkdir(&n, mode)?;
        self.0.chmod(&n, mode)
    }

    /// A new regular file `name` holding `data`, with `mode`, owned by `uid:gid`.
    pub fn write_file(
        &self,
        name: &OsStr,
        data: &[u8],
        mode: u32,
        owner: (u32, u32),
    ) -> io::Result<()> {
        use std::io::Write;
        let n = cname(name)?;
        let mut f = self.0.create_file(&n)?;
        f.write_all(data)?;
        std::os::unix::fs::fchown(&f, Some(owner.0), Some(owner.1))?;
        self.0.chmod(&n, mode)
    }

    pub fn mknod(&self, name: &OsStr, mode: u32, dev: u64) -> io::Result<()> {
        let n = cname(name)?;
        self.0.mknod(&n, mode, dev)?;
        self.0.chmod(&n, mode & 0o7777)
    }

    pub fn symlink(&self, name: &OsStr, target: &OsStr) -> io::Result<()> {
        self.0.symlink(&cname(name)?, &cname(target)?)
    }

    /// Removes `name` and everything under it; missing is fine.
    pub fn remove_all(&self, name: &OsStr) -> io::Result<()> {
        self.0.remove_all(&cname(name)?)
    }

    /// Removes the directory `name` if it is empty.
    pub fn rmdir_if_empty(&self, name: &OsStr) -> io::Result<()> {
        match self.0.rmdir(&cname(name)?) {
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ENOTEMPTY | libc::EEXIST | libc::ENOENT | libc::ENOTDIR)
                ) =>
            {
                Ok(())
            }
            other => other,
        }
    }

    /// Renames `name` here to the path `to` outside the tree (a path pallet chose).
    pub fn rename_out(&self, name: &OsStr, to: &Path) -> io::Result<()> {
        let (n, t) = (cname(name)?, sys::cpath(to)?);
        // SAFETY: valid fd and NUL-terminated strings.
        let r =
            unsafe { libc::renameat(self.0.as_raw_fd(), n.as_ptr(), libc::AT_FDCWD, t.as_ptr()) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Renames the path `from` outside the tree (a path pallet chose) to `name` here.
    pub fn rename_in(&self, from: &Path, name: &OsStr) -> io::Result<()> {
        let (f, n) = (sys::cpath(from)?, cname(name)?);
        // SAFETY: valid fd and NUL-terminated strings.
        let r =
            unsafe { libc::renameat(libc::AT_FDCWD, f.as_ptr(), self.0.as_raw_fd(), n.as_ptr()) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// This directory's mtime.
    pub fn mtime(&self) -> io::Result<(i64, i64)> {
        Ok(self.0.meta()?.mtime)
    }

    /// Sets this directory's atime and mtime to `mtime`.
    pub fn set_mtime(&self, mtime: (i64, i64)) -> io::Result<()> {
        sys::set_fd_mtime(self.0.as_raw_fd(), mtime)
    }

    /// Copies `source` (a file or a directory tree outside the tree; symlinks in it copied
    /// as symlinks, owners and modes kept) to `name` here, which must not exist.
    pub fn copy_in(&self, source: &Path, name: &OsStr) -> io::Result<()> {
        let (parent, last) = match (source.parent(), source.file_name()) {
            (Some(p), Some(l)) => (p, l),
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("cannot copy {}", source.display()),
                ))
            }
        };
        let src = Fd::open_path(parent)?;
        let last = cname(last)?;
        let Some(m) = src.stat(&last)? else {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{} is missing", source.display()),
            ));
        };
        if m.is_dir() {
            // Copied under its own name, then renamed: copy_tree keeps names.
            let dst = Rc::new(sys::dup(&self.0)?);
            let tmp = cname(OsStr::new(".pallet-copy"))?;
            let sub = Rc::new(Fd::open_path(source)?);
            dst.mkdir(&tmp, 0o700)?;
            let into = Rc::new(dst.open_dir(&tmp)?);
            let mut links = Links::default();
            let mut newest = (0, 0);
            for kid in sub.names()? {
                let Some(km) = sub.stat(&kid)? else { continue };
                copy::copy_tree(&sub, &kid, &km, &into, false, &mut links, &mut newest)?;
            }
            copy::set_meta(into.file(), &m, &[], false)?;
            let n = cname(name)?;
            return dst.rename_to(&tmp, &dst, &n);
        }
        let dst = Rc::new(sys::dup(&self.0)?);
        copy::copy_entry(&src, &last, &m, &dst, &cname(name)?, &mut Links::default())
    }
}

impl TreeDir {
    /// The open directory's fd (for a mount through `/proc/self/fd`).
    pub fn raw_fd(&self) -> std::os::fd::RawFd {
        self.0.as_raw_fd()
    }
}
