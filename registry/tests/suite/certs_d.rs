//! Registry TLS and settings as docker, BuildKit and podman users have them, against real
//! registries: docker's documented self-signed certificate in certs.d (trusted for its host
//! only, and still checked for its name), a registry that requires a client certificate
//! (certs.d's client.cert and client.key; a certificate without its key is a clear error),
//! a mirror for a registry other than docker.io serving while the origin is down, and
//! credentials from a containers auth file.

use registry::config::{HostSettings, KeyPair};
use registry::{push_image, Client, Credential, DockerConfig, RegistryError};
use std::path::Path;
use testkit::docker_registry::{Config, Registry};
use testkit::files::temp_dir;
use testkit::registry_client::images::image;
use testkit::registry_client::{docker_config, pull_all, reference, test_config};

/// Copies `file` to `certs_dir/HOST/name`.
fn put(certs_dir: &Path, host: &str, file: &Path, name: &str) {
    let dir = certs_dir.join(host);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(file, dir.join(name)).unwrap();
}

#[test]
fn docker_documented_self_signed_certificate_in_certs_d_is_trusted_for_its_host() {
    let Some(reg) = Registry::start(Config::self_signed()) else {
        return;
    };
    let tmp = temp_dir("pallet-selfsigned");
    // Without it: the error we always gave, saying where ca.crt goes.
    let client = Client::new(
        test_config(tmp.path()),
        docker_config(tmp.path(), "x", None),
    );
    let err = client.check_login(&reg.host(), None).unwrap_err();
    assert!(matches!(err, RegistryError::Tls { .. }), "{err}");
    assert!(
        err.to_string()
            .contains(&format!("/etc/docker/certs.d/{}/ca.crt", reg.host())),
        "{err}"
    );

    // As docker's documentation says: domain.crt copied to certs.d/HOST:PORT/ca.crt.
    let mut config = test_config(tmp.path());
    config.certs_dir = tmp.path().join("certs.d");
    put(
        &config.certs_dir,
        &reg.host(),
        reg.ca_path().unwrap(),
        "ca.crt",
    );
    // The same file for the other name of this address: the certificate is not valid for it.
    let localhost = format!("localhost:{}", reg.port());
    put(
        &config.certs_dir,
        &localhost,
        reg.ca_path().unwrap(),
        "ca.crt",
    );
    let client = Client::new(config, docker_config(tmp.path(), "x", None));
    client.check_login(&reg.host(), None).unwrap();
    let img = image("self-signed", &[100, 2000], "amd64");
    let target = reference(&reg, "docs/app:1");
    push_image(&client, &img.push_request(&target, &[]), &|_| {}).unwrap();
    pull_all(&client, &target, "linux/amd64");

    let by_name = registry::Reference::parse(&format!("{localhost}/docs/app:1")).unwrap();
    let err = client.get_manifest(&by_name).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, RegistryError::Tls { .. }), "{text}");
    assert!(text.contains("not valid for"), "{text}");
}

#[test]
fn self_signed_certificate_from_the_registry_table_is_trusted_too() {
    let Some(reg) = Registry::start(Config::self_signed()) else {
        return;
    };
    let tmp = temp_dir("pallet-selfsigned-table");
    let mut config = test_config(tmp.path());
    config.hosts.insert(
        reg.host(),
        HostSettings {
            ca: vec![reg.ca_path().unwrap().to_path_buf()],
            ..HostSettings::default()
        },
    );
    let client = Client::new(config, docker_config(tmp.path(), "x", None));
    let img = image("self-signed-table", &[100], "amd64");
    let target = reference(&reg, "docs/app:2");
    push_image(&client, &img.push_request(&target, &[]), &|_| {}).unwrap();
    pull_all(&client, &target, "linux/amd64");
}

