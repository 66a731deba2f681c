//! `--cache-to` / `--cache-from` (issue 17): a build cache carried between runners through a
//! real `docker-registry` on 127.0.0.1 or an OCI layout directory. Runner A builds with one
//! store and exports; runner B, with a fresh store, imports: every step comes from the cache,
//! its image is A's, and its push downloads no layer bytes (counted at a proxy in front of
//! the registry). A cache that is missing, refused, damaged or of another kind is one warning
//! and a normal build.
//!
//! Needs root, runc, skopeo, busybox-static, docker-registry and htpasswd (as registry_e2e).

use crate::registry_e2e::{registry_and_env, Env};
use std::path::Path;
use testkit::docker_registry::{Config, FaultProxy};
use testkit::progress::built_digest;
use testkit::run::printed;

/// Two stages on `base`: the build stage's steps are in the cache only with mode=max.
fn dockerfile(base: &str) -> String {
    format!(
        "FROM {base} AS build\nCOPY a /a\nRUN cat /a > /a2 && echo built >> /a2\n\
         FROM {base}\nCOPY --from=build /a2 /a2\nCOPY b /b\nRUN cat /a2 /b > /out\n"
    )
}
/// Steps (not sources) of [`dockerfile`].
const STEPS: usize = 5;

/// A context with [`dockerfile`] on busybox, `a` and `b` (whose text is `b`).
pub(crate) fn context(env: &Env, name: &str, b: &str) -> String {
    context_on(env, name, b, "busybox")
}

fn context_on(env: &Env, name: &str, b: &str, base: &str) -> String {
    let dir = env.tmp.path().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("Dockerfile"), dockerfile(base)).unwrap();
    std::fs::write(dir.join("a"), "a\n").unwrap();
    std::fs::write(dir.join("b"), b).unwrap();
    dir.to_str().unwrap().to_string()
}

/// Imports the same busybox as `busybox:latest` into store `root` (the same tar name and
/// time: the same image digest in every store, as a registry would serve it).
pub(crate) fn with_base(env: &Env, root: &str) {
    let tar = env.tmp.path().join("base.tar");
    if !tar.exists() {
        testkit::busybox::Rootfs::new().write_tar(&tar);
    }
    env.pallet(root)
        .current_dir(env.tmp.path())
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .args(["import", "base.tar", "-t", "busybox:latest"])
        .ok();
}

pub(crate) fn build(env: &Env, root: &str, ctx: &str, extra: &[&str]) -> String {
    let mut args = vec!["build", "--progress", "plain"];
    args.extend_from_slice(extra);
    args.push(ctx);
    printed(&env.pallet(root).args(&args).succeeds())
}

/// [`build`] with SOURCE_DATE_EPOCH: the same image from any store at any time.
fn build_at_epoch(env: &Env, root: &str, ctx: &str, extra: &[&str]) -> String {
    let mut args = vec!["build", "--progress", "plain"];
    args.extend_from_slice(extra);
    args.push(ctx);
    let pallet = env.pallet(root).env("SOURCE_DATE_EPOCH", "1700000000");
    printed(&pallet.args(&args).succeeds())
}

pub(crate) fn remote_hits(log: &str) -> usize {
    log.matches("CACHED (from").count()
}

/// The records of the cache in layout `dir` (index.json -> manifest -> config), read here
/// without pallet.
fn layout_records(dir: &Path) -> usize {
    let read = |d: &str| {
        let hex = d.strip_prefix("sha256:").unwrap();
        std::fs::read(dir.join("blobs/sha256").join(hex)).unwrap()
    };
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let manifest: serde_json::Value =
        serde_json::from_slice(&read(index["manifests"][0]["digest"].as_str().unwrap())).unwrap();
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.pallet.cache.config.v1+json"
    );
    let config: serde_json::Value =
        serde_json::from_slice(&read(manifest["config"]["digest"].as_str().unwrap())).unwrap();
    config["records"].as_array().unwrap().len()
}

