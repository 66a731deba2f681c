//! The parse- and lower-time assertions of BuildKit's frontend/dockerfile integration tests
//! (dockerfile_*_test.go), as our own cases: the error texts those tests match, and what the
//! lowered image config holds where BuildKit's test reads it. One test per BuildKit file; the
//! builds themselves are in the builder's parity_* suites, and testdata/parity/CHECKLIST.md
//! says where each BuildKit function is covered.

use frontend::diagnostic::FrontendError;
use frontend::lower::{lower, LowerOptions, Lowered, Offline};
use frontend::parser::parse;
use std::collections::BTreeMap;

mod check;
mod epoch;

fn lower_with(
    src: &str,
    args: &[(&str, &str)],
    target: Option<&str>,
) -> Result<Lowered, FrontendError> {
    let df = parse(src.as_bytes()).map_err(FrontendError::from)?;
    let o = LowerOptions {
        target: target.map(str::to_string),
        build_args: args
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        ..LowerOptions::default()
    };
    lower(&df, &o, &Offline)
}

fn ok(src: &str) -> Lowered {
    lower_with(src, &[], None).unwrap_or_else(|e| panic!("{}", e.render("Dockerfile", src)))
}

/// The error's message, which must contain `want`.
fn fails_with(src: &str, want: &str) {
    match lower_with(src, &[], None) {
        Ok(_) => panic!("no error for:\n{src}"),
        Err(e) => assert!(
            e.message.contains(want),
            "for:\n{src}\ngot {:?}\nwant {want:?}",
            e.message
        ),
    }
}

/// dockerfile_copy_test.go: testDockerfileCopyFromArgs, testCopyInvalidChmod.
#[test]
fn copy_errors() {
    fails_with(
        "FROM scratch\nCOPY --from=$FOO . .\n",
        "variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround",
    );
    fails_with(
        "FROM scratch\nCOPY --chmod=64a foo /\n",
        "invalid chmod parameter: '64a'. it should be octal string and between 0 and 07777",
    );
    fails_with(
        "FROM scratch\nCOPY --chmod=10000 foo /\n",
        "invalid chmod parameter: '10000'. it should be octal string and between 0 and 07777",
    );
}

/// dockerfile_core_test.go: testExposeExpansion (the ports of an ARG holding two of them),
/// testTargetMistype.
#[test]
fn core_config_and_errors() {
    let l = ok("FROM scratch\nARG PORTS=\"3000 4000/udp\"\nEXPOSE $PORTS\nEXPOSE 5000\n");
    let ports: Vec<&String> = l.image.config.exposed_ports.keys().collect();
    assert_eq!(ports, ["3000/tcp", "4000/udp", "5000/tcp"]);
    let Err(e) = lower_with(
        "FROM scratch AS build\nCOPY Dockerfile /out\nFROM scratch\nCOPY --from=build /out /\n",
        &[],
        Some("bulid"),
    ) else {
        panic!("an unknown target fails");
    };
    assert!(
        e.message
            .contains("target stage \"bulid\" could not be found (did you mean build?)"),
        "{}",
        e.message
    );
}

/// dockerfile_add_test.go: testAddInvalidChmod, testAddChecksum's refusals before anything is
/// fetched (BuildKit matches none of these texts, but go-digest's are what it prints).
#[test]
fn add_errors() {
    fails_with(
        "FROM scratch\nADD --chmod=64a foo /\n",
        "invalid chmod parameter: '64a'. it should be octal string and between 0 and 07777",
    );
    fails_with(
        "FROM scratch\nADD --chmod=10000 foo /\n",
        "invalid chmod parameter: '10000'. it should be octal string and between 0 and 07777",
    );
    let url = "http://127.0.0.1:1/foo";
    fails_with(
        &format!(
            "FROM scratch\nADD --checksum=md5:7e55db001d319a94b0b713529a756623 {url} /tmp/foo\n"
        ),
        "unsupported digest algorithm",
    );
    fails_with(
        &format!("FROM scratch\nADD --checksum=unknown:0123abcd {url} /tmp/foo\n"),
        "unsupported digest algorithm",
    );
    fails_with(
        &format!("FROM scratch\nADD --checksum=0123abcd {url} /tmp/foo\n"),
        "invalid checksum digest format",
    );
    fails_with(
        "FROM scratch\nADD --checksum=sha256:0123 foo /tmp/foo\n",
        "checksum requires HTTP(S) or Git sources",
    );
}

