//! The Dockerfile as hostile input: the expansion bomb (issue 13, defect 3), lines of 50 MB
//! (one physical line, a line of continuations, one word), a flood of comments; and secrets,
//! whose bytes must appear nowhere but in the step that mounts them: not in the store, the
//! image (config, history, layers), the cache keys, `--explain`, `pallet debug graph` or the
//! progress (plain and JSON).

use super::case;
use super::kit::*;
use std::time::Duration;

/// Replaces a huge Dockerfile by a line before the confinement check, which reads every file of
/// the context for the canary's secret (50 MB of our own input would only cost seconds).
fn shrink_dockerfile(arena: &Arena) {
    arena.dockerfile("FROM busybox\n");
}

/// A run of a hostile Dockerfile: bounded time (60 s) and address space (4 GiB), so a
/// regression fails here rather than in the machine's OOM killer.
fn build_bounded(arena: &Arena, args: &[&str]) -> Ran {
    run_bounded(
        &arena
            .pallet()
            .args(["build", "--progress", "plain"])
            .args(args)
            .arg(arena.ctx()),
        Duration::from_secs(60),
        Some(4 << 30),
    )
}

/// Issue 13, defect 3: `ARG A=$A$A$A$A$A$A$A$A` doubling on every line made pallet abort at
/// 5.5 GB. Each variant must stop at the line that crosses the cap, in seconds, with little
/// memory: ARG before FROM, ARG and ENV in a stage, and `${A}` in a RUN.
#[test]
fn the_expansion_bomb_stops_at_its_line() {
    if !can_run("hostile expansion bomb") {
        return;
    }
    let c = case("frontend-arg-bomb");
    let arena = Arena::busybox();
    let bomb = |kw: &str, n: usize| -> String {
        std::iter::repeat_n(format!("{kw} A=$A$A$A$A$A$A$A$A\n"), n).collect()
    };
    let variants = [
        // (Dockerfile, the line that must be named)
        (
            format!("ARG A=x\n{}FROM busybox\n", bomb("ARG", 16)),
            "Dockerfile:8",
        ),
        (
            format!("FROM busybox\nARG A=x\n{}", bomb("ARG", 16)),
            "Dockerfile:9",
        ),
        (
            format!("FROM busybox\nENV A=x\n{}", bomb("ENV", 16)),
            "Dockerfile:9",
        ),
        (
            format!(
                "FROM busybox\nARG A=xxxxxxxx\n{}RUN echo ${{A}}${{A}}\n",
                bomb("ARG", 6)
            ),
            "Dockerfile:",
        ),
    ];
    let mut printed = Vec::new();
    for (dockerfile, line) in variants {
        arena.dockerfile(&dockerfile);
        let ran = build_bounded(&arena, &[]);
        ran.failed_with(&["larger than 1 MiB", line]);
        assert!(ran.secs < 10.0, "{:.1}s: {}", ran.secs, ran.show());
        assert!(
            ran.max_rss_mib < 512,
            "{} MiB: {}",
            ran.max_rss_mib,
            ran.show()
        );
        printed.push(ran);
    }
    let refs: Vec<&Ran> = printed.iter().collect();
    arena.assert_confined(c, &refs);
    arena.assert_no_leftovers(c);
}

/// A Dockerfile whose one line is 50 MB: refused by the parser's line limit, and the message
/// quotes a little of it (issue 13, point 9: it used to print the whole line).
#[test]
fn a_50mb_line_gives_a_short_error() {
    if !can_run("hostile 50 MB line") {
        return;
    }
    let c = case("frontend-50mb-line");
    let arena = Arena::busybox();
    arena.dockerfile(&format!(
        "FROM busybox\nRUN echo {}\n",
        "x".repeat(50 << 20)
    ));
    let ran = build_bounded(&arena, &[]);
    ran.failed_with(&["line greater than max allowed size", "Dockerfile:2"]);
    assert!(
        ran.stderr.len() < 8192,
        "{} bytes of stderr",
        ran.stderr.len()
    );
    shrink_dockerfile(&arena);
    arena.assert_confined(c, &[&ran]);

    // One word of 50 MB (an image name).
    let c = case("frontend-50mb-word");
    arena.dockerfile(&format!("FROM {}\n", "a".repeat(50 << 20)));
    let ran = build_bounded(&arena, &[]);
    ran.failed_with(&["Dockerfile:1"]);
    assert!(
        ran.stderr.len() < 8192,
        "{} bytes of stderr",
        ran.stderr.len()
    );
    shrink_dockerfile(&arena);
    arena.assert_confined(c, &[&ran]);
}

