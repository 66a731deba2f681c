//! Our own versions of the single-platform cases in BuildKit's frontend/dockerfile/
//! dockerfile_platform_test.go (status of each in testdata/parity/CHECKLIST.md).

use crate::parity_kit::{assert_files, can_run, Kit};

/// testPlatformArgsImplicit: TARGETOS is known in FROM without being declared.
#[test]
fn platform_args_implicit() {
    if !can_run("parity_platform") {
        return;
    }
    let kit = Kit::new();
    let ctx = kit.context(
        "ctx",
        "FROM scratch AS build-linux\nCOPY foo bar\nFROM build-${TARGETOS}\nCOPY foo2 bar2\n",
        &[("foo", "d0"), ("foo2", "d1")],
    );
    assert_files(&kit.local(&ctx, &[]), &[("bar", "d0"), ("bar2", "d1")]);
}

/// testPlatformArgsExplicit: with `--platform` of another machine, a stage FROM
/// `--platform=$BUILDPLATFORM` runs here and sees TARGETPLATFORM, and a `--build-arg
/// TARGETOS` overrides the automatic value.
#[test]
fn platform_args_explicit() {
    if !can_run("parity_platform") {
        return;
    }
    let kit = Kit::new();
    let ctx = kit.context(
        "ctx",
        "FROM --platform=$BUILDPLATFORM busybox AS build\nARG TARGETPLATFORM\nARG TARGETOS\n\
         RUN mkdir /out && echo -n $TARGETPLATFORM > /out/platform && echo -n $TARGETOS > /out/os\n\
         FROM scratch\nCOPY --from=build out .\n",
        &[],
    );
    assert_files(
        &kit.local(
            &ctx,
            &[
                "--platform",
                "darwin/ppc64le",
                "--build-arg",
                "TARGETOS=freebsd",
            ],
        ),
        &[("platform", "darwin/ppc64le"), ("os", "freebsd")],
    );
}
