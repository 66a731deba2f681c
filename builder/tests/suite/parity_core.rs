//! Our own versions of the cases in BuildKit's frontend/dockerfile/dockerfile_core_test.go
//! (status of each in testdata/parity/CHECKLIST.md).

use crate::parity_kit::{assert_files, can_run, Kit};

/// testDockerfileDirs, testSymlinkedDockerfile, testDockerfileLowercase: the Dockerfile by
/// absolute and relative paths, in another directory than the context, behind a symlink, and
/// as `dockerfile` when there is no `Dockerfile`.
#[test]
fn where_the_dockerfile_is() {
    if !can_run("parity_core") {
        return;
    }
    let kit = Kit::new();
    let df = "FROM busybox\nCOPY foo /foo2\nCOPY foo /\nRUN echo -n bar > foo3\n\
              RUN test -f foo\nRUN cmp -s foo foo2\nRUN cmp -s foo foo3\n";
    let ctx = kit.context("ctx", df, &[("foo", "bar")]);
    kit.ok(&ctx, &[]);
    // Relative paths, from the context directory.
    let out = kit
        .store
        .pallet()
        .current_dir(&ctx)
        .args(["build", "--progress", "plain", "-f", "Dockerfile", "."])
        .output();
    assert!(out.status.success(), "{}", testkit::text(&out.stderr));
    // The Dockerfile in one directory, the context in another.
    let dfdir = kit.context("dfdir", df, &[]);
    let ctx2 = kit.context("ctx2", "", &[("foo", "bar")]);
    let file = dfdir.join("Dockerfile");
    kit.ok(&ctx2, &["-f", file.to_str().unwrap()]);

    // A Dockerfile that is a symlink to Dockerfile.web.
    let ctx = kit.context(
        "symlinked",
        "",
        &[("Dockerfile.web", "FROM scratch\nENV foo bar\n")],
    );
    std::os::unix::fs::symlink("Dockerfile.web", ctx.join("Dockerfile")).unwrap();
    let config = kit.config(&ctx, &[]);
    let env = config["config"]["Env"].as_array().unwrap();
    assert!(env.iter().any(|e| e == "foo=bar"), "{env:?}");

    // Only a lowercase `dockerfile`.
    let ctx = kit.context(
        "lowercase",
        "",
        &[("dockerfile", "FROM scratch\nENV lower case\n")],
    );
    let config = kit.config(&ctx, &[]);
    let env = config["config"]["Env"].as_array().unwrap();
    assert!(env.iter().any(|e| e == "lower=case"), "{env:?}");
    // `Dockerfile` wins when both are there.
    std::fs::write(ctx.join("Dockerfile"), "FROM scratch\nENV upper case\n").unwrap();
    let config = kit.config(&ctx, &[]);
    let env = config["config"]["Env"].as_array().unwrap();
    assert!(env.iter().any(|e| e == "upper=case"), "{env:?}");
}

/// testSymlinkDestination: a COPY into a path that is a symlink (from an ADDed tar, pointing
/// up and out with `../`) writes where the link points, inside the image.
#[test]
fn copy_through_a_symlinked_destination() {
    if !can_run("parity_core") {
        return;
    }
    let kit = Kit::new();
    let ctx = kit.context(
        "ctx",
        "FROM scratch\nADD t.tar /\nCOPY foo /symlink/\n",
        &[("foo", "content0")],
    );
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_mode(0o755);
    h.set_size(0);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    b.append_link(&mut h, "symlink", "../tmp/symlink-target")
        .unwrap();
    std::fs::write(ctx.join("t.tar"), b.into_inner().unwrap()).unwrap();
    let out = kit.local(&ctx, &[]);
    assert_files(&out, &[("tmp/symlink-target/foo", "content0")]);
    assert_eq!(
        std::fs::read_link(out.join("symlink")).unwrap().to_str(),
        Some("../tmp/symlink-target")
    );
}