#[test]
fn client_certificate_from_certs_d_gives_mutual_tls() {
    let Some(reg) = Registry::start(Config::client_cert()) else {
        return;
    };
    let tmp = temp_dir("pallet-mtls");
    let (cert, key) = reg.client_cert().unwrap();
    let mut config = test_config(tmp.path());
    config.certs_dir = tmp.path().join("certs.d");
    put(
        &config.certs_dir,
        &reg.host(),
        reg.ca_path().unwrap(),
        "ca.crt",
    );
    let target = reference(&reg, "mtls/app:1");

    // Without a client certificate the registry refuses the handshake.
    let client = Client::new(config.clone(), docker_config(tmp.path(), "x", None));
    let err = client.get_manifest(&target).unwrap_err();
    assert!(matches!(err, RegistryError::Tls { .. }), "{err}");
    assert!(
        err.to_string().contains("client.cert and client.key"),
        "{err}"
    );

    // A certificate without its key: said plainly.
    put(&config.certs_dir, &reg.host(), cert, "client.cert");
    let client = Client::new(config.clone(), docker_config(tmp.path(), "x", None));
    let err = client.get_manifest(&target).unwrap_err().to_string();
    assert!(
        err.contains("client.cert") && err.contains("has no key") && err.contains("client.key"),
        "{err}"
    );

    // client.cert with client.key, as docker reads them; a pair the registry's CA did not
    // issue comes first by name and is passed over, as Go passes it over.
    put(&config.certs_dir, &reg.host(), key, "client.key");
    let stranger = tmp.path().join("stranger");
    testkit::run::ok_bytes(
        std::process::Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
            .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"])
            .args(["-subj", "/CN=not the registry's client", "-keyout"])
            .arg(stranger.with_extension("key"))
            .arg("-out")
            .arg(stranger.with_extension("cert")),
    );
    put(
        &config.certs_dir,
        &reg.host(),
        &stranger.with_extension("cert"),
        "a.cert",
    );
    put(
        &config.certs_dir,
        &reg.host(),
        &stranger.with_extension("key"),
        "a.key",
    );
    let client = Client::new(config.clone(), docker_config(tmp.path(), "x", None));
    let img = image("mtls", &[100, 3000], "amd64");
    push_image(&client, &img.push_request(&target, &[]), &|_| {}).unwrap();
    pull_all(&client, &target, "linux/amd64");

    // The same pair from the registry table's `keypair` (BuildKit's spelling).
    let mut config = test_config(tmp.path());
    config.hosts.insert(
        reg.host(),
        HostSettings {
            ca: vec![reg.ca_path().unwrap().to_path_buf()],
            keypairs: vec![KeyPair {
                cert: cert.to_path_buf(),
                key: key.to_path_buf(),
            }],
            ..HostSettings::default()
        },
    );
    let client = Client::new(config, docker_config(tmp.path(), "x", None));
    pull_all(&client, &target, "linux/amd64");
}

#[test]
fn mirror_for_a_registry_other_than_docker_io_serves_while_the_origin_is_down() {
    let Some(mirror) = Registry::start(Config::plain()) else {
        return;
    };
    let tmp = temp_dir("pallet-mirror");
    // The origin: an address where nothing listens.
    let origin = format!("127.0.0.1:{}", testkit::net::free_port());
    let img = image("mirrored", &[100, 1500], "amd64");
    let seeder = Client::new(
        test_config(tmp.path()),
        docker_config(tmp.path(), "x", None),
    );
    push_image(
        &seeder,
        &img.push_request(&reference(&mirror, "team/app:1"), &[]),
        &|_| {},
    )
    .unwrap();
    let wanted = registry::Reference::parse(&format!("{origin}/team/app:1")).unwrap();

    // No mirror: the origin is down.
    let err = seeder.get_manifest(&wanted).unwrap_err();
    assert!(matches!(err, RegistryError::Unreachable { .. }), "{err}");

    // A mirror that does not answer first, then one that has the image.
    let dead = format!("127.0.0.1:{}", testkit::net::free_port());
    let config = test_config(tmp.path())
        .amend_from_json(&format!(
            r#"{{"registry": {{"{origin}": {{"mirrors": ["{dead}", "http://{}"]}}}}}}"#,
            mirror.host()
        ))
        .unwrap();
    let client = Client::new(config, docker_config(tmp.path(), "x", None));
    let resolved = pull_all(&client, &wanted, "linux/amd64");
    assert_eq!(resolved.manifest.layers.len(), 2);
}

