//! The parse- and lower-time assertions of BuildKit's frontend/dockerfile integration tests
//! (dockerfile_*_test.go), as our own cases: the error texts those tests match, and what the
//! lowered image config holds where BuildKit's test reads it. One test per BuildKit file; the
//! builds themselves are in the builder's parity_* suites, and testdata/parity/CHECKLIST.md
//! says where each BuildKit function is covered.

use frontend::diagnostic::FrontendError;
use frontend::lower::{lower, LowerOptions, Lowered, Offline};
use frontend::parser::parse;
use std::collections::BTreeMap;

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

/// Every lint warning of a lowering: rule, detail, line.
fn all_lints(l: &Lowered) -> Vec<(&'static str, String, usize)> {
    l.warnings
        .iter()
        .filter_map(|w| {
            Some((
                w.rule?,
                w.message.clone(),
                w.span.map_or(0, |s| s.start_line),
            ))
        })
        .collect()
}

/// Lowers `src` with `.dockerignore` text `ignore` and build args.
fn lower_ignoring(src: &str, ignore: &str, args: &[(&str, &str)]) -> Lowered {
    let df = parse(src.as_bytes()).unwrap();
    let o = LowerOptions {
        dockerignore: context::dockerignore::read_patterns(ignore).unwrap(),
        build_args: args
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..LowerOptions::default()
    };
    lower(&df, &o, &Offline).unwrap_or_else(|e| panic!("{}", e.render("Dockerfile", src)))
}

/// dockerfile_check_test.go testCopyIgnoredFiles, testCopyIgnoredFileContextRoot: a COPY or
/// ADD source of the main context that `.dockerignore` excludes (BuildKit's texts, URL and
/// lines); nothing for a source copied from a stage, when the file has exceptions, or for
/// `.` unless every root entry is excluded; `# check=skip=` turns it off.
#[test]
fn copy_ignored_file() {
    let rule = "CopyIgnoredFile";
    let df = "\nFROM scratch\nCOPY Dockerfile .\nADD Dockerfile /windy\n";
    let l = lower_ignoring(df, "\nDockerfile\n", &[]);
    assert_eq!(
        all_lints(&l),
        [
            (
                rule,
                "Attempting to Copy file \"Dockerfile\" that is excluded by .dockerignore".into(),
                3
            ),
            (
                rule,
                "Attempting to Add file \"Dockerfile\" that is excluded by .dockerignore".into(),
                4
            ),
        ]
    );
    let w = &l.warnings[0];
    assert_eq!(
        w.description(),
        Some("Attempting to Copy file that is excluded by .dockerignore")
    );
    assert_eq!(
        w.url(),
        Some("https://docs.docker.com/go/dockerfile/rule/copy-ignored-file/")
    );
    let skipped = lower_ignoring(&format!("# check=skip={rule}\n{df}"), "\nDockerfile\n", &[]);
    assert_eq!(all_lints(&skipped), []);
    // From a stage: not the context, whatever the names.
    let l = lower_ignoring(
        "\nFROM scratch AS base\nCOPY Dockerfile /foobar\nADD Dockerfile /windy\n\n\
         FROM base\nCOPY --from=base /foobar /Dockerfile\n",
        "\nfoobar\n",
        &[],
    );
    assert_eq!(all_lints(&l), []);
    // Exceptions: not checked at all.
    let except = "\n**\n!Dockerfile\n";
    let l = lower_ignoring("\nFROM scratch\nCOPY ./Dockerfile .\n", except, &[]);
    assert_eq!(all_lints(&l), []);
    let l = lower_ignoring("\nFROM scratch\nCOPY . .\n\t", except, &[]);
    assert_eq!(all_lints(&l), []);
    // The context root: only a pattern that excludes every root entry.
    let root = "\nFROM scratch\nCOPY . .\n";
    assert_eq!(all_lints(&lower_ignoring(root, "\n.*\n", &[])), []);
    assert_eq!(
        all_lints(&lower_ignoring(root, "\n*\n", &[])),
        [(
            rule,
            "Attempting to Copy file \".\" that is excluded by .dockerignore".into(),
            3
        )]
    );
    // A parent directory excluded, and the source after expansion.
    let l = lower_ignoring(
        "FROM scratch\nARG d=build\nCOPY ${d}/out/app.bin /\n",
        "build\n",
        &[],
    );
    assert_eq!(
        all_lints(&l),
        [(
            rule,
            "Attempting to Copy file \"build/out/app.bin\" that is excluded by .dockerignore"
                .into(),
            3
        )]
    );
}

