//! Registries that serve what an attacker wants: invalid, oversized and lying manifests and
//! configs, digests that climb, loops of indexes, foreign URLs. A `Front` before a real
//! docker-registry answers the crafted parts and logs every request pallet makes.

use super::case;
use super::images::*;
use super::kit::*;
use std::time::Duration;
use testkit::docker_registry::{Answer, Front, Registry, Rule};

// ---------------------------------------------------------------------------------------------
// Registries that serve what an attacker wants
// ---------------------------------------------------------------------------------------------

/// A crafted answer for `GET /v2/REPO/manifests/REF` of a front.
fn manifest_rule(repo: &str, reference: &str, media_type: &str, body: Vec<u8>) -> Rule {
    Rule::get(
        &format!("/v2/{repo}/manifests/{reference}"),
        Answer::manifest(media_type, body),
    )
}

/// A manifest over `config` and `layers` (descriptors as JSON values).
fn manifest_json(config: serde_json::Value, layers: Vec<serde_json::Value>) -> serde_json::Value {
    serde_json::json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": layers})
}

/// One hostile registry answer, pulled with `pallet pull`: the real registry holds `image`'s
/// blobs under `evil/ID`, the front serves `manifest` (and `extra` rules) for it. Returns the
/// run and the front (its request log).
struct Pulled {
    ran: Ran,
    front: Front,
}

fn pull_through_front(
    arena: &Arena,
    reg: &Registry,
    id: &str,
    image: &Crafted,
    manifest: (&str, Vec<u8>),
    extra: Vec<Rule>,
) -> Pulled {
    let repo = format!("evil/{id}");
    image.push(reg, &arena.input(""), &repo, None);
    let mut rules = vec![manifest_rule(&repo, "1", manifest.0, manifest.1)];
    rules.extend(extra);
    let front = Front::start(&reg.host(), rules);
    let ran = run(&arena
        .pallet()
        .args(["pull", &format!("{}/{repo}:1", front.host())]));
    Pulled { ran, front }
}

/// A small image of one real layer (a file named after the case).
fn small_image(id: &str) -> Crafted {
    Crafted::of_tars(&[tar(&[file(format!("from-{id}"), id)])])
}

/// The store has no image whose name contains `needle`.
fn no_image(arena: &Arena, needle: &str) {
    let ran = run(&arena.pallet().arg("images"));
    ran.succeeded();
    assert!(!ran.out().contains(needle), "{}", ran.show());
}

#[test]
fn hostile_manifests_and_configs_are_refused() {
    if !can_run("hostile registry answers") {
        return;
    }
    let Some(reg) = start_registry() else {
        return;
    };
    let arena = Arena::empty();
    let img = |id: &str| small_image(id);

    // Not JSON at all.
    let i = img("json");
    let body = br#"{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "layers": [{"#.to_vec();
    let p = pull_through_front(&arena, &reg, "json", &i, (OCI_MANIFEST, body), vec![]);
    p.ran.failed_with(&["invalid manifest"]);
    assert!(!p.front.saw("/blobs/"), "{:#?}", p.front.lines());
    arena.assert_confined(case("reg-invalid-json"), &[&p.ran]);

    // A layer digest that climbs: refused before any request uses it (issue 13, defect 8).
    let i = img("traversal");
    let m = manifest_json(
        Crafted::descriptor(OCI_CONFIG, &i.config),
        vec![
            serde_json::json!({"mediaType": OCI_LAYER_GZIP, "digest": "sha256:../../../../tmp/x", "size": 10}),
        ],
    );
    let p = pull_through_front(
        &arena,
        &reg,
        "traversal",
        &i,
        (OCI_MANIFEST, serde_json::to_vec(&m).unwrap()),
        vec![],
    );
    p.ran.failed_with(&["sha256:../../../../tmp/x"]);
    for r in p.front.lines() {
        assert!(
            !r.contains("..") && !r.contains("tmp/x") && !r.contains("%2E"),
            "{r}"
        );
        assert!(
            !r.contains("/blobs/"),
            "a blob was requested: {:#?}",
            p.front.lines()
        );
    }
    arena.assert_confined(case("reg-digest-traversal"), &[&p.ran]);

    // A config whose diff ids are not its layers'.
    let mut i = img("diffid");
    i.config = config_json(&[sha256(b"not this layer")]);
    let m = i.manifest();
    let p = pull_through_front(&arena, &reg, "diffid", &i, (OCI_MANIFEST, m), vec![]);
    p.ran.failed_with(&["does not match its diff id"]);
    no_image(&arena, "diffid");
    arena.assert_confined(case("reg-diffid-mismatch"), &[&p.ran]);
    arena.assert_no_leftovers(case("reg-diffid-mismatch"));

    // A diff id that climbs from the store's snapshots to the canary.
    let mut i = img("diffid-climb");
    i.config = config_json(&["sha256:../../outside/empty".to_string()]);
    let m = i.manifest();
    let p = pull_through_front(&arena, &reg, "diffid-climb", &i, (OCI_MANIFEST, m), vec![]);
    p.ran.failed_with(&["sha256:../../outside/empty"]);
    no_image(&arena, "diffid-climb");
    arena.assert_confined(case("reg-diffid-traversal"), &[&p.ran]);
    arena.assert_no_leftovers(case("reg-diffid-traversal"));

    // A layer blob that is not what its digest says (same size, other bytes).
    let i = img("tampered");
    let (digest, layer) = (sha256(&i.layers[0].1), &i.layers[0].1);
    let mut other = layer.clone();
    other.reverse();
    let blob_rule = Rule::get(
        &format!("/v2/evil/tampered/blobs/{digest}"),
        Answer::blob(other),
    );
    let p = pull_through_front(
        &arena,
        &reg,
        "tampered",
        &i,
        (OCI_MANIFEST, i.manifest()),
        vec![blob_rule],
    );
    p.ran.failed_with(&[&digest]);
    no_image(&arena, "tampered");
    let hex = &digest["sha256:".len()..];
    assert!(!arena.root().join("blobs/sha256").join(hex).exists());
    arena.assert_confined(case("reg-blob-digest-mismatch"), &[&p.ran]);
    arena.assert_no_leftovers(case("reg-blob-digest-mismatch"));

    // A layer media type no one knows.
    let mut i = img("mediatype");
    i.layers[0].0 = "application/vnd.evil.layer.v1+exe".into();
    let p = pull_through_front(
        &arena,
        &reg,
        "mediatype",
        &i,
        (OCI_MANIFEST, i.manifest()),
        vec![],
    );
    p.ran.failed_with(&["application/vnd.evil.layer.v1+exe"]);
    no_image(&arena, "mediatype");
    arena.assert_confined(case("reg-unknown-media-type"), &[&p.ran]);
    arena.assert_no_leftovers(case("reg-unknown-media-type"));
}

