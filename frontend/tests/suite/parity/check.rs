//! dockerfile_check_test.go's lint cases that the first sweep left: CopyIgnoredFile, the
//! experimental InvalidDefinitionDescription, warnings before a parse error, the stages a
//! build lints, UndefinedVar's suggestions, InvalidDefaultArgInFrom and
//! InvalidBaseImagePlatform (rules, details, lines, descriptions and URLs as BuildKit's).

use super::{lower_with, ok};
use frontend::lower::{lower, LowerOptions, Lowered, Offline};
use frontend::parser::parse;

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
