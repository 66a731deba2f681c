//! Our own versions of the cases in BuildKit's frontend/dockerfile/dockerfile_cmd_test.go
//! (status of each in testdata/parity/CHECKLIST.md).

use crate::parity_kit::{can_run, Kit};
use serde_json::json;

/// testCmdShell, testDefaultShellAndPath (linux/amd64), the ENTRYPOINT half of
/// testInvalidJSONCommands: ENTRYPOINT resets an inherited CMD and takes the SHELL; a scratch
/// image gets `/bin/sh -c` and the default PATH; text after a JSON array makes the shell
/// form.
#[test]
fn cmd_entrypoint_and_shell() {
    if !can_run("parity_cmd") {
        return;
    }
    let kit = Kit::new();
    let ctx = kit.context("base", "FROM scratch\nCMD [\"test\"]\n", &[]);
    kit.ok(&ctx, &["-t", "docker.io/moby/cmdoverridetest:latest"]);
    let ctx = kit.context(
        "child",
        "FROM docker.io/moby/cmdoverridetest:latest\nSHELL [\"ls\"]\nENTRYPOINT my entrypoint\n",
        &[],
    );
    let config = kit.config(&ctx, &[]);
    assert!(config["config"]["Cmd"].is_null(), "{}", config["config"]);
    assert_eq!(
        config["config"]["Entrypoint"],
        json!(["ls", "my entrypoint"])
    );

    let ctx = kit.context(
        "scratch",
        "FROM scratch\nENTRYPOINT foo bar\nCOPY Dockerfile .\n",
        &[],
    );
    let config = kit.config(&ctx, &["--platform", "linux/amd64"]);
    assert_eq!(
        config["config"]["Entrypoint"],
        json!(["/bin/sh", "-c", "foo bar"])
    );
    assert_eq!(
        config["config"]["Env"],
        json!(["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"])
    );
    assert_eq!(config["rootfs"]["diff_ids"].as_array().unwrap().len(), 1);

    let ctx = kit.context(
        "invalid-json",
        "FROM busybox\nENTRYPOINT []random string\n",
        &[],
    );
    let config = kit.config(&ctx, &[]);
    assert_eq!(
        config["config"]["Entrypoint"],
        json!(["/bin/sh", "-c", "[]random string"])
    );
}

/// testIgnoreEntrypoint, testInvalidJSONCommands (RUN), testDockerfileInvalidCommand: RUN
/// does not go through ENTRYPOINT; a RUN with text after its JSON array runs as a shell
/// command and fails naming it; a failing command is named with its shell and "did not
/// complete successfully".
#[test]
fn run_ignores_entrypoint_and_failures_say_so() {
    if !can_run("parity_cmd") {
        return;
    }
    let kit = Kit::new();
    let ctx = kit.context(
        "entrypoint",
        "FROM busybox\nENTRYPOINT [\"/nosuchcmd\"]\nRUN [\"ls\"]\n",
        &[],
    );
    kit.ok(&ctx, &[]);
    let ctx = kit.context(
        "invalid-json",
        "FROM busybox\nRUN [\"echo\", \"hello\"]this is invalid\n",
        &[],
    );
    let err = kit.error(&ctx, &[]);
    assert!(err.contains("this is invalid"), "{err}");
    let ctx = kit.context("invalid-cmd", "\tFROM busybox\n\tRUN invalidcmd\n", &[]);
    let err = kit.error(&ctx, &[]);
    assert!(err.contains("/bin/sh -c invalidcmd"), "{err}");
    assert!(err.contains("did not complete successfully"), "{err}");
}
