//! Builds meet registries: `pallet build --push`, `pallet pull`, `FROM` an image only a registry
//! has, `--pull`, login with htpasswd and token auth, TLS with the registry's own CA, and interop
//! with skopeo (it reads what pallet pushes; pallet pulls and builds on what it pushes). Every
//! registry is Debian's real `docker-registry`, started by the test on a free port.
//!
//! Needs root, runc, skopeo, busybox-static, docker-registry, htpasswd and openssl
//! (scripts/ensure-tools.sh installs them); fails under CI=true when they are missing.

use std::path::PathBuf;
use std::process::Command;
use testkit::docker_registry::{Config, Registry};
use testkit::files::list_dir_if_exists as names_in;
use testkit::run::{ok, printed};
use testkit::{busybox, pallet, require, text, Need::*, Pallet};

/// A registry of `config` and a fresh test environment; `None` where the test cannot run here
/// (`require` and `Registry::start` say why, and fail instead under CI=true).
pub(crate) fn registry_and_env(config: Config) -> Option<(Registry, Env)> {
    if !require(
        "registry end-to-end test",
        &[Root, Busybox, Tool("runc"), Tool("skopeo")],
    ) {
        return None;
    }
    let reg = Registry::start(config)?;
    Some((reg, Env::new()))
}

/// The manifest a registry serves for `reference`, as skopeo (not pallet) reads it.
fn raw_manifest(reference: &str) -> serde_json::Value {
    let raw = ok(Command::new("skopeo").args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{reference}"),
    ]));
    serde_json::from_str(raw.trim()).unwrap_or_else(|e| panic!("{e}: {raw}"))
}

/// Stores (by name) in one temp dir, and a private DOCKER_CONFIG for every pallet run (no
/// credentials leak in or out of the test).
pub(crate) struct Env {
    pub(crate) tmp: tempfile::TempDir,
    pub(crate) docker_config: PathBuf,
}

impl Env {
    fn new() -> Env {
        let tmp = tempfile::tempdir().unwrap();
        let docker_config = tmp.path().join("docker-config");
        std::fs::create_dir_all(&docker_config).unwrap();
        // Registry settings of our own: none, whatever this machine has in /etc/pallet.
        std::fs::write(docker_config.join("pallet-config.json"), "{}").unwrap();
        Env { tmp, docker_config }
    }

    pub(crate) fn root(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// pallet on the store `root`, with this environment's docker and pallet configs.
    pub(crate) fn pallet(&self, root: &str) -> Pallet {
        pallet!()
            .root(self.root(root))
            .env("DOCKER_CONFIG", &self.docker_config)
            .env(
                "PALLET_CONFIG",
                self.docker_config.join("pallet-config.json"),
            )
    }

    pub(crate) fn run(&self, root: &str, args: &[&str]) -> std::process::Output {
        self.pallet(root).args(args).output()
    }

    /// A store `root` holding busybox:latest (imported from busybox-static).
    pub(crate) fn with_busybox(&self, root: &str) {
        testkit::store::import_busybox(&self.pallet(root), &busybox::Rootfs::new());
    }

    /// A context dir `name` with this Dockerfile (and a file `f`).
    pub(crate) fn context(&self, name: &str, dockerfile: &str) -> String {
        let dir = self.tmp.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("Dockerfile"), dockerfile).unwrap();
        std::fs::write(dir.join("f"), "from the context\n").unwrap();
        dir.to_str().unwrap().to_string()
    }

    /// Builds `dockerfile` in `root` with `-t tag --push` plus `extra` flags.
    pub(crate) fn build_push(
        &self,
        root: &str,
        dockerfile: &str,
        tag: &str,
        extra: &[&str],
    ) -> String {
        let ctx = self.context(&format!("ctx-{}", tag.replace(['/', ':'], "-")), dockerfile);
        let mut args = vec!["build", "--progress", "plain", "-t", tag, "--push"];
        args.extend_from_slice(extra);
        args.push(&ctx);
        printed(&self.pallet(root).args(&args).succeeds())
    }

