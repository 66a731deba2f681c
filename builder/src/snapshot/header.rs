//! Encoding one layer entry as tar blocks: a ustar header, preceded by a PAX extended header
//! when a value does not fit (long path or link target, large size, uid, gid or mtime) or when
//! the entry carries xattrs (`SCHILY.xattr.NAME`, as GNU tar, Go's archive/tar and containerd
//! write them). Owner names are left empty: layers carry numeric ids only.
//!
//! Output is a pure function of the fields, so equal trees give equal bytes. Knows nothing of
//! directories on disk or of whiteouts.

use std::io::{self, Write};

use tar::{EntryType, Header};

pub(crate) const BLOCK: usize = 512;
const NAME_LEN: usize = 100;
const PREFIX_LEN: usize = 155;
/// Largest value of an 8-byte octal field (uid, gid, mode).
const MAX_OCTAL_8: u64 = 0o7777777;
/// Largest value of a 12-byte octal field (size, mtime).
const MAX_OCTAL_12: u64 = 0o77777777777;

/// One entry's metadata, already relative, normalized and clamped by the caller.
pub(crate) struct EntryMeta<'a> {
    /// Relative path; directories end with `/`.
    pub path: &'a [u8],
    pub kind: EntryType,
    /// Permission bits including setuid, setgid and sticky (no file type bits).
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    /// Seconds since the epoch (whole seconds, like containerd; negative is written as 0).
    pub mtime: i64,
    /// Content bytes following the header (regular files only).
    pub size: u64,
    /// Symlink target or hardlink source.
    pub link: Option<&'a [u8]>,
    /// (major, minor) for character and block devices.
    pub device: Option<(u32, u32)>,
    /// xattrs as (name, value), sorted by name.
    pub xattrs: &'a [(String, Vec<u8>)],
}

/// Writes the header block(s) for `meta`; the caller writes `meta.size` bytes of content and then
/// [`pad`].
pub(crate) fn write_header(out: &mut dyn Write, meta: &EntryMeta<'_>) -> io::Result<()> {
    let mut records: Vec<(String, Vec<u8>)> = Vec::new();
    let mut header = Header::new_ustar();

    match split_ustar_path(meta.path) {
        Some((prefix, name)) => set_name(&mut header, prefix, name),
        None => {
            records.push(("path".into(), meta.path.to_vec()));
            set_name(&mut header, b"", truncate(meta.path, NAME_LEN));
        }
    }
    if let Some(link) = meta.link {
        if link.len() > NAME_LEN {
            records.push(("linkpath".into(), link.to_vec()));
        }
        let field = &mut header.as_old_mut().linkname;
        let link = truncate(link, NAME_LEN);
        field[..link.len()].copy_from_slice(link);
    }

    header.set_mode(meta.mode & 0o7777);
    header.set_uid(numeric(&mut records, "uid", meta.uid, MAX_OCTAL_8));
    header.set_gid(numeric(&mut records, "gid", meta.gid, MAX_OCTAL_8));
    header.set_size(numeric(&mut records, "size", meta.size, MAX_OCTAL_12));
    let mtime = u64::try_from(meta.mtime).unwrap_or(0);
    header.set_mtime(numeric(&mut records, "mtime", mtime, MAX_OCTAL_12));
    header.set_entry_type(meta.kind);
    let (major, minor) = meta.device.unwrap_or((0, 0));
    header.set_device_major(major)?;
    header.set_device_minor(minor)?;

    for (name, value) in meta.xattrs {
        records.push((format!("SCHILY.xattr.{name}"), value.clone()));
    }

    if !records.is_empty() {
        records.sort();
        write_pax(out, meta.path, &records)?;
    }
    header.set_cksum();
    out.write_all(header.as_bytes())
}

/// Zero padding after `size` bytes of content, up to the next block.
pub(crate) fn pad(out: &mut dyn Write, size: u64) -> io::Result<()> {
    let rem = (size % BLOCK as u64) as usize;
    if rem != 0 {
        out.write_all(&[0u8; BLOCK][rem..])?;
    }
    Ok(())
}

/// The end-of-archive marker: two zero blocks (as Go's archive/tar; no padding to a record).
pub(crate) fn write_trailer(out: &mut dyn Write) -> io::Result<()> {
    out.write_all(&[0u8; 2 * BLOCK])
}

