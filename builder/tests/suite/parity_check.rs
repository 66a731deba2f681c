//! Our own versions of the builds in BuildKit's frontend/dockerfile/dockerfile_check_test.go
//! whose warnings matter where the build fails: what `pallet build` prints (the rules' texts
//! and lines are asserted in the frontend's parity tests; the status of each BuildKit
//! function is in testdata/parity/CHECKLIST.md).

use crate::parity_kit::{can_run, Kit};

/// Where in `text` the line `warning: {warning} (…/Dockerfile:{line})` starts (the
/// Dockerfile is named by its path), with `text` in the panic when there is none.
fn warning_at(text: &str, warning: &str, line: usize) -> usize {
    let mut offset = 0;
    for l in text.split_inclusive('\n') {
        let t = l.trim_end();
        if t.starts_with(&format!("warning: {warning} ("))
            && t.ends_with(&format!("/Dockerfile:{line})"))
        {
            return offset;
        }
        offset += l.len();
    }
    panic!("no warning {warning:?} at line {line} in:\n{text}")
}

/// Where `needle` is in `text`.
fn at(text: &str, needle: &str) -> usize {
    text.find(needle)
        .unwrap_or_else(|| panic!("no {needle:?} in:\n{text}"))
}

/// testCopyIgnoredFiles: copying a file the `.dockerignore` excludes fails (the file is not
/// in the context) and the CopyIgnoredFile warnings, one per instruction, come before the
/// error; `# check=skip=CopyIgnoredFile` silences them, not the error.
#[test]
fn copy_ignored_file_warns_before_the_failure() {
    if !can_run("parity_check") {
        return;
    }
    let kit = Kit::new();
    let df = "\nFROM scratch\nCOPY Dockerfile .\nADD Dockerfile /windy\n";
    let ctx = kit.context("ignored", df, &[(".dockerignore", "\nDockerfile\n")]);
    let err = kit.error(&ctx, &[]);
    let copy = warning_at(
        &err,
        "CopyIgnoredFile: Attempting to Copy file \"Dockerfile\" that is excluded by .dockerignore",
        3,
    );
    let add = warning_at(
        &err,
        "CopyIgnoredFile: Attempting to Add file \"Dockerfile\" that is excluded by .dockerignore",
        4,
    );
    let error = at(
        &err,
        "error: [1/2] COPY Dockerfile .: \"/Dockerfile\": not found",
    );
    assert!(copy < error && add < error, "warnings first:\n{err}");
    assert!(err.contains("/Dockerfile:3\n"), "the failing COPY: {err}");

    // A multi-platform build (no RUN: no emulation needed) prints them as well.
    let err = kit.error(&ctx, &["--platform", "linux/amd64,linux/arm64"]);
    let copy = warning_at(
        &err,
        "CopyIgnoredFile: Attempting to Copy file \"Dockerfile\" that is excluded by .dockerignore",
        3,
    );
    assert!(copy < at(&err, "error: ["), "warnings first:\n{err}");

    let ctx = kit.context(
        "ignored-skip",
        &format!("# check=skip=CopyIgnoredFile\n{df}"),
        &[(".dockerignore", "\nDockerfile\n")],
    );
    let err = kit.error(&ctx, &[]);
    assert!(err.contains("not found"), "{err}");
    assert!(!err.contains("CopyIgnoredFile"), "{err}");
}

/// testWarningsBeforeError: the warnings found before an instruction that does not parse are
/// printed before the error.
#[test]
fn warnings_before_a_parse_error_are_printed() {
    if !can_run("parity_check") {
        return;
    }
    let kit = Kit::new();
    let ctx = kit.context(
        "before-error",
        "\nFROM scratch AS BadStageName\nMAINTAINER me@example.org\nBADCMD\n",
        &[],
    );
    let err = kit.error(&ctx, &[]);
    let casing = warning_at(
        &err,
        "StageNameCasing: Stage name 'BadStageName' should be lowercase",
        2,
    );
    let maintainer = warning_at(
        &err,
        "MaintainerDeprecated: Maintainer instruction is deprecated in favor of using label",
        3,
    );
    let error = at(&err, "error: unknown instruction: BADCMD");
    assert!(casing < maintainer && maintainer < error, "{err}");
    assert!(err.contains("/Dockerfile:4:1\n"), "{err}");
}
