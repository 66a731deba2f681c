//! Images crafted with hostile layers: pushed to a real docker-registry and used by FROM and
//! COPY --from, or written as an OCI layout and used as a named build context.

use super::case;
use super::kit::*;
use std::io::Read;
use std::path::Path;

// ---------------------------------------------------------------------------------------------
// Crafted images: in a real registry, behind a hostile front, or in an OCI layout
// ---------------------------------------------------------------------------------------------

pub use registry::manifest::{OCI_INDEX, OCI_MANIFEST};
use testkit::docker_registry::{Config, Registry};

pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// An image made of blobs a test crafted: a config and layers (media type, bytes).
pub struct Crafted {
    pub config: Vec<u8>,
    pub layers: Vec<(String, Vec<u8>)>,
}

/// The host's architecture as OCI names it.
pub fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// A config for layers with these diff ids (and a `Cmd`).
pub fn config_json(diff_ids: &[String]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "architecture": arch(), "os": "linux",
        "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .unwrap()
}

impl Crafted {
    /// gzip layers of these tars, and a config whose diff ids are right.
    pub fn of_tars(tars: &[Vec<u8>]) -> Crafted {
        let diff_ids: Vec<String> = tars.iter().map(|t| sha256(t)).collect();
        Crafted {
            config: config_json(&diff_ids),
            layers: tars
                .iter()
                .map(|t| (OCI_LAYER_GZIP.to_string(), gzip(t)))
                .collect(),
        }
    }

    pub fn descriptor(media_type: &str, data: &[u8]) -> serde_json::Value {
        serde_json::json!({"mediaType": media_type, "digest": sha256(data), "size": data.len()})
    }

