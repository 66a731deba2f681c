//! Our own versions of the cases in BuildKit's frontend/dockerfile/dockerfile_multistage_test.go
//! and dockerfile_dockerignore_test.go (status of each in testdata/parity/CHECKLIST.md). The
//! errors of both files are in the frontend's parity tests.

use crate::parity_kit::{assert_files, can_run, read, Kit};

/// testMultiStageImplicitFrom, testMultiStageCaseInsensitive: `COPY --from=IMAGE` without a
/// stage of that name uses the image; a stage of that name masks it; stage names and
/// `--target` match case-insensitively.
#[test]
fn implicit_from_and_case_insensitive_stages() {
    if !can_run("parity_multistage") {
        return;
    }
    let kit = Kit::new();
    let ctx = kit.context(
        "implicit",
        "FROM scratch\nCOPY --from=busybox /etc/passwd test\n",
        &[],
    );
    assert!(read(&kit.local(&ctx, &[]), "test").contains("root"));
    let ctx = kit.context(
        "masked",
        "FROM busybox AS golang\nRUN mkdir -p /usr/bin && echo -n foo > /usr/bin/go\n\
         FROM scratch\nCOPY --from=golang /usr/bin/go go\n",
        &[],
    );
    assert_files(&kit.local(&ctx, &[]), &[("go", "foo")]);
    let ctx = kit.context(
        "case",
        "FROM scratch AS STAge0\nCOPY foo bar\nFROM scratch AS staGE1\nCOPY --from=staGE0 bar baz\n\
         FROM scratch\nCOPY --from=stage1 baz bax\n",
        &[("foo", "foo-contents")],
    );
    assert_files(
        &kit.local(&ctx, &["--target", "Stage1"]),
        &[("baz", "foo-contents")],
    );
}

/// testDockerignore, testDockerignoreInvalid, testDockerignoreOverride: .dockerignore with a
/// re-included file, the Dockerfile and .dockerignore themselves ignored; a pattern that is
/// only `!` fails the build (promptly); `Dockerfile.dockerignore` beside the Dockerfile wins
/// over .dockerignore, per Dockerfile given with -f.
#[test]
fn dockerignore_files() {
    if !can_run("parity_multistage") {
        return;
    }
    let kit = Kit::new();
    let ctx = kit.context(
        "ignore",
        "FROM scratch\nCOPY . .\n",
        &[
            ("foo", "foo-contents"),
            ("bar", "bar-contents"),
            ("baz", "baz-contents"),
            ("bay", "bay-contents"),
            (".dockerignore", "\nba*\nDockerfile\n!bay\n.dockerignore\n"),
        ],
    );
    let out = kit.local(&ctx, &[]);
    assert_files(&out, &[("foo", "foo-contents"), ("bay", "bay-contents")]);
    for gone in [".dockerignore", "Dockerfile", "bar", "baz"] {
        assert!(!out.join(gone).exists(), "{gone} was copied");
    }

    let ctx = kit.context(
        "invalid",
        "FROM scratch\nCOPY . .\n",
        &[(".dockerignore", "!\n")],
    );
    let started = std::time::Instant::now();
    let err = kit.error(&ctx, &[]);
    assert!(started.elapsed() < std::time::Duration::from_secs(15));
    assert!(err.contains(".dockerignore"), "{err}");

    let ctx = kit.context(
        "override",
        "FROM busybox\nCOPY . .\nRUN [ -f foo ] && [ ! -f bar ]\n",
        &[
            ("Dockerfile.dockerignore", "\nbar\n"),
            (
                "Dockerfile2",
                "FROM busybox\nCOPY . .\nRUN [ ! -f foo ] && [ -f bar ]\n",
            ),
            ("Dockerfile2.dockerignore", "\nfoo\n"),
            ("foo", "contents0"),
            ("bar", "contents0"),
        ],
    );
    kit.ok(&ctx, &[]);
    let file = ctx.join("Dockerfile2");
    kit.ok(&ctx, &["-f", file.to_str().unwrap()]);
}