    /// Builds `dockerfile` in `root` into a local directory and returns the file `path` in it.
    pub(crate) fn build_file(
        &self,
        root: &str,
        dockerfile: &str,
        extra: &[&str],
        path: &str,
    ) -> String {
        let n = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let ctx = self.context(&format!("ctx-local-{n}"), dockerfile);
        let dest = self.tmp.path().join(format!("out-{n}"));
        let output = format!("type=local,dest={}", dest.display());
        let mut args = vec!["build", "--progress", "plain", "-o", &output];
        args.extend_from_slice(extra);
        args.push(&ctx);
        self.pallet(root).args(&args).succeeds();
        std::fs::read_to_string(dest.join(path)).unwrap()
    }
}

#[test]
fn pushed_image_pulls_back_builds_on_and_mounts_its_base_layers() {
    let Some((reg, env)) = registry_and_env(Config::plain()) else {
        return;
    };
    let host = reg.host();
    env.with_busybox("a");
    let app = format!("{host}/team/app:1");
    let out = env.build_push(
        "a",
        "FROM busybox\nRUN echo hello > /hello\nCOPY f /f\n",
        &app,
        &[],
    );
    assert!(out.contains(&format!("pushed {app}@sha256:")), "{out}");

    // skopeo, which no one here wrote, reads it.
    let inspect = ok(Command::new("skopeo").args([
        "inspect",
        "--tls-verify=false",
        &format!("docker://{app}"),
    ]));
    let json: serde_json::Value = serde_json::from_str(inspect.trim()).unwrap();
    assert_eq!(json["Layers"].as_array().unwrap().len(), 3, "{inspect}");
    let layout = env.tmp.path().join("skopeo-layout");
    ok(Command::new("skopeo").args([
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{app}"),
        &format!("oci:{}:app", layout.display()),
    ]));

    // A fresh store pulls it, by tag and by digest.
    let pulled = printed(
        &env.pallet("b")
            .args(["pull", "--progress", "plain", &app])
            .succeeds(),
    );
    let digest = json["Digest"].as_str().unwrap();
    assert!(pulled.contains(digest), "pull names the digest: {pulled}");
    let by_digest = format!("{host}/team/app@{digest}");
    env.pallet("b2").args(["pull", &by_digest]).succeeds();

    // A build FROM it on a third store pulls it itself, and a push to another repository of
    // the same registry mounts the base layers instead of uploading them.
    let app2 = format!("{host}/team/app2:1");
    let out = env.build_push(
        "c",
        &format!("FROM {app}\nRUN cat /hello /f > /both\n"),
        &app2,
        &[],
    );
    assert!(out.contains("[internal] pull"), "{out}");
    assert_eq!(
        out.matches(" mounted").count(),
        3,
        "three base layers mounted: {out}"
    );
    let both = env.build_file("c", &format!("FROM {app2}\n"), &[], "both");
    assert_eq!(both, "hello\nfrom the context\n");
    // COPY --from an image and a docker-image:// build context pull too (on a fresh store).
    env.with_busybox("d");
    let context = format!("base=docker-image://{app2}");
    let copied = env.build_file(
        "d",
        &format!("FROM base\nCOPY --from={app} /hello /copied\nRUN cat /both /copied > /all\n"),
        &["--build-context", &context],
        "all",
    );
    assert_eq!(copied, "hello\nfrom the context\nhello\n");

    // A pulled image pushed elsewhere keeps its manifest digest.
    let copy = format!("{host}/mirror/app:1");
    let pushed = printed(&env.pallet("b").args(["push", &app, &copy]).succeeds());
    assert!(
        pushed.contains(digest),
        "same digest after a re-push: {pushed}"
    );
}

