//! Filling a buffer from a reader: the one read loop the snapshot, file-op and pull code share
//! (compare two files block by block, sniff an archive's head, copy a small file in one write,
//! cut a decompressed stream into whole chunks).

use std::io::{self, Read};

/// Reads until `buf` is full or the reader ends; returns the bytes read (fewer than
/// `buf.len()` only at the end). Retries reads interrupted by a signal.
pub(crate) fn fill(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hands out at most three bytes a read, and one `Interrupted` before the first.
    struct Trickle<'a> {
        data: &'a [u8],
        interrupted: bool,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if !self.interrupted {
                self.interrupted = true;
                return Err(io::ErrorKind::Interrupted.into());
            }
            let n = buf.len().min(3).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    #[test]
    fn fills_across_short_and_interrupted_reads_and_stops_at_the_end() {
        let mut r = Trickle {
            data: b"abcdefgh",
            interrupted: false,
        };
        let mut buf = [0u8; 5];
        assert_eq!(fill(&mut r, &mut buf).unwrap(), 5);
        assert_eq!(&buf, b"abcde");
        assert_eq!(fill(&mut r, &mut buf).unwrap(), 3);
        assert_eq!(&buf[..3], b"fgh");
        assert_eq!(fill(&mut r, &mut buf).unwrap(), 0);
    }
}
