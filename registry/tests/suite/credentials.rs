//! docker's config.json: `auths` (base64 `auth`, username/password, URL keys), `credHelpers`,
//! `credsStore` through a real helper program (a shell script speaking the
//! docker-credential-helpers protocol, found through `with_helper_dir`, never by changing PATH),
//! and `store`/`erase` as `pallet login`/`logout` use them.

use registry::credentials::{credential_key, DOCKER_HUB_KEY};
use registry::{Client, Credential, DockerConfig};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use testkit::docker_registry::{Config, Registry};
use testkit::files::temp_dir;
use testkit::registry_client::images::image;
use testkit::registry_client::{reference, test_config};

/// `docker-credential-test`: keeps each server's JSON in a file next to itself.
const HELPER: &str = r#"#!/bin/sh
dir="$(dirname "$0")/store"
mkdir -p "$dir"
key() { printf %s "$1" | tr '/:' '__'; }
case "$1" in
  get)
    read -r url
    f="$dir/$(key "$url")"
    if [ -f "$f" ]; then cat "$f"; else echo "credentials not found in native keychain"; exit 1; fi ;;
  store)
    json=$(cat)
    url=$(printf %s "$json" | sed -n 's/.*"ServerURL":"\([^"]*\)".*/\1/p')
    printf %s "$json" > "$dir/$(key "$url")" ;;
  erase)
    read -r url
    f="$dir/$(key "$url")"
    if [ -f "$f" ]; then rm "$f"; else echo "credentials not found in native keychain"; exit 1; fi ;;
  *) echo "unknown action $1"; exit 1 ;;
esac
"#;

fn install_helper(dir: &Path, name: &str) {
    let path = dir.join(format!("docker-credential-{name}"));
    std::fs::write(&path, HELPER).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn write_config(dir: &Path, json: &str) -> DockerConfig {
    std::fs::write(dir.join("config.json"), json).unwrap();
    DockerConfig::load(Some(dir)).unwrap()
}

fn cred(user: &str, secret: &str) -> Option<Credential> {
    Some(Credential::new(user, secret))
}

#[test]
fn auths_in_every_shape_docker_writes() {
    let tmp = temp_dir("pallet-auths");
    // "dXNlcjE6cGE6c3M=" = "user1:pa:ss" (the password may contain ':').
    let dc = write_config(
        tmp.path(),
        r#"{"auths": {
            "https://index.docker.io/v1/": {"auth": "aHViOmh1YnB3"},
            "reg.example.com:5000": {"auth": "dXNlcjE6cGE6c3M="},
            "https://other.example.com/v1/": {"username": "u2", "password": "p2"},
            "tok.example.com": {"identitytoken": "refresh-me"},
            "empty.example.com": {}
        }}"#,
    );
    assert_eq!(dc.get("docker.io").unwrap(), cred("hub", "hubpw"));
    assert_eq!(
        dc.get("registry-1.docker.io").unwrap(),
        cred("hub", "hubpw")
    );
    assert_eq!(
        dc.get("reg.example.com:5000").unwrap(),
        cred("user1", "pa:ss")
    );
    assert_eq!(dc.get("other.example.com").unwrap(), cred("u2", "p2"));
    let t = dc.get("tok.example.com").unwrap().unwrap();
    assert!(t.is_identity_token() && t.secret == "refresh-me");
    assert_eq!(dc.get("empty.example.com").unwrap(), None);
    assert_eq!(dc.get("nowhere.example.com").unwrap(), None);
    assert_eq!(credential_key("docker.io"), DOCKER_HUB_KEY);
    // Debug shows neither the file's secrets nor a credential's.
    let debug = format!("{dc:?} {:?}", dc.get("docker.io").unwrap());
    for secret in ["aHViOmh1YnB3", "hubpw", "p2", "refresh-me", "pa:ss"] {
        assert!(!debug.contains(secret), "{secret} in {debug}");
    }
    // A missing file is an empty config; a broken one names the file, not its content.
    assert_eq!(
        DockerConfig::load(Some(&tmp.path().join("none")))
            .unwrap()
            .get("x")
            .unwrap(),
        None
    );
    std::fs::write(
        tmp.path().join("config.json"),
        r#"{"auths": {"h": {"auth": "%%%"}}}"#,
    )
    .unwrap();
    let err = DockerConfig::load(Some(tmp.path()))
        .unwrap()
        .get("h")
        .unwrap_err()
        .to_string();
    assert!(err.contains("config.json") && !err.contains("%%%"), "{err}");
}

