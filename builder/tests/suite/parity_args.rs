//! Our own versions of the cases in BuildKit's frontend/dockerfile/dockerfile_args_test.go
//! (status of each in testdata/parity/CHECKLIST.md).

use crate::parity_kit::{assert_files, can_run, read, Kit};

/// testGlobalArg, testGlobalArgErrors, testArgDefaultExpansion: a global ARG in FROM (the
/// default names a tag that is not there; the build arg fixes it), and `${VAR:?message}` in
/// global and stage ARG defaults failing with the message unless the variable is given.
#[test]
fn global_args_and_required_values() {
    if !can_run("parity_args") {
        return;
    }
    let kit = Kit::new();
    let ctx = kit.context("global", "ARG tag=nosuchtag\nFROM busybox:${tag}\n", &[]);
    kit.ok(&ctx, &["--build-arg", "tag=latest"]);

    let ctx = kit.context(
        "global-error",
        "ARG FOO=${FOO:?\"custom error\"}\nFROM busybox\n",
        &[],
    );
    let err = kit.error(&ctx, &[]);
    assert!(err.contains("FOO: custom error"), "{err}");
    kit.ok(&ctx, &["--build-arg", "FOO=bar"]);

    let ctx = kit.context(
        "default-expansion",
        "FROM scratch\nARG FOO\nARG BAR=${FOO:?\"foo missing\"}\n",
        &[],
    );
    let err = kit.error(&ctx, &[]);
    assert!(err.contains("FOO: foo missing"), "{err}");
    kit.ok(&ctx, &["--build-arg", "FOO=123"]);
    kit.ok(&ctx, &["--build-arg", "BAR=123"]);
}

/// testMultiArgs, testQuotedMetaArgs, testDefaultEnvWithArgs: several ARGs on a line, quoted
/// values with blanks, global ARGs used in FROM and redeclared in the stage, `${a#b}`,
/// `${a:-b}` and `${a%%b}` in FROM and ENV.
#[test]
fn multi_and_quoted_args() {
    if !can_run("parity_args") {
        return;
    }
    let kit = Kit::new();
    let ctx = kit.context(
        "multi",
        "ARG a1=\"foo bar\" a2=box\nARG a3=\"$a2-foo\"\nFROM busy$a2 AS build\n\
         ARG a3 a4=\"123 456\" a1\nRUN echo -n \"$a1:$a3:$a4\" > /out\n\
         FROM scratch\nCOPY --from=build /out .\n",
        &[],
    );
    assert_files(&kit.local(&ctx, &[]), &[("out", "foo bar:box-foo:123 456")]);

    let ctx = kit.context(
        "quoted",
        "ARG a1=\"box\"\nARG a2=\"$a1-foo\"\nFROM busy$a1 AS build\nARG a2\n\
         ARG a3=\"bar-$a2\"\nRUN echo -n $a3 > /out\nFROM scratch\nCOPY --from=build /out .\n",
        &[],
    );
    assert_files(&kit.local(&ctx, &[]), &[("out", "bar-box-foo")]);

    let ctx = kit.context(
        "default-env",
        "ARG image=idlebox\nFROM busy${image#idle} AS build\nARG my_arg\n\
         ENV my_arg \"my_arg=${my_arg:-def_val}\"\nENV my_trimmed_arg \"${my_arg%%e*}\"\n\
         COPY myscript.sh myscript.sh\nRUN ./myscript.sh $my_arg $my_trimmed_arg\n\
         FROM scratch\nCOPY --from=build /out /out\n",
        &[("myscript.sh", "#!/bin/sh\necho -n $my_arg $* > /out\n")],
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        ctx.join("myscript.sh"),
        std::fs::Permissions::from_mode(0o700),
    )
    .unwrap();
    for (args, expected) in [
        (&[][..], "my_arg=def_val my_arg=def_val my_arg=d"),
        (
            &["--build-arg", "my_arg="][..],
            "my_arg=def_val my_arg=def_val my_arg=d",
        ),
        (
            &["--build-arg", "my_arg=override"][..],
            "my_arg=override my_arg=override my_arg=ov",
        ),
    ] {
        assert_eq!(read(&kit.local(&ctx, args), "out"), expected, "{args:?}");
    }
}

