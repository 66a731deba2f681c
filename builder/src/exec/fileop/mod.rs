//! COPY/ADD/WORKDIR/heredoc files as file operations on a destination tree (a mounted
//! overlay), with BuildKit's copy semantics. Never reads outside the source root (a context
//! symlink pointing out is not followed out) and never writes outside the destination root.
//!
//! The rules follow BuildKit's file-op backend (`solver/llbsolver/file/backend.go`) and
//! fsutil's `copy.Copy`:
//! * Paths are cleaned against `/` first, so `..` cannot leave a root. Symlinks met on the
//!   way are resolved inside the root: `/etc` in a rootfs means the rootfs's
//!   `/etc`, and a link to `../../x` stops at the root.
//! * The source's last component is followed only with `follow_symlinks`; symlinks inside a
//!   copied directory are always copied as links.
//! * Destination: a trailing `/` (or `/.`) means "a directory" and creates it; otherwise its
//!   parent is created (directories made here: 0755, `owner`, `timestamp`). A non-directory
//!   copied onto an existing directory goes inside it; a directory copies its contents with
//!   `dir_contents_only`, else itself (inside an existing destination).
//! * Several wildcard matches make the destination a directory.
//! * Every copied entry gets `owner` (else keeps the source's uid/gid), `--chmod` (octal or
//!   symbolic, files and directories, not symlinks), `timestamp` (else the source's times)
//!   and the source's xattrs (but `security.selinux`).
//! * The destination directory the contents go into keeps its metadata when it already
//!   existed; nested directories that already exist take the source's.

mod copier;
mod glob;
mod meta;
mod mode;
pub(crate) mod resolve;
mod unpack;

use context::dockerignore::Matcher;
use copier::Copier;
use graph::CopyAction;
pub(crate) use meta::make_dir;
use mode::ModeSpec;
use resolve::{clean_abs, display, io_error, is_missing, rel};
use std::ffi::OsStr;
use std::fs::{self, Metadata};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
pub(crate) use unpack::archive_max_mtime;

