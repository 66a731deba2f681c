//! Provenance attestations (issue 15: buildx's `--provenance` / `--attest type=provenance`),
//! stored as BuildKit stores them: the image under an index beside an attestation manifest
//! (platform `unknown/unknown`, `vnd.docker.reference.*` annotations naming the image
//! manifest) whose layer is an in-toto statement about that manifest. Pushed to a real
//! docker-registry and read back with skopeo (`inspect --raw`, `copy --all` to an OCI layout
//! whose blobs we parse); written as an OCI layout read by skopeo and umoci; one attestation
//! per platform for `--platform a,b`; kept by the store for `pallet inspect` and `pallet push`.
//! Secrets never appear: a `--secret`'s value and a secret-named build arg's value are absent
//! from every statement. SBOMs (`--sbom`) come from a scanner image built here, run by
//! BuildKit's SBOM protocol.
//!
//! Needs root, runc, busybox, skopeo, umoci and docker-registry (the two-platform case also
//! QEMU and the arm64 busybox); fails under CI=true when missing.

use crate::registry_e2e::registry_and_env;
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use testkit::docker_registry::Config;
use testkit::run::ok;
use testkit::store::Store;
use testkit::{files, pallet, require, text, Need::*};

const DOCKERFILE: &str = "FROM busybox:latest\nRUN echo ok > /foo\n";
const ATTESTATION: &str = "attestation-manifest";

/// A store with busybox imported, where root, busybox-static, runc and `more` are here; None
/// where the test cannot run (`require` says why, and fails under CI=true).
fn busybox_store(what: &str, more: &[testkit::Need]) -> Option<Store> {
    let mut needs = vec![Root, Busybox, Tool("runc")];
    needs.extend_from_slice(more);
    require(what, &needs).then(|| Store::busybox(pallet!()))
}

fn skopeo_raw(location: &str) -> Value {
    let raw = ok(Command::new("skopeo").args(["inspect", "--raw", "--tls-verify=false", location]));
    serde_json::from_str(raw.trim()).unwrap_or_else(|e| panic!("{e}: {raw}"))
}

/// A blob of an OCI layout directory, parsed.
fn blob(layout: &Path, digest: &str) -> Value {
    let path = layout
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(testkit::digest::sha256(&bytes), digest, "blob {digest}");
    serde_json::from_slice(&bytes).unwrap()
}

