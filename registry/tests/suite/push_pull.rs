//! Push an image to a real registry and pull it back, in each configuration (plain HTTP, TLS
//! with its own CA, Basic auth, bearer tokens); what a no-op push costs; chunked uploads;
//! cross-repository mounts; token reuse; platform selection from an index.

use registry::manifest::OCI_INDEX;
use registry::{push_image, BlobOutcome, Platform, PushProgress, RegistryError};
use std::sync::Mutex;
use testkit::docker_registry::{Config, Registry};
use testkit::files::temp_dir;
use testkit::net::free_port;
use testkit::registry_client::images::{image, index};
use testkit::registry_client::{client_for, docker_config, pull_all, reference, test_config};

fn round_trip(config: Config) {
    let Some(reg) = Registry::start(config) else {
        return;
    };
    let tmp = temp_dir("pallet-rt");
    let client = client_for(&reg, tmp.path());
    let img = image("round-trip", &[1000, 70_000], "amd64");
    let target = reference(&reg, "team/app:1.0");
    let events = Mutex::new(Vec::new());
    let report = push_image(&client, &img.push_request(&target, &[]), &|e| {
        events.lock().unwrap().push(e)
    })
    .unwrap_or_else(|e| panic!("push: {e}\n{}", reg.log()));
    assert_eq!(report.digest, img.digest);
    assert!(report
        .outcomes
        .iter()
        .all(|(_, o)| *o == BlobOutcome::Uploaded));
    assert_eq!(report.bytes_uploaded, (img.config.len() + 71_000) as u64);
    let events = events.into_inner().unwrap();
    assert!(matches!(
        events.last(),
        Some(PushProgress::ManifestPushed { .. })
    ));
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, PushProgress::BlobDone { .. }))
            .count(),
        3
    );
    assert!(events
        .iter()
        .any(|e| matches!(e, PushProgress::BlobBytes { done: 70_000, .. })));

    // By tag, by digest; with the HEAD digest.
    let pulled = pull_all(&client, &target, "linux/amd64");
    assert_eq!(pulled.digest, img.digest);
    assert_eq!(pulled.manifest_bytes, img.manifest);
    assert_eq!(pulled.config_bytes, img.config);
    let by_digest = reference(&reg, &format!("team/app@{}", img.digest));
    let again = pull_all(&client, &by_digest, "linux/amd64");
    assert_eq!(again.manifest_digest, img.digest);
    assert_eq!(
        client.head_manifest(&target).unwrap(),
        Some(img.digest.clone())
    );
    assert_eq!(
        client
            .head_manifest(&reference(&reg, "team/app:nope"))
            .unwrap(),
        None
    );
    let mut layer = Vec::new();
    client
        .fetch_blob(&target, &img.blobs()[2].0, &mut layer, &|_| {})
        .unwrap();
    assert_eq!(layer, img.layers[1]);
}

#[test]
fn round_trip_plain_http() {
    round_trip(Config::plain());
}

#[test]
fn round_trip_tls() {
    round_trip(Config::tls());
}

#[test]
fn round_trip_basic_auth() {
    round_trip(Config::htpasswd("alice", "s3cret-basic"));
}

#[test]
fn round_trip_token_auth() {
    round_trip(Config::token("bob", "s3cret-token"));
}

#[test]
fn noop_push_is_one_head_per_blob_and_the_manifest_put() {
    let Some(reg) = Registry::start(Config::token("carol", "pw-carol")) else {
        return;
    };
    let tmp = temp_dir("pallet-noop");
    let client = client_for(&reg, tmp.path());
    let img = image("noop", &[500, 600], "amd64");
    let target = reference(&reg, "noop/app:v1");
    push_image(&client, &img.push_request(&target, &[]), &|_| {}).unwrap();
    let tokens = reg.token_requests();
    assert!(tokens >= 1, "the first push fetched a token");

    let before = client.request_counts();
    let report = push_image(&client, &img.push_request(&target, &[]), &|_| {}).unwrap();
    let cost = client.request_counts().since(&before);
    assert!(report
        .outcomes
        .iter()
        .all(|(_, o)| *o == BlobOutcome::AlreadyThere));
    assert_eq!(report.bytes_uploaded, 0);
    assert_eq!(cost.head, 3, "{cost:?}");
    assert_eq!(cost.put, 1, "{cost:?}");
    assert_eq!(cost.total(), 4, "{cost:?}");
    assert_eq!(reg.token_requests(), tokens, "the cached token was reused");
}

