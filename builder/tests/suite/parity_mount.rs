//! Our own versions of the cases in BuildKit's frontend/dockerfile/dockerfile_mount_test.go and
//! dockerfile_secrets_test.go (status of each in testdata/parity/CHECKLIST.md). Their parse
//! errors are in the frontend's parity and lowering tests.

use crate::parity_kit::{assert_files, can_run, read, Kit};

/// testMountContext, testMountTmpfs, testCacheMountUser, testCacheMountDefaultID,
/// testMountEnvVar, testMountArg, testMountEnvAcrossStages, testMountMetaArg,
/// testMountTmpfsSize: a bind of the context by default, tmpfs that leaves nothing behind
/// (and its size), cache mounts with uid/gid/mode, their id defaulting to the target, and
/// mount options from ENV, ARG and global ARG values, across stages.
#[test]
fn mounts_and_their_options() {
    if !can_run("parity_mount") {
        return;
    }
    let kit = Kit::new();
    let ctx = kit.context(
        "ctx",
        r#"ARG META_PATH=/tmp/meta
FROM busybox AS stage1
RUN --mount=target=/context [ "$(cat /context/testfile)" == "contents0" ]
RUN --mount=target=/mytmp,type=tmpfs touch /mytmp/foo
RUN [ ! -f /mytmp/foo ]
RUN --mount=type=cache,target=/mycache,uid=1001,gid=1002,mode=0751 [ "$(stat -c "%u %g %f" /mycache)" == "1001 1002 41e9" ]
RUN --mount=type=cache,target=/mycache touch /mycache/foo
RUN --mount=type=cache,target=/mycache2 [ ! -f /mycache2/foo ]
RUN --mount=type=cache,target=/mycache [ -f /mycache/foo ]
ENV SOME_PATH=/mycache
RUN --mount=type=cache,target=$SOME_PATH [ -f $SOME_PATH/foo ]
ARG MNT_TYPE=cache
RUN --mount=type=$MNT_TYPE,target=/mycache3 touch /mycache3/foo
RUN --mount=type=cache,target=/mycache3 [ -f /mycache3/foo ]
ENV MNT_ID=mycache
ENV MNT_TYPE2=cache
RUN --mount=type=cache,id=mycache,target=/abcabc touch /abcabc/foo
RUN --mount=type=$MNT_TYPE2,id=$MNT_ID,target=/cbacba [ -f /cbacba/foo ]
ARG META_PATH
RUN --mount=type=cache,id=meta,target=/tmp/meta touch /tmp/meta/foo
RUN --mount=type=cache,id=meta,target=$META_PATH [ -f /tmp/meta/foo ]
RUN --mount=type=tmpfs,target=/dev/shm,size=128m mount | grep /dev/shm > /tmpfssize
FROM stage1
RUN --mount=type=$MNT_TYPE2,id=$MNT_ID,target=/whatever [ -f /whatever/foo ]
FROM scratch
COPY --from=stage1 /tmpfssize /
"#,
        &[("testfile", "contents0")],
    );
    let out = kit.local(&ctx, &[]);
    let size = read(&out, "tmpfssize");
    assert!(size.contains("size=131072k"), "{size}");
    kit.ok(&ctx, &["--target", "stage1"]);
}

/// testMountRWCache (the part that holds), testMountDuplicate (#4123): a step with a rw
/// bind of a stage is cached; a bind of the context and one of its files in one RUN see the
/// current context on each build. Not yet: BuildKit also finds the step when the stage was
/// rebuilt with the same content in the mounted path (content-based keys for mount and
/// COPY --from sources); pallet keys it by the stage's own key, so the step runs again
/// (CHECKLIST.md).
#[test]
fn bind_mounts_cache_and_context_changes() {
    if !can_run("parity_mount") {
        return;
    }
    let kit = Kit::new();
    let ctx = kit.context(
        "rw",
        "from busybox AS build\ncopy cachebust /\nrun mkdir out && echo foo > out/foo\n\
         from busybox as second\n\
         RUN --mount=from=build,src=out,target=/out,rw touch /out/bar && \
             cat /dev/urandom | head -c 100 | sha256sum > /unique\n\
         from scratch\nCOPY --from=second /unique /unique\n",
        &[("cachebust", "0")],
    );
    let first = read(&kit.local(&ctx, &[]), "unique");
    assert_eq!(read(&kit.local(&ctx, &[]), "unique"), first);

    let ctx = kit.context(
        "duplicate",
        "FROM busybox AS base\n\
         RUN --mount=source=.,target=/tmp/test \\\n  --mount=source=b.txt,target=/tmp/b.txt \\\n  \
         cat /tmp/test/a.txt /tmp/b.txt > /combined.txt\n\
         FROM scratch\nCOPY --from=base /combined.txt /\n",
        &[("a.txt", "foo\n"), ("b.txt", "bar\n")],
    );
    assert_files(&kit.local(&ctx, &[]), &[("combined.txt", "foo\nbar\n")]);
    std::fs::write(ctx.join("a.txt"), "updated\n").unwrap();
    assert_files(&kit.local(&ctx, &[]), &[("combined.txt", "updated\nbar\n")]);
}

