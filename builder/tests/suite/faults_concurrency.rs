//! Concurrency (issue 13): several pallet processes on one store root at once. Each of 3
//! rounds has two phases, every command of a phase started together:
//!
//! 1. 4 builds: two of one Dockerfile (identical: they race for the same steps), two of
//!    others;
//! 2. 2 builds (one the identical Dockerfile again; one new) mixed with `prune`, `tag`, `pull`
//!    (an image of the round from a real docker-registry) and `push` (the round's image to
//!    it). `prune` takes the store's lock exclusively, so it runs before the builds take theirs
//!    or waits for them (and says so); the figures say which it did, and what it deleted.
//!
//! Every command must succeed; identical Dockerfiles give one digest; after each phase the
//! store verifies (`pallet doctor` healthy, every tag's blobs present and hashing to their
//! names), holds no temporaries (`pallet du` says 0B) and has nothing mounted; every image
//! the round made is listed; the pushed tag in the registry names only blobs the registry has.
//!
//! Needs root, runc, busybox-static, docker-registry and sha256sum; fails under CI=true
//! without them.

use super::faults_kit::{
    built_digest, du_temporary, figure, mounts_under, noise, temporaries, verify_store,
};
use registry::Reference;
use std::path::Path;
use std::process::Output;
use testkit::docker_registry::{Config, Registry};
use testkit::files::{context, temp_dir};
use testkit::registry_client::client_for;
use testkit::{pallet, require, text, Need::*, Pallet, Store};

const ROUNDS: usize = 3;

/// A context of its own for `name` in `round`: a RUN that takes a moment (so that the builds
/// overlap), a COPY of 256 KiB of its own bytes, and a RUN over them.
fn make_context(dir: &Path, round: usize, name: &str, seed: u64) -> std::path::PathBuf {
    let ctx = dir.join(format!("ctx-{round}-{name}"));
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("data"), noise(seed, 256 << 10)).unwrap();
    context(
        &ctx,
        &format!(
            "FROM busybox\n\
             RUN echo {name}-{round} > /name && sleep 0.2\n\
             COPY data /data\n\
             RUN md5sum /data > /sum && cat /name >> /sum\n"
        ),
        &[],
    )
}

/// Runs every command at once (one thread each) and returns their outputs in order.
fn all_at_once(commands: &[(String, Pallet)]) -> Vec<Output> {
    std::thread::scope(|scope| {
        let running: Vec<_> = commands
            .iter()
            .map(|(_, p)| scope.spawn(move || p.output()))
            .collect();
        running.into_iter().map(|t| t.join().unwrap()).collect()
    })
}

/// Panics naming every command of `phase` that failed, with what it printed.
fn all_succeeded(phase: &str, commands: &[(String, Pallet)], outputs: &[Output]) {
    let failed: Vec<String> = commands
        .iter()
        .zip(outputs)
        .filter(|(_, o)| !o.status.success())
        .map(|((what, p), o)| {
            format!(
                "{what} ({}): {}\n{}",
                p.describe(),
                o.status,
                testkit::run::printed(o)
            )
        })
        .collect();
    assert!(failed.is_empty(), "{phase}:\n{}", failed.join("\n\n"));
}

/// The registry's `repo_tag`: its manifest digest, once every blob it names is there.
fn registry_tag(reg: &Registry, dir: &Path, repo_tag: &str) -> Result<String, String> {
    let client = client_for(reg, dir);
    let r = Reference::parse(&format!("{}/{repo_tag}", reg.host())).unwrap();
    let m = client.get_manifest(&r).map_err(|e| e.to_string())?;
    let v: serde_json::Value = serde_json::from_slice(&m.bytes).unwrap();
    for b in std::iter::once(&v["config"]).chain(v["layers"].as_array().unwrap()) {
        let d = b["digest"].as_str().unwrap();
        if !client.blob_exists(&r, d).map_err(|e| e.to_string())? {
            return Err(format!(
                "{repo_tag} -> {} names {d}, which is missing",
                m.digest
            ));
        }
    }
    Ok(m.digest)
}

/// The store after a phase: it verifies, holds no temporaries, has nothing mounted.
fn store_is_clean(what: &str, pallet: &Pallet, root: &Path) -> usize {
    let images = verify_store(pallet, root).unwrap_or_else(|e| panic!("{what}: the store: {e}"));
    assert_eq!(temporaries(root), Vec::<String>::new(), "{what}");
    assert_eq!(mounts_under(root), Vec::<String>::new(), "{what}");
    assert_eq!(du_temporary(pallet), "0B", "{what}: pallet du");
    images
}

