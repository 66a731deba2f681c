//! Our own versions of the cases in BuildKit's frontend/dockerfile/dockerfile_parents_test.go
//! (COPY --parents; status of each in testdata/parity/CHECKLIST.md). The Dockerfiles are
//! BuildKit's cases with busybox for alpine; their RUN heredocs assert the trees.

use crate::parity_kit::{assert_files, can_run, Kit};

/// testCopyParents: `--parents` keeps the source's path under the destination, for a file
/// and for a wildcard, relative to a WORKDIR.
#[test]
fn copy_parents() {
    if !can_run("parity_parents") {
        return;
    }
    let kit = Kit::new();
    let ctx = kit.context(
        "ctx",
        "FROM scratch\nCOPY --parents foo1/foo2/bar /\nWORKDIR /test\nCOPY --parents foo1/foo2/ba* .\n",
        &[("foo1/foo2/bar", "testing"), ("foo1/foo2/baz", "testing2")],
    );
    assert_files(
        &kit.local(&ctx, &[]),
        &[
            ("foo1/foo2/bar", "testing"),
            ("test/foo1/foo2/bar", "testing"),
            ("test/foo1/foo2/baz", "testing2"),
        ],
    );
}

const RELATIVE: &str = r#"
FROM busybox AS base
WORKDIR /test
RUN <<eot
	set -ex
	mkdir -p a/b/c/d/e
	mkdir -p a/b2/c/d/e
	mkdir -p a/b/c2/d/e
	mkdir -p a/b/c2/d/e2
	touch a/b/c/d/foo
	touch a/b/c/d/e/bay
	touch a/b2/c/d/e/bar
	touch a/b/c2/d/e/baz
	touch a/b/c2/d/e2/baz
eot

FROM busybox AS middle
COPY --from=base --parents /test/a/b/./c/d /out/
RUN <<eot
	set -ex
	[ -d /out/c/d/e ]
	[ -f /out/c/d/foo ]
	[ ! -d /out/a ]
	[ ! -d /out/e ]
eot

FROM busybox AS end
COPY --from=base --parents /test/a/b/c/d/. /out/
RUN <<eot
	set -ex
	[ -d /out/test/a/b/c/d/e ]
	[ -f /out/test/a/b/c/d/foo ]
eot

FROM busybox AS start
COPY --from=base --parents ./test/a/b/c/d /out/
RUN <<eot
	set -ex
	[ -d /out/test/a/b/c/d/e ]
	[ -f /out/test/a/b/c/d/foo ]
eot

FROM busybox AS double
COPY --from=base --parents /test/a/./b/./c /out/
RUN <<eot
	set -ex
	[ -d /out/b/c/d/e ]
	[ -f /out/b/c/d/foo ]
eot

FROM busybox AS wildcard
COPY --from=base --parents /test/a/./*/c /out/
RUN <<eot
	set -ex
	[ -d /out/b/c/d/e ]
	[ -f /out/b2/c/d/e/bar ]
eot

FROM busybox AS doublewildcard
COPY --from=base --parents /test/a/b*/./c/**/e /out/
RUN <<eot
	set -ex
	[ -d /out/c/d/e ]
	[ -f /out/c/d/e/bay ] # via b
	[ -f /out/c/d/e/bar ] # via b2
eot

FROM busybox AS doubleinputs
COPY --from=base --parents /test/a/b/c*/./d/**/baz /test/a/b*/./c/**/bar /out/
RUN <<eot
	set -ex
	[ -f /out/d/e/baz ]
	[ ! -f /out/d/e/bay ]
	[ -f /out/d/e2/baz ]
	[ -f /out/c/d/e/bar ] # via b2
eot
"#;

const MISSING: &str = r#"
FROM busybox AS base
WORKDIR /test
RUN <<eot
	set -ex
	mkdir -p a/b/c/d/e
	touch a/b/c/d/foo
	touch a/b/c/d/e/bay
eot

FROM busybox AS normal
COPY --from=base --parents /test/a/b/c/d /out/
RUN <<eot
	set -ex
	[ -d /out/test/a/b/c/d/e ]
	[ -f /out/test/a/b/c/d/e/bay ]
	[ ! -d /out/e ]
	[ ! -d /out/a ]
eot

FROM busybox AS withpivot
COPY --from=base --parents /test/a/b/./c/d /out/
RUN <<eot
	set -ex
	[ -d /out/c/d/e ]
	[ -f /out/c/d/foo ]
	[ ! -d /out/a ]
	[ ! -d /out/e ]
eot

FROM busybox AS nonexistentfile
COPY --from=base --parents /test/nonexistent-file /out/

FROM busybox AS wildcard-nonexistent
COPY --from=base --parents /test/a/b2*/c /out/
RUN <<eot
	set -ex
	[ -d /out ]
	[ ! -d /out/a ]
eot

FROM busybox AS wildcard-afterpivot
COPY --from=base --parents /test/a/b/./c2* /out/
RUN <<eot
	set -ex
	[ -d /out ]
	[ ! -d /out/a ]
	[ ! -d /out/c* ]
eot
"#;

/// testCopyRelativeParents: `/./` pivots, a leading `./`, `/.` at the end, two pivots,
/// wildcards before and after the pivot, `**`, and two sources at once.
#[test]
fn copy_relative_parents() {
    if !can_run("parity_parents") {
        return;
    }
    let kit = Kit::new();
    let ctx = kit.context("ctx", RELATIVE, &[]);
    for target in [
        "middle",
        "end",
        "start",
        "double",
        "wildcard",
        "doublewildcard",
        "doubleinputs",
    ] {
        kit.ok(&ctx, &["--target", target]);
    }
}

/// testCopyParentsMissingDirectory: sources with and without a pivot, a missing file (an
/// error naming it), wildcards that match nothing before and after the pivot (no error,
/// nothing copied).
#[test]
fn copy_parents_missing() {
    if !can_run("parity_parents") {
        return;
    }
    let kit = Kit::new();
    let ctx = kit.context("ctx", MISSING, &[]);
    for target in [
        "normal",
        "withpivot",
        "wildcard-nonexistent",
        "wildcard-afterpivot",
    ] {
        kit.ok(&ctx, &["--target", target]);
    }
    let err = kit.error(&ctx, &["--target", "nonexistentfile"]);
    assert!(
        err.contains("\"/test/nonexistent-file\": not found"),
        "{err}"
    );
}