    /// The OCI manifest of this image.
    pub fn manifest(&self) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": Crafted::descriptor(OCI_CONFIG, &self.config),
            "layers": self.layers.iter().map(|(m, l)| Crafted::descriptor(m, l)).collect::<Vec<_>>(),
        }))
        .unwrap()
    }

    /// (descriptor, bytes) of the config and the layers.
    pub fn blobs(&self) -> Vec<(registry::Descriptor, Vec<u8>)> {
        let d = |m: &str, b: &[u8]| testkit::registry_client::images::descriptor(m, b);
        std::iter::once((d(OCI_CONFIG, &self.config), self.config.clone()))
            .chain(self.layers.iter().map(|(m, l)| (d(m, l), l.clone())))
            .collect()
    }

    /// Pushes the blobs to `repo` of `reg`, and the manifest as `repo:tag` unless `tag` is
    /// None (a front serves the manifest then).
    pub fn push(&self, reg: &Registry, dir: &Path, repo: &str, tag: Option<&str>) {
        let client = testkit::registry_client::client_for(reg, dir);
        let target =
            testkit::registry_client::reference(reg, &format!("{repo}:{}", tag.unwrap_or("blobs")));
        let blobs: Vec<registry::PushBlob> = self
            .blobs()
            .into_iter()
            .map(|(descriptor, data)| registry::PushBlob {
                descriptor,
                open: Box::new(move || {
                    Ok(Box::new(std::io::Cursor::new(data.clone())) as Box<dyn Read + Send>)
                }),
                mount_from: Vec::new(),
            })
            .collect();
        match tag {
            Some(_) => {
                let request = registry::PushRequest {
                    target,
                    manifest_media_type: OCI_MANIFEST.into(),
                    manifest_bytes: self.manifest(),
                    blobs,
                };
                registry::push_image(&client, &request, &|_| {}).unwrap();
            }
            None => {
                for b in &blobs {
                    registry::push::push_blob(&client, &target, b, &|_| {}).unwrap();
                }
            }
        }
    }

    /// Writes the image as an OCI layout at `dir` (tag `1`).
    pub fn write_layout(&self, dir: &Path) {
        let blobs = dir.join("blobs/sha256");
        std::fs::create_dir_all(&blobs).unwrap();
        let manifest = self.manifest();
        for data in self.blobs().iter().map(|(_, b)| b).chain([&manifest]) {
            std::fs::write(blobs.join(&sha256(data)[7..]), data).unwrap();
        }
        self.write_index(dir, &manifest);
    }

    /// index.json of a layout whose one image has this manifest (blob written too).
    pub fn write_index(&self, dir: &Path, manifest: &[u8]) {
        std::fs::write(
            dir.join("blobs/sha256").join(&sha256(manifest)[7..]),
            manifest,
        )
        .unwrap();
        std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        let index = serde_json::json!({"schemaVersion": 2, "manifests": [{
            "mediaType": OCI_MANIFEST, "digest": sha256(manifest), "size": manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": "1"}}]});
        std::fs::write(dir.join("index.json"), index.to_string()).unwrap();
    }
}

/// A plain-HTTP docker-registry, or None where the gate says skip.
pub fn start_registry() -> Option<Registry> {
    Registry::start(Config::plain())
}

/// Images whose layers carry hostile entries, pushed to a real registry and used by `FROM` and
/// `COPY --from` (kaniko's cg326: COPY --from a malicious image with ../../../../tini).
#[test]
pub fn layer_tars_through_a_registry_image() {
    if !can_run("hostile registry images") {
        return;
    }
    let Some(reg) = start_registry() else {
        return;
    };
    let arena = Arena::busybox();
    let s = arena.sentinel();
    let out = arena.outside().to_string_lossy().into_owned();
    let host = reg.host();
    let cases: Vec<(&str, Vec<Vec<E>>, &str, Want)> = vec![
        (
            "from-registry-dotdot",
            vec![vec![
                file("ok", "ok"),
                file(format!("../../../../{s}"), "pwned"),
            ]],
            "FROM {img}\nRUN true\n",
            fails(&["`..` component"]),
        ),
        (
            "copy-from-registry-dotdot",
            vec![vec![
                file("../../../../tini", "#!/bin/sh\necho pwned\n"),
                file(format!("../../../../tmp/{s}"), "x"),
            ]],
            "FROM busybox\nCOPY --from={img} /tini /tini\n",
            fails(&["\"../../../../tini\"", "`..` component"]),
        ),
        (
            "from-registry-symlink-then-file",
            vec![vec![sym("esc", &out), file(format!("esc/{s}"), "pwned")]],
            "FROM {img}\n",
            fails(&["\"esc\" is a symlink"]),
        ),
        (
            "from-registry-hardlink-out",
            vec![vec![hard("h", "../../etc/passwd")]],
            "FROM {img}\n",
            fails(&["`..` component"]),
        ),
        (
            "from-registry-hardlink-out",
            vec![vec![hard("h", "/etc/shadow")]],
            "FROM {img}\n",
            fails(&["\"/etc/shadow\" does not exist"]),
        ),
    ];
    for (n, (id, layers, dockerfile, want)) in cases.iter().enumerate() {
        let c = case(id);
        let tars: Vec<Vec<u8>> = layers.iter().map(|l| tar(l)).collect();
        Crafted::of_tars(&tars).push(&reg, &arena.input(""), &format!("evil/n{n}"), Some("1"));
        arena.dockerfile(&dockerfile.replace("{img}", &format!("{host}/evil/n{n}:1")));
        let ran = arena.build(&[]);
        judge(&arena, c, &ran, want);
    }
}

/// Layer 1 has `esc -> OUTSIDE`, layer 2 `esc/pwned` (no directory entry). Each layer alone
/// is fine, so the pull succeeds; a local output applies them in order onto one directory,
/// where `esc` is then a symlink: it must refuse to write through it.
#[test]
pub fn a_symlink_of_one_layer_does_not_lead_the_next_out_of_a_local_output() {
    if !can_run("hostile two-layer symlink") {
        return;
    }
    let Some(reg) = start_registry() else {
        return;
    };
    let c = case("from-registry-two-layer-symlink");
    let arena = Arena::busybox();
    let s = arena.sentinel();
    let out = arena.outside().to_string_lossy().into_owned();
    let tars = [
        tar(&[sym("esc", &out)]),
        tar(&[
            file(format!("esc/{s}"), "pwned"),
            file("esc/secret", "overwritten"),
        ]),
    ];
    Crafted::of_tars(&tars).push(&reg, &arena.input(""), "evil/two", Some("1"));
    arena.dockerfile(&format!("FROM {}/evil/two:1\n", reg.host()));
    let dest = format!("type=local,dest={}", arena.out("two").display());
    let ran = arena.build(&["-o", &dest]);
    ran.failed_with(&["\"esc\" is a symlink"]);
    arena.assert_confined(c, &[&ran]);
}

/// An OCI layout given as a named context, whose layer has `..` entries.
#[test]
pub fn an_oci_layout_context_with_dotdot_entries_is_refused() {
    if !can_run("hostile OCI layout") {
        return;
    }
    let c = case("oci-layout-dotdot-entry");
    let arena = Arena::busybox();
    let s = arena.sentinel();
    let layout = arena.input("layout");
    Crafted::of_tars(&[tar(&[file(format!("../../../../../tmp/{s}"), "pwned")])])
        .write_layout(&layout);
    arena.dockerfile("FROM base\nRUN true\n");
    let ctx = format!("base=oci-layout://{}", layout.display());
    let ran = arena.build(&["--build-context", &ctx]);
    ran.failed_with(&["`..` component"]);
    arena.assert_confined(c, &[&ran]);
    arena.assert_no_leftovers(c);
}

/// An OCI layout whose layer digest climbs out of the layout: the layer must not be read from
/// wherever the digest points (the canary's secret, here, with a diff id that matches it).
#[test]
pub fn an_oci_layout_layer_digest_cannot_leave_the_layout() {
    if !can_run("hostile OCI layout digest") {
        return;
    }
    let c = case("oci-layout-digest-traversal");
    let arena = Arena::busybox();
    let layout = arena.input("layout");
    // The layer "is" the canary's secret, as the attacker guessed it: its diff id matches.
    let secret = std::fs::read(arena.outside().join("secret")).unwrap();
    let crafted = Crafted {
        config: config_json(&[sha256(&secret)]),
        layers: vec![],
    };
    crafted.write_layout(&layout);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": Crafted::descriptor(OCI_CONFIG, &crafted.config),
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": "sha256:../../../../outside/secret", "size": secret.len()}],
    }))
    .unwrap();
    crafted.write_index(&layout, &manifest);
    arena.dockerfile("FROM base\nRUN true\n");
    let ctx = format!("base=oci-layout://{}", layout.display());
    let ran = arena.build(&["--build-context", &ctx]);
    ran.failed_with(&["sha256:../../../../outside/secret"]);
    arena.assert_confined(c, &[&ran]);
}