#[test]
fn token_is_cached_across_pushes_and_pulls_of_a_repository() {
    let Some(reg) = Registry::start(Config::token("dave", "pw-dave")) else {
        return;
    };
    let tmp = temp_dir("pallet-tok");
    let client = client_for(&reg, tmp.path());
    let a = image("tok-a", &[100], "amd64");
    let b = image("tok-b", &[200], "amd64");
    let target = reference(&reg, "tok/app:a");
    push_image(&client, &a.push_request(&target, &[]), &|_| {}).unwrap();
    let after_first = reg.token_requests();
    // Parallel blobs share one token: one fetch for the whole push.
    assert_eq!(after_first, 1);
    push_image(
        &client,
        &b.push_request(&reference(&reg, "tok/app:b"), &[]),
        &|_| {},
    )
    .unwrap();
    assert_eq!(
        reg.token_requests(),
        after_first,
        "second push reused the token"
    );
    // Pull wants a pull-only scope: one more token, then reused.
    pull_all(&client, &target, "linux/amd64");
    pull_all(&client, &reference(&reg, "tok/app:b"), "linux/amd64");
    assert_eq!(reg.token_requests(), after_first + 1);
}

#[test]
fn chunked_upload_of_a_blob_larger_than_the_chunk_size() {
    let Some(reg) = Registry::start(Config::plain()) else {
        return;
    };
    let tmp = temp_dir("pallet-chunk");
    let mut config = test_config(tmp.path());
    config.chunk_size = 64 * 1024;
    let client = registry::Client::new(config, docker_config(tmp.path(), &reg.host(), None));
    let img = image("chunked", &[300_000, 10], "amd64");
    let target = reference(&reg, "chunk/app:1");
    let before = client.request_counts();
    push_image(&client, &img.push_request(&target, &[]), &|_| {}).unwrap();
    let cost = client.request_counts().since(&before);
    // 300000 bytes in 64 KiB chunks: 5 PATCHes; small blobs go up in one PUT.
    assert_eq!(cost.patch, 5, "{cost:?}");
    let pulled = pull_all(&client, &target, "linux/amd64");
    assert_eq!(pulled.manifest.layers[0].size, 300_000);
    let mut sink = Vec::new();
    client
        .fetch_blob(&target, &pulled.manifest.layers[0], &mut sink, &|_| {})
        .unwrap();
    assert_eq!(sink, img.layers[0]);
}

#[test]
fn cross_repository_mount() {
    let Some(reg) = Registry::start(Config::token("erin", "pw-erin")) else {
        return;
    };
    let tmp = temp_dir("pallet-mount");
    let client = client_for(&reg, tmp.path());
    let img = image("mount", &[4000, 5000], "amd64");
    push_image(
        &client,
        &img.push_request(&reference(&reg, "team/a:1"), &[]),
        &|_| {},
    )
    .unwrap();
    let before = client.request_counts();
    let report = push_image(
        &client,
        &img.push_request(&reference(&reg, "team/b:1"), &["team/a"]),
        &|_| {},
    )
    .unwrap();
    assert!(
        report
            .outcomes
            .iter()
            .all(|(_, o)| *o == BlobOutcome::Mounted),
        "{:?}",
        report.outcomes
    );
    let cost = client.request_counts().since(&before);
    assert_eq!(cost.patch, 0);
    assert_eq!(cost.post, 3, "one mount POST per blob: {cost:?}");
    pull_all(&client, &reference(&reg, "team/b:1"), "linux/amd64");

    // A source that does not have the blob: the registry opens an upload instead, used as is.
    let other = image("mount-miss", &[3000], "amd64");
    let report = push_image(
        &client,
        &other.push_request(&reference(&reg, "team/c:1"), &["team/a"]),
        &|_| {},
    )
    .unwrap();
    assert!(report
        .outcomes
        .iter()
        .all(|(_, o)| *o == BlobOutcome::Uploaded));
    pull_all(&client, &reference(&reg, "team/c:1"), "linux/amd64");
}

