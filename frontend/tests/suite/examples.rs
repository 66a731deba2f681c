//! The Dockerfiles our users write, lowered as `pallet debug graph` lowers them (bases
//! unresolvable, so empty configs): the project's own corpus (testdata/corpus, ML-style files
//! written for pallet, each saying what it covers and what must happen to it), our
//! testdata/examples, and, when ../shared is there, the tutorial corpus of ../shared/examples.
//! Each must lower where BuildKit accepts it and fail with a clear, line-numbered error where
//! BuildKit rejects it; fragments without FROM must parse, and fail to lower saying so.

use frontend::diagnostic::FrontendError;
use frontend::lower::{lower, LowerOptions, Lowered, Offline};
use frontend::parser::{dump, parse};
use std::path::{Path, PathBuf};
use testkit::repo;

/// Lowers a file; on error, the error and the file's text (to render it).
fn lower_file(path: &Path) -> Result<Lowered, Box<(FrontendError, String)>> {
    let bytes = std::fs::read(path).unwrap();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let df = parse(&bytes).map_err(|e| Box::new((FrontendError::from(e), text.clone())))?;
    lower(&df, &LowerOptions::default(), &Offline).map_err(|e| Box::new((e, text)))
}

/// The files in `dir` named `*.Dockerfile`, sorted.
fn dockerfiles(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "Dockerfile"))
        .collect();
    files.sort();
    files
}

/// Where BuildKit rejects a file: the line it names and the start of its message.
type Rejection<'a> = (usize, &'a str);

/// Checks that `file` lowers, or, when `rejected` says BuildKit rejects it, that lowering fails
/// at that line with that message and the rendered error points at the line. Returns what is
/// wrong, if anything.
fn check_lowering(file: &Path, rejected: Option<Rejection>) -> Option<String> {
    let name = file.file_name().unwrap().to_str().unwrap();
    match (lower_file(file), rejected) {
        (Ok(l), None) => {
            assert!(!l.graph.vertices.is_empty(), "{name}: empty graph");
            assert!(
                !l.image.history.is_empty() || l.graph.vertices.len() == 1,
                "{name}: no history"
            );
            None
        }
        (Ok(_), Some((line, msg))) => Some(format!(
            "{name}: lowered, but BuildKit rejects it at line {line}: {msg}"
        )),
        (Err(b), None) => {
            let (e, text) = *b;
            Some(format!(
                "{name}: unexpected error\n{}",
                e.render(name, &text)
            ))
        }
        (Err(b), Some((line, msg))) => {
            let (e, text) = *b;
            let mut wrong = Vec::new();
            if e.span.start_line != line || !e.message.starts_with(msg) {
                wrong.push(format!(
                    "{name}: want line {line} {msg:?}, got\n{}",
                    e.render(name, &text)
                ));
            }
            let rendered = e.render(name, &text);
            if !rendered.contains(&format!("{name}:{line}:")) || !rendered.contains('^') {
                wrong.push(format!(
                    "{name}: error does not point at the line:\n{rendered}"
                ));
            }
            (!wrong.is_empty()).then(|| wrong.join("\n"))
        }
    }
}

/// Checks that a fragment without FROM parses, and that lowering it fails with an error that
/// names FROM (in its message or its hint).
fn check_fragment(path: &Path) {
    let bytes = std::fs::read(path).unwrap();
    parse(&bytes)
        .unwrap_or_else(|e| panic!("{}: fragment must parse: {}", path.display(), e.message));
    let (e, _) = *lower_file(path)
        .err()
        .unwrap_or_else(|| panic!("{} has no FROM and must not lower", path.display()));
    let help = e.hint.clone().unwrap_or_default();
    assert!(
        e.message.contains("FROM") || help.contains("FROM"),
        "{}: unclear error: {} ({help})",
        path.display(),
        e.message
    );
}

// ---------------------------------------------------------------------------------------------
// The project's own corpus: testdata/corpus

/// What a corpus file's header says must happen to it: `# Expect: lowers`, or
/// `# Expect: rejected at line N: MESSAGE`.
fn expectation(path: &Path) -> Option<(usize, String)> {
    let text = std::fs::read_to_string(path).unwrap();
    let header: Vec<&str> = text.lines().take_while(|l| l.starts_with('#')).collect();
    assert!(
        header.iter().any(|l| l.starts_with("# Covers: ")),
        "{}: no `# Covers:` line in its header says what the file is for",
        path.display()
    );
    let expect = header
        .iter()
        .find_map(|l| l.strip_prefix("# Expect: "))
        .unwrap_or_else(|| panic!("{}: no `# Expect:` line in its header", path.display()));
    if expect == "lowers" {
        return None;
    }
    let rest = expect
        .strip_prefix("rejected at line ")
        .unwrap_or_else(|| panic!("{}: unknown expectation {expect:?}", path.display()));
    let (line, message) = rest
        .split_once(": ")
        .unwrap_or_else(|| panic!("{}: want `line N: MESSAGE`", path.display()));
    Some((line.parse().unwrap(), message.to_string()))
}

