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

/// A tar archive (plain, or gzip'd) with `foo` at `file_time`, and a directory and a symlink
/// with later times (only regular files give an archive its time).
fn archive(file_time: u64, gzip: bool) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mode(0o755);
    h.set_size(0);
    h.set_mtime(file_time + 1000);
    b.append_data(&mut h, "dir/", std::io::empty()).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o644);
    h.set_size(3);
    h.set_mtime(file_time);
    b.append_data(&mut h, "dir/foo", &b"bar"[..]).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    h.set_mtime(file_time + 2000);
    b.append_link(&mut h, "link", "dir/foo").unwrap();
    let tar = b.into_inner().unwrap();
    if !gzip {
        return tar;
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &tar).unwrap();
    gz.finish().unwrap()
}

/// testSourceDateEpochStageHTTPArchive (and the Last-Modified half of
/// testSourceDateEpochNamedContextHTTPLastModified, for a stage): `ARG
/// SOURCE_DATE_EPOCH=<stage>` takes the time of the stage's one `ADD <url>`: the latest
/// regular file of the archive when the server sends no Last-Modified, else that header.
/// RUN sees the number, the image is created at it, and the source stage is not built.
#[test]
fn source_date_epoch_from_a_source_only_stage() {
    if !can_run("parity_sde") {
        return;
    }
    let kit = Kit::new();
    let server = crate::add_url::Server::start();
    server.put("/src.tar", &archive(1_700_000_402, false), None, None);
    server.put(
        "/src.tar.gz",
        &archive(1_600_000_000, true),
        None,
        Some("Tue, 14 Nov 2023 22:13:20 GMT"),
    );
    let dockerfile = |url: &str| {
        format!(
            "ARG SOURCE_DATE_EPOCH=mysource\nFROM scratch AS mysource\nADD {url} /\n\
             FROM busybox\nARG SOURCE_DATE_EPOCH\nRUN echo -n \"$SOURCE_DATE_EPOCH\" >/epoch\n"
        )
    };
    for (path, epoch) in [("/src.tar", 1_700_000_402), ("/src.tar.gz", 1_700_000_000)] {
        let ctx = kit.context(
            &format!("stage{}", path.len()),
            &dockerfile(&server.url(path)),
            &[],
        );
        let out = kit.local(&ctx, &[]);
        assert_eq!(
            crate::parity_kit::read(&out, "epoch"),
            epoch.to_string(),
            "{path}"
        );
        assert!(
            !out.join("dir").exists(),
            "{path}: the source stage is not the target"
        );
        let config = kit.config(&ctx, &[]);
        let log = kit.ok(&ctx, &[]);
        let step = format!(
            "[internal] resolve SOURCE_DATE_EPOCH from {}",
            server.url(path)
        );
        assert!(log.contains(&step), "{log}");
        assert!(log.contains(&format!("SOURCE_DATE_EPOCH={epoch}")), "{log}");
        // --explain fetches nothing: the time comes from what the build stored, so the RUN
        // that saw it is found in the cache.
        let requests = server.request_count(path);
        let explained = kit.build(&ctx, &["--explain"]);
        let explained = testkit::text(&explained.stderr);
        assert!(!explained.contains("cache miss"), "{explained}");
        assert!(explained.contains("CACHED"), "{explained}");
        assert_eq!(server.request_count(path), requests, "no request");
        assert_eq!(
            config["created"],
            time_of(epoch).as_str(),
            "{path}: {config}"
        );
    }
}

/// testSourceDateEpochStageOverride: a number given as `--build-arg` wins over the Dockerfile's
/// stage name, and the stage's URL is never fetched.
#[test]
fn source_date_epoch_build_arg_overrides_a_stage() {
    if !can_run("parity_sde") {
        return;
    }
    let kit = Kit::new();
    let server = crate::add_url::Server::start();
    server.put("/src.tar", &archive(1_700_000_501, false), None, None);
    let ctx = kit.context(
        "override",
        &format!(
            "\nARG SOURCE_DATE_EPOCH=mysource\nFROM scratch AS mysource\nADD {} /\n\
             FROM scratch\nCOPY Dockerfile .\n",
            server.url("/src.tar")
        ),
        &[],
    );
    let dir = kit.store.path("override-oci");
    let spec = format!("type=oci,dest={},tar=false", dir.display());
    kit.ok(
        &ctx,
        &["-o", &spec, "--build-arg", "SOURCE_DATE_EPOCH=1700000502"],
    );
    let (config, mtimes) = config_and_mtimes(&dir);
    assert_eq!(config["created"], time_of(1_700_000_502).as_str());
    assert_eq!(mtimes.len(), 1);
    assert!(mtimes[0].iter().all(|t| *t == 1_700_000_502), "{mtimes:?}");
    assert_eq!(
        server.request_count("/src.tar"),
        0,
        "the stage is not consulted"
    );
}

/// testSourceDateEpochContextLocalUnset: `SOURCE_DATE_EPOCH=context` with a local directory
/// as the context builds as if it were unset: file times are the context's own (not
/// clamped), the image is created now.
#[test]
fn source_date_epoch_context_of_a_directory_is_unset() {
    if !can_run("parity_sde") {
        return;
    }
    let kit = Kit::new();
    let ctx = kit.context("ctx-unset", "FROM scratch\nCOPY Dockerfile /\n", &[]);
    let old = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_600_000_000);
    std::fs::File::options()
        .write(true)
        .open(ctx.join("Dockerfile"))
        .unwrap()
        .set_modified(old)
        .unwrap();
    let dir = kit.store.path("ctx-unset-oci");
    let spec = format!("type=oci,dest={},tar=false", dir.display());
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    kit.ok(
        &ctx,
        &["-o", &spec, "--build-arg", "SOURCE_DATE_EPOCH=context"],
    );
    let (config, mtimes) = config_and_mtimes(&dir);
    assert_eq!(mtimes, [vec![1_600_000_000]], "the file keeps its time");
    let created = config["created"].as_str().unwrap();
    assert!(
        created >= time_of(before).as_str(),
        "created now, not at an epoch: {created}"
    );
}

/// testSourceDateEpochStageInvalid: a stage named by SOURCE_DATE_EPOCH that is not
/// source-only fails the build with BuildKit's text, pointing at the stage.
#[test]
fn source_date_epoch_stage_must_be_source_only() {
    if !can_run("parity_sde") {
        return;
    }
    let kit = Kit::new();
    let ctx = kit.context(
        "invalid",
        "\nARG SOURCE_DATE_EPOCH=mysource\nFROM scratch AS mysource\nCOPY Dockerfile /Dockerfile\nFROM scratch\n",
        &[],
    );
    let err = kit.error(&ctx, &[]);
    assert!(
        err.contains("SOURCE_DATE_EPOCH stage does not meet source-only requirements: unsupported copy instruction"),
        "{err}"
    );
    assert!(err.contains("Dockerfile:3"), "points at the stage: {err}");
}
