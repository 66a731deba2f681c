//! Opt-in parity test: pallet against BuildKit, its reference.
//!
//! Each case is a directory testdata/parity/<case>/ (a Dockerfile and its context). The test
//! builds it twice, with `docker build` (dockerd's embedded BuildKit, `DOCKER_BUILDKIT=1`) and
//! with `pallet build`, then compares:
//!
//! 1. the image config: Env (in order), Cmd, Entrypoint, WorkingDir, User, ExposedPorts,
//!    Volumes, Labels, StopSignal, Healthcheck, OnBuild, Shell, ArgsEscaped, and author,
//!    architecture, os, variant;
//! 2. the history the Dockerfile added: created_by, empty_layer and comment of each entry in
//!    order, and the number of layers added;
//! 3. the paths each added layer touches (added, whited out, made opaque), layer by layer;
//! 4. the final file tree, path by path: type, permission bits (with setuid, setgid, sticky),
//!    numeric owner, symlink target, device numbers, content hash (mtimes are ignored). Docker's
//!    tree is its `docker save` layers applied in order with their whiteouts (no container, so
//!    none of the files `docker create`/`docker export` add); pallet's is its
//!    `--output type=local` directory, and its `type=docker` archive's layers are applied the
//!    same way as a cross-check of pallet's two outputs.
//!
//! The configs compared are the config blobs of both images' docker archives (`docker save` and
//! pallet's `--output type=docker`), the same data `docker image inspect` shows as .Config,
//! .Author, .Architecture and .Os, plus the history it does not show. Not compared: times,
//! xattrs, and the image and layer digests (which times change).
//!
//! Every difference is printed (path or field, docker's value, pallet's value), then the test
//! fails if there was any. dockerd 20.10's BuildKit is older than current BuildKit, so some
//! differences are docker being out of date, not pallet being wrong (history strings, for one):
//! each needs a look at what current BuildKit does.
//!
//! Both builders start from the same base file tree: dockerd pulls it from the local registry
//! (127.0.0.1:5000/base/...), pallet imports the tar that image was made from under the same
//! name. The registry image was made by buildah, so its config also has Env PATH, Cmd
//! ["/bin/sh"] and the label io.buildah.version, which the imported one lacks. The comparison
//! takes that into account: a value both sides inherited unchanged from their own base is not a
//! difference, and the history is compared from the first entry after the base's own. Env is
//! compared as is: current BuildKit appends the default PATH to a base image's Env that has
//! none, which gives exactly the registry base's PATH.
//!
//! It runs only with `PALLET_PARITY=1` (otherwise each test says why and returns), as root,
//! with dockerd running and the base image tars in /var/tmp/peers/base/:
//!
//! ```text
//! PALLET_PARITY=1 cargo test -p pallet-builder --test suite buildkit_parity:: -- --nocapture --test-threads=1
//! ```
//!
//! Environment: `PALLET_PARITY_DOCKER` (default /usr/bin/docker), `PALLET_PARITY_BASE_DIR`
//! (default /var/tmp/peers/base), `PALLET_BIN` (default the pallet this test was built with),
//! `PALLET_PARITY_KEEP=1` keeps each case's work directory. The docker images stay tagged
//! parity-<case> for a closer look.

use serde_json::Value;
use std::collections::BTreeSet;
use std::fmt;
use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use testkit::peer_base::PeerBase as Base;
use testkit::tree::layers::{self, Layer};
use testkit::tree::{self, Node, Tree};
use testkit::Pallet;

// ---------------------------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------------------------

struct Case {
    /// The directory under testdata/parity/, also the image name `parity-<name>`.
    name: &'static str,
    /// The base the Dockerfile builds FROM (the one pallet must import first).
    base: Base,
    /// `--build-arg` values, given to both builders.
    build_args: &'static [&'static str],
    /// Adds generated files to the copy of the context both builders read.
    prepare: fn(&Path),
}

fn no_prepare(_: &Path) {}

