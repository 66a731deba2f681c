//! Image outputs end to end: `pallet build -o type=docker|oci|local` and `pallet save`, read
//! back by tools no one here wrote. skopeo reads the docker archive (`docker-archive:`), the
//! OCI layouts (`oci:`, `oci-archive:`) and copies between them; umoci unpacks a copy; the
//! `type=local` tree is checked on disk (a file deleted by a RUN is gone, owners and modes are
//! as built). When a docker daemon answers `docker info`, `docker load` loads the archive too;
//! otherwise that test is skipped (never required).
//!
//! Needs root, runc, skopeo, umoci and busybox-static (scripts/ensure-tools.sh). Without them
//! the tests fail under CI=true and are skipped with a note elsewhere.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use testkit::oci_layout::umoci_unpack;
use testkit::run::{ok, output as run, skopeo, skopeo_json};
use testkit::tree::{self, Kind};
use testkit::{pallet, require, text, Need::*, Store};

fn can_run() -> bool {
    require(
        "image output test",
        &[Root, Busybox, Tool("runc"), Tool("skopeo"), Tool("umoci")],
    )
}

const DOCKERFILE: &str = r#"FROM busybox
RUN rm /bin/wget && rm -r /home/app && mkdir -p /data && echo one > /data/one.txt && chown 1000:1000 /data/one.txt && chmod 0640 /data/one.txt
COPY hello.txt /app/hello.txt
RUN mkdir /app/private && chmod 0750 /app/private && chown 1000:1000 /app/private && echo secret > /app/private/s
CMD ["cat", "/app/hello.txt"]
"#;

/// A store with busybox imported and a context whose Dockerfile makes a 4-layer image.
struct Setup {
    store: Store,
    ctx: PathBuf,
}

impl Setup {
    fn new() -> Setup {
        let store = Store::busybox(pallet!());
        let ctx = testkit::files::context(
            &store.path("ctx"),
            DOCKERFILE,
            &[("hello.txt", "hello from pallet\n")],
        );
        Setup { store, ctx }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.store.path(name)
    }

    /// `pallet build` of the context with these extra arguments, which must succeed.
    fn build(&self, args: &[&str]) -> Output {
        self.store
            .pallet()
            .arg("build")
            .args(args)
            .arg(&self.ctx)
            .succeeds()
    }
}

/// A tar read back: regular files by name, and every entry's (name, mtime) in archive order.
struct TarContents {
    files: BTreeMap<String, Vec<u8>>,
    order: Vec<(String, u64)>,
}

fn read_tar(path: &Path) -> TarContents {
    let mut files = BTreeMap::new();
    let mut order = Vec::new();
    let mut ar = tar::Archive::new(std::fs::File::open(path).unwrap());
    for entry in ar.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        order.push((name.clone(), entry.header().mtime().unwrap()));
        if entry.header().entry_type().is_file() {
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut data).unwrap();
            files.insert(name, data);
        }
    }
    TarContents { files, order }
}

fn json(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes).unwrap()
}

fn blob<'a>(files: &'a BTreeMap<String, Vec<u8>>, digest: &serde_json::Value) -> &'a [u8] {
    let hex = digest.as_str().unwrap().trim_start_matches("sha256:");
    files
        .get(&format!("blobs/sha256/{hex}"))
        .unwrap_or_else(|| panic!("blob {hex} is not in the archive"))
}

const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