/// testTargetStageNameArg: TARGETSTAGE is the stage built (`--target`, else the last stage's
/// name, else "default"), seen only after `ARG TARGETSTAGE`.
#[test]
fn target_stage_arg() {
    if !can_run("parity_args") {
        return;
    }
    let kit = Kit::new();
    let df =
        "FROM busybox AS base\nWORKDIR /out\nRUN echo -n \"value:$TARGETSTAGE\" > /out/first\n\
              ARG TARGETSTAGE\nRUN echo -n \"value:$TARGETSTAGE\" > /out/second\n\
              FROM scratch AS foo\nCOPY --from=base /out/ /\n\
              FROM scratch\nCOPY --from=base /out/ /\n";
    let ctx = kit.context("ctx", df, &[]);
    assert_files(
        &kit.local(&ctx, &["--target", "foo"]),
        &[("first", "value:"), ("second", "value:foo")],
    );
    assert_files(
        &kit.local(&ctx, &[]),
        &[("first", "value:"), ("second", "value:default")],
    );
    let named = format!("{df}FROM scratch AS final\nCOPY --from=base /out/ /\n");
    let ctx = kit.context("named", &named, &[]);
    assert_files(
        &kit.local(&ctx, &[]),
        &[("first", "value:"), ("second", "value:final")],
    );
}

/// testBuiltinArgs: proxy build args reach RUN without an ARG and stay out of the cache key
/// (changing one reuses the step); a declared ARG's new value runs it again.
/// testEmptyStringArgInEnv: `ARG BAR=` is in RUN's environment (empty), `ARG FOO` unset is
/// not. testEnvEmptyFormatting: `%s` in an ENV value is kept as written.
#[test]
fn builtin_and_empty_args() {
    if !can_run("parity_args") {
        return;
    }
    let kit = Kit::new();
    let ctx = kit.context(
        "builtin",
        "FROM busybox AS build\nARG FOO\nARG BAR\nARG BAZ=bazcontent\n\
         RUN echo -n $HTTP_PROXY::$NO_PROXY::$FOO::$BAR::$BAZ > /out\n\
         FROM scratch\nCOPY --from=build /out /\n",
        &[],
    );
    let run = |args: &[&str]| read(&kit.local(&ctx, args), "out");
    assert_eq!(
        run(&[
            "--build-arg",
            "FOO=foocontents",
            "--build-arg",
            "http_proxy=hpvalue",
            "--build-arg",
            "NO_PROXY=npvalue"
        ]),
        "hpvalue::npvalue::foocontents::::bazcontent"
    );
    assert_eq!(
        run(&[
            "--build-arg",
            "FOO=foocontents",
            "--build-arg",
            "http_proxy=hpvalue2"
        ]),
        "hpvalue::npvalue::foocontents::::bazcontent",
        "proxy values are not in the cache key"
    );
    assert_eq!(
        run(&[
            "--build-arg",
            "FOO=foocontents2",
            "--build-arg",
            "http_proxy=hpvalue2"
        ]),
        "hpvalue2::::foocontents2::::bazcontent"
    );

    let ctx = kit.context(
        "empty",
        "FROM busybox AS build\nARG FOO\nARG BAR=\nRUN env > env.txt\n\
         FROM scratch\nCOPY --from=build env.txt .\n",
        &[],
    );
    let env = read(&kit.local(&ctx, &[]), "env.txt");
    assert!(env.lines().any(|l| l == "BAR="), "{env}");
    assert!(!env.contains("FOO="), "{env}");

    let ctx = kit.context(
        "formatting",
        "FROM busybox AS build\nENV myenv foo%sbar\nRUN [ \"$myenv\" = 'foo%sbar' ]\n",
        &[],
    );
    let config = kit.config(&ctx, &[]);
    let env = config["config"]["Env"].as_array().unwrap();
    assert!(env.iter().any(|e| e == "myenv=foo%sbar"), "{env:?}");
}
