//! Context hashing: what a COPY of the source tree costs before any cache lookup. Cold: every
//! file is read and hashed (blake3). Memoized: a no-change rebuild only stats the files (while
//! walking the context) and reads the directory's memo record, which is most of a no-op
//! build's time.
//!
//! The context imitates the ../shared/peers workload: 2,000 Python sources in 40 packages.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use pallet::solver::context_hash;
use std::path::Path;

fn make_context(dir: &Path) -> u64 {
    let mut total = 0;
    for p in 0..40 {
        let pkg = dir.join(format!("src/app/pkg{p:02}"));
        std::fs::create_dir_all(&pkg).unwrap();
        for m in 0..50 {
            let body = format!("# module {p}.{m}\nimport math\n").repeat(40 + (m * 7) % 60);
            std::fs::write(pkg.join(format!("mod{m:03}.py")), &body).unwrap();
            total += body.len() as u64;
        }
    }
    total
}

/// Backdates every file's mtime. The memo skips files changed just before they are read
/// (git's racy rule: 50 ms with nanosecond timestamps, so the ctime of a file made here is old
/// enough by the time the benchmark reads it).
fn backdate(dir: &Path) {
    let old = filetime::FileTime::from_unix_time(1_700_000_000, 0);
    for pkg in std::fs::read_dir(dir.join("src/app")).unwrap() {
        for f in std::fs::read_dir(pkg.unwrap().path()).unwrap() {
            filetime::set_file_mtime(f.unwrap().path(), old).unwrap();
        }
    }
}

fn bench(c: &mut Criterion) {
    let tmp = tempfile::tempdir().unwrap();
    let ctx = tmp.path().join("ctx");
    let bytes = make_context(&ctx);
    backdate(&ctx);
    let paths = vec!["src/".to_string()];

    let mut g = c.benchmark_group("context");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(bytes));
    g.bench_function("hash 2000 files, cold (no memo)", |b| {
        b.iter_batched(
            || {
                let store = tempfile::tempdir_in(tmp.path()).unwrap();
                let root = cache::Root::open(&store.path().join("root")).unwrap();
                (store, root)
            },
            |(_store, root)| context_hash(&root, &ctx, &paths, None).unwrap(),
            criterion::BatchSize::PerIteration,
        )
    });
    let store = tempfile::tempdir_in(tmp.path()).unwrap();
    let root = cache::Root::open(&store.path().join("root")).unwrap();
    let first = context_hash(&root, &ctx, &paths, None).unwrap();
    g.bench_function("hash 2000 files, memoized (no-change rebuild)", |b| {
        b.iter(|| {
            let again = context_hash(&root, &ctx, &paths, None).unwrap();
            assert_eq!(again, first);
            again
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