#[test]
fn base_busybox() {
    run_case(&Case {
        name: "base-busybox",
        base: Base::Busybox,
        build_args: &[],
        prepare: no_prepare,
    });
}

#[test]
fn base_debian() {
    run_case(&Case {
        name: "base-debian",
        base: Base::Debian,
        build_args: &[],
        prepare: no_prepare,
    });
}

/// (a) ENV/ARG scoping, build args, global ARG, WORKDIR chains, USER by name.
#[test]
fn env_arg_user() {
    run_case(&Case {
        name: "env-arg-user",
        base: Base::Debian,
        build_args: &[
            "GLOBAL_MSG=cli-global",
            "STAGE_ARG=from-cli",
            "NOT_DECLARED=x",
        ],
        prepare: no_prepare,
    });
}

/// (b) Multi-stage COPY --from, --chown, --chmod, directory copies, wildcards, .dockerignore.
#[test]
fn copy_multistage() {
    run_case(&Case {
        name: "copy-multistage",
        base: Base::Busybox,
        build_args: &[],
        prepare: no_prepare,
    });
}

/// (c) Config instructions, SHELL, ENTRYPOINT resetting CMD, ONBUILD.
#[test]
fn config() {
    run_case(&Case {
        name: "config",
        base: Base::Busybox,
        build_args: &["SIGNAL=SIGUSR1"],
        prepare: no_prepare,
    });
}

/// (d) RUN deleting and replacing files (whiteouts, opaque directories), links, special modes.
#[test]
fn run_whiteouts() {
    run_case(&Case {
        name: "run-whiteouts",
        base: Base::Busybox,
        build_args: &[],
        prepare: no_prepare,
    });
}

/// (d) RUN --mount=type=cache and type=bind (ro, rw, whole context, from a stage).
#[test]
fn run_mounts() {
    run_case(&Case {
        name: "run-mounts",
        base: Base::Busybox,
        build_args: &[],
        prepare: no_prepare,
    });
}

/// RUN steps that change no file, followed by more steps.
#[test]
fn run_noop_layers() {
    run_case(&Case {
        name: "run-noop-layers",
        base: Base::Busybox,
        build_args: &[],
        prepare: no_prepare,
    });
}

/// (e) ADD of local archives (extracted) and plain files.
#[test]
fn add() {
    run_case(&Case {
        name: "add",
        base: Base::Busybox,
        build_args: &[],
        prepare: write_add_archives,
    });
}