/// The image entry and the attestation entry about it in `index`, for `platform`.
fn pair<'a>(index: &'a Value, platform: &str) -> (&'a Value, &'a Value) {
    let manifests = index["manifests"].as_array().expect("an index");
    let image = manifests
        .iter()
        .find(|m| {
            let p = &m["platform"];
            format!(
                "{}/{}",
                p["os"].as_str().unwrap(),
                p["architecture"].as_str().unwrap()
            ) == platform
        })
        .unwrap_or_else(|| panic!("no {platform} image in {index}"));
    let att = manifests
        .iter()
        .find(|m| m["annotations"]["vnd.docker.reference.digest"] == image["digest"])
        .unwrap_or_else(|| panic!("no attestation for {platform} in {index}"));
    assert_eq!(att["platform"]["os"], "unknown", "{att}");
    assert_eq!(att["platform"]["architecture"], "unknown", "{att}");
    assert_eq!(
        att["annotations"]["vnd.docker.reference.type"], ATTESTATION,
        "{att}"
    );
    assert_eq!(
        att["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    (image, att)
}

/// The statement of an attestation manifest (in a layout), and its raw text; checks the
/// manifest's shape and that the subject is `image_digest`.
fn statement(layout: &Path, att_digest: &str, image_digest: &str) -> (Value, String) {
    let m = blob(layout, att_digest);
    let layer = &m["layers"][0];
    assert_eq!(layer["mediaType"], "application/vnd.in-toto+json", "{m}");
    let config = blob(layout, m["config"]["digest"].as_str().unwrap());
    assert_eq!(config["os"], "unknown", "{config}");
    assert_eq!(config["rootfs"]["diff_ids"][0], layer["digest"], "{config}");
    let digest = layer["digest"].as_str().unwrap();
    let path = layout.join("blobs/sha256").join(&digest[7..]);
    let raw = std::fs::read_to_string(path).unwrap();
    let st: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(st["_type"], "https://in-toto.io/Statement/v1", "{raw}");
    assert_eq!(
        layer["annotations"]["in-toto.io/predicate-type"],
        st["predicateType"]
    );
    assert_eq!(
        st["subject"][0]["digest"]["sha256"],
        image_digest.trim_start_matches("sha256:"),
        "the subject is the image manifest: {raw}"
    );
    (st, raw)
}

/// `skopeo copy --all` of `reference` into an OCI layout directory.
fn copy_all(reference: &str, layout: &Path) {
    ok(Command::new("skopeo")
        .args(["copy", "--all", "--src-tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .arg(format!("oci:{}:x", layout.display())));
}

fn rfc3339_nanos(s: &str) -> (i64, u32) {
    let secs = graph::time::parse_rfc3339(s).unwrap_or_else(|| panic!("not RFC 3339: {s}"));
    let frac = s
        .split_once('.')
        .map_or("0", |(_, f)| f.trim_end_matches('Z'));
    (secs, format!("{frac:0<9}")[..9].parse().unwrap())
}

#[test]
fn pushed_min_provenance_is_an_attestation_manifest_about_the_image() {
    let Some((reg, _env)) = registry_and_env(Config::plain()) else {
        return;
    };
    let store = Store::busybox(pallet!());
    let ctx = files::context(&store.path("ctx"), DOCKERFILE, &[]);
    let target = format!("{}/buildkit/testwithprovenance:min", reg.host());
    let second = format!("{}/buildkit/testwithprovenance:also", reg.host());
    let metadata = store.path("metadata.json");
    store
        .pallet()
        .args([
            "build",
            "--progress",
            "plain",
            "--push",
            "-t",
            &target,
            "-t",
            &second,
        ])
        .args([
            "--provenance",
            "true",
            "--build-arg",
            "FOO=bar",
            "--label",
            "lbl=abc",
        ])
        .arg("--metadata-file")
        .arg(&metadata)
        .arg(&ctx)
        .succeeds();
    let index = skopeo_raw(&format!("docker://{target}"));
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    assert_eq!(index["manifests"].as_array().unwrap().len(), 2, "{index}");
    let (image, att) = pair(&index, "linux/amd64");
    // --metadata-file names the index, as buildx does.
    let meta: Value = serde_json::from_str(&files::read(&metadata)).unwrap();
    let served = ok(Command::new("skopeo").args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{target}"),
    ]));
    assert_eq!(
        meta["containerimage.digest"],
        testkit::digest::sha256(served.trim().as_bytes())
    );
    // The image is still an image: skopeo picks the host's through the index.
    let inspected: Value = serde_json::from_str(&ok(Command::new("skopeo").args([
        "inspect",
        "--tls-verify=false",
        &format!("docker://{target}"),
    ])))
    .unwrap();
    assert_eq!(inspected["Architecture"], "amd64", "{inspected}");
    assert_eq!(
        inspected["Layers"].as_array().unwrap().len(),
        2,
        "{inspected}"
    );
    assert_eq!(inspected["Labels"]["lbl"], "abc", "{inspected}");

    let layout = store.path("copied");
    copy_all(&target, &layout);
    let (st, _) = statement(
        &layout,
        att["digest"].as_str().unwrap(),
        image["digest"].as_str().unwrap(),
    );
    assert_eq!(st["predicateType"], "https://slsa.dev/provenance/v1");
    // One statement names every tag (as BuildKit's exporter does), so both tags are one index.
    for (i, tag) in ["min", "also"].iter().enumerate() {
        assert_eq!(
            st["subject"][i]["name"],
            format!(
                "pkg:docker/{}/buildkit/testwithprovenance@{tag}?platform=linux%2Famd64",
                reg.host().replace(':', "%3A")
            )
        );
    }
    assert_eq!(skopeo_raw(&format!("docker://{second}")), index);
    let p = &st["predicate"];
    let def = &p["buildDefinition"];
    assert_eq!(
        def["buildType"],
        "https://github.com/moby/buildkit/blob/master/docs/attestations/slsa-definitions.md"
    );
    assert_eq!(p["runDetails"]["builder"]["id"], "");
    let request = &def["externalParameters"]["request"];
    assert_eq!(request["frontend"], "dockerfile.v0");
    assert_eq!(
        def["externalParameters"]["configSource"]["path"],
        "Dockerfile"
    );
    // mode=min: no build-arg or label values, so the request is incomplete.
    assert!(request.get("args").is_none(), "{request}");
    let meta = &p["runDetails"]["metadata"];
    assert_eq!(meta["buildkit_completeness"]["request"], false);
    assert_eq!(meta["buildkit_completeness"]["resolvedDependencies"], false);
    assert_eq!(request["locals"][0]["name"], "context");
    assert_eq!(request["locals"][1]["name"], "dockerfile");
    // The base by digest: the busybox the store has.
    let deps = def["resolvedDependencies"].as_array().unwrap();
    assert_eq!(deps.len(), 1, "{deps:?}");
    assert_eq!(
        deps[0]["uri"],
        "pkg:docker/busybox@latest?platform=linux%2Famd64"
    );
    let base = store
        .pallet()
        .args(["inspect", "--format", "json", "busybox"])
        .ok();
    let base: Value = serde_json::from_str(&base).unwrap();
    assert_eq!(
        format!("sha256:{}", deps[0]["digest"]["sha256"].as_str().unwrap()),
        base["manifest_digest"].as_str().unwrap()
    );
    assert_eq!(def["internalParameters"]["builderPlatform"], "linux/amd64");
    assert!(def["internalParameters"].get("buildConfig").is_none());
    assert!(meta["buildkit_metadata"].get("source").is_none());
    let started = rfc3339_nanos(meta["startedOn"].as_str().unwrap());
    let finished = rfc3339_nanos(meta["finishedOn"].as_str().unwrap());
    assert!(started < finished, "{meta}");
    assert_eq!(meta["invocationId"].as_str().unwrap().len(), 25);

    // A fresh store builds FROM the attested image: the pull picks the image, not the
    // attestation.
    let fresh = Store::empty(pallet!());
    let from = files::context(
        &fresh.path("ctx"),
        &format!("FROM {target}\nRUN cat /foo\n"),
        &[],
    );
    fresh
        .pallet()
        .args(["build", "--progress", "plain"])
        .arg(&from)
        .succeeds();
}

#[test]
fn max_provenance_in_an_oci_layout_has_the_build_and_never_a_secret() {
    let Some(store) = busybox_store("provenance mode=max", &[Tool("skopeo"), Tool("umoci")]) else {
        return;
    };
    let dockerfile = "FROM busybox:latest\n\
        ARG GITHUB_TOKEN\n\
        ARG FOO\n\
        RUN --mount=type=secret,id=mysecret --mount=type=secret,id=othersecret --mount=type=ssh \
        test -n \"$GITHUB_TOKEN\" && cat /run/secrets/mysecret > /dev/null && echo ok > /foo\n";
    let ctx = files::context(&store.path("ctx"), dockerfile, &[]);
    let secret = store.path("secret.txt");
    files::write(&secret, "s3cr3t-value-123");
    let layout = store.path("layout");
    let build = |extra: &[&str], dest: &Path| {
        store
            .pallet()
            .args(["build", "--progress", "plain", "-t", "prov:max"])
            .args(extra)
            .args([
                "--build-arg",
                "GITHUB_TOKEN=tok-value-456",
                "--build-arg",
                "FOO=bar",
            ])
            .args(["--label", "lbl=abc"])
            .arg("--secret")
            .arg(format!("id=mysecret,src={}", secret.display()))
            .arg("-o")
            .arg(format!("type=oci,tar=false,dest={}", dest.display()))
            .arg(&ctx)
            .succeeds();
    };
    build(&["--provenance", "mode=max"], &layout);
    // skopeo reads the layout: an index with the image and its attestation.
    let index = skopeo_raw(&format!("oci:{}", layout.display()));
    let (image, att) = pair(&index, "linux/amd64");
    let (st, raw) = statement(
        &layout,
        att["digest"].as_str().unwrap(),
        image["digest"].as_str().unwrap(),
    );
    assert!(!raw.contains("s3cr3t-value-123"), "a secret's value: {raw}");
    assert!(
        !raw.contains("tok-value-456"),
        "a secret-named build arg's value: {raw}"
    );
    let p = &st["predicate"];
    let request = &p["buildDefinition"]["externalParameters"]["request"];
    assert_eq!(request["args"]["build-arg:FOO"], "bar", "{request}");
    assert_eq!(request["args"]["label:lbl"], "abc", "{request}");
    assert_eq!(
        request["args"]["build-arg:GITHUB_TOKEN"], "xxxxx",
        "{request}"
    );
    // The ids of the secrets, as BuildKit lists them (optional: not required=true).
    assert_eq!(
        request["secrets"],
        serde_json::json!([{"id": "mysecret", "optional": true}, {"id": "othersecret", "optional": true}])
    );
    assert_eq!(
        request["ssh"],
        serde_json::json!([{"id": "default", "optional": true}])
    );
    let meta = &p["runDetails"]["metadata"];
    // A redacted arg leaves the request incomplete.
    assert_eq!(meta["buildkit_completeness"]["request"], false);
    let info = &meta["buildkit_metadata"]["source"]["infos"][0];
    assert_eq!(info["filename"], "Dockerfile");
    assert_eq!(info["language"], "Dockerfile");
    let data = Command::new("base64")
        .arg("-d")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin
                .take()
                .unwrap()
                .write_all(info["data"].as_str().unwrap().as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    assert_eq!(text(&data.stdout), dockerfile);
    let steps = p["buildDefinition"]["internalParameters"]["buildConfig"]["llbDefinition"]
        .as_array()
        .unwrap();
    // busybox, the RUN, and the terminal step (BuildKit's 3 for FROM + RUN).
    assert_eq!(steps.len(), 3, "{steps:?}");
    assert_eq!(steps[2]["inputs"][0], "step1:0");
    // Each step's stack, as BuildKit lists them: busybox's one layer, then the RUN's two.
    let layers = meta["buildkit_metadata"]["layers"].as_object().unwrap();
    assert_eq!(layers.len(), 2, "{layers:?}");
    assert_eq!(layers["step0:0"].as_array().unwrap().len(), 1, "{layers:?}");
    assert_eq!(
        layers["step0:0"][0].as_array().unwrap().len(),
        1,
        "{layers:?}"
    );
    assert_eq!(
        layers["step1:0"][0].as_array().unwrap().len(),
        2,
        "{layers:?}"
    );
    // umoci unpacks the image: skopeo picks it out of the layout's index (umoci itself
    // refuses a tag with two manifests under it, as it does BuildKit's attested layouts).
    let single = store.path("single");
    ok(Command::new("skopeo")
        .arg("copy")
        .arg(format!("oci:{}:max", layout.display()))
        .arg(format!("oci:{}:max", single.display())));
    let bundle = store.path("bundle");
    ok(Command::new("umoci")
        .args(["unpack", "--rootless", "--image"])
        .arg(format!("{}:max", single.display()))
        .arg(&bundle));
    assert_eq!(files::read(&bundle.join("rootfs/foo")), "ok\n");

    // --attest with version=v0.2: BuildKit's v0.2 shape of the same facts.
    let v02 = store.path("layout-v02");
    build(&["--attest", "type=provenance,mode=max,version=v0.2"], &v02);
    let index = skopeo_raw(&format!("oci:{}", v02.display()));
    let (image, att) = pair(&index, "linux/amd64");
    let (st, raw) = statement(
        &v02,
        att["digest"].as_str().unwrap(),
        image["digest"].as_str().unwrap(),
    );
    assert!(
        !raw.contains("s3cr3t-value-123") && !raw.contains("tok-value-456"),
        "{raw}"
    );
    assert_eq!(st["predicateType"], "https://slsa.dev/provenance/v0.2");
    let p = &st["predicate"];
    assert_eq!(p["buildType"], "https://mobyproject.org/buildkit@v1");
    assert_eq!(p["invocation"]["configSource"]["entryPoint"], "Dockerfile");
    assert_eq!(
        p["invocation"]["parameters"]["args"]["build-arg:FOO"],
        "bar"
    );
    assert_eq!(p["invocation"]["environment"]["platform"], "linux/amd64");
    assert_eq!(
        p["materials"][0]["uri"],
        "pkg:docker/busybox@latest?platform=linux%2Famd64"
    );
    assert_eq!(p["metadata"]["completeness"]["environment"], true);
    assert_eq!(
        p["buildConfig"]["llbDefinition"].as_array().unwrap().len(),
        3
    );
    assert!(p["metadata"]["https://mobyproject.org/buildkit@v1#metadata"]["source"].is_object());
}

#[test]
fn the_store_keeps_provenance_for_inspect_and_push_and_default_builds_have_none() {
    let Some((reg, _env)) = registry_and_env(Config::plain()) else {
        return;
    };
    let store = Store::busybox(pallet!());
    let ctx = files::context(&store.path("ctx"), DOCKERFILE, &[]);
    store
        .pallet()
        .args([
            "build",
            "--progress",
            "plain",
            "-t",
            "kept:1",
            "--provenance",
            "mode=max",
        ])
        .arg(&ctx)
        .succeeds();
    let shown = store.pallet().args(["inspect", "kept:1"]).ok();
    assert!(
        shown.contains("linux/amd64 https://slsa.dev/provenance/v1"),
        "{shown}"
    );
    let json: Value = serde_json::from_str(
        &store
            .pallet()
            .args(["inspect", "--format", "json", "kept:1"])
            .ok(),
    )
    .unwrap();
    assert_eq!(
        json["attestations"][0]["predicate"]["buildDefinition"]["externalParameters"]["request"]
            ["frontend"],
        "dockerfile.v0"
    );
    // `pallet push` of the stored image pushes the attestation with it.
    let target = format!("{}/team/kept:1", reg.host());
    store.pallet().args(["push", "kept:1", &target]).succeeds();
    let index = skopeo_raw(&format!("docker://{target}"));
    let (image, att) = pair(&index, "linux/amd64");
    let layout = store.path("copied");
    copy_all(&target, &layout);
    statement(
        &layout,
        att["digest"].as_str().unwrap(),
        image["digest"].as_str().unwrap(),
    );

    // Without the flag (pallet's default, unlike buildx's docker-container driver) the
    // pushed image is a plain manifest.
    let plain = format!("{}/team/plain:1", reg.host());
    store
        .pallet()
        .args(["build", "--progress", "plain", "--push", "-t", &plain])
        .arg(&ctx)
        .succeeds();
    let m = skopeo_raw(&format!("docker://{plain}"));
    assert_eq!(
        m["mediaType"], "application/vnd.oci.image.manifest.v1+json",
        "{m}"
    );
}

#[test]
fn two_platforms_get_one_attestation_each() {
    if !require(
        "two-platform provenance",
        &[Root, Busybox, Arm64, Tool("runc"), Tool("skopeo")],
    ) {
        return;
    }
    let Some((reg, _env)) = registry_and_env(Config::plain()) else {
        return;
    };
    let shown = pallet!().args(["binfmt", "--install", "linux/arm64"]).ok();
    assert!(shown.contains("qemu-aarch64"), "{shown}");
    let store = Store::busybox_multiplatform(pallet!());
    let dockerfile = "FROM busybox:latest\nARG TARGETARCH\nRUN echo \"ok-$TARGETARCH\" > /foo\n";
    let ctx = files::context(&store.path("ctx"), dockerfile, &[]);
    let target = format!("{}/buildkit/testmultiprovenance:latest", reg.host());
    store
        .pallet()
        .args([
            "build",
            "--progress",
            "plain",
            "--platform",
            "linux/amd64,linux/arm64",
        ])
        .args([
            "--provenance",
            "mode=max",
            "--build-arg",
            "FOO=bar",
            "--push",
            "-t",
            &target,
        ])
        .arg(&ctx)
        .succeeds();
    let index = skopeo_raw(&format!("docker://{target}"));
    assert_eq!(index["manifests"].as_array().unwrap().len(), 4, "{index}");
    let layout = store.path("copied");
    copy_all(&target, &layout);
    for platform in ["linux/amd64", "linux/arm64"] {
        let (image, att) = pair(&index, platform);
        let (st, _) = statement(
            &layout,
            att["digest"].as_str().unwrap(),
            image["digest"].as_str().unwrap(),
        );
        let def = &st["predicate"]["buildDefinition"];
        let deps = def["resolvedDependencies"].as_array().unwrap();
        assert_eq!(deps.len(), 1, "{deps:?}");
        let uri = deps[0]["uri"].as_str().unwrap();
        assert!(uri.starts_with("pkg:docker/busybox@latest"), "{uri}");
        assert!(uri.contains(&platform.replace('/', "%2F")), "{uri}");
        assert_eq!(
            def["externalParameters"]["request"]["args"]["build-arg:FOO"],
            "bar"
        );
    }
    // Each image's file is its platform's.
    for (platform, arch) in [("linux/amd64", "amd64"), ("linux/arm64", "arm64")] {
        let (image, _) = pair(&index, platform);
        let m = blob(&layout, image["digest"].as_str().unwrap());
        let config = blob(&layout, m["config"]["digest"].as_str().unwrap());
        assert_eq!(config["architecture"], arch);
    }
}

#[test]
fn attestation_flags_that_cannot_work_say_why() {
    let Some(store) = busybox_store("attestation flag errors", &[]) else {
        return;
    };
    let ctx = files::context(&store.path("ctx"), DOCKERFILE, &[]);
    let fails = |args: &[&str]| {
        let out = store
            .pallet()
            .args(["build", "--progress", "plain"])
            .args(args)
            .arg(&ctx)
            .fails();
        text(&out.stderr)
    };
    let err = fails(&["--attest", "type=sbom,generator=Not A Ref"]);
    assert!(err.contains("the generator image"), "{err}");
    let err = fails(&["--provenance", "mode=most"]);
    assert!(err.contains("invalid mode \"most\""), "{err}");
    // Docker's media types have no annotations to carry an attestation (BuildKit's error).
    let tar = store.path("img.tar");
    let err = fails(&[
        "--provenance",
        "true",
        "-o",
        &format!("type=docker,dest={}", tar.display()),
    ]);
    assert!(
        err.contains("cannot export attestations with \"oci-mediatypes=false\""),
        "{err}"
    );
    // --sbom=false and --provenance=false are accepted, and the image is plain.
    let layout = store.path("plain");
    store
        .pallet()
        .args([
            "build",
            "--progress",
            "plain",
            "--sbom",
            "false",
            "--provenance",
            "false",
        ])
        .arg("-o")
        .arg(format!("type=oci,tar=false,dest={}", layout.display()))
        .arg(&ctx)
        .succeeds();
    let m = skopeo_raw(&format!("oci:{}", layout.display()));
    assert_eq!(
        m["mediaType"], "application/vnd.oci.image.manifest.v1+json",
        "{m}"
    );
}

#[test]
fn an_oci_layout_base_is_a_pkg_oci_material_and_an_attested_layout_can_be_a_base() {
    let Some(store) = busybox_store("provenance of an OCI layout base", &[Tool("skopeo")]) else {
        return;
    };
    // An attested layout (pallet's own, as BuildKit writes one) ...
    let first = files::context(
        &store.path("first"),
        "FROM scratch\nCOPY <<EOF /foo\nfoo\nEOF\n",
        &[],
    );
    let layout = store.path("layout");
    store
        .pallet()
        .args([
            "build",
            "--progress",
            "plain",
            "-t",
            "foo:1",
            "--provenance",
            "true",
        ])
        .arg("-o")
        .arg(format!("type=oci,tar=false,dest={}", layout.display()))
        .arg(&first)
        .succeeds();
    let index = skopeo_raw(&format!("oci:{}", layout.display()));
    let (image, _) = pair(&index, "linux/amd64");
    let image_digest = image["digest"].as_str().unwrap().to_string();
    // ... is a base by tag: its image, not its attestation.
    let second = files::context(
        &store.path("second"),
        "FROM foo\nCOPY <<EOF /bar\nbar\nEOF\n",
        &[],
    );
    let out = store.path("out");
    store
        .pallet()
        .args([
            "build",
            "--progress",
            "plain",
            "-t",
            "bar:1",
            "--provenance",
            "mode=max",
        ])
        .arg("--build-context")
        .arg(format!("foo=oci-layout://{}:1", layout.display()))
        .arg("-o")
        .arg(format!("type=oci,tar=false,dest={}", out.display()))
        .arg(&second)
        .succeeds();
    let index = skopeo_raw(&format!("oci:{}", out.display()));
    let (image, att) = pair(&index, "linux/amd64");
    let (st, _) = statement(
        &out,
        att["digest"].as_str().unwrap(),
        image["digest"].as_str().unwrap(),
    );
    let deps = st["predicate"]["buildDefinition"]["resolvedDependencies"]
        .as_array()
        .unwrap();
    assert_eq!(deps.len(), 1, "{deps:?}");
    let uri = deps[0]["uri"].as_str().unwrap();
    assert_eq!(uri.split('/').next(), Some("pkg:oci"), "{uri}");
    assert_eq!(
        deps[0]["digest"]["sha256"].as_str(),
        image_digest.strip_prefix("sha256:"),
        "{deps:?}"
    );
    let m = blob(&out, image["digest"].as_str().unwrap());
    assert_eq!(m["layers"].as_array().unwrap().len(), 2, "{m}");
}

/// The provenance predicate a `type=local` output wrote at the top of `dir`.
fn local_provenance(dir: &Path) -> Value {
    let text = files::read(&dir.join("provenance.json"));
    let p: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        p["buildDefinition"]["buildType"],
        "https://github.com/moby/buildkit/blob/master/docs/attestations/slsa-definitions.md",
        "{text}"
    );
    p
}

#[test]
fn local_outputs_get_provenance_json_beside_the_files() {
    let Some(store) = busybox_store("provenance of a local output", &[]) else {
        return;
    };
    let ctx = files::context(
        &store.path("ctx"),
        "FROM busybox:latest AS base\nCOPY <<EOF /out/foo\nok\nEOF\n\nFROM scratch\nCOPY --from=base /out /\n",
        &[],
    );
    let dest = store.path("dest");
    store
        .pallet()
        .args([
            "build",
            "--progress",
            "plain",
            "--provenance",
            "mode=max",
            "-o",
        ])
        .arg(&dest)
        .arg(&ctx)
        .succeeds();
    assert_eq!(files::read(&dest.join("foo")), "ok\n");
    let p = local_provenance(&dest);
    assert_eq!(
        p["runDetails"]["metadata"]["buildkit_metadata"]["source"]["infos"][0]["filename"],
        "Dockerfile"
    );
}

#[test]
fn local_outputs_of_two_platforms_get_provenance_json_each() {
    // BuildKit's testProvenanceExportLocalMultiPlatform (no RUN: no emulation needed).
    if !require(
        "provenance of a two-platform local output",
        &[Root, Busybox, Arm64, Tool("runc")],
    ) {
        return;
    }
    let store = Store::busybox_multiplatform(pallet!());
    let ctx = files::context(
        &store.path("ctx"),
        "FROM busybox:latest AS base\nCOPY <<EOF /out/foo\nok\nEOF\n\nFROM scratch\nCOPY --from=base /out /\n",
        &[],
    );
    let dest = store.path("dest");
    store
        .pallet()
        .args(["build", "--progress", "plain", "--provenance", "mode=max"])
        .args(["--platform", "linux/amd64,linux/arm64", "-o"])
        .arg(&dest)
        .arg(&ctx)
        .succeeds();
    for (dir, platform) in [
        ("linux_amd64", "linux%2Famd64"),
        ("linux_arm64", "linux%2Farm64"),
    ] {
        assert_eq!(files::read(&dest.join(dir).join("foo")), "ok\n");
        let p = local_provenance(&dest.join(dir));
        let uri = p["buildDefinition"]["resolvedDependencies"][0]["uri"]
            .as_str()
            .unwrap();
        assert!(uri.ends_with(platform), "{uri}");
    }
}

#[test]
fn an_image_without_layers_gets_provenance_for_one_platform_and_two() {
    // BuildKit's testNilProvenance: FROM scratch with only config, every exporter.
    let Some(store) = busybox_store("provenance of an empty image", &[Tool("skopeo")]) else {
        return;
    };
    let ctx = files::context(&store.path("ctx"), "FROM scratch\nENV FOO=bar\n", &[]);
    for platforms in [None, Some("linux/amd64,linux/arm64")] {
        let layout = store.path("layout");
        let local = store.path("local");
        let _ = std::fs::remove_dir_all(&layout);
        let _ = std::fs::remove_dir_all(&local);
        let platform_args: Vec<&str> = match platforms {
            Some(p) => vec!["--platform", p],
            None => Vec::new(),
        };
        store
            .pallet()
            .args(["build", "--progress", "plain", "--provenance", "mode=max"])
            .args(&platform_args)
            .arg("-o")
            .arg(format!("type=oci,tar=false,dest={}", layout.display()))
            .arg("-o")
            .arg(format!("type=local,dest={}", local.display()))
            .arg(&ctx)
            .succeeds();
        let index = skopeo_raw(&format!("oci:{}", layout.display()));
        let wanted: &[&str] = match platforms {
            None => &["linux/amd64"],
            Some(_) => &["linux/amd64", "linux/arm64"],
        };
        assert_eq!(
            index["manifests"].as_array().unwrap().len(),
            2 * wanted.len(),
            "{index}"
        );
        for platform in wanted {
            let (image, att) = pair(&index, platform);
            let (st, _) = statement(
                &layout,
                att["digest"].as_str().unwrap(),
                image["digest"].as_str().unwrap(),
            );
            // No base, no layers: nothing to list.
            let def = &st["predicate"]["buildDefinition"];
            assert!(def.get("resolvedDependencies").is_none(), "{def}");
            let dir = match platforms {
                None => local.clone(),
                Some(_) => local.join(platform.replace('/', "_")),
            };
            local_provenance(&dir);
        }
    }
}

#[test]
fn every_dockerfile_line_maps_to_a_step_of_the_build_config() {
    // BuildKit's testCommandSourceMapping: mode=max's source locations cover each line, each
    // on one line, each naming a step of llbDefinition.
    let Some(store) = busybox_store("provenance source mapping", &[Tool("skopeo")]) else {
        return;
    };
    let dockerfile = "FROM busybox\nRUN echo \"hello\" > foo\nWORKDIR /tmp\nCOPY foo foo2\nCOPY --link foo foo3\nADD bar bar";
    let ctx = files::context(
        &store.path("ctx"),
        dockerfile,
        &[("foo", "data"), ("bar", "data2")],
    );
    let layout = store.path("layout");
    store
        .pallet()
        .args([
            "build",
            "--progress",
            "plain",
            "--provenance",
            "mode=max",
            "-o",
        ])
        .arg(format!("type=oci,tar=false,dest={}", layout.display()))
        .arg(&ctx)
        .succeeds();
    let index = skopeo_raw(&format!("oci:{}", layout.display()));
    let (image, att) = pair(&index, "linux/amd64");
    let (st, _) = statement(
        &layout,
        att["digest"].as_str().unwrap(),
        image["digest"].as_str().unwrap(),
    );
    let p = &st["predicate"];
    let steps: Vec<&str> = p["buildDefinition"]["internalParameters"]["buildConfig"]
        ["llbDefinition"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    let mut ids = steps.clone();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), steps.len(), "ids are unique: {steps:?}");
    let locations = p["runDetails"]["metadata"]["buildkit_metadata"]["source"]["locations"]
        .as_object()
        .unwrap();
    let mut covered = vec![false; dockerfile.lines().count()];
    for (id, loc) in locations {
        assert!(
            steps.contains(&id.as_str()),
            "{id} is not a step: {steps:?}"
        );
        let locs = loc["locations"].as_array().unwrap();
        assert_eq!(locs.len(), 1, "{id}: {loc}");
        for r in locs[0]["ranges"].as_array().unwrap() {
            let (start, end) = (
                r["start"]["line"].as_u64().unwrap(),
                r["end"]["line"].as_u64().unwrap(),
            );
            assert_eq!(start, end, "{id} spans lines: {r}");
            covered[start as usize - 1] = true;
        }
    }
    assert!(
        covered.iter().all(|c| *c),
        "lines covered: {covered:?} by {locations:?}"
    );
}

#[test]
fn a_platform_given_twice_builds_with_provenance() {
    // BuildKit's testDuplicatePlatformProvenance (moby/buildkit#3562).
    let Some(store) = busybox_store("provenance with a platform twice", &[]) else {
        return;
    };
    let ctx = files::context(
        &store.path("ctx"),
        "FROM busybox AS base-linux\nFROM scratch AS base-windows\nFROM base-$TARGETOS\n",
        &[],
    );
    let layout = store.path("layout");
    store
        .pallet()
        .args(["build", "--progress", "plain", "--provenance", "mode=max"])
        .args(["--platform", "linux/amd64,linux/amd64", "-o"])
        .arg(format!("type=oci,tar=false,dest={}", layout.display()))
        .arg(&ctx)
        .succeeds();
}

#[test]
fn an_inline_cache_is_read_through_the_attested_index() {
    // `--cache-to type=inline --provenance`: the tag names an index; the inline cache rides in
    // the image's manifest under it, and `--cache-from` finds it there.
    use crate::remote_cache::{build, context, remote_hits, with_base};
    let Some((reg, env)) = registry_and_env(Config::plain()) else {
        return;
    };
    let app = format!("{}/team/app:attested", reg.host());
    let ctx = context(&env, "ctx", "b\n");
    with_base(&env, "a");
    build(
        &env,
        "a",
        &ctx,
        &[
            "-t",
            &app,
            "--push",
            "--cache-to",
            "type=inline",
            "--provenance",
            "true",
        ],
    );
    let index = skopeo_raw(&format!("docker://{app}"));
    let (image, _) = pair(&index, "linux/amd64");
    let m = skopeo_raw(&format!(
        "docker://{}/team/app@{}",
        reg.host(),
        image["digest"].as_str().unwrap()
    ));
    assert!(m["annotations"]["dev.pallet.cache.v1"].is_string(), "{m}");
    with_base(&env, "b");
    let b = build(&env, "b", &ctx, &["-t", &app, "--cache-from", &app]);
    assert_eq!(remote_hits(&b), 3, "{b}");
    assert!(!b.contains("warning:"), "{b}");
}

#[test]
fn the_git_checkout_of_the_context_is_recorded_as_buildx_sends_it() {
    // buildx's `vcs:source` / `vcs:revision` (BuildKit's testProvenanceAttestation passes them
    // by hand): the remote without its credentials, the commit, where the context is.
    let Some(store) = busybox_store("provenance git facts", &[Tool("git")]) else {
        return;
    };
    let repo = store.path("repo");
    let ctx = repo.join("app");
    files::context(&ctx, DOCKERFILE, &[]);
    let git = |args: &[&str]| {
        ok(Command::new("git")
            .arg("-C")
            .arg(&repo)
            .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
            .args(args))
    };
    git(&["init", "-q"]);
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "one"]);
    git(&[
        "remote",
        "add",
        "origin",
        "https://user:pass@example.invalid/repo.git",
    ]);
    let head = git(&["rev-parse", "HEAD"]).trim().to_string();
    let dest = store.path("dest");
    store
        .pallet()
        .args(["build", "--progress", "plain", "--provenance", "true", "-o"])
        .arg(&dest)
        .arg(&ctx)
        .succeeds();
    let p = local_provenance(&dest);
    let vcs = &p["runDetails"]["metadata"]["buildkit_metadata"]["vcs"];
    assert_eq!(vcs["source"], "https://example.invalid/repo.git", "{vcs}");
    assert_eq!(vcs["revision"], head.as_str(), "{vcs}");
    assert_eq!(vcs["localdir:context"], "app", "{vcs}");
    assert_eq!(vcs["localdir:dockerfile"], "app", "{vcs}");
    // BUILDX_GIT_INFO=false turns it off, as in buildx.
    let off = store.path("off");
    store
        .pallet()
        .env("BUILDX_GIT_INFO", "false")
        .args(["build", "--progress", "plain", "--provenance", "true", "-o"])
        .arg(&off)
        .arg(&ctx)
        .succeeds();
    let p = local_provenance(&off);
    assert!(
        p["runDetails"]["metadata"]["buildkit_metadata"]
            .get("vcs")
            .is_none(),
        "{p}"
    );
}