/// A manifest whose config descriptor says 1 TiB (the blob is a few hundred bytes): a clear
/// error or the real config, never an allocation of what the manifest claims.
#[test]
fn a_config_size_lie_is_not_allocated() {
    if !can_run("hostile config size") {
        return;
    }
    let Some(reg) = start_registry() else {
        return;
    };
    let arena = Arena::empty();
    let i = small_image("cfgsize");
    let mut config = Crafted::descriptor(OCI_CONFIG, &i.config);
    config["size"] = serde_json::json!(1u64 << 40);
    let layers = vec![Crafted::descriptor(OCI_LAYER_GZIP, &i.layers[0].1)];
    let m = serde_json::to_vec(&manifest_json(config, layers)).unwrap();
    let p = pull_through_front(&arena, &reg, "cfgsize", &i, (OCI_MANIFEST, m), vec![]);
    p.ran.failed_with(&["config"]);
    assert!(p.ran.max_rss_mib < 512, "{}", p.ran.show());
    arena.assert_confined(case("reg-config-size-lie"), &[&p.ran]);
}

/// A 9 MiB manifest (the cap is 8 MiB): refused before any blob is requested, with memory
/// bounded, and for what it is.
#[test]
fn an_oversized_manifest_is_refused_for_what_it_is() {
    if !can_run("hostile oversized manifest") {
        return;
    }
    let Some(reg) = start_registry() else {
        return;
    };
    let arena = Arena::empty();
    let i = small_image("big");
    let mut m = serde_json::from_slice::<serde_json::Value>(&i.manifest()).unwrap();
    m["annotations"] = serde_json::json!({"pad": "x".repeat(9 << 20)});
    let p = pull_through_front(
        &arena,
        &reg,
        "big",
        &i,
        (OCI_MANIFEST, serde_json::to_vec(&m).unwrap()),
        vec![],
    );
    assert!(!p.front.saw("/blobs/"), "{:#?}", p.front.lines());
    assert!(p.ran.max_rss_mib < 512, "{}", p.ran.show());
    arena.assert_confined(case("reg-oversized-manifest"), &[&p.ran]);
    p.ran.failed_with(&["manifest", "8 MiB"]);
    assert!(!p.ran.err().contains("not reachable"), "{}", p.ran.show());
}

