//! Registries set up as docker, BuildKit and podman users have them, driven through the pallet
//! binary: docker's documented self-signed certificate in certs.d (login, push, pull, build
//! FROM), a mirror from the config's `registry` table for a registry other than docker.io while
//! the origin is down, and the registry client taking Go's proxy rule (HTTP(S)_PROXY through a
//! real CONNECT proxy, NO_PROXY, loopback never proxied). The certs.d directory is the test's
//! own, set with the config's `certs-dir`.
//!
//! Needs what `registry_e2e` needs (root, runc, skopeo, busybox-static, docker-registry,
//! htpasswd, openssl); fails under CI=true when they are missing.

use super::registry_e2e::{registry_and_env, Env};
use testkit::connect_proxy::ConnectProxy;
use testkit::docker_registry::Config;
use testkit::text;

/// Writes pallet's registry settings for this environment.
fn settings(env: &Env, json: &str) {
    std::fs::write(env.docker_config.join("pallet-config.json"), json).unwrap();
}

#[test]
fn docker_documented_self_signed_registry_through_certs_d() {
    let password = "s3lf-signed-pw";
    let Some((reg, env)) = registry_and_env(Config::self_signed_htpasswd("ci", password)) else {
        return;
    };
    let certs_dir = env.tmp.path().join("certs.d");
    settings(
        &env,
        &format!(r#"{{"certs-dir": "{}"}}"#, certs_dir.display()),
    );
    let host = reg.host();
    let login = || {
        env.pallet("a")
            .args(["login", "-u", "ci", "--password-stdin", &host])
            .stdin(format!("{password}\n"))
            .output()
    };

    // Not yet in certs.d: refused, and told where ca.crt goes.
    let refused = login();
    assert!(!refused.status.success());
    let err = text(&refused.stderr);
    assert!(err.contains(&format!("certs.d/{host}/ca.crt")), "{err}");

    // docker's documentation: domain.crt copied to certs.d/HOST:PORT/ca.crt.
    std::fs::create_dir_all(certs_dir.join(&host)).unwrap();
    std::fs::copy(reg.ca_path().unwrap(), certs_dir.join(&host).join("ca.crt")).unwrap();
    let out = login();
    assert!(out.status.success(), "{}", text(&out.stderr));

    env.with_busybox("a");
    let app = format!("{host}/docs/app:1");
    let pushed = env.build_push("a", "FROM busybox\nRUN echo trusted > /t\n", &app, &[]);
    assert!(
        pushed.contains(&format!("pushed {app}@sha256:")),
        "{pushed}"
    );
    env.pallet("c").args(["pull", &app]).succeeds();
    assert_eq!(
        env.build_file("b", &format!("FROM {app}\n"), &[], "t"),
        "trusted\n"
    );
}

#[test]
fn mirror_from_the_registry_table_serves_a_registry_whose_origin_is_down() {
    let Some((mirror, env)) = registry_and_env(Config::plain()) else {
        return;
    };
    env.with_busybox("a");
    let seeded = format!("{}/team/base:1", mirror.host());
    env.build_push("a", "FROM busybox\nRUN echo mirrored > /m\n", &seeded, &[]);

    let origin = format!("127.0.0.1:{}", testkit::net::free_port());
    let wanted = format!("{origin}/team/base:1");
    let down = env.run("b", &["pull", &wanted]);
    assert!(!down.status.success(), "the origin is down");

    settings(
        &env,
        &format!(
            r#"{{"registry": {{"{origin}": {{"mirrors": ["{}"]}}}}}}"#,
            mirror.host()
        ),
    );
    assert_eq!(
        env.build_file("b", &format!("FROM {wanted}\n"), &[], "m"),
        "mirrored\n"
    );
}

#[test]
fn registry_client_takes_go_proxy_rule() {
    let Some((reg, env)) = registry_and_env(Config::plain()) else {
        return;
    };
    let proxy = ConnectProxy::start();
    env.with_busybox("a");
    // Loopback is never proxied, whatever the variables say.
    let local = format!("{}/px/app:1", reg.host());
    env.pallet("a")
        .env("HTTPS_PROXY", "http://127.0.0.1:9")
        .env("HTTP_PROXY", "http://127.0.0.1:9")
        .args(["build", "-t", &local, "--push"])
        .arg(env.context("ctx-proxy", "FROM busybox\nRUN echo px > /p\n"))
        .succeeds();
    assert!(proxy.targets().is_empty());

    // A name only the proxy can reach (it tunnels any name to 127.0.0.1).
    let name = format!("registry.pallet-proxy-test.invalid:{}", reg.port());
    let remote = format!("{name}/px/app:1");
    let pull = |no_proxy: &str| {
        env.pallet("c")
            .env("HTTPS_PROXY", proxy.url())
            .env("http_proxy", proxy.url())
            .env("NO_PROXY", no_proxy)
            .env("ALL_PROXY", "http://127.0.0.1:9")
            .args(["pull", "--insecure-registry", &name, &remote])
            .output()
    };
    let out = pull("example.com,10.0.0.0/8");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        proxy.targets().iter().all(|t| t == &name) && !proxy.targets().is_empty(),
        "{:?}",
        proxy.targets()
    );

    // NO_PROXY names its domain: connected directly, and a .invalid name does not resolve.
    let before = proxy.targets().len();
    let out = pull(".pallet-proxy-test.invalid");
    assert!(!out.status.success());
    assert_eq!(proxy.targets().len(), before, "NO_PROXY bypasses the proxy");
}