/// testContextChangeDirToFile (fsutil#46): a context path that was a directory and is now a
/// file gives the file on the next build (no stale cache); testNoSnapshotLeak: rebuilding
/// the same thing adds nothing to the store.
#[test]
fn context_changes_and_rebuilds() {
    if !can_run("parity_core") {
        return;
    }
    let kit = Kit::new();
    let ctx = kit.context(
        "ctx",
        "FROM scratch\nCOPY foo /\n",
        &[("foo/bar", "contents")],
    );
    assert_files(&kit.local(&ctx, &[]), &[("bar", "contents")]);
    std::fs::remove_dir_all(ctx.join("foo")).unwrap();
    std::fs::write(ctx.join("foo"), "contents2").unwrap();
    assert_files(&kit.local(&ctx, &[]), &[("foo", "contents2")]);

    let count = || {
        ["snapshots", "blobs"]
            .iter()
            .map(|d| testkit::files::count_files(&kit.store.root().join(d)))
            .sum::<usize>()
    };
    kit.ok(&ctx, &[]);
    let before = count();
    kit.ok(&ctx, &[]);
    assert_eq!(count(), before, "a rebuild from the cache adds nothing");
}

/// testExposeExpansion (the config; lowering is in the frontend's parity tests), testLabels
/// (`--label` beside LABEL), testUser (USER by name, number and both, the groups RUN gets, and
/// the config's User).
#[test]
fn config_ports_labels_and_users() {
    if !can_run("parity_core") {
        return;
    }
    let kit = Kit::new();
    let ctx = kit.context(
        "expose",
        "FROM scratch\nARG PORTS=\"3000 4000/udp\"\nEXPOSE $PORTS\nEXPOSE 5000\nLABEL foo=bar\n",
        &[],
    );
    let config = kit.config(&ctx, &["--label", "bar=baz"]);
    let ports: Vec<&String> = config["config"]["ExposedPorts"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(ports, ["3000/tcp", "4000/udp", "5000/tcp"]);
    assert_eq!(config["config"]["Labels"]["foo"], "bar");
    assert_eq!(config["config"]["Labels"]["bar"], "baz");

    let ids = |expected: &str| {
        format!(
            "RUN [ \"$(id -u):$(id -g)/$(id -un):$(id -gn)/$(id -G):$(id -Gn)\" = '{expected}' ] \
             || {{ echo \"$(id -u):$(id -g)/$(id -un):$(id -gn)/$(id -G):$(id -Gn)\"; exit 1; }}\n"
        )
    };
    let mut df = String::from(
        "FROM busybox AS base\n\
         RUN mkdir -m 0777 /out\n\
         RUN id -un > /out/rootuser\n\
         RUN [ \"$(id -u):$(id -g)/$(id -un):$(id -gn)\" = '0:0/root:root' ]\n\
         USER root\n\
         RUN [ \"$(id -G):$(id -Gn)\" = '0 10:root wheel' ]\n\
         RUN echo 'dockerio:x:1001:1001::/bin:/bin/false' >> /etc/passwd && \
             echo 'dockerio:x:1001:' >> /etc/group\n\
         USER dockerio\n",
    );
    df.push_str(&ids("1001:1001/dockerio:dockerio/1001:dockerio"));
    df.push_str("USER root\n");
    df.push_str(&ids("0:0/root:root/0 10:root wheel"));
    df.push_str("RUN echo 'supplementary:x:1002:dockerio' >> /etc/group\nUSER dockerio\n");
    let with_supplementary = "1001:1001/dockerio:dockerio/1001 1002:dockerio supplementary";
    df.push_str(&ids(with_supplementary));
    df.push_str("USER 1001\n");
    df.push_str(&ids(with_supplementary));
    for user in [
        "dockerio:dockerio",
        "1001:dockerio",
        "dockerio:1001",
        "1001:1001",
    ] {
        df.push_str(&format!("USER {user}\n"));
        df.push_str(&ids("1001:1001/dockerio:dockerio/1001:dockerio"));
    }
    for user in [
        "dockerio:supplementary",
        "dockerio:1002",
        "1001:supplementary",
        "1001:1002",
    ] {
        df.push_str(&format!("USER {user}\n"));
        df.push_str(&ids("1001:1002/dockerio:supplementary/1002:supplementary"));
    }
    df.push_str("USER 1042:1043\n");
    df.push_str(&ids("1042:1043/1042:1043/1043:1043"));
    df.push_str(
        "USER daemon\nRUN id -un > /out/daemonuser\n\
         FROM scratch\nCOPY --from=base /out /\nUSER nobody\n",
    );
    let ctx = kit.context("user", &df, &[]);
    let out = kit.local(&ctx, &[]);
    assert_files(&out, &[("rootuser", "root\n"), ("daemonuser", "daemon\n")]);
    let config = kit.config(&ctx, &[]);
    assert_eq!(config["config"]["User"], "nobody");
}

/// testUserAdditionalGids (CVE-2023-25173): the primary group is among the groups, and a
/// bare uid gets no groups but gid 0.
#[test]
fn user_additional_gids() {
    if !can_run("parity_core") {
        return;
    }
    let kit = Kit::new();
    let ctx = kit.context(
        "ctx",
        "FROM busybox\n\
         SHELL [\"/bin/sh\", \"-euxc\"]\n\
         RUN [ \"$(id)\" = \"uid=0(root) gid=0(root) groups=0(root),10(wheel)\" ]\n\
         USER 1234\n\
         RUN [ \"$(id)\" = \"uid=1234 gid=0(root) groups=0(root)\" ]\n\
         USER 1234:1234\n\
         RUN [ \"$(id)\" = \"uid=1234 gid=1234 groups=1234\" ]\n\
         USER daemon\n\
         RUN [ \"$(id)\" = \"uid=1(daemon) gid=1(daemon) groups=1(daemon)\" ]\n",
        &[],
    );
    kit.ok(&ctx, &[]);
}

/// testStepNames: progress names steps `[STAGE N/TOTAL] INSTRUCTION` with the instruction as
/// written, and a stage FROM scratch has no FROM step.
#[test]
fn step_names() {
    if !can_run("parity_core") {
        return;
    }
    let kit = Kit::new();
    let ctx = kit.context(
        "ctx",
        "FROM busybox AS base\nWORKDIR /out\nRUN echo \"base\" > base\n\
         FROM scratch\nCOPY --from=base --chmod=0644 /out /out\n",
        &[],
    );
    let log = kit.ok(&ctx, &[]);
    for step in [
        "[base 3/3] RUN echo \"base\" > base",
        "[stage-1 1/1] COPY --from=base --chmod=0644 /out /out",
    ] {
        assert!(log.contains(step), "no {step:?} in:\n{log}");
    }
}

/// testDockerfileCheckHostname (moby/buildkit#1301), the build-arg case:
/// `BUILDKIT_SANDBOX_HOSTNAME` is RUN's hostname, in /etc/hosts and $HOSTNAME too; without
/// it RUN sees BuildKit's `buildkitsandbox`. (BuildKit's `hostname` frontend option has no
/// docker build flag.)
#[test]
fn sandbox_hostname_build_arg() {
    if !can_run("parity_core") {
        return;
    }
    let kit = Kit::new();
    let ctx = kit.context(
        "ctx",
        "FROM busybox\nRUN cat /etc/hosts | grep foo\nRUN echo $HOSTNAME | grep foo\n\
         RUN echo $(hostname) | grep foo\n",
        &[],
    );
    let log = kit.ok(&ctx, &["--build-arg", "BUILDKIT_SANDBOX_HOSTNAME=foo"]);
    assert!(!log.contains("not consumed"), "{log}");
    let ctx = kit.context(
        "default",
        "FROM busybox\nRUN [ \"$(hostname)\" = buildkitsandbox ]\n",
        &[],
    );
    kit.ok(&ctx, &[]);
}