#[test]
fn docker_archive_is_read_by_skopeo_and_names_the_tag() {
    if !can_run() {
        return;
    }
    let s = Setup::new();
    let x = s.path("app.tar");
    s.build(&[
        "-t",
        "app:1.0",
        "-o",
        &format!("type=docker,dest={}", x.display()),
    ]);
    let archive = format!("docker-archive:{}", x.display());

    let info = skopeo_json(&["inspect", &archive]);
    assert_eq!(info["Layers"].as_array().unwrap().len(), 4, "{info}");
    // The tag in manifest.json is what skopeo looks the image up by.
    let named = skopeo_json(&["inspect", &format!("{archive}:docker.io/library/app:1.0")]);
    assert_eq!(named["Digest"], info["Digest"]);

    let TarContents { files, order } = read_tar(&x);
    let names: Vec<&str> = order.iter().map(|(n, _)| n.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "entries are sorted");
    assert!(order.iter().all(|(_, mtime)| *mtime == 0), "{order:?}");
    for f in ["oci-layout", "index.json", "manifest.json", "repositories"] {
        assert!(files.contains_key(f), "{f} missing: {names:?}");
    }
    let manifest_json = json(&files["manifest.json"]);
    let item = &manifest_json[0];
    assert_eq!(item["RepoTags"], serde_json::json!(["app:1.0"]));
    assert_eq!(item["Layers"].as_array().unwrap().len(), 4);
    for path in item["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .chain([&item["Config"]])
    {
        assert!(files.contains_key(path.as_str().unwrap()), "{path}");
    }
    assert!(text(&files["repositories"]).contains(r#"{"app":{"1.0":"#));

    // Docker media types by default, as buildx's type=docker.
    let index = json(&files["index.json"]);
    let desc = &index["manifests"][0];
    assert_eq!(desc["mediaType"], DOCKER_MANIFEST);
    assert_eq!(
        desc["annotations"]["io.containerd.image.name"],
        "docker.io/library/app:1.0"
    );
    assert_eq!(
        desc["annotations"]["org.opencontainers.image.ref.name"],
        "1.0"
    );
    let manifest = json(blob(&files, &desc["digest"]));
    assert_eq!(manifest["mediaType"], DOCKER_MANIFEST);
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.docker.container.image.v1+json"
    );
    for l in manifest["layers"].as_array().unwrap() {
        assert_eq!(
            l["mediaType"],
            "application/vnd.docker.image.rootfs.diff.tar.gzip"
        );
    }
    let config = json(blob(&files, &manifest["config"]["digest"]));
    assert_eq!(
        config["config"]["Cmd"],
        serde_json::json!(["cat", "/app/hello.txt"])
    );

    // skopeo copies it into an OCI layout that umoci unpacks.
    let layout = s.path("copy");
    skopeo(&[
        "copy",
        &archive,
        &format!("oci:{}:copied", layout.display()),
    ]);
    let rootfs = umoci_unpack(&layout, "copied", &s.path("bundle"));
    let hello = std::fs::read_to_string(rootfs.join("app/hello.txt")).unwrap();
    assert_eq!(hello, "hello from pallet\n");
    assert!(!rootfs.join("bin/wget").exists());
}

#[test]
fn name_override_oci_media_types_and_epoch_make_a_reproducible_archive() {
    if !can_run() {
        return;
    }
    let s = Setup::new();
    let build = |dest: &Path| {
        s.build(&[
            "-t",
            "app",
            "--build-arg",
            "SOURCE_DATE_EPOCH=1700000000",
            "-o",
            &format!(
                "type=docker,dest={},\"name=example.com/team/app:2,app:extra\",oci-mediatypes=true",
                dest.display()
            ),
        ])
    };
    let (a, b) = (s.path("a.tar"), s.path("b.tar"));
    build(&a);
    build(&b);
    assert!(
        std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap(),
        "two builds with SOURCE_DATE_EPOCH write the same bytes"
    );
    let TarContents { files, order } = read_tar(&a);
    assert!(order.iter().all(|(_, m)| *m == 1_700_000_000), "{order:?}");
    let item = &json(&files["manifest.json"])[0];
    assert_eq!(
        item["RepoTags"],
        serde_json::json!(["example.com/team/app:2", "app:extra"])
    );
    let index = json(&files["index.json"]);
    assert_eq!(index["manifests"].as_array().unwrap().len(), 2);
    assert_eq!(index["manifests"][0]["mediaType"], OCI_MANIFEST);
    let archive = format!("docker-archive:{}", a.display());
    skopeo(&["inspect", &format!("{archive}:example.com/team/app:2")]);
    skopeo(&["inspect", &format!("{archive}:docker.io/library/app:extra")]);
}

#[test]
fn oci_outputs_with_either_media_types_are_read_by_skopeo() {
    if !can_run() {
        return;
    }
    let s = Setup::new();
    let (docker_dir, docker_tar, oci_dir) = (s.path("ddir"), s.path("d.tar"), s.path("odir"));
    s.build(&[
        "-t",
        "app:v1",
        "-o",
        &format!(
            "type=oci,dest={},tar=false,oci-mediatypes=false",
            docker_dir.display()
        ),
        "-o",
        &format!(
            "type=oci,dest={},oci-mediatypes=false",
            docker_tar.display()
        ),
        "-o",
        &format!("type=oci,dest={},tar=false", oci_dir.display()),
    ]);
    let index = json(&std::fs::read(docker_dir.join("index.json")).unwrap());
    let desc = &index["manifests"][0];
    assert_eq!(desc["mediaType"], DOCKER_MANIFEST);
    let hex = desc["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:");
    let manifest = json(&std::fs::read(docker_dir.join("blobs/sha256").join(hex)).unwrap());
    assert_eq!(manifest["mediaType"], DOCKER_MANIFEST);
    assert!(
        !docker_dir.join("manifest.json").exists(),
        "type=oci has no manifest.json"
    );
    // skopeo 1.9's oci: transport finds a tag only among OCI-typed descriptors (newer ones
    // accept Docker types too), so the Docker-typed layout is read without a tag.
    let info = skopeo_json(&["inspect", &format!("oci:{}", docker_dir.display())]);
    assert_eq!(info["Layers"].as_array().unwrap().len(), 4);
    let raw = skopeo(&[
        "inspect",
        "--raw",
        &format!("oci-archive:{}", docker_tar.display()),
    ]);
    assert_eq!(json(raw.as_bytes())["mediaType"], DOCKER_MANIFEST);

    let index = json(&std::fs::read(oci_dir.join("index.json")).unwrap());
    assert_eq!(index["manifests"][0]["mediaType"], OCI_MANIFEST);
    let info = skopeo_json(&["inspect", &format!("oci:{}:v1", oci_dir.display())]);
    assert_eq!(info["Layers"].as_array().unwrap().len(), 4);
}

#[test]
fn local_output_is_the_final_file_tree() {
    if !can_run() {
        return;
    }
    let s = Setup::new();
    let (local, short) = (s.path("local"), s.path("short"));
    s.build(&["-o", &format!("type=local,dest={}", local.display())]);
    // A bare value is type=local,dest=VALUE, as in buildx.
    s.build(&["-o", short.to_str().unwrap()]);

    let t = tree::from_dir(&local);
    assert_eq!(t["app/hello.txt"].kind, Kind::file(b"hello from pallet\n"));
    let one = &t["data/one.txt"];
    assert_eq!((one.mode, one.uid, one.gid), (0o640, 1000, 1000));
    assert_eq!((t["app/private"].mode, t["app/private"].uid), (0o750, 1000));
    assert_eq!(t["app/private/s"].uid, 0);
    assert_eq!(t["tmp"].mode, 0o1777);
    assert_eq!(
        t["bin/sh"].kind,
        Kind::Symlink("busybox".into()),
        "symlinks stay symlinks"
    );
    assert!(
        std::fs::metadata(local.join("bin/busybox"))
            .unwrap()
            .permissions()
            .mode()
            & 0o111
            != 0
    );
    // Deleted by a RUN: whiteouts were applied, not copied.
    assert!(!t.contains_key("bin/wget"), "bin/wget was deleted");
    assert!(t.contains_key("home") && !t.contains_key("home/app"));
    assert!(!t.keys().any(|k| k.contains(".wh.")), "no whiteout files");
    assert_eq!(t, tree::from_dir(&short), "-o DIR writes the same tree");
}

#[test]
fn save_writes_docker_and_oci_archives() {
    if !can_run() {
        return;
    }
    let s = Setup::new();
    s.build(&["-t", "app:dev"]);
    let (d, o) = (s.path("save.tar"), s.path("save-oci.tar"));
    s.store
        .pallet()
        .args(["save", "app:dev", "-o", d.to_str().unwrap()])
        .succeeds();
    let info = skopeo_json(&[
        "inspect",
        &format!("docker-archive:{}:app:dev", d.display()),
    ]);
    assert_eq!(info["Layers"].as_array().unwrap().len(), 4);
    let files = read_tar(&d).files;
    assert_eq!(
        json(&files["manifest.json"])[0]["RepoTags"],
        serde_json::json!(["app:dev"])
    );

    s.store
        .pallet()
        .args([
            "save",
            "--format",
            "oci",
            "app:dev",
            "-o",
            o.to_str().unwrap(),
        ])
        .succeeds();
    let info = skopeo_json(&["inspect", &format!("oci-archive:{}:dev", o.display())]);
    assert_eq!(info["Layers"].as_array().unwrap().len(), 4);
    assert!(!read_tar(&o).files.contains_key("manifest.json"));

    // `-o -` writes the same bytes to standard output.
    let out = s
        .store
        .pallet()
        .args(["save", "app:dev", "-o", "-"])
        .succeeds();
    assert!(
        out.stdout == std::fs::read(&d).unwrap(),
        "stdout differs from -o FILE"
    );

    // An imported image saves too.
    let bb = s.path("busybox.tar");
    s.store
        .pallet()
        .args(["save", "busybox", "-o", bb.to_str().unwrap()])
        .succeeds();
    skopeo(&["inspect", &format!("docker-archive:{}", bb.display())]);

    let out = s
        .store
        .pallet()
        .args(["save", "nope:1", "-o", s.path("x.tar").to_str().unwrap()])
        .output();
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("no image nope:1") && err.contains("pallet images"),
        "{err}"
    );
    let out = s
        .store
        .pallet()
        .args(["save", "app:dev", "-o", "/nonexistent-dir/x.tar"])
        .output();
    let err = text(&out.stderr);
    assert!(
        err.contains("/nonexistent-dir/x.tar") && err.contains("create its directory"),
        "{err}"
    );
}

#[test]
fn bad_output_specs_fail_before_building() {
    // Parsing happens before anything needs root, so this runs everywhere.
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("Dockerfile"), "FROM scratch\n").unwrap();
    let cases = [
        ("type=docker", "needs dest=FILE"),
        ("type=oci,tar=maybe,dest=x", "tar must be true or false"),
        ("type=docker,dest=x,bogus=1", "has no key \"bogus\""),
        ("type=docker,dest=x,tar=false", "type=oci,tar=false"),
        ("type=local", "needs dest=DIR"),
        ("type=nope,dest=x", "unknown type \"nope\""),
        ("type=cacheonly", "not built yet"),
        ("type=registry", "needs a name"),
        (
            "type=oci,dest=x,compression=lz4",
            "unknown algorithm \"lz4\"",
        ),
        ("dest=x", "give type="),
        ("type=docker,dest=x,name=Bad:Name", "name=Bad:Name"),
        (
            "type=oci,dest=x,oci-mediatypes=perhaps",
            "oci-mediatypes must be true or false",
        ),
    ];
    for (spec, want) in cases {
        let out = pallet!()
            .root(tmp.path().join("root"))
            .args(["build", "-o", spec])
            .arg(tmp.path())
            .output();
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{spec}: {err}");
        assert!(err.contains(want), "{spec}: expected {want:?} in:\n{err}");
        assert!(err.starts_with("error: "), "{spec}: {err}");
    }
}

