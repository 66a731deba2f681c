//! Our own versions of the cases in BuildKit's frontend/dockerfile/dockerfile_resources_test.go
//! (status of each in testdata/parity/CHECKLIST.md): buildx's `--shm-size` and `--ulimit`
//! reach every RUN step, and are part of its cache key.

use crate::parity_kit::{can_run, read, Kit};
use testkit::progress::{cached, ran};

/// testShmSize, testUlimit: /dev/shm is 64 MiB by default (BuildKit's) and `--shm-size`'s
/// size otherwise; `--ulimit nofile=1062:1062` is what `ulimit -n` reads. A changed flag runs
/// the step again, the same flag takes it from the cache; chroot isolation applies `--ulimit`
/// too.
#[test]
fn shm_size_and_ulimit() {
    if !can_run("parity_resources") {
        return;
    }
    let kit = Kit::new();
    let ctx = kit.context(
        "shm",
        "FROM busybox AS base\nRUN mount | grep /dev/shm > /shmsize\n\
         FROM scratch\nCOPY --from=base /shmsize /\n",
        &[],
    );
    let out = kit.local(&ctx, &[]);
    assert!(
        read(&out, "shmsize").contains("size=65536k"),
        "{}",
        read(&out, "shmsize")
    );
    let out = kit.local(&ctx, &["--shm-size", "134217728"]);
    assert!(
        read(&out, "shmsize").contains("size=131072k"),
        "{}",
        read(&out, "shmsize")
    );
    let log = kit.ok(&ctx, &["--shm-size", "128m"]);
    assert!(
        cached(&log, "RUN mount"),
        "the same size in other words: cached\n{log}"
    );

    let ctx = kit.context(
        "ulimit",
        "FROM busybox AS base\nRUN ulimit -n > /ulimit\nFROM scratch\nCOPY --from=base /ulimit /\n",
        &[],
    );
    let out = kit.local(&ctx, &["--ulimit", "nofile=1062:1062"]);
    assert_eq!(read(&out, "ulimit").trim(), "1062");
    let log = kit.ok(&ctx, &["--ulimit", "nofile=2048"]);
    assert!(ran(&log, "RUN ulimit"), "another limit runs again:\n{log}");
    // Chroot isolation (unprivileged containers) sets them too.
    let out = kit.local(
        &ctx,
        &["--ulimit", "nofile=1063:1063", "--isolation", "chroot"],
    );
    assert_eq!(read(&out, "ulimit").trim(), "1063");

    let err = kit.error(&ctx, &["--ulimit", "files=1"]);
    assert!(err.contains("invalid ulimit type: files"), "{err}");
}
