//! Our own versions of the cases in BuildKit's frontend/dockerfile/dockerfile_copy_test.go
//! (status of each in testdata/parity/CHECKLIST.md). Each test names the BuildKit functions it
//! stands for; the parse-time errors of that file are in the frontend's parity tests.

use crate::parity_kit::{assert_files, can_run, read, Kit};
use std::os::unix::fs::PermissionsExt;

/// testEmptyDestDir, testPreserveDestDirSlash, testCopyLinkDotDestDir,
/// testCopyLinkEmptyDestDir, testCopyRelative: destinations that are empty (an ENV that
/// expands to nothing means the working directory), `dir/`, `.`, relative to a WORKDIR made of
/// relative parts, and `../`.
#[test]
fn destinations_relative_empty_and_slashed() {
    if !can_run("parity_copy") {
        return;
    }
    let kit = Kit::new();
    let ctx = kit.context(
        "ctx",
        r#"FROM busybox
ENV empty=""
COPY testfile $empty
RUN [ "$(cat testfile)" == "contents0" ]
COPY testfile /sample/
RUN [ "$(cat /sample/testfile)" == "contents0" ]
WORKDIR /var/www
COPY --link testfile .
RUN [ "$(cat testfile)" == "contents0" ]
WORKDIR /var/www2
COPY --link testfile $empty
RUN [ "$(cat testfile)" == "contents0" ]
WORKDIR /test1
WORKDIR test2
RUN sh -c "[ "$PWD" = '/test1/test2' ]"
COPY foo ./
RUN sh -c "[ $(cat /test1/test2/foo) = 'hello' ]"
ADD foo ./bar/baz
RUN sh -c "[ $(cat /test1/test2/bar/baz) = 'hello' ]"
COPY foo ./bar/baz2
RUN sh -c "[ $(cat /test1/test2/bar/baz2) = 'hello' ]"
WORKDIR ..
COPY foo ./
RUN sh -c "[ $(cat /test1/foo) = 'hello' ]"
COPY foo /test3/
RUN sh -c "[ $(cat /test3/foo) = 'hello' ]"
WORKDIR /test4
COPY . .
RUN sh -c "[ $(cat /test4/foo) = 'hello' ]"
WORKDIR /test5/test6
COPY foo ../
RUN sh -c "[ $(cat /test5/foo) = 'hello' ]"
"#,
        &[("testfile", "contents0"), ("foo", "hello")],
    );
    let out = kit.local(&ctx, &[]);
    // The RUNs asserted inside; the tree says the same from outside.
    assert_files(
        &out,
        &[
            ("testfile", "contents0"),
            ("sample/testfile", "contents0"),
            ("var/www/testfile", "contents0"),
            ("var/www2/testfile", "contents0"),
            ("test1/test2/bar/baz", "hello"),
            ("test5/foo", "hello"),
        ],
    );
}