#[test]
fn own_corpus_lowers_or_fails_like_buildkit() {
    let files = dockerfiles(&repo::testdata("corpus/dockerfiles"));
    assert!(
        files.len() >= 25,
        "expected the corpus, found {} files",
        files.len()
    );
    let mut rejected = 0;
    let mut failures = Vec::new();
    for f in &files {
        let expected = expectation(f);
        rejected += usize::from(expected.is_some());
        let expected = expected.as_ref().map(|(line, msg)| (*line, msg.as_str()));
        failures.extend(check_lowering(f, expected));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        rejected >= 5,
        "the corpus keeps the files BuildKit rejects: {rejected}"
    );
}

#[test]
fn own_fragments_parse_but_do_not_lower_without_from() {
    let files = dockerfiles(&repo::testdata("corpus/fragments"));
    assert!(
        files.len() >= 12,
        "expected the fragments, found {}",
        files.len()
    );
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        assert!(
            text.starts_with("# Fragment: "),
            "{}: no `# Fragment:` header",
            f.display()
        );
        check_fragment(f);
    }
}

/// `#` after a COPY is not a comment: its words are more sources and the last one the
/// destination, as in BuildKit's AST; the file lowers.
#[test]
fn a_comment_after_copy_is_more_source_paths() {
    let file = repo::testdata("corpus/dockerfiles/copy-trailing-comment.Dockerfile");
    let ast = dump(&parse(&std::fs::read(&file).unwrap()).unwrap());
    assert!(
        ast.contains(r##"(copy "." "." "#" "code" "changes" "often")"##),
        "{ast}"
    );
    let lowered = lower_file(&file).unwrap_or_else(|b| panic!("{}", b.0.message));
    assert!(
        lowered
            .image
            .history
            .iter()
            .any(|h| h.created_by.contains("COPY . . # code changes often")),
        "{:?}",
        lowered.image.history
    );
}

#[test]
fn own_examples_lower() {
    let dir = repo::testdata("examples");
    let ml = lower_file(&dir.join("ml-multistage/Dockerfile"))
        .unwrap_or_else(|b| panic!("{}", b.0.render("ml-multistage", &b.1)));
    assert_eq!(ml.target, "runtime");
    assert_eq!(ml.stages, vec!["deps", "model", "runtime"]);
    assert_eq!(ml.image.config.user, "app");
    assert_eq!(
        ml.image.config.cmd,
        Some(vec!["python".to_string(), "src/serve.py".to_string()])
    );
    let bb = lower_file(&dir.join("busybox-hello/Dockerfile"))
        .unwrap_or_else(|b| panic!("{}", b.0.render("busybox", &b.1)));
    assert_eq!(
        bb.image.config.entrypoint,
        Some(vec!["/bin/busybox".to_string()])
    );
    assert_eq!(bb.stages, vec!["build", "stage-1"]);
}

// ---------------------------------------------------------------------------------------------
// The tutorial corpus: ../shared/examples, checked too when it is there

/// Tutorials BuildKit rejects, with the line it names and why.
const REJECTED: &[(&str, usize, &str)] = &[
    (
        "tutorial-10.Dockerfile",
        2,
        "FROM requires either one or three arguments",
    ), // `FROM x  # comment`
    (
        "tutorial-11.Dockerfile",
        2,
        "no build stage in current context",
    ), // starts with RUN
    (
        "tutorial-19.Dockerfile",
        2,
        "FROM requires either one or three arguments",
    ),
    ("tutorial-20.Dockerfile", 2, "unknown instruction: docker"), // shell commands pasted in
    (
        "tutorial-24.Dockerfile",
        1,
        "FROM requires either one or three arguments",
    ),
    (
        "tutorial-30.Dockerfile",
        2,
        "COPY requires at least two arguments",
    ), // `COPY ./app`
    (
        "tutorial-31.Dockerfile",
        5,
        "COPY requires at least two arguments",
    ),
    (
        "tutorial-32.Dockerfile",
        3,
        "COPY requires at least two arguments",
    ),
];

#[test]
fn tutorials_lower_or_fail_like_buildkit() {
    let Some(dir) = repo::shared("examples", "the tutorial corpus") else {
        return;
    };
    let files = dockerfiles(&dir);
    assert!(
        files.len() >= 30,
        "expected the tutorial corpus, found {} files",
        files.len()
    );
    let mut failures = Vec::new();
    for f in &files {
        let name = f.file_name().unwrap().to_str().unwrap();
        let expected = REJECTED
            .iter()
            .find(|(n, _, _)| *n == name)
            .map(|(_, line, msg)| (*line, *msg));
        failures.extend(check_lowering(f, expected));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn fragments_parse_but_do_not_lower_without_from() {
    let Some(dir) = repo::shared("examples/fragments", "the tutorial fragments") else {
        return;
    };
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        check_fragment(&entry.unwrap().path());
        count += 1;
    }
    assert!(count >= 20, "expected the fragments, found {count}");
}
