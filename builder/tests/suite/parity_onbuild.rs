//! Our own versions of the cases in BuildKit's frontend/dockerfile/dockerfile_onbuild_test.go
//! and testOnBuildHeredoc of dockerfile_heredoc_test.go (status of each in
//! testdata/parity/CHECKLIST.md). BuildKit pushes the ONBUILD bases to a registry and builds
//! FROM them; here they are tagged in the store, which a build looks in first.

use crate::parity_kit::{assert_files, can_run, Kit};

/// testOnBuildCleared, testOnBuildWithChildStage (#5578), testOnBuildHeredoc: the triggers run
/// once, in the build that uses the image, and are not in the image that build makes; a
/// stage FROM that stage does not run them again; a trigger can be a RUN heredoc.
#[test]
fn triggers_run_once() {
    if !can_run("parity_onbuild") {
        return;
    }
    let kit = Kit::new();
    let ctx = kit.context(
        "base",
        "FROM busybox\nONBUILD RUN mkdir -p /out && echo -n 11 >> /out/foo\n",
        &[],
    );
    kit.ok(&ctx, &["-t", "onbuild-base"]);
    let ctx = kit.context("child", "FROM onbuild-base\n", &[]);
    let config = kit.config(&ctx, &["-t", "onbuild-child"]);
    assert!(
        config["config"]["OnBuild"].is_null(),
        "{}",
        config["config"]
    );
    let ctx = kit.context(
        "grandchild",
        "FROM onbuild-child AS base\nFROM onbuild-child\nCOPY --from=base /out /\n",
        &[],
    );
    assert_files(&kit.local(&ctx, &[]), &[("foo", "11")]);

    let ctx = kit.context(
        "stage-base",
        "FROM busybox\nONBUILD RUN mkdir -p /out && touch /out/didrun\n",
        &[],
    );
    kit.ok(&ctx, &["-t", "onbuild-stage"]);
    let ctx = kit.context(
        "child-stage",
        "FROM onbuild-stage AS base\nRUN [ -f /out/didrun ] && touch /step1\nRUN rm /out/didrun\n\
         RUN [ ! -f /out/didrun ] && touch /step2\n\
         FROM base AS child\nRUN [ ! -f /out/didrun ] && touch /step3\n\
         FROM scratch\nCOPY --from=child /step* /\n",
        &[],
    );
    let out = kit.local(&ctx, &[]);
    for step in ["step1", "step2", "step3"] {
        assert!(out.join(step).exists(), "{step}");
    }

    let ctx = kit.context(
        "heredoc-base",
        "FROM busybox\nONBUILD RUN <<EOF\necho \"hello world\" >> /dest\nEOF\n",
        &[],
    );
    kit.ok(&ctx, &["-t", "onbuild-heredoc"]);
    let ctx = kit.context(
        "heredoc-child",
        "FROM onbuild-heredoc AS base\nFROM scratch\nCOPY --from=base /dest /dest\n",
        &[],
    );
    assert_files(&kit.local(&ctx, &[]), &[("dest", "hello world\n")]);
}

/// testOnBuildInheritedStageRun, testOnBuildInheritedStageWithFrom: ONBUILD in a stage of the
/// same Dockerfile runs in a stage FROM it, a COPY --from trigger included.
#[test]
fn triggers_of_a_stage_in_the_same_dockerfile() {
    if !can_run("parity_onbuild") {
        return;
    }
    let kit = Kit::new();
    let ctx = kit.context(
        "run",
        "FROM busybox AS base\nONBUILD RUN mkdir -p /out && echo -n 11 >> /out/foo\n\
         FROM base AS mid\nRUN cp /out/foo /out/bar\nFROM scratch\nCOPY --from=mid /out/bar /\n",
        &[],
    );
    assert_files(&kit.local(&ctx, &[]), &[("bar", "11")]);
    let ctx = kit.context(
        "from",
        "FROM busybox AS src\nRUN mkdir -p /in && echo -n 12 > /in/file\n\
         FROM busybox AS base\nONBUILD COPY --from=src /in/file /out/foo\n\
         FROM base AS mid\nRUN cp /out/foo /out/bar\nFROM scratch\nCOPY --from=mid /out/bar /\n",
        &[],
    );
    assert_files(&kit.local(&ctx, &[]), &[("bar", "12")]);
}