/// A pulled layer is stored once compressed (the registry's blob) and unpacked, never as an
/// uncompressed tar; everything that needs its tar decompresses that blob, checked against the
/// diff id.
#[test]
fn a_pulled_layer_is_kept_compressed_and_serves_every_use() {
    let Some((reg, env)) = registry_and_env(Config::plain()) else {
        return;
    };
    env.with_busybox("a");
    let app = format!("{}/team/kept:1", reg.host());
    env.build_push("a", "FROM busybox\nRUN echo hello > /hello\n", &app, &[]);
    env.pallet("b").args(["pull", &app]).succeeds();
    let inspect = printed(
        &env.pallet("b")
            .args(["inspect", "--format", "json", &app])
            .succeeds(),
    );
    let json: serde_json::Value =
        serde_json::from_str(&inspect[..=inspect.rfind('}').unwrap()]).unwrap();
    let diff_ids: Vec<String> = json["config"]["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_string())
        .collect();
    assert_eq!(diff_ids.len(), 2, "{inspect}");
    let root = env.root("b");
    for d in &diff_ids {
        let hex = &d[7..];
        assert!(
            !root.join("blobs/sha256").join(hex).exists(),
            "no diff blob for {d}"
        );
        assert!(root.join("snapshots").join(hex).is_dir(), "snapshot of {d}");
    }
    // Sizes (of the uncompressed tars) come from the layer forms.
    for layer in json["layers"].as_array().unwrap() {
        assert!(
            layer["size"].as_u64().is_some_and(|n| n >= 1024),
            "{inspect}"
        );
    }

    // Snapshots gone (as after a crash): unpacked again from the compressed blobs.
    for d in &diff_ids {
        std::fs::remove_dir_all(root.join("snapshots").join(&d[7..])).unwrap();
    }
    let got = env.build_file(
        "b",
        &format!("FROM {app}\nRUN cat /hello > /copy\n"),
        &[],
        "copy",
    );
    assert_eq!(got, "hello\n");
    // An uncompressed export writes the diff blobs it hands out.
    let layout = env.tmp.path().join("plain-layout");
    let output = format!(
        "type=oci,dest={},tar=false,compression=uncompressed",
        layout.display()
    );
    let ctx = env.context("ctx-plain", &format!("FROM {app}\n"));
    env.pallet("b")
        .args(["build", "-o", &output, &ctx])
        .succeeds();
    for d in &diff_ids {
        assert!(
            layout.join("blobs/sha256").join(&d[7..]).is_file(),
            "{d} exported"
        );
    }
    // The index names the compressed blob of each pulled layer until prune drops the image.
    let forms = || {
        cache::Root::open(&root)
            .unwrap()
            .index
            .list_layer_forms()
            .unwrap()
    };
    assert_eq!(forms().len(), 2);

    // A compressed blob that no longer decompresses to its diff id is refused, not unpacked.
    let store = env.root("c");
    env.pallet("c").args(["pull", &app]).succeeds();
    let top = diff_ids.last().unwrap();
    let manifest = raw_manifest(&app);
    let top_blob = manifest["layers"][1]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let mut other = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut other, &[0u8; 1024]).unwrap();
    std::fs::write(
        store.join("blobs/sha256").join(&top_blob[7..]),
        other.finish().unwrap(),
    )
    .unwrap();
    std::fs::remove_dir_all(store.join("snapshots").join(&top[7..])).unwrap();
    let ctx = env.context("ctx-bad", &format!("FROM {app}\nRUN true\n"));
    let out = env.run("c", &["build", "--progress", "plain", &ctx]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains(top.as_str()) && err.contains("pull it again"),
        "{err}"
    );
    assert!(!store.join("snapshots").join(&top[7..]).exists());
    env.pallet("b").args(["prune", "--all"]).succeeds();
    assert_eq!(forms(), Vec::new(), "forms go with their layers");
}

