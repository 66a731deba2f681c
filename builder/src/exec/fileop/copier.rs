//! The recursive copy of one resolved source to its target (fsutil's `copier`): entries are
//! filtered by `--exclude`, `--parents` include patterns and the context's .dockerignore;
//! directories that are not themselves included are created only when something below them
//! is copied; regular files, symlinks (as links, never followed), hardlinks within the copy,
//! devices, FIFOs and sockets are recreated (a socket from the context becomes an empty file,
//! as BuildKit's context transfer makes it); owner, mode, times and xattrs follow.

use super::meta::{
    self, clear_file_target, copy_file, copy_xattrs, copy_xattrs_fd, make_node, set_info,
    set_info_fd,
};
use super::mode::ModeSpec;
use super::resolve::{display, io_error, rel};
use super::{Exclude, FileOpError, Owner};
use context::dockerignore::Matcher;
use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::{self, Metadata};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// Settings and state of one `copy` call (all its sources share the hardlink table).
pub(crate) struct Copier<'a> {
    pub src_root: &'a Path,
    pub dest_root: &'a Path,
    pub owner: Option<Owner>,
    /// Owner for entries extracted from an archive (ADD); `None` keeps the archive's own.
    pub archive_owner: Option<Owner>,
    pub mode: Option<ModeSpec>,
    pub utime: Option<i64>,
    /// `--exclude`, matched against paths relative to the copied source.
    pub exclude: Option<Matcher>,
    /// `--parents` include patterns compiled as `**` + `!pattern`: "excluded" = not included.
    pub include: Option<Matcher>,
    /// The context's .dockerignore, asked with paths relative to `src_root`.
    pub ignore: Option<Exclude<'a>>,
    inodes: HashMap<(u64, u64), PathBuf>,
    pending: Vec<Pending>,
    created_dirs: Vec<PathBuf>,
}

/// A directory not included itself, waiting to be created if something below it is.
struct Pending {
    src: PathBuf,
    md: Metadata,
    target: PathBuf,
    overwrite: bool,
    made: bool,
    touch: bool,
}