/// A scanner image following BuildKit's SBOM protocol, tagged `name` in `store`: it reads the
/// scanned tree's /foo and a `BUILDKIT_SCAN_MYKEY` parameter into its statement.
fn scanner(store: &Store, name: &str, script: &str) {
    let ctx = files::context(
        &store.path(&format!("scanner-{}", name.replace(':', "-"))),
        "FROM busybox:latest\nCOPY scan.sh /scan.sh\nCMD [\"sh\", \"/scan.sh\"]\n",
        &[("scan.sh", script)],
    );
    store
        .pallet()
        .args(["build", "--progress", "plain", "-t", name])
        .arg(&ctx)
        .succeeds();
}

const SCAN: &str = r#"set -e
foo=$(cat "$BUILDKIT_SCAN_SOURCE/foo")
cat > "$BUILDKIT_SCAN_DESTINATION/spdx.json" <<BUNDLE
{"_type": "https://in-toto.io/Statement/v1", "predicateType": "https://spdx.dev/Document",
 "predicate": {"name": "sbom-scan", "foo": "$foo", "mykey": "$BUILDKIT_SCAN_MYKEY", "tmp": "$(touch /tmp/x && echo writable)"}}
BUNDLE
"#;

#[test]
fn an_sbom_scanner_image_scans_the_result_into_an_attestation() {
    // BuildKit's testSBOMScannerImage: a scanner image made by the test, run by the SBOM
    // protocol over the built image; its statement is an attestation about the image.
    let Some(store) = busybox_store("SBOM scanner", &[Tool("skopeo")]) else {
        return;
    };
    scanner(&store, "scanner:1", SCAN);
    let ctx = files::context(
        &store.path("ctx"),
        "FROM scratch\nCOPY <<EOF /foo\ndata\nEOF\n",
        &[],
    );
    let layout = store.path("layout");
    store
        .pallet()
        .args(["build", "--progress", "plain", "-t", "scanned:1"])
        .args([
            "--attest",
            "type=sbom,generator=scanner:1,MYKEY=v1",
            "--provenance",
            "true",
        ])
        .arg("-o")
        .arg(format!("type=oci,tar=false,dest={}", layout.display()))
        .arg(&ctx)
        .succeeds();
    let index = skopeo_raw(&format!("oci:{}", layout.display()));
    let (image, att) = pair(&index, "linux/amd64");
    let m = blob(&layout, att["digest"].as_str().unwrap());
    let layers = m["layers"].as_array().unwrap();
    // The provenance and the SBOM, each a statement about the image.
    assert_eq!(layers.len(), 2, "{m}");
    let mut types: Vec<&str> = layers
        .iter()
        .map(|l| {
            l["annotations"]["in-toto.io/predicate-type"]
                .as_str()
                .unwrap()
        })
        .collect();
    types.sort();
    assert_eq!(
        types,
        [
            "https://slsa.dev/provenance/v1",
            "https://spdx.dev/Document"
        ]
    );
    let spdx = layers
        .iter()
        .find(|l| l["annotations"]["in-toto.io/predicate-type"] == "https://spdx.dev/Document")
        .unwrap();
    let st = blob(&layout, spdx["digest"].as_str().unwrap());
    assert_eq!(st["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(
        st["subject"][0]["digest"]["sha256"],
        image["digest"]
            .as_str()
            .unwrap()
            .trim_start_matches("sha256:")
    );
    let p = &st["predicate"];
    assert_eq!(p["name"], "sbom-scan", "{st}");
    assert_eq!(p["foo"], "data", "the scanner read the image's tree: {st}");
    assert_eq!(
        p["mykey"], "v1",
        "parameters reach it as BUILDKIT_SCAN_*: {st}"
    );
    assert_eq!(p["tmp"], "writable", "{st}");
    // The scanned image itself is untouched: its one layer has /foo only.
    let manifest = blob(&layout, image["digest"].as_str().unwrap());
    assert_eq!(
        manifest["layers"].as_array().unwrap().len(),
        1,
        "{manifest}"
    );

    // A local output gets both beside its files (the scan is a cache hit now).
    let dest = store.path("local");
    store
        .pallet()
        .args(["build", "--progress", "plain"])
        .args([
            "--sbom",
            "generator=scanner:1,MYKEY=v1",
            "--provenance",
            "true",
            "-o",
        ])
        .arg(&dest)
        .arg(&ctx)
        .succeeds();
    assert_eq!(files::read(&dest.join("foo")), "data\n");
    local_provenance(&dest);
    let sbom: Value = serde_json::from_str(&files::read(&dest.join("sbom.spdx.json"))).unwrap();
    assert_eq!(sbom["predicateType"], "https://spdx.dev/Document", "{sbom}");
    assert_eq!(sbom["predicate"]["foo"], "data", "{sbom}");
}

#[test]
fn a_scanner_that_writes_nothing_fails_the_build_and_says_why() {
    let Some(store) = busybox_store("SBOM scanner errors", &[]) else {
        return;
    };
    scanner(&store, "quiet:1", "true\n");
    let ctx = files::context(&store.path("ctx"), DOCKERFILE, &[]);
    let out = store
        .pallet()
        .args([
            "build",
            "--progress",
            "plain",
            "--sbom",
            "generator=quiet:1",
        ])
        .arg(&ctx)
        .fails();
    let err = text(&out.stderr);
    assert!(
        err.contains("SBOM scan with docker.io/library/quiet:1 failed"),
        "{err}"
    );
    assert!(err.contains("wrote no statement"), "{err}");
}

#[test]
fn each_platform_gets_its_own_sbom() {
    // The scanner runs for the build platform over each platform's tree (no emulation).
    let Some(store) = busybox_store("two-platform SBOM", &[Tool("skopeo")]) else {
        return;
    };
    scanner(&store, "scanner:1", SCAN);
    let ctx = files::context(
        &store.path("ctx"),
        "FROM scratch\nARG TARGETARCH\nCOPY <<EOF /foo\ndata-$TARGETARCH\nEOF\n",
        &[],
    );
    let layout = store.path("layout");
    store
        .pallet()
        .args([
            "build",
            "--progress",
            "plain",
            "--platform",
            "linux/amd64,linux/arm64",
        ])
        .args(["--sbom", "generator=scanner:1"])
        .arg("-o")
        .arg(format!("type=oci,tar=false,dest={}", layout.display()))
        .arg(&ctx)
        .succeeds();
    let index = skopeo_raw(&format!("oci:{}", layout.display()));
    assert_eq!(index["manifests"].as_array().unwrap().len(), 4, "{index}");
    for (platform, arch) in [("linux/amd64", "amd64"), ("linux/arm64", "arm64")] {
        let (image, att) = pair(&index, platform);
        let m = blob(&layout, att["digest"].as_str().unwrap());
        let st = blob(&layout, m["layers"][0]["digest"].as_str().unwrap());
        assert_eq!(st["predicateType"], "https://spdx.dev/Document");
        assert_eq!(st["predicate"]["foo"], format!("data-{arch}"), "{st}");
        assert_eq!(
            st["subject"][0]["digest"]["sha256"],
            image["digest"]
                .as_str()
                .unwrap()
                .trim_start_matches("sha256:")
        );
    }
}

#[test]
fn a_base_shared_by_two_stages_is_listed_once() {
    // BuildKit's testDuplicateLayersProvenance (moby/buildkit's diamond: the base's layer was
    // added to step0's list more than once).
    let Some(store) = busybox_store("provenance layers of a diamond", &[Tool("skopeo")]) else {
        return;
    };
    let ctx = files::context(
        &store.path("ctx"),
        "FROM busybox:latest AS base\n\nFROM base AS a\nRUN date +%s > /a.txt\n\n\
         FROM base AS b\nCOPY --from=a /a.txt /\nRUN date +%s > /b.txt\n",
        &[],
    );
    let layout = store.path("layout");
    store
        .pallet()
        .args([
            "build",
            "--progress",
            "plain",
            "--provenance",
            "mode=max",
            "-o",
        ])
        .arg(format!("type=oci,tar=false,dest={}", layout.display()))
        .arg(&ctx)
        .succeeds();
    let index = skopeo_raw(&format!("oci:{}", layout.display()));
    let (image, att) = pair(&index, "linux/amd64");
    let (st, _) = statement(
        &layout,
        att["digest"].as_str().unwrap(),
        image["digest"].as_str().unwrap(),
    );
    let p = &st["predicate"];
    let steps = p["buildDefinition"]["internalParameters"]["buildConfig"]["llbDefinition"]
        .as_array()
        .unwrap();
    assert!(steps[0]["op"]["source"]["image"].is_object(), "{steps:?}");
    let layers = &p["runDetails"]["metadata"]["buildkit_metadata"]["layers"];
    assert_eq!(layers["step0:0"].as_array().unwrap().len(), 1, "{layers}");
    assert_eq!(
        layers["step0:0"][0].as_array().unwrap().len(),
        1,
        "{layers}"
    );
    // The result's stack ends with the image's own layers.
    let manifest = blob(&layout, image["digest"].as_str().unwrap());
    let image_layers = manifest["layers"].as_array().unwrap().len();
    let last = format!("step{}:0", steps.len() - 2);
    assert_eq!(
        layers[&last][0].as_array().unwrap().len(),
        image_layers,
        "{layers}"
    );
}