/// dockerfile_core_test.go testDockerfileCheckHostname: `BUILDKIT_SANDBOX_HOSTNAME` is part
/// of each RUN op (so of its cache key, as BuildKit's exec meta), needs no ARG, and without it
/// the op is what it was before the field existed.
#[test]
fn sandbox_hostname_is_part_of_the_run_op() {
    let src = "FROM scratch\nRUN true\n";
    let plain = ok(src);
    let named = lower_with(src, &[("BUILDKIT_SANDBOX_HOSTNAME", "foo")], None).unwrap();
    let exec = named
        .graph
        .vertices
        .iter()
        .find_map(|v| match &v.op {
            graph::Op::Exec(e) => Some(e),
            _ => None,
        })
        .unwrap();
    assert_eq!(exec.hostname, "foo");
    assert_ne!(plain.root, named.root);
    assert!(!named
        .warnings
        .iter()
        .any(|w| w.message.contains("not consumed")));
    let json = serde_json::to_string(
        &plain
            .graph
            .vertices
            .iter()
            .find(|v| matches!(v.op, graph::Op::Exec(_)))
            .unwrap()
            .op,
    )
    .unwrap();
    assert!(!json.contains("hostname"), "{json}");
}

/// dockerfile_args_test.go testTargetStageNameArg, lowered: TARGETSTAGE is the target, the
/// last stage's name, or "default".
#[test]
fn target_stage_arg_values() {
    let src =
        "FROM scratch AS base\nARG TARGETSTAGE\nENV T=$TARGETSTAGE\nFROM base AS foo\nFROM base\n";
    let env = |l: &Lowered| l.image.config.env.clone();
    assert!(env(&ok(src)).contains(&"T=default".to_string()));
    let foo = lower_with(src, &[], Some("foo")).unwrap();
    assert!(env(&foo).contains(&"T=foo".to_string()));
    let named = format!("{src}FROM base AS final\n");
    assert!(env(&ok(&named)).contains(&"T=final".to_string()));
}

/// dockerfile_multistage_test.go: testOutOfOrderStage (a COPY --from a stage defined later,
/// whole or one path), testEmptyStages.
#[test]
fn multistage_errors() {
    for src in ["/", "/d2"] {
        fails_with(
            &format!(
                "FROM busybox AS target\nCOPY --from=build {src} /out\n\
                 FROM alpine AS build\nCOPY /Dockerfile /d2\nFROM target\n"
            ),
            "cannot copy from stage \"build\", it needs to be defined before current stage \"target\"",
        );
    }
    fails_with("ARG foo=bar", "dockerfile contains no stages to build");
}

/// dockerfile_history_test.go testExportedHistory: EXPOSE's history lists the ports in the
/// order of the words as written, sorted (BuildKit sorts them before expanding them).
#[test]
fn expose_history_is_sorted() {
    let l = ok("FROM scratch\nEXPOSE 2375 5000 1234/udp\n");
    let last = l.image.history.last().unwrap();
    assert_eq!(last.created_by, "EXPOSE [1234/udp 2375/tcp 5000/tcp]");
    // Sorted before expansion: `$P` sorts before `80` whatever it holds.
    let l = ok("FROM scratch\nARG P=9000\nEXPOSE 80 $P\n");
    let last = l.image.history.last().unwrap();
    assert_eq!(last.created_by, "EXPOSE [9000/tcp 80/tcp]");
}

/// dockerfile_mount_test.go testMountFromError (testMountInvalid's texts are in
/// lowering::error_texts_buildkit_tests_assert).
#[test]
fn mount_errors() {
    fails_with(
        "FROM busybox as test\nRUN touch /tmp/test\nFROM busybox\nENV ttt=test\n\
         RUN --mount=from=$ttt,type=cache,target=/tmp ls\n",
        "'from' doesn't support variable expansion, define alias stage instead",
    );
}

/// dockerfile_source_date_epoch_test.go testSourceDateEpochDockerfileDefaultInvalid.
#[test]
fn source_date_epoch_errors() {
    fails_with(
        "ARG SOURCE_DATE_EPOCH=not-a-timestamp\nFROM scratch\nCOPY Dockerfile .\n",
        "invalid SOURCE_DATE_EPOCH: not-a-timestamp",
    );
}