#[test]
fn local_cache_round_trips_and_min_exports_fewer_steps_than_max() {
    let Some((_reg, env)) = registry_and_env(Config::plain()) else {
        return;
    };
    let min = env.tmp.path().join("cache-min");
    let max = env.tmp.path().join("cache-max");
    let ctx = context(&env, "ctx", "b\n");
    with_base(&env, "a");
    let a = build(
        &env,
        "a",
        &ctx,
        &[
            "-t",
            "app:1",
            "--cache-to",
            &format!("type=local,dest={}", min.display()),
            "--cache-to",
            &format!("type=local,dest={},mode=max", max.display()),
        ],
    );
    assert!(a.contains("exporting cache"), "{a}");
    let (min_records, max_records) = (layout_records(&min), layout_records(&max));
    assert_eq!(max_records, STEPS, "mode=max: every step");
    assert_eq!(min_records, 3, "mode=min: the final stage's steps");

    // A fresh store with max: every step from the cache, the same image.
    with_base(&env, "b");
    let from_max = format!("type=local,src={}", max.display());
    let b = build(&env, "b", &ctx, &["-t", "app:1", "--cache-from", &from_max]);
    assert_eq!(remote_hits(&b), STEPS, "{b}");
    assert!(b.contains("CACHED (from type=local"), "{b}");
    assert_eq!(built_digest(&b), built_digest(&a), "{a}\n{b}");
    assert!(!b.contains("fetch layer"), "no layer needed: {b}");
    // Its layers are the cache's, not the store's: saving it says where they are.
    let save = env
        .pallet("b")
        .args(["save", "app:1", "-o"])
        .arg(env.tmp.path().join("saved.tar"))
        .fails();
    let said = printed(&save);
    assert!(
        said.contains("in the build cache at") && said.contains("--cache-from"),
        "{said}"
    );

    // With min: the build stage runs, the final stage comes from the cache, same image.
    with_base(&env, "c");
    let from_min = format!("type=local,src={}", min.display());
    let c = build(&env, "c", &ctx, &["-t", "app:1", "--cache-from", &from_min]);
    assert_eq!(remote_hits(&c), 3, "{c}");
    assert_eq!(built_digest(&c), built_digest(&a));

    // A changed file: the steps after it run on the cache's layers (fetched then), and the
    // output has the new file.
    with_base(&env, "d");
    let out = env.tmp.path().join("out-d");
    let ctx2 = context(&env, "ctx2", "b2\n");
    let d = build(
        &env,
        "d",
        &ctx2,
        &[
            "--cache-from",
            &from_max,
            "-o",
            &format!("type=local,dest={}", out.display()),
        ],
    );
    assert_eq!(
        remote_hits(&d),
        STEPS - 2,
        "COPY b and the RUN after it run: {d}"
    );
    assert!(d.contains("fetch layer"), "{d}");
    assert_eq!(
        std::fs::read_to_string(out.join("out")).unwrap(),
        "a\nbuilt\nb2\n"
    );
}

