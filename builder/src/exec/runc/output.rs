//! The container's output: stdout and stderr read on two threads as raw chunks, tagged with
//! their stream, handed to the waiting thread over a channel. On stderr, runc's own failure
//! line (`runc run failed: ...`, reported as an error from runc's log instead) is dropped
//! without holding back anything else: bytes are held only while the start of a line could
//! still be that prefix. [`Lines`] turns chunks back into lines per stream for RUN's log.

use std::io::Read;
use std::sync::mpsc;

/// Which stream of the container output came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// What runc prints on stderr when it fails; the same text is in its log.
const RUNC_FAILED_PREFIX: &[u8] = b"runc run failed: ";
/// Lines longer than this are passed on in pieces.
pub(super) const MAX_LINE: usize = 64 * 1024;
const CHUNK: usize = 64 * 1024;

/// Reads `from` to its end, sending chunks to `tx` (stderr through [`DropRuncFailure`]).
pub(super) fn pump(mut from: impl Read, tx: &mpsc::SyncSender<(Stream, Vec<u8>)>, stream: Stream) {
    let mut filter = DropRuncFailure::default();
    let mut chunk = vec![0u8; CHUNK];
    loop {
        let n = match from.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        let data = match stream {
            Stream::Stdout => chunk[..n].to_vec(),
            Stream::Stderr => filter.feed(&chunk[..n]),
        };
        if !data.is_empty() && tx.send((stream, data)).is_err() {
            return;
        }
    }
    let rest = filter.finish();
    if !rest.is_empty() {
        let _ = tx.send((stream, rest));
    }
}

/// Drops lines that start with runc's failure prefix from a byte stream.
#[derive(Default)]
pub(super) struct DropRuncFailure {
    /// Inside a line that did not start with the prefix: pass bytes through up to the newline.
    passing: bool,
    /// Inside a line that started with the prefix: drop bytes up to and including the newline.
    dropping: bool,
    /// The start of the current line, while it is a strict prefix of the failure prefix.
    held: Vec<u8>,
}

impl DropRuncFailure {
    pub(super) fn feed(&mut self, mut data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len());
        while !data.is_empty() {
            if self.dropping || self.passing {
                match data.iter().position(|&b| b == b'\n') {
                    Some(i) => {
                        if self.passing {
                            out.extend_from_slice(&data[..=i]);
                        }
                        data = &data[i + 1..];
                        self.dropping = false;
                        self.passing = false;
                    }
                    None => {
                        if self.passing {
                            out.extend_from_slice(data);
                        }
                        data = &[];
                    }
                }
                continue;
            }
            // At the start of a line, possibly with a few bytes held.
            let want = &RUNC_FAILED_PREFIX[self.held.len()..];
            let take = want.len().min(data.len());
            if data[..take] == want[..take] {
                self.held.extend_from_slice(&data[..take]);
                data = &data[take..];
                if self.held.len() == RUNC_FAILED_PREFIX.len() {
                    self.held.clear();
                    self.dropping = true;
                }
            } else {
                out.append(&mut self.held);
                self.passing = true;
            }
        }
        out
    }

    /// At the end of the stream: a held partial prefix was container output after all.
    pub(super) fn finish(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.held)
    }
}

/// Reassembles lines (without the newline; long lines in pieces of [`MAX_LINE`]) per stream.
#[derive(Default)]
pub(crate) struct Lines {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

impl Lines {
    pub(crate) fn push(&mut self, stream: Stream, data: &[u8], emit: &mut dyn FnMut(&str)) {
        let buf = match stream {
            Stream::Stdout => &mut self.stdout,
            Stream::Stderr => &mut self.stderr,
        };
        buf.extend_from_slice(data);
        let mut start = 0;
        while let Some(pos) = buf[start..].iter().position(|&b| b == b'\n') {
            emit(&String::from_utf8_lossy(&buf[start..start + pos]));
            start += pos + 1;
        }
        buf.drain(..start);
        while buf.len() >= MAX_LINE {
            let rest = buf.split_off(MAX_LINE);
            emit(&String::from_utf8_lossy(buf));
            *buf = rest;
        }
    }

    /// The unterminated last lines, stdout's first.
    pub(crate) fn finish(&mut self, emit: &mut dyn FnMut(&str)) {
        for buf in [&mut self.stdout, &mut self.stderr] {
            if !buf.is_empty() {
                emit(&String::from_utf8_lossy(buf));
                buf.clear();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter_in_pieces(input: &[u8], piece: usize) -> Vec<u8> {
        let mut f = DropRuncFailure::default();
        let mut out = Vec::new();
        for p in input.chunks(piece) {
            out.extend(f.feed(p));
        }
        out.extend(f.finish());
        out
    }

    #[test]
    fn runc_failure_lines_are_dropped_and_nothing_else() {
        let cases: [(&[u8], &[u8]); 6] = [
            (b"hello\nrunc run failed: boom\nbye\n", b"hello\nbye\n"),
            (b"runc run failed: x", b""),
            (b"runc run\nrunc ran\n", b"runc run\nrunc ran\n"),
            (b"r", b"r"),
            (b"no newline at the end", b"no newline at the end"),
            (
                b"a runc run failed: not at the start\n",
                b"a runc run failed: not at the start\n",
            ),
        ];
        for (input, want) in cases {
            for piece in [1, 2, 5, 17, 1000] {
                assert_eq!(
                    filter_in_pieces(input, piece),
                    want,
                    "{:?} in pieces of {piece}",
                    String::from_utf8_lossy(input)
                );
            }
        }
        // Nothing is held back mid-line: a prompt without newline passes at once.
        let mut f = DropRuncFailure::default();
        assert_eq!(f.feed(b"password: "), b"password: ");
    }

    #[test]
    fn lines_per_stream() {
        let mut got = Vec::new();
        let mut l = Lines::default();
        let mut emit = |s: &str| got.push(s.to_string());
        l.push(Stream::Stdout, b"out1\nou", &mut emit);
        l.push(Stream::Stderr, b"err1\ner", &mut emit);
        l.push(Stream::Stdout, b"t2\n", &mut emit);
        l.push(Stream::Stderr, &vec![b'x'; MAX_LINE + 3], &mut emit);
        l.finish(&mut emit);
        assert_eq!(got[..3], ["out1", "err1", "out2"]);
        assert_eq!(got[3].len(), MAX_LINE);
        assert!(got[3].starts_with("erx"));
        assert_eq!(got[4], "xxxxx");
    }
}
