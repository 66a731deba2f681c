//! gzip on every core, as pigz and Go's pgzip do: the input is cut into 1 MiB blocks, each
//! compressed on rayon as raw deflate ending in a sync flush (the last one finishes the stream),
//! and the pieces are written in order inside one gzip member with the CRC-32 and size of the
//! whole input. The result is one ordinary gzip stream any decoder reads.
//!
//! Blocks that do not compress (random bytes: weights, wheels, already-compressed files) are
//! stored as deflate stored blocks instead of being searched for matches at level 6, which is
//! most of the time gzip spends on such data. A block counts as incompressible when level 1 on
//! its first 64 KiB saves less than 3%.
//!
//! Memory is bounded: a batch of a few blocks in, their compressed pieces out. The output is a
//! function of the input and the level only (block size and batching do not depend on timing),
//! so equal diffs give equal blobs.

use flate2::{Compress, Compression, Crc, FlushCompress, Status};
use rayon::prelude::*;
use std::io::{self, Read, Write};

const BLOCK: usize = 1 << 20;
/// Blocks read and compressed per round (a few per core on the 2-core machines this runs on).
const BATCH: usize = 8;
const SAMPLE: usize = 64 * 1024;

/// Compresses all of `input` into `out` as one gzip member at `level` (0-9).
pub fn gzip_blocks(input: &mut dyn Read, out: &mut dyn Write, level: u32) -> io::Result<()> {
    // Header: magic, deflate, no flags, mtime 0, no extra flags, OS "unknown" (as Go writes).
    out.write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255])?;
    let mut crc = Crc::new();
    let mut lookahead = read_block(input)?;
    loop {
        let mut batch = Vec::with_capacity(BATCH);
        let mut last = false;
        while batch.len() < BATCH {
            let block = std::mem::take(&mut lookahead);
            lookahead = read_block(input)?;
            last = lookahead.is_empty();
            batch.push(block);
            if last {
                break;
            }
        }
        for block in &batch {
            crc.update(block);
        }
        let count = batch.len();
        let pieces: Vec<io::Result<Vec<u8>>> = batch
            .par_iter()
            .enumerate()
            .map(|(i, block)| deflate_block(block, level, last && i + 1 == count))
            .collect();
        for piece in pieces {
            out.write_all(&piece?)?;
        }
        if last {
            break;
        }
    }
    out.write_all(&crc.sum().to_le_bytes())?;
    out.write_all(&crc.amount().to_le_bytes())?;
    Ok(())
}

/// Up to BLOCK bytes; empty at the end of the input.
fn read_block(input: &mut dyn Read) -> io::Result<Vec<u8>> {
    let mut block = Vec::with_capacity(BLOCK);
    input.take(BLOCK as u64).read_to_end(&mut block)?;
    Ok(block)
}

/// One block as raw deflate: sync-flushed (byte-aligned, stream still open) or, for the last
/// block, finished.
fn deflate_block(block: &[u8], level: u32, last: bool) -> io::Result<Vec<u8>> {
    let level = if level > 0 && incompressible(block) {
        0
    } else {
        level
    };
    let mut c = Compress::new(Compression::new(level), false);
    let flush = if last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    let mut out = Vec::with_capacity(block.len() + block.len() / 64 + 1024);
    loop {
        if out.capacity() - out.len() < 1024 {
            out.reserve(64 * 1024);
        }
        let consumed = c.total_in() as usize;
        let status = c
            .compress_vec(&block[consumed..], &mut out, flush)
            .map_err(io::Error::other)?;
        let all_in = c.total_in() as usize == block.len();
        let room_left = out.capacity() - out.len() >= 1024;
        match status {
            Status::StreamEnd => break,
            // A sync flush is complete once all input is in and output space was left over.
            _ if !last && all_in && room_left => break,
            _ => {}
        }
    }
    Ok(out)
}

/// Whether level 1 saves less than 3% on the block's first 64 KiB.
fn incompressible(block: &[u8]) -> bool {
    let sample = &block[..block.len().min(SAMPLE)];
    if sample.len() < 4096 {
        return false;
    }
    let mut c = Compress::new(Compression::fast(), false);
    let mut out = Vec::with_capacity(sample.len() + 1024);
    if c.compress_vec(sample, &mut out, FlushCompress::Finish)
        .is_err()
    {
        return false;
    }
    out.len() * 100 > sample.len() * 97
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gunzip(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        // Not the multi-member decoder: the output must be a single member.
        flate2::read::GzDecoder::new(data)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    fn noise(n: usize) -> Vec<u8> {
        let mut x: u64 = 0x9e3779b97f4a7c15;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    fn roundtrip(data: &[u8], level: u32) -> Vec<u8> {
        let mut gz = Vec::new();
        gzip_blocks(&mut &data[..], &mut gz, level).unwrap();
        assert_eq!(gunzip(&gz), data, "level {level}, {} bytes", data.len());
        gz
    }

    #[test]
    fn round_trips_at_every_size_boundary() {
        let text = b"import math\ndef f(x):\n    return x * 2\n".repeat(200_000);
        for len in [0, 1, 4095, BLOCK - 1, BLOCK, BLOCK + 1, 3 * BLOCK + 17] {
            let data = &text[..len.min(text.len())];
            roundtrip(data, 6);
        }
        // More blocks than one batch, mixed random and text, at several levels.
        let mut mixed = noise(5 * BLOCK);
        mixed.extend_from_slice(&text[..6 * BLOCK]);
        mixed.extend(noise(BLOCK / 2));
        for level in [0, 1, 6, 9] {
            roundtrip(&mixed, level);
        }
    }

    #[test]
    fn gnu_gzip_reads_it() {
        let mut data = noise(2 * BLOCK);
        data.extend(b"hello gzip\n".repeat(300_000));
        let gz = roundtrip(&data, 6);
        let mut child = std::process::Command::new("gzip")
            .args(["-d", "-c"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("gzip is installed");
        let mut stdin = child.stdin.take().unwrap();
        let writer = std::thread::spawn(move || stdin.write_all(&gz));
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap().unwrap();
        assert!(out.status.success());
        assert_eq!(out.stdout, data);
    }

    #[test]
    fn random_blocks_are_stored_and_text_is_compressed() {
        let random = noise(4 * BLOCK);
        let gz = roundtrip(&random, 6);
        // Stored blocks: 5 bytes of framing per 64 KiB, nothing saved, nothing lost.
        assert!(gz.len() < random.len() + random.len() / 1000 + 1024);
        let text = b"the same line again and again\n".repeat(200_000);
        let gz = roundtrip(&text, 6);
        assert!(gz.len() < text.len() / 20, "{} of {}", gz.len(), text.len());
    }

    #[test]
    fn output_is_deterministic() {
        let mut data = noise(3 * BLOCK);
        data.extend(b"abc".repeat(BLOCK));
        assert_eq!(roundtrip(&data, 6), roundtrip(&data, 6));
    }
}
