//! Frontend hot path: parsing and lowering Dockerfiles. A build runs this once per invocation,
//! so it must stay a negligible part of a no-change rebuild (target: well under 1 ms for a
//! typical ML Dockerfile).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use frontend::lower::{lower, LowerOptions, Offline};
use frontend::parser::parse;
use std::path::PathBuf;

fn testdata() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata")
}

/// Every golden Dockerfile concatenated is not a valid Dockerfile; parse them one by one.
fn golden_files() -> Vec<Vec<u8>> {
    let dir = testdata().join("buildkit-parser/testfiles");
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("golden testdata") {
        out.push(std::fs::read(e.unwrap().path().join("Dockerfile")).unwrap());
    }
    out
}

fn bench(c: &mut Criterion) {
    let ml = std::fs::read(testdata().join("examples/ml-multistage/Dockerfile")).unwrap();
    let golden = golden_files();
    let golden_bytes: usize = golden.iter().map(Vec::len).sum();

    let mut g = c.benchmark_group("frontend");
    g.throughput(Throughput::Bytes(ml.len() as u64));
    g.bench_function("parse ml-multistage", |b| b.iter(|| parse(&ml).unwrap()));
    let df = parse(&ml).unwrap();
    g.bench_function("lower ml-multistage", |b| {
        b.iter(|| lower(&df, &LowerOptions::default(), &Offline).unwrap())
    });
    // 20k declared ARGs, each given by --build-arg: lowering was quadratic in them (80 s in
    // a debug build); it is linear now.
    let many: String = std::iter::once("FROM scratch\n".to_string())
        .chain((0..20_000).map(|i| format!("ARG K{i}\n")))
        .chain(std::iter::once("RUN true\n".to_string()))
        .collect();
    let many = parse(many.as_bytes()).unwrap();
    let opts = LowerOptions {
        build_args: (0..20_000)
            .map(|i| (format!("K{i}"), format!("v{i}")))
            .collect(),
        ..LowerOptions::default()
    };
    g.throughput(Throughput::Elements(20_000));
    g.bench_function("lower 20k build args", |b| {
        b.iter(|| lower(&many, &opts, &Offline).unwrap())
    });
    g.throughput(Throughput::Bytes(golden_bytes as u64));
    g.bench_function("parse buildkit golden corpus", |b| {
        b.iter(|| golden.iter().filter(|f| parse(f).is_ok()).count())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
