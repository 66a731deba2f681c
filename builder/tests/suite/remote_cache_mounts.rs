//! `--cache-to ...,mounts=true` (issue 17): the contents of `RUN --mount=type=cache` travel
//! with the remote cache. Runner A's install step fills a pip-like cache mount and exports it;
//! runner B (a fresh `--root`) with edited requirements re-runs the install step, which finds
//! the packages A downloaded in its mount and downloads only the new one. The packages are a
//! counting stand-in for pip: a shell loop that copies a wheel from `/pkgs` into the cache
//! only when the cache lacks it and prints `fakepip: download NAME` or `fakepip: cached NAME`.
//! Each wheel is larger than the packer's chunk target, so it is a chunk alone and an
//! unchanged wheel is never uploaded again.
//!
//! Real `docker-registry` on 127.0.0.1, runc, busybox (as remote_cache).

use crate::registry_e2e::{registry_and_env, Env};
use crate::remote_cache::{build, with_base};
use std::path::Path;
use testkit::docker_registry::Config;
use testkit::pip_cache::{write_random, Rng};

/// Bytes of each wheel: over the packer's 4 MiB chunk target, so each is a chunk alone.
const WHEEL: u64 = (4 << 20) + 4096;

const DOCKERFILE: &str = "FROM busybox\n\
COPY pkgs /pkgs\n\
COPY requirements.txt /requirements.txt\n\
RUN --mount=type=cache,target=/root/.cache/pip for p in $(cat /requirements.txt); do \
if [ -f /root/.cache/pip/$p.whl ]; then echo \"fakepip: cached $p\"; \
else echo \"fakepip: download $p\"; cp /pkgs/$p.whl /root/.cache/pip/$p.whl; fi; \
wc -c < /root/.cache/pip/$p.whl >> /installed; done\n";

/// A context whose requirements are `reqs` (one per line); `/pkgs` always holds a, b and c
/// (the same bytes in every context: that step stays cached).
fn context(env: &Env, name: &str, reqs: &[&str]) -> String {
    let dir = env.tmp.path().join(name);
    std::fs::create_dir_all(dir.join("pkgs")).unwrap();
    std::fs::write(dir.join("Dockerfile"), DOCKERFILE).unwrap();
    std::fs::write(dir.join("requirements.txt"), reqs.join("\n") + "\n").unwrap();
    let mut rng = Rng::new(17);
    for p in ["a", "b", "c"] {
        write_random(&dir.join("pkgs").join(format!("{p}.whl")), &mut rng, WHEEL);
    }
    dir.to_str().unwrap().to_string()
}

fn downloads(log: &str) -> Vec<String> {
    let mut v: Vec<String> = log
        .lines()
        .filter_map(|l| l.split("fakepip: download ").nth(1))
        .map(|s| s.trim().to_string())
        // The step's title echoes the script: only the script's output is one word.
        .filter(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric()))
        .collect();
    v.sort();
    v
}

fn cached(log: &str) -> Vec<String> {
    let mut v: Vec<String> = log
        .lines()
        .filter_map(|l| l.split("fakepip: cached ").nth(1))
        .map(|s| s.trim().to_string())
        // The step's title echoes the script: only the script's output is one word.
        .filter(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric()))
        .collect();
    v.sort();
    v
}

/// (bytes uploaded, bytes already there) of the export's line for the pip mount.
fn mount_export(log: &str) -> (u64, u64) {
    let line = log
        .lines()
        .find(|l| l.contains("cache mount /root/.cache/pip:") && l.contains("uploaded"))
        .unwrap_or_else(|| panic!("no mount export line: {log}"));
    let number_before = |marker: &str| -> u64 {
        let head = &line[..line.find(marker).unwrap_or_else(|| panic!("{line}"))];
        let digits: String = head
            .chars()
            .rev()
            .take_while(|c| c.is_ascii_digit())
            .collect();
        digits.chars().rev().collect::<String>().parse().unwrap()
    };
    (
        number_before(" bytes) uploaded"),
        number_before(" bytes) already there"),
    )
}