/// dockerfile_check_test.go testDefinitionDescription: the experimental
/// InvalidDefinitionDescription rule, on only with `experimental=`, even under `skip=all`
/// (BuildKit's skip lists do not apply to experimental rules), with its texts and URL.
#[test]
fn definition_description_is_experimental() {
    let good =
        "# check=skip=all;experimental=InvalidDefinitionDescription\n# foo this is the foo\n\
                ARG foo=bar\n\n# base this is the base image\nFROM scratch AS base\n\n\
                # version this is the version number\nARG version=latest\n\n# baz this is the baz\n\
                ARG foo=baz bar=qux baz=quux\n#\nARG bit=bat\n\n\
                # comment for something other than ARG or FROM\nCOPY Dockerfile .\n";
    assert_eq!(all_lints(&ok(good)), []);
    let bad =
        "# check=experimental=InvalidDefinitionDescription\n# bar this is the bar\nARG foo=bar\n\
               # BasE this is the BasE image\nFROM scratch AS base\n# definitely a bad comment\n\
               ARG version=latest\n# definitely a bad comment\nARG foo=baz bar=qux baz=quux\n";
    let rule = "InvalidDefinitionDescription";
    let l = ok(bad);
    assert_eq!(
        all_lints(&l),
        [
            (
                rule,
                "Comment for ARG should follow the format: `# foo <description>`".into(),
                3
            ),
            (
                rule,
                "Comment for FROM should follow the format: `# base <description>`".into(),
                5
            ),
            (
                rule,
                "Comment for ARG should follow the format: `# version <description>`".into(),
                7
            ),
            (
                rule,
                "Comment for ARG should follow the format: `# <arg_key> <description>`".into(),
                9
            ),
        ]
    );
    assert_eq!(l.warnings[0].description(), Some("Comment for build stage or argument should follow the format: `# <arg/stage name> <description>`. If this is not intended to be a description comment, add an empty line or comment between the instruction and the comment."));
    assert_eq!(
        l.warnings[0].url(),
        Some("https://docs.docker.com/go/dockerfile/rule/invalid-definition-description/")
    );
    // Off by default, and `experimental=all` turns it on.
    let plain = bad.replace("# check=experimental=InvalidDefinitionDescription\n", "\n");
    assert_eq!(all_lints(&ok(&plain)), []);
    let all = bad.replace("=InvalidDefinitionDescription", "=all");
    assert_eq!(all_lints(&ok(&all)).len(), 4);
}

/// dockerfile_check_test.go testWarningsBeforeError: the warnings BuildKit's instruction
/// parser finds before an instruction that does not parse come with the error.
#[test]
fn warnings_before_a_parse_error() {
    let src = "\nFROM scratch AS BadStageName\nMAINTAINER me@example.org\nBADCMD\n";
    let e = lower_with(src, &[], None).unwrap_err();
    assert!(
        e.message.contains("unknown instruction: BADCMD"),
        "{}",
        e.message
    );
    assert_eq!(e.span.start_line, 4);
    let got: Vec<(&str, &str, usize)> = e
        .warnings()
        .iter()
        .map(|w| {
            (
                w.rule.unwrap(),
                w.message.as_str(),
                w.span.unwrap().start_line,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "StageNameCasing",
                "Stage name 'BadStageName' should be lowercase",
                2
            ),
            (
                "MaintainerDeprecated",
                "Maintainer instruction is deprecated in favor of using label",
                3
            ),
        ]
    );
    assert_eq!(
        e.warnings()[1].url(),
        Some("https://docs.docker.com/go/dockerfile/rule/maintainer-deprecated/")
    );
}

