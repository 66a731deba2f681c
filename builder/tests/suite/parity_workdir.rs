//! Our own versions of the cases in BuildKit's frontend/dockerfile/dockerfile_workdir_test.go
//! (status of each in testdata/parity/CHECKLIST.md).

use crate::parity_kit::{can_run, Kit};

/// testWorkdirCreatesDir, testWorkdirUser, testWorkdirExists, testWorkdirCopyIgnoreRelative:
/// WORKDIR makes its directory (in scratch too), owned by the USER when it makes it, leaves
/// an existing one's owner alone; `COPY --from` sources are absolute whatever the WORKDIR.
#[test]
fn workdir_creates_owns_and_keeps() {
    if !can_run("parity_workdir") {
        return;
    }
    let kit = Kit::new();
    let ctx = kit.context("creates", "FROM scratch\nWORKDIR /foo\nWORKDIR /\n", &[]);
    let out = kit.local(&ctx, &[]);
    assert!(std::fs::symlink_metadata(out.join("foo")).unwrap().is_dir());

    // `adduser -D user` as busybox writes it (Debian's busybox-static has no adduser).
    let adduser = "RUN echo 'user:x:1000:1000::/home/user:/bin/sh' >> /etc/passwd && \
                   echo 'user:x:1000:' >> /etc/group\n";
    let ctx = kit.context(
        "user",
        &format!(
            "FROM busybox\n{adduser}USER user\nWORKDIR /mydir\n\
             RUN [ \"$(stat -c \"%U %G\" /mydir)\" == \"user user\" ]\n"
        ),
        &[],
    );
    kit.ok(&ctx, &[]);
    let ctx = kit.context(
        "exists",
        &format!(
            "FROM busybox\n{adduser}RUN mkdir /mydir && chown user:user /mydir\nWORKDIR /mydir\n\
             RUN [ \"$(stat -c \"%U %G\" /mydir)\" == \"user user\" ]\n"
        ),
        &[],
    );
    kit.ok(&ctx, &[]);

    let ctx = kit.context(
        "copy-relative",
        "FROM scratch AS base\nWORKDIR /foo\nCOPY Dockerfile /\n\
         FROM scratch\n# relative path still loaded as absolute\nCOPY --from=base Dockerfile .\n",
        &[],
    );
    let out = kit.local(&ctx, &[]);
    assert!(out.join("Dockerfile").is_file());
}

/// testWorkdirSourceDateEpochReproducible: with SOURCE_DATE_EPOCH, two builds in fresh stores
/// seconds apart give the same OCI index. (BuildKit pulls the same alpine twice; here each
/// store imports the same busybox tar from the same path, with SOURCE_DATE_EPOCH set in the
/// environment so that the import's history time is the same too, as buildx passes it.)
#[test]
fn workdir_is_reproducible_with_source_date_epoch() {
    if !can_run("parity_workdir") {
        return;
    }
    let epoch = "1673364896"; // 2023-01-10T15:34:56Z
    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("busybox.tar");
    let index = |n: u32| {
        let kit = Kit::with_tar_at(testkit::pallet!().env("SOURCE_DATE_EPOCH", epoch), &tar);
        let ctx = kit.context("ctx", "FROM busybox\nWORKDIR /mydir\n", &[]);
        let dest = kit.store.path(&format!("oci-{n}"));
        let spec = format!("type=oci,dest={},tar=false", dest.display());
        kit.ok(
            &ctx,
            &[
                "-o",
                &spec,
                "--build-arg",
                &format!("SOURCE_DATE_EPOCH={epoch}"),
            ],
        );
        std::fs::read(dest.join("index.json")).unwrap()
    };
    let first = index(1);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(first, index(2));
}
