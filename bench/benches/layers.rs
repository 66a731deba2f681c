//! Layer hot paths: writing a layer tar from a directory (with its sha256, the diff id), the
//! same streamed through gzip or zstd (what an export or push pays once per layer), and
//! unpacking a layer into a snapshot directory (what a pull or a cold cache pays).
//!
//! The tree imitates the ../shared/peers workload: 2,000 small Python sources plus one 32 MiB
//! file of mixed compressible and random bytes (model weights, a wheel).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use pallet::snapshot::unpack::{unpack_layer, UnpackOptions};
use pallet::snapshot::write::{write_layer, WriteOptions};
use sha2::{Digest, Sha256};
use std::io::{self, Write};
use std::path::Path;

/// A writer that only hashes (sha256) and counts.
struct HashSink {
    hasher: Sha256,
    bytes: u64,
}

impl Write for HashSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.hasher.update(buf);
        self.bytes += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn sink() -> HashSink {
    HashSink {
        hasher: Sha256::new(),
        bytes: 0,
    }
}

/// Deterministic pseudo-random bytes (xorshift), so runs compare.
fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn make_tree(root: &Path) -> u64 {
    let mut total = 0;
    for p in 0..40 {
        let dir = root.join(format!("src/app/pkg{p:02}"));
        std::fs::create_dir_all(&dir).unwrap();
        for m in 0..50 {
            let body = format!("# module {p}.{m}\nimport math\n").repeat(40 + (m * 7) % 60);
            std::fs::write(dir.join(format!("mod{m:03}.py")), &body).unwrap();
            total += body.len() as u64;
        }
    }
    let mut weights = noise(16 << 20, 7);
    weights.extend(b"tensor ".repeat((16 << 20) / 7));
    std::fs::create_dir_all(root.join("opt/models")).unwrap();
    std::fs::write(root.join("opt/models/model.safetensors"), &weights).unwrap();
    total + weights.len() as u64
}

fn bench(c: &mut Criterion) {
    let tmp = tempfile::tempdir().unwrap();
    let tree = tmp.path().join("tree");
    let bytes = make_tree(&tree);
    let opts = WriteOptions { clamp_mtime: None };
    let mut layer = Vec::new();
    write_layer(&tree, &mut layer, &opts).unwrap();

    let mut g = c.benchmark_group("layers");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(bytes));
    g.bench_function("tar + sha256 (2000 files + 32 MiB)", |b| {
        b.iter(|| {
            let mut s = sink();
            write_layer(&tree, &mut s, &opts).unwrap();
            s.hasher.finalize_reset()
        })
    });
    g.bench_function("tar + gzip(6) + sha256 of both", |b| {
        b.iter(|| {
            let mut gz = flate2::write::GzEncoder::new(sink(), flate2::Compression::default());
            let mut tee = Tee {
                a: sink(),
                b: &mut gz,
            };
            write_layer(&tree, &mut tee, &opts).unwrap();
            gz.finish().unwrap().bytes
        })
    });
    g.bench_function("tar + zstd(3) + sha256 of both", |b| {
        b.iter(|| {
            let mut z = zstd::stream::write::Encoder::new(sink(), 3).unwrap();
            let mut tee = Tee {
                a: sink(),
                b: &mut z,
            };
            write_layer(&tree, &mut tee, &opts).unwrap();
            z.finish().unwrap().bytes
        })
    });
    g.bench_function("unpack into a snapshot dir", |b| {
        b.iter_batched(
            || tempfile::tempdir_in(tmp.path()).unwrap(),
            |dest| {
                let unpack = UnpackOptions {
                    overlay_whiteouts: true,
                    same_owner: false,
                    ..UnpackOptions::default()
                };
                unpack_layer(&mut layer.as_slice(), dest.path(), &unpack).unwrap()
            },
            criterion::BatchSize::PerIteration,
        )
    });
    g.finish();
}

/// Hashes the uncompressed stream (the diff id) while passing it on to the compressor.
struct Tee<'a, W: Write> {
    a: HashSink,
    b: &'a mut W,
}

impl<W: Write> Write for Tee<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.a.write_all(buf)?;
        self.b.write_all(buf)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.b.flush()
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