/// dockerfile_check_test.go testAllTargetUnmarshal and testLegacyKeyValueFormat's third
/// Dockerfile: a build reports the warnings of the stages it builds only (BuildKit lists the
/// others in its lint-only request, `docker build --check`, which pallet does not have).
#[test]
fn builds_lint_the_stages_they_build() {
    let l = ok("\nFROM scratch AS first\nCOPY $foo .\n\nFROM scratch AS second\nCOPY $bar .\n");
    assert_eq!(
        all_lints(&l),
        [(
            "UndefinedVar",
            "Usage of undefined variable '$bar'".into(),
            6
        )]
    );
    assert_eq!(
        l.warnings[0].url(),
        Some("https://docs.docker.com/go/dockerfile/rule/undefined-var/")
    );
    let l = ok(
        "\nFROM scratch AS a\n\nFROM a AS b\nENV testkey value\nLABEL key value\n\nFROM a AS c\n",
    );
    assert_eq!(all_lints(&l), []);
    let l = lower_with(
        "\nFROM scratch AS a\n\nFROM a AS b\nENV testkey value\nLABEL key value\n\nFROM a AS c\n",
        &[],
        Some("b"),
    )
    .unwrap();
    assert_eq!(
        all_lints(&l),
        [
            (
                "LegacyKeyValueFormat",
                "\"ENV key=value\" should be used instead of legacy \"ENV key value\" format"
                    .into(),
                5
            ),
            (
                "LegacyKeyValueFormat",
                "\"LABEL key=value\" should be used instead of legacy \"LABEL key value\" format"
                    .into(),
                6
            ),
        ]
    );
}

/// A resolver with BuildKit's test base images as configs: `alpine` and `busybox` with
/// docker's PATH.
fn base_images() -> frontend::lower::MemoryResolver {
    let mut r = frontend::lower::MemoryResolver::default();
    for name in ["alpine", "busybox"] {
        let mut image = graph::image::Image::default();
        image.config.env =
            vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()];
        let reference = format!("docker.io/library/{name}:latest");
        r.0.insert(
            reference.clone(),
            frontend::lower::ResolvedImage { reference, image },
        );
    }
    r
}

fn lints_on_images(src: &str, args: &[(&str, &str)]) -> Vec<(&'static str, String, usize)> {
    let df = parse(src.as_bytes()).unwrap();
    let o = LowerOptions {
        build_args: args
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..LowerOptions::default()
    };
    let l = lower(&df, &o, &base_images())
        .unwrap_or_else(|e| panic!("{}", e.render("Dockerfile", src)));
    all_lints(&l)
}