#[test]
fn index_platform_selection() {
    let Some(reg) = Registry::start(Config::plain()) else {
        return;
    };
    let tmp = temp_dir("pallet-index");
    let client = client_for(&reg, tmp.path());
    let amd = image("idx-amd64", &[100], "amd64");
    let arm = image("idx-arm64", &[200], "arm64");
    // Platform manifests by digest only, then the index under the tag.
    for img in [&amd, &arm] {
        let r = reference(&reg, &format!("multi/app@{}", img.digest));
        push_image(&client, &img.push_request(&r, &[]), &|_| {}).unwrap();
    }
    let mut attestation = amd.index_entry("unknown/unknown");
    attestation.annotations = Some(
        [(
            "vnd.docker.reference.type".to_string(),
            "attestation-manifest".to_string(),
        )]
        .into(),
    );
    let idx = index(vec![
        amd.index_entry("linux/amd64"),
        arm.index_entry("linux/arm64/v8"),
        attestation,
    ]);
    let tag = reference(&reg, "multi/app:latest");
    let digest = client.put_manifest(&tag, OCI_INDEX, &idx).unwrap();
    assert_eq!(digest, registry::sha256_digest(&idx));

    let got = client.get_manifest(&tag).unwrap();
    assert_eq!(got.media_type, OCI_INDEX);
    let a = pull_all(&client, &tag, "linux/amd64");
    assert_eq!(
        (a.digest.as_str(), a.manifest_digest.as_str()),
        (digest.as_str(), amd.digest.as_str())
    );
    assert_eq!(a.config_bytes, amd.config);
    // arm64 means arm64/v8.
    let b = pull_all(&client, &tag, "linux/arm64");
    assert_eq!(b.manifest_digest, arm.digest);
    assert_eq!(b.config_bytes, arm.config);

    let err =
        registry::resolve(&client, &tag, &Platform::parse("linux/s390x").unwrap()).unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, RegistryError::PlatformNotFound { .. }),
        "{text}"
    );
    assert!(
        text.contains("linux/s390x")
            && text.contains("linux/amd64")
            && text.contains("linux/arm64/v8"),
        "{text}"
    );
    assert!(
        !text.contains("unknown"),
        "attestations are not platforms: {text}"
    );
}

#[test]
fn missing_tag_and_repository_errors_say_what_to_do() {
    let Some(reg) = Registry::start(Config::plain()) else {
        return;
    };
    let tmp = temp_dir("pallet-missing");
    let client = client_for(&reg, tmp.path());
    let err = client
        .get_manifest(&reference(&reg, "nothing/here:1"))
        .unwrap_err();
    let text = err.to_string();
    assert!(err.is_not_found(), "{text}");
    assert_eq!(err.status(), Some(404));
    assert!(
        text.contains("GET") && text.contains("nothing/here:1") && text.contains("404"),
        "{text}"
    );
    assert!(text.contains("check"), "a hint: {text}");
}

#[test]
fn docker_io_reads_go_to_mirrors_in_order() {
    let Some(reg) = Registry::start(Config::plain()) else {
        return;
    };
    let tmp = temp_dir("pallet-mirror");
    let direct = client_for(&reg, tmp.path());
    let img = image("mirrored", &[100], "amd64");
    push_image(
        &direct,
        &img.push_request(&reference(&reg, "library/mirrored:1"), &[]),
        &|_| {},
    )
    .unwrap();
    // A dead mirror first: skipped; the second serves docker.io/library/mirrored.
    let mut config = test_config(tmp.path());
    config.mirrors = vec![format!("http://127.0.0.1:{}", free_port()), reg.url()];
    let client = registry::Client::new(config, docker_config(tmp.path(), "x", None));
    let hub = registry::Reference::parse_docker_ref("mirrored:1").unwrap();
    assert_eq!(hub.domain(), "docker.io");
    let pulled = pull_all(&client, &hub, "linux/amd64");
    assert_eq!(pulled.manifest_bytes, img.manifest);
    assert_eq!(
        client.head_manifest(&hub).unwrap(),
        Some(img.digest.clone())
    );
}
