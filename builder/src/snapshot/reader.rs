//! Reading a tar stream one entry at a time, with the extension headers layers use folded in:
//! PAX records (`path`, `linkpath`, `size`, `uid`, `gid`, `mtime`, `SCHILY.xattr.*`) and GNU
//! long names. Ours rather than the `tar` crate's iterator because PAX records must be split by
//! their length prefix, not at newlines: xattr values (file capabilities) are binary and may
//! contain `\n`, and splitting there both loses them and lets a value forge records.
//!
//! Follows Go's archive/tar (what containerd and BuildKit read layers with) where readers
//! differ: header-only types (links, directories, devices, fifos) have no data whatever their
//! size field says, blank numeric fields read as 0, extension headers are capped at 1 MiB, and
//! global PAX headers are skipped. GNU sparse files are refused. Knows nothing of files on disk.

use std::io::{self, Read};

use tar::{EntryType, Header};

use super::header::BLOCK;

/// Largest PAX or GNU long-name header we read (Go's archive/tar limit).
const MAX_SPECIAL: u64 = 1 << 20;

/// One entry, with its extension headers applied.
#[derive(Debug)]
pub(crate) struct Entry {
    /// The name as stored (not yet normalized).
    pub path: Vec<u8>,
    pub kind: EntryType,
    /// Permission bits including setuid, setgid and sticky.
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    /// Seconds and nanoseconds since the epoch.
    pub mtime: (i64, u32),
    pub link: Option<Vec<u8>>,
    pub device: (u32, u32),
    /// Bytes of data that follow (0 for header-only types).
    pub size: u64,
    /// `SCHILY.xattr.` records as (name, value).
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

pub(crate) struct TarReader<R> {
    inner: R,
    /// Data bytes of the current entry not yet read, then its padding.
    remaining: u64,
    padding: u64,
}

impl<R: Read> TarReader<R> {
    pub(crate) fn new(inner: R) -> TarReader<R> {
        TarReader {
            inner,
            remaining: 0,
            padding: 0,
        }
    }

    /// The next entry; what is left of the previous entry's data is skipped. None at the end
    /// of the archive (a zero block, or the end of the stream between entries).
    pub(crate) fn next_entry(&mut self) -> io::Result<Option<Entry>> {
        self.skip(self.remaining + self.padding)?;
        self.remaining = 0;
        self.padding = 0;

        let mut pax: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let mut long_name = None;
        let mut long_link = None;
        loop {
            let mut header = Header::new_old();
            if !self.read_block(header.as_mut_bytes())? {
                if pax.is_empty() && long_name.is_none() && long_link.is_none() {
                    return Ok(None);
                }
                return Err(invalid(
                    "layer ends after an extension header, without its entry",
                ));
            }
            if header.as_bytes().iter().all(|&b| b == 0) {
                return Ok(None);
            }
            check_checksum(&header)?;
            let kind = header.entry_type();
            let stored = size(field(&header.as_old().size, header.entry_size(), "size")?)?;
            match kind {
                EntryType::XHeader => pax.extend(parse_pax(&self.read_special(stored)?)?),
                EntryType::XGlobalHeader => self.skip(padded(stored))?,
                EntryType::GNULongName => long_name = Some(until_nul(self.read_special(stored)?)),
                EntryType::GNULongLink => long_link = Some(until_nul(self.read_special(stored)?)),
                _ => {
                    return self
                        .entry(&header, stored, pax, long_name, long_link)
                        .map(Some)
                }
            }
        }
    }

