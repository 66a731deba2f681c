//! Hand-written cases for the Dockerfile parser beyond BuildKit's golden files: directives,
//! encodings, continuations, comments, heredocs, JSON and shell forms, ONBUILD, flags, keyword
//! casing, line spans, errors, and a property test that no input makes it panic.

use frontend::ast::{Dockerfile, Node, ParseError};
use frontend::parser::{dump, go_quote, go_quote_bytes, parse};
use proptest::prelude::*;

fn ok(src: &str) -> Dockerfile {
    parse(src.as_bytes()).unwrap_or_else(|e| panic!("parse failed: {e:?}\n--- input\n{src}"))
}

fn err(src: &str) -> ParseError {
    match parse(src.as_bytes()) {
        Ok(df) => panic!("expected an error, got:\n{}", dump(&df)),
        Err(e) => e,
    }
}

fn lines(df: &Dockerfile) -> Vec<String> {
    dump(df).lines().map(str::to_string).collect()
}

fn spans(df: &Dockerfile) -> Vec<(usize, usize)> {
    df.nodes
        .iter()
        .map(|n| (n.span.start_line, n.span.end_line))
        .collect()
}

fn node(df: &Dockerfile, i: usize) -> &Node {
    &df.nodes[i]
}

// ---- directives ----

#[test]
fn escape_backtick_directive() {
    let df = ok("# escape=`\nFROM a\nRUN echo `\n  hi\nRUN c:\\dir\\\n");
    assert_eq!(df.directives.escape, '`');
    assert_eq!(
        lines(&df),
        [
            "(from \"a\")",
            "(run \"echo   hi\")",
            "(run \"c:\\\\dir\\\\\")"
        ]
    );
    assert_eq!(spans(&df), [(2, 2), (3, 4), (5, 5)]);
}

#[test]
fn directive_keys_are_case_insensitive_and_captured_with_lines() {
    let df =
        ok("# SYNTAX = docker/dockerfile:1 \n#Check=skip=all;error=true\n# Escape=`\nFROM a\n");
    assert_eq!(
        df.directives.syntax,
        Some(("docker/dockerfile:1".to_string(), 1))
    );
    assert_eq!(
        df.directives.check,
        Some(("skip=all;error=true".to_string(), 2))
    );
    assert_eq!(df.directives.escape, '`');
    assert!(
        node(&df, 0).prev_comment.is_empty(),
        "directives are not comments"
    );
}

#[test]
fn directive_after_a_comment_or_blank_line_is_not_a_directive() {
    let df = ok("# hello\n# escape=`\nFROM a\nRUN a `\nb\n");
    assert_eq!(df.directives.escape, '\\');
    assert_eq!(node(&df, 0).prev_comment, ["hello", "escape=`"]);
    assert_eq!(lines(&df), ["(from \"a\")", "(run \"a `\")", "(b \"\")"]);

    let df = ok("\n# escape=`\nFROM a\n");
    assert_eq!(df.directives.escape, '\\');
    let df = ok("# foo=bar\n# escape=`\nFROM a\n");
    assert_eq!(df.directives.escape, '\\');
    let df = ok("FROM a\n# syntax=x\n");
    assert_eq!(df.directives.syntax, None);
}

#[test]
fn duplicate_and_invalid_directives_are_errors() {
    let e = err("# escape=\\\n# ESCAPE=`\nFROM a\n");
    assert_eq!(e.message, "only one escape parser directive can be used");
    assert_eq!(e.span.start_line, 2);
    let e = err("# syntax=a\n# syntax=b\nFROM a\n");
    assert_eq!(e.message, "only one syntax parser directive can be used");
    let e = err("# escape=x\nFROM a\n");
    assert_eq!(e.message, "invalid escape token 'x' does not match ` or \\");
    assert_eq!(e.span.start_line, 1);
}

// ---- encodings ----

#[test]
fn bom_and_crlf() {
    let df = parse(b"\xEF\xBB\xBF# escape=`\r\nFROM a\r\nRUN b `\r\n  c\r\n").unwrap();
    assert_eq!(df.directives.escape, '`');
    assert_eq!(lines(&df), ["(from \"a\")", "(run \"b   c\")"]);
    assert_eq!(spans(&df), [(2, 2), (3, 4)]);
    let df = parse(b"\xEF\xBB\xBFFROM a\r\n").unwrap();
    assert_eq!(node(&df, 0).keyword, "from");
}