/// dockerfile_namedcontext_test.go testNamedImageContextScratch, lowered: a named context
/// `docker-image://scratch` (the CLI gives it as the image `scratch`) is the empty image, not
/// an image to pull.
#[test]
fn scratch_named_context_is_no_image() {
    let df = parse(b"FROM busybox AS build\nCOPY <<EOF /out\nhello\nEOF\n").unwrap();
    let mut o = LowerOptions::default();
    o.named_contexts.insert(
        "busybox".into(),
        frontend::lower::NamedContext::Image("scratch".into()),
    );
    let l = lower(&df, &o, &Offline).unwrap();
    assert!(
        !l.graph
            .vertices
            .iter()
            .any(|v| matches!(v.op, graph::Op::Source(graph::Source::Image { .. }))),
        "no image source"
    );
}

/// A lint warning as BuildKit's check tests list it: rule, detail, line.
type Lint<'a> = (&'a str, &'a str, usize);

/// dockerfile_check_test.go: the lint warnings (rule, detail, line) of testStageName,
/// testNoEmptyContinuation, testDuplicateStageName, testReservedStageName,
/// testWorkdirRelativePath, testMaintainerDeprecated, testExposeProtoCasing,
/// testExposeInvalidFormat.
#[test]
fn check_rules() {
    let cases: &[(&str, &[Lint])] = &[
        (
            "\n# warning: stage name should be lowercase\n#\nFROM scratch AS BadStageName\n\n\
             # warning: 'as' should match 'FROM' cmd casing.\n#\nFROM scratch as base2\n\n\
             FROM scratch AS base3\n",
            &[
                ("StageNameCasing", "Stage name 'BadStageName' should be lowercase", 4),
                ("FromAsCasing", "'as' and 'FROM' keywords' casing do not match", 8),
            ],
        ),
        (
            "\n# warning: 'AS' should match 'from' cmd casing.\n#\nfrom scratch AS base\n\n\
             from scratch as base2\n",
            &[("FromAsCasing", "'AS' and 'from' keywords' casing do not match", 4)],
        ),
        (
            "\nFROM scratch\n# warning: empty continuation line\nCOPY Dockerfile \\\n\n.\n\
             COPY Dockerfile \\\n.\n",
            &[("NoEmptyContinuation", "Empty continuation line", 6)],
        ),
        (
            "\nFROM scratch AS b\nFROM scratch AS b\n",
            &[(
                "DuplicateStageName",
                "Duplicate stage name \"b\", stage names should be unique",
                3,
            )],
        ),
        (
            "\nFROM scratch AS scratch\nFROM scratch AS context\n",
            &[
                (
                    "ReservedStageName",
                    "Stage name should not use the same name as reserved stage \"scratch\"",
                    2,
                ),
                (
                    "ReservedStageName",
                    "Stage name should not use the same name as reserved stage \"context\"",
                    3,
                ),
            ],
        ),
        (
            "\nFROM scratch\nWORKDIR app/\n",
            &[(
                "WorkdirRelativePath",
                "Relative workdir \"app/\" can have unexpected results if the base image changes",
                3,
            )],
        ),
        (
            "\nFROM scratch\nMAINTAINER me@example.org\n",
            &[(
                "MaintainerDeprecated",
                "Maintainer instruction is deprecated in favor of using label",
                3,
            )],
        ),
        (
            "\nFROM scratch\nEXPOSE 80/TcP 8080/TCP 8080/udp\n",
            &[
                (
                    "ExposeProtoCasing",
                    "Defined protocol '80/TcP' in EXPOSE instruction should be lowercase",
                    3,
                ),
                (
                    "ExposeProtoCasing",
                    "Defined protocol '8080/TCP' in EXPOSE instruction should be lowercase",
                    3,
                ),
            ],
        ),
        (
            "\nFROM scratch\nEXPOSE 127.0.0.1:80:80 [::1]:8080:8080 5000:5000 8000\n",
            &[
                ("ExposeInvalidFormat", "EXPOSE instruction should not define an IP address or host-port mapping, found '127.0.0.1:80:80'", 3),
                ("ExposeInvalidFormat", "EXPOSE instruction should not define an IP address or host-port mapping, found '[::1]:8080:8080'", 3),
                ("ExposeInvalidFormat", "EXPOSE instruction should not define an IP address or host-port mapping, found '5000:5000'", 3),
            ],
        ),
    ];
    for (df, wanted) in cases {
        let l = ok(df);
        let got: Vec<(&str, &str, usize)> = l
            .warnings
            .iter()
            .filter_map(|w| {
                Some((
                    w.rule?,
                    w.message.as_str(),
                    w.span.map_or(0, |s| s.start_line),
                ))
            })
            .collect();
        for w in *wanted {
            assert!(got.contains(w), "{df:?}: no {w:?} in {got:?}");
        }
        assert_eq!(got.len(), wanted.len(), "{df:?}: {got:?}");
    }
}

