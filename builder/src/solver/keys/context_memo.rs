//! The stored memo of one local directory's file content hashes: a single index record per
//! directory (`context-dir/<absolute path>`) holding, for each regular file, the metadata its
//! hash was taken under (size, mtime, ctime, inode, device) and the hash. A build loads it once
//! per directory, so a no-change rebuild of a 2,000-file context makes one index read instead
//! of 2,000. A hash stands only while the file's metadata is unchanged.
//!
//! A file changed just before it was read is not memoized (git's "racy" rule: a write in the
//! same clock tick could keep its times). Linux filesystems with nanosecond timestamps (ext4,
//! xfs, btrfs, tmpfs) stamp files from the kernel's coarse clock, at most one tick (10 ms)
//! behind: a file whose newest stamp is over 50 ms older than the moment its content was read
//! gets a new stamp from any later write. Stamps without a sub-second part (FAT's 2 s, some
//! network filesystems) keep a 2 s window. The short window matters: a context checked out
//! (or generated) a second before a build is memoized by that build, so the next one reads
//! nothing.

use super::context_hash::ContextHashError;
use cache::Root;
use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// What must be unchanged for a remembered hash to stand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Stamp {
    size: u64,
    mtime: i64,
    mtime_ns: i64,
    ctime: i64,
    ctime_ns: i64,
    ino: u64,
    dev: u64,
}

const STAMP_LEN: usize = 7 * 8;
const HASH_LEN: usize = 32;
/// Format tag at the start of a record; a record without it is ignored (hashed again).
const MAGIC: &[u8; 4] = b"PCM1";
/// How much older than the read a file's newest stamp must be to be memoized: with
/// nanosecond stamps, and without.
const RACY_FINE_NS: i128 = 50_000_000;
const RACY_COARSE_NS: i128 = 2_000_000_000;

impl Stamp {
    pub(super) fn of(meta: &std::fs::Metadata) -> Stamp {
        Stamp {
            size: meta.len(),
            mtime: meta.mtime(),
            mtime_ns: meta.mtime_nsec(),
            ctime: meta.ctime(),
            ctime_ns: meta.ctime_nsec(),
            ino: meta.ino(),
            dev: meta.dev(),
        }
    }

    /// Whether a hash of the content read from `read_ns` on (ns since the epoch) may be
    /// remembered under this stamp.
    pub(super) fn memoizable(&self, read_ns: i128) -> bool {
        let ns = |s: i64, n: i64| (s as i128) * 1_000_000_000 + n as i128;
        let newest = ns(self.mtime, self.mtime_ns).max(ns(self.ctime, self.ctime_ns));
        let fine = self.mtime_ns != 0 || self.ctime_ns != 0;
        read_ns - newest > if fine { RACY_FINE_NS } else { RACY_COARSE_NS }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        for v in [self.size, self.mtime as u64, self.mtime_ns as u64] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for v in [self.ctime as u64, self.ctime_ns as u64, self.ino, self.dev] {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }

    fn decode(b: &[u8]) -> Stamp {
        let n = |i: usize| u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
        Stamp {
            size: n(0),
            mtime: n(1) as i64,
            mtime_ns: n(2) as i64,
            ctime: n(3) as i64,
            ctime_ns: n(4) as i64,
            ino: n(5),
            dev: n(6),
        }
    }
}

/// Remembered hashes by path relative to the directory.
pub(super) type Hashes = HashMap<String, (Stamp, [u8; HASH_LEN])>;

/// A directory's remembered hashes as one build uses them: the stored record, read in place
/// (no allocation per file), plus what this build's steps hashed.
#[derive(Default)]
pub(super) struct Memo {
    record: Vec<u8>,
    /// Where each entry starts in `record`, in the record's (sorted) order.
    entries: Vec<usize>,
    added: Hashes,
}

impl Memo {
    /// The hash remembered for `rel` and the stamp it was taken under (builds look up many at
    /// once: [`Memo::get_sorted`]).
    #[cfg(test)]
    pub(super) fn get(&self, rel: &str) -> Option<(Stamp, [u8; HASH_LEN])> {
        if let Some(found) = self.added.get(rel) {
            return Some(*found);
        }
        let i = self
            .entries
            .binary_search_by(|&at| rel_at(&self.record, at).cmp(rel.as_bytes()))
            .ok()?;
        let (_, stamp, hash) = entry_at(&self.record, self.entries[i]);
        Some((stamp, hash))
    }

    /// [`Memo::get`] of each name of `rels`, which must be sorted: a merge with the sorted
    /// record instead of a search per name.
    pub(super) fn get_sorted<'a>(
        &self,
        rels: impl Iterator<Item = &'a str>,
    ) -> Vec<Option<(Stamp, [u8; HASH_LEN])>> {
        let mut next = 0;
        rels.map(|rel| {
            if !self.added.is_empty() {
                if let Some(found) = self.added.get(rel) {
                    return Some(*found);
                }
            }
            let at = |i: usize| rel_at(&self.record, self.entries[i]);
            while next < self.entries.len() && at(next) < rel.as_bytes() {
                next += 1;
            }
            (next < self.entries.len() && at(next) == rel.as_bytes()).then(|| {
                let (_, stamp, hash) = entry_at(&self.record, self.entries[next]);
                (stamp, hash)
            })
        })
        .collect()
    }

