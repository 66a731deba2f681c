//! Our own versions of the cases in BuildKit's frontend/dockerfile/
//! dockerfile_source_date_epoch_test.go that a local context can run (status of each in
//! testdata/parity/CHECKLIST.md; the error text is in the frontend's parity tests).

use crate::parity_kit::{can_run, Kit};
use serde_json::Value;
use std::io::Read;
use std::path::Path;

/// The image config and each layer's entry mtimes of the OCI layout at `dir`.
fn config_and_mtimes(dir: &Path) -> (Value, Vec<Vec<u64>>) {
    let layout = testkit::oci_layout::Layout::new(dir);
    let manifest = layout.manifest();
    let blob = |digest: &str| {
        std::fs::read(
            dir.join("blobs/sha256")
                .join(digest.trim_start_matches("sha256:")),
        )
        .unwrap()
    };
    let config: Value =
        serde_json::from_slice(&blob(manifest["config"]["digest"].as_str().unwrap())).unwrap();
    let mut mtimes = Vec::new();
    for l in manifest["layers"].as_array().unwrap() {
        let data = blob(l["digest"].as_str().unwrap());
        let mut raw = Vec::new();
        flate2::read::GzDecoder::new(&data[..])
            .read_to_end(&mut raw)
            .unwrap();
        let times = tar::Archive::new(&raw[..])
            .entries()
            .unwrap()
            .map(|e| e.unwrap().header().mtime().unwrap())
            .collect();
        mtimes.push(times);
    }
    (config, mtimes)
}

/// testSourceDateEpochWithoutExporter, testSourceDateEpochDockerfileDefault,
/// testSourceDateEpochDockerfileDefaultOverride: SOURCE_DATE_EPOCH from `--build-arg` or from
/// the Dockerfile's global `ARG SOURCE_DATE_EPOCH=` default (the build arg wins) is the
/// image's creation time and every history entry's, and the layer's file times are clamped
/// to it (what BuildKit's `rewrite-timestamp` does, pallet's default with an epoch).
#[test]
fn source_date_epoch_from_arg_and_default() {
    if !can_run("parity_sde") {
        return;
    }
    let kit = Kit::new();
    let check = |dockerfile: &str, args: &[&str], epoch: u64, name: &str| {
        let ctx = kit.context(name, dockerfile, &[]);
        let dir = kit.store.path(&format!("{name}-oci"));
        let spec = format!("type=oci,dest={},tar=false", dir.display());
        let mut all = vec!["-o", spec.as_str()];
        all.extend_from_slice(args);
        kit.ok(&ctx, &all);
        let (config, mtimes) = config_and_mtimes(&dir);
        let want = time_of(epoch);
        assert_eq!(config["created"], want.as_str(), "{name}: {config}");
        for h in config["history"].as_array().unwrap() {
            assert_eq!(h["created"], want.as_str(), "{name}: {h}");
        }
        assert_eq!(mtimes.len(), 1, "{name}");
        assert!(mtimes[0].iter().all(|t| *t == epoch), "{name}: {mtimes:?}");
    };
    check(
        "FROM scratch\nENTRYPOINT foo bar\nCOPY Dockerfile .\n",
        &["--build-arg", "SOURCE_DATE_EPOCH=1700000001"],
        1_700_000_001,
        "arg",
    );
    let default = "ARG SOURCE_DATE_EPOCH=1445412480\nFROM scratch\nCOPY Dockerfile .\n";
    check(default, &[], 1_445_412_480, "default");
    check(
        default,
        &["--build-arg", "SOURCE_DATE_EPOCH=1700000002"],
        1_700_000_002,
        "override",
    );
}

/// RFC 3339 (UTC, seconds) of a Unix time, as image configs write it.
fn time_of(epoch: u64) -> String {
    let out = std::process::Command::new("date")
        .args(["-u", "-d", &format!("@{epoch}"), "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}
