//! Our own versions of the cases in BuildKit's frontend/dockerfile/dockerfile_export_test.go
//! and the Dockerfile parts of dockerfile_client_test.go (status of each in
//! testdata/parity/CHECKLIST.md; the gateway API's cases have no pallet counterpart).

use crate::parity_kit::{can_run, read, Kit};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Read;

/// A tar's entries: name (without a leading `./`) -> (entry type, content or link target).
fn tar_entries(bytes: &[u8]) -> BTreeMap<String, (tar::EntryType, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut archive = tar::Archive::new(bytes);
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        let name = name.trim_start_matches("./").to_string();
        let kind = entry.header().entry_type();
        let data = if kind.is_symlink() {
            let target = entry.link_name().unwrap().unwrap();
            target.to_string_lossy().as_bytes().to_vec()
        } else {
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();
            data
        };
        out.insert(name, (kind, data));
    }
    out
}

fn content(entries: &BTreeMap<String, (tar::EntryType, Vec<u8>)>, name: &str) -> String {
    let (_, data) = entries
        .get(name)
        .unwrap_or_else(|| panic!("no {name} in the tar: {:?}", entries.keys()));
    String::from_utf8(data.clone()).unwrap()
}

/// testTarExporterBasic, testTarExporterMulti: `-o type=tar` is the file tree as a tar (to a
/// file, and on standard output with buildx's `-o -`); a multi-platform build puts each
/// platform's tree under `os_arch/`, and `FROM stage-$TARGETOS` picks the stage per platform.
#[test]
fn tar_exporter() {
    if !can_run("parity_export") {
        return;
    }
    let kit = Kit::new();
    let ctx = kit.context("basic", "FROM scratch\nCOPY foo foo\n", &[("foo", "data")]);
    let dest = kit.store.path("basic.tar");
    kit.ok(&ctx, &["-o", &format!("type=tar,dest={}", dest.display())]);
    let m = tar_entries(&std::fs::read(&dest).unwrap());
    assert_eq!(content(&m, "foo"), "data");
    assert_eq!(m.len(), 1, "only foo: {:?}", m.keys());

    // `-o -`: the same tar on standard output, the progress on standard error.
    let out = kit
        .store
        .pallet()
        .args(["build", "--progress", "plain", "-o", "-"])
        .arg(&ctx)
        .output();
    assert!(out.status.success(), "{}", testkit::text(&out.stderr));
    assert_eq!(tar_entries(&out.stdout), m);

    let ctx = kit.context(
        "multi",
        "FROM scratch AS stage-linux\nCOPY foo forlinux\n\n\
         FROM scratch AS stage-darwin\nCOPY bar fordarwin\n\n\
         FROM stage-$TARGETOS\n",
        &[("foo", "data"), ("bar", "data2")],
    );
    let dest = kit.store.path("multi.tar");
    let spec = format!("type=tar,dest={}", dest.display());
    kit.ok(&ctx, &["-o", &spec]);
    let m = tar_entries(&std::fs::read(&dest).unwrap());
    assert_eq!(content(&m, "forlinux"), "data");

    kit.ok(
        &ctx,
        &["-o", &spec, "--platform", "linux/amd64,darwin/amd64"],
    );
    let m = tar_entries(&std::fs::read(&dest).unwrap());
    assert_eq!(content(&m, "linux_amd64/forlinux"), "data");
    assert_eq!(content(&m, "darwin_amd64/fordarwin"), "data2");
    assert!(!m.contains_key("linux_amd64/fordarwin"), "{:?}", m.keys());
}

/// The blob `digest` (`sha256:...`) of an OCI layout tar's entries.
fn blob<'a>(m: &'a BTreeMap<String, (tar::EntryType, Vec<u8>)>, digest: &str) -> &'a [u8] {
    let hex = digest.strip_prefix("sha256:").unwrap();
    &m.get(&format!("blobs/sha256/{hex}"))
        .unwrap_or_else(|| panic!("no blob {digest}"))
        .1
}