/// The rule and line of each lint warning of `src`.
fn lints(src: &str) -> Vec<(&'static str, usize)> {
    ok(src)
        .warnings
        .iter()
        .filter_map(|w| Some((w.rule?, w.span.map_or(0, |s| s.start_line))))
        .collect()
}

/// dockerfile_check_test.go testMultipleInstructionsDisallowed: the warning points at the
/// instruction that is ignored (the earlier one), also across other instructions.
#[test]
fn multiple_instructions_point_at_the_ignored_one() {
    let rule = "MultipleInstructionsDisallowed";
    assert_eq!(
        lints(
            "\nFROM scratch\nENTRYPOINT [\"/myapp\"]\nENTRYPOINT [\"/myotherapp\"]\nCMD [\"/myapp\"]\n\
             CMD [\"/myotherapp\"]\nHEALTHCHECK CMD [\"/myapp\"]\nHEALTHCHECK CMD [\"/myotherapp\"]\n"
        ),
        [(rule, 3), (rule, 5), (rule, 7)]
    );
    assert_eq!(
        lints(
            "\nFROM scratch\nENTRYPOINT [\"/myapp\"]\nCMD [\"/myapp\"]\nHEALTHCHECK CMD [\"/myapp\"]\n\
             COPY <<EOF /a.txt\nHello, World!\nEOF\nENTRYPOINT [\"/myotherapp\"]\nCMD [\"/myotherapp\"]\n\
             HEALTHCHECK CMD [\"/myotherapp\"]\n"
        ),
        [(rule, 3), (rule, 4), (rule, 5)]
    );
}

/// dockerfile_check_test.go testSecretsUsedInArgOrEnv, testMaintainerDeprecated,
/// testWorkdirRelativePath, testLegacyKeyValueFormat, testRedundantTargetPlatform: a
/// `# check=skip=RULE` (or `skip=all`, with a trailing `// why`) comment right above an
/// instruction skips the rule for that instruction only.
#[test]
fn check_comments_above_an_instruction_skip_for_it() {
    assert_eq!(
        lints("\nFROM scratch\n# check=skip=JSONArgsRecommended\nCMD mycommand\n"),
        []
    );
    assert_eq!(
        lints("\nFROM scratch\n# check=skip=MaintainerDeprecated\nMAINTAINER me@example.org\n"),
        []
    );
    assert_eq!(
        lints("\nFROM scratch\n# check=skip=WorkdirRelativePath\nWORKDIR app/\n"),
        []
    );
    assert_eq!(
        lints(
            "\nFROM scratch\n# check=skip=LegacyKeyValueFormat\nENV testkey value\n\
             # check=skip=LegacyKeyValueFormat\nLABEL key value\n"
        ),
        []
    );
    assert_eq!(
        lints("\n# check=skip=RedundantTargetPlatform\nFROM --platform=$TARGETPLATFORM scratch\n"),
        []
    );
    let secrets = "SecretsUsedInArgOrEnv";
    assert_eq!(
        lints(
            "FROM scratch\nARG SECRET_PASSPHRASE\n\
             # check=skip=SecretsUsedInArgOrEnv // allow secret in environment\nENV password=bar\n\
             # check=skip=all // is local to only this instruction\nARG alternate_password\n\
             ARG password\n"
        ),
        [(secrets, 2), (secrets, 7)]
    );
}