/// Who new files belong to, resolved by the caller (from `--chown`, in the target rootfs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum FileOpError {
    /// The user's mistake (`COPY missing.txt /`): the message says which path and what to do.
    #[error("{0}")]
    User(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

impl FileOpError {
    /// Whether this is "the name is taken" (`EEXIST`) from creating something new.
    pub(crate) fn is_already_exists(&self) -> bool {
        matches!(self, FileOpError::Io { source, .. } if source.kind() == std::io::ErrorKind::AlreadyExists)
    }
}

/// Filters what a source may contribute (the context's .dockerignore), by path relative to
/// the source root ('/'-separated). `true` = excluded.
///
/// It is asked about every path copied, the source itself included. A directory it excludes
/// is still searched, and created only if something below it is not excluded, so that
/// `!node_modules/keep` after `node_modules` works as in BuildKit's context transfer (which
/// sends the parents of re-included paths). A source it excludes is "not found".
pub type Exclude<'a> = &'a dyn Fn(&str) -> bool;

/// Copies `action.src` (relative to `src_root`, wildcards allowed) to `action.dest` (absolute,
/// inside `dest_root`) with BuildKit's rules: a directory copies its contents; a trailing `/`
/// or several sources make dest a directory; missing sources are an error unless a wildcard
/// matched nothing (allow_empty_wildcard); `owner` and `action.mode` (octal or symbolic) apply
/// to what is copied and to directories created for dest; `action.timestamp` sets mtimes;
/// `exclude_patterns` and `exclude` skip paths.
///
/// `owner: None` keeps each entry's uid/gid from the source, as BuildKit does for stages and
/// images. BuildKit's context transfer has already reset context files to 0:0, so a caller
/// copying straight from a context directory passes `Some(Owner { uid: 0, gid: 0 })` when
/// there is no `--chown`.
///
/// `exclude_patterns` (`--exclude`, .dockerignore syntax) match paths relative to each copied
/// source directory, and a wildcard match's path relative to the directory the wildcard
/// searched (`--exclude=*.txt hom*` skips `home.txt`). `include_patterns` (`--parents`) keep
/// only matching paths below the source, creating their parents; `required_paths` must exist.
/// With `attempt_unpack` (ADD), a source that is a tar archive (plain or gzip) is extracted
/// into the destination directory instead, as BuildKit does.
pub fn copy(
    src_root: &Path,
    dest_root: &Path,
    action: &CopyAction,
    owner: Option<Owner>,
    exclude: Option<Exclude>,
) -> Result<(), FileOpError> {
    copy_with_owners(src_root, dest_root, action, owner, owner, exclude)
}

/// `copy` with separate owners for copied entries and for entries extracted from an archive:
/// BuildKit gives files from the context root's ownership unless `--chown`, while an ADDed
/// archive's entries keep the owners recorded in it (`--chown` overrides both).
pub fn copy_with_owners(
    src_root: &Path,
    dest_root: &Path,
    action: &CopyAction,
    owner: Option<Owner>,
    archive_owner: Option<Owner>,
    exclude: Option<Exclude>,
) -> Result<(), FileOpError> {
    let mut c = Copier::new(src_root, dest_root);
    c.owner = owner;
    c.archive_owner = archive_owner;
    c.utime = action.timestamp;
    c.ignore = exclude;
    c.mode = match action.mode.as_deref() {
        Some(m) if !m.is_empty() => Some(ModeSpec::parse(m)?),
        _ => None,
    };
    c.exclude = matcher(&action.exclude_patterns, "--exclude", false)?;
    c.include = matcher(&action.include_patterns, "--parents", true)?;
    let follow = action.follow_symlinks;

    for p in &action.required_paths {
        source_md(&c, &clean_abs(p), follow)?;
    }

    let Some((sources, several)) = sources(&c, action, src_root)? else {
        return Ok(());
    };
    let resolved = sources
        .iter()
        .map(|s| source_md(&c, s, follow).map(|r| (s, r)))
        .collect::<Result<Vec<_>, _>>()?;

    // The destination: a directory when it says so or when several sources go there.
    let dest_says_dir = action.dest.is_empty()
        || action.dest == "."
        || action.dest.ends_with('/')
        || action.dest.ends_with("/.");
    let dest = clean_abs(&action.dest);
    let dest_parent = match dest.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &dest[..i],
    };
    if !action.create_dest_path {
        let parent = resolve::resolve(dest_root, OsStr::new(dest_parent), true)?;
        if let Err(e) = fs::symlink_metadata(&parent) {
            return Err(FileOpError::User(format!(
                "cannot copy to {}: {} does not exist ({e})",
                action.dest,
                display(dest_root, &parent)
            )));
        }
    }
    let ensure = if dest_says_dir || several {
        &dest
    } else {
        dest_parent
    };
    let ensure = resolve::resolve(dest_root, OsStr::new(ensure), true)?;
    c.ensure_dir(&ensure).map_err(|e| match e {
        FileOpError::User(m) if several && !dest_says_dir => FileOpError::User(format!(
            "{m}; several sources are copied to {}, so it must be a directory",
            action.dest
        )),
        e => e,
    })?;
    let dest_path = resolve::resolve(dest_root, OsStr::new(&dest), true)?;

    for (s, (followed, md, top_included)) in resolved {
        if action.attempt_unpack
            && md.is_file()
            && unpack::try_unpack(&mut c, &followed, &dest_path)?
        {
            continue;
        }
        let name = Path::new(s).file_name();
        let target = c.prepare_target(&md, name, &dest_path, action.dir_contents_only)?;
        c.copy_source(&followed, &md, &target, top_included)?;
    }
    c.finish()
}