#[test]
fn pull_flag_rechecks_a_moved_tag() {
    let Some((reg, env)) = registry_and_env(Config::plain()) else {
        return;
    };
    env.with_busybox("a");
    let base = format!("{}/base:latest", reg.host());
    env.build_push("a", "FROM busybox\nRUN echo 1 > /v\n", &base, &[]);
    let consumer = format!("FROM {base}\nRUN cp /v /seen\n");
    assert_eq!(env.build_file("b", &consumer, &[], "seen"), "1\n");
    env.build_push("a", "FROM busybox\nRUN echo 2 > /v\n", &base, &[]);
    // The local tag stands until --pull, as with docker build.
    assert_eq!(env.build_file("b", &consumer, &[], "seen"), "1\n");
    assert_eq!(env.build_file("b", &consumer, &["--pull"], "seen"), "2\n");
}

#[test]
fn skopeo_pushed_image_is_pulled_and_built_on() {
    let Some((reg, env)) = registry_and_env(Config::plain()) else {
        return;
    };
    env.with_busybox("a");
    let archive = env.tmp.path().join("busybox-docker.tar");
    env.pallet("a")
        .args(["save", "busybox", "-o", archive.to_str().unwrap()])
        .succeeds();
    let target = format!("{}/from-skopeo/busybox:1", reg.host());
    ok(Command::new("skopeo").args([
        "copy",
        "--dest-tls-verify=false",
        &format!("docker-archive:{}", archive.display()),
        &format!("docker://{target}"),
    ]));
    let made = env.build_file(
        "b",
        &format!("FROM {target}\nRUN busybox echo built on skopeo > /made\n"),
        &[],
        "made",
    );
    assert_eq!(made, "built on skopeo\n");
}

#[test]
fn htpasswd_registry_needs_login_and_never_prints_the_password() {
    let password = "s3cret-Pa55word";
    let Some((reg, env)) = registry_and_env(Config::htpasswd("ci", password)) else {
        return;
    };
    env.with_busybox("a");
    let app = format!("{}/private/app:1", reg.host());
    let ctx = env.context("ctx-auth", "FROM busybox\nRUN echo private > /p\n");
    let denied = env.run("a", &["build", "-t", &app, "--push", &ctx]);
    assert!(!denied.status.success());
    let err = text(&denied.stderr);
    assert!(
        err.contains("pallet login"),
        "the error says what to do: {err}"
    );

    let wrong = env
        .pallet("a")
        .args(["login", "-u", "ci", "--password-stdin", &reg.host()])
        .stdin("not-the-password\n")
        .output();
    assert!(!wrong.status.success());
    assert!(!text(&wrong.stderr).contains("not-the-password"));

    let login = env
        .pallet("a")
        .args(["login", "-u", "ci", "--password-stdin", &reg.host()])
        .stdin(format!("{password}\n"))
        .succeeds();
    let said = printed(&login);
    assert!(!said.contains(password));
    let config = std::fs::read_to_string(env.docker_config.join("config.json")).unwrap();
    assert!(config.contains(&reg.host()), "{config}");

    let out = env.build_push("a", "FROM busybox\nRUN echo private > /p\n", &app, &[]);
    assert!(!out.contains(password));
    assert_eq!(
        env.build_file("b", &format!("FROM {app}\n"), &[], "p"),
        "private\n"
    );

    env.pallet("a").args(["logout", &reg.host()]).succeeds();
    let config = std::fs::read_to_string(env.docker_config.join("config.json")).unwrap();
    assert!(!config.contains(&reg.host()), "{config}");
    let after = env.run("c", &["pull", &app]);
    assert!(!after.status.success(), "pull after logout must fail");
}

#[test]
fn token_auth_registry_push_and_pull() {
    let Some((reg, env)) = registry_and_env(Config::token("robot", "t0ken-pass")) else {
        return;
    };
    env.with_busybox("a");
    env.pallet("a")
        .args(["login", "-u", "robot", "--password-stdin", &reg.host()])
        .stdin("t0ken-pass")
        .succeeds();
    let app = format!("{}/tok/app:1", reg.host());
    env.build_push("a", "FROM busybox\nRUN echo tok > /t\n", &app, &[]);
    assert!(reg.token_requests() > 0);
    assert_eq!(
        env.build_file("b", &format!("FROM {app}\n"), &[], "t"),
        "tok\n"
    );
}