fn sorted(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn a_fresh_runner_finds_the_pip_cache_warm_and_an_unchanged_mount_uploads_nothing() {
    let Some((reg, env)) = registry_and_env(Config::plain()) else {
        return;
    };
    let host = reg.host();
    let cache = format!("type=registry,ref={host}/team/cache:main");
    let to = format!("{cache},mode=max,mounts=true");

    // Runner A: downloads a and b into its cache mount and exports it.
    with_base(&env, "a");
    let ctx1 = context(&env, "ctx1", &["a", "b"]);
    let a = build(&env, "a", &ctx1, &["--cache-to", &to]);
    assert_eq!(downloads(&a), sorted(&["a", "b"]), "{a}");
    let (up, _) = mount_export(&a);
    assert!(up >= 2 * WHEEL, "both wheels uploaded: {a}");

    // Runner B, a fresh store, requirements edited: the install step runs again, on the
    // restored mount, and downloads only c; its export uploads c's chunk, not a's and b's.
    with_base(&env, "b");
    let ctx2 = context(&env, "ctx2", &["a", "b", "c"]);
    let b = build(
        &env,
        "b",
        &ctx2,
        &["--cache-from", &cache, "--cache-to", &to],
    );
    assert!(
        b.contains("restored cache mount /root/.cache/pip from"),
        "{b}"
    );
    assert_eq!(downloads(&b), sorted(&["c"]), "{b}");
    assert_eq!(cached(&b), sorted(&["a", "b"]), "{b}");
    assert!(!b.contains("warning:"), "{b}");
    let (up, skipped) = mount_export(&b);
    assert!(
        up < WHEEL + (1 << 20),
        "only c's chunk and small ones: {up} bytes: {b}"
    );
    assert!(skipped >= 2 * WHEEL, "a's and b's chunks skipped: {b}");

    // B again with every step re-run: the mount did not change, and no chunk is uploaded.
    let again = build(
        &env,
        "b",
        &ctx2,
        &["--no-cache", "--cache-from", &cache, "--cache-to", &to],
    );
    assert_eq!(cached(&again), sorted(&["a", "b", "c"]), "{again}");
    assert!(
        !again.contains("restored cache mount"),
        "local wins: {again}"
    );
    assert_eq!(mount_export(&again).0, 0, "{again}");

    // Runner C takes every step from the cache (the install step does not run): its export
    // keeps the mount instead of dropping it, and runner D, with the requirements reordered,
    // still finds all three wheels.
    with_base(&env, "c");
    let c = build(
        &env,
        "c",
        &ctx2,
        &["--cache-from", &cache, "--cache-to", &to],
    );
    assert!(downloads(&c).is_empty() && cached(&c).is_empty(), "{c}");
    assert!(
        c.contains("not used by this build, kept from the imported cache"),
        "{c}"
    );
    with_base(&env, "d");
    let ctx3 = context(&env, "ctx3", &["c", "a", "b"]);
    let d = build(&env, "d", &ctx3, &["--cache-from", &cache]);
    assert!(downloads(&d).is_empty(), "{d}");
    assert_eq!(cached(&d), sorted(&["a", "b", "c"]), "{d}");
}

/// The blobs of the cache in layout `dir`'s config's first mount: (chunk digests, manifest).
fn layout_mount_blobs(dir: &Path) -> (Vec<String>, String) {
    let read = |d: &str| std::fs::read(dir.join("blobs/sha256").join(&d[7..])).unwrap();
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let manifest: serde_json::Value =
        serde_json::from_slice(&read(index["manifests"][0]["digest"].as_str().unwrap())).unwrap();
    let config: serde_json::Value =
        serde_json::from_slice(&read(manifest["config"]["digest"].as_str().unwrap())).unwrap();
    let mount = &config["mounts"][0];
    assert_eq!(mount["key"], "/root/.cache/pip", "{config}");
    let chunks = mount["chunks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["digest"].as_str().unwrap().to_string())
        .collect();
    // Every blob the config names is in the manifest (a registry's GC keeps it).
    let listed: Vec<&str> = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap())
        .collect();
    let mount_manifest = mount["manifest"]["digest"].as_str().unwrap().to_string();
    assert!(listed.contains(&mount_manifest.as_str()), "{manifest}");
    (chunks, mount_manifest)
}

#[test]
fn a_local_cache_carries_mounts_and_a_corrupt_chunk_is_a_warning_and_an_empty_mount() {
    let Some((_reg, env)) = registry_and_env(Config::plain()) else {
        return;
    };
    let dir = env.tmp.path().join("cache");
    let to = format!("type=local,dest={},mode=max,mounts=true", dir.display());
    let from = format!("type=local,src={}", dir.display());
    with_base(&env, "a");
    let ctx1 = context(&env, "ctx1", &["a", "b"]);
    let a = build(&env, "a", &ctx1, &["--cache-to", &to]);
    assert_eq!(downloads(&a), sorted(&["a", "b"]), "{a}");
    let (chunks, _) = layout_mount_blobs(&dir);
    assert!(chunks.len() >= 2, "a wheel per chunk: {chunks:?}");

    // Runner B exports to another, empty directory: the chunks its pack would reuse from the
    // imported cache are not there, so every chunk is written to the new cache.
    with_base(&env, "b");
    let ctx2 = context(&env, "ctx2", &["a", "b", "c"]);
    let other = env.tmp.path().join("other");
    let to_other = format!("type=local,dest={},mode=max,mounts=true", other.display());
    let b = build(
        &env,
        "b",
        &ctx2,
        &["--cache-from", &from, "--cache-to", &to_other],
    );
    assert!(
        b.contains("restored cache mount /root/.cache/pip from"),
        "{b}"
    );
    assert_eq!(downloads(&b), sorted(&["c"]), "{b}");
    assert!(mount_export(&b).0 >= 3 * WHEEL, "{b}");
    let (other_chunks, other_manifest) = layout_mount_blobs(&other);
    for d in other_chunks.iter().chain([&other_manifest]) {
        assert!(other.join("blobs/sha256").join(&d[7..]).is_file(), "{d}");
    }

    // A chunk damaged in place (same size): one warning, the mount stays empty (all or
    // nothing), and the build is good: it downloads everything, as with no cache.
    let biggest = chunks
        .iter()
        .max_by_key(|d| {
            std::fs::metadata(dir.join("blobs/sha256").join(&d[7..]))
                .unwrap()
                .len()
        })
        .unwrap();
    let path = dir.join("blobs/sha256").join(&biggest[7..]);
    let len = std::fs::metadata(&path).unwrap().len();
    std::fs::write(&path, vec![0x5a; len as usize]).unwrap();
    with_base(&env, "c");
    let c = build(&env, "c", &ctx2, &["--cache-from", &from]);
    assert!(
        c.contains("warning: cache mount /root/.cache/pip from") && c.contains("not restored"),
        "{c}"
    );
    assert_eq!(c.matches("warning:").count(), 1, "one warning: {c}");
    assert_eq!(downloads(&c), sorted(&["a", "b", "c"]), "{c}");
}