    fn entry(
        &mut self,
        header: &Header,
        stored: u64,
        pax: Vec<(Vec<u8>, Vec<u8>)>,
        long_name: Option<Vec<u8>>,
        long_link: Option<Vec<u8>>,
    ) -> io::Result<Entry> {
        let old = header.as_old();
        let mut kind = header.entry_type();
        let path = long_name.unwrap_or_else(|| header.path_bytes().into_owned());
        // Old tars mark directories as regular files whose name ends in '/'.
        if old.linkflag[0] == 0 && path.ends_with(b"/") {
            kind = EntryType::Directory;
        }
        if kind.is_gnu_sparse() {
            return Err(unsupported(&path, "GNU sparse files are not supported"));
        }
        let (major, minor) = match (header.as_ustar(), header.as_gnu()) {
            (Some(u), _) => (&u.dev_major[..], &u.dev_minor[..]),
            (None, Some(g)) => (&g.dev_major[..], &g.dev_minor[..]),
            (None, None) => (&[][..], &[][..]),
        };
        let mtime = field(&old.mtime, header.mtime(), "mtime")?;
        let mut entry = Entry {
            kind,
            mode: field(&old.mode, header.mode(), "mode")? & 0o7777,
            uid: field(&old.uid, header.uid(), "uid")?,
            gid: field(&old.gid, header.gid(), "gid")?,
            mtime: (i64::try_from(mtime).unwrap_or(i64::MAX), 0),
            link: long_link.or_else(|| header.link_name_bytes().map(|l| l.into_owned())),
            device: (
                field(major, header.device_major(), "device major")?.unwrap_or(0),
                field(minor, header.device_minor(), "device minor")?.unwrap_or(0),
            ),
            size: stored,
            xattrs: Vec::new(),
            path,
        };
        for (key, value) in pax {
            match &key[..] {
                b"path" if !value.is_empty() => entry.path = value,
                b"linkpath" if !value.is_empty() => entry.link = Some(value),
                b"size" => entry.size = size(pax_number(&value, "size")?)?,
                b"uid" => entry.uid = pax_number(&value, "uid")?,
                b"gid" => entry.gid = pax_number(&value, "gid")?,
                b"mtime" => entry.mtime = parse_pax_time(&value)?,
                _ if key.starts_with(b"GNU.sparse.") => {
                    return Err(unsupported(
                        &entry.path,
                        "GNU sparse files are not supported",
                    ))
                }
                _ => {
                    if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
                        entry.xattrs.push((name.to_vec(), value));
                    }
                }
            }
        }
        let header_only = matches!(
            kind,
            EntryType::Link
                | EntryType::Symlink
                | EntryType::Char
                | EntryType::Block
                | EntryType::Directory
                | EntryType::Fifo
        );
        if header_only {
            entry.size = 0; // Whatever the size field says, as Go's archive/tar reads it.
        }
        self.remaining = entry.size;
        self.padding = padded(entry.size) - entry.size;
        Ok(entry)
    }

    /// Reads one block; false at a clean end of stream.
    fn read_block(&mut self, buf: &mut [u8; BLOCK]) -> io::Result<bool> {
        let mut len = 0;
        while len < BLOCK {
            match self.inner.read(&mut buf[len..]) {
                Ok(0) if len == 0 => return Ok(false),
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "layer ends inside a tar header",
                    ))
                }
                Ok(n) => len += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    fn read_special(&mut self, size: u64) -> io::Result<Vec<u8>> {
        if size > MAX_SPECIAL {
            return Err(invalid(&format!(
                "extension header of {size} bytes (more than 1 MiB)"
            )));
        }
        let mut data = vec![0; size as usize];
        self.inner.read_exact(&mut data).map_err(truncated)?;
        self.skip(padded(size) - size)?;
        Ok(data)
    }

    fn skip(&mut self, amount: u64) -> io::Result<()> {
        let skipped = io::copy(&mut (&mut self.inner).take(amount), &mut io::sink())?;
        if skipped != amount {
            return Err(truncated(io::ErrorKind::UnexpectedEof.into()));
        }
        Ok(())
    }
}

/// The current entry's data.
impl<R: Read> Read for TarReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(truncated(io::ErrorKind::UnexpectedEof.into()));
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

/// Sizes are int64 in Go's archive/tar; larger ones are corrupt (and would overflow padding).
fn size(value: u64) -> io::Result<u64> {
    if value > i64::MAX as u64 {
        return Err(invalid(&format!("entry size {value} is out of range")));
    }
    Ok(value)
}

fn padded(size: u64) -> u64 {
    size.div_ceil(BLOCK as u64) * BLOCK as u64
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_owned())
}

fn unsupported(path: &[u8], msg: &str) -> io::Error {
    let msg = format!("{:?}: {msg}", super::entry_name::shown(path));
    io::Error::new(io::ErrorKind::Unsupported, msg)
}

fn truncated(err: io::Error) -> io::Error {
    if err.kind() == io::ErrorKind::UnexpectedEof {
        io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "layer is truncated (ends inside an entry)",
        )
    } else {
        err
    }
}

fn until_nul(mut bytes: Vec<u8>) -> Vec<u8> {
    if let Some(nul) = bytes.iter().position(|&b| b == 0) {
        bytes.truncate(nul);
    }
    bytes
}

/// The header checksum, summed with unsigned or (old Sun tars) signed bytes, as Go accepts.
fn check_checksum(header: &Header) -> io::Result<()> {
    let bytes = header.as_bytes();
    let stored = header
        .cksum()
        .map_err(|_| invalid("tar header has an unreadable checksum"))?;
    let rest = bytes[..148].iter().chain(&bytes[156..]);
    let unsigned: u32 = rest.clone().map(|&b| u32::from(b)).sum::<u32>() + 8 * 32;
    let signed: i64 = rest.map(|&b| i64::from(b as i8)).sum::<i64>() + 8 * 32;
    if stored == unsigned || i64::from(stored) == signed {
        Ok(())
    } else {
        Err(invalid(
            "tar header checksum mismatch (not a tar stream, or corrupt)",
        ))
    }
}