#[test]
fn tls_registry_is_trusted_through_its_ca_only() {
    let Some((reg, env)) = registry_and_env(Config::tls()) else {
        return;
    };
    env.with_busybox("a");
    // Named by DNS name, so the localhost plain-HTTP allowance does not apply to TLS errors.
    let host = format!("localhost:{}", reg.port());
    let app = format!("{host}/secure/app:1");
    let ctx = env.context("ctx-tls", "FROM busybox\nRUN echo tls > /s\n");
    let untrusted = env.run("a", &["build", "-t", &app, "--push", &ctx]);
    assert!(!untrusted.status.success(), "an unknown CA must be refused");
    let err = text(&untrusted.stderr);
    assert!(
        err.contains("certs.d") || err.contains("--registry-ca"),
        "{err}"
    );

    let ca = format!("{host}={}", reg.ca_path().unwrap().display());
    env.build_push(
        "a",
        "FROM busybox\nRUN echo tls > /s\n",
        &app,
        &["--registry-ca", &ca],
    );
    assert_eq!(
        env.build_file("b", &format!("FROM {app}\n"), &["--registry-ca", &ca], "s"),
        "tls\n"
    );
}

#[test]
fn zstd_layers_push_and_pull_back() {
    let Some((reg, env)) = registry_and_env(Config::plain()) else {
        return;
    };
    env.with_busybox("a");
    let app = format!("{}/zstd/app:1", reg.host());
    let out = env.build_push(
        "a",
        "FROM busybox\nRUN echo squeezed > /z\n",
        &app,
        &["--compression", "zstd,level=3"],
    );
    // Layer compression shows in the progress output like the transfers.
    assert!(out.contains("compressing sha256:"), "{out}");
    let manifest = raw_manifest(&app);
    let raw = manifest.to_string();
    for layer in manifest["layers"].as_array().unwrap() {
        assert_eq!(
            layer["mediaType"], "application/vnd.oci.image.layer.v1.tar+zstd",
            "{raw}"
        );
    }
    // A fresh store pulls the zstd layers (decompressed while they download) and builds on them.
    assert_eq!(
        env.build_file("b", &format!("FROM {app}\nRUN cp /z /z2\n"), &[], "z2"),
        "squeezed\n"
    );
}

/// A registry image whose config names the wrong diff id: the pull fails saying so and keeps
/// nothing of the layer (the snapshot unpacked while downloading is not published).
#[test]
fn a_layer_that_does_not_match_its_diff_id_is_refused_and_kept_nowhere() {
    let Some((reg, env)) = registry_and_env(Config::plain()) else {
        return;
    };
    use sha2::Digest;
    let sha = |b: &[u8]| format!("sha256:{}", hex::encode(sha2::Sha256::digest(b)));
    // The layer: one file, as a gzip tar.
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o644);
    h.set_size(6);
    tar.append_data(&mut h, "hello", &b"hello\n"[..]).unwrap();
    let tar = tar.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &tar).unwrap();
    let layer = gz.finish().unwrap();
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [sha(b"not this layer")]},
        "config": {}
    })
    .to_string();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": sha(config.as_bytes()), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": sha(&layer), "size": layer.len()}]
    })
    .to_string();
    let layout = env.tmp.path().join("bad-layout");
    let blobs = layout.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    for data in [layer.as_slice(), config.as_bytes(), manifest.as_bytes()] {
        std::fs::write(blobs.join(&sha(data)[7..]), data).unwrap();
    }
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "digest": sha(manifest.as_bytes()), "size": manifest.len(),
                       "annotations": {"org.opencontainers.image.ref.name": "1"}}]
    });
    std::fs::write(layout.join("index.json"), index.to_string()).unwrap();
    let target = format!("{}/bad/diffid:1", reg.host());
    ok(Command::new("skopeo").args([
        "copy",
        "--dest-tls-verify=false",
        &format!("oci:{}:1", layout.display()),
        &format!("docker://{target}"),
    ]));

    let out = env.run("p", &["pull", &target]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("does not match its diff id"), "{err}");
    let root = env.root("p");
    let left = |dir: &str| names_in(&root.join(dir));
    assert_eq!(left("snapshots"), Vec::<String>::new());
    assert_eq!(left("tmp"), Vec::<String>::new());
    assert!(!text(&env.run("p", &["images"]).stdout).contains("diffid"));
}

