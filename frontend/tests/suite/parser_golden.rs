//! BuildKit's own parser test data (`frontend/dockerfile/parser/testfiles*`, copied into
//! `testdata/buildkit-parser` from `shared/testdata/buildkit-parser`): every positive case must dump exactly as BuildKit's
//! `result` file, every negative case must be rejected with a line, and the line ranges of
//! `testfile-line/Dockerfile` must match BuildKit's `TestParseIncludesLineNumbers`.

use std::fs;
use std::path::PathBuf;

use frontend::parser::{dump, parse};

/// `PALLET_SHARED_TESTDATA` if set, else the repository's `testdata/buildkit-parser`.
fn data_dir() -> PathBuf {
    let dir = match std::env::var_os("PALLET_SHARED_TESTDATA") {
        Some(d) => PathBuf::from(d),
        None => testkit::repo::testdata("buildkit-parser"),
    };
    assert!(
        dir.is_dir(),
        "BuildKit parser golden data not found at {} (set PALLET_SHARED_TESTDATA to the \
         buildkit-parser directory); refusing to pass without it",
        dir.display()
    );
    dir
}

fn case_dirs(sub: &str) -> Vec<PathBuf> {
    let dir = data_dir().join(sub);
    let mut out: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_dir())
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no cases in {}", dir.display());
    out
}

/// A line-by-line comparison that names the first differing lines.
fn diff(expected: &str, actual: &str) -> String {
    let mut msg = String::new();
    let (e, a): (Vec<&str>, Vec<&str>) =
        (expected.split('\n').collect(), actual.split('\n').collect());
    for i in 0..e.len().max(a.len()) {
        let (x, y) = (e.get(i).copied(), a.get(i).copied());
        if x != y {
            msg.push_str(&format!(
                "  line {}:\n    - {:?}\n    + {:?}\n",
                i + 1,
                x,
                y
            ));
        }
    }
    msg
}

