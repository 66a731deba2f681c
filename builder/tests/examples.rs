//! The Dockerfiles our users write (../shared/examples, from ML tutorials) and our own
//! testdata/examples, lowered as `pallet debug graph` lowers them (bases unresolvable, so empty
//! configs). Each must lower where BuildKit accepts it and fail with a clear, line-numbered
//! error where BuildKit rejects it; tutorial fragments without FROM must fail saying so.

use frontend::diagnostic::FrontendError;
use frontend::lower::{lower, LowerOptions, Lowered, Offline};
use frontend::parser::parse;
use std::path::{Path, PathBuf};

fn shared_examples() -> PathBuf {
    let dir = match std::env::var_os("PALLET_SHARED") {
        Some(d) => PathBuf::from(d).join("examples"),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/examples"),
    };
    assert!(dir.is_dir(), "tutorial corpus not found at {} (set PALLET_SHARED to the shared/ directory); refusing to pass without it", dir.display());
    dir
}

/// Lowers a file; on error, the error and the file's text (to render it).
fn lower_file(path: &Path) -> Result<Lowered, Box<(FrontendError, String)>> {
    let bytes = std::fs::read(path).unwrap();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let df = parse(&bytes).map_err(|e| Box::new((FrontendError::from(e), text.clone())))?;
    lower(&df, &LowerOptions::default(), &Offline).map_err(|e| Box::new((e, text)))
}

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
    let dir = shared_examples();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "Dockerfile"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 30,
        "expected the tutorial corpus, found {} files",
        files.len()
    );
    let mut failures = Vec::new();
    for f in &files {
        let name = f.file_name().unwrap().to_str().unwrap();
        let expected = REJECTED.iter().find(|(n, _, _)| *n == name);
        match (lower_file(f), expected) {
            (Ok(l), None) => {
                assert!(!l.graph.vertices.is_empty(), "{name}: empty graph");
                assert!(
                    !l.image.history.is_empty() || l.graph.vertices.len() == 1,
                    "{name}: no history"
                );
            }
            (Ok(_), Some((_, line, msg))) => failures.push(format!(
                "{name}: lowered, but BuildKit rejects it at line {line}: {msg}"
            )),
            (Err(b), None) => {
                let (e, text) = *b;
                failures.push(format!(
                    "{name}: unexpected error\n{}",
                    e.render(name, &text)
                ))
            }
            (Err(b), Some((_, line, msg))) => {
                let (e, text) = *b;
                if e.span.start_line != *line || !e.message.starts_with(msg) {
                    failures.push(format!(
                        "{name}: want line {line} {msg:?}, got\n{}",
                        e.render(name, &text)
                    ));
                }
                let rendered = e.render(name, &text);
                if !rendered.contains(&format!("{name}:{line}:")) || !rendered.contains('^') {
                    failures.push(format!(
                        "{name}: error does not point at the line:\n{rendered}"
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn fragments_parse_but_do_not_lower_without_from() {
    let dir = shared_examples().join("fragments");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        parse(&bytes)
            .unwrap_or_else(|e| panic!("{}: fragment must parse: {}", path.display(), e.message));
        let (e, _) = *lower_file(&path)
            .err()
            .unwrap_or_else(|| panic!("{} has no FROM and must not lower", path.display()));
        let help = e.hint.clone().unwrap_or_default();
        assert!(
            e.message.contains("FROM") || help.contains("FROM"),
            "{}: unclear error: {} ({help})",
            path.display(),
            e.message
        );
        count += 1;
    }
    assert!(count >= 20, "expected the fragments, found {count}");
}

#[test]
fn own_examples_lower() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/examples");
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
