//! ADD's local-archive unpacking (BuildKit `unpack` / `applyRootArchive`): a regular file
//! that is a tar archive, plain or compressed with gzip, bzip2, xz or zstd, is extracted into
//! the destination directory instead of being copied. Archives are read as Go's archive/tar
//! reads them (`snapshot::TarReader`, the layer reader: PAX records applied, blank numeric
//! fields read as 0). The compression is told by the file's
//! first bytes, as moby's `archive.DetectCompression` does (not by its name); a file that
//! starts like a compressed stream but does not decompress to a tar is copied as it is.
//!
//! Entry names are cleaned and must stay below the extraction directory; symlinks met while
//! placing an entry are resolved inside the extraction directory (an absolute target starts
//! there). Entries keep the archive's mode, times and uid/gid (`--chown` overrides the ids);
//! missing parents are made 0755. `--chmod` and the timestamp do not apply to archive
//! contents, as in BuildKit. Concatenated gzip members, bzip2 streams, xz streams and zstd
//! frames are read as one stream (pigz, pbzip2, `xz -T`, `zstd -T` write those).

use super::copier::Copier;
use super::meta::{self, make_dir};
use super::resolve::{display, io_error, is_missing, resolve};
use super::{FileOpError, Owner};
use crate::fill::fill;
use crate::snapshot::TarReader;
use filetime::FileTime;
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

enum Compression {
    None,
    Gzip,
    Bzip2,
    Xz,
    Zstd,
}

/// moby `archive.DetectCompression`: magic numbers at the start of the file (zstd also when
/// the stream begins with a skippable frame).
fn detect(head: &[u8]) -> Compression {
    let zstd_skippable = head.len() >= 4
        && u32::from_le_bytes([head[0], head[1], head[2], head[3]]) & 0xffff_fff0 == 0x184d_2a50;
    if head.starts_with(&[0x1f, 0x8b, 0x08]) {
        Compression::Gzip
    } else if head.starts_with(b"BZh") {
        Compression::Bzip2
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        Compression::Xz
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) || zstd_skippable {
        Compression::Zstd
    } else {
        Compression::None
    }
}

/// The file's contents, decompressed as its first bytes say.
fn open_stream(path: &Path) -> io::Result<Box<dyn Read>> {
    let mut f = File::open(path)?;
    let mut head = [0u8; 6];
    let n = fill(&mut f, &mut head)?;
    let f = io::BufReader::with_capacity(256 * 1024, File::open(path)?);
    Ok(match detect(&head[..n]) {
        Compression::None => Box::new(f),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(f)),
        Compression::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(f)),
        Compression::Xz => Box::new(lzma_rust2::XzReader::new(f, true)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(f)?),
    })
}

/// The latest mtime of a regular file in `path` when it is a tar archive (plain or
/// compressed as [`try_unpack`] reads them), as BuildKit's `archiveMaxTimeFromRef` does for a
/// SOURCE_DATE_EPOCH stage; `None` when it is not one, or has no regular file.
pub(crate) fn archive_max_mtime(path: &Path) -> io::Result<Option<i64>> {
    let mut archive = tar::Archive::new(open_stream(path)?);
    let Ok(entries) = archive.entries() else {
        return Ok(None);
    };
    let mut max = None;
    for entry in entries {
        // Not an archive (or a damaged one): no time, as BuildKit's allowNonArchive.
        let Ok(entry) = entry else { return Ok(None) };
        let h = entry.header();
        if !(h.entry_type().is_file() || h.entry_type().is_contiguous()) {
            continue;
        }
        let Ok(t) = h.mtime() else { return Ok(None) };
        let t = i64::try_from(t).unwrap_or(i64::MAX);
        max = Some(max.map_or(t, |m: i64| m.max(t)));
    }
    Ok(max)
}

/// Whether `src` (a resolved regular file) is a tar archive we unpack: its (decompressed)
/// stream starts with a valid tar header, as BuildKit checks.
fn is_archive(src_root: &Path, src: &Path) -> Result<bool, FileOpError> {
    let stream = open_stream(src).map_err(|e| io_error(src_root, src, e))?;
    Ok(matches!(TarReader::new(stream).next_entry(), Ok(Some(_))))
}

