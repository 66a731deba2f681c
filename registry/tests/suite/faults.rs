//! Failures: a registry that answers 500 or drops connections (through the fault proxy), a
//! download cut in the middle, blobs whose content does not match their descriptor. A push
//! either completes or leaves the tag untouched.

use registry::{push_image, BlobOutcome, Client, PushBlob, RegistryError};
use testkit::docker_registry::{Config, Fault, FaultAction, FaultProxy, Registry};
use testkit::files::{temp_dir, TempDir};
use testkit::net::free_port;
use testkit::registry_client::images::{bytes, image};
use testkit::registry_client::{client_for, docker_config, pull_all, reference, test_config};

fn proxied(reg: &Registry, faults: Vec<Fault>, tmp: &TempDir) -> (FaultProxy, Client) {
    let proxy = FaultProxy::start(&reg.host(), faults);
    let client = Client::new(
        test_config(tmp.path()),
        docker_config(tmp.path(), "x", None),
    );
    (proxy, client)
}

#[test]
fn upload_500_twice_then_success() {
    let Some(reg) = Registry::start(Config::plain()) else {
        return;
    };
    let tmp = temp_dir("pallet-500");
    let faults = vec![Fault::new(
        "PUT",
        "/blobs/uploads/",
        FaultAction::Status500,
        2,
    )];
    let (proxy, client) = proxied(&reg, faults, &tmp);
    let img = image("retry-500", &[2000, 3000], "amd64");
    let target = registry::Reference::parse(&format!("{}/retry/app:1", proxy.host())).unwrap();
    let report = push_image(&client, &img.push_request(&target, &[]), &|_| {}).unwrap();
    assert_eq!(proxy.faults_hit(), 2);
    assert_eq!(report.digest, img.digest);
    // Each failed upload started over with a fresh session (POST).
    let posts = proxy
        .requests()
        .iter()
        .filter(|r| r.starts_with("POST"))
        .count();
    assert_eq!(posts, 3 + 2, "{:#?}", proxy.requests());
    pull_all(&client, &target, "linux/amd64");
}

#[test]
fn persistent_500_fails_clearly_and_leaves_no_tag() {
    let Some(reg) = Registry::start(Config::plain()) else {
        return;
    };
    let tmp = temp_dir("pallet-500x");
    let img = image("always-500", &[2000, 3000], "amd64");
    // Only the second layer's upload fails, forever.
    let bad = img.blobs()[2].0.digest.clone();
    let faults = vec![Fault::new(
        "PUT",
        &bad.replace(':', "%3A"),
        FaultAction::Status500,
        usize::MAX,
    )];
    let (proxy, client) = proxied(&reg, faults, &tmp);
    let target = registry::Reference::parse(&format!("{}/retry/app:1", proxy.host())).unwrap();
    let err = push_image(&client, &img.push_request(&target, &[]), &|_| {}).unwrap_err();
    let text = err.to_string();
    assert_eq!(err.status(), Some(500), "{text}");
    assert!(
        text.contains(bad.as_str()) && text.contains("PUT") && text.contains("500"),
        "{text}"
    );
    assert!(text.contains("try again later"), "{text}");
    assert_eq!(
        proxy.faults_hit(),
        5,
        "five attempts: {:#?}",
        proxy.requests()
    );
    assert!(
        !proxy.requests().iter().any(|r| r.contains("/manifests/")),
        "the manifest is never pushed: {:#?}",
        proxy.requests()
    );
    // Straight to the registry: the tag does not exist.
    let direct = client_for(&reg, tmp.path());
    let err = direct
        .get_manifest(&reference(&reg, "retry/app:1"))
        .unwrap_err();
    assert_eq!(err.status(), Some(404));
    assert!(err.codes().iter().any(|c| c == "MANIFEST_UNKNOWN"), "{err}");
}

#[test]
fn dropped_connections_are_retried() {
    let Some(reg) = Registry::start(Config::plain()) else {
        return;
    };
    let tmp = temp_dir("pallet-drop");
    let faults = vec![
        Fault::new("HEAD", "/blobs/", FaultAction::Drop, 2),
        Fault::new("GET", "/manifests/", FaultAction::Drop, 2),
    ];
    let (proxy, client) = proxied(&reg, faults, &tmp);
    let img = image("drops", &[1500], "amd64");
    let target = registry::Reference::parse(&format!("{}/drop/app:1", proxy.host())).unwrap();
    push_image(&client, &img.push_request(&target, &[]), &|_| {}).unwrap();
    pull_all(&client, &target, "linux/amd64");
    assert_eq!(proxy.faults_hit(), 4);
}

#[test]
fn a_download_cut_in_the_middle_resumes_with_a_range_request() {
    let Some(reg) = Registry::start(Config::plain()) else {
        return;
    };
    let tmp = temp_dir("pallet-cut");
    let direct = client_for(&reg, tmp.path());
    let img = image("cut", &[400_000], "amd64");
    let target = reference(&reg, "cut/app:1");
    push_image(&direct, &img.push_request(&target, &[]), &|_| {}).unwrap();
    let layer = img.blobs()[1].0.clone();
    let faults = vec![Fault::new(
        "GET",
        &layer.digest,
        FaultAction::CutAfter(100_000),
        2,
    )];
    let (proxy, client) = proxied(&reg, faults, &tmp);
    let via = registry::Reference::parse(&format!("{}/cut/app:1", proxy.host())).unwrap();
    let mut sink = Vec::new();
    let seen = std::sync::atomic::AtomicU64::new(0);
    client
        .fetch_blob(&via, &layer, &mut sink, &|n| {
            seen.store(n, std::sync::atomic::Ordering::SeqCst)
        })
        .unwrap();
    assert_eq!(sink, img.layers[0]);
    assert_eq!(seen.into_inner(), 400_000);
    assert_eq!(proxy.faults_hit(), 2);
    let gets = proxy
        .requests()
        .iter()
        .filter(|r| r.contains(layer.digest.as_str()))
        .count();
    assert_eq!(
        gets,
        3,
        "two cut answers, then the rest: {:#?}",
        proxy.requests()
    );
}

