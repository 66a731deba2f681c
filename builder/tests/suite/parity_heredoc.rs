//! Our own versions of the cases in BuildKit's frontend/dockerfile/dockerfile_heredoc_test.go
//! (status of each in testdata/parity/CHECKLIST.md).

use crate::parity_kit::{assert_files, can_run, Kit};

/// testCopyHeredoc, testCopyHeredocSpecialSymbols: COPY from heredocs (one file, two into a
/// directory named by their delimiters, --chmod, --chown), backslashes and `$` in expanded
/// and quoted heredocs.
#[test]
fn copy_heredocs() {
    if !can_run("parity_heredoc") {
        return;
    }
    let kit = Kit::new();
    let ctx = kit.context(
        "copy",
        "FROM busybox AS build\n\
         RUN echo 'user:x:1000:1000::/home/user:/bin/sh' >> /etc/passwd && echo 'user:x:1000:' >> /etc/group\n\
         WORKDIR /dest\n\
         COPY <<EOF single\nsingle file\nEOF\n\
         COPY <<EOF <<EOF2 double/\nfirst file\nEOF\nsecond file\nEOF2\n\
         RUN mkdir -p /permfiles\n\
         COPY --chmod=777 <<EOF /permfiles/all\ndummy content\nEOF\n\
         COPY --chmod=0644 <<EOF /permfiles/rw\ndummy content\nEOF\n\
         COPY --chown=user:user <<EOF /permfiles/owned\ndummy content\nEOF\n\
         RUN stat -c \"%04a\" /permfiles/all >> perms && stat -c \"%04a\" /permfiles/rw >> perms && \
             stat -c \"%U:%G\" /permfiles/owned >> perms\n\
         FROM scratch\nCOPY --from=build /dest /\n",
        &[],
    );
    assert_files(
        &kit.local(&ctx, &[]),
        &[
            ("single", "single file\n"),
            ("double/EOF", "first file\n"),
            ("double/EOF2", "second file\n"),
            ("perms", "0777\n0644\nuser:user\n"),
        ],
    );

    let ctx = kit.context(
        "symbols",
        "FROM scratch\n\
         COPY <<EOF quotefile\n\"quotes in file\"\nEOF\n\
         COPY <<EOF slashfile1\n\\\nEOF\n\
         COPY <<EOF slashfile2\n\\\\\nEOF\n\
         COPY <<EOF slashfile3\n\\$\nEOF\n\
         COPY <<\"EOF\" rawslashfile1\n\\\nEOF\n\
         COPY <<\"EOF\" rawslashfile2\n\\\\\nEOF\n\
         COPY <<\"EOF\" rawslashfile3\n\\$\nEOF\n",
        &[],
    );
    assert_files(
        &kit.local(&ctx, &[]),
        &[
            ("quotefile", "\"quotes in file\"\n"),
            ("slashfile1", "\n"),
            ("slashfile2", "\\\n"),
            ("slashfile3", "$\n"),
            ("rawslashfile1", "\\\n"),
            ("rawslashfile2", "\\\\\n"),
            ("rawslashfile3", "\\$\n"),
        ],
    );
}

/// testRunBasicHeredoc, testRunFakeHeredoc, testRunShebangHeredoc, testRunComplexHeredoc:
/// RUN heredocs through the default shell, through a SHELL that is not a shell (awk), with a
/// shebang (`<<-` strips its tabs), piped, and on other file descriptors.
#[test]
fn run_heredocs() {
    if !can_run("parity_heredoc") {
        return;
    }
    let kit = Kit::new();
    let ctx = kit.context(
        "basic",
        "FROM busybox AS build\nRUN <<EOF\necho \"i am\" >> /dest\nwhoami >> /dest\nEOF\n\
         FROM scratch\nCOPY --from=build /dest /dest\n",
        &[],
    );
    assert_files(&kit.local(&ctx, &[]), &[("dest", "i am\nroot\n")]);

    let ctx = kit.context(
        "fake",
        "FROM busybox AS build\nSHELL [\"/bin/awk\"]\nRUN <<EOF\nBEGIN {\n\tprint \"foo\" > \"/dest\"\n}\nEOF\n\
         FROM scratch\nCOPY --from=build /dest /dest\n",
        &[],
    );
    assert_files(&kit.local(&ctx, &[]), &[("dest", "foo\n")]);

    let ctx = kit.context(
        "shebang",
        "FROM busybox AS build\nWORKDIR /dest\n\
         RUN <<EOF\n#!/bin/awk -f\nBEGIN {\n\tprint \"hello\" >> \"./out1\"\n\tprint \"world\" >> \"./out1\"\n}\nEOF\n\
         RUN <<-EOF\n\t#!/bin/awk -f\n\tBEGIN {\n\t\tprint \"hello\" >> \"./out2\"\n\t\tprint \"world\" >> \"./out2\"\n\t}\nEOF\n\
         FROM scratch\nCOPY --from=build /dest /\n",
        &[],
    );
    assert_files(
        &kit.local(&ctx, &[]),
        &[("out1", "hello\nworld\n"), ("out2", "hello\nworld\n")],
    );

    let ctx = kit.context(
        "complex",
        "FROM busybox AS build\nWORKDIR /dest\n\
         RUN cat <<EOF1 | tr '[:upper:]' '[:lower:]' > ./out1; \\\n\
         \tcat <<EOF2 | tr '[:lower:]' '[:upper:]' > ./out2\n\
         hello WORLD\nEOF1\nHELLO world\nEOF2\n\
         RUN <<EOF 3<<IN1 4<<IN2 awk -f -\nBEGIN {\n\
         \twhile ((getline line < \"/proc/self/fd/3\") > 0)\n\t\tprint tolower(line) > \"./fd3\"\n\
         \twhile ((getline line < \"/proc/self/fd/4\") > 0)\n\t\tprint toupper(line) > \"./fd4\"\n\
         }\nEOF\nhello WORLD\nIN1\nHELLO world\nIN2\n\
         FROM scratch\nCOPY --from=build /dest /\n",
        &[],
    );
    assert_files(
        &kit.local(&ctx, &[]),
        &[
            ("out1", "hello world\n"),
            ("out2", "HELLO WORLD\n"),
            ("fd3", "hello world\n"),
            ("fd4", "HELLO WORLD\n"),
        ],
    );
}

