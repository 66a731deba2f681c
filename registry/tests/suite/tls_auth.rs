//! TLS trust (the registry's CA from `ca_files` or a certs.d directory; a clear error without
//! it; verification skipped only for insecure registries) and authentication failures: wrong
//! passwords and anonymous pushes say what to do, and never show the secret.

use registry::{push_image, Client, Credential, RegistryError};
use testkit::docker_registry::{base64, Config, Registry, STD};
use testkit::files::temp_dir;
use testkit::registry_client::images::image;
use testkit::registry_client::{client_for, docker_config, pull_all, reference, test_config};

#[test]
fn tls_ca_from_a_certs_d_directory() {
    let Some(reg) = Registry::start(Config::tls()) else {
        return;
    };
    let tmp = temp_dir("pallet-certsd");
    let mut config = test_config(tmp.path());
    config.certs_dir = tmp.path().join("certs.d");
    // Both names the certificate is valid for, each with its own certs.d entry.
    for host in [reg.host(), format!("localhost:{}", reg.port())] {
        let dir = config.certs_dir.join(&host);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(reg.ca_path().unwrap(), dir.join("ca.crt")).unwrap();
    }
    let client = Client::new(config, docker_config(tmp.path(), "x", None));
    let img = image("certs-d", &[100], "amd64");
    for name in [reg.host(), format!("localhost:{}", reg.port())] {
        let target = registry::Reference::parse(&format!("{name}/tls/app:1")).unwrap();
        push_image(&client, &img.push_request(&target, &[]), &|_| {}).unwrap();
        pull_all(&client, &target, "linux/amd64");
    }
}

#[test]
fn tls_without_the_ca_is_a_clear_error() {
    let Some(reg) = Registry::start(Config::tls()) else {
        return;
    };
    let tmp = temp_dir("pallet-noca");
    let client = Client::new(
        test_config(tmp.path()),
        docker_config(tmp.path(), "x", None),
    );
    let err = client
        .get_manifest(&reference(&reg, "tls/app:1"))
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, RegistryError::Tls { .. }), "{text}");
    assert!(
        text.contains(&format!("/etc/docker/certs.d/{}/ca.crt", reg.host())),
        "{text}"
    );
    assert!(text.contains("--registry-ca"), "{text}");
    // A CA file that is not a certificate is named.
    let mut config = test_config(tmp.path());
    let bogus = tmp.path().join("bogus.crt");
    std::fs::write(&bogus, "not a certificate").unwrap();
    config.ca_files.insert(reg.host(), bogus);
    let client = Client::new(config, docker_config(tmp.path(), "x", None));
    let err = client
        .get_manifest(&reference(&reg, "tls/app:1"))
        .unwrap_err();
    assert!(err.to_string().contains("bogus.crt"), "{err}");
}

#[test]
fn tls_insecure_registry_skips_verification() {
    let Some(reg) = Registry::start(Config::tls()) else {
        return;
    };
    let tmp = temp_dir("pallet-insecure");
    let mut config = test_config(tmp.path());
    config.insecure.push(reg.host());
    let client = Client::new(config, docker_config(tmp.path(), "x", None));
    let img = image("insecure", &[100], "amd64");
    let target = reference(&reg, "tls/app:1");
    push_image(&client, &img.push_request(&target, &[]), &|_| {}).unwrap();
    pull_all(&client, &target, "linux/amd64");
}

/// Error text and Debug must not contain the secret (or its Basic-auth or JWT forms).
fn assert_no_secret(err: &RegistryError, user: &str, secret: &str) {
    let basic = base64(format!("{user}:{secret}").as_bytes(), STD, true);
    for text in [err.to_string(), format!("{err:?}")] {
        assert!(!text.contains(secret), "secret in {text}");
        assert!(!text.contains(&basic), "basic auth in {text}");
        assert!(!text.contains("eyJ"), "a JWT in {text}");
        assert!(!text.contains("Bearer "), "a token in {text}");
    }
}