#[test]
fn crlf_heredoc_keeps_its_line_ends() {
    let df = ok("FROM a\r\nRUN <<EOF\r\nhi\r\nEOF\r\nRUN b\r\n");
    let h = &node(&df, 1).heredocs;
    assert_eq!(h.len(), 1);
    assert_eq!(h[0].content, "hi\r\n");
    assert_eq!(spans(&df), [(1, 1), (2, 4), (5, 5)]);
}

#[test]
fn invalid_utf8_is_an_error_with_position() {
    let e = parse(b"FROM a\nRUN \xff\n").unwrap_err();
    assert_eq!(e.message, "Dockerfile is not valid UTF-8 at line 2");
    assert_eq!((e.span.start_line, e.column), (2, Some(5)));
}

// ---- continuations and comments ----

#[test]
fn continuation_at_end_of_file() {
    let df = ok("FROM a\nRUN b \\");
    assert_eq!(lines(&df), ["(from \"a\")", "(run \"b\")"]);
    assert_eq!(spans(&df), [(1, 1), (2, 2)]);
    let df = ok("FROM a\nRUN b \\\n");
    assert_eq!(spans(&df), [(1, 1), (2, 2)]);
}

#[test]
fn comments_and_blank_lines_inside_a_continuation() {
    let df = ok("FROM a\nRUN a \\\n# c\n\n  \n  b\nRUN c\n");
    assert_eq!(
        lines(&df),
        ["(from \"a\")", "(run \"a   b\")", "(run \"c\")"]
    );
    assert_eq!(spans(&df), [(1, 1), (2, 6), (7, 7)]);
    assert_eq!(df.warnings.len(), 1);
    let w = &df.warnings[0];
    assert_eq!(w.rule, Some("NoEmptyContinuation"));
    assert_eq!(w.message, "Empty continuation line found in: RUN a   b");
    assert_eq!((w.span.start_line, w.span.end_line), (6, 6));

    // A comment alone does not warn.
    let df = ok("FROM a\nRUN a \\\n  # c\n  b\n");
    assert!(df.warnings.is_empty());
    assert_eq!(lines(&df)[1], "(run \"a   b\")");
}

#[test]
fn prev_comments_as_buildkit_keeps_them() {
    let df = ok("# a\n# b\n\nFROM x\n# c\n#\n# d\nRUN y\nRUN z\n  # indented\nRUN w\n");
    assert_eq!(node(&df, 0).prev_comment, ["a", "b"]);
    assert_eq!(node(&df, 1).prev_comment, ["d"], "an empty comment resets");
    assert!(node(&df, 2).prev_comment.is_empty());
    // BuildKit drops the first byte, not the `#`.
    assert_eq!(node(&df, 3).prev_comment, ["# indented"]);
}

#[test]
fn backslash_only_lines_make_an_empty_instruction() {
    assert_eq!(dump(&ok("\\\n")), "(\"\")\n");
    let df = ok("FROM a\n  \\\n\n");
    assert_eq!(node(&df, 1).keyword, "");
    assert_eq!(node(&df, 1).args, [""]);
}

// ---- heredocs ----

#[test]
fn heredoc_plain() {
    let df = ok("FROM a\nRUN <<EOF\necho $x\n  # not a comment\nEOF\nRUN b\n");
    let n = node(&df, 1);
    assert_eq!(n.args, ["<<EOF"]);
    assert_eq!(n.original, "RUN <<EOF");
    assert_eq!(n.heredocs.len(), 1);
    let h = &n.heredocs[0];
    assert_eq!((h.name.as_str(), h.expand, h.chomp), ("EOF", true, false));
    assert_eq!(h.content, "echo $x\n  # not a comment\n");
    assert_eq!(spans(&df), [(1, 1), (2, 5), (6, 6)]);
}

#[test]
fn heredoc_chomp_strips_tabs() {
    let df = ok("FROM a\nRUN <<-EOF\n\techo hi\n\t\tthere\n\tEOF\n");
    let h = &node(&df, 1).heredocs[0];
    assert!(h.chomp && h.expand);
    assert_eq!(h.content, "echo hi\nthere\n");
    assert_eq!(spans(&df), [(1, 1), (2, 5)]);
}

