//! Running programs other than pallet (skopeo, umoci, git, openssl, ...) from a test: started
//! or a panic naming the command, and, for [`ok`], successful or a panic with everything it
//! printed. Also [`text`], the one way the tests read process output, and [`skopeo`], the
//! image tool most tests check pallet's output with.

use std::process::{Command, Output};

/// Bytes a process printed, as text (invalid UTF-8 replaced).
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `cmd` to its end; panics only when it cannot start.
pub fn output(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// Runs `cmd`, which must succeed; returns its stdout. On failure the panic shows the command,
/// its exit status, stdout and stderr.
pub fn ok(cmd: &mut Command) -> String {
    text(&ok_bytes(cmd))
}

/// [`ok`], with stdout as bytes.
pub fn ok_bytes(cmd: &mut Command) -> Vec<u8> {
    let out = output(cmd);
    assert_success(&format!("{cmd:?}"), &out);
    out.stdout
}

/// Panics unless `out` is a success, naming `what` and showing both streams.
pub fn assert_success(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// Everything a process printed: stdout, then stderr.
pub fn printed(out: &Output) -> String {
    format!("{}{}", text(&out.stdout), text(&out.stderr))
}

/// `skopeo --insecure-policy ARGS...` (no /etc/containers/policy.json needed), which must
/// succeed; its stdout. skopeo is the image reader no one here wrote.
pub fn skopeo(args: &[&str]) -> String {
    ok(Command::new("skopeo").arg("--insecure-policy").args(args))
}

/// [`skopeo`], its stdout parsed as JSON.
pub fn skopeo_json(args: &[&str]) -> serde_json::Value {
    let out = skopeo(args);
    serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("skopeo {args:?} printed no JSON ({e}):\n{out}"))
}
