//! Two pallet processes on one store root at once. The test re-executes its own test binary
//! (`--exact <child test>`); the child tests do nothing unless `PALLET_CACHE_TEST_CHILD` is
//! set. The children open the root (a fresh one: their opens race to create it), meet at a
//! barrier so that both hold the index open, then work at the same time.

use cache::Root;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};
use testkit::digest::sha256 as digest_of;
use testkit::self_exec;

/// Set in a child: the store root it must open.
const CHILD_ROOT: &str = "PALLET_CACHE_TEST_CHILD";
/// Set in a child: the directory of the barrier files, and the child's number.
const CHILD_SYNC: &str = "PALLET_CACHE_TEST_SYNC";
const CHILD_ID: &str = "PALLET_CACHE_TEST_ID";

const INCREMENTS: u64 = 200;
const BLOBS: usize = 12;
const BLOB_SIZE: usize = 256 * 1024;

fn spawn_child(test: &str, root: &Path, sync: &Path, id: usize) -> Child {
    self_exec::test(module_path!(), test)
        .env(CHILD_ROOT, root)
        .env(CHILD_SYNC, sync)
        .env(CHILD_ID, id.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Runs `test` in two child processes at once and waits for both to pass.
fn run_two(test: &str, root: &Path) -> PathBuf {
    let sync = root.with_extension("sync");
    std::fs::create_dir_all(&sync).unwrap();
    let mut children: Vec<Child> = (0..2)
        .map(|id| spawn_child(test, root, &sync, id))
        .collect();

    // Both children have the root open before either starts.
    let deadline = Instant::now() + Duration::from_secs(120);
    while !(0..2).all(|id| sync.join(format!("ready-{id}")).exists()) {
        for child in &mut children {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("a child exited before the barrier: {status}");
            }
        }
        assert!(Instant::now() < deadline, "children never got ready");
        std::thread::sleep(Duration::from_millis(2));
    }
    std::fs::write(sync.join("go"), b"").unwrap();

    for (id, child) in children.into_iter().enumerate() {
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "child {id} failed ({}):\n{stdout}\n{stderr}",
            out.status
        );
        // The child test really ran (and was not filtered out).
        assert!(
            stdout.contains("1 passed"),
            "child {id}:\n{stdout}\n{stderr}"
        );
        eprint!(
            "{}",
            stderr
                .lines()
                .filter(|l| l.starts_with("child"))
                .fold(String::new(), |acc, l| acc + l + "\n")
        );
    }
    sync
}

/// In a child: the root, the barrier directory and the child's number; `None` in a normal run.
fn child_env() -> Option<(PathBuf, PathBuf, usize)> {
    let root = std::env::var_os(CHILD_ROOT)?;
    let sync = std::env::var_os(CHILD_SYNC).unwrap();
    let id = std::env::var(CHILD_ID).unwrap().parse().unwrap();
    Some((root.into(), sync.into(), id))
}

/// Opens the root, then waits at the barrier.
fn child_open(root: &Path, sync: &Path, id: usize) -> Root {
    let store = match Root::open(root) {
        Ok(store) => store,
        Err(e) => panic!("child {id}: opening the shared root failed: {e}"),
    };
    std::fs::write(sync.join(format!("ready-{id}")), b"").unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !sync.join("go").exists() {
        assert!(Instant::now() < deadline, "child {id}: no go");
        std::thread::sleep(Duration::from_millis(1));
    }
    store
}

#[test]
fn two_processes_count_to_400() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let started = Instant::now();
    let sync = run_two("child_count", &root);
    eprintln!("2 x {INCREMENTS} increments in {:?}", started.elapsed());

    let store = Root::open(&root).unwrap();
    let total = store.index.get_cache("counter").unwrap().unwrap();
    assert_eq!(String::from_utf8(total).unwrap(), "400");

    // Every value from 1 to 400 was produced exactly once, by one process or the other.
    let mut all = Vec::new();
    let mut switches = 0;
    for id in 0..2 {
        let seen: Vec<u64> = std::fs::read_to_string(sync.join(format!("seen-{id}")))
            .unwrap()
            .split_whitespace()
            .map(|v| v.parse().unwrap())
            .collect();
        assert_eq!(seen.len() as u64, INCREMENTS);
        assert!(seen.windows(2).all(|w| w[0] < w[1]), "child {id}: {seen:?}");
        switches += seen.windows(2).filter(|w| w[1] != w[0] + 1).count();
        all.extend(seen);
    }
    all.sort_unstable();
    assert_eq!(all, (1..=2 * INCREMENTS).collect::<Vec<_>>());
    eprintln!("the processes' increments interleaved at {switches} points");
}

#[test]
fn child_count() {
    let Some((root, sync, id)) = child_env() else {
        return;
    };
    let store = child_open(&root, &sync, id);
    let started = Instant::now();
    let mut seen = String::new();
    for _ in 0..INCREMENTS {
        let new = store
            .index
            .update_cache("counter", |old| {
                let old: u64 = old.map_or(0, |v| std::str::from_utf8(v).unwrap().parse().unwrap());
                Some((old + 1).to_string().into_bytes())
            })
            .unwrap_or_else(|e| panic!("child {id}: {e}"))
            .unwrap();
        seen.push_str(std::str::from_utf8(&new).unwrap());
        seen.push('\n');
    }
    eprintln!(
        "child {id}: {INCREMENTS} increments in {:?}",
        started.elapsed()
    );
    std::fs::write(sync.join(format!("seen-{id}")), seen).unwrap();
}

fn blob_content(i: usize) -> Vec<u8> {
    let mut data = Vec::with_capacity(BLOB_SIZE);
    let mut block = Sha256::digest(i.to_le_bytes()).to_vec();
    while data.len() < BLOB_SIZE {
        data.extend_from_slice(&block);
        block = Sha256::digest(&block).to_vec();
    }
    data.truncate(BLOB_SIZE);
    data
}

#[test]
fn two_processes_commit_the_same_blobs() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    run_two("child_commit_blobs", &root);

    let store = Root::open(&root).unwrap();
    for i in 0..BLOBS {
        let data = blob_content(i);
        let digest = digest_of(&data);
        assert_eq!(store.blobs.read(&digest).unwrap(), data, "blob {i}");
    }
    assert_eq!(std::fs::read_dir(store.blobs.dir()).unwrap().count(), BLOBS);
    let temps: Vec<_> = std::fs::read_dir(store.tmp_dir()).unwrap().collect();
    assert!(temps.is_empty(), "{temps:?}");
}

#[test]
fn child_commit_blobs() {
    let Some((root, sync, id)) = child_env() else {
        return;
    };
    let contents: Vec<Vec<u8>> = (0..BLOBS).map(blob_content).collect();
    let store = child_open(&root, &sync, id);
    let started = Instant::now();
    for data in &contents {
        let expected = digest_of(data);
        let mut writer = store.blobs.writer().unwrap();
        for chunk in data.chunks(16 * 1024) {
            writer.write_all(chunk).unwrap();
        }
        let info = writer
            .commit_expect(&expected)
            .unwrap_or_else(|e| panic!("child {id}: {e}"));
        assert_eq!(info.digest, expected);
        // Whoever renamed last, the blob is complete.
        assert_eq!(&store.blobs.read(&expected).unwrap(), data);
        store
            .index
            .set_blob_source(&expected, &format!("child/{id}"))
            .unwrap();
    }
    eprintln!(
        "child {id}: {BLOBS} blobs of {BLOB_SIZE} bytes in {:?}",
        started.elapsed()
    );
}
