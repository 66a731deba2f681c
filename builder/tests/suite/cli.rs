//! The `pallet` binary as users run it: `debug parse` output, `debug graph` text and JSON,
//! `.dockerignore` selection, error rendering and exit codes, and the errors `build` gives
//! before it runs anything.

use testkit::files::{temp_dir, write, TempDir};
use testkit::{pallet, repo, text};

/// A temp dir (removed on drop) holding these files.
fn temp_context(files: &[(&str, &str)]) -> TempDir {
    let dir = temp_dir("pallet-cli");
    for (path, content) in files {
        write(&dir.path().join(path), content);
    }
    dir
}

#[test]
fn debug_parse_prints_buildkit_golden_format() {
    let case = repo::root().join("testdata/buildkit-parser/testfiles/health");
    let out = pallet!()
        .args(["debug", "parse", case.join("Dockerfile").to_str().unwrap()])
        .output();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        std::fs::read_to_string(case.join("result")).unwrap()
    );
}

#[test]
fn debug_parse_reads_stdin_and_reports_errors_with_lines() {
    let out = pallet!()
        .args(["debug", "parse", "-"])
        .stdin("FROM alpine\nrun echo hi\n")
        .output();
    assert_eq!(text(&out.stdout), "(from \"alpine\")\n(run \"echo hi\")\n");
    let ctx_dir = temp_context(&[("Dockerfile", "# only a comment\n")]);
    let ctx = ctx_dir.path();
    let out = pallet!()
        .args(["debug", "parse", ctx.join("Dockerfile").to_str().unwrap()])
        .output();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("file with no instructions"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn debug_graph_json_for_the_ml_example() {
    let ctx = repo::root().join("testdata/examples/ml-multistage");
    let out = pallet!()
        .args([
            "debug",
            "graph",
            "--format",
            "json",
            "--build-arg",
            "PYTHON_VERSION=3.11",
            ctx.to_str().unwrap(),
        ])
        .output();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    assert_eq!(v["target"], "runtime");
    assert_eq!(v["stages"], serde_json::json!(["deps", "model", "runtime"]));
    let vertices = v["vertices"].as_array().unwrap();
    let image = vertices
        .iter()
        .find(|x| x["op"]["source"]["image"].is_object())
        .unwrap();
    assert_eq!(
        image["op"]["source"]["image"]["reference"],
        "docker.io/library/python:3.11-slim"
    );
    let local = vertices
        .iter()
        .find(|x| x["op"]["source"]["local"].is_object())
        .unwrap();
    let excludes = local["op"]["source"]["local"]["exclude_patterns"]
        .as_array()
        .unwrap();
    assert!(
        excludes.iter().any(|p| p == "!data/labels.txt"),
        "the context's .dockerignore is applied: {excludes:?}"
    );
    assert_eq!(v["image"]["config"]["User"], "app");
    assert_eq!(
        v["image"]["config"]["Healthcheck"]["Interval"],
        30_000_000_000i64
    );
    // The root is the digest of the last vertex of the target.
    assert!(vertices.iter().any(|x| x["digest"] == v["root"]));

    let out = pallet!()
        .args([
            "debug",
            "graph",
            "--format",
            "json",
            "--target",
            "deps",
            ctx.to_str().unwrap(),
        ])
        .output();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["stages"], serde_json::json!(["deps"]));
}

#[test]
fn debug_graph_text_names_steps_like_buildkit() {
    let ctx = repo::root().join("testdata/examples/busybox-hello");
    let out = pallet!()
        .args(["debug", "graph", ctx.to_str().unwrap()])
        .output();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(
        s.contains("[build 1/3] FROM docker.io/library/busybox:latest"),
        "{s}"
    );
    assert!(
        s.contains("[stage-1 2/2] COPY --from=build /out/greeting.txt /greeting.txt"),
        "{s}"
    );
    assert!(
        text(&out.stderr).contains("not in the local store"),
        "unresolved base is reported"
    );
}

#[test]
fn dockerfile_specific_ignore_file_wins() {
    let ctx_dir = temp_context(&[
        ("app.Dockerfile", "FROM scratch\nCOPY . /app\n"),
        ("app.Dockerfile.dockerignore", "only-for-app\n"),
        (".dockerignore", "generic\n"),
    ]);
    let ctx = ctx_dir.path();
    let df = ctx.join("app.Dockerfile");
    let out = pallet!()
        .args([
            "debug",
            "graph",
            "--format",
            "json",
            "-f",
            df.to_str().unwrap(),
            ctx.to_str().unwrap(),
        ])
        .output();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(s.contains("only-for-app") && !s.contains("generic"), "{s}");
}

#[test]
fn errors_render_with_file_line_column_and_help() {
    let ctx_dir = temp_context(&[(
        "Dockerfile",
        "FROM alpine AS build\nCOPY --form=build /out /app\n",
    )]);
    let ctx = ctx_dir.path();
    let out = pallet!()
        .args(["debug", "graph", ctx.to_str().unwrap()])
        .output();
    assert_eq!(out.status.code(), Some(1));
    let e = text(&out.stderr);
    assert!(
        e.contains("error: unknown flag: --form (did you mean from?)"),
        "{e}"
    );
    assert!(e.contains("Dockerfile:2:6"), "{e}");
    assert!(
        e.contains("2 | COPY --form=build /out /app\n  |      ^"),
        "{e}"
    );

    let good_dir = temp_context(&[(
        "Dockerfile",
        "FROM scratch AS build\nFROM scratch AS final\n",
    )]);
    let good = good_dir.path();
    let out = pallet!()
        .args([
            "debug",
            "graph",
            "--target",
            "buidl",
            good.to_str().unwrap(),
        ])
        .output();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("target stage \"buidl\" could not be found"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        text(&out.stderr).contains("did you mean build?"),
        "{}",
        text(&out.stderr)
    );
    let out = pallet!()
        .args(["debug", "graph", "/definitely/not/here"])
        .output();
    assert!(text(&out.stderr).contains("is not a directory"));
    let out = pallet!()
        .args([
            "debug",
            "graph",
            "-f",
            "/no/such/Dockerfile",
            ctx.to_str().unwrap(),
        ])
        .output();
    assert!(text(&out.stderr).contains("cannot read Dockerfile /no/such/Dockerfile"));
    let out = pallet!()
        .args([
            "debug",
            "graph",
            "--platform",
            "linux/z80",
            ctx.to_str().unwrap(),
        ])
        .output();
    assert!(text(&out.stderr).contains("invalid --platform"));
}

#[test]
fn build_reports_dockerfile_errors_and_missing_bases_clearly() {
    let store_dir = temp_dir("pallet-cli-store");
    let store = store_dir.path().join("root");
    // Dockerfile errors come first, as errors, whoever runs it.
    let bad_dir = temp_context(&[("Dockerfile", "FROM scratch\nRUNN x\n")]);
    let bad = bad_dir.path();
    let out = pallet!()
        .args([
            "--root",
            store.to_str().unwrap(),
            "build",
            bad.to_str().unwrap(),
        ])
        .output();
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("unknown instruction: RUNN"));
    assert!(text(&out.stderr).contains("did you mean RUN?"));
    // Pushing needs somewhere to push to, and says so before building anything.
    let ok_dir = temp_context(&[("Dockerfile", "FROM scratch\n")]);
    let ok = ok_dir.path();
    let out = pallet!()
        .args([
            "--root",
            store.to_str().unwrap(),
            "build",
            "--push",
            ok.to_str().unwrap(),
        ])
        .output();
    assert!(
        text(&out.stderr).contains("--push needs a name"),
        "{}",
        text(&out.stderr)
    );
    let out = pallet!()
        .args([
            "--root",
            store.to_str().unwrap(),
            "build",
            "-o",
            "type=registry",
            ok.to_str().unwrap(),
        ])
        .output();
    assert!(
        text(&out.stderr).contains("type=image|registry needs a name"),
        "{}",
        text(&out.stderr)
    );
    if !testkit::gate::is_root() {
        let out = pallet!()
            .args([
                "--root",
                store.to_str().unwrap(),
                "build",
                ok.to_str().unwrap(),
            ])
            .output();
        assert!(
            text(&out.stderr).contains("needs root for now"),
            "{}",
            text(&out.stderr)
        );
        return;
    }
    // A base image that is neither in the store nor reachable: the error names it and the pull.
    let ctx_dir = temp_context(&[("Dockerfile", "FROM python:3.10-slim\nRUN true\n")]);
    let ctx = ctx_dir.path();
    let out = pallet!()
        .args([
            "--root",
            store.to_str().unwrap(),
            "build",
            ctx.to_str().unwrap(),
        ])
        .output();
    assert_eq!(out.status.code(), Some(1));
    let e = text(&out.stderr);
    assert!(
        e.contains("docker.io/library/python:3.10-slim is not in the local store"),
        "{e}"
    );
    // No internet here: the pull fails, and the error says where it went.
    assert!(e.contains("pulling it failed"), "{e}");
    assert!(e.contains("registry-1.docker.io"), "{e}");
}