/// dockerfile_check_test.go testJSONArgsRecommended, testConsistentInstructionCasing,
/// testFromPlatformFlagConstDisallowed, testUndeclaredArg: their Dockerfiles that need no
/// build option, and the warnings (rule, detail, line) BuildKit's tests expect, exactly.
#[test]
fn check_rules_more() {
    let cases: &[(&str, &[Lint])] = &[
        // testConsistentInstructionCasing
        ("\n# warning: 'FROM' should be either lowercased or uppercased\n#\nFrom scratch as base\nFROM scratch AS base2\n", &[("ConsistentInstructionCasing", "Command 'From' should match the case of the command majority (uppercase)", 4)]),
        // testConsistentInstructionCasing
        ("\nFROM scratch\n# warning: 'copy' should match command majority's casing (uppercase)\ncopy Dockerfile /foo\nCOPY Dockerfile /bar\n", &[("ConsistentInstructionCasing", "Command 'copy' should match the case of the command majority (uppercase)", 4)]),
        // testConsistentInstructionCasing
        ("\n# warning: 'frOM' should be either lowercased or uppercased\n#\nfrOM scratch as base\nfrom scratch as base2\n", &[("ConsistentInstructionCasing", "Command 'frOM' should match the case of the command majority (lowercase)", 4)]),
        // testConsistentInstructionCasing
        ("\nfrom scratch\n# warning: 'COPY' should match command majority's casing (lowercase)\nCOPY Dockerfile /foo\ncopy Dockerfile /bar\n", &[("ConsistentInstructionCasing", "Command 'COPY' should match the case of the command majority (lowercase)", 4)]),
        // testConsistentInstructionCasing
        ("\n# warning: 'from' should match command majority's casing (uppercase)\n#\nfrom scratch\nCOPY Dockerfile /foo\nCOPY Dockerfile /bar\nCOPY Dockerfile /baz\n", &[("ConsistentInstructionCasing", "Command 'from' should match the case of the command majority (uppercase)", 4)]),
        // testConsistentInstructionCasing
        ("\n# warning: 'FROM' should match command majority's casing (lowercase)\n#\nFROM scratch\ncopy Dockerfile /foo\ncopy Dockerfile /bar\ncopy Dockerfile /baz\n", &[("ConsistentInstructionCasing", "Command 'FROM' should match the case of the command majority (lowercase)", 4)]),
        // testConsistentInstructionCasing
        ("\nfrom scratch\ncopy Dockerfile /foo\ncopy Dockerfile /bar\n", &[]),
        // testConsistentInstructionCasing
        ("\nFROM scratch\nCOPY Dockerfile /foo\nCOPY Dockerfile /bar\n", &[]),
        // testJSONArgsRecommended
        ("\nFROM scratch\nCMD mycommand\n", &[("JSONArgsRecommended", "JSON arguments recommended for CMD to prevent unintended behavior related to OS signals", 3)]),
        // testJSONArgsRecommended
        ("\nFROM scratch\nENTRYPOINT mycommand\n", &[("JSONArgsRecommended", "JSON arguments recommended for ENTRYPOINT to prevent unintended behavior related to OS signals", 3)]),
        // testJSONArgsRecommended
        ("\nFROM scratch\nSHELL [\"/usr/bin/customshell\"]\nCMD mycommand\n", &[]),
        // testJSONArgsRecommended
        ("\nFROM scratch\nSHELL [\"/usr/bin/customshell\"]\nENTRYPOINT mycommand\n", &[]),
        // testJSONArgsRecommended
        ("\nFROM scratch AS base\nSHELL [\"/usr/bin/customshell\"]\n\nFROM base\nCMD mycommand\n", &[]),
        // testJSONArgsRecommended
        ("\nFROM scratch AS base\nSHELL [\"/usr/bin/customshell\"]\n\nFROM base\nENTRYPOINT mycommand\n", &[]),
        // testUndeclaredArg
        ("\nARG base=scratch\nFROM $base\nCOPY Dockerfile .\n", &[]),
        // testUndeclaredArg
        ("\nARG BUILDPLATFORM=linux/amd64\nFROM --platform=$BUILDPLATFORM scratch\nCOPY Dockerfile .\n", &[]),
        // testUndeclaredArg
        ("\nFROM --platform=$BUILDPLATFORM scratch\nCOPY Dockerfile .\n", &[]),
        // testUndeclaredArg
        ("\nARG DEBUG\nFROM scratch${DEBUG}\nCOPY Dockerfile .\n", &[]),
        // testUndeclaredArg
        ("\nARG DEBUG\nFROM scra${DEBUG:-tch}\nCOPY Dockerfile .\n", &[]),
        // testUndeclaredArg
        ("\nARG DEBUG=\"\"\nFROM scratch${DEBUG-@bogus}\nCOPY Dockerfile .\n", &[]),
        // testFromPlatformFlagConstDisallowed
        ("\nFROM --platform=linux/amd64 scratch AS my_amd64_stage\n", &[]),
        // testFromPlatformFlagConstDisallowed
        ("\nFROM --platform=linux/amd64 scratch AS linux\n", &[]),
    ];
    for (df, wanted) in cases {
        let l = ok(df);
        let got: Vec<Lint> = l
            .warnings
            .iter()
            .filter_map(|w| {
                Some((
                    w.rule?,
                    w.message.as_str(),
                    w.span.map_or(0, |s| s.start_line),
                ))
            })
            .collect();
        assert_eq!(&got[..], *wanted, "{df:?}");
    }
}