/// Extracts `src` into `dest` (a resolved path under the destination root) when it is an
/// archive; returns whether it was one.
pub(crate) fn try_unpack(c: &mut Copier, src: &Path, dest: &Path) -> Result<bool, FileOpError> {
    if !is_archive(c.src_root, src)? {
        return Ok(false);
    }
    c.ensure_dir(dest)?;
    let err = |e| io_error(c.src_root, src, e);
    let stream = open_stream(src).map_err(err)?;
    // Go's archive/tar's reading (as BuildKit's): extension headers applied, blank numeric
    // fields read as 0.
    let mut archive = TarReader::new(stream);
    let mut dirs: Vec<(PathBuf, FileTime)> = Vec::new();
    while let Some(entry) = archive.next_entry().map_err(err)? {
        let kind = entry.kind;
        let name = entry.path.clone();
        let Some(name) = clean_name(&name) else {
            return Err(outside(c, src, &name));
        };
        if name.is_empty() {
            continue;
        }
        // Refused before any directory is made: a name of 20 000 components is otherwise
        // resolved and created level by level (seconds each time), to fail at the end.
        if name.len() > PATH_MAX {
            return Err(FileOpError::User(format!(
                "cannot unpack {}: an archive path is too long ({} bytes, over the {PATH_MAX} a \
                 path may have): {}…",
                display(c.src_root, src),
                name.len(),
                String::from_utf8_lossy(&name[..200])
            )));
        }
        let target = resolve(dest, OsStr::from_bytes(&name), kind.is_dir())?;
        let root = c.dest_root;
        let parent = target.parent().unwrap_or(dest).to_path_buf();
        meta::mkdir_all(root, &parent, 0o755, None, None)?;
        replace_existing(root, &target, kind.is_dir())?;
        let mode = entry.mode & 0o7777;
        let mtime = FileTime::from_unix_time(entry.mtime.0, entry.mtime.1);
        let owner = c.archive_owner.unwrap_or(Owner {
            uid: id(entry.uid, &name).map_err(err)?,
            gid: id(entry.gid, &name).map_err(err)?,
        });
        let werr = |e| io_error(root, &target, e);
        if kind.is_dir() {
            if !target.is_dir() {
                make_dir(root, &target, mode | 0o700, None)?;
            }
            dirs.push((target.clone(), mtime));
        } else if kind.is_file() || kind.is_contiguous() {
            let mut out = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&target)
                .map_err(werr)?;
            io::copy(&mut archive, &mut out).map_err(werr)?;
        } else if kind.is_symlink() {
            let link = entry.link.clone().unwrap_or_default();
            std::os::unix::fs::symlink(OsStr::from_bytes(&link), &target).map_err(werr)?;
        } else if kind.is_hard_link() {
            let link = entry.link.clone().unwrap_or_default();
            let linked = match clean_name(&link) {
                Some(l) if !l.is_empty() => resolve(dest, OsStr::from_bytes(&l), false)?,
                _ => return Err(outside(c, src, &link)),
            };
            fs::hard_link(&linked, &target).map_err(werr)?;
        } else if kind.is_character_special() || kind.is_block_special() || kind.is_fifo() {
            let fmt = if kind.is_fifo() {
                libc::S_IFIFO
            } else if kind.is_block_special() {
                libc::S_IFBLK
            } else {
                libc::S_IFCHR
            };
            let (major, minor) = entry.device;
            meta::mknod(root, &target, fmt | mode, libc::makedev(major, minor))?;
        } else {
            return Err(FileOpError::User(format!(
                "cannot unpack {}: entry {:?} has an unsupported type ({:?})",
                display(c.src_root, src),
                String::from_utf8_lossy(&name),
                kind
            )));
        }
        std::os::unix::fs::lchown(&target, Some(owner.uid), Some(owner.gid)).map_err(werr)?;
        let is_link = fs::symlink_metadata(&target)
            .map_err(werr)?
            .file_type()
            .is_symlink();
        if !is_link {
            meta::chmod(root, &target, mode)?;
        }
        if !kind.is_dir() {
            filetime::set_symlink_file_times(&target, mtime, mtime).map_err(werr)?;
        }
    }
    for (dir, mtime) in dirs.iter().rev() {
        filetime::set_symlink_file_times(dir, *mtime, *mtime)
            .map_err(|e| io_error(c.dest_root, dir, e))?;
    }
    Ok(true)
}

/// A uid or gid from the archive; one that does not fit 32 bits is refused (Linux's ids are
/// 32-bit; truncating it would give the file to someone else).
fn id(value: u64, name: &[u8]) -> io::Result<u32> {
    u32::try_from(value).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "entry {:?} has owner id {value}, larger than Linux allows",
                String::from_utf8_lossy(name)
            ),
        )
    })
}

/// The longest archive path unpacked (Linux's PATH_MAX).
const PATH_MAX: usize = 4096;

fn outside(c: &Copier, src: &Path, name: &[u8]) -> FileOpError {
    FileOpError::User(format!(
        "cannot unpack {}: archive path {:?} is outside the extraction directory",
        display(c.src_root, src),
        String::from_utf8_lossy(&name[..name.len().min(PATH_MAX)])
    ))
}

/// BuildKit `cleanRootTarPath`: leading `/` dropped, cleaned; `None` when `..` would leave
/// the extraction directory, empty for the directory itself.
fn clean_name(name: &[u8]) -> Option<Vec<u8>> {
    let mut parts: Vec<&[u8]> = Vec::new();
    for part in name.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(parts.join(&b'/'))
}

/// An existing entry in the way is removed, unless both are directories (merged).
fn replace_existing(root: &Path, target: &Path, is_dir: bool) -> Result<(), FileOpError> {
    let md = match fs::symlink_metadata(target) {
        Ok(md) => md,
        Err(e) if is_missing(&e) => return Ok(()),
        Err(e) => return Err(io_error(root, target, e)),
    };
    let res = if md.is_dir() && is_dir {
        return Ok(());
    } else if md.is_dir() {
        fs::remove_dir_all(target)
    } else {
        fs::remove_file(target)
    };
    res.map_err(|e| io_error(root, target, e))
}