#[test]
fn help_lists_docker_build_flags() {
    let out = pallet!().args(["build", "--help"]).output();
    let h = text(&out.stdout);
    for flag in [
        "--file",
        "--tag",
        "--build-arg",
        "--target",
        "--no-cache",
        "--progress",
        "--platform",
        "--output",
        "--push",
        "--pull",
        "--secret",
    ] {
        assert!(h.contains(flag), "missing {flag} in:\n{h}");
    }
}

/// `build --call targets|outline` (buildx's, BuildKit's outline_test.go and targets_test.go
/// through the binary): the text buildx prints, BuildKit's JSON with `format=json`, nothing
/// built or stored (no root, no store directory made), and a clear refusal of `check`.
#[test]
fn build_call_targets_and_outline_print_what_buildx_prints() {
    let ctx_dir = temp_context(&[(
        "Dockerfile",
        "# build compiles the app\nFROM alpine AS build\n# VERSION of the app\nARG VERSION=1.0\n\
         RUN --mount=type=secret,id=npmrc,required true\n\nFROM scratch\nCOPY --from=build /app /app\n",
    )]);
    let ctx = ctx_dir.path();
    let root = ctx.join("store");
    let call = |args: &[&str]| {
        pallet!()
            .root(root.clone())
            .args(["build", "--call"])
            .args(args)
            .arg(ctx)
            .output()
    };
    let out = call(&["targets"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "TARGET    DESCRIPTION\nbuild     compiles the app\n(default) \n"
    );
    let out = call(&["outline", "--build-arg", "VERSION=2"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "BUILD ARG   VALUE   DESCRIPTION\nVERSION     2       of the app\n\n\
         SECRET   REQUIRED\nnpmrc    true\n\n"
    );
    let out = call(&["outline,format=json", "--target", "build"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["name"], "build");
    assert_eq!(v["description"], "compiles the app");
    assert_eq!(v["args"][0]["name"], "VERSION");
    assert_eq!(v["args"][0]["value"], "1.0");
    assert_eq!(v["args"][0]["location"]["ranges"][0]["start"]["line"], 4);
    assert_eq!(v["secrets"][0]["required"], true);
    assert!(v["sources"][0].is_string(), "{v}");
    assert!(!root.exists(), "--call made a store");

    let out = call(&["check"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("--call check is not built yet"),
        "{}",
        text(&out.stderr)
    );
}