#[test]
fn fresh_runner_takes_every_step_from_the_registry_and_pushes_without_downloading_layers() {
    let Some((reg, env)) = registry_and_env(Config::plain()) else {
        return;
    };
    // Every request passes through this proxy, which logs it.
    let proxy = FaultProxy::start(&reg.host(), Vec::new());
    let host = proxy.host();
    let cache = format!("{host}/team/cache:main");
    // The base comes from the registry, as on a CI runner.
    with_base(&env, "a");
    let base = format!("{host}/base/busybox:1");
    env.pallet("a")
        .args(["push", "busybox:latest", &base])
        .succeeds();
    let ctx = context_on(&env, "ctx", "b\n", &base);
    let a = build(
        &env,
        "a",
        &ctx,
        &[
            "-t",
            &format!("{host}/team/app:1"),
            "--push",
            "--cache-to",
            &format!("type=registry,ref={cache},mode=max"),
        ],
    );
    assert!(a.contains("bytes uploaded"), "{a}");
    let pushed = |log: &str, name: &str| -> String {
        let at = log
            .find(&format!("pushed {name}@"))
            .unwrap_or_else(|| panic!("{log}"));
        log[at..]
            .split_whitespace()
            .nth(1)
            .unwrap()
            .split('@')
            .nth(1)
            .unwrap()
            .to_string()
    };
    let a_digest = pushed(&a, &format!("{host}/team/app:1"));

    // Runner B: an empty store.
    let before = proxy.requests().len();
    let b = build(
        &env,
        "b",
        &ctx,
        &[
            "-t",
            &format!("{host}/team/app2:2"),
            "--push",
            "--cache-from",
            &format!("type=registry,ref={cache}"),
        ],
    );
    let seen: Vec<String> = proxy.requests()[before..].to_vec();
    assert_eq!(remote_hits(&b), STEPS, "{b}");
    assert!(
        b.contains(&format!("CACHED (from type=registry ref={cache})")),
        "{b}"
    );
    assert!(
        b.contains("manifest and config only"),
        "the base is not pulled: {b}"
    );
    assert_eq!(
        pushed(&b, &format!("{host}/team/app2:2")),
        a_digest,
        "{a}\n{b}"
    );
    assert!(!b.contains("compressing"), "nothing compressed: {b}");
    // No layer bytes: the blobs B GETs are the cache's config and the base's config.
    let raw = |reference: &str| -> serde_json::Value {
        let raw = testkit::run::ok(std::process::Command::new("skopeo").args([
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{}/{reference}", reg.host()),
        ]));
        serde_json::from_str(raw.trim()).unwrap()
    };
    let configs: Vec<String> = ["team/cache:main", "base/busybox:1"]
        .iter()
        .map(|r| raw(r)["config"]["digest"].as_str().unwrap().to_string())
        .collect();
    let blob_gets: Vec<&String> = seen
        .iter()
        .filter(|r| r.starts_with("GET") && r.contains("/blobs/"))
        .collect();
    assert_eq!(blob_gets.len(), 2, "{blob_gets:?}\n{b}");
    assert!(
        blob_gets
            .iter()
            .all(|g| configs.iter().any(|c| g.ends_with(c.as_str()))),
        "only configs: {blob_gets:?} {configs:?}"
    );
    // Layers are mounted from the cache's or the base's repository; the one blob uploaded
    // is the image config (a few hundred bytes, made by this build).
    let config = raw("team/app2:2")["config"]["digest"]
        .as_str()
        .unwrap()
        .replace(':', "%3A");
    let uploads: Vec<&String> = seen
        .iter()
        .filter(|r| r.starts_with("PATCH") || (r.starts_with("PUT") && r.contains("/blobs/")))
        .collect();
    assert!(
        uploads.len() <= 1 && uploads.iter().all(|r| r.contains(&config)),
        "only the image config uploaded: {uploads:?}"
    );
    assert!(b.contains(" mounted"), "{b}");

    // The store knows B's layers by descriptor: the doctor counts them as here, a prune keeps
    // them, and a later push of the image still moves no layer bytes.
    let doctor = printed(&env.pallet("b").args(["doctor"]).succeeds());
    assert!(doctor.contains("the index is healthy"), "{doctor}");
    env.pallet("b").args(["prune"]).succeeds();
    let before = proxy.requests().len();
    let again = printed(
        &env.pallet("b")
            .args([
                "push",
                &format!("{host}/team/app2:2"),
                &format!("{host}/team/app3:3"),
            ])
            .succeeds(),
    );
    let seen: Vec<String> = proxy.requests()[before..].to_vec();
    assert!(
        !seen
            .iter()
            .any(|r| r.starts_with("GET") && r.contains("/blobs/")),
        "{seen:?}\n{again}"
    );

    // One source file edited, on another empty store: only the steps after it run, on
    // layers fetched then.
    let ctx2 = context_on(&env, "ctx2", "b2\n", &base);
    let c = build(
        &env,
        "c",
        &ctx2,
        &["--cache-from", &format!("type=registry,ref={cache}")],
    );
    assert_eq!(remote_hits(&c), STEPS - 2, "{c}");
    assert!(c.contains("fetch layer"), "{c}");
}

