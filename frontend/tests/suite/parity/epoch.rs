//! dockerfile_source_date_epoch_test.go's SOURCE_DATE_EPOCH values other than a number, as
//! lowered: `context`, a named context, a source-only stage (the builds: parity_sde).

use frontend::lower::{lower, LowerOptions, Lowered};
use frontend::parser::parse;

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