/// testCopyChownExistingDir: owners kept by a COPY --from (files, a directory made by the
/// copy, the contents of a directory copied into an existing one whose owners stay), and
/// with --chown everything copied gets the owner but existing directories keep theirs.
#[test]
fn chown_into_existing_directories() {
    if !can_run("parity_copy") {
        return;
    }
    let kit = Kit::new();
    let check = |e: &str, p: &str| {
        format!(
            " && e=\"{e}\"; p=\"{p}\"; a=`stat -c \"%u:%g\" \"$p\"`; \
             if [ \"$a\" != \"$e\" ]; then echo \"incorrect ownership on $p. expected $e, got $a\"; exit 1; fi \\\n"
        )
    };
    let mut df = String::from(
        "FROM busybox AS source\n\
         RUN touch /file && chown 100:200 /file \\\n\
          && mkdir -p /dir/subdir && touch /dir/subdir/nestedfile \\\n\
          && chown 100:200 /dir && chown 101:201 /dir/subdir && chown 102:202 /dir/subdir/nestedfile\n\
         FROM busybox AS test_base\n\
         RUN mkdir -p /existingdir/existingsubdir && touch /existingdir/existingfile \\\n\
          && chown 500:600 /existingdir && chown 501:601 /existingdir/existingsubdir \\\n\
          && chown 501:601 /existingdir/existingfile\n\
         FROM test_base AS copy_from\n\
         COPY --from=source /file .\n\
         COPY --from=source /dir /dir\n\
         COPY --from=source /dir/. /existingdir\n\
         RUN true \\\n",
    );
    for (e, p) in [
        ("100:200", "/file"),
        ("0:0", "/dir"),
        ("101:201", "/dir/subdir"),
        ("102:202", "/dir/subdir/nestedfile"),
        ("500:600", "/existingdir"),
        ("501:601", "/existingdir/existingsubdir"),
        ("501:601", "/existingdir/existingfile"),
        ("101:201", "/existingdir/subdir"),
        ("102:202", "/existingdir/subdir/nestedfile"),
    ] {
        df.push_str(&check(e, p));
    }
    df.push_str(
        " && true\n\
         FROM test_base AS copy_from_chowned\n\
         COPY --from=source --chown=300:400 /file .\n\
         COPY --from=source --chown=300:400 /dir /dir\n\
         COPY --from=source --chown=300:400 /dir/. /existingdir\n\
         RUN true \\\n",
    );
    for (e, p) in [
        ("300:400", "/file"),
        ("300:400", "/dir"),
        ("300:400", "/dir/subdir"),
        ("300:400", "/dir/subdir/nestedfile"),
        ("500:600", "/existingdir"),
        ("501:601", "/existingdir/existingsubdir"),
        ("501:601", "/existingdir/existingfile"),
        ("300:400", "/existingdir/subdir"),
        ("300:400", "/existingdir/subdir/nestedfile"),
    ] {
        df.push_str(&check(e, p));
    }
    df.push_str(" && true\n");
    // BuildKit's Dockerfile is Dockerfile.web behind a symlink named Dockerfile.
    let ctx = kit.context("ctx", "", &[("Dockerfile.web", &df)]);
    std::os::unix::fs::symlink("Dockerfile.web", ctx.join("Dockerfile")).unwrap();
    kit.ok(&ctx, &[]);
    kit.ok(&ctx, &["--target", "copy_from"]);
}

/// testCopyWildcardCache: a wildcard COPY is cached on the files it matches: changing a file
/// copied later keeps the RUN before it cached, changing a matched one runs it again.
#[test]
fn wildcard_copy_is_cached_on_what_it_matches() {
    if !can_run("parity_copy") {
        return;
    }
    let kit = Kit::new();
    let ctx = kit.context(
        "ctx",
        "FROM busybox AS base\n\
         COPY foo* files/\n\
         RUN cat /dev/urandom | head -c 100 | sha256sum > unique\n\
         COPY bar files/\n\
         FROM scratch\n\
         COPY --from=base unique /\n",
        &[
            ("foo1", "foo1-data"),
            ("foo2", "foo2-data"),
            ("bar", "bar-data"),
        ],
    );
    let first = read(&kit.local(&ctx, &[]), "unique");
    std::fs::write(ctx.join("bar"), "bar-data-mod").unwrap();
    assert_eq!(read(&kit.local(&ctx, &[]), "unique"), first);
    std::fs::write(ctx.join("foo2"), "foo2-data-mod").unwrap();
    assert_ne!(read(&kit.local(&ctx, &[]), "unique"), first);
}