/// A 10 MB command made of 200 continuation lines of 50 KB (each under the line limit): the
/// step runs (and fails: the kernel refuses so long an argument), and what pallet prints stays
/// short. Found by this case: the step's name and command were printed whole four times (at
/// 50 MB, 200 MB of stderr); they are cut at 2000 characters with the full length.
#[test]
fn a_10mb_command_of_continuations_prints_little() {
    if !can_run("hostile 50 MB continued command") {
        return;
    }
    let c = case("frontend-50mb-continued");
    let arena = Arena::busybox();
    let piece = format!("{} \\\n", "y".repeat(50_000));
    arena.dockerfile(&format!(
        "FROM busybox\nRUN echo \\\n{}done\n",
        piece.repeat(200)
    ));
    let ran = build_bounded(&arena, &[]);
    ran.failed_with(&["bytes)", "argument list too long"]);
    assert!(
        ran.stderr.len() < 32 * 1024,
        "{} bytes of stderr",
        ran.stderr.len()
    );
    assert!(
        ran.max_rss_mib < 2048,
        "{} MiB: {}",
        ran.max_rss_mib,
        ran.show()
    );
    shrink_dockerfile(&arena);
    arena.assert_confined(c, &[&ran]);
    arena.assert_no_leftovers(c);
}

/// 200 000 comment lines before FROM: a legitimate if odd Dockerfile, built in seconds.
#[test]
fn two_hundred_thousand_comments_build() {
    if !can_run("hostile comment flood") {
        return;
    }
    let c = case("frontend-200k-comments");
    let arena = Arena::busybox();
    let comments = "# a comment line that is there only to be skipped\n".repeat(200_000);
    arena.dockerfile(&format!("{comments}FROM busybox\nRUN echo ok > /ok\n"));
    let dest = arena.out("comments");
    let ran = build_bounded(
        &arena,
        &["-o", &format!("type=local,dest={}", dest.display())],
    );
    ran.succeeded();
    assert!(ran.secs < 20.0, "{:.1}s", ran.secs);
    assert_eq!(testkit::files::read(&dest.join("ok")), "ok\n");
    arena.assert_confined(c, &[&ran]);
}