/// Indexes that loop or nest: a bounded number of requests and a clear error.
#[test]
fn hostile_indexes_end_quickly() {
    if !can_run("hostile registry indexes") {
        return;
    }
    let Some(reg) = start_registry() else {
        return;
    };
    let arena = Arena::empty();
    let platform = serde_json::json!({"os": "linux", "architecture": arch()});

    // An index that lists itself: served at its tag and at the digest it names.
    let i = small_image("loop");
    let named = sha256(b"the index itself");
    let index = serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_INDEX, "digest": named, "size": 300, "platform": platform}]}))
    .unwrap();
    let again = manifest_rule("evil/loop", &named, OCI_INDEX, index.clone());
    let p = pull_through_front(&arena, &reg, "loop", &i, (OCI_INDEX, index), vec![again]);
    p.ran.failed_with(&[&named]);
    let gets = p
        .front
        .lines()
        .iter()
        .filter(|l| l.contains("/manifests/"))
        .count();
    assert!(gets <= 4, "{:#?}", p.front.lines());
    arena.assert_confined(case("reg-index-self-loop"), &[&p.ran]);

    // An index nested 100 deep over a real manifest, each level served at its digest.
    let i = small_image("nested");
    let manifest = i.manifest();
    let mut rules = vec![manifest_rule(
        "evil/nested",
        &sha256(&manifest),
        OCI_MANIFEST,
        manifest.clone(),
    )];
    let (mut below, mut below_type) = (manifest, OCI_MANIFEST);
    for _ in 0..100 {
        let index = serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX,
            "manifests": [{"mediaType": below_type, "digest": sha256(&below), "size": below.len(), "platform": platform}]}))
        .unwrap();
        rules.push(manifest_rule(
            "evil/nested",
            &sha256(&index),
            OCI_INDEX,
            index.clone(),
        ));
        (below, below_type) = (index, OCI_INDEX);
    }
    let p = pull_through_front(&arena, &reg, "nested", &i, (OCI_INDEX, below), rules);
    p.ran.failed_with(&["not an image manifest"]);
    let gets = p
        .front
        .lines()
        .iter()
        .filter(|l| l.contains("/manifests/"))
        .count();
    assert!(gets <= 4, "{:#?}", p.front.lines());
    arena.assert_confined(case("reg-index-nested"), &[&p.ran]);
}

/// A foreign (non-distributable) layer whose `urls` point elsewhere: pallet takes blobs from
/// the registry by digest only, never from a URL a manifest names (no request forgery).
#[test]
fn foreign_layer_urls_are_never_fetched() {
    if !can_run("hostile foreign layer urls") {
        return;
    }
    let Some(reg) = start_registry() else {
        return;
    };
    let c = case("reg-foreign-urls");
    let arena = Arena::empty();
    let i = small_image("foreign");
    let repo = "evil/foreign";
    i.push(&reg, &arena.input(""), repo, None);
    // The front is also where the URL points: its log shows whether anything went there.
    let witness = Front::start(&reg.host(), vec![]);
    let mut layer = Crafted::descriptor(
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        &i.layers[0].1,
    );
    layer["urls"] = serde_json::json!([format!("http://{}/ssrf-{}", witness.host(), arena.mark)]);
    let m = serde_json::to_vec(&manifest_json(
        Crafted::descriptor(OCI_CONFIG, &i.config),
        vec![layer],
    ))
    .unwrap();
    let front = Front::start(&reg.host(), vec![manifest_rule(repo, "1", OCI_MANIFEST, m)]);
    let ran = run(&arena
        .pallet()
        .args(["pull", &format!("{}/{repo}:1", front.host())]));
    assert!(ran.code == Some(0) || ran.code == Some(1), "{}", ran.show());
    if ran.code == Some(1) {
        ran.failed_with(&[]);
    }
    assert!(witness.requests().is_empty(), "{:#?}", witness.lines());
    assert!(!front.saw("ssrf-"), "{:#?}", front.lines());
    arena.assert_confined(c, &[&ran]);
}

/// A 12 MiB config (one huge label): pulled or refused, with memory bounded.
#[test]
fn a_huge_config_is_handled() {
    if !can_run("hostile huge config") {
        return;
    }
    let Some(reg) = start_registry() else {
        return;
    };
    let c = case("reg-huge-config");
    let arena = Arena::empty();
    let mut i = small_image("hugecfg");
    let layer_tar = tar(&[file("from-hugecfg", "hugecfg")]);
    i.config = serde_json::to_vec(&serde_json::json!({
        "architecture": arch(), "os": "linux",
        "config": {"Labels": {"pad": "y".repeat(12 << 20)}},
        "rootfs": {"type": "layers", "diff_ids": [sha256(&layer_tar)]},
    }))
    .unwrap();
    i.push(&reg, &arena.input(""), "evil/hugecfg", Some("1"));
    let ran = run_bounded(
        &arena
            .pallet()
            .args(["pull", &format!("{}/evil/hugecfg:1", reg.host())]),
        Duration::from_secs(60),
        Some(4 << 30),
    );
    assert!(ran.code == Some(0) || ran.code == Some(1), "{}", ran.show());
    if ran.code == Some(1) {
        ran.failed_with(&["config"]);
    }
    assert!(ran.max_rss_mib < 512, "{}", ran.show());
    arena.assert_confined(c, &[&ran]);
}