/// Returns the value for the ustar field, recording a PAX record when it does not fit.
fn numeric(records: &mut Vec<(String, Vec<u8>)>, key: &str, value: u64, max: u64) -> u64 {
    if value > max {
        records.push((key.into(), value.to_string().into_bytes()));
        0
    } else {
        value
    }
}

fn set_name(header: &mut Header, prefix: &[u8], name: &[u8]) {
    let ustar = header.as_ustar_mut().expect("ustar header");
    ustar.prefix = [0; PREFIX_LEN];
    ustar.prefix[..prefix.len()].copy_from_slice(prefix);
    ustar.name = [0; NAME_LEN];
    ustar.name[..name.len()].copy_from_slice(name);
}

/// Splits a path into ustar (prefix, name) at a `/`, the way Go's archive/tar does: the last
/// slash within the first 156 bytes. None when the path needs a PAX `path` record.
fn split_ustar_path(path: &[u8]) -> Option<(&[u8], &[u8])> {
    if path.len() <= NAME_LEN {
        return Some((b"", path));
    }
    let mut limit = path.len().min(PREFIX_LEN + 1);
    if limit == path.len() && path[limit - 1] == b'/' {
        limit -= 1;
    }
    let slash = path[..limit].iter().rposition(|&b| b == b'/')?;
    let (prefix, name) = (&path[..slash], &path[slash + 1..]);
    if slash == 0 || name.is_empty() || name.len() > NAME_LEN || prefix.len() > PREFIX_LEN {
        return None;
    }
    Some((prefix, name))
}

fn truncate(bytes: &[u8], len: usize) -> &[u8] {
    &bytes[..bytes.len().min(len)]
}

/// Writes a PAX extended header ('x') holding `records` for the entry at `path`. Its own name
/// follows Go's archive/tar (`dir/PaxHeaders.0/base`), a fixed name for reproducible output.
fn write_pax(out: &mut dyn Write, path: &[u8], records: &[(String, Vec<u8>)]) -> io::Result<()> {
    let mut data = Vec::new();
    for (key, value) in records {
        data.extend_from_slice(&pax_record(key, value));
    }

    let trimmed = path.strip_suffix(b"/").unwrap_or(path);
    let (dir, base) = match trimmed.iter().rposition(|&b| b == b'/') {
        Some(i) => (&trimmed[..=i], &trimmed[i + 1..]),
        None => (&b""[..], trimmed),
    };
    let mut name = dir.to_vec();
    name.extend_from_slice(b"PaxHeaders.0/");
    name.extend_from_slice(base);

    let mut header = Header::new_ustar();
    set_name(&mut header, b"", truncate(&name, NAME_LEN));
    header.set_mode(0);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_size(data.len() as u64);
    header.set_entry_type(EntryType::XHeader);
    header.set_device_major(0)?;
    header.set_device_minor(0)?;
    header.set_cksum();
    out.write_all(header.as_bytes())?;
    out.write_all(&data)?;
    pad(out, data.len() as u64)
}

/// `"<len> <key>=<value>\n"` where len counts the whole record, its own digits included.
pub(crate) fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let body = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    let mut record = format!("{len} {key}=").into_bytes();
    record.extend_from_slice(value);
    record.push(b'\n');
    record
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_length_counts_itself() {
        assert_eq!(pax_record("path", b"a"), b"9 path=a\n");
        assert_eq!(pax_record("path", b"abcdefgh"), b"17 path=abcdefgh\n");
        let long = vec![b'x'; 95];
        let rec = pax_record("path", &long);
        assert_eq!(rec.len(), 105);
        assert!(rec.starts_with(b"105 path="));
    }

    #[test]
    fn ustar_split_matches_go() {
        let short = b"a/b";
        assert_eq!(split_ustar_path(short), Some((&b""[..], &short[..])));
        let mut long = vec![b'd'; 120];
        long.extend_from_slice(b"/file");
        assert_eq!(split_ustar_path(&long), Some((&long[..120], &b"file"[..])));
        let no_slash = vec![b'f'; 101];
        assert_eq!(split_ustar_path(&no_slash), None);
        let mut long_name = b"d/".to_vec();
        long_name.extend(vec![b'f'; 101]);
        assert_eq!(split_ustar_path(&long_name), None);
    }
}