#[test]
fn a_cache_that_cannot_be_used_is_a_warning_and_a_normal_build() {
    let Some((reg, env)) = registry_and_env(Config::plain()) else {
        return;
    };
    let host = reg.host();
    let ctx = context(&env, "ctx", "b\n");
    with_base(&env, "a");
    let app = format!("{host}/team/app:1");
    let normal = build_at_epoch(&env, "a", &ctx, &["-t", &app, "--push"]);
    let digest = built_digest(&normal);

    // Missing, another kind of manifest (an image), a damaged layout, a missing directory.
    let broken = env.tmp.path().join("broken");
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::write(
        broken.join("index.json"),
        "{\"manifests\": [{\"digest\": \"x\"}]}",
    )
    .unwrap();
    let cases = [
        (
            format!("type=registry,ref={host}/team/nothing:here"),
            "no cache there yet",
        ),
        (format!("type=registry,ref={app}"), "not a pallet cache"),
        (format!("type=local,src={}", broken.display()), "warning:"),
        (
            "type=local,src=/nonexistent/cache".to_string(),
            "cannot read",
        ),
    ];
    for (i, (from, says)) in cases.iter().enumerate() {
        let root = format!("r{i}");
        with_base(&env, &root);
        let log = build_at_epoch(&env, &root, &ctx, &["-t", &app, "--cache-from", from]);
        assert!(
            log.contains(says) && log.contains("building without it"),
            "{from}: {log}"
        );
        assert_eq!(log.matches("warning:").count(), 1, "one warning: {log}");
        assert_eq!(built_digest(&log), digest, "{from}: the same image");
    }

    // A layout whose config blob was damaged after export: refused by its digest.
    let cache = env.tmp.path().join("cache");
    build(
        &env,
        "a",
        &ctx,
        &[
            "--cache-to",
            &format!("type=local,dest={}", cache.display()),
        ],
    );
    let manifest = {
        let index: serde_json::Value =
            serde_json::from_slice(&std::fs::read(cache.join("index.json")).unwrap()).unwrap();
        let d = index["manifests"][0]["digest"]
            .as_str()
            .unwrap()
            .to_string();
        let m: serde_json::Value = serde_json::from_slice(
            &std::fs::read(cache.join("blobs/sha256").join(&d[7..])).unwrap(),
        )
        .unwrap();
        m
    };
    let config = manifest["config"]["digest"].as_str().unwrap();
    let config_path = cache.join("blobs/sha256").join(&config[7..]);
    let good_config = std::fs::read(&config_path).unwrap();

    // A layer blob gone (a registry's garbage collection): the keys that need it are not
    // used, with a warning; the others still hit, and the build is good.
    let parsed: serde_json::Value = serde_json::from_slice(&good_config).unwrap();
    let records = parsed["records"].as_array().unwrap();
    let layers = parsed["layers"].as_array().unwrap();
    let uses = |i: usize| {
        records
            .iter()
            .filter(|r| {
                r["layers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|e| e["layer"] == i)
            })
            .count()
    };
    let top = (0..layers.len()).min_by_key(|i| uses(*i)).unwrap();
    let blob = layers[top]["digest"].as_str().unwrap();
    let blob_path = cache.join("blobs/sha256").join(&blob[7..]);
    let kept = std::fs::read(&blob_path).unwrap();
    std::fs::remove_file(&blob_path).unwrap();
    with_base(&env, "y");
    let log = build(
        &env,
        "y",
        &ctx,
        &[
            "--cache-from",
            &format!("type=local,src={}", cache.display()),
        ],
    );
    assert!(log.contains("layers are gone"), "{log}");
    assert_eq!(log.matches("warning:").count(), 1, "{log}");
    assert_eq!(remote_hits(&log), 3 - uses(top), "{log}");
    std::fs::write(&blob_path, kept).unwrap();

    // A damaged config blob: refused by its digest.
    std::fs::write(&config_path, "{\"version\":1}").unwrap();
    with_base(&env, "z");
    let log = build(
        &env,
        "z",
        &ctx,
        &[
            "--cache-from",
            &format!("type=local,src={}", cache.display()),
        ],
    );
    assert!(log.contains("does not match its digest"), "{log}");
    assert_eq!(remote_hits(&log), 0);
}

#[test]
fn an_unauthorized_cache_is_a_warning_and_ignore_error_keeps_a_failed_export_from_failing() {
    let Some((reg, env)) = registry_and_env(Config::htpasswd("ci", "secret")) else {
        return;
    };
    let host = reg.host();
    let ctx = context(&env, "ctx", "b\n");
    with_base(&env, "a");
    let cache = format!("{host}/team/cache:main");
    let log = build(
        &env,
        "a",
        &ctx,
        &[
            "--cache-from",
            &cache,
            "--cache-to",
            &format!("type=registry,ref={cache},ignore-error=true"),
        ],
    );
    assert!(log.contains("building without it"), "{log}");
    assert!(
        log.contains("ignore-error=true: the build goes on"),
        "{log}"
    );
    // Without ignore-error the failed export fails the build, saying how to go on.
    let out = env
        .pallet("a")
        .args([
            "build",
            "--progress",
            "plain",
            "--cache-to",
            &format!("type=registry,ref={cache}"),
            &ctx,
        ])
        .fails();
    let text = printed(&out);
    assert!(
        text.contains("exporting the cache") && text.contains("ignore-error=true"),
        "{text}"
    );
    // Logged in, the same cache works: exported by one store, every step found by another.
    env.pallet("a")
        .args(["login", "-u", "ci", "--password-stdin", &host])
        .stdin("secret\n")
        .succeeds();
    let to = format!("type=registry,ref={cache},mode=max");
    let exported = build(&env, "a", &ctx, &["--cache-to", &to]);
    assert!(exported.contains("bytes uploaded"), "{exported}");
    with_base(&env, "b");
    let imported = build(&env, "b", &ctx, &["--cache-from", &cache]);
    assert_eq!(remote_hits(&imported), STEPS, "{imported}");
    assert!(!imported.contains("warning:"), "{imported}");
}

#[test]
fn two_runners_exporting_to_one_ref_at_once_leave_a_valid_cache() {
    let Some((reg, env)) = registry_and_env(Config::plain()) else {
        return;
    };
    let cache = format!("{}/team/cache:race", reg.host());
    let local = env.tmp.path().join("race-layout");
    let to_registry = format!("type=registry,ref={cache},mode=max");
    let to_local = format!("type=local,dest={},mode=max", local.display());
    // Two runners with different sources: different steps, one ref, one directory.
    let runners: Vec<(String, String)> = ["x", "y"]
        .iter()
        .map(|n| {
            with_base(&env, n);
            (
                n.to_string(),
                context(&env, &format!("ctx-{n}"), &format!("{n}\n")),
            )
        })
        .collect();
    std::thread::scope(|s| {
        for (root, ctx) in &runners {
            let (env, to_registry, to_local) = (&env, &to_registry, &to_local);
            s.spawn(move || {
                build(
                    env,
                    root,
                    ctx,
                    &["--cache-to", to_registry, "--cache-to", to_local],
                )
            });
        }
    });
    // Whichever wrote last, a fresh runner building either context finds a whole cache:
    // every step of the winner's build is cached, and no warning.
    for (i, from) in [
        format!("type=registry,ref={cache}"),
        format!("type=local,src={}", local.display()),
    ]
    .iter()
    .enumerate()
    {
        let mut hits = Vec::new();
        for (n, ctx) in &runners {
            let root = format!("fresh-{i}-{n}");
            with_base(&env, &root);
            let log = build(&env, &root, ctx, &["--cache-from", from]);
            assert!(!log.contains("warning:"), "{from}: {log}");
            assert!(log.contains(&format!("{STEPS} keys")), "{from}: {log}");
            hits.push(remote_hits(&log));
        }
        hits.sort();
        assert_eq!(
            hits,
            [STEPS - 2, STEPS],
            "{from}: one runner's cache, whole"
        );
    }
}

#[test]
fn an_inline_cache_rides_in_the_pushed_manifest_and_is_read_from_the_image() {
    let Some((reg, env)) = registry_and_env(Config::plain()) else {
        return;
    };
    let host = reg.host();
    let app = format!("{host}/team/app:inline");
    let ctx = context(&env, "ctx", "b\n");
    with_base(&env, "a");
    let a = build(
        &env,
        "a",
        &ctx,
        &["-t", &app, "--push", "--cache-to", "type=inline"],
    );
    let raw = testkit::run::ok(std::process::Command::new("skopeo").args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{app}"),
    ]));
    let manifest: serde_json::Value = serde_json::from_str(raw.trim()).unwrap();
    let inline = manifest["annotations"]["dev.pallet.cache.v1"]
        .as_str()
        .unwrap_or_else(|| panic!("{raw}\n{a}"));
    let config: serde_json::Value = serde_json::from_str(inline).unwrap();
    assert_eq!(
        config["records"].as_array().unwrap().len(),
        3,
        "min: {inline}"
    );
    // A fresh store reads it from the image itself: the final stage's steps are cached.
    with_base(&env, "b");
    let b = build(&env, "b", &ctx, &["-t", &app, "--cache-from", &app]);
    assert_eq!(remote_hits(&b), 3, "{b}");
    assert!(!b.contains("warning:"), "{b}");
    // Without a push there is nowhere for it to go.
    let out = env
        .pallet("a")
        .args([
            "build",
            "--progress",
            "plain",
            "--cache-to",
            "type=inline",
            &ctx,
        ])
        .fails();
    assert!(printed(&out).contains("needs --push"), "{}", printed(&out));
}