/// A pull checks each layer's digest with the blob writer's own sha256 (the compressed stream
/// is hashed once, not twice). A registry that serves other bytes of the same size under a
/// layer's digest is still refused, by that check, and nothing of the layer is kept.
#[test]
fn a_layer_blob_that_does_not_match_its_digest_is_refused_and_kept_nowhere() {
    let Some((reg, env)) = registry_and_env(Config::plain()) else {
        return;
    };
    env.with_busybox("a");
    let app = format!("{}/team/tampered:1", reg.host());
    env.build_push("a", "FROM busybox\nRUN echo hello > /hello\n", &app, &[]);
    let manifest = raw_manifest(&app);
    let layers = manifest["layers"].as_array().unwrap();
    // The registry's stored copy of the top layer, reversed byte by byte (same size).
    let digest = layers.last().unwrap()["digest"].as_str().unwrap();
    let hex = &digest["sha256:".len()..];
    let data = reg
        .dir()
        .join("data/docker/registry/v2/blobs/sha256")
        .join(&hex[..2])
        .join(hex)
        .join("data");
    let mut bytes = std::fs::read(&data).unwrap();
    bytes.reverse();
    std::fs::write(&data, &bytes).unwrap();

    let out = env.run("p", &["pull", &app]);
    assert!(!out.status.success(), "a tampered layer pulled");
    let err = text(&out.stderr);
    assert!(
        err.contains(digest) && err.contains("digest"),
        "the error names the layer's digest: {err}"
    );
    let root = env.root("p");
    assert!(
        !root.join("blobs/sha256").join(hex).exists(),
        "no blob under the digest it failed"
    );
    let left = |dir: &str| names_in(&root.join(dir));
    assert_eq!(left("tmp"), Vec::<String>::new());
    assert!(!text(&env.run("p", &["images"]).stdout).contains("tampered"));
}

/// What a pipeline reads after `pallet build`, as buildx writes it: `--iidfile` holds the
/// config digest, `--metadata-file` the pushed manifest's digest (the one skopeo sees), its
/// descriptor and the image names, and `-q` prints the image id alone on stdout.
#[test]
fn iidfile_metadata_file_and_quiet_report_what_was_built_and_pushed() {
    let Some((reg, env)) = registry_and_env(Config::plain()) else {
        return;
    };
    env.with_busybox("a");
    let app = format!("{}/team/reported:1", reg.host());
    let iid = env.tmp.path().join("iid");
    let meta = env.tmp.path().join("out/metadata.json");
    std::fs::create_dir_all(meta.parent().unwrap()).unwrap();
    env.build_push(
        "a",
        "FROM busybox\nRUN echo reported > /r\n",
        &app,
        &[
            "--iidfile",
            iid.to_str().unwrap(),
            "--metadata-file",
            meta.to_str().unwrap(),
        ],
    );
    let inspect = ok(Command::new("skopeo").args([
        "inspect",
        "--tls-verify=false",
        &format!("docker://{app}"),
    ]));
    let remote: serde_json::Value = serde_json::from_str(inspect.trim()).unwrap();
    let raw = raw_manifest(&app);
    let metadata: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&meta).unwrap()).unwrap();
    assert_eq!(
        metadata["containerimage.digest"], remote["Digest"],
        "{metadata}"
    );
    assert_eq!(
        metadata["containerimage.config.digest"], raw["config"]["digest"],
        "{metadata}"
    );
    assert_eq!(
        metadata["containerimage.descriptor"]["digest"],
        remote["Digest"]
    );
    assert_eq!(
        metadata["containerimage.descriptor"]["mediaType"],
        raw["mediaType"]
    );
    let served = ok(Command::new("skopeo").args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{app}"),
    ]));
    assert_eq!(
        metadata["containerimage.descriptor"]["size"].as_u64(),
        Some(served.trim_end().len() as u64)
    );
    assert_eq!(metadata["image.name"], app.as_str());
    let id = std::fs::read_to_string(&iid).unwrap();
    assert_eq!(id, raw["config"]["digest"].as_str().unwrap(), "no newline");

    // -q: the id alone on stdout, no progress on stderr (a cached rebuild gives the same id).
    let ctx = env.context("ctx-quiet", "FROM busybox\nRUN echo reported > /r\n");
    let out = env.run("a", &["build", "-q", &ctx]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), format!("{id}\n"));
    assert!(
        !text(&out.stderr).contains("RUN"),
        "no progress: {}",
        text(&out.stderr)
    );
    // BUILDKIT_PROGRESS picks the mode when --progress is not given.
    let out = env
        .pallet("a")
        .env("BUILDKIT_PROGRESS", "plain")
        .args(["build", &ctx])
        .output();
    assert!(text(&out.stderr).contains("#1"), "{}", text(&out.stderr));
    let out = env
        .pallet("a")
        .env("BUILDKIT_PROGRESS", "none")
        .args(["build", &ctx])
        .output();
    assert!(out.status.success());
    assert_eq!(text(&out.stderr), "", "progress none prints nothing");
    // A usage error exits 125, as docker's does.
    let out = env.run("a", &["build", "--no-such-flag", &ctx]);
    assert_eq!(out.status.code(), Some(125), "{}", text(&out.stderr));
}

