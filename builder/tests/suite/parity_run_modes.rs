//! Our own versions of the cases in BuildKit's frontend/dockerfile/dockerfile_runsecurity_test.go
//! and dockerfile_runnetwork_test.go (status of each in testdata/parity/CHECKLIST.md).
//! `RUN --security=insecure` with and without `--allow` is build_e2e's
//! security_insecure_needs_allow_and_then_runs_unconfined.

use crate::parity_kit::{can_run, Kit};
use std::io::Write;
use std::net::TcpListener;

/// testRunSecurityDefault, testRunSecuritySandbox: RUN's bounding set is docker's default
/// (00000000a80425fb), with or without `--security=sandbox`, and with `--allow
/// security.insecure` given but not asked for.
#[test]
fn default_and_sandbox_capabilities() {
    if !can_run("parity_run_modes") {
        return;
    }
    let kit = Kit::new();
    let ctx = kit.context(
        "ctx",
        "FROM busybox\n\
         RUN [ \"$(cat /proc/self/status | grep CapBnd)\" == \"CapBnd:\t00000000a80425fb\" ]\n\
         RUN --security=sandbox [ \"$(cat /proc/self/status | grep CapBnd)\" == \"CapBnd:\t00000000a80425fb\" ]\n",
        &[],
    );
    kit.ok(&ctx, &[]);
    kit.ok(&ctx, &["--no-cache", "--allow", "security.insecure"]);
}

/// A TCP server on 127.0.0.1 that answers every connection with "foo\n" (BuildKit's
/// echoserver), until the test ends.
fn foo_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut c in listener.incoming().flatten() {
            let _ = c.write_all(b"foo\n");
        }
    });
    port
}

/// testRunGlobalNetwork, testRunHostNetwork (the host half), testRunNoNetwork (the none
/// half): RUN reaches the host's 127.0.0.1 by default (pallet's default is the host's network,
/// as BuildKit's with force-network-mode=host; see README) and with `--network=host`, and
/// `--network=none` has no interface but loopback and cannot reach it.
#[test]
fn host_and_no_network() {
    if !can_run("parity_run_modes") {
        return;
    }
    let kit = Kit::new();
    let port = foo_server();
    let ctx = kit.context(
        "ctx",
        &format!(
            "FROM busybox\n\
             RUN nc 127.0.0.1 {port} | grep foo\n\
             RUN --network=host nc 127.0.0.1 {port} | grep foo\n\
             RUN --network=none ! nc -z 127.0.0.1 {port}\n\
             RUN --network=none ! ip link show eth0 && [ \"$(ls /sys/class/net)\" = lo ]\n"
        ),
        &[],
    );
    kit.ok(&ctx, &[]);
    kit.ok(&ctx, &["--no-cache", "--allow", "network.host"]);
}