/// `RUN --mount=type=secret` (file and env forms): the steps see the value (they write its
/// length and a digest), and its bytes are nowhere else: no file of the store (blobs, index,
/// snapshots, cache mounts) or of the OCI output, no byte of the image config or history, the
/// plain and JSON progress, `--explain`, `pallet debug graph`, `inspect` and `history`. A
/// rebuild with another value is a cache hit (the value is not in the cache keys, as with
/// BuildKit), and so is its `--explain`.
#[test]
fn a_secret_is_nowhere_but_in_its_step() {
    if !can_run("hostile secret leak") {
        return;
    }
    let c = case("secret-nowhere");
    let arena = Arena::busybox();
    let value = format!("s3cret-{}", random_hex("build secret"));
    let other = format!("s3cret-{}", random_hex("other secret"));
    let file = arena.input("token");
    std::fs::write(&file, &value).unwrap();
    let other_file = arena.input("token2");
    std::fs::write(&other_file, &other).unwrap();
    arena.dockerfile(
        "FROM busybox\n\
         RUN --mount=type=secret,id=tok wc -c < /run/secrets/tok > /len && sha256sum /run/secrets/tok | cut -c1-16 > /sum\n\
         RUN --mount=type=secret,id=tok,env=TOK sh -c 'echo ${#TOK} > /envlen'\n\
         RUN --mount=type=cache,target=/c --mount=type=secret,id=tok ls /run/secrets > /c/listing\n",
    );
    let oci = arena.out("oci");
    let secret_arg = format!("id=tok,src={}", file.display());
    let output = format!("type=oci,dest={},tar=false", oci.display());
    let plain = arena.build(&["-t", "sec:1", "--secret", &secret_arg, "-o", &output]);
    plain.succeeded();
    // The steps saw it.
    let unpacked = arena.out("unpacked");
    let local = format!("type=local,dest={}", unpacked.display());
    let again = arena.build(&["--secret", &secret_arg, "-o", &local]);
    again.succeeded();
    let len = value.len().to_string();
    assert_eq!(testkit::files::read(&unpacked.join("len")).trim(), len);
    assert_eq!(testkit::files::read(&unpacked.join("envlen")).trim(), len);
    assert_eq!(
        testkit::files::read(&unpacked.join("sum")).trim(),
        &sha256(value.as_bytes())["sha256:".len().."sha256:".len() + 16]
    );
    // Every way of looking at the build and the image.
    let other_arg = format!("id=tok,src={}", other_file.display());
    let json = run(&arena
        .pallet()
        .args(["build", "--progress", "json", "--secret", &other_arg])
        .arg(arena.ctx()));
    json.succeeded();
    assert!(!json.printed().contains("cache miss"), "{}", json.show());
    let explain = run(&arena
        .pallet()
        .args([
            "build",
            "--progress",
            "plain",
            "--explain",
            "--secret",
            &other_arg,
        ])
        .arg(arena.ctx()));
    explain.succeeded();
    assert!(
        explain.err().contains(" cached, 0 would run"),
        "{}",
        explain.show()
    );
    let graph = run(&arena
        .pallet()
        .args(["debug", "graph", "--format", "json"])
        .arg(arena.ctx()));
    graph.succeeded();
    let inspect = run(&arena
        .pallet()
        .args(["inspect", "--format", "json", "sec:1"]));
    inspect.succeeded();
    let history = run(&arena.pallet().args(["history", "--no-trunc", "sec:1"]));
    let history = if history.code == Some(0) {
        history
    } else {
        run(&arena.pallet().args(["history", "sec:1"]))
    };
    history.succeeded();
    let runs = [&plain, &again, &json, &explain, &graph, &inspect, &history];
    for secret in [&value, &other] {
        for r in runs {
            assert!(
                !r.printed().contains(secret.as_str()),
                "printed: {}",
                r.show()
            );
        }
        let mut files = testkit::files::all_files(arena.root());
        files.extend(testkit::files::all_files(&oci));
        files.extend(testkit::files::all_files(&unpacked));
        assert!(files.len() > 10, "{files:?}");
        for f in files {
            assert!(
                !testkit::files::file_contains(&f, secret.as_bytes()),
                "the secret is in {}",
                f.display()
            );
        }
    }
    arena.assert_confined(c, &runs);
}

/// A `--build-arg` named like a secret is shown in the image's history (as BuildKit does), so
/// pallet says so with BuildKit's SecretsUsedInArgOrEnv warning, naming the ARG and its line.
#[test]
fn a_secret_looking_build_arg_is_warned_about() {
    if !can_run("hostile build-arg secret") {
        return;
    }
    let c = case("secret-build-arg");
    let arena = Arena::busybox();
    arena.dockerfile("FROM busybox\nARG API_TOKEN\nRUN test -n \"$API_TOKEN\"\n");
    let ran = arena.build(&["--build-arg", "API_TOKEN=tok-in-history"]);
    ran.succeeded();
    assert!(
        ran.err().contains("SecretsUsedInArgOrEnv") && ran.err().contains("API_TOKEN"),
        "{}",
        ran.show()
    );
    assert!(ran.err().contains("Dockerfile:2"), "{}", ran.show());
    arena.assert_confined(c, &[&ran]);
}