/// testHeredocIndent, testHeredocVarSubstitution: `<<EOF` keeps tabs and `<<-EOF` strips them
/// (COPY, RUN, shebang RUN, heredoc as a command's stdin); build ARGs expand in unquoted
/// heredocs only, and a RUN heredoc's own shell variables win.
#[test]
fn heredoc_indent_and_expansion() {
    if !can_run("parity_heredoc") {
        return;
    }
    let kit = Kit::new();
    let ctx = kit.context(
        "indent",
        "FROM busybox AS build\n\
         COPY <<EOF /dest/foo-copy\n\tfoo\nEOF\n\
         COPY <<-EOF /dest/bar-copy\n\tbar\nEOF\n\
         RUN <<EOF\necho \"\n\tfoo\" > /dest/foo-run\nEOF\n\
         RUN <<-EOF\necho \"\n\tbar\" > /dest/bar-run\nEOF\n\
         RUN <<EOF\n#!/bin/sh\necho \"\n\tfoo\" > /dest/foo2-run\nEOF\n\
         RUN <<-EOF\n#!/bin/sh\necho \"\n\tbar\" > /dest/bar2-run\nEOF\n\
         RUN <<EOF sh > /dest/foo3-run\necho \"\n\tfoo\"\nEOF\n\
         RUN <<-EOF sh > /dest/bar3-run\necho \"\n\tbar\"\nEOF\n\
         FROM scratch\nCOPY --from=build /dest /\n",
        &[],
    );
    assert_files(
        &kit.local(&ctx, &[]),
        &[
            ("foo-copy", "\tfoo\n"),
            ("foo-run", "\n\tfoo\n"),
            ("foo2-run", "\n\tfoo\n"),
            ("foo3-run", "\n\tfoo\n"),
            ("bar-copy", "bar\n"),
            ("bar-run", "\nbar\n"),
            ("bar2-run", "\nbar\n"),
            ("bar3-run", "\nbar\n"),
        ],
    );

    let mut df = String::from("FROM busybox as build\nARG name=world\n");
    for (file, quote, body) in [
        ("c1", "EOF", "Hello ${name}!"),
        ("c2", "'EOF'", "Hello ${name}!"),
        ("c3", "\"EOF\"", "Hello ${name}!"),
        ("q1", "EOF", "Hello '${name}'!"),
        ("q2", "EOF", "Hello \"${name}\"!"),
        ("qsingle1", "'EOF'", "Hello '${name}'!"),
        ("qsingle2", "'EOF'", "Hello \"${name}\"!"),
        ("qdouble1", "\"EOF\"", "Hello '${name}'!"),
        ("qdouble2", "\"EOF\"", "Hello \"${name}\"!"),
    ] {
        df.push_str(&format!("COPY <<{quote} /dest/{file}\n{body}\nEOF\n"));
    }
    df.push_str(
        "RUN <<EOF\ngreeting=\"Hello\"\necho \"${greeting} ${name}!\" > /dest/r1\nEOF\n\
         RUN <<EOF\nname=\"new world\"\necho \"Hello ${name}!\" > /dest/r2\nEOF\n\
         FROM scratch\nCOPY --from=build /dest /\n",
    );
    let ctx = kit.context("vars", &df, &[]);
    assert_files(
        &kit.local(&ctx, &[]),
        &[
            ("c1", "Hello world!\n"),
            ("c2", "Hello ${name}!\n"),
            ("c3", "Hello ${name}!\n"),
            ("q1", "Hello 'world'!\n"),
            ("q2", "Hello \"world\"!\n"),
            ("qsingle1", "Hello '${name}'!\n"),
            ("qsingle2", "Hello \"${name}\"!\n"),
            ("qdouble1", "Hello '${name}'!\n"),
            ("qdouble2", "Hello \"${name}\"!\n"),
            ("r1", "Hello world!\n"),
            ("r2", "Hello new world!\n"),
        ],
    );
}