/// The archives the `add` case ADDs: a tar with directories of unusual modes and owners, files,
/// a symlink, a hard link and a file whose parents have no entries; the same tar gzipped; and
/// a gzip of something that is not a tar.
fn write_add_archives(dir: &Path) {
    fn header(kind: tar::EntryType, mode: u32, uid: u64, gid: u64, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(uid);
        h.set_gid(gid);
        h.set_size(size);
        h.set_mtime(1_700_000_000);
        h
    }
    let mut b = tar::Builder::new(Vec::new());
    let dir_entry = |b: &mut tar::Builder<Vec<u8>>, path: &str, mode, uid, gid| {
        let mut h = header(tar::EntryType::Directory, mode, uid, gid, 0);
        b.append_data(&mut h, path, std::io::empty()).unwrap();
    };
    let file_entry = |b: &mut tar::Builder<Vec<u8>>, path: &str, mode, uid, gid, data: &[u8]| {
        let mut h = header(tar::EntryType::Regular, mode, uid, gid, data.len() as u64);
        b.append_data(&mut h, path, data).unwrap();
    };
    dir_entry(&mut b, "top/", 0o750, 1000, 1000);
    file_entry(
        &mut b,
        "top/file.txt",
        0o640,
        1000,
        1000,
        b"file in archive\n",
    );
    file_entry(&mut b, "top/exec.sh", 0o755, 0, 0, b"#!/bin/sh\necho hi\n");
    let mut h = header(tar::EntryType::Symlink, 0o777, 1000, 1000, 0);
    b.append_link(&mut h, "top/link", "file.txt").unwrap();
    let mut h = header(tar::EntryType::Link, 0o640, 1000, 1000, 0);
    b.append_link(&mut h, "top/hard", "top/file.txt").unwrap();
    file_entry(
        &mut b,
        "top/nested/deep/x.txt",
        0o644,
        0,
        0,
        b"no parent entries\n",
    );
    dir_entry(&mut b, "sgid/", 0o2775, 0, 50);
    file_entry(&mut b, "sgid/setuid-file", 0o4755, 0, 0, b"suid\n");
    file_entry(&mut b, "./dot-prefixed.txt", 0o600, 33, 33, b"dot\n");
    let tar_bytes = b.into_inner().unwrap();

    fs::write(dir.join("archive.tar"), &tar_bytes).unwrap();
    fs::write(dir.join("archive.tar.gz"), gzip(&tar_bytes)).unwrap();
    fs::write(dir.join("single.gz"), gzip(b"not a tar\n")).unwrap();
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

// ---------------------------------------------------------------------------------------------
// Running a case
// ---------------------------------------------------------------------------------------------

/// Whether to run: only with PALLET_PARITY=1, and then the prerequisites must be there.
fn enabled(case: &Case) -> bool {
    if std::env::var("PALLET_PARITY").as_deref() != Ok("1") {
        eprintln!(
            "parity case {}: skipped (opt-in: set PALLET_PARITY=1 to build it with docker and pallet and compare)",
            case.name
        );
        return false;
    }
    assert!(
        testkit::gate::is_root(),
        "PALLET_PARITY=1: the parity test needs root (pallet's RUN uses runc and overlay mounts)"
    );
    let docker = docker_bin();
    assert!(
        docker.exists(),
        "PALLET_PARITY=1: {} is missing (set PALLET_PARITY_DOCKER)",
        docker.display()
    );
    assert!(
        case.base.tar().exists(),
        "PALLET_PARITY=1: the base tar {} is missing (set PALLET_PARITY_BASE_DIR)",
        case.base.tar().display()
    );
    true
}

fn docker_bin() -> PathBuf {
    std::env::var_os("PALLET_PARITY_DOCKER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/docker"))
}

fn pallet_bin() -> PathBuf {
    std::env::var_os("PALLET_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_pallet")))
}

fn docker() -> Command {
    let mut cmd = Command::new(docker_bin());
    cmd.env("DOCKER_BUILDKIT", "1");
    cmd
}

fn pallet(root: &Path) -> Pallet {
    Pallet::new(pallet_bin()).root(root)
}

/// Runs `cmd`, which must succeed (`what` names it in the panic); returns its output.
fn run(cmd: &mut Command, what: &str) -> Output {
    let out = testkit::run::output(cmd);
    testkit::run::assert_success(what, &out);
    out
}

fn run_case(case: &Case) {
    if !enabled(case) {
        return;
    }
    let work = tempfile::Builder::new()
        .prefix(&format!("pallet-parity-{}-", case.name))
        .tempdir()
        .unwrap();
    let dir = work.path().to_path_buf();
    if std::env::var("PALLET_PARITY_KEEP").as_deref() == Ok("1") {
        eprintln!("parity case {}: keeping {}", case.name, dir.display());
        std::mem::forget(work);
    }

    // One copy of the context for both builders, with modes that do not depend on the checkout.
    let ctx = dir.join("context");
    copy_context(&testdata(case.name), &ctx);
    (case.prepare)(&ctx);

    let (docker_image, docker_base) = build_with_docker(case, &ctx, &dir);
    let mut report = Report::default();
    let pallet = match build_with_pallet(case, &ctx, &dir) {
        Ok(built) => built,
        Err(failure) => {
            // The reference built it, so this is a difference too, and nothing else compares.
            report.diff("build", "succeeded", failure);
            report.finish(case.name);
            return;
        }
    };

    compare_config(
        &mut report,
        &docker_image.config,
        &pallet.image.config,
        &docker_base.config,
        &pallet.base_config,
    );
    compare_history(
        &mut report,
        &docker_image.config,
        &pallet.image.config,
        &docker_base.config,
        &pallet.base_config,
    );

    let docker_layers = layers::read_all(&docker_image.layers, &mut report.notes);
    let pallet_layers = layers::read_all(&pallet.image.layers, &mut report.notes);
    compare_added_layers(
        &mut report,
        added_layers(&docker_layers, &docker_image.config, &docker_base.config),
        added_layers(&pallet_layers, &pallet.image.config, &pallet.base_config),
    );

    let docker_tree = layers::apply(&docker_layers, &mut report.notes);
    let pallet_tree = tree::from_dir(&pallet.local);
    compare_trees(
        &mut report,
        "file tree",
        ("docker", &docker_tree),
        ("pallet", &pallet_tree),
    );
    let pallet_layers_tree = layers::apply(&pallet_layers, &mut report.notes);
    compare_trees(
        &mut report,
        "pallet's own outputs",
        ("pallet type=local", &pallet_tree),
        ("pallet type=docker layers", &pallet_layers_tree),
    );

    report.finish(case.name);
}