/// dockerfile_check_test.go testRuleCheckOption: `# check=` options (skip lists, skip=all,
/// error=true failing with BuildKit's text) and `--build-arg BUILDKIT_DOCKERFILE_CHECK`, which
/// replaces the directive and is no unused build arg.
#[test]
fn check_options_and_the_build_arg() {
    let src = |check: &str| format!("#check={check}\nFROM scratch as base\ncopy Dockerfile .\n");
    assert_eq!(lints(&src("skip=all")), []);
    assert!(lower_with(&src("skip=all;error=true"), &[], None).is_ok());
    assert_eq!(
        lints(&src("skip=ConsistentInstructionCasing,FromAsCasing")),
        []
    );
    assert_eq!(
        lints(&src("skip=ConsistentInstructionCasing")),
        [("FromAsCasing", 2)]
    );
    let Err(e) = lower_with(
        &src("skip=ConsistentInstructionCasing;error=true"),
        &[],
        None,
    ) else {
        panic!("error=true with a warning fails");
    };
    assert!(
        e.message
            .starts_with("lint violation found for rules: FromAsCasing"),
        "{}",
        e.message
    );
    assert_eq!(e.span.start_line, 2);
    // The build arg wins over the directive, both ways.
    fn arg(v: &str) -> [(&str, &str); 1] {
        [("BUILDKIT_DOCKERFILE_CHECK", v)]
    }
    let Err(e) = lower_with(
        &src("skip=all"),
        &arg("skip=ConsistentInstructionCasing;error=true"),
        None,
    ) else {
        panic!("the build arg's error=true applies");
    };
    assert!(e
        .message
        .starts_with("lint violation found for rules: FromAsCasing"));
    let l = lower_with(&src("error=true"), &arg("skip=all"), None).unwrap();
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
}

/// The copy actions of `l`'s graph.
fn copy_actions(l: &Lowered) -> Vec<graph::CopyAction> {
    l.graph
        .vertices
        .iter()
        .filter_map(|v| match &v.op {
            graph::Op::File(f) => Some(f.actions.clone()),
            _ => None,
        })
        .flatten()
        .filter_map(|a| match a {
            graph::FileAction::Copy(c) => Some(c),
            _ => None,
        })
        .collect()
}

/// dockerfile2llb/exclude_patterns_test.go: TestDockerfileCopyExcludePatterns,
/// TestDockerfileAddExcludePatterns: `--exclude` patterns with directories lower, and reach
/// the copy as written.
#[test]
fn copy_and_add_exclude_patterns() {
    for instruction in ["COPY", "ADD"] {
        let l = ok(&format!(
            "FROM scratch\n{instruction} --exclude=src/*.go --exclude=tmp/*.txt dir /sub/\n"
        ));
        let copies = copy_actions(&l);
        assert_eq!(copies.len(), 1, "{instruction}");
        assert_eq!(
            copies[0].exclude_patterns,
            ["src/*.go", "tmp/*.txt"],
            "{instruction}"
        );
    }
}