/// The entries of `src_root` that `action` copies, as the copy finds them (wildcards matched,
/// `--exclude` applied to the matches, each path resolved inside the root, its last symlink
/// followed with `follow_symlinks`): (the source as named, where it resolved). What a
/// content-based cache key hashes (`solver::keys::content`); a source that is missing is
/// listed too (the copy fails on it). Reads a stage or image tree, never a local directory
/// (no `.dockerignore` here).
pub(crate) fn selected_sources(
    src_root: &Path,
    action: &CopyAction,
) -> Result<Vec<(String, PathBuf)>, FileOpError> {
    let mut c = Copier::new(src_root, src_root);
    c.exclude = matcher(&action.exclude_patterns, "--exclude", false)?;
    let Some((sources, _)) = sources(&c, action, src_root)? else {
        return Ok(Vec::new());
    };
    sources
        .into_iter()
        .map(|s| {
            let followed = resolve::resolve(src_root, OsStr::new(&s), action.follow_symlinks)?;
            Ok((s, followed))
        })
        .collect()
}

/// The sources of `action`, before the destination is touched (BuildKit resolves wildcards
/// first), and whether there are several (the destination is then a directory). None: a
/// wildcard matched nothing, which `allow_empty_wildcard` allows.
fn sources(
    c: &Copier,
    action: &CopyAction,
    src_root: &Path,
) -> Result<Option<(Vec<String>, bool)>, FileOpError> {
    let src = clean_abs(&action.src);
    if !action.allow_wildcard {
        return Ok(Some((vec![src], false)));
    }
    let Some(matches) = glob::resolve_wildcards(src_root, &src, action.follow_symlinks)? else {
        return Ok(Some((vec![src], false)));
    };
    let mut kept = Vec::new();
    for m in matches {
        let r = rel(src_root, &m.path);
        if let Some(ignore) = c.ignore {
            if ignore(&r) {
                let md =
                    fs::symlink_metadata(&m.path).map_err(|e| io_error(src_root, &m.path, e))?;
                if !md.is_dir() || !c.dir_has_included(&m.path, &r)? {
                    continue;
                }
            }
        }
        kept.push((format!("/{r}"), m.rel_to_base));
    }
    if kept.is_empty() {
        if action.allow_empty_wildcard {
            return Ok(None);
        }
        return Err(FileOpError::User(format!(
            "{src:?}: not found: no path matches the wildcard; {SOURCES_ARE_RELATIVE}"
        )));
    }
    let several = kept.len() > 1;
    let excluded = |r: &str| c.exclude.as_ref().is_some_and(|m| m.is_excluded(r));
    let sources = kept
        .into_iter()
        .filter(|(_, r)| !excluded(r))
        .map(|(p, _)| p)
        .collect();
    Ok(Some((sources, several)))
}

const SOURCES_ARE_RELATIVE: &str = "source paths are relative to the root of the build \
     context (or, with --from, of that stage or image)";

/// Resolves a source path and checks it exists and is not excluded by .dockerignore.
/// Returns the resolved path, its `lstat`, and whether the source itself is included (false
/// for an excluded directory that still holds included paths).
fn source_md(
    c: &Copier,
    src: &str,
    follow: bool,
) -> Result<(PathBuf, Metadata, bool), FileOpError> {
    let not_found = || FileOpError::User(format!("{src:?}: not found; {SOURCES_ARE_RELATIVE}"));
    let followed = resolve::resolve(c.src_root, OsStr::new(src), follow)?;
    let md = match fs::symlink_metadata(&followed) {
        Ok(md) => md,
        Err(e) if is_missing(&e) => return Err(not_found()),
        Err(e) => return Err(io_error(c.src_root, &followed, e)),
    };
    let Some(ignore) = c.ignore else {
        return Ok((followed, md, true));
    };
    let lexical = src.trim_start_matches('/');
    let resolved = rel(c.src_root, &followed);
    let ignored = [lexical, resolved.as_str()]
        .iter()
        .any(|p| !p.is_empty() && ignore(p));
    if !ignored {
        return Ok((followed, md, true));
    }
    if md.is_dir() && c.dir_has_included(&followed, &resolved)? {
        return Ok((followed, md, false));
    }
    Err(FileOpError::User(format!(
        "{src:?}: not found: it is excluded by .dockerignore; remove the matching pattern there \
         or add a `!` exception to copy it"
    )))
}

