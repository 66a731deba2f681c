//! gzip on every core, as pigz and Go's pgzip do: the input is cut into 1 MiB blocks, each
//! compressed on rayon as raw deflate ending in a sync flush (the last one finishes the stream),
//! and the pieces are written in order inside one gzip member with the CRC-32 and size of the
//! whole input. The result is one ordinary gzip stream any decoder reads.
//!
//! Each block's compressor is primed with the 32 KiB of input before it (the decoder's window
//! holds them), as pigz does, so splitting costs almost no ratio. Pieces of 64 KiB that look
//! random (weights, wheels, already-compressed files: byte entropy above 7.9 bits) are stored
//! as deflate stored blocks instead of being searched for matches at level 6, which is most of
//! the time gzip spends on such data.
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
/// The unit of the stored-or-compressed choice inside a block.
const PIECE: usize = 64 * 1024;
/// deflate's window: how much of the previous block primes the next.
const WINDOW: usize = 32 * 1024;

/// Compresses all of `input` into `out` as one gzip member at `level` (0-9).
pub fn gzip_blocks(input: &mut dyn Read, out: &mut dyn Write, level: u32) -> io::Result<()> {
    // Header: magic, deflate, no flags, mtime 0, no extra flags, OS "unknown" (as Go writes).
    out.write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255])?;
    let mut crc = Crc::new();
    let mut lookahead = read_block(input)?;
    let mut previous: Vec<u8> = Vec::new();
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
        let dicts: Vec<&[u8]> = (0..count)
            .map(|i| {
                let prev: &[u8] = if i == 0 { &previous } else { &batch[i - 1] };
                &prev[prev.len().saturating_sub(WINDOW)..]
            })
            .collect();
        let pieces: Vec<io::Result<Vec<u8>>> = batch
            .par_iter()
            .zip(&dicts)
            .enumerate()
            .map(|(i, (block, dict))| deflate_block(block, dict, level, last && i + 1 == count))
            .collect();
        for piece in pieces {
            out.write_all(&piece?)?;
        }
        let tail = batch.last().map(Vec::as_slice).unwrap_or(&[]);
        previous = tail[tail.len().saturating_sub(WINDOW)..].to_vec();
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
/// block, finished. `dict` is the input just before the block (up to 32 KiB): the decoder's
/// window holds it, so the block may refer back into it as if one compressor had done it all.
/// Each 64 KiB piece is stored (level 0) when it looks random, else compressed at `level`; a
/// run of pieces with one level is one sync-flushed deflate segment of its own.
fn deflate_block(block: &[u8], dict: &[u8], level: u32, last: bool) -> io::Result<Vec<u8>> {
    let mut runs: Vec<(usize, usize, u32)> = Vec::new();
    for (i, piece) in block.chunks(PIECE).enumerate() {
        let want = if level > 0 && looks_random(piece) {
            0
        } else {
            level
        };
        let (start, end) = (i * PIECE, i * PIECE + piece.len());
        match runs.last_mut() {
            Some(run) if run.2 == want => run.1 = end,
            _ => runs.push((start, end, want)),
        }
    }
    if runs.is_empty() {
        runs.push((0, 0, level));
    }
    let mut out = Vec::with_capacity(block.len() + block.len() / 64 + 1024);
    let count = runs.len();
    for (i, (start, end, run_level)) in runs.into_iter().enumerate() {
        let mut c = Compress::new(Compression::new(run_level), false);
        if run_level > 0 {
            let window = window_before(dict, block, start);
            if !window.is_empty() {
                c.set_dictionary(&window).map_err(io::Error::other)?;
            }
        }
        let input = &block[start..end];
        while (c.total_in() as usize) < input.len() {
            reserve(&mut out);
            let done = c.total_in() as usize;
            c.compress_vec(&input[done..], &mut out, FlushCompress::None)
                .map_err(io::Error::other)?;
        }
        let flush = if last && i + 1 == count {
            FlushCompress::Finish
        } else {
            FlushCompress::Sync
        };
        loop {
            reserve(&mut out);
            let status = c
                .compress_vec(&[], &mut out, flush)
                .map_err(io::Error::other)?;
            match status {
                Status::StreamEnd => break,
                // A sync flush is complete once it left output space over.
                _ if flush == FlushCompress::Sync && out.capacity() - out.len() >= 1024 => break,
                _ => {}
            }
        }
    }
    Ok(out)
}

/// The (up to) 32 KiB of input before offset `start` of `block`, reaching into `dict`.
fn window_before(dict: &[u8], block: &[u8], start: usize) -> Vec<u8> {
    if start >= WINDOW {
        return block[start - WINDOW..start].to_vec();
    }
    let from_dict = (WINDOW - start).min(dict.len());
    let mut w = dict[dict.len() - from_dict..].to_vec();
    w.extend_from_slice(&block[..start]);
    w
}

fn reserve(out: &mut Vec<u8>) {
    if out.capacity() - out.len() < 64 * 1024 {
        out.reserve(256 * 1024);
    }
}

/// Random-looking bytes (compressed or encrypted data, weights): order-0 entropy above 7.9
/// bits per byte, where deflate saves almost nothing and searching for matches is wasted.
fn looks_random(piece: &[u8]) -> bool {
    if piece.len() < 4096 {
        return false;
    }
    let mut counts = [0u32; 256];
    for &b in piece {
        counts[b as usize] += 1;
    }
    let n = piece.len() as f64;
    let entropy: f64 = counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / n;
            -p * p.log2()
        })
        .sum();
    entropy > 7.9
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
    fn random_and_text_pieces_mix_inside_one_block() {
        // 64 KiB pieces alternating inside blocks: the level changes mid-stream.
        let mut data = Vec::new();
        for i in 0..40 {
            if i % 3 == 0 {
                data.extend(noise(PIECE + 100));
            } else {
                data.extend(b"text that compresses well\n".repeat(3000));
            }
        }
        for level in [1, 6, 9] {
            roundtrip(&data, level);
        }
    }

    #[test]
    fn output_is_deterministic() {
        let mut data = noise(3 * BLOCK);
        data.extend(b"abc".repeat(BLOCK));
        assert_eq!(roundtrip(&data, 6), roundtrip(&data, 6));
    }
}