/// dockerfile_check_test.go testUnmatchedVars: UndefinedVar with BuildKit's "did you mean"
/// (the closest defined name, the base image's PATH among them); none for a declared ARG, an
/// ARG of the base stage, or RUN (its shell expands).
#[test]
fn unmatched_vars() {
    let rule = "UndefinedVar";
    assert_eq!(
        lints_on_images("\nFROM scratch\nARG foo\nCOPY Dockerfile${foo} .\n", &[]),
        []
    );
    assert_eq!(
        lints_on_images(
            "\nFROM alpine AS base\nARG foo=Dockerfile\n\nFROM base\nCOPY $foo .\n",
            &[]
        ),
        []
    );
    assert_eq!(lints_on_images("\nFROM alpine\nRUN echo $PATH\n", &[]), []);
    assert_eq!(
        lints_on_images(
            "\nFROM alpine\nCOPY $foo .\nARG foo=bar\nRUN echo $foo\n",
            &[]
        ),
        [(rule, "Usage of undefined variable '$foo'".into(), 3)]
    );
    assert_eq!(
        lints_on_images(
            "\nFROM alpine\nARG DIR_BINARIES=binaries/\nARG DIR_ASSETS=assets/\n\
             ARG DIR_CONFIG=config/\nCOPY $DIR_ASSET .\n\t",
            &[]
        ),
        [(
            rule,
            "Usage of undefined variable '$DIR_ASSET' (did you mean $DIR_ASSETS?)".into(),
            6
        )]
    );
    assert_eq!(
        lints_on_images("\nFROM alpine\nENV PATH=$PAHT:/tmp/bin\n\t\t", &[]),
        [(
            rule,
            "Usage of undefined variable '$PAHT' (did you mean $PATH?)".into(),
            3
        )]
    );
}

/// dockerfile_check_test.go testInvalidDefaultArgInFrom: a base name that is empty or no
/// valid reference with the global ARGs' defaults alone (build args not applied) warns,
/// even when the build arg given makes it valid.
#[test]
fn invalid_default_arg_in_from() {
    let rule = "InvalidDefaultArgInFrom";
    let text = |base: &str| {
        format!("Default value for ARG {base} results in empty or invalid base image name")
    };
    assert_eq!(
        lints_on_images(
            "\nARG VERSION\nFROM busybox:$VERSION\n",
            &[("VERSION", "latest")]
        ),
        [(rule, text("busybox:$VERSION"), 3)]
    );
    assert_eq!(
        lints_on_images("\nARG IMAGE\nFROM $IMAGE\n", &[("IMAGE", "busybox:latest")]),
        [(rule, text("$IMAGE"), 3)]
    );
    assert_eq!(
        lints_on_images(
            "\nARG SFX=\"box:\"\nFROM busy${SFX}\n",
            &[("SFX", "box:latest")]
        ),
        [(rule, text("busy${SFX}"), 3)]
    );
    assert_eq!(
        lints_on_images(
            "\nARG VERSION=\"latest\"\nFROM busybox:${VERSION}\n",
            &[("VERSION", "latest")]
        ),
        []
    );
    assert_eq!(
        lints_on_images(
            "\nARG BUSYBOX_VARIANT=\"\"\nFROM busybox:stable${BUSYBOX_VARIANT}\n",
            &[("BUSYBOX_VARIANT", "-musl")]
        ),
        []
    );
    assert_eq!(
        lints_on_images(
            "\n\tARG BUSYBOX_VARIANT\n\tFROM busybox:stable${BUSYBOX_VARIANT}\n\t",
            &[("BUSYBOX_VARIANT", "-musl")]
        ),
        []
    );
}

/// dockerfile_check_test.go testBaseImagePlatformMismatch: a base whose config is for
/// another platform than the stage's warns InvalidBaseImagePlatform (BuildKit's text; the
/// rule has no documentation page); the same platform does not.
#[test]
fn base_image_platform_mismatch() {
    let mut r = frontend::lower::MemoryResolver::default();
    let reference = "127.0.0.1:5000/buildkit/testbaseimageplatform:latest".to_string();
    let image = graph::image::Image {
        os: "linux".into(),
        architecture: "arm64".into(),
        ..Default::default()
    };
    r.0.insert(
        reference.clone(),
        frontend::lower::ResolvedImage {
            reference: reference.clone(),
            image,
        },
    );
    let src = format!("\nFROM {reference}\nENV foo=bar\n\t");
    let df = parse(src.as_bytes()).unwrap();
    let on = |p: &str| {
        let o = LowerOptions {
            platform: Some(frontend::lower::platform::parse(p).unwrap()),
            ..LowerOptions::default()
        };
        all_lints(&lower(&df, &o, &r).unwrap())
    };
    assert_eq!(
        on("linux/amd64"),
        [(
            "InvalidBaseImagePlatform",
            format!("Base image {reference} was pulled with platform \"linux/arm64\", expected \"linux/amd64\" for current build"),
            2
        )]
    );
    assert_eq!(on("linux/arm64"), []);
    let w = frontend::lint::rule_info("InvalidBaseImagePlatform").unwrap();
    assert_eq!(
        w.description,
        "Base image platform does not match expected target platform"
    );
    assert_eq!(w.url, None);
}