#[test]
fn a_blob_that_does_not_match_its_digest_is_named() {
    let Some(reg) = Registry::start(Config::plain()) else {
        return;
    };
    let tmp = temp_dir("pallet-corrupt");
    let client = client_for(&reg, tmp.path());
    let img = image("corrupt", &[1000, 2000], "amd64");
    let target = reference(&reg, "corrupt/app:1");
    let mut request = img.push_request(&target, &[]);
    let victim = request.blobs[2].descriptor.clone();
    let wrong = bytes("not the layer", victim.size as usize);
    request.blobs[2] = PushBlob {
        descriptor: victim.clone(),
        open: Box::new(move || Ok(Box::new(std::io::Cursor::new(wrong.clone())))),
        mount_from: vec![],
    };
    let before = client.request_counts();
    let err = push_image(&client, &request, &|_| {}).unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, RegistryError::DigestMismatch { .. }),
        "{text}"
    );
    assert!(text.contains(victim.digest.as_str()), "{text}");
    assert!(text.contains("corrupt/app"), "{text}");
    // At most the three blob PUTs: the bad one is not retried, the manifest never sent.
    assert!(client.request_counts().since(&before).put <= 3);
    assert!(client.get_manifest(&target).unwrap_err().is_not_found());

    // Shorter than its descriptor says.
    let mut request = img.push_request(&reference(&reg, "corrupt/short:1"), &[]);
    let d = request.blobs[1].descriptor.clone();
    request.blobs[1].open = Box::new(|| Ok(Box::new(std::io::Cursor::new(vec![1u8; 10]))));
    let err = push_image(&client, &request, &|_| {}).unwrap_err();
    assert!(matches!(err, RegistryError::SizeMismatch { .. }), "{err}");
    assert!(err.to_string().contains(d.digest.as_str()), "{err}");

    // Pulling with a descriptor whose size is wrong.
    push_image(&client, &img.push_request(&target, &[]), &|_| {}).unwrap();
    let mut d = img.blobs()[1].0.clone();
    d.size -= 1;
    let err = client
        .fetch_blob(&target, &d, &mut Vec::new(), &|_| {})
        .unwrap_err();
    assert!(matches!(err, RegistryError::SizeMismatch { .. }), "{err}");
    assert!(err.to_string().contains(d.digest.as_str()), "{err}");
}

#[test]
fn unreachable_registry_says_so() {
    let tmp = temp_dir("pallet-unreach");
    let port = free_port();
    let client = Client::new(
        test_config(tmp.path()),
        docker_config(tmp.path(), "x", None),
    );
    let r = registry::Reference::parse(&format!("127.0.0.1:{port}/a:1")).unwrap();
    let err = client.get_manifest(&r).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, RegistryError::Unreachable { .. }), "{text}");
    assert!(
        text.contains("not reachable") && text.contains(&port.to_string()),
        "{text}"
    );
    let _ = BlobOutcome::Uploaded;
}

#[test]
fn rate_limits_are_retried_after_the_retry_after_delay() {
    let Some(reg) = Registry::start(Config::plain()) else {
        return;
    };
    let tmp = temp_dir("pallet-429");
    let faults = vec![Fault::new(
        "GET",
        "/manifests/",
        FaultAction::TooManyRequests(1),
        1,
    )];
    let (proxy, client) = proxied(&reg, faults, &tmp);
    let direct = client_for(&reg, tmp.path());
    let img = image("rate", &[100], "amd64");
    push_image(
        &direct,
        &img.push_request(&reference(&reg, "rate/app:1"), &[]),
        &|_| {},
    )
    .unwrap();
    let via = registry::Reference::parse(&format!("{}/rate/app:1", proxy.host())).unwrap();
    let started = std::time::Instant::now();
    let got = client.get_manifest(&via).unwrap();
    assert_eq!(got.digest, img.digest);
    assert_eq!(proxy.faults_hit(), 1);
    // The test policy's backoff is 20 ms: waiting a second means Retry-After was honored.
    assert!(started.elapsed() >= std::time::Duration::from_millis(950));

    // A persistent rate limit: the error says what it is and what to do.
    let faults = vec![Fault::new(
        "GET",
        "/manifests/",
        FaultAction::TooManyRequests(0),
        usize::MAX,
    )];
    let (_proxy, client) = proxied(&reg, faults, &tmp);
    let via = registry::Reference::parse(&format!("{}/rate/app:1", _proxy.host())).unwrap();
    let err = client.get_manifest(&via).unwrap_err();
    assert_eq!(err.status(), Some(429), "{err}");
    assert!(
        err.to_string().contains("TOOMANYREQUESTS") && err.to_string().contains("pallet login"),
        "{err}"
    );
}