/// The docker CLI that talks to a running daemon, if any (`/usr/bin/docker` first: the
/// 20.10 CLI of Debian's docker.io).
fn docker() -> Option<&'static str> {
    ["/usr/bin/docker", "docker"].into_iter().find(|d| {
        Command::new(d)
            .arg("info")
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

#[test]
fn docker_load_accepts_the_archive_when_a_daemon_runs() {
    if !can_run() {
        return;
    }
    let Some(docker) = docker() else {
        eprintln!("skipping docker load check: no docker daemon answers `docker info` (optional)");
        return;
    };
    let s = Setup::new();
    let tag = format!("pallet-outputs-test:{}", std::process::id());
    let x = s.path("load.tar");
    s.build(&[
        "-t",
        &tag,
        "-o",
        &format!("type=docker,dest={}", x.display()),
    ]);
    let loaded = ok(Command::new(docker).args(["load", "-i"]).arg(&x));
    let ran = run(Command::new(docker).args(["run", "--rm", "--network", "none", &tag]));
    let id = run(Command::new(docker).args(["image", "inspect", "--format", "{{.Id}}", &tag]));
    let _ = run(Command::new(docker).args(["rmi", &tag]));
    assert!(loaded.contains(&format!("Loaded image: {tag}")), "{loaded}");
    assert_eq!(
        text(&ran.stdout),
        "hello from pallet\n",
        "{}",
        text(&ran.stderr)
    );
    // docker's image ID is the config digest: the loaded config is the built one.
    let files = read_tar(&x).files;
    let config = json(&files["manifest.json"])[0]["Config"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        text(&id.stdout).trim().trim_start_matches("sha256:"),
        config.trim_start_matches("blobs/sha256/")
    );
}