/// A Dockerfile whose last step is `COPY b <dest>` on a RUN layer that has /app (0750, owned
/// 1000:1001) with src/, data/old and a symlink link -> /tmp.
fn copy_last(base: &str, dest: &str) -> String {
    format!(
        "FROM {base}\nRUN mkdir -p /app/src /app/data && echo old > /app/data/old && \
         ln -s /tmp /app/link && chown 1000:1001 /app && chmod 750 /app\nCOPY b {dest}\n"
    )
}

fn copy_context(env: &Env, name: &str, b: &str, base: &str, dest: &str) -> String {
    let dir = env.tmp.path().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("Dockerfile"), copy_last(base, dest)).unwrap();
    std::fs::write(dir.join("b"), b).unwrap();
    dir.to_str().unwrap().to_string()
}

/// The layers of cache config `config` that carry a path index: (layer digest, index digest).
fn path_indexes(config: &serde_json::Value) -> Vec<(String, String)> {
    config["layers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| !l["pathIndex"].is_null())
        .map(|l| {
            (
                l["digest"].as_str().unwrap().to_string(),
                l["pathIndex"]["digest"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn an_edited_copy_on_a_fresh_runner_reads_path_indexes_instead_of_the_layers() {
    let Some((reg, env)) = registry_and_env(Config::plain()) else {
        return;
    };
    let proxy = FaultProxy::start(&reg.host(), Vec::new());
    let host = proxy.host();
    let cache = format!("{host}/team/cache:main");
    let layout = env.tmp.path().join("layout-cache");
    with_base(&env, "a");
    let base = format!("{host}/base/busybox:1");
    env.pallet("a")
        .args(["push", "busybox:latest", &base])
        .succeeds();
    // Runner A exports (registry and a layout), then builds the edit itself: the reference.
    let ctx = copy_context(&env, "ctx", "b\n", &base, "/app/src/b");
    let a = build_at_epoch(
        &env,
        "a",
        &ctx,
        &[
            "--cache-to",
            &format!("type=registry,ref={cache},mode=max"),
            "--cache-to",
            &format!("type=local,dest={},mode=max", layout.display()),
        ],
    );
    assert!(a.contains("bytes uploaded"), "{a}");
    let edited = copy_context(&env, "edited", "b2\n", &base, "/app/src/b");
    let a2 = build_at_epoch(
        &env,
        "a",
        &edited,
        &["-t", &format!("{host}/team/app:a"), "--push"],
    );
    let reference = built_digest(&a2);

    // The cache names a path index for each layer (the base's and the RUN's).
    let raw = |reference: &str| -> serde_json::Value {
        let raw = testkit::run::ok(std::process::Command::new("skopeo").args([
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{}/{reference}", reg.host()),
        ]));
        serde_json::from_str(raw.trim()).unwrap()
    };
    let manifest = raw("team/cache:main");
    let index_digests: Vec<String> = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["mediaType"] == "application/vnd.pallet.cache.pathindex.v1+json+gzip")
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        index_digests.len(),
        3,
        "base, RUN and COPY layers: {manifest}"
    );

    // Runner B, a fresh store: the edited COPY runs, and no layer blob is downloaded.
    let before = proxy.requests().len();
    let b = build_at_epoch(
        &env,
        "b",
        &edited,
        &[
            "-t",
            &format!("{host}/team/other:b"),
            "--push",
            "--cache-from",
            &format!("type=registry,ref={cache}"),
            "--cache-to",
            &format!("type=registry,ref={host}/team/cache2:b,mode=max"),
        ],
    );
    let seen: Vec<String> = proxy.requests()[before..].to_vec();
    assert_eq!(remote_hits(&b), 1, "the RUN is cached, the COPY runs: {b}");
    assert!(b.contains("answered from their path indexes"), "{b}");
    assert!(!b.contains("fetch layer"), "{b}");
    assert_eq!(
        built_digest(&b),
        reference,
        "the same image as A's\n{a2}\n{b}"
    );
    let configs: Vec<String> = ["team/cache:main", "base/busybox:1"]
        .iter()
        .map(|r| raw(r)["config"]["digest"].as_str().unwrap().to_string())
        .collect();
    let blob_gets: Vec<&String> = seen
        .iter()
        .filter(|r| r.starts_with("GET") && r.contains("/blobs/"))
        .collect();
    assert!(
        blob_gets.iter().all(|g| configs
            .iter()
            .chain(&index_digests)
            .any(|c| g.ends_with(c.as_str()))),
        "only configs and path indexes: {blob_gets:?}\n{b}"
    );
    assert!(
        blob_gets
            .iter()
            .any(|g| index_digests.iter().any(|c| g.ends_with(c.as_str()))),
        "the path indexes were read: {blob_gets:?}"
    );
    // The lower layers are mounted from the cache's or the base's repository, not uploaded:
    // B uploads its COPY layer and the image config only.
    let uploads = seen
        .iter()
        .filter(|r| r.starts_with("PUT") && r.contains("/v2/team/other/blobs/uploads/"))
        .count();
    assert_eq!(uploads, 2, "{seen:?}\n{b}");
    assert!(b.matches(" mounted").count() >= 2, "{b}");
    // B's own export carries the indexes of the layers it never had (and adds its COPY's).
    let b_indexes = raw("team/cache2:b")["layers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["mediaType"] == "application/vnd.pallet.cache.pathindex.v1+json+gzip")
        .count();
    assert_eq!(b_indexes, 3, "{b}");

    // Cases that do not qualify fall back to fetching the layers, and build correctly.
    for (i, (dest, file)) in [("/app/data/old", "app/data/old"), ("/app/link/b", "tmp/b")]
        .iter()
        .enumerate()
    {
        let ctx = copy_context(&env, &format!("fallback{i}"), "b3\n", &base, dest);
        let out = env.tmp.path().join(format!("out{i}"));
        let log = build(
            &env,
            &format!("fallback-root{i}"),
            &ctx,
            &[
                "--cache-from",
                &format!("type=registry,ref={cache}"),
                "-o",
                &format!("type=local,dest={}", out.display()),
            ],
        );
        assert!(!log.contains("answered from their path indexes"), "{log}");
        assert!(log.contains("fetch layer"), "{dest}: {log}");
        assert_eq!(
            std::fs::read_to_string(out.join(file)).unwrap(),
            "b3\n",
            "{log}"
        );
    }

    // A corrupt path index (in a layout cache): one warning, the layers are fetched, the
    // image is the same.
    let read_json = |d: &str| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(layout.join("blobs/sha256").join(&d[7..])).unwrap())
            .unwrap()
    };
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let m = read_json(index["manifests"][0]["digest"].as_str().unwrap());
    let config = read_json(m["config"]["digest"].as_str().unwrap());
    let indexes = path_indexes(&config);
    assert!(indexes.len() >= 2, "{config}");
    for (_, idx) in &indexes {
        std::fs::write(layout.join("blobs/sha256").join(&idx[7..]), "not an index").unwrap();
    }
    let e = build_at_epoch(
        &env,
        "e",
        &edited,
        &[
            "--cache-from",
            &format!("type=local,src={}", layout.display()),
        ],
    );
    assert_eq!(e.matches("cannot be used").count(), 1, "one warning: {e}");
    assert!(
        e.contains("path index sha256:") && e.contains("does not match its digest"),
        "{e}"
    );
    assert!(e.contains("fetch layer"), "{e}");
    assert_eq!(built_digest(&e), reference, "{e}");
}