    pub(super) fn insert(&mut self, rel: String, stamp: Stamp, hash: [u8; HASH_LEN]) {
        self.added.insert(rel, (stamp, hash));
    }

    /// Reads a record; a malformed one (another version, a torn value) gives an empty memo.
    fn parse(record: Vec<u8>) -> Memo {
        if !record.starts_with(MAGIC) {
            return Memo::default();
        }
        let mut entries: Vec<usize> = Vec::new();
        let mut at = MAGIC.len();
        while at < record.len() {
            let Some(len) = record.get(at..at + 4) else {
                return Memo::default();
            };
            let len = u32::from_le_bytes(len.try_into().expect("4 bytes")) as usize;
            let end = at + 4 + len + STAMP_LEN + HASH_LEN;
            // Within the record, and sorted (lookups merge with sorted names).
            let sorted = || {
                entries
                    .last()
                    .is_none_or(|&prev| rel_at(&record, prev) < &record[at + 4..at + 4 + len])
            };
            if end > record.len() || !sorted() {
                return Memo::default();
            }
            entries.push(at);
            at = end;
        }
        Memo {
            record,
            entries,
            added: Hashes::new(),
        }
    }
}

/// The relative path of the entry at `at` (from [`Memo::parse`]).
fn rel_at(record: &[u8], at: usize) -> &[u8] {
    let len = u32::from_le_bytes(record[at..at + 4].try_into().expect("4 bytes")) as usize;
    &record[at + 4..at + 4 + len]
}

/// The entry at `at`: (relative path, stamp, hash).
fn entry_at(record: &[u8], at: usize) -> (&[u8], Stamp, [u8; HASH_LEN]) {
    let rel = rel_at(record, at);
    let len = rel.len();
    let stamp = Stamp::decode(&record[at + 4 + len..at + 4 + len + STAMP_LEN]);
    let hash_at = at + 4 + len + STAMP_LEN;
    let hash = record[hash_at..hash_at + HASH_LEN]
        .try_into()
        .expect("32 bytes");
    (rel, stamp, hash)
}

fn key(dir: &Path) -> String {
    format!("context-dir/{}", dir.display())
}

/// The directory's remembered hashes (empty when there are none or the record is unreadable:
/// that only means hashing again).
pub(super) fn load(root: &Root, dir: &Path) -> Memo {
    match root.index.get_cache(&key(dir)) {
        Ok(Some(bytes)) => Memo::parse(bytes),
        _ => Memo::default(),
    }
}

/// Adds `fresh` hashes to the directory's record, and drops the entries `walked` (the
/// directory's files as this build saw them, sorted) shows to be stale or gone. One write
/// transaction, merged with what other steps and processes stored meanwhile.
pub(super) fn store(
    root: &Root,
    dir: &Path,
    fresh: &[(String, Stamp, [u8; HASH_LEN])],
    walked: &[(String, std::fs::Metadata)],
) -> Result<(), ContextHashError> {
    root.index
        .update_cache(&key(dir), |old| {
            let mut hashes = old.map(decode).unwrap_or_default();
            for (rel, stamp, hash) in fresh {
                hashes.insert(rel.clone(), (*stamp, *hash));
            }
            hashes.retain(|rel, (stamp, _)| {
                walked
                    .binary_search_by(|(w, _)| w.as_str().cmp(rel))
                    .is_ok_and(|i| Stamp::of(&walked[i].1) == *stamp)
            });
            Some(encode(&hashes))
        })
        .map(drop)
        .map_err(|source| ContextHashError::Memo {
            dir: dir.to_path_buf(),
            source,
        })
}

fn encode(hashes: &Hashes) -> Vec<u8> {
    let mut sorted: Vec<_> = hashes.iter().collect();
    sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let mut out = Vec::with_capacity(MAGIC.len() + hashes.len() * (STAMP_LEN + HASH_LEN + 40));
    out.extend_from_slice(MAGIC);
    for (rel, (stamp, hash)) in sorted {
        out.extend_from_slice(&(rel.len() as u32).to_le_bytes());
        out.extend_from_slice(rel.as_bytes());
        stamp.encode(&mut out);
        out.extend_from_slice(hash);
    }
    out
}

