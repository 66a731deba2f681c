//! A damaged index (issue 13, defect 5): 4 KB of random bytes over any page of index.redb made
//! every command exit 101 inside redb. Every index call must now return (an error naming the
//! way out, or the data), the salvage must keep what is readable, and the rebuilt index must
//! work. Damage is written at every 4 KiB offset of a real index, with a fixed seed.

use cache::salvage::{replace, salvage};
use cache::Index;
use std::collections::BTreeMap;
use std::path::Path;

/// A small deterministic generator (xorshift), so a failure replays.
struct Noise(u64);

impl Noise {
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n)
            .map(|_| {
                self.0 ^= self.0 << 13;
                self.0 ^= self.0 >> 7;
                self.0 ^= self.0 << 17;
                self.0 as u8
            })
            .collect()
    }
}

fn populated(path: &Path) {
    let index = Index::open(path).unwrap();
    for i in 0..300 {
        index
            .put_tag(
                &format!("docker.io/library/app{i}:1"),
                format!("{{\"n\":{i}}}").as_bytes(),
            )
            .unwrap();
        index
            .put_cache(&format!("step/blake3:{i:064x}"), &[i as u8; 200])
            .unwrap();
    }
    index
        .set_blob_source("sha256:00", "docker.io/library/busybox")
        .unwrap();
}

/// Every read and write the store makes at the start of a command.
fn exercise(index: &Index) -> Vec<String> {
    let mut errors = Vec::new();
    let mut note = |r: Result<(), cache::CacheError>| {
        if let Err(e) = r {
            errors.push(e.to_string());
        }
    };
    note(index.list_tags().map(drop));
    note(index.get_tag("docker.io/library/app7:1").map(drop));
    note(index.list_cache().map(drop));
    note(index.get_cache("step/blake3:00").map(drop));
    note(index.blob_source("sha256:00").map(drop));
    note(index.put_tag("docker.io/library/new:1", b"{}"));
    note(index.put_cache("k", b"v"));
    errors
}

#[test]
fn damaged_pages_give_errors_not_panics_and_the_salvage_rebuilds() {
    let tmp = tempfile::tempdir().unwrap();
    let pristine = tmp.path().join("pristine.redb");
    populated(&pristine);
    let size = std::fs::metadata(&pristine).unwrap().len() as usize;
    assert!(
        size > 64 * 1024,
        "the index is {size} bytes: too small to damage page by page"
    );
    let mut noise = Noise(0x5eed_1234_abcd_0001);
    let (mut damaged_runs, mut erroring_runs, mut caught_panics) = (0, 0, 0);
    for offset in (0..size - 4096).step_by(4096) {
        let path = tmp.path().join(format!("damaged-{offset}.redb"));
        let mut bytes = std::fs::read(&pristine).unwrap();
        bytes[offset..offset + 4096].copy_from_slice(&noise.bytes(4096));
        std::fs::write(&path, &bytes).unwrap();
        damaged_runs += 1;
        // Opening and every call return; none panics (a panic fails this test).
        let errors = match Index::open(&path) {
            Ok(index) => exercise(&index),
            Err(e) => vec![e.to_string()],
        };
        if !errors.is_empty() {
            erroring_runs += 1;
            for e in &errors {
                assert!(e.contains("index"), "{offset}: {e}");
            }
            if errors.iter().any(|e| e.contains("inconsistent page")) {
                caught_panics += 1;
            }
        }
        // The salvage reads what it can and a fresh index takes it.
        let salvaged = salvage(&path);
        let records: BTreeMap<&'static str, Vec<(String, Vec<u8>)>> = salvaged
            .tables
            .iter()
            .map(|(name, t)| (*name, t.entries.clone()))
            .collect();
        let tags_read = salvaged.table("tags").len();
        let aside = replace(&path, &records).unwrap();
        assert!(aside.exists(), "the damaged file is kept");
        let rebuilt = Index::open(&path).unwrap();
        assert_eq!(rebuilt.list_tags().unwrap().len(), tags_read, "{offset}");
        assert!(
            exercise(&rebuilt).is_empty(),
            "{offset}: the rebuilt index fails"
        );
    }
    assert!(damaged_runs >= 16, "{damaged_runs}");
    assert!(
        erroring_runs > 0,
        "no damage was noticed at any offset: the test does not reach redb's pages"
    );
    // redb panics on some of these pages: without the containment this test would die there.
    assert!(
        caught_panics > 0,
        "no redb panic was provoked: the test lost its teeth"
    );
    eprintln!(
        "damaged {damaged_runs} pages; {erroring_runs} gave errors ({caught_panics} from redb \
         panics caught), none panicked"
    );
}

#[test]
fn damage_messages_name_the_way_out() {
    let tmp = tempfile::tempdir().unwrap();
    let pristine = tmp.path().join("pristine.redb");
    populated(&pristine);
    let size = std::fs::metadata(&pristine).unwrap().len() as usize;
    let mut noise = Noise(7);
    let mut seen = None;
    for offset in (4096..size - 4096).step_by(4096) {
        let path = tmp.path().join(format!("d{offset}.redb"));
        let mut bytes = std::fs::read(&pristine).unwrap();
        bytes[offset..offset + 4096].copy_from_slice(&noise.bytes(4096));
        std::fs::write(&path, &bytes).unwrap();
        if let Ok(index) = Index::open(&path) {
            if let Some(e) = exercise(&index).into_iter().next() {
                seen = Some(e);
                break;
            }
        }
    }
    let e = seen.expect("some damaged page gives an error");
    assert!(e.contains("pallet doctor"), "{e}");
}