#[test]
fn heredoc_quoted_delimiter_does_not_expand() {
    for (src, name) in [
        ("RUN <<'EOF'\n$x\nEOF\n", "EOF"),
        ("RUN <<\"EOF\"\n$x\nEOF\n", "EOF"),
        ("RUN <<e'o'f\n$x\neof\n", "eof"),
    ] {
        let df = ok(src);
        let h = &node(&df, 0).heredocs[0];
        assert_eq!(h.name, name, "{src}");
        assert!(!h.expand, "{src}");
        assert_eq!(h.content, "$x\n");
    }
    let df = ok("RUN <<  EOF\nx\nEOF\n");
    assert_eq!(node(&df, 0).heredocs[0].name, "EOF");
}

#[test]
fn two_heredocs_in_one_run() {
    let df = ok("RUN <<A <<B\na\nB\nA\nb\nA\nB\nRUN c\n");
    let h = &node(&df, 0).heredocs;
    let got: Vec<(&str, &str)> = h
        .iter()
        .map(|h| (h.name.as_str(), h.content.as_str()))
        .collect();
    assert_eq!(got, [("A", "a\nB\n"), ("B", "b\nA\n")]);
    assert_eq!(spans(&df), [(1, 7), (8, 8)]);
}

#[test]
fn heredoc_as_copy_source_and_under_onbuild() {
    let df = ok("FROM a\nCOPY --chmod=644 <<EOF /dst\nhello\nEOF\n");
    let n = node(&df, 1);
    assert_eq!(n.flags, ["--chmod=644"]);
    assert_eq!(n.args, ["<<EOF", "/dst"]);
    assert_eq!(n.heredocs[0].content, "hello\n");
    assert_eq!(lines(&df)[1], "(copy [\"--chmod=644\"] \"<<EOF\" \"/dst\")");

    let df = ok("ONBUILD RUN <<EOF\nx\nEOF\n");
    assert_eq!(node(&df, 0).heredocs.len(), 1);
    assert_eq!(spans(&df), [(1, 3)]);
    assert_eq!(node(&df, 0).onbuild.as_ref().unwrap().span.end_line, 3);
}

#[test]
fn not_heredocs() {
    // Exec form, quoted markers and other instructions have none.
    for src in [
        "RUN [\"<<EOF\"]\n",
        "RUN '<<EOF'\n",
        "RUN \"<<EOF\"\n",
        "RUN a <<\n",
        "RUN <<- EOF\n",
    ] {
        let df = ok(src);
        assert!(node(&df, 0).heredocs.is_empty(), "{src}");
    }
    let df = ok("USER <<EOF\nEOF\n");
    assert!(node(&df, 0).heredocs.is_empty());
    assert_eq!(lines(&df), ["(user \"<<EOF\")", "(eof \"\")"]);
}

#[test]
fn unterminated_heredoc_names_the_instruction_line() {
    let e = err("FROM a\nRUN <<EOF\nhello\n");
    assert_eq!(e.message, "unterminated heredoc");
    assert_eq!((e.span.start_line, e.span.end_line), (2, 3));
    let e = err("RUN <<A <<B\nA\nb\n");
    assert_eq!((e.span.start_line, e.span.end_line), (1, 3));
}

// ---- argument forms ----

#[test]
fn json_and_shell_forms() {
    let df = ok(concat!(
        "CMD [\"a\", \"b\"]\n",
        "CMD ['a']\n",
        "ENTRYPOINT [\"a\"] x\n",
        "COPY [\"a b\", \"c\"]\n",
        "COPY a \t b\n",
        "VOLUME [1e400]\n",
        "SHELL [\"\\u00e9\\ud800\"]\n",
        "RUN [ ]\n",
    ));
    let forms: Vec<(bool, Vec<String>)> =
        df.nodes.iter().map(|n| (n.json, n.args.clone())).collect();
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert_eq!(forms[0], (true, s(&["a", "b"])));
    assert_eq!(forms[1], (false, s(&["['a']"])));
    assert_eq!(forms[2], (false, s(&["[\"a\"] x"])));
    assert_eq!(forms[3], (true, s(&["a b", "c"])));
    assert_eq!(forms[4], (false, s(&["a", "b"])));
    assert_eq!(forms[5], (false, s(&["[1e400]"])));
    assert_eq!(forms[6], (true, s(&["é\u{fffd}"])));
    assert_eq!(forms[7], (true, s(&[])));
    assert_eq!(lines(&df)[7], "(run)");
}