/// `--annotation` as docker/metadata-action passes it: on the pushed manifest (skopeo reads
/// it), on the OCI layout's manifest and its index.json descriptor (`manifest-descriptor:`);
/// what cannot be honoured (index annotations without an index, Docker media types, no output
/// that writes a manifest) is refused before the build.
#[test]
fn annotations_reach_pushed_and_exported_manifests() {
    let Some((reg, env)) = registry_and_env(Config::plain()) else {
        return;
    };
    env.with_busybox("a");
    let app = format!("{}/team/annotated:1", reg.host());
    let layout = env.tmp.path().join("layout");
    let oci = format!("type=oci,tar=false,dest={}", layout.display());
    env.build_push(
        "a",
        "FROM busybox\nRUN echo annotated > /a\n",
        &app,
        &[
            "--annotation",
            "org.opencontainers.image.source=https://example.com/app",
            "--annotation",
            "manifest,manifest-descriptor:org.example.both=yes",
            "-o",
            &oci,
        ],
    );
    let pushed = raw_manifest(&app);
    assert_eq!(
        pushed["annotations"]["org.opencontainers.image.source"], "https://example.com/app",
        "{pushed}"
    );
    assert_eq!(pushed["annotations"]["org.example.both"], "yes");
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let descriptor = &index["manifests"][0];
    assert_eq!(
        descriptor["annotations"]["org.example.both"], "yes",
        "{index}"
    );
    let digest = descriptor["digest"].as_str().unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(layout.join("blobs/sha256").join(&digest["sha256:".len()..])).unwrap(),
    )
    .unwrap();
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.source"],
        "https://example.com/app"
    );

    let ctx = env.context("ctx-refused", "FROM busybox\n");
    for (args, wanted) in [
        (
            vec!["--annotation", "index:a=1", "--push", "-t", &app],
            "index annotations not supported for single platform export",
        ),
        (
            vec![
                "--annotation",
                "a=1",
                "--push",
                "--push-format",
                "docker",
                "-t",
                &app,
            ],
            "cannot export annotations with \"oci-mediatypes=false\"",
        ),
        (
            vec!["--annotation", "a=1"],
            "--annotation needs an output that writes a manifest out",
        ),
    ] {
        let mut all = vec!["build"];
        all.extend(args);
        all.push(&ctx);
        let out = env.run("a", &all);
        assert!(!out.status.success());
        assert!(text(&out.stderr).contains(wanted), "{}", text(&out.stderr));
    }
}