/// A resolver that answers `source_epoch` with a fixed time and records what it was asked.
#[derive(Default)]
struct EpochResolver {
    asked: std::cell::RefCell<Vec<graph::resolve::EpochSource>>,
}

impl frontend::lower::ImageResolver for EpochResolver {
    fn resolve(
        &self,
        _: &str,
        _: &graph::Platform,
    ) -> Result<Option<frontend::lower::ResolvedImage>, graph::resolve::ResolveError> {
        Ok(None)
    }

    fn source_epoch(
        &self,
        source: &graph::resolve::EpochSource,
    ) -> Result<Option<i64>, graph::resolve::ResolveError> {
        self.asked.borrow_mut().push(source.clone());
        Ok(Some(1_700_000_402))
    }
}

/// The environment of the lowering's RUN steps.
fn run_envs(l: &Lowered) -> Vec<Vec<String>> {
    l.graph
        .vertices
        .iter()
        .filter_map(|v| match &v.op {
            graph::Op::Exec(e) => Some(e.env.clone()),
            _ => None,
        })
        .collect()
}

/// dockerfile_source_date_epoch_test.go testSourceDateEpochContextLocalUnset,
/// testSourceDateEpochStageHTTPArchive, testSourceDateEpochStageOverride,
/// testSourceDateEpochStageInvalid, as lowered: `context` (a local directory has no time) and
/// a named context's name lower as if SOURCE_DATE_EPOCH were unset; a stage name asks the
/// resolver for the time of the stage's one ADD <url> and RUN sees that number; a number
/// given as build arg wins without asking; a stage that is not source-only fails with
/// BuildKit's texts at its FROM line.
#[test]
fn source_date_epoch_from_context_and_stages() {
    let lower_sde = |src: &str, args: &[(&str, &str)], named: &[&str]| {
        let df = parse(src.as_bytes()).unwrap();
        let mut o = LowerOptions {
            build_args: args
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..LowerOptions::default()
        };
        for n in named {
            o.named_contexts.insert(
                n.to_string(),
                frontend::lower::NamedContext::Local {
                    exclude_patterns: Vec::new(),
                },
            );
        }
        let r = EpochResolver::default();
        let l = lower(&df, &o, &r);
        (l, r.asked.into_inner())
    };
    let echo = "FROM busybox\nARG SOURCE_DATE_EPOCH\nRUN echo -n \"$SOURCE_DATE_EPOCH\" >/epoch\n";
    // `context`, as build arg or ARG default, and a named context: no time.
    for (src, args, named) in [
        (
            echo.to_string(),
            vec![("SOURCE_DATE_EPOCH", "context")],
            vec![],
        ),
        (echo.to_string(), vec![("SOURCE_DATE_EPOCH", "")], vec![]),
        (
            format!("ARG SOURCE_DATE_EPOCH=context\n{echo}"),
            vec![],
            vec![],
        ),
        (
            format!("ARG SOURCE_DATE_EPOCH=src\n{echo}"),
            vec![],
            vec!["src"],
        ),
    ] {
        let (l, asked) = lower_sde(&src, &args, &named);
        let l = l.unwrap();
        assert_eq!(l.epoch, None, "{src}");
        assert!(asked.is_empty());
        let envs = run_envs(&l);
        assert_eq!(envs.len(), 1);
        assert!(
            !envs[0].iter().any(|e| e.starts_with("SOURCE_DATE_EPOCH")),
            "{src}: {:?}",
            envs[0]
        );
    }
    // A source-only stage (named in any case, ARGs expanded in its ADD).
    let staged = format!(
        "\nARG SOURCE_DATE_EPOCH=MySource\nFROM scratch AS mysource\nARG file=src.tar\n\
         ADD --checksum=sha256:0123 http://127.0.0.1:1/${{file}} /\n{echo}"
    );
    let (l, asked) = lower_sde(&staged, &[], &[]);
    let l = l.unwrap();
    assert_eq!(l.epoch, Some(1_700_000_402));
    assert_eq!(
        asked,
        [graph::resolve::EpochSource::Http {
            url: "http://127.0.0.1:1/src.tar".into(),
            checksum: Some("sha256:0123".into())
        }]
    );
    assert!(run_envs(&l)[0].contains(&"SOURCE_DATE_EPOCH=1700000402".to_string()));
    assert_eq!(
        l.stages,
        ["stage-1"],
        "the source stage itself is not built"
    );
    // A number given as build arg: the stage is not asked about.
    let (l, asked) = lower_sde(&staged, &[("SOURCE_DATE_EPOCH", "1700000502")], &[]);
    assert_eq!(l.unwrap().epoch, Some(1_700_000_502));
    assert!(asked.is_empty());
    // Stages that are not source-only.
    for (stage, want) in [
        ("FROM scratch AS mysource\nCOPY Dockerfile /Dockerfile\n", "SOURCE_DATE_EPOCH stage does not meet source-only requirements: unsupported copy instruction"),
        ("FROM busybox AS mysource\nADD http://127.0.0.1:1/a.tar /\n", "SOURCE_DATE_EPOCH stage must use FROM scratch"),
        ("FROM scratch AS mysource\nARG a=1\n", "SOURCE_DATE_EPOCH stage must contain exactly one remote ADD"),
        ("FROM scratch AS mysource\nADD http://127.0.0.1:1/a.tar /\nADD http://127.0.0.1:1/b.tar /\n", "SOURCE_DATE_EPOCH stage must contain exactly one remote ADD"),
        ("FROM scratch AS mysource\nADD http://127.0.0.1:1/a.tar http://127.0.0.1:1/b.tar /\n", "SOURCE_DATE_EPOCH stage must contain exactly one remote ADD source"),
        ("FROM scratch AS mysource\nADD local.tar /\n", "SOURCE_DATE_EPOCH stage source must be a single HTTP(S) or Git ADD"),
    ] {
        let src = format!("\nARG SOURCE_DATE_EPOCH=mysource\n{stage}FROM scratch\n");
        let (l, asked) = lower_sde(&src, &[], &[]);
        let e = l.unwrap_err();
        assert_eq!(e.message, want, "{src}");
        assert_eq!(e.span.start_line, 3, "at the stage's FROM");
        assert!(asked.is_empty());
    }
    // A git source: the remote, the ref (`#ref:subdir` split off) and the checksum.
    let (l, asked) = lower_sde(
        &format!(
            "ARG SOURCE_DATE_EPOCH=src\nFROM scratch AS src\n\
             ADD --checksum=abc123 https://example.com/repo.git#v1.0:docs /\n{echo}"
        ),
        &[],
        &[],
    );
    assert_eq!(l.unwrap().epoch, Some(1_700_000_402));
    assert_eq!(
        asked,
        [graph::resolve::EpochSource::Git {
            remote: "https://example.com/repo.git".into(),
            reference: "v1.0".into(),
            checksum: Some("abc123".into())
        }]
    );
    // Neither a number nor a name.
    let (l, _) = lower_sde(&format!("ARG SOURCE_DATE_EPOCH=nosuch\n{echo}"), &[], &[]);
    assert_eq!(l.unwrap_err().message, "invalid SOURCE_DATE_EPOCH: nosuch");
}