#[test]
fn json_with_non_strings_is_an_error() {
    for src in [
        "CMD [1]",
        "RUN [\"a\", null]",
        "COPY [\"a\", {}]",
        "HEALTHCHECK CMD [true]",
    ] {
        let e = err(src);
        assert_eq!(
            e.message, "when using JSON array syntax, arrays must be comprised of strings only",
            "{src}"
        );
    }
    // Nesting beyond Go's limit falls back to the shell form (and never recurses).
    let deep = format!("CMD {}", "[".repeat(20_000));
    let df = parse(deep.as_bytes()).expect("deep JSON parses as shell form");
    assert!(!df.nodes[0].json);
    assert_eq!(df.nodes[0].args.len(), 1);
}

#[test]
fn env_label_arg_forms() {
    let df = ok("ENV a b c\nENV a=b c=\"d e\"\nLABEL x=1\nARG a b=c\nENV\n");
    assert_eq!(
        lines(&df),
        [
            "(env \"a\" \"b c\" \"\")",
            "(env \"a\" \"b\" \"=\" \"c\" \"\\\"d e\\\"\" \"=\")",
            "(label \"x\" \"1\" \"=\")",
            "(arg \"a\" \"b=c\")",
            "(env)",
        ]
    );
    let e = err("ENV a=b c\n");
    assert_eq!(
        e.message,
        "Syntax error - can't find = in \"c\". Must be of the form: name=value"
    );
    assert_eq!(
        err("FROM a\nLABEL a\n").message,
        "LABEL must have two arguments"
    );
}

#[test]
fn healthcheck_forms() {
    let df = ok("HEALTHCHECK NONE\nHEALTHCHECK --interval=5s CMD [\"a\"]\nHEALTHCHECK\n");
    assert_eq!(
        lines(&df),
        [
            "(healthcheck \"NONE\")",
            "(healthcheck [\"--interval=5s\"] \"CMD\" \"a\")",
            "(healthcheck)"
        ]
    );
    assert!(node(&df, 1).json);
}

#[test]
fn onbuild_nesting() {
    let df = ok("ONBUILD RUN --mount=type=cache,target=/x echo hi\nONBUILD\nonbuild copy a b\n");
    assert_eq!(
        lines(&df),
        [
            "(onbuild (run [\"--mount=type=cache,target=/x\"] \"echo hi\"))",
            "(onbuild)",
            "(onbuild (copy \"a\" \"b\"))",
        ]
    );
    let child = node(&df, 0).onbuild.as_ref().unwrap();
    assert_eq!(child.original, "RUN --mount=type=cache,target=/x echo hi");
    assert!(node(&df, 0).args.is_empty());
    let e = err(&"ONBUILD ".repeat(1000));
    assert!(e.message.contains("ONBUILD"), "{}", e.message);
}

#[test]
fn flags_and_double_dash() {
    let df = ok(concat!(
        "COPY --from=a -- --b c\n",
        "RUN --mount=type=secret,id=x --network=none echo\n",
        "COPY --chown=\"a b\" x y\n",
        "COPY --x='it''s' -- y z\n",
        "CMD --flag -- [\"a\"]\n",
    ));
    assert_eq!(node(&df, 0).flags, ["--from=a"]);
    assert_eq!(node(&df, 0).args, ["--b", "c"]);
    assert_eq!(
        node(&df, 1).flags,
        ["--mount=type=secret,id=x", "--network=none"]
    );
    assert_eq!(node(&df, 2).flags, ["--chown=a b"]);
    assert_eq!(node(&df, 3).flags, ["--x=its"]);
    assert_eq!(node(&df, 4).flags, ["--flag"]);
    assert!(node(&df, 4).json);
    assert_eq!(lines(&df)[2], "(copy [\"--chown=a b\"] \"x\" \"y\")");
}

#[test]
fn keywords_any_case_and_unknown() {
    let df = ok("from a\nRun b\nCoPy c d\nFOO bar\n");
    let kw: Vec<(&str, &str)> = df
        .nodes
        .iter()
        .map(|n| (n.keyword.as_str(), n.keyword_raw.as_str()))
        .collect();
    assert_eq!(
        kw,
        [
            ("from", "from"),
            ("run", "Run"),
            ("copy", "CoPy"),
            ("foo", "FOO")
        ]
    );
    assert_eq!(
        lines(&df),
        [
            "(from \"a\")",
            "(run \"b\")",
            "(copy \"c\" \"d\")",
            "(foo \"\")"
        ]
    );
}