/// testEmptyWildcard, testCopyThroughSymlinkContext, testCopyThroughSymlinkMultiStage,
/// testCopySocket, testCopyFollowAllSymlinks, testCopySymlinks, testCopyOverrideFiles,
/// testCopyVarSubstitution, testCopyUnicodePath: what ends in the tree of a scratch image.
#[test]
fn sources_wildcards_symlinks_and_odd_files() {
    if !can_run("parity_copy") {
        return;
    }
    let kit = Kit::new();

    // testEmptyWildcard: a wildcard that matches nothing beside a source that exists.
    let ctx = kit.context(
        "empty-wildcard",
        "FROM scratch\nCOPY foo nomatch* /\n",
        &[("foo", "contents0")],
    );
    assert_files(&kit.local(&ctx, &[]), &[("foo", "contents0")]);

    // testCopyThroughSymlinkContext: a source path through a symlinked context directory.
    let ctx = kit.context(
        "through-link",
        "FROM scratch\nCOPY link/foo .\n",
        &[("sub/foo", "contents")],
    );
    std::os::unix::fs::symlink("sub", ctx.join("link")).unwrap();
    assert_files(&kit.local(&ctx, &[]), &[("foo", "contents")]);

    // testCopyThroughSymlinkMultiStage: absolute and relative symlinks in a stage's tree.
    let ctx = kit.context(
        "through-link-stage",
        "FROM busybox AS build\n\
         RUN mkdir -p /out/sub && ln -s /out/sub /sub && ln -s out/sub /sub2 && echo -n \"data\" > /sub/foo\n\
         FROM scratch\n\
         COPY --from=build /sub/foo .\n\
         COPY --from=build /sub2/foo bar\n",
        &[],
    );
    assert_files(&kit.local(&ctx, &[]), &[("foo", "data"), ("bar", "data")]);

    // testCopySocket: a socket in the context becomes a regular file.
    let ctx = kit.context("socket", "FROM scratch\nCOPY . /\n", &[]);
    let _listener = std::os::unix::net::UnixListener::bind(ctx.join("socket.sock")).unwrap();
    std::fs::set_permissions(
        ctx.join("socket.sock"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let out = kit.local(&ctx, &[]);
    let md = std::fs::symlink_metadata(out.join("socket.sock"))
        .expect("the socket is copied (as a regular file)");
    assert!(md.file_type().is_file(), "{:?}", md.file_type());

    // testCopyFollowAllSymlinks (#1197): a directory holding a symlink out of it, then the
    // symlink itself as the source.
    let ctx = kit.context(
        "follow-all",
        "FROM scratch\nCOPY foo /\nCOPY foo/sub bar\n",
        &[("bar", "bar-contents")],
    );
    std::fs::create_dir(ctx.join("foo")).unwrap();
    std::os::unix::fs::symlink("../bar", ctx.join("foo/sub")).unwrap();
    let out = kit.local(&ctx, &[]);
    assert_eq!(read(&out, "bar"), "bar-contents");

    // testCopySymlinks: a symlink named as a source is followed; wildcard matches that are
    // symlinks (chains included) are followed too.
    let ctx = kit.context(
        "symlinks",
        "FROM scratch\nCOPY foo /\nCOPY sub/l* alllinks/\n",
        &[
            ("bar", "bar-contents"),
            ("sub/lfile", "lfile-contents"),
            ("sub/subfile", "subfile-contents"),
            ("sub/baz", "baz-contents"),
        ],
    );
    std::os::unix::fs::symlink("bar", ctx.join("foo")).unwrap();
    std::os::unix::fs::symlink("subfile", ctx.join("sub/l0")).unwrap();
    std::os::unix::fs::symlink("second", ctx.join("sub/l1")).unwrap();
    std::os::unix::fs::symlink("baz", ctx.join("sub/second")).unwrap();
    let out = kit.local(&ctx, &[]);
    assert_files(
        &out,
        &[
            ("foo", "bar-contents"),
            ("alllinks/l0", "subfile-contents"),
            ("alllinks/lfile", "lfile-contents"),
            ("alllinks/l1", "baz-contents"),
        ],
    );

    // testCopyOverrideFiles: copying the same files twice.
    let ctx = kit.context(
        "override",
        "FROM scratch AS base\n\
         COPY sub sub\nCOPY sub sub\n\
         COPY files/foo.go dest/foo.go\nCOPY files/foo.go dest/foo.go\n\
         COPY files dest\n",
        &[
            ("sub/dir1/dir2/foo", "foo-contents"),
            ("files/foo.go", "foo.go-contents"),
        ],
    );
    assert_files(
        &kit.local(&ctx, &[]),
        &[
            ("sub/dir1/dir2/foo", "foo-contents"),
            ("dest/foo.go", "foo.go-contents"),
        ],
    );

    // testCopyVarSubstitution.
    let ctx = kit.context(
        "var",
        "FROM scratch AS base\nENV FOO bar\nCOPY $FOO baz\n",
        &[("bar", "bar-contents")],
    );
    assert_files(&kit.local(&ctx, &[]), &[("baz", "bar-contents")]);

    // testCopyUnicodePath: names are not URL-decoded or otherwise rewritten.
    let ctx = kit.context(
        "unicode",
        "FROM busybox\nCOPY test-äöü.txt /\nCOPY test-%C3%A4%C3%B6%C3%BC.txt /\nCOPY test+aou.txt /\n",
        &[
            ("test-äöü.txt", "foo"),
            ("test-%C3%A4%C3%B6%C3%BC.txt", "bar"),
            ("test+aou.txt", "baz"),
        ],
    );
    assert_files(
        &kit.local(&ctx, &[]),
        &[
            ("test-äöü.txt", "foo"),
            ("test-%C3%A4%C3%B6%C3%BC.txt", "bar"),
            ("test+aou.txt", "baz"),
        ],
    );
}

/// testCopyWildcards: wildcards in file and directory parts, a file destination for a
/// wildcard matching one file, `dir/`, `dir/.` and `dir` copying the directory's contents.
#[test]
fn wildcards_and_directory_sources() {
    if !can_run("parity_copy") {
        return;
    }
    let kit = Kit::new();
    let ctx = kit.context(
        "ctx",
        "FROM scratch AS base\n\
         COPY *.go /gofiles/\n\
         COPY f*.go foo2.go\n\
         COPY sub/* /subdest/\n\
         COPY sub/*/dir2/foo /subdest2/\n\
         COPY sub/*/dir2/foo /subdest3/bar\n\
         COPY . all/\n\
         COPY sub/dir1/ subdest4\n\
         COPY sub/dir1/. subdest5\n\
         COPY sub/dir1 subdest6\n",
        &[
            ("foo.go", "foo-contents"),
            ("bar.go", "bar-contents"),
            ("sub/dir1/dir2/foo", "foo-contents"),
        ],
    );
    assert_files(
        &kit.local(&ctx, &[]),
        &[
            ("gofiles/foo.go", "foo-contents"),
            ("gofiles/bar.go", "bar-contents"),
            ("foo2.go", "foo-contents"),
            ("subdest/dir2/foo", "foo-contents"),
            ("subdest2/foo", "foo-contents"),
            ("subdest3/bar", "foo-contents"),
            ("all/foo.go", "foo-contents"),
            ("subdest4/dir2/foo", "foo-contents"),
            ("subdest5/dir2/foo", "foo-contents"),
            ("subdest6/dir2/foo", "foo-contents"),
        ],
    );
}

/// testCopyChownCreateDest, testCopyChown: --chown by user and group names (from the image's
/// /etc/passwd and /etc/group, users added by a RUN included), by numbers, mixed, and from
/// ENV and ARG values. (Debian's busybox-static has no adduser: the RUNs write what
/// `adduser -D` writes.)
#[test]
fn chown_by_name_number_and_variable() {
    if !can_run("parity_copy") {
        return;
    }
    let kit = Kit::new();
    let ctx = kit.context(
        "create-dest",
        r#"FROM busybox
ARG group
ENV owner user01
RUN echo 'user:x:1000:1000::/home/user:/bin/sh' >> /etc/passwd && echo 'user:x:1000:' >> /etc/group
RUN echo 'user01:x:1001:1001::/home/user01:/bin/sh' >> /etc/passwd && echo 'user01:x:1001:' >> /etc/group
COPY --chown=user:user . /dest
COPY --chown=${owner}:${group} . /dest01
RUN [ "$(stat -c "%U %G" /dest)" == "user user" ]
RUN [ "$(stat -c "%U %G" /dest01)" == "user01 user" ]
"#,
        &[],
    );
    kit.ok(&ctx, &["--build-arg", "group=user"]);

    let ctx = kit.context(
        "chown",
        r#"FROM busybox AS base
ENV owner 1000
RUN mkdir -m 0777 /out
COPY --chown=daemon foo /
COPY --chown=1000:nobody bar /baz
ARG group
COPY --chown=${owner}:${group} foo /foobis
RUN stat -c "%U %G" /foo  > /out/fooowner
RUN stat -c "%u %G" /baz/sub  > /out/subowner
RUN stat -c "%u %G" /foobis  > /out/foobisowner
FROM scratch
COPY --from=base /out /
"#,
        &[("foo", "foo-contents"), ("bar/sub", "")],
    );
    assert_files(
        &kit.local(&ctx, &["--build-arg", "group=nobody"]),
        &[
            ("fooowner", "daemon daemon\n"),
            ("subowner", "1000 nobody\n"),
            ("foobisowner", "1000 nobody\n"),
        ],
    );
}

/// testCopyChmod, testChmodNonOctal: octal modes (0 included, from an ARG), the parents a
/// copy makes get an octal mode; symbolic modes give what chmod(1) gives the same file.
#[test]
fn chmod_octal_and_symbolic() {
    if !can_run("parity_copy") {
        return;
    }
    let kit = Kit::new();
    let ctx = kit.context(
        "octal",
        r#"FROM busybox AS base
RUN mkdir -m 0777 /out
COPY --chmod=0644 foo /
COPY --chmod=777 bar /baz
COPY --chmod=0 foo /foobis
COPY --chmod=777 foo /parent/foo
COPY --chmod=770 foo /parent/sub/foo
ARG mode
COPY --chmod=${mode} foo /footer
RUN stat -c "%04a" /foo  > /out/fooperm
RUN stat -c "%04a" /baz  > /out/barperm
RUN stat -c "%04a" /foobis  > /out/foobisperm
RUN stat -c "%04a" /parent  > /out/parentperm
RUN stat -c "%04a" /parent/sub  > /out/subparentperm
RUN stat -c "%04a" /footer  > /out/footerperm
FROM scratch
COPY --from=base /out /
"#,
        &[("foo", "foo-contents"), ("bar", "bar-contents")],
    );
    std::fs::set_permissions(ctx.join("foo"), std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::set_permissions(ctx.join("bar"), std::fs::Permissions::from_mode(0o700)).unwrap();
    assert_files(
        &kit.local(&ctx, &["--build-arg", "mode=755"]),
        &[
            ("fooperm", "0644\n"),
            ("barperm", "0777\n"),
            ("foobisperm", "0000\n"),
            ("parentperm", "0777\n"),
            ("subparentperm", "0770\n"),
            ("footerperm", "0755\n"),
        ],
    );

    // testChmodNonOctal: each symbolic --chmod against chmod(1) on a copy of the same input.
    let cases = [
        ("file", "f1", "go-w", false),
        ("file", "f2", "u=rw,g=r,o=r", false),
        ("file", "f3", "a+X", false),
        ("dir", "d1", "go-w", true),
        ("dir", "d2", "u+rw,g+r,o-x,o+w", true),
        ("dir", "d3", "a+X", true),
    ];
    let (mut expected, mut copies, mut verify) = (String::new(), String::new(), String::new());
    for (src, dst, mode, is_dir) in cases {
        if is_dir {
            expected.push_str(&format!(
                "RUN mkdir -p /input/dirs/{dst} && cp -a /input/{src} /input/dirs/{dst}/{dst}\n\
                 RUN cp -a /input/dirs/{dst}/. /expected/ && chmod {mode} /expected/{dst}\n"
            ));
            copies.push_str(&format!(
                "COPY --from=base --chmod={mode} /input/dirs/{dst} /\n"
            ));
        } else {
            expected.push_str(&format!(
                "RUN cp -a /input/{src} /expected/{dst} && chmod {mode} /expected/{dst}\n"
            ));
            copies.push_str(&format!(
                "COPY --from=base --chmod={mode} /input/{src} /{dst}\n"
            ));
        }
        verify.push_str(&format!(
            "RUN [ \"$(stat -c %A /actual/{dst})\" = \"$(stat -c %A /expected/{dst})\" ] \
             || {{ stat -c '%n %A' /actual/{dst} /expected/{dst}; exit 1; }}\n"
        ));
    }
    let df = format!(
        "FROM busybox AS base\n\
         RUN <<eot\n\
         \tset -ex\n\
         \tmkdir /input\n\
         \ttouch /input/file\n\
         \tchmod 666 /input/file\n\
         \tmkdir /input/dir\n\
         \tchmod 124 /input/dir\n\
         \tmkdir /expected\n\
         eot\n\
         {expected}\
         FROM scratch AS result\n\
         {copies}\
         FROM base\n\
         COPY --from=result / /actual/\n\
         {verify}"
    );
    let ctx = kit.context("symbolic", &df, &[]);
    kit.ok(&ctx, &[]);
}

/// testLocalCustomSessionID, the part that is not BuildKit's session API: a stage named by
/// `--build-context NAME=DIR` replaces the Dockerfile's stage of that name.
#[test]
fn named_local_context_replaces_a_stage() {
    if !can_run("parity_copy") {
        return;
    }
    let kit = Kit::new();
    let ctx = kit.context(
        "ctx",
        "FROM scratch AS base\nFROM scratch\nCOPY out /out1\nCOPY --from=base /another /out2\n",
        &[("out", "contents1")],
    );
    let base = kit.context("basedir", "", &[("another", "contents2")]);
    let spec = format!("base={}", base.display());
    assert_files(
        &kit.local(&ctx, &["--build-context", &spec]),
        &[("out1", "contents1"), ("out2", "contents2")],
    );
}