/// A numeric field; blank (all NUL or spaces) reads as zero, as in Go's archive/tar.
fn field<T: Default>(raw: &[u8], parsed: io::Result<T>, what: &str) -> io::Result<T> {
    match parsed {
        Ok(v) => Ok(v),
        Err(_) if raw.iter().all(|&b| b == 0 || b == b' ') => Ok(T::default()),
        Err(e) => Err(invalid(&format!("tar header field {what}: {e}"))),
    }
}

/// Records of a PAX extended header: `"<len> <key>=<value>\n"`, split by their length.
fn parse_pax(mut data: &[u8]) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let bad = || invalid("malformed PAX record");
    let mut records = Vec::new();
    while !data.is_empty() {
        let space = data.iter().position(|&b| b == b' ').ok_or_else(bad)?;
        let len: usize = std::str::from_utf8(&data[..space])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(bad)?;
        if len <= space + 1 || len > data.len() || data[len - 1] != b'\n' {
            return Err(bad());
        }
        let record = &data[space + 1..len - 1];
        let eq = record.iter().position(|&b| b == b'=').ok_or_else(bad)?;
        records.push((record[..eq].to_vec(), record[eq + 1..].to_vec()));
        data = &data[len..];
    }
    Ok(records)
}

fn pax_number(value: &[u8], what: &str) -> io::Result<u64> {
    std::str::from_utf8(value)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid(&format!("PAX {what} is not a number")))
}

/// PAX times are decimal seconds with an optional fraction: `1700000000.5`, `-1.25`.
fn parse_pax_time(value: &[u8]) -> io::Result<(i64, u32)> {
    let bad = || invalid("PAX mtime is not a time");
    let text = std::str::from_utf8(value).map_err(|_| bad())?;
    let (negative, text) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (secs, frac) = text.split_once('.').unwrap_or((text, ""));
    let secs: i64 = secs.parse().map_err(|_| bad())?;
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let digits: String = frac.chars().chain(std::iter::repeat('0')).take(9).collect();
    let nanos: u32 = digits.parse().map_err(|_| bad())?;
    Ok(match (negative, nanos) {
        (false, _) => (secs, nanos),
        (true, 0) => (-secs, 0),
        (true, n) => (-secs - 1, 1_000_000_000 - n),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_records_are_split_by_length() {
        let value = b"a\nb=\n3 c=d\n";
        let mut data = super::super::header::pax_record("SCHILY.xattr.user.x", value);
        data.extend_from_slice(b"9 path=a\n");
        let records = parse_pax(&data).unwrap();
        assert_eq!(
            records[0],
            (b"SCHILY.xattr.user.x".to_vec(), value.to_vec())
        );
        assert_eq!(records[1], (b"path".to_vec(), b"a".to_vec()));
        assert!(parse_pax(b"99 path=a\n").is_err());
        assert!(parse_pax(b"9 path=a!").is_err());
    }

    #[test]
    fn reads_back_what_the_writer_puts_in_pax_records() {
        use super::super::header::{write_header, EntryMeta};
        let path = format!("{}/{}", "d".repeat(200), "f".repeat(150));
        let link = "l".repeat(300);
        let xattrs = [("user.x".to_owned(), b"a\nb".to_vec())];
        let meta = EntryMeta {
            path: path.as_bytes(),
            kind: EntryType::Symlink,
            mode: 0o777,
            uid: 3_000_000,
            gid: 7,
            mtime: 1 << 40,
            size: 0,
            link: Some(link.as_bytes()),
            device: None,
            xattrs: &xattrs,
        };
        let mut bytes = Vec::new();
        write_header(&mut bytes, &meta).unwrap();
        let big = EntryMeta {
            kind: EntryType::Regular,
            size: 9 << 30,
            link: None,
            ..meta
        };
        write_header(&mut bytes, &big).unwrap();

        let mut reader = TarReader::new(&bytes[..]);
        let e = reader.next_entry().unwrap().unwrap();
        assert_eq!(
            (e.path, e.link),
            (path.clone().into_bytes(), Some(link.into_bytes()))
        );
        assert_eq!(
            (e.uid, e.gid, e.mtime, e.mode),
            (3_000_000, 7, (1 << 40, 0), 0o777)
        );
        assert_eq!(e.xattrs, vec![(b"user.x".to_vec(), b"a\nb".to_vec())]);
        let e = reader.next_entry().unwrap().unwrap();
        assert_eq!((e.size, e.kind), (9 << 30, EntryType::Regular));
    }

    #[test]
    fn pax_times() {
        assert_eq!(parse_pax_time(b"1700000000").unwrap(), (1_700_000_000, 0));
        assert_eq!(parse_pax_time(b"1.5").unwrap(), (1, 500_000_000));
        assert_eq!(parse_pax_time(b"-1.25").unwrap(), (-2, 750_000_000));
        assert_eq!(parse_pax_time(b"12.0000000019").unwrap(), (12, 1));
        assert!(parse_pax_time(b"x").is_err());
    }
}