#[test]
fn line_spans_and_original() {
    let src = "# c\n\nFROM a AS b\n\nRUN x \\\n    y \\\n\n    z\nEXPOSE 80 443\n";
    let df = ok(src);
    assert_eq!(spans(&df), [(3, 3), (5, 8), (9, 9)]);
    assert_eq!(node(&df, 1).original, "RUN x     y     z");
    assert_eq!(node(&df, 0).args, ["a", "AS", "b"]);
}

// ---- file-level errors ----

#[test]
fn file_level_errors() {
    let e = err("");
    assert_eq!(
        (e.message.as_str(), e.span.start_line),
        ("file with no instructions", 1)
    );
    let e = err("# a\n\n# b\n");
    assert_eq!(
        (e.message.as_str(), e.span.start_line),
        ("file with no instructions", 3)
    );
    let long = format!("FROM a\nLABEL x={}\n", "a".repeat(65_536));
    let e = err(&long);
    assert_eq!(
        e.message,
        "dockerfile line greater than max allowed size of 65535"
    );
    assert_eq!(e.span.start_line, 2);
    let fits = format!("FROM a\nLABEL x={}\n", "a".repeat(65_535 - 8));
    assert_eq!(ok(&fits).nodes.len(), 2);
}

// ---- Go quoting ----

#[test]
fn go_quote_like_strconv_quote() {
    assert_eq!(go_quote("a\"b\\c\n\t"), r#""a\"b\\c\n\t""#);
    assert_eq!(go_quote("\0\x7f\x1b"), r#""\x00\x7f\x1b""#);
    assert_eq!(go_quote("♥ é\u{a0}\u{2028}"), "\"♥ é\\u00a0\\u2028\"");
    assert_eq!(go_quote("\u{f0000}"), r#""\U000f0000""#);
    assert_eq!(go_quote_bytes(b"\xc3\x28"), r#""\xc3(""#);
}

// ---- no panics ----

fn token() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "RUN",
        "run",
        "FROM",
        "COPY",
        "ADD",
        "ENV",
        "LABEL",
        "ARG",
        "ONBUILD",
        "HEALTHCHECK",
        "CMD",
        "USER",
        "EXPOSE",
        "VOLUME",
        "SHELL",
        "FOO",
        " ",
        "  ",
        "\t",
        "\n",
        "\r\n",
        "\\\n",
        "\\",
        "`",
        "<<",
        "<<EOF",
        "<<-EOF",
        "<<'EOF'",
        "EOF",
        "\tEOF",
        "[",
        "]",
        "\"",
        "'",
        ",",
        "#",
        "# escape=`",
        "# syntax=x",
        "--x=",
        "--",
        "=",
        "a",
        "b=c",
        "${",
        "}",
        "$",
        "é",
        "\u{a0}",
        "\u{85}",
        "\u{feff}",
        "{",
        "1e999",
        "null",
    ])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(df) = parse(&bytes) {
            let _ = dump(&df);
        }
    }

    #[test]
    fn arbitrary_text_never_panics(src in "(?s).{0,300}") {
        if let Ok(df) = parse(src.as_bytes()) {
            let _ = dump(&df);
        }
    }

    #[test]
    fn dockerfile_alphabet_never_panics(src in "[ \t\r\n\\`#<>='\"\\[\\]{}$,:a-zA-Z0-9-]{0,400}") {
        if let Ok(df) = parse(src.as_bytes()) {
            prop_assert_eq!(dump(&df).lines().count(), df.nodes.len());
        }
    }

    #[test]
    fn dockerfile_like_text_never_panics(tokens in prop::collection::vec(token(), 0..60)) {
        let src: String = tokens.concat();
        match parse(src.as_bytes()) {
            Ok(df) => {
                let out = dump(&df);
                prop_assert_eq!(out.lines().count(), df.nodes.len());
                for n in &df.nodes {
                    prop_assert!(n.span.start_line >= 1 && n.span.start_line <= n.span.end_line);
                }
            }
            Err(e) => prop_assert!(e.span.start_line >= 1),
        }
    }
}