/// .dockerignore-syntax patterns; for `--parents` (`include`), compiled as `**` plus one
/// exception per pattern, so "excluded" means "matches no include pattern".
fn matcher(patterns: &[String], flag: &str, include: bool) -> Result<Option<Matcher>, FileOpError> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let list: Vec<String> = if include {
        std::iter::once("**".to_string())
            .chain(patterns.iter().map(|p| format!("!{p}")))
            .collect()
    } else {
        patterns.to_vec()
    };
    Matcher::new(&list)
        .map(Some)
        .map_err(|e| FileOpError::User(format!("invalid {flag} pattern: {e}")))
}

/// WORKDIR's mkdir (and parents), owned by `owner`.
///
/// The path is resolved inside `dest_root` through its symlinks (as BuildKit's `RootPath`).
/// With `parents`, missing directories are created with `mode & 0o777` (exactly: no umask),
/// `owner` and `timestamp`; existing ones are left alone. Without, the parent must exist. An
/// existing directory is fine either way; anything else at the path is an error.
pub fn mkdir(
    dest_root: &Path,
    path: &str,
    mode: u32,
    parents: bool,
    owner: Option<Owner>,
    timestamp: Option<i64>,
) -> Result<(), FileOpError> {
    let p = resolve::resolve(dest_root, OsStr::new(path), true)?;
    match fs::symlink_metadata(&p) {
        Ok(md) if md.is_dir() => return Ok(()),
        Ok(_) => {
            return Err(FileOpError::User(format!(
                "cannot create directory {}: a file exists at {}",
                clean_abs(path),
                display(dest_root, &p)
            )))
        }
        Err(e) if is_missing(&e) => {}
        Err(e) => return Err(io_error(dest_root, &p, e)),
    }
    if parents {
        meta::mkdir_all(dest_root, &p, mode & 0o777, owner, timestamp)?;
        return Ok(());
    }
    let parent = p.parent().unwrap_or(dest_root);
    if !fs::symlink_metadata(parent).is_ok_and(|m| m.is_dir()) {
        return Err(FileOpError::User(format!(
            "cannot create directory {}: its parent {} does not exist",
            clean_abs(path),
            display(dest_root, parent)
        )));
    }
    meta::make_dir(dest_root, &p, mode & 0o777, owner)?;
    if let Some(t) = timestamp {
        meta::set_times(dest_root, &p, t)?;
    }
    Ok(())
}

/// A file with the given content (heredoc sources).
///
/// As BuildKit's `Mkfile`: the path is resolved inside `dest_root`, its parent must exist, an
/// existing file is overwritten. The file gets exactly `mode & 0o777`, then `owner` and
/// `timestamp` when given.
pub fn mkfile(
    dest_root: &Path,
    path: &str,
    mode: u32,
    data: &[u8],
    owner: Option<Owner>,
    timestamp: Option<i64>,
) -> Result<(), FileOpError> {
    let p = resolve::resolve(dest_root, OsStr::new(path), true)?;
    if p == dest_root {
        return Err(FileOpError::User(format!(
            "cannot create file {path:?}: the path names the root directory"
        )));
    }
    let parent = p.parent().unwrap_or(dest_root);
    if !fs::symlink_metadata(parent).is_ok_and(|m| m.is_dir()) {
        return Err(FileOpError::User(format!(
            "cannot create file {}: its parent directory {} does not exist",
            clean_abs(path),
            display(dest_root, parent)
        )));
    }
    if fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir()) {
        return Err(FileOpError::User(format!(
            "cannot create file {}: a directory exists there",
            clean_abs(path)
        )));
    }
    let write = || -> std::io::Result<()> {
        use std::io::Write;
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode & 0o777)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&p)?;
        f.write_all(data)?;
        f.set_permissions(fs::Permissions::from_mode(mode & 0o777))
    };
    write().map_err(|e| io_error(dest_root, &p, e))?;
    if let Some(o) = owner {
        std::os::unix::fs::lchown(&p, Some(o.uid), Some(o.gid))
            .map_err(|e| io_error(dest_root, &p, e))?;
    }
    if let Some(t) = timestamp {
        meta::set_times(dest_root, &p, t)?;
    }
    Ok(())
}