/// `docker build` of the context, then `docker save` of the result and of the base image
/// (pulled into dockerd's image store first).
fn build_with_docker(case: &Case, ctx: &Path, dir: &Path) -> (Image, Image) {
    let tag = format!("parity-{}", case.name);
    let mut build = docker();
    build.args(["build", "--no-cache", "--network=none", "-t", &tag]);
    for arg in case.build_args {
        build.args(["--build-arg", arg]);
    }
    build.arg(ctx);
    run(&mut build, &format!("docker build of {}", case.name));
    // BuildKit keeps the base it pulled in its own cache, not in dockerd's image store, which
    // is what `docker save` reads: a dockerd with a fresh data root has no copy to save.
    run(
        docker().args(["pull", case.base.reference()]),
        &format!("docker pull {}", case.base.reference()),
    );
    (
        save_docker_image(&tag, &dir.join("docker-image")),
        save_docker_image(case.base.reference(), &dir.join("docker-base")),
    )
}

/// What pallet built: the `type=docker` archive, the `type=local` directory, and the config of
/// the base it imported.
struct PalletBuild {
    image: Image,
    local: PathBuf,
    base_config: Value,
}

/// `pallet import` of the base into a new store, then `pallet build` of the context to both a
/// docker archive and a directory. A failed build is returned as the tail of its log.
fn build_with_pallet(case: &Case, ctx: &Path, dir: &Path) -> Result<PalletBuild, String> {
    let root = dir.join("pallet-root");
    let reference = case.base.reference();
    pallet(&root)
        .arg("import")
        .arg(case.base.tar())
        .args(["-t", reference])
        .succeeds();
    let inspect = pallet(&root)
        .args(["inspect", "--format", "json", reference])
        .succeeds();
    let base: Value = serde_json::from_slice(&inspect.stdout).unwrap();

    let archive = dir.join("pallet.tar");
    let local = dir.join("pallet-local");
    let mut build = pallet(&root)
        .args(["build", "--progress", "plain"])
        .args(["-t", &format!("parity-{}", case.name)]);
    for arg in case.build_args {
        build = build.args(["--build-arg", arg]);
    }
    let out = build
        .arg("-o")
        .arg(format!("type=docker,dest={}", archive.display()))
        .arg("-o")
        .arg(format!("type=local,dest={}", local.display()))
        .arg(ctx)
        .output();
    if !out.status.success() {
        let log = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = log.lines().collect();
        let tail = &lines[lines.len().saturating_sub(4)..];
        return Err(format!(
            "failed ({}):\n        {}",
            out.status,
            tail.join("\n        ")
        ));
    }
    Ok(PalletBuild {
        image: read_docker_archive(&archive, &dir.join("pallet-image")),
        local,
        base_config: base["config"].clone(),
    })
}

fn testdata(case: &str) -> PathBuf {
    testkit::repo::testdata("parity").join(case)
}

