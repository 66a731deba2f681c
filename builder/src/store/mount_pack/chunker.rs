//! Where chunks end: at file boundaries chosen by content-defined rules, so that inserting,
//! removing or changing one file moves no boundary far from it.
//!
//! After each entry a chunk ends when the chunk holds at least `min` bytes and the entry's
//! path hash (blake3, first 8 bytes) modulo `target` is below the entry's weight (its tar
//! bytes). Each entry is a cut point with probability weight/target, so chunks average about
//! `min + target` bytes whatever the mix of file sizes, and whether an entry is a cut point
//! depends on its own path and size only: after a change the following boundaries are the
//! old ones again within a chunk or two (the `min` rule can shift one). A chunk never grows
//! past `max` (a forced cut), and a file of `target` bytes or more is a chunk alone, so a
//! large wheel changes only its own chunk. The path, not the content, picks cut points: a
//! file rewritten in place changes its chunk and moves no boundary unless its size class
//! changes.

use std::ops::Range;

use super::walk::Entry;

/// Chunk sizes, in tar bytes. [`ChunkParams::FILES`] and [`ChunkParams::DIRS`] are the
/// defaults; smaller ones are for tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkParams {
    pub min: u64,
    pub target: u64,
    pub max: u64,
}

impl ChunkParams {
    /// Files: chunks of about 5 MiB (1 MiB minimum plus a 4 MiB average), 16 MiB at most; a
    /// file of 4 MiB or more alone. Simulated on 1 GB pip-like caches (6 seeds, 5 changes
    /// each), 2+8+32 MiB re-uploaded a median 15 MB (p90 32 MB) for one removed or rewritten
    /// file against 8 MB (p90 15 MB) here, for 79 chunks instead of 53: the wheels that are
    /// chunks alone are most of the count either way.
    pub const FILES: ChunkParams = ChunkParams {
        min: 1 << 20,
        target: 4 << 20,
        max: 16 << 20,
    };
    /// Directories (512-byte headers): ~1.25 MiB chunks, a few thousand directories each.
    pub const DIRS: ChunkParams = ChunkParams {
        min: 256 << 10,
        target: 1 << 20,
        max: 4 << 20,
    };
}

/// Tar bytes of an entry: its header (and a PAX header for a long name) and its content
/// padded to 512 bytes. An estimate is enough: it only weighs the choice of cut points.
pub(super) fn weight(e: &Entry) -> u64 {
    let pax = if e.rel.len() > 100 { 1024 } else { 0 };
    512 + pax + e.content_size().div_ceil(512) * 512
}

/// The runs of `entries` (by index) that make the chunks.
pub(super) fn chunks(entries: &[Entry], p: ChunkParams) -> Vec<Range<usize>> {
    let target = p.target.max(1);
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0u64;
    for (i, e) in entries.iter().enumerate() {
        let w = weight(e);
        let alone = e.content_size() >= target;
        if alone && i > start {
            out.push(start..i);
            start = i;
            bytes = 0;
        }
        bytes += w;
        let cut = alone || bytes >= p.max || (bytes >= p.min && path_hash(&e.rel) % target < w);
        if cut {
            out.push(start..i + 1);
            start = i + 1;
            bytes = 0;
        }
    }
    if start < entries.len() {
        out.push(start..entries.len());
    }
    out
}

fn path_hash(path: &[u8]) -> u64 {
    let h = blake3::hash(path);
    u64::from_le_bytes(h.as_bytes()[..8].try_into().expect("8 bytes"))
}
