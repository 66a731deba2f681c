//! Multi-platform builds (issue 16): `--platform linux/amd64,linux/arm64` on a store whose
//! `busybox:latest` is a two-platform image (the host's busybox-static and Debian's arm64
//! busybox-static), RUN steps for arm64 under QEMU user emulation through binfmt_misc (`pallet
//! binfmt --install`), the image index in the store, in an OCI archive (read by skopeo), pushed
//! to a real docker-registry (read back by skopeo), `type=local` per platform, `pallet run
//! --platform`, the cross-compilation idiom's native stage, the clear error for a missing
//! handler, and reproducible index digests.
//!
//! Needs root, runc, skopeo, docker-registry, busybox-static, qemu-user-static and the arm64
//! busybox-static (scripts/ensure-tools.sh installs them); fails under CI=true when missing.

use crate::registry_e2e::registry_and_env;
use std::path::Path;
use std::process::Command;
use testkit::docker_registry::Config;
use testkit::progress::{about, events};
use testkit::run::ok;
use testkit::store::Store;
use testkit::{files, pallet, require, text, Need::*};

/// An ML-style Dockerfile with RUN steps in both stages: the deps stage "installs" a package
/// for the machine it runs on, the final stage copies it and records its own machine.
const ML: &str = "FROM busybox AS deps
RUN mkdir -p /opt/deps && echo \"wheel for $(uname -m)\" > /opt/deps/lib.txt
FROM busybox
COPY --from=deps /opt/deps /opt/deps
RUN uname -m > /arch
CMD [\"cat\", \"/opt/deps/lib.txt\"]
";

const BOTH: &str = "linux/amd64,linux/arm64";

/// A two-platform busybox store with the arm64 handler registered; None where the test cannot
/// run here (`require` says why, and fails under CI=true).
fn store(what: &str) -> Option<Store> {
    if !require(what, &[Root, Busybox, Arm64, Tool("runc")]) {
        return None;
    }
    // Registers qemu-aarch64 from qemu-user-static when it is missing (mounting binfmt_misc).
    let shown = pallet!().args(["binfmt", "--install", "linux/arm64"]).ok();
    assert!(shown.contains("qemu-aarch64"), "{shown}");
    Some(Store::busybox_multiplatform(pallet!()))
}

fn skopeo_raw(location: &str) -> serde_json::Value {
    let raw = ok(Command::new("skopeo").args(["inspect", "--raw", "--tls-verify=false", location]));
    serde_json::from_str(raw.trim()).unwrap_or_else(|e| panic!("{e}: {raw}"))
}

fn platforms_of(index: &serde_json::Value) -> Vec<String> {
    index["manifests"]
        .as_array()
        .unwrap_or_else(|| panic!("not an index: {index}"))
        .iter()
        .map(|m| {
            format!(
                "{}/{}",
                m["platform"]["os"].as_str().unwrap(),
                m["platform"]["architecture"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn two_platform_build_gives_an_index_that_runs_and_exports() {
    let Some(store) = store("two-platform build") else {
        return;
    };
    let ctx = files::context(&store.path("ctx"), ML, &[]);
    let archive = store.path("ml.tar");
    let out = store
        .pallet()
        .args([
            "build",
            "--progress",
            "plain",
            "--platform",
            BOTH,
            "-t",
            "ml:multi",
        ])
        .args(["--annotation", "index:org.example.platforms=two"])
        .arg("-o")
        .arg(format!("type=oci,dest={}", archive.display()))
        .arg(&ctx)
        .succeeds();
    let log = text(&out.stderr);
    // Each step names its platform, as buildx prints them; arm64's RUN steps are emulated.
    assert!(log.contains("[linux/arm64 deps 2/2] RUN"), "{log}");
    assert!(log.contains("[linux/amd64 stage-1 3/3] RUN"), "{log}");
    assert!(log.contains("#emulated linux/arm64"), "{log}");
    assert!(!log.contains("#emulated linux/amd64"), "{log}");

    // skopeo reads the OCI archive: an index with both platforms.
    let index = skopeo_raw(&format!("oci-archive:{}", archive.display()));
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    assert_eq!(platforms_of(&index), ["linux/amd64", "linux/arm64"]);
    assert_eq!(
        index["annotations"]["org.example.platforms"], "two",
        "{index}"
    );

    // The store lists the index's platforms; run picks the platform.
    let images = store.pallet().arg("images").ok();
    assert!(images.contains("linux/amd64,linux/arm64"), "{images}");
    let inspect = store.pallet().args(["inspect", "ml:multi"]).ok();
    assert!(inspect.contains("linux/arm64 sha256:"), "{inspect}");
    // The build's summary names the index.
    let built = testkit::progress::built_digest(&log);
    let index_line = format!("{:<14}{built}", "Index:");
    assert!(
        inspect.lines().any(|l| l == index_line),
        "{built}: {inspect}"
    );
    let run = |platform: &str, cmd: &[&str]| {
        let mut args = vec!["run", "--platform", platform, "ml:multi"];
        args.extend_from_slice(cmd);
        store.pallet().args(&args).ok()
    };
    assert_eq!(run("linux/arm64", &["uname", "-m"]), "aarch64\n");
    assert_eq!(run("linux/arm64", &["cat", "/arch"]), "aarch64\n");
    assert_eq!(run("linux/arm64", &[]), "wheel for aarch64\n");
    assert_eq!(run("linux/amd64", &["cat", "/arch"]), "x86_64\n");
    let missing = store
        .pallet()
        .args(["run", "--platform", "linux/s390x", "ml:multi", "true"])
        .fails();
    let err = text(&missing.stderr);
    assert!(err.contains("has no platform linux/s390x"), "{err}");

    // A rebuild with no change is all cached, for both platforms.
    let again = store
        .pallet()
        .args([
            "build",
            "--progress",
            "json",
            "--platform",
            BOTH,
            "-t",
            "ml:multi",
        ])
        .arg(&ctx)
        .succeeds();
    let ev = events(&again.stderr);
    let misses = about(&ev, "step.miss", "");
    assert!(misses.is_empty(), "a no-op rebuild ran steps: {misses:?}");
    assert_eq!(about(&ev, "step.cached", "RUN").len(), 4, "{ev:?}");

    // --explain covers both platforms: every step of each is in the cache.
    let explained = store
        .pallet()
        .args([
            "build",
            "--explain",
            "--progress",
            "plain",
            "--platform",
            BOTH,
        ])
        .arg(&ctx)
        .succeeds();
    let log = text(&explained.stderr);
    assert!(log.contains("0 would run"), "{log}");
    assert!(log.contains("[linux/arm64 stage-1 3/3] RUN"), "{log}");
    assert!(log.contains("[linux/amd64 stage-1 3/3] RUN"), "{log}");

    // Docker's loader takes one platform: refused as buildx refuses it.
    let docker = store
        .pallet()
        .args(["build", "--platform", BOTH, "-o"])
        .arg(format!(
            "type=docker,dest={}",
            store.path("d.tar").display()
        ))
        .arg(&ctx)
        .fails();
    let err = text(&docker.stderr);
    assert!(
        err.contains("does not currently support exporting manifest lists"),
        "{err}"
    );
}

/// `pallet doctor` checks every platform of a multi-platform image, not only the default one.
#[test]
fn doctor_drops_an_index_whose_arm64_image_is_damaged() {
    let Some(store) = store("doctor on a multi-platform image") else {
        return;
    };
    let healthy = store.pallet().arg("doctor").ok();
    assert!(!healthy.contains("dropped"), "{healthy}");
    let inspect: serde_json::Value = serde_json::from_str(
        &store
            .pallet()
            .args(["inspect", "--format", "json", "busybox"])
            .ok(),
    )
    .unwrap();
    let arm64 = inspect["platforms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["platform"] == "linux/arm64")
        .unwrap_or_else(|| panic!("{inspect}"));
    // The arm64 image's config blob, damaged on disk.
    let config = arm64["config_digest"].as_str().unwrap();
    let blob = store
        .root()
        .join("blobs/sha256")
        .join(config.trim_start_matches("sha256:"));
    assert!(blob.is_file(), "{}", blob.display());
    std::fs::write(&blob, b"damaged").unwrap();
    let out = store.pallet().arg("doctor").output();
    let report = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(report.contains("linux/arm64"), "{report}");
    assert!(report.contains("busybox"), "{report}");
}

/// `pallet save` of a multi-platform image: OCI keeps the index, docker's format the host's
/// platform, which `docker load` takes (as docker save/load of such an image do).
#[test]
fn save_keeps_the_index_in_oci_and_one_platform_for_docker_load() {
    let Some(store) = store("saving a multi-platform image") else {
        return;
    };
    let oci = store.path("busybox-oci.tar");
    store
        .pallet()
        .args(["save", "--format", "oci", "-o"])
        .arg(&oci)
        .arg("busybox:latest")
        .ok();
    let index = skopeo_raw(&format!("oci-archive:{}", oci.display()));
    assert_eq!(platforms_of(&index), ["linux/amd64", "linux/arm64"]);
    let docker_tar = store.path("busybox-docker.tar");
    store
        .pallet()
        .args(["save", "-o"])
        .arg(&docker_tar)
        .arg("busybox:latest")
        .ok();
    let inspected = ok(Command::new("skopeo").args([
        "inspect",
        &format!("docker-archive:{}", docker_tar.display()),
    ]));
    let v: serde_json::Value = serde_json::from_str(inspected.trim()).unwrap();
    assert_eq!(v["Architecture"], "amd64", "{inspected}");

    // docker load, where a daemon answers (the test command starts one; CI=true requires it).
    let docker = "/usr/bin/docker";
    let up = Command::new(docker)
        .args(["version", "--format", "{{.Server.Version}}"])
        .output();
    if !up.is_ok_and(|o| o.status.success()) {
        assert!(
            !testkit::gate::ci(),
            "CI=true: no docker daemon answers (scripts/start-dockerd.sh starts one)"
        );
        eprintln!("skipping docker load: no docker daemon answers");
        return;
    }
    let name = format!("pallet-multiplatform-test:{}", std::process::id());
    store.pallet().args(["tag", "busybox:latest", &name]).ok();
    let named = store.path("named.tar");
    store
        .pallet()
        .args(["save", "-o"])
        .arg(&named)
        .arg(&name)
        .ok();
    let loaded = Command::new(docker)
        .arg("load")
        .arg("-i")
        .arg(&named)
        .output()
        .unwrap();
    let arch = Command::new(docker)
        .args(["image", "inspect", "--format", "{{.Architecture}}", &name])
        .output()
        .unwrap();
    // Not left in a daemon the test did not start.
    let _ = Command::new(docker).args(["rmi", &name]).output();
    assert!(loaded.status.success(), "{}", text(&loaded.stderr));
    assert_eq!(text(&arch.stdout).trim(), "amd64");
}

#[test]
fn two_platform_push_round_trips_through_a_registry() {
    let Some(store) = store("two-platform push") else {
        return;
    };
    let Some((reg, _env)) = registry_and_env(Config::plain()) else {
        return;
    };
    let ctx = files::context(&store.path("ctx"), ML, &[]);
    let target = format!("{}/team/ml:1", reg.host());
    let metadata = store.path("metadata.json");
    store
        .pallet()
        .args([
            "build",
            "--progress",
            "plain",
            "--platform",
            BOTH,
            "--push",
            "-t",
            &target,
        ])
        .arg("--metadata-file")
        .arg(&metadata)
        .args(["--annotation", "index:org.example.pushed=yes"])
        .arg(&ctx)
        .succeeds();
    let index = skopeo_raw(&format!("docker://{target}"));
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    assert_eq!(index["annotations"]["org.example.pushed"], "yes", "{index}");
    // --metadata-file names the pushed index, as the registry serves it.
    let raw = ok(Command::new("skopeo").args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{target}"),
    ]));
    let served = testkit::digest::sha256(raw.as_bytes());
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&metadata).unwrap()).unwrap();
    assert_eq!(meta["containerimage.digest"], served, "{meta}");
    assert_eq!(
        meta["containerimage.descriptor"]["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    assert_eq!(platforms_of(&index), ["linux/amd64", "linux/arm64"]);
    // Each child is there by digest, with its platform's config.
    for (m, arch) in index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .zip(["amd64", "arm64"])
    {
        let child = format!(
            "docker://{}/team/ml@{}",
            reg.host(),
            m["digest"].as_str().unwrap()
        );
        let inspected = ok(Command::new("skopeo").args([
            "inspect",
            "--tls-verify=false",
            "--override-arch",
            arch,
            &child,
        ]));
        let v: serde_json::Value = serde_json::from_str(inspected.trim()).unwrap();
        assert_eq!(v["Architecture"], arch, "{inspected}");
    }
    // A fresh store builds FROM the pushed index for both platforms: each platform's pull picks
    // its manifest, and the tag keeps both.
    let fresh = Store::empty(pallet!());
    let from = files::context(
        &fresh.path("ctx"),
        &format!("FROM {target}\nRUN cat /arch > /seen\n"),
        &[],
    );
    let dest = fresh.path("local");
    fresh
        .pallet()
        .args(["build", "--progress", "plain", "--platform", BOTH, "-o"])
        .arg(format!("type=local,dest={}", dest.display()))
        .arg(&from)
        .succeeds();
    let seen = |p: &str| std::fs::read_to_string(dest.join(p).join("seen")).unwrap();
    assert_eq!(seen("linux_arm64"), "aarch64\n");
    assert_eq!(seen("linux_amd64"), "x86_64\n");
    let images = fresh.pallet().arg("images").ok();
    assert!(images.contains("linux/amd64,linux/arm64"), "{images}");

    // Docker's manifest list with --push-format docker.
    let docker_target = format!("{}/team/ml:docker", reg.host());
    store
        .pallet()
        .args([
            "build",
            "--platform",
            BOTH,
            "--push-format",
            "docker",
            "--push",
            "-t",
        ])
        .arg(&docker_target)
        .arg(&ctx)
        .succeeds();
    let list = skopeo_raw(&format!("docker://{docker_target}"));
    assert_eq!(
        list["mediaType"],
        "application/vnd.docker.distribution.manifest.list.v2+json"
    );
    assert_eq!(platforms_of(&list), ["linux/amd64", "linux/arm64"]);
}

#[test]
fn pulls_pick_the_platform_and_variant_from_an_index() {
    let Some(store) = store("pulls by platform and variant") else {
        return;
    };
    let Some((reg, _env)) = registry_and_env(Config::plain()) else {
        return;
    };
    // A third platform with a variant (the amd64 tree, labelled: it is only pulled, not run).
    store
        .pallet()
        .stdin(testkit::busybox::Rootfs::new().tar())
        .args([
            "import",
            "-",
            "-t",
            "busybox:latest",
            "--platform",
            "linux/arm/v7",
        ])
        .arg("--append")
        .ok();
    let target = format!("{}/base/busybox:3", reg.host());
    store
        .pallet()
        .args(["push", "busybox:latest", &target])
        .ok();
    let index = skopeo_raw(&format!("docker://{target}"));
    assert_eq!(
        platforms_of(&index),
        ["linux/amd64", "linux/arm64", "linux/arm"]
    );
    assert_eq!(index["manifests"][2]["platform"]["variant"], "v7");

    let fresh = Store::empty(pallet!());
    let pull = |platform: &str| {
        fresh
            .pallet()
            .args(["pull", "--platform", platform, &target])
            .ok();
        fresh
            .pallet()
            .args(["inspect", "--format", "json", &target])
            .ok()
    };
    let v7: serde_json::Value = serde_json::from_str(&pull("linux/arm/v7")).unwrap();
    assert_eq!(v7["config"]["architecture"], "arm");
    assert_eq!(v7["config"]["variant"], "v7");
    // arm64/v8 is arm64 (containerd's normalisation); the tag now holds both platforms.
    let both: serde_json::Value = serde_json::from_str(&pull("linux/arm64/v8")).unwrap();
    let platforms: Vec<&str> = both["platforms"]
        .as_array()
        .unwrap_or_else(|| panic!("no platforms: {both}"))
        .iter()
        .map(|p| p["platform"].as_str().unwrap())
        .collect();
    assert_eq!(platforms, ["linux/arm/v7", "linux/arm64"]);
    let images = fresh.pallet().arg("images").ok();
    assert!(images.contains("linux/arm/v7,linux/arm64"), "{images}");
    let wrong = fresh
        .pallet()
        .args(["pull", "--platform", "linux/arm/v6", &target])
        .fails();
    let err = text(&wrong.stderr);
    assert!(err.contains("linux/arm/v6"), "{err}");
}

#[test]
fn cross_compilation_idiom_runs_the_native_stage_once_per_target_without_emulation() {
    let Some(store) = store("cross-compilation idiom") else {
        return;
    };
    let dockerfile = "FROM --platform=$BUILDPLATFORM busybox AS build
RUN echo toolchain > /toolchain
ARG TARGETARCH
RUN echo \"built on $(uname -m) for $TARGETARCH\" > /out
FROM busybox
COPY --from=build /out /out
";
    let ctx = files::context(&store.path("ctx"), dockerfile, &[]);
    let dest = store.path("local");
    let out = store
        .pallet()
        .args(["build", "--progress", "json", "--platform", BOTH, "-o"])
        .arg(format!("type=local,dest={}", dest.display()))
        .arg(&ctx)
        .succeeds();
    let ev = events(&out.stderr);
    // The step before ARG TARGETARCH is the same for both targets: it runs once.
    assert_eq!(
        about(&ev, "step.started", "RUN echo toolchain").len(),
        1,
        "{ev:?}"
    );
    // The compile step runs once per target, natively.
    let compiles = about(&ev, "step.started", "RUN echo \"built on");
    let names: Vec<&str> = compiles
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(
        names.iter().any(|n| n.starts_with("[linux/arm64 build")),
        "{names:?}"
    );
    let emulated = about(&ev, "step.log", "")
        .into_iter()
        .filter(|e| {
            e["line"]
                .as_str()
                .is_some_and(|l| l.starts_with("#emulated"))
        })
        .count();
    assert_eq!(emulated, 0, "no step needed emulation: {ev:?}");
    // One directory per platform, as buildx writes them.
    let read = |p: &str| std::fs::read_to_string(dest.join(p).join("out")).unwrap();
    assert_eq!(read("linux_arm64"), "built on x86_64 for arm64\n");
    assert_eq!(read("linux_amd64"), "built on x86_64 for amd64\n");
}

#[test]
fn a_missing_qemu_handler_is_a_clear_error_before_any_step() {
    let Some(store) = store("missing QEMU handler") else {
        return;
    };
    let empty = tempfile::tempdir().unwrap();
    let ctx = files::context(&store.path("ctx"), ML, &[]);
    let out = store
        .pallet()
        .env("PALLET_BINFMT_DIR", empty.path())
        .args(["build", "--progress", "plain", "--platform", BOTH])
        .arg(&ctx)
        .fails();
    let err = text(&out.stderr);
    assert!(err.contains("linux/arm64"), "{err}");
    assert!(err.contains("qemu-user-static"), "{err}");
    assert!(err.contains("pallet binfmt --install linux/arm64"), "{err}");
    assert!(!err.contains("RUN mkdir"), "no step started: {err}");
    let run = store
        .pallet()
        .env("PALLET_BINFMT_DIR", empty.path())
        .args(["run", "--platform", "linux/arm64", "busybox", "true"])
        .fails();
    let err = text(&run.stderr);
    assert!(err.contains("pallet binfmt --install linux/arm64"), "{err}");
}

#[test]
fn the_index_digest_is_the_same_across_runs_and_stores_with_source_date_epoch() {
    let Some(a) = store("reproducible index") else {
        return;
    };
    let b = Store::busybox_multiplatform(pallet!());
    let index_of = |store: &Store| {
        let ctx = files::context(&store.path("ctx"), ML, &[]);
        let dest = store.path("layout");
        store
            .pallet()
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .args(["build", "--platform", BOTH, "-o"])
            .arg(format!("type=oci,tar=false,dest={}", dest.display()))
            .arg(&ctx)
            .succeeds();
        std::fs::read_to_string(dest.join("index.json")).unwrap()
    };
    let first = index_of(&a);
    assert!(
        first.contains("application/vnd.oci.image.index.v1+json"),
        "{first}"
    );
    let other = index_of(&b);
    let diff = || {
        let o = Command::new("diff")
            .arg("-r")
            .arg(a.path("layout"))
            .arg(b.path("layout"))
            .output()
            .unwrap();
        text(&o.stdout)
    };
    assert_eq!(
        first,
        other,
        "another store gives another index: {}",
        diff()
    );
    assert_eq!(first, index_of(&a), "a second run gives another index");
}

/// Emulated RUN steps need nothing of root mode: binfmt_misc's F flag opens the interpreter
/// when the handler is registered, so a step chrooted into a plain tree (`--isolation chroot`)
/// and one in pallet's user namespace (rootless, as a user with subordinate ids) both run
/// arm64 binaries, with the same image as root mode's.
#[test]
fn emulated_steps_run_in_chroot_and_rootless_modes() {
    let Some(store) = store("emulation under chroot and rootless isolation") else {
        return;
    };
    if !require(
        "emulation under rootless isolation",
        &[Tool("newuidmap"), Tool("newgidmap"), Tool("useradd")],
    ) {
        return;
    }
    let dockerfile = "FROM busybox\nRUN uname -m > /m && echo done >> /m\n";
    let ctx = files::context(&store.path("ctx"), dockerfile, &[]);
    // Builds for arm64 in `mode`; the image digest, after checking the step ran emulated.
    let build = |pallet: testkit::Pallet, ctx: &Path, mode: &str, dest: &Path| {
        let out = pallet
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .args(["build", "--progress", "plain", "--platform", "linux/arm64"])
            .args(["--isolation", mode, "-t", "t:1", "-o"])
            .arg(format!("type=local,dest={}", dest.display()))
            .arg(ctx)
            .output();
        let log = text(&out.stderr);
        assert!(out.status.success(), "{mode}: {log}");
        assert!(log.contains("#emulated linux/arm64"), "{mode}: {log}");
        let m = std::fs::read_to_string(dest.join("m")).unwrap();
        assert_eq!(m, "aarch64\ndone\n", "{mode}: {log}");
        testkit::progress::built_digest(&log)
    };
    let root = build(store.pallet(), &ctx, "root", &store.path("root-out"));
    let chroot_store = Store::busybox_multiplatform(pallet!());
    let chroot = build(
        chroot_store.pallet(),
        &ctx,
        "chroot",
        &chroot_store.path("out"),
    );
    assert_eq!(
        chroot, root,
        "chroot mode's arm64 image differs from root mode's"
    );

    // Rootless: the user's own store, the same two-platform base imported by the user.
    let user = testkit::user::TestUser::with_subids();
    let pallet = user
        .pallet(pallet!())
        .env("SOURCE_DATE_EPOCH", "1700000000");
    for (platform, rootfs) in [
        ("linux/amd64", testkit::busybox::Rootfs::new()),
        ("linux/arm64", testkit::busybox::Rootfs::arm64()),
    ] {
        pallet
            .clone()
            .stdin(rootfs.tar())
            .args([
                "import",
                "-",
                "-t",
                "busybox:latest",
                "--platform",
                platform,
            ])
            .arg("--append")
            .ok();
    }
    let user_ctx = user.give(&ctx, "ctx");
    let home = user_ctx.parent().unwrap().to_path_buf();
    let rootless = build(pallet, &user_ctx, "rootless", &home.join("out"));
    assert_eq!(
        rootless, root,
        "rootless mode's arm64 image differs from root mode's"
    );
}

/// A remote cache serves a multi-platform build, as buildx's `--cache-to type=registry` with
/// `--platform a,b`: runner A builds both platforms and exports (`mode=max`), runner B (a
/// fresh store with the same base) takes every step of both platforms from the registry and
/// makes A's index; `mode=min` keeps each platform's image steps; `type=inline` rides in every
/// platform's pushed manifest and is read back from the index.
#[test]
fn a_registry_cache_serves_every_platform_on_a_fresh_runner() {
    let Some(a) = store("two-platform remote cache") else {
        return;
    };
    let Some((reg, _env)) = registry_and_env(Config::plain()) else {
        return;
    };
    let ctx = files::context(&a.path("ctx"), ML, &[]);
    let target = format!("{}/team/ml:1", reg.host());
    let cache = format!("type=registry,ref={}/team/ml:cache", reg.host());
    let build = |store: &Store, extra: &[&str]| {
        let out = store
            .pallet()
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .args(["build", "--progress", "plain", "--platform", BOTH])
            .args(extra)
            .arg(&ctx)
            .output();
        let log = text(&out.stderr);
        assert!(out.status.success(), "{log}");
        log
    };
    let cache_to = format!("{cache},mode=max");
    let first = build(&a, &["--push", "-t", &target, "--cache-to", &cache_to]);
    assert!(first.contains("#emulated linux/arm64"), "{first}");

    let b = Store::busybox_multiplatform(pallet!());
    let log = build(&b, &["-t", "ml:1", "--cache-from", &cache]);
    // Four steps: each stage's RUN or COPY for each platform, none run here.
    assert!(log.contains(", 0 misses"), "a step ran on runner B:\n{log}");
    for step in [
        "[linux/amd64 deps 2/2] RUN",
        "[linux/arm64 deps 2/2] RUN",
        "[linux/arm64 stage-1 3/3] RUN",
    ] {
        let line = log.lines().position(|l| l.contains(step));
        let line = line.unwrap_or_else(|| panic!("no {step}:\n{log}"));
        let rest: Vec<&str> = log.lines().skip(line).take(4).collect();
        assert!(
            rest.iter()
                .any(|l| l.contains("CACHED (from type=registry")),
            "{step} not from the registry cache:\n{log}"
        );
    }
    assert!(
        !log.contains("#emulated"),
        "an emulated step ran on runner B:\n{log}"
    );
    assert_eq!(
        testkit::progress::built_digest(&log),
        testkit::progress::built_digest(&first),
        "runner B made another index"
    );

    // mode=min: each platform's image steps (not only the first platform's); the deps
    // stage's RUN is in no image, so a fresh runner runs it.
    let min = format!("type=registry,ref={}/team/ml:min", reg.host());
    build(
        &a,
        &["-t", "ml:1", "--cache-to", &format!("{min},mode=min")],
    );
    let c = Store::busybox_multiplatform(pallet!());
    let log = build(&c, &["-t", "ml:1", "--cache-from", &min]);
    let step_log = |step: &str| -> String {
        let at = log.lines().position(|l| l.contains(step));
        let at = at.unwrap_or_else(|| panic!("no {step}:\n{log}"));
        log.lines().skip(at).take(4).collect::<Vec<_>>().join("\n")
    };
    for step in [
        "[linux/amd64 stage-1 3/3] RUN",
        "[linux/arm64 stage-1 3/3] RUN",
    ] {
        assert!(
            step_log(step).contains("CACHED (from type=registry"),
            "{step} not from the mode=min cache:\n{log}"
        );
    }
    assert!(
        !step_log("[linux/arm64 deps 2/2] RUN").contains("CACHED"),
        "mode=min exported a step in no image:\n{log}"
    );
    assert_eq!(
        testkit::progress::built_digest(&log),
        testkit::progress::built_digest(&first)
    );

    // type=inline: every platform's manifest carries the cache of the image's steps; a fresh
    // store reads it from the pushed index.
    let inline_target = format!("{}/team/ml:inline", reg.host());
    build(
        &a,
        &["--push", "-t", &inline_target, "--cache-to", "type=inline"],
    );
    let pushed = skopeo_raw(&format!("docker://{inline_target}"));
    for m in pushed["manifests"].as_array().unwrap() {
        let child = skopeo_raw(&format!(
            "docker://{}/team/ml@{}",
            reg.host(),
            m["digest"].as_str().unwrap()
        ));
        assert!(
            child["annotations"]["dev.pallet.cache.v1"].is_string(),
            "no inline cache in {child}"
        );
    }
    let d = Store::busybox_multiplatform(pallet!());
    let log = build(&d, &["-t", "ml:1", "--cache-from", &inline_target]);
    for step in [
        "[linux/amd64 stage-1 3/3] RUN",
        "[linux/arm64 stage-1 3/3] RUN",
    ] {
        let at = log.lines().position(|l| l.contains(step));
        let at = at.unwrap_or_else(|| panic!("no {step}:\n{log}"));
        let rest = log.lines().skip(at).take(4).collect::<Vec<_>>().join("\n");
        assert!(
            rest.contains("CACHED (from type=registry"),
            "{step} not from the inline cache:\n{log}"
        );
    }
    assert_eq!(
        testkit::progress::built_digest(&log),
        testkit::progress::built_digest(&first)
    );
}

/// `--annotation manifest[PLATFORM]:K=V` (buildx's qualifier) annotates that platform's
/// manifest only, in an OCI layout and in a push; unqualified annotations go on every
/// platform's; a one-platform build takes the qualified annotations for its own platform and
/// drops the others; an index annotation is taken where attestations make an index.
#[test]
fn platform_qualified_annotations_go_on_that_platforms_manifest() {
    let Some(store) = store("platform-qualified annotations") else {
        return;
    };
    let Some((reg, _env)) = registry_and_env(Config::plain()) else {
        return;
    };
    let ctx = files::context(&store.path("ctx"), ML, &[]);
    let notes = [
        "--annotation",
        "org.example.all=yes",
        "--annotation",
        "manifest[linux/arm64/v8]:org.example.arch=arm",
        "--annotation",
        "manifest[linux/amd64]:org.example.arch=amd",
        "--annotation",
        "index:org.example.index=1",
    ];
    // The manifests of an index, by platform, as (annotations) JSON.
    let by_platform = |index: &serde_json::Value, read: &dyn Fn(&str) -> serde_json::Value| {
        let mut out = std::collections::BTreeMap::new();
        for m in index["manifests"].as_array().unwrap() {
            let p = format!(
                "{}/{}",
                m["platform"]["os"].as_str().unwrap(),
                m["platform"]["architecture"].as_str().unwrap()
            );
            let manifest = read(m["digest"].as_str().unwrap());
            out.insert(p, manifest["annotations"].clone());
        }
        out
    };
    let layout = store.path("layout");
    let target = format!("{}/team/ml:notes", reg.host());
    store
        .pallet()
        .args(["build", "--platform", BOTH, "--push", "-t", &target, "-o"])
        .arg(format!("type=oci,tar=false,dest={}", layout.display()))
        .args(notes)
        .arg(&ctx)
        .succeeds();
    let oci = testkit::oci_layout::Layout::new(&layout);
    let index = oci.json_blob(oci.index()["manifests"][0]["digest"].as_str().unwrap());
    assert_eq!(index["annotations"]["org.example.index"], "1", "{index}");
    let pushed_index = skopeo_raw(&format!("docker://{target}"));
    assert_eq!(pushed_index["annotations"]["org.example.index"], "1");
    let pushed = |digest: &str| skopeo_raw(&format!("docker://{}/team/ml@{digest}", reg.host()));
    for seen in [
        by_platform(&index, &|d| oci.json_blob(d)),
        by_platform(&pushed_index, &pushed),
    ] {
        assert_eq!(seen["linux/arm64"]["org.example.arch"], "arm", "{seen:?}");
        assert_eq!(seen["linux/amd64"]["org.example.arch"], "amd", "{seen:?}");
        assert_eq!(seen["linux/arm64"]["org.example.all"], "yes", "{seen:?}");
        assert_eq!(seen["linux/amd64"]["org.example.all"], "yes", "{seen:?}");
    }

    // One platform: its own qualified annotation applies, the other platform's does not.
    let one = store.path("one");
    store
        .pallet()
        .args([
            "build",
            "--platform",
            "linux/arm64",
            "--provenance",
            "true",
            "-o",
        ])
        .arg(format!("type=oci,tar=false,dest={}", one.display()))
        .args(notes)
        .arg(&ctx)
        .succeeds();
    let oci = testkit::oci_layout::Layout::new(&one);
    let index = oci.json_blob(oci.index()["manifests"][0]["digest"].as_str().unwrap());
    assert_eq!(index["annotations"]["org.example.index"], "1", "{index}");
    let arm = by_platform(&index, &|d| oci.json_blob(d))["linux/arm64"].clone();
    assert_eq!(arm["org.example.arch"], "arm", "{arm}");
    assert_eq!(arm["org.example.all"], "yes", "{arm}");
}