impl<'a> Copier<'a> {
    pub(crate) fn new(src_root: &'a Path, dest_root: &'a Path) -> Copier<'a> {
        Copier {
            src_root,
            dest_root,
            owner: None,
            archive_owner: None,
            mode: None,
            utime: None,
            exclude: None,
            include: None,
            ignore: None,
            inodes: HashMap::new(),
            pending: Vec::new(),
            created_dirs: Vec::new(),
        }
    }

    /// Creates missing directories down to `p` (fsutil `MkdirAll` with owner and time). Their
    /// mode is an octal `--chmod`'s permission bits (what current BuildKit gives them: fsutil's
    /// `CopyInfo.Mode`, set with a zero umask), else 0755; a symbolic `--chmod` leaves 0755.
    pub(crate) fn ensure_dir(&mut self, p: &Path) -> Result<(), FileOpError> {
        let mode = match self.mode {
            Some(ModeSpec::Octal(m)) => m & 0o777,
            _ => 0o755,
        };
        let made = meta::mkdir_all(self.dest_root, p, mode, self.owner, self.utime)?;
        self.created_dirs.extend(made);
        Ok(())
    }

    /// fsutil `prepareTargetDir`: where the source lands. A non-directory copied onto an
    /// existing directory goes inside it under `name`; so does a directory when its contents
    /// are not what is copied. The directory that will hold the target is created.
    pub(crate) fn prepare_target(
        &mut self,
        src_md: &Metadata,
        name: Option<&OsStr>,
        dest: &Path,
        contents_only: bool,
    ) -> Result<PathBuf, FileOpError> {
        let dest_md = match fs::symlink_metadata(dest) {
            Ok(md) => Some(md),
            Err(e) if super::resolve::is_missing(&e) => None,
            Err(e) => return Err(io_error(self.dest_root, dest, e)),
        };
        let dest_is_dir = dest_md.as_ref().is_some_and(|m| m.is_dir());
        let mut target = dest.to_path_buf();
        let into = if src_md.is_dir() {
            !contents_only && dest_md.is_some()
        } else {
            dest_is_dir
        };
        if into {
            if let Some(name) = name {
                target.push(name);
            }
        }
        let holder = if contents_only && src_md.is_dir() && dest_md.is_none() {
            target.clone()
        } else {
            target.parent().unwrap_or(self.dest_root).to_path_buf()
        };
        if holder.starts_with(self.dest_root) {
            self.ensure_dir(&holder)?;
        }
        Ok(target)
    }

    /// Copies the resolved source `src` to `target`. `top_included` is false when the
    /// .dockerignore excludes the source directory itself while paths below it are kept.
    pub(crate) fn copy_source(
        &mut self,
        src: &Path,
        md: &Metadata,
        target: &Path,
        top_included: bool,
    ) -> Result<(), FileOpError> {
        let rel_root = rel(self.src_root, src);
        self.copy_entry(src, md, "", &rel_root, target, false, top_included)
    }

    /// Re-applies the timestamp to directories this copy created for the destination: files
    /// written into them afterwards moved their mtime.
    pub(crate) fn finish(&mut self) -> Result<(), FileOpError> {
        if let Some(t) = self.utime {
            for dir in self.created_dirs.iter().rev() {
                meta::set_times(self.dest_root, dir, t)?;
            }
        }
        Ok(())
    }

    /// Whether `dir` (excluded by .dockerignore) holds anything .dockerignore keeps, i.e.
    /// whether it would exist at all in the build context BuildKit receives.
    pub(crate) fn dir_has_included(&self, dir: &Path, rel_root: &str) -> Result<bool, FileOpError> {
        let Some(ignore) = self.ignore else {
            return Ok(true);
        };
        for (name, is_dir) in self.read_dir(dir)? {
            let child_rel = join_rel(rel_root, &name);
            if !ignore(&child_rel) {
                return Ok(true);
            }
            if is_dir && self.dir_has_included(&dir.join(&name), &child_rel)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    #[allow(clippy::too_many_arguments)]
    fn copy_entry(
        &mut self,
        src: &Path,
        md: &Metadata,
        rel_src: &str,
        rel_root: &str,
        target: &Path,
        overwrite: bool,
        included: bool,
    ) -> Result<(), FileOpError> {
        if !md.is_dir() {
            if !included {
                return Ok(());
            }
            self.materialize_pending()?;
            // Created as new (O_EXCL and the like): only a name that is taken costs a second
            // look (a stat per file through an overlay looks in every lower layer).
            let copied = match self.copy_non_dir(src, md, target) {
                Err(e) if e.is_already_exists() => {
                    clear_file_target(self.dest_root, target)?;
                    self.copy_non_dir(src, md, target)?
                }
                other => other?,
            };
            return match copied {
                Some((from, to)) => {
                    let mode = self.mode.as_ref().map(|m| m.apply(md.mode(), false));
                    set_info_fd(
                        self.dest_root,
                        target,
                        &to,
                        md,
                        self.owner,
                        mode,
                        self.utime,
                    )?;
                    copy_xattrs_fd(&from, &to);
                    Ok(())
                }
                None => self.apply_info(src, md, target),
            };
        }
        let mut touch = false;
        if included {
            self.materialize_pending()?;
            touch = self.dir_only(src, md, target)? || overwrite;
        } else {
            self.pending.push(Pending {
                src: src.to_path_buf(),
                md: md.clone(),
                target: target.to_path_buf(),
                overwrite,
                made: false,
                touch: false,
            });
        }
        for (name, is_dir) in self.read_dir(src)? {
            let child_rel = join_rel(rel_src, &name);
            let child_rel_root = join_rel(rel_root, &name);
            let Some(child_included) = self.filter(&child_rel, &child_rel_root, is_dir) else {
                continue;
            };
            let child = src.join(&name);
            let child_md =
                fs::symlink_metadata(&child).map_err(|e| io_error(self.src_root, &child, e))?;
            self.copy_entry(
                &child,
                &child_md,
                &child_rel,
                &child_rel_root,
                &target.join(&name),
                true,
                child_included,
            )?;
        }
        if !included {
            touch = self.pending.pop().is_some_and(|p| p.touch);
        }
        if touch {
            self.apply_info(src, md, target)?;
        }
        Ok(())
    }

    /// Whether an entry is copied: `Some(true)` yes, `Some(false)` not itself (a directory is
    /// still searched), `None` skipped with everything below it.
    fn filter(&self, rel_src: &str, rel_root: &str, is_dir: bool) -> Option<bool> {
        let mut included = true;
        for m in [&self.exclude, &self.include].into_iter().flatten() {
            if m.is_excluded(rel_src) {
                if !is_dir || m.can_skip_dir(rel_src) {
                    return None;
                }
                included = false;
            }
        }
        if let Some(ignore) = self.ignore {
            // A directory is still searched: `!dir/keep` may bring back paths below it.
            if ignore(rel_root) {
                if !is_dir {
                    return None;
                }
                included = false;
            }
        }
        Some(included)
    }

    /// Entries of `dir` in name order, and whether each is a directory (from the directory
    /// listing: excluded entries cost no `lstat`).
    fn read_dir(&self, dir: &Path) -> Result<Vec<(OsString, bool)>, FileOpError> {
        let err = |e| io_error(self.src_root, dir, e);
        let mut out = Vec::new();
        for entry in fs::read_dir(dir).map_err(err)? {
            let entry = entry.map_err(err)?;
            out.push((entry.file_name(), entry.file_type().map_err(err)?.is_dir()));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Creates the pending parent directories (fsutil `createParentDirs`).
    fn materialize_pending(&mut self) -> Result<(), FileOpError> {
        for i in 0..self.pending.len() {
            if self.pending[i].made {
                continue;
            }
            let p = &self.pending[i];
            let created = self.dir_only(&p.src, &p.md, &p.target)?;
            let p = &mut self.pending[i];
            p.made = true;
            p.touch = created || p.overwrite;
        }
        Ok(())
    }

    /// fsutil `copyDirectoryOnly`: creates `target` unless it is already a directory.
    /// Returns whether it was created. Its metadata is set after its contents.
    fn dir_only(&self, src: &Path, md: &Metadata, target: &Path) -> Result<bool, FileOpError> {
        match fs::symlink_metadata(target) {
            Ok(t) if t.is_dir() => Ok(false),
            Ok(_) => Err(FileOpError::User(format!(
                "cannot copy directory {} to {}: the destination exists and is not a directory",
                display(self.src_root, src),
                display(self.dest_root, target)
            ))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                meta::make_dir(self.dest_root, target, md.mode() & 0o7777 | 0o700, None)?;
                Ok(true)
            }
            Err(e) => Err(io_error(self.dest_root, target, e)),
        }
    }

    /// Creates a non-directory at `target`. A regular file copied by content comes back
    /// open (source, target), for its metadata to be set through the descriptors.
    fn copy_non_dir(
        &mut self,
        src: &Path,
        md: &Metadata,
        target: &Path,
    ) -> Result<Option<(fs::File, fs::File)>, FileOpError> {
        let ft = md.file_type();
        if ft.is_file() {
            if md.nlink() > 1 {
                let key = (md.dev(), md.ino());
                if let Some(first) = self.inodes.get(&key) {
                    if fs::hard_link(first, target).is_ok() {
                        return Ok(None);
                    }
                    // The first link was replaced since (or `target` is taken): copy the
                    // content instead.
                }
            }
            let copied = copy_file(self.src_root, src, self.dest_root, target)?;
            if md.nlink() > 1 {
                self.inodes
                    .entry((md.dev(), md.ino()))
                    .or_insert_with(|| target.to_path_buf());
            }
            Ok(Some(copied))
        } else if ft.is_symlink() {
            let link = fs::read_link(src).map_err(|e| io_error(self.src_root, src, e))?;
            std::os::unix::fs::symlink(&link, target)
                .map_err(|e| io_error(self.dest_root, target, e))?;
            Ok(None)
        } else if ft.is_socket() && self.ignore.is_some() {
            // From a local directory (the context, which is what `ignore` is given for):
            // BuildKit's context transfer sends a socket as an empty regular file (fsutil's
            // Stat clears the socket bit), so COPY gives one; a stage's socket stays a socket.
            fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(target)
                .map_err(|e| io_error(self.dest_root, target, e))?;
            Ok(None)
        } else {
            make_node(self.dest_root, target, md)?;
            Ok(None)
        }
    }

    fn apply_info(&self, src: &Path, md: &Metadata, target: &Path) -> Result<(), FileOpError> {
        let mode = self.mode.as_ref().map(|m| m.apply(md.mode(), md.is_dir()));
        set_info(self.dest_root, target, md, self.owner, mode, self.utime)?;
        copy_xattrs(src, target);
        Ok(())
    }
}

fn join_rel(parent: &str, name: &OsStr) -> String {
    let name = name.to_string_lossy();
    if parent.is_empty() {
        name.into_owned()
    } else {
        format!("{parent}/{name}")
    }
}