/// dockerfile_addgit_test.go testGitQueryString: the URL's query is read at lowering (the
/// ref, subdir and checksum it sets), and its conflicts fail with BuildKit's texts.
#[test]
fn add_git_query_strings() {
    let l = ok("FROM scratch\nADD https://h.test/r.git?tag=v1&commit=abc123&subdir=docs /x/\n");
    let git = l
        .graph
        .vertices
        .iter()
        .find_map(|v| match &v.op {
            graph::Op::Source(graph::Source::Git {
                remote,
                reference,
                subdir,
                checksum,
                skip_submodules,
                ..
            }) => Some((
                remote.clone(),
                reference.clone(),
                subdir.clone(),
                checksum.clone(),
                *skip_submodules,
            )),
            _ => None,
        })
        .expect("a git source");
    assert_eq!(
        git,
        (
            "https://h.test/r.git".to_string(),
            "refs/tags/v1".to_string(),
            "docs".to_string(),
            Some("abc123".to_string()),
            false
        )
    );
    fails_with(
        "FROM scratch\nADD https://h.test/r.git?tag=v0.0.2#refs/heads/master /x/\n",
        "ref conflicts: \"refs/heads/master\" vs \"refs/tags/v0.0.2\"",
    );
    fails_with(
        "FROM scratch\nADD --keep-git-dir https://h.test/r.git?keep-git-dir=false /x/\n",
        "inconsistent keep-git-dir configuration",
    );
    fails_with(
        "FROM scratch\nADD --keep-git-dir=false https://h.test/r.git?keep-git-dir /x/\n",
        "inconsistent keep-git-dir configuration",
    );
    fails_with(
        "FROM scratch\nADD --checksum=abc https://h.test/r.git?commit=def /x/\n",
        "checksum mismatch \"abc\" != \"def\"",
    );
    fails_with(
        "FROM scratch\nADD https://h.test/r.git?depth=1 /x/\n",
        "unexpected query \"depth\"",
    );
}

fn parsed(src: &str) -> frontend::ast::Dockerfile {
    parse(src.as_bytes()).unwrap()
}