/// testExportMultiPlatform: three platforms of a scratch image (no RUN, so nothing runs
/// emulated), each COPYing the file named by its TARGETARCH and labelled with its
/// TARGETPLATFORM; `type=local` writes one directory per platform (`linux/arm` is
/// `linux_arm_v7`), the OCI tar an index of three manifests in the order given, each with
/// its one layer, os, architecture and label.
#[test]
fn multi_platform_exports() {
    if !can_run("parity_export") {
        return;
    }
    let kit = Kit::new();
    let ctx = kit.context(
        "ctx",
        "FROM scratch\nARG TARGETARCH\nARG TARGETPLATFORM\nLABEL target=$TARGETPLATFORM\n\
         COPY arch-$TARGETARCH whoami\n",
        &[
            ("arch-arm", "i am arm"),
            ("arch-amd64", "i am amd64"),
            ("arch-s390x", "i am s390x"),
            ("arch-ppc64le", "i am ppc64le"),
        ],
    );
    let dest = kit.local(&ctx, &["--platform", "windows/amd64,linux/arm,linux/s390x"]);
    assert_eq!(read(&dest, "windows_amd64/whoami"), "i am amd64");
    assert_eq!(read(&dest, "linux_arm_v7/whoami"), "i am arm");
    assert_eq!(read(&dest, "linux_s390x/whoami"), "i am s390x");

    let tar = kit.store.path("out.tar");
    let spec = format!("type=oci,dest={},compression=uncompressed", tar.display());
    kit.ok(
        &ctx,
        &[
            "-o",
            &spec,
            "--platform",
            "windows/amd64,linux/arm/v6,linux/ppc64le",
        ],
    );
    let m = tar_entries(&std::fs::read(&tar).unwrap());
    let index: Value = serde_json::from_slice(&m["index.json"].1).unwrap();
    let list_digest = index["manifests"][0]["digest"].as_str().unwrap();
    let list: Value = serde_json::from_slice(blob(&m, list_digest)).unwrap();
    let manifests = list["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 3, "{list}");
    let expected = [
        ("windows/amd64", "windows", "amd64", None, "i am amd64"),
        ("linux/arm/v6", "linux", "arm", Some("v6"), "i am arm"),
        ("linux/ppc64le", "linux", "ppc64le", None, "i am ppc64le"),
    ];
    for (desc, (p, os, arch, variant, whoami)) in manifests.iter().zip(expected) {
        let platform = &desc["platform"];
        assert_eq!(platform["os"], os, "{desc}");
        assert_eq!(platform["architecture"], arch, "{desc}");
        assert_eq!(platform["variant"].as_str(), variant, "{desc}");
        let manifest: Value =
            serde_json::from_slice(blob(&m, desc["digest"].as_str().unwrap())).unwrap();
        let layers = manifest["layers"].as_array().unwrap();
        assert_eq!(layers.len(), 1, "{p}: {manifest}");
        let layer = tar_entries(blob(&m, layers[0]["digest"].as_str().unwrap()));
        assert_eq!(content(&layer, "whoami"), whoami, "{p}");
        let config: Value =
            serde_json::from_slice(blob(&m, manifest["config"]["digest"].as_str().unwrap()))
                .unwrap();
        assert_eq!(config["os"], os, "{p}");
        assert_eq!(config["architecture"], arch, "{p}");
        assert_eq!(config["config"]["Labels"]["target"], p, "{p}");
    }
}

/// The Dockerfile parts of dockerfile_client_test.go: testGatewayBuiltinSyntaxSourceDockerfileV0
/// (a `# syntax=docker/dockerfile-upstream:master` Dockerfile builds with the built-in
/// frontend, no warning), testFrontendEvaluate (a missing COPY source fails naming
/// `"/badfile": not found`, for one platform and for two) and testMultiNilRefsInSolveGateway
/// (`FROM scratch` alone builds for two platforms).
#[test]
fn frontend_requests_as_builds() {
    if !can_run("parity_export") {
        return;
    }
    let kit = Kit::new();
    let ctx = kit.context(
        "syntax",
        "# syntax=docker/dockerfile-upstream:master\nFROM busybox AS build\n\
         RUN echo -n ok > /out\nFROM scratch\nCOPY --from=build /out /out\n",
        &[],
    );
    let out = kit.store.path("syntax-out");
    let spec = format!("type=local,dest={}", out.display());
    let log = kit.ok(&ctx, &["-o", &spec]);
    assert_eq!(read(&out, "out"), "ok");
    assert!(!log.contains("names a frontend image"), "{log}");

    let ctx = kit.context("badfile", "FROM scratch\nCOPY badfile /\n", &[]);
    for platforms in [&[][..], &["--platform", "linux/amd64,linux/arm64"][..]] {
        let err = kit.error(&ctx, platforms);
        assert!(
            err.contains("\"/badfile\": not found"),
            "{platforms:?}: {err}"
        );
    }

    let ctx = kit.context("nil", "FROM scratch\n", &[]);
    kit.ok(&ctx, &["--platform", "linux/amd64,linux/arm64"]);
    let tar = kit.store.path("nil.tar");
    kit.ok(
        &ctx,
        &[
            "--platform",
            "linux/amd64,linux/arm64",
            "-o",
            &format!("type=oci,dest={}", tar.display()),
        ],
    );
    assert!(tar.is_file());
}