/// testCacheMountParallel (#5566): two stages with nested cache mounts, built with
/// --no-cache several times (BuildKit: 20, with alpine).
#[test]
fn nested_cache_mounts_in_parallel_stages() {
    if !can_run("parity_mount") {
        return;
    }
    let kit = Kit::new();
    let ctx = kit.context(
        "ctx",
        "FROM busybox AS b1\n\
         RUN --mount=type=cache,target=/foo/bar --mount=type=cache,target=/foo/bar/baz echo 1\n\
         FROM busybox AS b2\n\
         RUN --mount=type=cache,target=/foo/bar --mount=type=cache,target=/foo/bar/baz echo 2\n\
         FROM scratch\nCOPY --from=b1 /etc/passwd p1\nCOPY --from=b2 /etc/passwd p2\n",
        &[],
    );
    for _ in 0..5 {
        kit.ok(&ctx, &["--no-cache"]);
    }
}

/// testCacheMountSourceEscape: a cache mount's `source=` that a previous step made a symlink
/// to /etc fails the build instead of mounting the host's (or the image's) /etc.
#[test]
fn cache_mount_source_cannot_escape() {
    if !can_run("parity_mount") {
        return;
    }
    let kit = Kit::new();
    let ctx = kit.context(
        "ctx",
        "FROM busybox AS init\n\
         RUN --mount=type=cache,id=sourceescape,target=/cache mkdir -p /cache/sel && echo benign > /cache/sel/benign.txt\n\
         FROM init AS link\n\
         RUN --mount=type=cache,id=sourceescape,target=/cache rm -rf /cache/sel && ln -s /etc /cache/sel\n\
         FROM link AS victim\n\
         RUN --mount=type=cache,id=sourceescape,source=sel,target=/victim cat /victim/hostname /victim/passwd\n\
         FROM scratch\nCOPY --from=victim /etc/passwd /passwd\n",
        &[],
    );
    let err = kit.error(&ctx, &["--no-cache"]);
    let host = std::fs::read_to_string("/etc/passwd").unwrap();
    let host_root = host.lines().next().unwrap_or("root:x:0:0");
    assert!(
        !err.contains("daemon:x:1:1"),
        "the image's passwd was read:\n{err}"
    );
    assert!(
        !err.lines().any(|l| l.ends_with(host_root)),
        "the host's passwd was read:\n{err}"
    );
}

/// testSecretFileParams, testSecretRequiredWithoutValue, testSecretAsEnviron,
/// testSecretAsEnvironWithFileMount: a secret file's mode and owner and nothing left behind;
/// a required secret not given fails with BuildKit's text; a secret as an env variable (no
/// file, `****` in the progress name instead of the value), and as both.
#[test]
fn secrets() {
    if !can_run("parity_mount") {
        return;
    }
    let kit = Kit::new();
    let secret = kit.store.path("pw.txt");
    std::fs::write(&secret, "pw").unwrap();
    let given = format!("id=mysecret,src={}", secret.display());
    let ctx = kit.context(
        "params",
        "FROM busybox\n\
         RUN --mount=type=secret,required=false,mode=741,uid=100,gid=102,target=/mysecret \
             [ \"$(stat -c \"%u %g %f\" /mysecret)\" = \"100 102 81e1\" ]\n\
         RUN [ ! -f /mysecret ] # check no stub left behind\n",
        &[],
    );
    kit.ok(&ctx, &["--secret", &given]);

    let ctx = kit.context(
        "required",
        "FROM busybox \n\t\tRUN --mount=type=secret,required,id=mysecret foo",
        &[],
    );
    let err = kit.error(&ctx, &[]);
    assert!(err.contains("secret mysecret: not found"), "{err}");

    let ctx = kit.context(
        "environ",
        "FROM busybox\nENV SECRET_ENV=foo\n\
         RUN --mount=type=secret,id=mysecret,env=SECRET_ENV [ \"$SECRET_ENV\" == \"pw\" ] && \
             [ ! -f /run/secrets/mysecret ] || false\n",
        &[],
    );
    let log = kit.ok(&ctx, &["--secret", &given]);
    let name = log
        .lines()
        .find(|l| l.contains("RUN --mount=type=secret"))
        .unwrap_or_else(|| panic!("no RUN step in:\n{log}"));
    assert!(name.contains("[ \"****\" == \"pw\" ] && "), "{name}");

    let ctx = kit.context(
        "environ-file",
        "FROM busybox\n\
         RUN --mount=type=secret,id=mysecret,target=/run/secrets/secret,env=SECRET_ENV \
             [ \"$SECRET_ENV\" == \"pw\" ] && [ -f /run/secrets/secret ] || false\n",
        &[],
    );
    kit.ok(&ctx, &["--secret", &given]);
}

/// BuildKit's progress names expand the stage's variables (processCmdEnv): RUN keeps quotes
/// and leaves unset variables as written; COPY and WORKDIR are expanded as words.
#[test]
fn progress_names_expand_variables() {
    if !can_run("parity_mount") {
        return;
    }
    let kit = Kit::new();
    let ctx = kit.context(
        "ctx",
        "FROM busybox\nENV X=hello D=/w\nWORKDIR $D\nCOPY --chmod=644 Dockerfile /$X\n\
         RUN echo $X \"$X\" $UNSET\n",
        &[],
    );
    let log = kit.ok(&ctx, &[]);
    for step in [
        "[2/4] WORKDIR /w",
        "[3/4] COPY --chmod=644 Dockerfile /hello",
        "[4/4] RUN echo hello \"hello\" $UNSET",
    ] {
        assert!(log.contains(step), "no {step:?} in:\n{log}");
    }
}