fn build_args(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// dockerfile_outline_test.go testOutlineArgs: the target's and its dependencies' ARGs and
/// the global ARGs their FROM lines read (not those of a stage the target does not need),
/// with values after `--build-arg`, doc comments and lines; the target's name and
/// description; and what `--call outline` prints.
#[test]
fn outline_args() {
    let src = "
ARG inherited=box
ARG inherited2=box2
ARG unused=abc${inherited2}
# sfx is a suffix
ARG sfx=\"usy${inherited}\"

FROM b${sfx} AS first
# this is not assigned to anything
ARG FOO=123
# BAR is a number
ARG BAR=456
RUN true

FROM alpine${unused} AS second
ARG BAZ
RUN true

FROM scratch AS third
ARG ABC=a
# check=skip=all
ARG password
# alternate_password will show up in the outline
# check=skip=all
ARG alternate_password

# target defines build target
FROM third AS target
COPY --from=first /etc/passwd /

FROM second
";
    let o =
        frontend::outline::outline(&parsed(src), Some("target"), &build_args(&[("BAR", "678")]))
            .unwrap();
    assert_eq!(o.name, "target");
    assert_eq!(o.description, "defines build target");
    let args: Vec<(&str, &str, &str, usize)> = o
        .args
        .iter()
        .map(|a| {
            let line = a.location.ranges[0].start.line;
            (
                a.name.as_str(),
                a.value.as_str(),
                a.description.as_str(),
                line,
            )
        })
        .collect();
    assert_eq!(
        args,
        [
            ("inherited", "box", "", 2),
            ("sfx", "usybox", "is a suffix", 6),
            ("FOO", "123", "", 10),
            ("BAR", "678", "is a number", 12),
            ("ABC", "a", "", 20),
            ("password", "", "", 22),
            ("alternate_password", "", "will show up in the outline", 25),
        ]
    );
    assert_eq!(
        frontend::outline::print_outline(&o),
        "TARGET:      target\n\
         DESCRIPTION: defines build target\n\
         \n\
         BUILD ARG            VALUE    DESCRIPTION\n\
         inherited            box      \n\
         sfx                  usybox   is a suffix\n\
         FOO                  123      \n\
         BAR                  678      is a number\n\
         ABC                  a        \n\
         password                      \n\
         alternate_password            will show up in the outline\n\
         \n"
    );
}

/// dockerfile_outline_test.go testOutlineSecrets: the secrets and ssh agents the target and
/// the stages it needs mount (not those of other stages), names from `id=` (expanded) or the
/// target's file name, `required`, lines.
#[test]
fn outline_secrets() {
    let src = "
FROM busybox AS first
RUN --mount=type=secret,target=/etc/passwd,required=true --mount=type=ssh true

FROM alpine AS second
RUN --mount=type=secret,id=unused --mount=type=ssh,id=ssh2 true

FROM scratch AS third
ARG BAR
RUN --mount=type=secret,id=second${BAR} true

FROM third AS target
COPY --from=first /foo /
RUN --mount=type=ssh,id=ssh3,required true

FROM second
";
    let o =
        frontend::outline::outline(&parsed(src), Some("target"), &build_args(&[("BAR", "678")]))
            .unwrap();
    let list = |l: &[frontend::outline::Needed]| -> Vec<(String, bool, usize)> {
        l.iter()
            .map(|s| (s.name.clone(), s.required, s.location.ranges[0].start.line))
            .collect()
    };
    assert_eq!(
        list(&o.secrets),
        [("passwd".into(), true, 3), ("second678".into(), false, 10)]
    );
    assert_eq!(
        list(&o.ssh),
        [("default".into(), false, 3), ("ssh3".into(), true, 14)]
    );
    let text = frontend::outline::print_outline(&o);
    assert!(
        text.ends_with(
            "SECRET      REQUIRED\npasswd      true\nsecond678   \n\n\
             SSH       REQUIRED\ndefault   \nssh3      true\n\n"
        ),
        "{text}"
    );
}

/// dockerfile_outline_test.go testOutlineRecursiveArgs: ARGs whose defaults read earlier
/// definitions of themselves and of others, globally and in the stage; a global ARG that
/// nothing reads (DEF) is left out.
#[test]
fn outline_recursive_args() {
    let src = "
ARG FOO=123
ARG ABC=abc
ARG DEF=def
ARG FOO=${FOO}${ABC}
ARG BAR=${FOO}456
ARG FOO=${FOO}456${BAR}
FROM scratch
ARG FOO
ARG INFOO=123
ARG INBAR=${INFOO}456
ARG INFOO=${INFOO}456${INBAR}
";
    let o = frontend::outline::outline(&parsed(src), None, &BTreeMap::new()).unwrap();
    let args: Vec<(&str, &str)> = o
        .args
        .iter()
        .map(|a| (a.name.as_str(), a.value.as_str()))
        .collect();
    assert_eq!(
        args,
        [
            ("ABC", "abc"),
            ("BAR", "123abc456"),
            ("FOO", "123abc456123abc456"),
            ("INBAR", "123456"),
            ("INFOO", "123456123456"),
        ]
    );
}

/// dockerfile_targets_test.go testTargetsList: every stage with its name, doc comment, base,
/// line, the last one the default; and what `--call targets` prints.
#[test]
fn targets_list() {
    let src = "
# build defines stage for compiling the binary
FROM alpine AS build
RUN true

FROM busybox as second
RUN false

FROM alpine
RUN false

# binary returns the compiled binary
FROM second AS binary
";
    let l = frontend::outline::targets(&parsed(src)).unwrap();
    let got: Vec<(&str, &str, &str, bool, usize)> = l
        .targets
        .iter()
        .map(|t| {
            let line = t.location.ranges[0].start.line;
            (
                t.name.as_str(),
                t.description.as_str(),
                t.base.as_str(),
                t.default,
                line,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "build",
                "defines stage for compiling the binary",
                "alpine",
                false,
                3
            ),
            ("second", "", "busybox", false, 6),
            ("", "", "alpine", false, 9),
            ("binary", "returns the compiled binary", "second", true, 13),
        ]
    );
    assert_eq!(
        frontend::outline::print_targets(&l),
        "TARGET           DESCRIPTION\n\
         build            defines stage for compiling the binary\n\
         second           \n\
         \x20                \n\
         binary (default) returns the compiled binary\n"
    );
}