#[test]
fn positive_cases_dump_like_buildkit() {
    let dirs = case_dirs("testfiles");
    let mut failures = Vec::new();
    for dir in &dirs {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let src = fs::read(dir.join("Dockerfile")).expect("read Dockerfile");
        let expected = fs::read_to_string(dir.join("result")).expect("read result");
        match parse(&src) {
            Err(e) => failures.push(format!(
                "{name}: parse error at {:?}: {}",
                e.span, e.message
            )),
            Ok(df) => {
                let got = dump(&df);
                if got != expected {
                    failures.push(format!("{name}: dump differs\n{}", diff(&expected, &got)));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} golden cases failed:\n{}",
        failures.len(),
        dirs.len(),
        failures.join("\n")
    );
    assert_eq!(
        dirs.len(),
        33,
        "expected BuildKit's 33 positive golden cases"
    );
}

#[test]
fn negative_cases_are_rejected() {
    let dirs = case_dirs("testfiles-negative");
    for dir in &dirs {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let src = fs::read(dir.join("Dockerfile")).expect("read Dockerfile");
        match parse(&src) {
            Ok(df) => panic!("{name}: expected an error, got:\n{}", dump(&df)),
            Err(e) => {
                assert!(
                    e.span.start_line >= 1,
                    "{name}: error without a line: {e:?}"
                );
                assert!(!e.message.is_empty(), "{name}: empty message");
            }
        }
    }
    assert_eq!(dirs.len(), 4, "expected BuildKit's 4 negative golden cases");
}

#[test]
fn negative_cases_messages() {
    let dir = data_dir().join("testfiles-negative");
    let err = |n: &str| parse(&fs::read(dir.join(n).join("Dockerfile")).unwrap()).unwrap_err();
    let e = err("empty_dockerfile");
    assert_eq!(e.message, "file with no instructions");
    assert_eq!(e.span.start_line, 1);
    let e = err("only_comments");
    assert_eq!(e.message, "file with no instructions");
    assert_eq!(e.span.start_line, 3);
    let e = err("env_no_value");
    assert_eq!(e.message, "ENV must have two arguments");
    assert_eq!((e.span.start_line, e.span.end_line), (3, 3));
    let e = err("shykes-nested-json");
    assert_eq!(
        e.message,
        "when using JSON array syntax, arrays must be comprised of strings only"
    );
    assert_eq!((e.span.start_line, e.span.end_line), (1, 1));
}

/// Expected ranges from BuildKit's `parser_test.go`, `TestParseIncludesLineNumbers`:
/// the AST spans lines 5..31 and its children are {5,5}, {11,12}, {17,31}.
#[test]
fn line_ranges_like_buildkit() {
    let src = fs::read(data_dir().join("testfile-line/Dockerfile")).expect("read");
    let df = parse(&src).expect("parse testfile-line");
    let got: Vec<(usize, usize)> = df
        .nodes
        .iter()
        .map(|n| (n.span.start_line, n.span.end_line))
        .collect();
    assert_eq!(got, vec![(5, 5), (11, 12), (17, 31)]);
    assert_eq!(df.nodes.first().unwrap().span.start_line, 5);
    assert_eq!(df.nodes.last().unwrap().span.end_line, 31);
    // Its first line is `# ESCAPE=\`: a (case-insensitive) escape directive.
    assert_eq!(df.directives.escape, '\\');
}

/// The Dockerfile of BuildKit's `parser_heredoc_test.go`, `TestParseExtractsHeredoc`.
const HEREDOC_FILE: &str = r#"
FROM alpine:3.6

ENV NAME=me

RUN ls

USER <<INVALID
INVALID

RUN <<EMPTY
EMPTY

RUN 3<<EMPTY2
EMPTY2

RUN "<<NOHEREDOC"

RUN <<INDENT
	foo
	bar
INDENT

RUN <<-UNINDENT
	baz
	quux
UNINDENT

RUN <<-UNINDENT2
	baz
	quux
	UNINDENT2

RUN <<-EXPAND
	expand $NAME
EXPAND

RUN <<-'NOEXPAND'
	don't expand $NAME
NOEXPAND

RUN <<COPY
echo hello world
echo foo bar
COPY

RUN <<COMMENT
# internal comment
echo hello world
echo foo bar # trailing comment
COMMENT

RUN --mount=type=cache,target=/foo <<MOUNT
echo hello
MOUNT

COPY <<FILE1 <<FILE2 /dest
content 1
FILE1
content 2
FILE2

COPY <<EOF /quotes
"foo"
'bar'
EOF

COPY <<X <<Y /dest
Y
X
X
Y

RUN <<COMPLEX python3
print('hello world')
COMPLEX

COPY <<file.txt /dest
hello world
file.txt

RUN <<eo'f'
echo foo
eof

RUN <<eo\'f
echo foo
eo'f

RUN <<'e'o\'f
echo foo
eo'f

RUN <<'one two'
echo bar
one two

RUN <<$EOF
$EOF

RUN <<  EOF
EOF

RUN <<  EOF  > foo
EOF
	"#;

/// BuildKit's `TestParseExtractsHeredoc` expectations (name, content, expand, chomp) for
/// every instruction after FROM. Differences: our content has `<<-` tab stripping applied
/// already, and we keep no file descriptor.
#[test]
fn heredocs_like_buildkit() {
    let h = |name: &str, content: &str, expand: bool, chomp: bool| {
        (name.to_string(), content.to_string(), expand, chomp)
    };
    let expected = vec![
        vec![],
        vec![],
        vec![],
        vec![],
        vec![h("EMPTY", "", true, false)],
        vec![h("EMPTY2", "", true, false)],
        vec![],
        vec![h("INDENT", "\tfoo\n\tbar\n", true, false)],
        vec![h("UNINDENT", "baz\nquux\n", true, true)],
        vec![h("UNINDENT2", "baz\nquux\n", true, true)],
        vec![h("EXPAND", "expand $NAME\n", true, true)],
        vec![h("NOEXPAND", "don't expand $NAME\n", false, true)],
        vec![h("COPY", "echo hello world\necho foo bar\n", true, false)],
        vec![h(
            "COMMENT",
            "# internal comment\necho hello world\necho foo bar # trailing comment\n",
            true,
            false,
        )],
        vec![h("MOUNT", "echo hello\n", true, false)],
        vec![
            h("FILE1", "content 1\n", true, false),
            h("FILE2", "content 2\n", true, false),
        ],
        vec![h("EOF", "\"foo\"\n'bar'\n", true, false)],
        vec![h("X", "Y\n", true, false), h("Y", "X\n", true, false)],
        vec![h("COMPLEX", "print('hello world')\n", true, false)],
        vec![h("file.txt", "hello world\n", true, false)],
        vec![h("eof", "echo foo\n", false, false)],
        vec![h("eo'f", "echo foo\n", true, false)],
        vec![h("eo'f", "echo foo\n", false, false)],
        vec![h("one two", "echo bar\n", false, false)],
        vec![h("$EOF", "", true, false)],
        vec![h("EOF", "", true, false)],
        vec![h("EOF", "", true, false)],
    ];
    let df = parse(HEREDOC_FILE.as_bytes()).expect("parse heredoc file");
    assert_eq!(df.nodes.len(), expected.len() + 1);
    for (i, want) in expected.iter().enumerate() {
        let node = &df.nodes[i + 1];
        let got: Vec<_> = node
            .heredocs
            .iter()
            .map(|x| h(&x.name, &x.content, x.expand, x.chomp))
            .collect();
        assert_eq!(&got, want, "instruction {} ({})", i + 1, node.original);
    }
}

/// BuildKit's `parser_heredoc_test.go`, `TestParseJSONHeredoc`: exec form has no heredocs.
#[test]
fn json_form_has_no_heredocs_like_buildkit() {
    let src = "\nFROM alpine:3.6\n\nRUN [\"whoami\"]\nRUN [\"<<EOF\"]\nRUN [\"<<'EOF'\"]\n\t";
    let df = parse(src.as_bytes()).expect("parse");
    assert!(df.nodes.iter().all(|n| n.heredocs.is_empty()));
}

/// BuildKit's `parser_test.go`, `TestParseWarnsOnEmptyContinutationLine`.
#[test]
fn empty_continuation_warnings_like_buildkit() {
    let src = concat!(
        "\nFROM alpine:3.6\n\nRUN valid \\\n    continuation\n\n",
        "RUN something \\\n\n    following \\\n\n    more\n\n",
        "RUN another \\\n\n    thing\n\n",
        "RUN non-indented \\\n# this is a comment\n   after-comment\n\n",
        "RUN indented \\\n    # this is an indented comment\n    comment\n\t",
    );
    let df = parse(src.as_bytes()).expect("parse");
    let msgs: Vec<&str> = df.warnings.iter().map(|w| w.message.as_str()).collect();
    assert_eq!(
        msgs,
        [
            "Empty continuation line found in: RUN something     following     more",
            "Empty continuation line found in: RUN another     thing",
        ]
    );
    assert!(df
        .warnings
        .iter()
        .all(|w| w.rule == Some("NoEmptyContinuation")));
}

/// BuildKit's `parser_test.go`, `TestParseReturnsScannerErrors`.
#[test]
fn over_long_line_like_buildkit() {
    let src = format!(
        "\n\t\tFROM image\n\t\tLABEL test={}\n",
        "a".repeat(64 * 1024)
    );
    let e = parse(src.as_bytes()).unwrap_err();
    assert_eq!(
        e.message,
        "dockerfile line greater than max allowed size of 65535"
    );
}