#[test]
fn builds_at_once_and_mixed_with_prune_tag_pull_and_push_all_succeed_and_verify() {
    if !require(
        "concurrency test",
        &[
            Root,
            Busybox,
            Tool("runc"),
            Tool("docker-registry"),
            Tool("sha256sum"),
        ],
    ) {
        return;
    }
    let Some(reg) = Registry::start(Config::plain()) else {
        return;
    };
    let work = temp_dir("pallet-concurrency");
    std::fs::create_dir_all(work.path().join("docker")).unwrap();
    std::fs::write(work.path().join("pallet-config.json"), "{}").unwrap();
    let env = |p: Pallet| {
        p.env("SOURCE_DATE_EPOCH", "1700000000")
            .env("DOCKER_CONFIG", work.path().join("docker"))
            .env("PALLET_CONFIG", work.path().join("pallet-config.json"))
    };
    let store = Store::busybox(env(pallet!()));
    let root = store.root().to_path_buf();
    let host = reg.host();

    // What the rounds pull: an image per round, built in another store and pushed.
    let source = Store::busybox(env(pallet!()));
    for round in 1..=ROUNDS {
        let ctx = make_context(work.path(), round, "pulled", 900 + round as u64);
        let image = format!("{host}/conc/pulled:{round}");
        source
            .pallet()
            .args(["build", "--progress", "plain", "-t", &image])
            .arg(&ctx)
            .succeeds();
        source.pallet().args(["push", &image]).succeeds();
    }

    let build = |tag: &str, ctx: &Path| -> Pallet {
        store
            .pallet()
            .args(["build", "--progress", "plain", "-t", tag])
            .arg(ctx)
    };
    let mut commands_run = 0;
    let mut prune_waited = 0;
    for round in 1..=ROUNDS {
        let seed = round as u64 * 10;
        let same = make_context(work.path(), round, "same", seed);
        let other1 = make_context(work.path(), round, "other1", seed + 1);
        let other2 = make_context(work.path(), round, "other2", seed + 2);
        let late = make_context(work.path(), round, "late", seed + 3);

        // Phase 1: 4 builds at once, two of them identical.
        let phase1 = [
            (
                format!("build same-{round}a"),
                build(&format!("same-{round}a"), &same),
            ),
            (
                format!("build same-{round}b"),
                build(&format!("same-{round}b"), &same),
            ),
            (
                format!("build other1-{round}"),
                build(&format!("other1-{round}"), &other1),
            ),
            (
                format!("build other2-{round}"),
                build(&format!("other2-{round}"), &other2),
            ),
        ];
        let outs = all_at_once(&phase1);
        let what = format!("round {round}, 4 builds at once");
        all_succeeded(&what, &phase1, &outs);
        let digests: Vec<String> = outs
            .iter()
            .map(|o| {
                built_digest(&text(&o.stderr))
                    .unwrap_or_else(|| panic!("{what}: no digest in {}", text(&o.stderr)))
            })
            .collect();
        assert_eq!(
            digests[0], digests[1],
            "{what}: one Dockerfile, two digests"
        );
        assert!(
            digests[0] != digests[2] && digests[2] != digests[3],
            "{what}: {digests:?}"
        );
        store_is_clean(&what, &store.pallet(), &root);
        commands_run += phase1.len();

        // Phase 2: builds mixed with prune, tag, pull and push.
        let pulled = format!("{host}/conc/pulled:{round}");
        let pushed = format!("{host}/conc/same:{round}");
        let phase2 = [
            (
                format!("build same-{round}c (again)"),
                build(&format!("same-{round}c"), &same),
            ),
            (
                format!("build late-{round}"),
                build(&format!("late-{round}"), &late),
            ),
            ("prune".to_string(), store.pallet().arg("prune")),
            (
                format!("tag other1-{round}"),
                store.pallet().args([
                    "tag",
                    &format!("other1-{round}"),
                    &format!("tagged-{round}"),
                ]),
            ),
            (
                format!("pull {pulled}"),
                store
                    .pallet()
                    .args(["pull", "--progress", "plain", &pulled]),
            ),
            (
                format!("push same-{round}a"),
                store
                    .pallet()
                    .args(["push", &format!("same-{round}a"), &pushed]),
            ),
        ];
        let outs = all_at_once(&phase2);
        let what = format!("round {round}, builds with prune, tag, pull and push");
        all_succeeded(&what, &phase2, &outs);
        assert_eq!(
            built_digest(&text(&outs[0].stderr)).as_deref(),
            Some(digests[0].as_str()),
            "{what}: the same Dockerfile built again"
        );
        let prune_said = text(&outs[2].stderr);
        if prune_said.contains("waiting for it to finish") {
            prune_waited += 1;
        }
        let deleted = text(&outs[2].stdout)
            .lines()
            .next()
            .unwrap_or("")
            .to_string();
        let images = store_is_clean(&what, &store.pallet(), &root);
        let listed = store.pallet().arg("images").ok();
        for name in [
            format!("same-{round}a"),
            format!("same-{round}b"),
            format!("same-{round}c"),
            format!("other1-{round}"),
            format!("other2-{round}"),
            format!("late-{round}"),
            format!("tagged-{round}"),
            format!("{host}/conc/pulled"),
        ] {
            assert!(
                listed.contains(&name),
                "{what}: {name} is not listed:\n{listed}"
            );
        }
        let state = registry_tag(&reg, work.path(), &format!("conc/same:{round}"))
            .unwrap_or_else(|e| panic!("{what}: the pushed tag: {e}"));
        let said = text(&outs[5].stdout);
        assert!(
            said.contains(&state),
            "{what}: push said {said}, the registry has {state}"
        );
        commands_run += phase2.len();
        figure(&format!(
            "concurrency round {round}: 4 builds at once, then 2 builds with prune, tag, pull \
             and push: all succeeded, {images} images verify (prune: {deleted})"
        ));
    }
    figure(&format!(
        "concurrency: {ROUNDS} of {ROUNDS} rounds passed ({commands_run} commands, 6 at once at \
         most, one store root; prune waited for a build in {prune_waited} of {ROUNDS} rounds)"
    ));
}