/// buildah CVE-2020-10696: a build fetched a tar from an HTTP server and extracted it with
/// its `../` entries, writing anywhere on the host. In pallet (as in BuildKit) `ADD <url>`
/// never extracts: the archive lands as one file, byte for byte, and no entry of it is written
/// anywhere. The server is a front that answers the URL with the crafted tar.
#[test]
fn a_remote_tar_is_added_as_a_file_never_extracted() {
    if !can_run("buildah CVE-2020-10696") {
        return;
    }
    let Some(reg) = start_registry() else {
        return;
    };
    let c = case("add-url-tar-not-extracted");
    let arena = Arena::busybox();
    let s = arena.sentinel();
    let evil = tar(&[
        file("ok", "ok"),
        file(format!("../../../../../../tmp/{s}"), "pwned"),
        sym("esc", arena.outside().to_string_lossy().as_bytes()),
        file(format!("esc/{s}"), "pwned"),
    ]);
    let front = testkit::docker_registry::Front::start(
        &reg.host(),
        vec![testkit::docker_registry::Rule::get(
            "/evil.tar",
            testkit::docker_registry::Answer::blob(evil.clone()),
        )],
    );
    arena.dockerfile(&format!(
        "FROM busybox\nADD http://{}/evil.tar /dest/\nRUN ls -A /dest > /listing\n",
        front.host()
    ));
    let dest = arena.out("url");
    let ran = arena.build(&["-o", &format!("type=local,dest={}", dest.display())]);
    judge(&arena, c, &ran, &Want::Succeeds(Box::new(|_| {})));
    assert_eq!(std::fs::read(dest.join("dest/evil.tar")).unwrap(), evil);
    assert_eq!(testkit::files::read(&dest.join("listing")), "evil.tar\n");
    assert!(front.saw("/evil.tar"), "{:#?}", front.lines());
}