/// Copies a context directory: directories 0755, files 0755 if executable by their owner,
/// else 0644 (git keeps no other modes, so the checkout's modes are not the test's input).
fn copy_context(src: &Path, dst: &Path) {
    fs::create_dir_all(dst).unwrap();
    fs::set_permissions(dst, fs::Permissions::from_mode(0o755)).unwrap();
    for entry in fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let meta = entry.metadata().unwrap();
        let to = dst.join(entry.file_name());
        if meta.is_dir() {
            copy_context(&entry.path(), &to);
        } else {
            fs::copy(entry.path(), &to).unwrap();
            let mode = if meta.mode() & 0o100 != 0 {
                0o755
            } else {
                0o644
            };
            fs::set_permissions(&to, fs::Permissions::from_mode(mode)).unwrap();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Images
// ---------------------------------------------------------------------------------------------

/// An image read from a `docker load` archive: its config and its layer files, bottom first.
struct Image {
    config: Value,
    layers: Vec<PathBuf>,
}

fn save_docker_image(reference: &str, dir: &Path) -> Image {
    let tar = dir.with_extension("tar");
    run(
        docker().args(["save", "-o"]).arg(&tar).arg(reference),
        &format!("docker save {reference}"),
    );
    read_docker_archive(&tar, dir)
}

/// Unpacks a `docker save`-format archive into `dir` and reads its manifest.json.
fn read_docker_archive(tar_path: &Path, dir: &Path) -> Image {
    fs::create_dir_all(dir).unwrap();
    tar::Archive::new(File::open(tar_path).unwrap())
        .unpack(dir)
        .unwrap_or_else(|e| panic!("unpacking {}: {e}", tar_path.display()));
    let manifest: Value =
        serde_json::from_slice(&fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    let entry = &manifest[0];
    let config_path = dir.join(entry["Config"].as_str().expect("manifest.json Config"));
    let config = serde_json::from_slice(&fs::read(config_path).unwrap()).unwrap();
    let layers = entry["Layers"]
        .as_array()
        .expect("manifest.json Layers")
        .iter()
        .map(|l| dir.join(l.as_str().unwrap()))
        .collect();
    Image { config, layers }
}

// ---------------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct Report {
    /// Differences: what differs, then each side's value on a line of its own.
    diffs: Vec<String>,
    /// What the comparison chose to ignore, and why.
    notes: Vec<String>,
}

impl Report {
    fn diff(&mut self, what: &str, docker: impl fmt::Display, pallet: impl fmt::Display) {
        self.diff_sides(what, ("docker", docker), ("pallet", pallet));
    }

    /// A difference between two sides named otherwise than docker and pallet.
    fn diff_sides(
        &mut self,
        what: &str,
        (l_name, l): (&str, impl fmt::Display),
        (r_name, r): (&str, impl fmt::Display),
    ) {
        self.diffs
            .push(format!("{what}\n      {l_name}: {l}\n      {r_name}: {r}"));
    }

    fn finish(self, case: &str) {
        println!(
            "\n===== parity case {case}: {} difference(s)",
            self.diffs.len()
        );
        for note in &self.notes {
            println!("  note: {note}");
        }
        for (i, d) in self.diffs.iter().enumerate() {
            println!("  [{}] {d}", i + 1);
        }
        assert!(
            self.diffs.is_empty(),
            "parity case {case}: {} difference(s) between docker (BuildKit) and pallet, listed above",
            self.diffs.len()
        );
    }
}

fn show(v: &Value) -> String {
    match v {
        Value::Null => "(unset)".to_string(),
        v => v.to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// Config and history
// ---------------------------------------------------------------------------------------------

/// The fields of the image config's `config` object compared, by their JSON name.
const CONFIG_FIELDS: &[&str] = &[
    "Env",
    "Cmd",
    "Entrypoint",
    "WorkingDir",
    "User",
    "ExposedPorts",
    "Volumes",
    "Labels",
    "StopSignal",
    "Healthcheck",
    "OnBuild",
    "Shell",
    "ArgsEscaped",
];

/// The top-level image config fields compared.
const IMAGE_FIELDS: &[&str] = &["author", "architecture", "os", "variant"];

/// A missing field, `""`, `false`, `[]` and `{}` all mean "not set", except that Cmd and
/// Entrypoint `[]` (an explicit empty list) differ from unset.
fn normalize(field: &str, v: Option<&Value>) -> Value {
    match v {
        None | Some(Value::Null) | Some(Value::Bool(false)) => Value::Null,
        Some(Value::String(s)) if s.is_empty() => Value::Null,
        Some(Value::Array(a)) if a.is_empty() && !matches!(field, "Cmd" | "Entrypoint") => {
            Value::Null
        }
        Some(Value::Object(o)) if o.is_empty() => Value::Null,
        Some(v) => v.clone(),
    }
}

fn compare_config(
    report: &mut Report,
    docker: &Value,
    pallet: &Value,
    d_base: &Value,
    p_base: &Value,
) {
    for field in IMAGE_FIELDS {
        let d = normalize(field, docker.get(*field));
        let p = normalize(field, pallet.get(*field));
        if d != p {
            report.diff(&format!("config: {field}"), show(&d), show(&p));
        }
    }
    for field in CONFIG_FIELDS {
        let get = |img: &Value| normalize(field, img.get("config").and_then(|c| c.get(*field)));
        let (mut d, p) = (get(docker), get(pallet));
        let (db, pb) = (get(d_base), get(p_base));
        if *field == "Labels" {
            d = drop_inherited_labels(report, &d, &p, &db, &pb);
        }
        if d == p {
            continue;
        }
        if d == db && p == pb && db != pb {
            report.notes.push(format!(
                "config.{field}: inherited unchanged from the bases, which differ (docker base {}, pallet base {}): not compared",
                show(&db),
                show(&pb)
            ));
            continue;
        }
        report.diff(&format!("config.{field}"), show(&d), show(&p));
    }
}

/// Docker's labels without those it inherited from its base that pallet's base lacks (and
/// pallet's image does not have either): the buildah base's io.buildah.version.
fn drop_inherited_labels(
    report: &mut Report,
    d: &Value,
    p: &Value,
    db: &Value,
    pb: &Value,
) -> Value {
    let Value::Object(labels) = d else {
        return d.clone();
    };
    let mut kept = labels.clone();
    for (k, v) in labels {
        let from_base = db.get(k) == Some(v);
        if from_base && pb.get(k).is_none() && p.get(k).is_none() {
            report.notes.push(format!(
                "config.Labels[{k:?}] = {v}: inherited from docker's base only: not compared"
            ));
            kept.remove(k);
        }
    }
    normalize("Labels", Some(&Value::Object(kept)))
}

/// The history entries after the base's own (if the image's history starts with them).
fn added_history<'a>(image: &'a Value, base: &Value) -> (&'a [Value], bool) {
    let history = |v: &'a Value| v["history"].as_array().map_or(&[][..], Vec::as_slice);
    let all = history(image);
    let base_h = base["history"].as_array().map_or(&[][..], Vec::as_slice);
    let key = |h: &Value| {
        (
            h["created_by"].clone(),
            h["empty_layer"].as_bool().unwrap_or(false),
        )
    };
    let has_base =
        all.len() >= base_h.len() && all.iter().zip(base_h).all(|(a, b)| key(a) == key(b));
    if has_base {
        (&all[base_h.len()..], true)
    } else {
        (all, false)
    }
}

fn layer_count(image: &Value) -> usize {
    image["rootfs"]["diff_ids"].as_array().map_or(0, Vec::len)
}

fn compare_history(
    report: &mut Report,
    docker: &Value,
    pallet: &Value,
    d_base: &Value,
    p_base: &Value,
) {
    let (d_hist, d_has_base) = added_history(docker, d_base);
    let (p_hist, p_has_base) = added_history(pallet, p_base);
    if !d_has_base || !p_has_base {
        report.notes.push(format!(
            "history: compared whole on a side whose history does not start with its base's (docker: {d_has_base}, pallet: {p_has_base})"
        ));
    }
    for i in 0..d_hist.len().max(p_hist.len()) {
        let entry = |h: &[Value]| h.get(i).cloned();
        match (entry(d_hist), entry(p_hist)) {
            (Some(d), Some(p)) => {
                for field in ["created_by", "empty_layer", "comment"] {
                    let dv = normalize(field, d.get(field));
                    let pv = normalize(field, p.get(field));
                    if dv != pv {
                        report.diff(&format!("history[+{i}].{field}"), show(&dv), show(&pv));
                    }
                }
            }
            (d, p) => {
                let brief = |h: Option<Value>| {
                    h.map_or("(no entry)".to_string(), |h| {
                        format!(
                            "{} (empty_layer: {})",
                            show(&h["created_by"]),
                            h["empty_layer"].as_bool().unwrap_or(false)
                        )
                    })
                };
                report.diff(&format!("history[+{i}]"), brief(d), brief(p));
            }
        }
    }
    let added = |img: &Value, base: &Value| layer_count(img).saturating_sub(layer_count(base));
    let (d_added, p_added) = (added(docker, d_base), added(pallet, p_base));
    if d_added != p_added {
        report.diff("layers added", d_added, p_added);
    }
    for (side, img) in [("docker", docker), ("pallet", pallet)] {
        let non_empty = img["history"].as_array().map_or(0, |h| {
            h.iter()
                .filter(|e| e["empty_layer"] != Value::Bool(true))
                .count()
        });
        if non_empty != layer_count(img) {
            report.notes.push(format!(
                "{side}: history has {non_empty} non-empty entries for {} layers",
                layer_count(img)
            ));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// File trees (testkit::tree: the trees, the layers, the paths that differ)
// ---------------------------------------------------------------------------------------------

/// Reports every path whose node differs between the two trees, or that only one has.
fn compare_trees(report: &mut Report, what: &str, left: (&str, &Tree), right: (&str, &Tree)) {
    let ((l_name, l), (r_name, r)) = (left, right);
    for difference in tree::compare(l, r) {
        let path = &difference.path;
        let headline = match difference.delta() {
            Some(delta) => format!("{what}: /{path} ({delta})"),
            None => format!("{what}: /{path}"),
        };
        let side = |n: &Option<Node>| n.as_ref().map_or("(missing)".to_string(), Node::to_string);
        report.diff_sides(
            &headline,
            (l_name, side(&difference.left)),
            (r_name, side(&difference.right)),
        );
    }
}

/// The layers after the base's own, if the image's diff_ids start with the base's.
fn added_layers<'a>(layers: &'a [Layer], image: &Value, base: &Value) -> &'a [Layer] {
    let ids = |v: &Value| {
        v["rootfs"]["diff_ids"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    let (all, base_ids) = (ids(image), ids(base));
    if all.starts_with(&base_ids) {
        &layers[base_ids.len()..]
    } else {
        layers
    }
}

/// Compares the paths each added layer touches, layer by layer: a step whose layer holds more
/// or less than BuildKit's (a directory whose time alone changed, a mount point left behind)
/// changes digests and cache keys even when the final tree is the same.
fn compare_added_layers(report: &mut Report, docker: &[Layer], pallet: &[Layer]) {
    for i in 0..docker.len().min(pallet.len()) {
        let (d, p) = (docker[i].touched_paths(), pallet[i].touched_paths());
        if d == p {
            continue;
        }
        let only = |a: &BTreeSet<String>, b: &BTreeSet<String>| {
            let v: Vec<&str> = a.difference(b).map(String::as_str).collect();
            if v.is_empty() {
                "(nothing more)".to_string()
            } else {
                format!("also {}", v.join(" "))
            }
        };
        report.diff(&format!("layer[+{i}] paths"), only(&d, &p), only(&p, &d));
    }
}