fn wrong_password(config: Config) {
    let (user, pass) = match &config {
        Config::Htpasswd { user, pass } | Config::Token { user, pass } => {
            (user.clone(), pass.clone())
        }
        _ => unreachable!(),
    };
    let Some(reg) = Registry::start(config) else {
        return;
    };
    let tmp = temp_dir("pallet-wrongpw");
    let wrong = "Wr0ng-Passw0rd-123";
    let client = Client::new(
        test_config(tmp.path()),
        docker_config(
            tmp.path(),
            &reg.host(),
            Some(&Credential::new(&user, wrong)),
        ),
    );
    let img = image("wrong", &[100], "amd64");
    let err = push_image(
        &client,
        &img.push_request(&reference(&reg, "auth/app:1"), &[]),
        &|_| {},
    )
    .unwrap_err();
    let text = err.to_string();
    assert_eq!(err.status(), Some(401), "{text}");
    assert!(
        text.contains(&format!("pallet login {}", reg.host())),
        "{text}"
    );
    assert_no_secret(&err, &user, wrong);

    // `pallet login`: the wrong password is refused, the right one accepted.
    let err = client
        .check_login(&reg.host(), Some(&Credential::new(&user, wrong)))
        .unwrap_err();
    let text = err.to_string();
    assert!(err.is_auth(), "{text}");
    assert!(text.contains("wrong username or password"), "{text}");
    assert_no_secret(&err, &user, wrong);
    client
        .check_login(&reg.host(), Some(&Credential::new(&user, &pass)))
        .unwrap();
    // Stored credentials are checked when none are given.
    assert!(client.check_login(&reg.host(), None).is_err());

    // Anonymous: told to log in.
    let anon = Client::new(
        test_config(tmp.path()),
        docker_config(tmp.path(), "x", None),
    );
    let err = anon
        .get_manifest(&reference(&reg, "auth/app:1"))
        .unwrap_err();
    assert_eq!(err.status(), Some(401), "{err}");
    assert!(err.to_string().contains("pallet login"), "{err}");
}

#[test]
fn wrong_password_basic_auth() {
    wrong_password(Config::htpasswd("alice", "right-basic"));
}

#[test]
fn wrong_password_token_auth() {
    wrong_password(Config::token("bob", "right-token"));
}

#[test]
fn login_check_with_stored_credentials() {
    let Some(reg) = Registry::start(Config::token("frank", "pw-frank")) else {
        return;
    };
    let tmp = temp_dir("pallet-login");
    let client = client_for(&reg, tmp.path());
    client.check_login(&reg.host(), None).unwrap();
    // A registry without auth accepts any login, as docker's does.
    let Some(open) = Registry::start(Config::plain()) else {
        return;
    };
    client
        .check_login(&open.host(), Some(&Credential::new("x", "y")))
        .unwrap();
}

#[test]
fn identity_token_is_used_as_an_oauth_refresh_token() {
    let Some(reg) = Registry::start(Config::token("heidi", "refresh-heidi")) else {
        return;
    };
    let tmp = temp_dir("pallet-idtoken");
    std::fs::write(
        tmp.path().join("config.json"),
        format!(
            r#"{{"auths": {{"{}": {{"identitytoken": "refresh-heidi"}}}}}}"#,
            reg.host()
        ),
    )
    .unwrap();
    let dc = registry::DockerConfig::load(Some(tmp.path())).unwrap();
    let client = Client::new(test_config(tmp.path()), dc);
    let img = image("idtoken", &[100], "amd64");
    let target = reference(&reg, "id/app:1");
    let before = client.request_counts();
    push_image(&client, &img.push_request(&target, &[]), &|_| {}).unwrap();
    pull_all(&client, &target, "linux/amd64");
    let cost = client.request_counts().since(&before);
    assert!(cost.post >= 3, "token POSTs and upload POSTs: {cost:?}");
    // A wrong refresh token is refused with the login hint.
    std::fs::write(
        tmp.path().join("config.json"),
        format!(
            r#"{{"auths": {{"{}": {{"identitytoken": "stale"}}}}}}"#,
            reg.host()
        ),
    )
    .unwrap();
    let dc = registry::DockerConfig::load(Some(tmp.path())).unwrap();
    let client = Client::new(test_config(tmp.path()), dc);
    let err = client.get_manifest(&target).unwrap_err();
    assert!(err.to_string().contains("pallet login"), "{err}");
    assert_no_secret(&err, "<token>", "stale");
}