#[test]
fn credentials_from_a_containers_auth_file_after_docker_config() {
    let Some(reg) = Registry::start(Config::htpasswd("podman", "from-auth-json")) else {
        return;
    };
    let tmp = temp_dir("pallet-authjson");
    let auth_json = tmp.path().join("auth.json");
    let basic = testkit::docker_registry::base64(
        b"podman:from-auth-json",
        testkit::docker_registry::STD,
        true,
    );
    std::fs::write(
        &auth_json,
        format!(
            r#"{{"auths": {{"{}": {{"auth": "{basic}"}}, "docker.io": {{"auth": "{basic}"}}}}}}"#,
            reg.host()
        ),
    )
    .unwrap();
    let empty_docker = DockerConfig::empty(&tmp.path().join("docker.json"));
    let dc = empty_docker
        .clone()
        .with_auth_files(std::slice::from_ref(&auth_json))
        .unwrap();
    assert_eq!(
        dc.get(&reg.host()).unwrap(),
        Some(Credential::new("podman", "from-auth-json"))
    );
    // podman's key for Docker Hub is `docker.io`.
    assert_eq!(
        dc.get("docker.io").unwrap(),
        Some(Credential::new("podman", "from-auth-json"))
    );
    let client = Client::new(test_config(tmp.path()), dc);
    let target = reference(&reg, "podman/app:1");
    let img = image("authjson", &[100], "amd64");
    push_image(&client, &img.push_request(&target, &[]), &|_| {}).unwrap();

    // docker's config is read first: its (wrong) password wins over auth.json's.
    let mut docker = DockerConfig::empty(&tmp.path().join("docker2.json"));
    docker
        .store(&reg.host(), &Credential::new("podman", "stale"))
        .unwrap();
    let dc = DockerConfig::load_file(docker.path())
        .unwrap()
        .with_auth_files(&[auth_json])
        .unwrap();
    assert_eq!(
        dc.get(&reg.host()).unwrap(),
        Some(Credential::new("podman", "stale"))
    );

    // Which file: REGISTRY_AUTH_FILE, else XDG_RUNTIME_DIR's.
    let files = registry::credentials::containers_auth_files(&|name| match name {
        "REGISTRY_AUTH_FILE" => Some("/a/auth.json".into()),
        "XDG_RUNTIME_DIR" => Some("/run/user/7".into()),
        _ => None,
    });
    assert_eq!(files, vec![std::path::PathBuf::from("/a/auth.json")]);
    let files = registry::credentials::containers_auth_files(&|name| match name {
        "XDG_RUNTIME_DIR" => Some("/run/user/7".into()),
        _ => None,
    });
    assert_eq!(
        files,
        vec![std::path::PathBuf::from("/run/user/7/containers/auth.json")]
    );
}

#[test]
fn registry_table_insecure_skips_verification_for_that_host_only() {
    let Some(reg) = Registry::start(Config::self_signed()) else {
        return;
    };
    let tmp = temp_dir("pallet-table-insecure");
    let config = test_config(tmp.path())
        .amend_from_json(&format!(
            r#"{{"registry": {{"{}": {{"insecure": true}}}}}}"#,
            reg.host()
        ))
        .unwrap();
    let client = Client::new(config, docker_config(tmp.path(), "x", None));
    let target = reference(&reg, "insecure/app:1");
    let img = image("table-insecure", &[100], "amd64");
    push_image(&client, &img.push_request(&target, &[]), &|_| {}).unwrap();
    pull_all(&client, &target, "linux/amd64");
    // Another name of the same server is not in the table: verified, and refused.
    let other =
        registry::Reference::parse(&format!("localhost:{}/insecure/app:1", reg.port())).unwrap();
    let err = client.get_manifest(&other).unwrap_err();
    assert!(matches!(err, RegistryError::Tls { .. }), "{err}");
}