#[test]
fn cred_helpers_and_creds_store_run_the_helper() {
    let tmp = temp_dir("pallet-helpers");
    install_helper(tmp.path(), "test");
    install_helper(tmp.path(), "other");
    std::fs::create_dir_all(tmp.path().join("store")).unwrap();
    std::fs::write(
        tmp.path().join("store/reg.example.com_5000"),
        r#"{"ServerURL":"reg.example.com:5000","Username":"helped","Secret":"from-helper"}"#,
    )
    .unwrap();
    std::fs::write(
        tmp.path().join("store/https___index.docker.io_v1_"),
        r#"{"ServerURL":"https://index.docker.io/v1/","Username":"hubby","Secret":"hub-secret"}"#,
    )
    .unwrap();
    let dc = write_config(
        tmp.path(),
        r#"{"credsStore": "test", "credHelpers": {"gone.example.com": "missing"},
            "auths": {"fallback.example.com": {"auth": "ZmI6ZmJwdw=="}}}"#,
    )
    .with_helper_dir(tmp.path());
    assert_eq!(
        dc.helper_for("reg.example.com:5000").as_deref(),
        Some("test")
    );
    assert_eq!(
        dc.get("reg.example.com:5000").unwrap(),
        cred("helped", "from-helper")
    );
    assert_eq!(dc.get("docker.io").unwrap(), cred("hubby", "hub-secret"));
    // Not in the store: `auths` still counts; then nothing.
    assert_eq!(dc.get("fallback.example.com").unwrap(), cred("fb", "fbpw"));
    assert_eq!(dc.get("unknown.example.com").unwrap(), None);
    // A helper that is not installed is named, with what to do.
    let err = dc.get("gone.example.com").unwrap_err().to_string();
    assert!(
        err.contains("docker-credential-missing") && err.contains("credHelpers"),
        "{err}"
    );
}

#[test]
fn store_and_erase_round_trip_keeps_unknown_fields() {
    let tmp = temp_dir("pallet-store");
    let mut dc = write_config(
        tmp.path(),
        r#"{"psFormat": "table {{.ID}}", "experimental": "enabled",
            "auths": {"keep.example.com": {"auth": "azprcHc=", "email": "k@example.com"},
                      "reg.example.com": {"auth": "b2xkOm9sZA==", "email": "me@example.com"}}}"#,
    );
    dc.store("reg.example.com", &Credential::new("new", "n3w-pw"))
        .unwrap();
    dc.store("docker.io", &Credential::new("hub", "hub-pw"))
        .unwrap();
    let path = tmp.path().join("config.json");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(json["psFormat"], "table {{.ID}}");
    assert_eq!(json["experimental"], "enabled");
    assert_eq!(json["auths"]["reg.example.com"]["email"], "me@example.com");
    assert!(json["auths"][DOCKER_HUB_KEY]["auth"].is_string());
    let reread = DockerConfig::load(Some(tmp.path())).unwrap();
    assert_eq!(
        reread.get("reg.example.com").unwrap(),
        cred("new", "n3w-pw")
    );
    assert_eq!(reread.get("docker.io").unwrap(), cred("hub", "hub-pw"));
    assert_eq!(reread.get("keep.example.com").unwrap(), cred("k", "kpw"));

    let mut dc = reread;
    assert!(dc.erase("reg.example.com").unwrap());
    assert!(!dc.erase("reg.example.com").unwrap());
    let reread = DockerConfig::load(Some(tmp.path())).unwrap();
    assert_eq!(reread.get("reg.example.com").unwrap(), None);
    assert_eq!(reread.get("keep.example.com").unwrap(), cred("k", "kpw"));
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(json["psFormat"], "table {{.ID}}");
    // No temp files left behind.
    let names: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
}

#[test]
fn store_goes_to_the_helper_when_one_is_configured() {
    let tmp = temp_dir("pallet-store-helper");
    install_helper(tmp.path(), "test");
    let mut dc = write_config(
        tmp.path(),
        r#"{"credHelpers": {"reg.example.com": "test"}}"#,
    )
    .with_helper_dir(tmp.path());
    dc.store("reg.example.com", &Credential::new("me", "helper-secret"))
        .unwrap();
    let file = std::fs::read_to_string(tmp.path().join("config.json")).unwrap();
    assert!(
        !file.contains("helper-secret") && !file.contains("auth\""),
        "{file}"
    );
    assert!(
        file.contains("reg.example.com"),
        "an empty auths entry, as docker writes: {file}"
    );
    let stored = std::fs::read_to_string(tmp.path().join("store/reg.example.com")).unwrap();
    assert!(stored.contains("helper-secret"));
    let dc2 = DockerConfig::load(Some(tmp.path()))
        .unwrap()
        .with_helper_dir(tmp.path());
    assert_eq!(
        dc2.get("reg.example.com").unwrap(),
        cred("me", "helper-secret")
    );
    assert!(dc.erase("reg.example.com").unwrap());
    assert!(!tmp.path().join("store/reg.example.com").exists());
    assert_eq!(dc2.get("reg.example.com").unwrap(), None);
}

#[test]
fn login_with_credentials_from_a_helper() {
    let Some(reg) = Registry::start(Config::htpasswd("grace", "pw-grace")) else {
        return;
    };
    let tmp = temp_dir("pallet-login-helper");
    install_helper(tmp.path(), "test");
    let mut dc = write_config(tmp.path(), r#"{"credsStore": "test"}"#).with_helper_dir(tmp.path());
    // `pallet login`: check, then store where docker would.
    let client = Client::new(test_config(tmp.path()), dc.clone());
    let good = Credential::new("grace", "pw-grace");
    client.check_login(&reg.host(), Some(&good)).unwrap();
    dc.store(&reg.host(), &good).unwrap();
    // A new client finds them through the helper and can push.
    let dc = DockerConfig::load(Some(tmp.path()))
        .unwrap()
        .with_helper_dir(tmp.path());
    let client = Client::new(test_config(tmp.path()), dc);
    let img = image("helper-login", &[10], "amd64");
    let target = reference(&reg, "helper/app:1");
    registry::push_image(&client, &img.push_request(&target, &[]), &|_| {}).unwrap();
}