/// A record's entries as a map (for merging); a malformed record gives none.
fn decode(bytes: &[u8]) -> Hashes {
    let memo = Memo::parse(bytes.to_vec());
    memo.entries
        .iter()
        .filter_map(|&at| {
            let (rel, stamp, hash) = entry_at(&memo.record, at);
            Some((std::str::from_utf8(rel).ok()?.to_string(), (stamp, hash)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(i: u64) -> Stamp {
        Stamp {
            size: i,
            mtime: -(i as i64),
            mtime_ns: 999_999_999,
            ctime: 1_700_000_000,
            ctime_ns: 1,
            ino: u64::MAX - i,
            dev: 7,
        }
    }

    #[test]
    fn racy_window_is_short_with_nanosecond_stamps_and_two_seconds_without() {
        let second = 1_000_000_000i128;
        let at = |s: i64, ns: i64| Stamp {
            mtime: s,
            mtime_ns: ns,
            ctime: s,
            ctime_ns: ns,
            ..stamp(0)
        };
        let read = |s: i128, ms: i128| s * second + ms * 1_000_000;
        let fine = at(1_700_000_000, 500_000_000);
        assert!(
            !fine.memoizable(read(1_700_000_000, 540)),
            "40 ms after the write"
        );
        assert!(
            fine.memoizable(read(1_700_000_000, 560)),
            "60 ms after the write"
        );
        assert!(
            !fine.memoizable(read(1_699_999_999, 0)),
            "a stamp from the future"
        );
        let coarse = at(1_700_000_000, 0);
        assert!(!coarse.memoizable(read(1_700_000_001, 900)));
        assert!(coarse.memoizable(read(1_700_000_002, 100)));
        // The newer of mtime and ctime counts (a chmod or rename after the write).
        let touched = Stamp {
            ctime: 1_700_000_010,
            ..fine
        };
        assert!(!touched.memoizable(read(1_700_000_001, 0)));
    }

    #[test]
    fn records_round_trip_and_damage_gives_nothing() {
        let mut hashes = Hashes::new();
        hashes.insert("a".into(), (stamp(1), [1; 32]));
        hashes.insert("dir/ünï côde".into(), (stamp(2), [2; 32]));
        let bytes = encode(&hashes);
        assert_eq!(decode(&bytes), hashes);
        assert!(decode(&bytes[..bytes.len() - 1]).is_empty(), "torn record");
        assert!(decode(b"12345 abc").is_empty(), "another format");
        assert!(decode(MAGIC).is_empty());
        // Lookups bisect: a record out of order is not trusted.
        let mut unsorted = MAGIC.to_vec();
        for (rel, h) in [("b", 1u8), ("a", 2)] {
            unsorted.extend_from_slice(&1u32.to_le_bytes());
            unsorted.extend_from_slice(rel.as_bytes());
            stamp(1).encode(&mut unsorted);
            unsorted.extend_from_slice(&[h; 32]);
        }
        assert!(decode(&unsorted).is_empty());
    }

    #[test]
    fn store_merges_and_drops_what_the_walk_shows_stale() {
        let tmp = tempfile::tempdir().unwrap();
        let root = Root::open(&tmp.path().join("root")).unwrap();
        let ctx = tmp.path().join("ctx");
        std::fs::create_dir_all(&ctx).unwrap();
        for f in ["a", "b", "c"] {
            std::fs::write(ctx.join(f), f).unwrap();
        }
        let walked = |names: &[&str]| -> Vec<(String, std::fs::Metadata)> {
            names
                .iter()
                .map(|n| {
                    (
                        n.to_string(),
                        std::fs::symlink_metadata(ctx.join(n)).unwrap(),
                    )
                })
                .collect()
        };
        let fresh = |n: &str, h: u8| {
            let meta = std::fs::symlink_metadata(ctx.join(n)).unwrap();
            (n.to_string(), Stamp::of(&meta), [h; 32])
        };
        store(&root, &ctx, &[fresh("a", 1)], &walked(&["a", "b", "c"])).unwrap();
        // A second step adds its file; the first step's entry stays.
        store(&root, &ctx, &[fresh("b", 2)], &walked(&["a", "b", "c"])).unwrap();
        let got = load(&root, &ctx);
        assert_eq!(got.entries.len(), 2);
        assert_eq!(got.get("a").unwrap().1, [1; 32]);
        assert_eq!(got.get("b").unwrap().1, [2; 32]);
        assert!(got.get("c").is_none());
        let sorted = got.get_sorted(["0", "a", "aa", "b", "c"].into_iter());
        let hashes: Vec<Option<[u8; 32]>> = sorted.iter().map(|f| f.map(|(_, h)| h)).collect();
        assert_eq!(hashes, vec![None, Some([1; 32]), None, Some([2; 32]), None]);
        // "a" changed (new size and times) and "b" is gone from the walk: both dropped.
        std::fs::write(ctx.join("a"), "longer").unwrap();
        store(&root, &ctx, &[fresh("c", 3)], &walked(&["a", "c"])).unwrap();
        let got = load(&root, &ctx);
        assert_eq!(got.entries.len(), 1);
        assert_eq!(got.get("c").unwrap().1, [3; 32]);
    }
}