/// testOnBuildNamedContext, testOnBuildNewDeps, testOnBuildWithCacheMount: triggers that
/// bring dependencies the Dockerfile does not name: a stage named only in the trigger (the
/// image comes from an OCI layout given as a named context), an image named only in the
/// trigger, a bind mount from a stage, a cache mount, and triggers of two bases at once.
#[test]
fn triggers_bring_their_own_dependencies() {
    if !can_run("parity_onbuild") {
        return;
    }
    let kit = Kit::new();
    let ctx = kit.context(
        "oci-base",
        "FROM busybox:latest\nONBUILD COPY --from=otherstage /testfile /out/foo\n",
        &[],
    );
    let layout = kit.store.path("layout");
    let spec = format!("type=oci,dest={},tar=false", layout.display());
    kit.ok(&ctx, &["-o", &spec]);
    let ctx = kit.context(
        "oci-child",
        "FROM busybox AS otherstage\nRUN echo -n \"hello\" > /testfile\n\
         FROM base AS inputstage\nFROM scratch\nCOPY --from=inputstage /out/foo /bar\n",
        &[],
    );
    let named = format!("base=oci-layout://{}", layout.display());
    assert_files(
        &kit.local(&ctx, &["--build-context", &named]),
        &[("bar", "hello")],
    );

    // An image only the trigger names (BuildKit's test uses alpine's /etc/alpine-release).
    let ctx = kit.context(
        "release",
        "FROM busybox\nRUN mkdir -p /etc && echo 3.99.0 > /etc/release\n",
        &[],
    );
    kit.ok(&ctx, &["-t", "release-image"]);
    let ctx = kit.context(
        "deps-base",
        "FROM busybox\nONBUILD COPY --from=release-image /etc/release /out/release2\n",
        &[],
    );
    kit.ok(&ctx, &["-t", "onbuild-deps"]);
    let ctx = kit.context(
        "deps-child",
        "FROM onbuild-deps AS base\nRUN cat /out/release2 > /out/release3\n\
         FROM scratch\nCOPY --from=base /out /\n",
        &[],
    );
    assert_files(&kit.local(&ctx, &[]), &[("release3", "3.99.0\n")]);
    let ctx = kit.context(
        "deps-base2",
        "FROM busybox\nONBUILD RUN --mount=type=bind,target=/in,from=inputstage \
         mkdir /out && cat /in/foo > /out/bar && cat /in/out/release2 > /out/bar2\n",
        &[],
    );
    kit.ok(&ctx, &["-t", "onbuild-deps2"]);
    let ctx = kit.context(
        "deps-nested",
        "FROM onbuild-deps AS inputstage\nRUN cat /out/release2 > /out/release4\n\
         RUN echo -n foo > /foo\n\
         FROM onbuild-deps2 AS base\nRUN echo -n bar3 > /out/bar3\n\
         FROM scratch\nCOPY --from=base /out /\n",
        &[],
    );
    assert_files(
        &kit.local(&ctx, &[]),
        &[("bar", "foo"), ("bar2", "3.99.0\n"), ("bar3", "bar3")],
    );

    let ctx = kit.context(
        "cache-base",
        "FROM busybox\nONBUILD RUN --mount=type=cache,target=/cache echo -n 42 >> /cache/foo && \
         echo -n 11 >> /bar\n",
        &[],
    );
    kit.ok(&ctx, &["-t", "onbuild-cache"]);
    let ctx = kit.context(
        "cache-child",
        "FROM onbuild-cache\n\
         RUN --mount=type=cache,target=/cache [ \"$(cat /cache/foo)\" = \"42\" ] && [ \"$(cat /bar)\" = \"11\" ]\n",
        &[],
    );
    kit.ok(&ctx, &[]);
}
