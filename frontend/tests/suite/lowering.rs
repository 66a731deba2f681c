//! Lowering semantics against BuildKit's: ARG scoping, config accumulation, history lines,
//! stage resolution, ONBUILD, mounts, digests, and the errors users hit.

use frontend::diagnostic::FrontendError;
use frontend::lower::{
    lower, ImageResolver, LowerOptions, Lowered, MemoryResolver, NamedContext, Offline,
    ResolvedImage,
};
use frontend::parser::parse;
use graph::image::{Config, Image};
use graph::{Exec, FileAction, MountKind, Op, Source};
use std::collections::BTreeMap;

fn opts(args: &[(&str, &str)], target: Option<&str>) -> LowerOptions {
    LowerOptions {
        target: target.map(str::to_string),
        build_args: args
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        ..LowerOptions::default()
    }
}

fn try_lower(src: &str, o: &LowerOptions, r: &dyn ImageResolver) -> Result<Lowered, FrontendError> {
    let df = parse(src.as_bytes()).map_err(FrontendError::from)?;
    lower(&df, o, r)
}

fn ok(src: &str) -> Lowered {
    try_lower(src, &LowerOptions::default(), &Offline)
        .unwrap_or_else(|e| panic!("{}", e.render("Dockerfile", src)))
}

fn ok_with(src: &str, o: &LowerOptions, r: &dyn ImageResolver) -> Lowered {
    try_lower(src, o, r).unwrap_or_else(|e| panic!("{}", e.render("Dockerfile", src)))
}

fn err(src: &str) -> FrontendError {
    match try_lower(src, &LowerOptions::default(), &Offline) {
        Ok(_) => panic!("expected an error for:\n{src}"),
        Err(e) => e,
    }
}

fn execs(l: &Lowered) -> Vec<&Exec> {
    l.graph
        .vertices
        .iter()
        .filter_map(|v| match &v.op {
            Op::Exec(e) => Some(e),
            _ => None,
        })
        .collect()
}

fn history(l: &Lowered) -> Vec<String> {
    l.image
        .history
        .iter()
        .map(|h| h.created_by.clone())
        .collect()
}

fn images(l: &Lowered) -> Vec<String> {
    l.graph
        .vertices
        .iter()
        .filter_map(|v| match &v.op {
            Op::Source(Source::Image { reference, .. }) => Some(reference.clone()),
            _ => None,
        })
        .collect()
}

fn base(reference: &str, config: Config) -> MemoryResolver {
    let mut r = MemoryResolver::default();
    let image = Image {
        os: "linux".into(),
        architecture: "amd64".into(),
        config,
        ..Image::default()
    };
    r.0.insert(
        reference.into(),
        ResolvedImage {
            reference: format!("{reference}@sha256:{}", "a".repeat(64)),
            image,
        },
    );
    r
}

#[test]
fn global_args_expand_from_and_build_args_override() {
    let src = "ARG PY=3.10\nARG BASE=python:${PY}-slim\nFROM ${BASE}\nRUN true\n";
    assert_eq!(images(&ok(src)), vec!["docker.io/library/python:3.10-slim"]);
    let l = ok_with(src, &opts(&[("PY", "3.11")], None), &Offline);
    assert_eq!(images(&l), vec!["docker.io/library/python:3.11-slim"]);
    let l = ok_with(src, &opts(&[("BASE", "alpine:3.19")], None), &Offline);
    assert_eq!(images(&l), vec!["docker.io/library/alpine:3.19"]);
}

#[test]
fn global_args_are_not_in_stage_scope_unless_redeclared() {
    let l = ok("ARG V=1\nFROM scratch\nRUN echo $V\n");
    assert!(!execs(&l)[0].env.iter().any(|e| e.starts_with("V=")));
    assert_eq!(history(&l), vec!["RUN /bin/sh -c echo $V # buildkit"]);

    let l = ok("ARG V=1\nFROM scratch\nARG V\nRUN echo $V\n");
    assert!(execs(&l)[0].env.contains(&"V=1".to_string()));
    assert_eq!(
        history(&l),
        vec!["ARG V=1", "RUN |1 V=1 /bin/sh -c echo $V # buildkit"]
    );

    let l = ok_with(
        "ARG V=1\nFROM scratch\nARG V\nRUN echo $V\n",
        &opts(&[("V", "9")], None),
        &Offline,
    );
    assert!(execs(&l)[0].env.contains(&"V=9".to_string()));
}

#[test]
fn stage_arg_defaults_expand_and_env_wins_in_expansion() {
    let l = ok("FROM scratch\nARG A=x\nARG B=${A}y\nENV C=$B\nARG D\nRUN echo\n");
    assert_eq!(l.image.config.env_get("C"), Some("xy"));
    assert_eq!(
        history(&l)[..4],
        ["ARG A=x", "ARG B=xy", "ENV C=xy", "ARG D"]
    );
    assert_eq!(
        history(&l)[4],
        "RUN |3 A=x B=xy D= /bin/sh -c echo # buildkit"
    );
    // ENV after ARG of the same name: the ENV value is what later words see.
    let l = ok("FROM scratch\nARG V=arg\nENV V=env\nWORKDIR /$V\n");
    assert_eq!(l.image.config.working_dir, "/env");
}

#[test]
fn platform_args_are_global_and_need_redeclaring_in_a_stage() {
    let src = "FROM scratch\nARG TARGETARCH\nARG BUILDPLATFORM\nWORKDIR /$TARGETARCH/$TARGETOS\n";
    let l = ok(src);
    let host = frontend::lower::platform::host();
    assert_eq!(
        l.image.config.working_dir,
        format!("/{}", host.architecture)
    );
    let o = LowerOptions {
        platform: Some(frontend::lower::platform::parse("linux/arm64").unwrap()),
        ..LowerOptions::default()
    };
    let l = ok_with(src, &o, &Offline);
    assert_eq!(l.image.config.working_dir, "/arm64");
    assert_eq!(l.image.architecture, "arm64");
    let l = ok("ARG TARGETOS\nFROM alpine:${TARGETOS}\n");
    assert_eq!(images(&l), vec!["docker.io/library/alpine:linux"]);
}

#[test]
fn base_image_config_seeds_env_workdir_user() {
    let cfg = Config {
        env: vec!["PATH=/usr/local/bin:/usr/bin".into(), "LANG=C.UTF-8".into()],
        working_dir: "/srv".into(),
        user: "nobody".into(),
        ..Config::default()
    };
    let r = base("docker.io/library/python:3.10-slim", cfg);
    let l = ok_with(
        "FROM python:3.10-slim\nENV PATH=/opt/venv/bin:$PATH\nWORKDIR app\nRUN id\n",
        &LowerOptions::default(),
        &r,
    );
    assert_eq!(
        l.image.config.env,
        vec!["PATH=/opt/venv/bin:/usr/local/bin:/usr/bin", "LANG=C.UTF-8"]
    );
    assert_eq!(l.image.config.working_dir, "/srv/app");
    let e = execs(&l)[0];
    assert_eq!((e.cwd.as_str(), e.user.as_str()), ("/srv/app", "nobody"));
    assert!(
        images(&l)[0].ends_with(&format!("@sha256:{}", "a".repeat(64))),
        "the base is pinned by digest"
    );
    assert!(l
        .warnings
        .iter()
        .all(|w| !w.message.contains("not in the local store")));
}

#[test]
fn unresolved_base_lowers_with_empty_config_and_says_so() {
    let l = ok("FROM python:3.10-slim\nRUN true\n");
    assert_eq!(
        l.image.config.env,
        vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
    );
    assert!(l.warnings.iter().any(|w| w
        .message
        .contains("docker.io/library/python:3.10-slim is not in the local store")));
}

#[test]
fn scratch_gets_default_path_and_root_workdir() {
    let l = ok("FROM scratch\nCOPY a /a\n");
    assert_eq!(
        l.image.config.env,
        vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
    );
    assert_eq!(l.image.config.working_dir, "/");
    assert_eq!(l.image.os, "linux");
}

#[test]
fn cmd_entrypoint_interplay() {
    let r = base(
        "docker.io/library/app:latest",
        Config {
            cmd: Some(vec!["python3".into()]),
            ..Config::default()
        },
    );
    // ENTRYPOINT resets an inherited CMD...
    let l = ok_with(
        "FROM app\nENTRYPOINT [\"serve\"]\n",
        &LowerOptions::default(),
        &r,
    );
    assert_eq!(l.image.config.entrypoint, Some(vec!["serve".to_string()]));
    assert_eq!(l.image.config.cmd, None);
    // ...but not one set in this stage, before or after.
    let l = ok_with(
        "FROM app\nCMD [\"--port\", \"80\"]\nENTRYPOINT [\"serve\"]\n",
        &LowerOptions::default(),
        &r,
    );
    assert_eq!(
        l.image.config.cmd,
        Some(vec!["--port".to_string(), "80".to_string()])
    );
    let l = ok("FROM scratch\nENTRYPOINT serve --fast\nCMD [\"x\"]\n");
    assert_eq!(
        l.image.config.entrypoint,
        Some(vec![
            "/bin/sh".to_string(),
            "-c".into(),
            "serve --fast".into()
        ])
    );
    assert_eq!(
        history(&l),
        vec![
            "ENTRYPOINT [\"/bin/sh\" \"-c\" \"serve --fast\"]",
            "CMD [\"x\"]"
        ]
    );
    assert!(l.image.config.args_escaped);
}

#[test]
fn shell_instruction_changes_shell_form() {
    let l = ok("FROM scratch\nSHELL [\"/bin/bash\", \"-eo\", \"pipefail\", \"-c\"]\nRUN echo a | cat\nCMD run.sh\n");
    assert_eq!(
        execs(&l)[0].args,
        vec!["/bin/bash", "-eo", "pipefail", "-c", "echo a | cat"]
    );
    assert_eq!(
        l.image.config.cmd,
        Some(vec![
            "/bin/bash".into(),
            "-eo".into(),
            "pipefail".into(),
            "-c".into(),
            "run.sh".into()
        ])
    );
    assert_eq!(history(&l)[0], "SHELL [/bin/bash -eo pipefail -c]");
}

#[test]
fn config_instructions_and_their_history() {
    let src = r#"FROM scratch
MAINTAINER Jane <jane@example.com>
LABEL a=1 "b c"="d e"
ENV X=1 Y="two words"
EXPOSE 80 443/tcp 53/udp 8000-8001
VOLUME ["/data", "/logs"]
USER 1000:1000
STOPSIGNAL SIGINT
HEALTHCHECK --interval=1m30s --timeout=5s --start-period=2s --retries=4 CMD curl -f http://localhost/ || exit 1
ONBUILD RUN echo triggered
"#;
    let l = ok(src);
    let c = &l.image.config;
    assert_eq!(l.image.author.as_deref(), Some("Jane <jane@example.com>"));
    assert_eq!(c.labels.get("b c").map(String::as_str), Some("d e"));
    assert_eq!(c.env_get("Y"), Some("two words"));
    let ports: Vec<&str> = c.exposed_ports.keys().map(String::as_str).collect();
    assert_eq!(
        ports,
        vec!["443/tcp", "53/udp", "80/tcp", "8000/tcp", "8001/tcp"]
    );
    assert_eq!(c.volumes.keys().collect::<Vec<_>>(), vec!["/data", "/logs"]);
    assert_eq!(c.user, "1000:1000");
    assert_eq!(c.stop_signal, "SIGINT");
    let h = c.healthcheck.as_ref().unwrap();
    assert_eq!(
        h.test,
        vec!["CMD-SHELL", "curl -f http://localhost/ || exit 1"]
    );
    assert_eq!(
        (h.interval, h.timeout, h.start_period, h.retries),
        (90_000_000_000, 5_000_000_000, 2_000_000_000, 4)
    );
    assert_eq!(c.on_build, vec!["RUN echo triggered"]);
    assert_eq!(
        history(&l),
        vec![
            "MAINTAINER Jane <jane@example.com>",
            "LABEL a=1 b c=d e",
            "ENV X=1 Y=two words",
            "EXPOSE [443/tcp 53/udp 80/tcp 8000/tcp 8001/tcp]",
            "VOLUME [/data /logs]",
            "USER 1000:1000",
            "STOPSIGNAL SIGINT",
            "HEALTHCHECK {Test:[CMD-SHELL curl -f http://localhost/ || exit 1] Interval:1m30s Timeout:5s StartPeriod:2s StartInterval:0s Retries:4}",
        ]
    );
    assert!(l
        .image
        .history
        .iter()
        .all(|h| h.empty_layer && h.comment == "buildkit.dockerfile.v0"));
}

#[test]
fn healthcheck_none_and_exec_form() {
    let l = ok("FROM scratch\nHEALTHCHECK CMD [\"/bin/check\", \"-q\"]\n");
    assert_eq!(
        l.image.config.healthcheck.as_ref().unwrap().test,
        vec!["CMD", "/bin/check", "-q"]
    );
    let l = ok("FROM scratch\nHEALTHCHECK NONE\n");
    assert_eq!(
        l.image.config.healthcheck.as_ref().unwrap().test,
        vec!["NONE"]
    );
}

#[test]
fn workdir_creates_a_layer_and_resolves_relative_paths() {
    let l = ok(
        "FROM scratch\nWORKDIR /app\nWORKDIR src\nWORKDIR ../lib\nUSER app\nWORKDIR /home/app\n",
    );
    assert_eq!(l.image.config.working_dir, "/home/app");
    assert_eq!(l.image.history[2].created_by, "WORKDIR /app/lib");
    let h = &l.image.history;
    assert_eq!(h[0].created_by, "WORKDIR /app");
    assert!(!h[0].empty_layer, "WORKDIR makes the directory: a layer");
    let mkdirs: Vec<(String, Option<String>)> = l
        .graph
        .vertices
        .iter()
        .filter_map(|v| match &v.op {
            Op::File(f) => match &f.actions[0] {
                FileAction::Mkdir { path, owner, .. } => Some((path.clone(), owner.clone())),
                _ => None,
            },
            _ => None,
        })
        .collect();
    assert!(
        mkdirs.contains(&("/home/app".into(), Some("app".into()))),
        "mkdir runs as the USER: {mkdirs:?}"
    );
}

#[test]
fn copy_history_paths_and_flags() {
    let l = ok("FROM scratch\nWORKDIR /app\nCOPY --chown=app:app --chmod=0755 requirements.txt src/ ./\nADD --chmod=644 https://example.com/x.tar.gz /opt/\n");
    let h = history(&l);
    assert_eq!(
        h[1],
        "COPY --chown=app:app --chmod=0755 requirements.txt src/ ./ # buildkit"
    );
    assert_eq!(
        h[2],
        "ADD --chmod=644 https://example.com/x.tar.gz /opt/ # buildkit"
    );
    let copy = l
        .graph
        .vertices
        .iter()
        .find(|v| v.meta.name.contains("COPY"))
        .unwrap();
    let Op::File(f) = &copy.op else {
        panic!("COPY is a file op")
    };
    let FileAction::Copy(c) = &f.actions[0] else {
        panic!()
    };
    assert_eq!(
        (
            c.src.as_str(),
            c.dest.as_str(),
            c.owner.as_deref(),
            c.mode.as_deref()
        ),
        ("/requirements.txt", "/app/", Some("app:app"), Some("0755"))
    );
    assert!(c.allow_wildcard && c.follow_symlinks && !c.attempt_unpack);
    assert_eq!(
        copy.meta.context_paths["context"],
        vec!["/requirements.txt", "/src"]
    );
}

#[test]
fn add_unpacks_local_archives_and_checks_checksums() {
    let l = ok("FROM scratch\nADD vendor.tar.gz /opt/\n");
    let v = l
        .graph
        .vertices
        .iter()
        .find(|v| v.meta.name.contains("ADD"))
        .unwrap();
    let Op::File(f) = &v.op else { panic!() };
    let FileAction::Copy(c) = &f.actions[0] else {
        panic!()
    };
    assert!(c.attempt_unpack);
    let sum = format!("sha256:{}", "0".repeat(64));
    ok(&format!(
        "FROM scratch\nADD --checksum={sum} https://example.com/a.bin /a\n"
    ));
    assert_eq!(
        err("FROM scratch\nADD --checksum=sha256:00 local.bin /a\n").message,
        "checksum requires HTTP(S) or Git sources"
    );
    assert_eq!(
        err("FROM scratch\nCOPY https://example.com/a /a\n").message,
        "source can't be a URL for COPY"
    );
}

#[test]
fn copy_heredoc_source_is_expanded_unless_quoted() {
    let l = ok("FROM scratch\nARG NAME=world\nCOPY <<EOF /hello\nhello $NAME\nEOF\nCOPY <<'EOF' /raw\nhello $NAME\nEOF\n");
    let files: Vec<String> = l
        .graph
        .vertices
        .iter()
        .filter_map(|v| match &v.op {
            Op::File(f) => match &f.actions[0] {
                FileAction::Mkfile { data, .. } => Some(data.clone()),
                _ => None,
            },
            _ => None,
        })
        .collect();
    assert_eq!(files, vec!["hello world\n", "hello $NAME\n"]);
    assert_eq!(history(&l)[1], "COPY <<EOF /hello # buildkit");
}

#[test]
fn run_heredocs() {
    let l = ok("FROM scratch\nRUN <<EOF\necho one\necho two\nEOF\n");
    assert_eq!(
        execs(&l)[0].args,
        vec!["/bin/sh", "-c", "echo one\necho two\n"]
    );
    let l = ok("FROM scratch\nRUN <<EOF\n#!/usr/bin/env python3\nprint('hi')\nEOF\n");
    let e = execs(&l)[0];
    assert_eq!(e.args, vec!["/bin/sh", "-c", "/dev/pipes/EOF"]);
    assert_eq!(e.mounts[0].target, "/dev/pipes/");
    let l = ok("FROM scratch\nRUN python3 <<EOF > /out\nprint(1)\nEOF\n");
    assert_eq!(execs(&l)[0].args[2], "python3 <<EOF > /out\nprint(1)\nEOF");
}

#[test]
fn run_mounts() {
    let src = "FROM scratch AS src\nFROM scratch\nWORKDIR /w\nARG CACHE=/root/.cache\nRUN --mount=type=cache,target=$CACHE/pip,sharing=locked \\\n    --mount=type=bind,from=src,source=/x,target=x \\\n    --mount=type=secret,id=token,env=TOKEN \\\n    --mount=type=tmpfs,target=/tmp \\\n    --mount=type=bind,source=req.txt,target=/req.txt \\\n    --network=none pip install\n";
    let l = ok(src);
    let e = execs(&l)[0];
    let kinds: Vec<(&str, &MountKind)> = e
        .mounts
        .iter()
        .map(|m| (m.target.as_str(), &m.kind))
        .collect();
    assert!(
        matches!(kinds[0], ("/root/.cache/pip", MountKind::Cache { id, sharing, .. }) if id == "/root/.cache/pip" && sharing == "locked")
    );
    assert!(
        matches!(kinds[1], ("/w/x", MountKind::Input { source, readonly: true, .. }) if source == "/x")
    );
    assert!(
        matches!(kinds[2], ("", MountKind::Secret { id, env: Some(env), .. }) if id == "token" && env == "TOKEN")
    );
    assert!(matches!(kinds[3], ("/tmp", MountKind::Tmpfs { .. })));
    assert_eq!(e.network, graph::Network::None);
    let run = l
        .graph
        .vertices
        .iter()
        .find(|v| matches!(v.op, Op::Exec(_)))
        .unwrap();
    assert_eq!(run.meta.context_paths["context"], vec!["/req.txt"]);
    assert_eq!(
        run.meta.expanded_from.get("CACHE").map(String::as_str),
        Some("/root/.cache")
    );
}

#[test]
fn mount_errors_point_at_the_mount() {
    // No target means WORKDIR, which is `/` here: BuildKit refuses that.
    let e = err("FROM scratch\nRUN --mount=type=cache echo\n");
    assert_eq!(e.message, "invalid mount target \"/\"");
    assert_eq!(e.needle.as_deref(), Some("--mount=type=cache"));
    let e = err("FROM scratch\nRUN --mount=type=bind,from=$X,target=/x echo\n");
    assert!(e.message.contains("doesn't support variable expansion"));
    let e = err("FROM scratch\nRUN --network=bridge echo\n");
    assert_eq!(e.message, "unsupported network mode \"bridge\"");
}

#[test]
fn secrets_and_proxies_stay_out_of_definition_and_history() {
    let o = opts(&[("HTTPS_PROXY", "http://proxy:3128")], None);
    let l = ok_with(
        "FROM scratch\nRUN --mount=type=secret,id=aws echo\n",
        &o,
        &Offline,
    );
    let run = l
        .graph
        .vertices
        .iter()
        .find(|v| matches!(v.op, Op::Exec(_)))
        .unwrap();
    // Both cases, as BuildKit's exec op sets them (proxyEnvList).
    assert_eq!(
        run.meta.proxy_env,
        vec![
            "HTTPS_PROXY=http://proxy:3128",
            "https_proxy=http://proxy:3128"
        ]
    );
    let json = serde_json::to_string(&run.op).unwrap();
    assert!(
        !json.contains("proxy:3128"),
        "proxy env is not part of the op: {json}"
    );
    assert_eq!(history(&l), vec!["RUN /bin/sh -c echo # buildkit"]);
    assert!(
        !l.warnings
            .iter()
            .any(|w| w.message.contains("not consumed")),
        "proxy args need no ARG"
    );
    // Changing the proxy does not change the digest.
    let l2 = ok_with(
        "FROM scratch\nRUN --mount=type=secret,id=aws echo\n",
        &opts(&[("HTTPS_PROXY", "http://other:1")], None),
        &Offline,
    );
    assert_eq!(l.root, l2.root);
}

#[test]
fn target_selects_stages_and_unneeded_ones_are_not_lowered() {
    let src = "FROM alpine AS a\nRUN echo a\nFROM busybox AS b\nRUN echo b\nFROM scratch AS c\nCOPY --from=a /x /x\n";
    let l = ok_with(src, &opts(&[], Some("c")), &Offline);
    assert_eq!(l.stages, vec!["a", "c"]);
    assert!(!images(&l).iter().any(|i| i.contains("busybox")));
    let l = ok_with(src, &opts(&[], Some("B")), &Offline);
    assert_eq!(l.stages, vec!["b"]);
    let e = try_lower(src, &opts(&[], Some("bb")), &Offline).unwrap_err();
    // BuildKit's text (dockerfile_core_test.go asserts it for "bulid").
    assert_eq!(
        e.message,
        "target stage \"bb\" could not be found (did you mean b?)"
    );
    let e = try_lower(
        "FROM scratch AS build\nFROM scratch\n",
        &opts(&[], Some("bulid")),
        &Offline,
    )
    .unwrap_err();
    assert_eq!(
        e.message,
        "target stage \"bulid\" could not be found (did you mean build?)"
    );
    let e = try_lower(src, &opts(&[], Some("zzzzzz")), &Offline).unwrap_err();
    assert_eq!(e.message, "target stage \"zzzzzz\" could not be found");
    assert_eq!(e.hint.as_deref(), Some("the named stages are: a, b, c"));
}

#[test]
fn copy_from_by_name_index_and_image() {
    let l = ok("FROM alpine AS build\nRUN make\nFROM scratch\nCOPY --from=0 /out /a\nCOPY --from=build /out /b\nCOPY --from=nginx:1.25 /etc/nginx /c\n");
    let im = images(&l);
    assert!(
        im.contains(&"docker.io/library/nginx:1.25".to_string())
            && im.contains(&"docker.io/library/alpine:latest".to_string()),
        "{im:?}"
    );
    assert_eq!(l.stages, vec!["build", "stage-1"]);
    let e = try_lower(
        "FROM scratch AS a\nCOPY --from=b /x /x\nFROM scratch AS b\n",
        &opts(&[], Some("a")),
        &Offline,
    )
    .unwrap_err();
    assert_eq!(
        e.message,
        "cannot copy from stage \"b\", it needs to be defined before current stage \"a\""
    );
    assert_eq!(e.span.start_line, 2);
    let e = err("ARG S=a\nFROM scratch AS a\nFROM scratch\nCOPY --from=$S /x /x\n");
    assert!(e
        .message
        .starts_with("variable expansion is not supported for --from"));
    assert_eq!(
        err("FROM scratch\nCOPY --from=5 /x /x\n").message,
        "invalid stage index 5"
    );
}

#[test]
fn from_another_stage_inherits_its_state() {
    let l = ok(
        "FROM scratch AS base\nENV A=1\nWORKDIR /srv\nUSER app\nARG V=7\nFROM base\nRUN echo $A\n",
    );
    let e = execs(&l)[0];
    assert_eq!((e.cwd.as_str(), e.user.as_str()), ("/srv", "app"));
    assert!(e.env.contains(&"A=1".to_string()) && e.env.contains(&"V=7".to_string()));
    assert_eq!(
        l.image.history.last().unwrap().created_by,
        "RUN |1 V=7 /bin/sh -c echo $A # buildkit"
    );
}

#[test]
fn onbuild_triggers_from_a_base_image_and_a_base_stage() {
    let r = base(
        "docker.io/library/onbuild-base:latest",
        Config {
            on_build: vec!["RUN echo from-image".into()],
            ..Config::default()
        },
    );
    let l = ok_with(
        "FROM onbuild-base\nRUN echo mine\n",
        &LowerOptions::default(),
        &r,
    );
    let args: Vec<String> = execs(&l).iter().map(|e| e.args[2].clone()).collect();
    assert_eq!(args, vec!["echo from-image", "echo mine"]);
    assert!(
        l.image.config.on_build.is_empty(),
        "triggers do not carry over"
    );

    let l = ok("FROM alpine AS tool\nRUN make\nFROM scratch AS base\nONBUILD COPY --from=tool /bin/tool /bin/tool\nFROM base\n");
    assert!(
        l.stages.contains(&"tool".to_string()),
        "a trigger's --from pulls its stage in: {:?}",
        l.stages
    );
    assert!(l
        .graph
        .vertices
        .iter()
        .any(|v| v.meta.name.contains("ONBUILD COPY")));
    assert!(l.image.config.on_build.is_empty());
}

#[test]
fn onbuild_rules() {
    assert_eq!(
        err("FROM scratch\nONBUILD ONBUILD RUN x\n").message,
        "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"
    );
    assert_eq!(
        err("FROM scratch\nONBUILD FROM alpine\n").message,
        "FROM isn't allowed as an ONBUILD trigger"
    );
    assert_eq!(
        err("FROM scratch\nONBUILD MAINTAINER me\n").message,
        "MAINTAINER isn't allowed as an ONBUILD trigger"
    );
}

#[test]
fn digests_are_deterministic_and_identical_ops_run_once() {
    let src = "FROM alpine AS a\nRUN apk add curl\nFROM alpine AS b\nRUN apk add curl\nFROM scratch\nCOPY --from=a /x /a\nCOPY --from=b /x /b\n";
    let l1 = ok(src);
    let l2 = ok(src);
    assert_eq!(l1.root, l2.root);
    assert_eq!(execs(&l1).len(), 1, "the two identical RUNs are one vertex");
    // A build arg that a step does not use leaves its digest alone; one it uses changes it.
    let s = "FROM alpine\nARG A\nARG B\nRUN echo $A\n";
    let base = ok_with(s, &opts(&[("A", "1"), ("B", "1")], None), &Offline);
    let b_changed = ok_with(s, &opts(&[("A", "1"), ("B", "2")], None), &Offline);
    let a_changed = ok_with(s, &opts(&[("A", "2"), ("B", "1")], None), &Offline);
    assert_ne!(base.root, a_changed.root);
    // B is in the RUN's environment (ARGs are), so BuildKit's key changes with it too.
    assert_ne!(base.root, b_changed.root);
    assert!(base.root.starts_with("blake3:") && base.root.len() == 7 + 64);
}

#[test]
fn dockerignore_patterns_are_part_of_the_context_source() {
    let mut o = LowerOptions::default();
    let a = ok_with("FROM scratch\nCOPY . /app\n", &o, &Offline);
    o.dockerignore = vec!["*.md".into()];
    let b = ok_with("FROM scratch\nCOPY . /app\n", &o, &Offline);
    assert_ne!(a.root, b.root);
}

#[test]
fn source_date_epoch_sets_history_times() {
    let l = ok_with(
        "FROM scratch\nENV A=1\n",
        &opts(&[("SOURCE_DATE_EPOCH", "1700000000")], None),
        &Offline,
    );
    assert_eq!(l.epoch, Some(1_700_000_000));
    assert_eq!(
        l.image.history[0].created.as_deref(),
        Some("2023-11-14T22:13:20Z")
    );
    assert!(try_lower(
        "FROM scratch\n",
        &opts(&[("SOURCE_DATE_EPOCH", "yesterday")], None),
        &Offline
    )
    .is_err());
}

#[test]
fn lint_warnings_and_check_directive() {
    let l = ok("FROM python:3 as Builder\nrun echo\nCMD python app.py\nCMD python app.py\nMAINTAINER me\nENV K v\nWORKDIR rel\nARG API_TOKEN\n");
    let rules: Vec<&str> = l.warnings.iter().filter_map(|w| w.rule).collect();
    for r in [
        "FromAsCasing",
        "StageNameCasing",
        "ConsistentInstructionCasing",
        "JSONArgsRecommended",
        "MultipleInstructionsDisallowed",
        "MaintainerDeprecated",
        "LegacyKeyValueFormat",
        "WorkdirRelativePath",
        "SecretsUsedInArgOrEnv",
    ] {
        assert!(rules.contains(&r), "{r} missing from {rules:?}");
    }
    let l = ok("# check=skip=JSONArgsRecommended\nFROM scratch\nCMD run\n");
    assert!(l
        .warnings
        .iter()
        .all(|w| w.rule != Some("JSONArgsRecommended")));
    let e = err("# check=error=true\nFROM scratch\nCMD run\n");
    assert!(e.message.contains("JSONArgsRecommended"), "{}", e.message);
    let l = ok("FROM scratch\nCOPY $NOPE /x\n");
    assert!(l
        .warnings
        .iter()
        .any(|w| w.rule == Some("UndefinedVar")
            && w.message == "Usage of undefined variable '$NOPE'"));
}

#[test]
fn unused_build_args_are_reported() {
    let l = ok_with(
        "FROM scratch\nARG USED\n",
        &opts(&[("USED", "1"), ("TYPO", "2")], None),
        &Offline,
    );
    assert!(l
        .warnings
        .iter()
        .any(|w| w.message == "One or more build-args [TYPO] were not consumed"));
}

#[test]
fn errors_name_line_and_say_what_to_do() {
    let cases: &[(&str, &str, usize)] = &[
        (
            "FROM scratch\nCOPY --form=x a b\n",
            "unknown flag: --form (did you mean from?)",
            2,
        ),
        ("FROM a b\n", "FROM requires either one or three arguments", 1),
        ("FROM scratch\nRUNN echo\n", "unknown instruction: RUNN", 2),
        ("FROM scratch\nCOPY onlyone\n", "COPY requires at least two arguments, but only one was provided. Destination could not be determined", 2),
        ("FROM scratch\nCOPY --chmod=999 a b\n", "invalid chmod parameter: '999'. it should be octal string and between 0 and 07777", 2),
        ("FROM scratch AS 1st\n", "invalid name for build stage: \"1st\", name can't start with a number or contain symbols", 1),
        ("FROM scratch\nSHELL /bin/bash -c\n", "SHELL requires the arguments to be in JSON form", 2),
        ("FROM scratch\nHEALTHCHECK --interval=1x CMD true\n", "time: unknown unit \"x\" in duration \"1x\"", 2),
        ("FROM scratch\nHEALTHCHECK --retries=-1 CMD true\n", "--retries cannot be negative (-1)", 2),
        ("FROM scratch\nHEALTHCHECK FOO\n", "Unknown type \"FOO\" in HEALTHCHECK (try CMD)", 2),
        ("FROM scratch\nSTOPSIGNAL SIGFOO\n", "Invalid signal: SIGFOO", 2),
        ("FROM scratch\nEXPOSE 80/xyz\n", "invalid proto: xyz", 2),
        ("ARG B\nFROM $B\n", "base name ($B) should not be blank", 2),
        ("FROM Alpine\n", "failed to parse stage name \"Alpine\": ", 1),
        ("FROM scratch\nENV A=${B:?required}\n", "failed to process \"${B:?required}\": B: required", 2),
        // BuildKit splits ENV words on blanks before expansion, so this is a syntax error there too.
        ("FROM scratch\nENV A=${B:?must be set}\n", "Syntax error - can't find = in \"be\". Must be of the form: name=value", 2),
        ("FROM scratch\nUSER\n", "USER requires exactly one argument", 2),
        ("RUN echo\n", "no build stage in current context: RUN comes before any FROM", 1),
    ];
    for (src, msg, line) in cases {
        let e = err(src);
        assert!(
            e.message.starts_with(msg),
            "for {src:?}: got {:?}, want {msg:?}",
            e.message
        );
        assert_eq!(e.span.start_line, *line, "for {src:?}");
        let rendered = e.render("Dockerfile", src);
        assert!(
            rendered.contains(&format!("Dockerfile:{line}:")),
            "{rendered}"
        );
    }
    let e = err("FROM scratch\nCOPY --form=x a b\n");
    assert!(e.message.ends_with("(did you mean from?)"), "{}", e.message);
    assert!(e
        .render("Dockerfile", "FROM scratch\nCOPY --form=x a b\n")
        .contains("Dockerfile:2:6"));
    let e = err("# just a comment\nARG X=1\n");
    assert_eq!(e.message, "dockerfile contains no stages to build");
}

#[test]
fn syntax_directive_names_the_builtin_frontend() {
    let l = ok("# syntax=docker/dockerfile:1.7\nFROM scratch\n");
    assert!(
        l.warnings.iter().all(|w| !w.message.contains("built-in")),
        "{:?}",
        l.warnings
    );
    let l = ok("# syntax=mycorp/custom-frontend:2\nFROM scratch\n");
    let w = l
        .warnings
        .iter()
        .find(|w| w.message.contains("built-in Dockerfile frontend"))
        .expect("a warning");
    assert_eq!(w.span.map(|s| s.start_line), Some(1));
}

#[test]
fn escape_directive_applies_to_expansion() {
    // With backtick as the escape character, `$ is a literal dollar and \ is an ordinary char.
    let l = ok("# escape=`\nFROM scratch\nENV A=1\nENV B=`$A C=c:\\dir\\$A\n");
    assert_eq!(l.image.config.env_get("B"), Some("$A"));
    assert_eq!(l.image.config.env_get("C"), Some("c:\\dir\\1"));
}

#[test]
fn single_unnamed_stage_is_stage_0_with_plain_progress_names() {
    let l = ok("FROM alpine\nRUN echo\n");
    assert_eq!(l.target, "stage-0");
    assert_eq!(l.stages, vec!["stage-0"]);
    let run = l
        .graph
        .vertices
        .iter()
        .find(|v| matches!(v.op, Op::Exec(_)))
        .unwrap();
    assert_eq!(run.meta.name, "[2/2] RUN echo");
}

#[test]
fn mounts_default_to_workdir_and_refuse_root() {
    let l = ok("FROM scratch\nWORKDIR /src\nRUN --mount=ro --mount=type=cache,target=.cache ls\n");
    let e = execs(&l)[0];
    assert_eq!(
        e.mounts[0].target, "/src",
        "a bind mount with no target lands on WORKDIR"
    );
    assert!(
        matches!(&e.mounts[1].kind, MountKind::Cache { id, .. } if id == ".cache"),
        "{:?}",
        e.mounts[1]
    );
    assert_eq!(e.mounts[1].target, "/src/.cache");
    assert_eq!(
        err("FROM scratch\nRUN --mount=type=bind,target=/ ls\n").message,
        "invalid mount target \"/\""
    );
    assert_eq!(
        err("FROM scratch\nRUN --mount=type=tmpfs,target=. ls\n").message,
        "invalid mount target \"/\""
    );
}

#[test]
fn duplicate_stage_names_resolve_to_the_last_definition() {
    let l = ok("FROM alpine AS a\nFROM busybox AS a\nFROM scratch\nCOPY --from=a /x /x\n");
    let im = images(&l);
    assert_eq!(im, vec!["docker.io/library/busybox:latest"], "{im:?}");
    assert!(l
        .warnings
        .iter()
        .any(|w| w.rule == Some("DuplicateStageName")));
    let l = ok("FROM alpine AS a\nFROM busybox AS a\nFROM a\nRUN true\n");
    assert_eq!(images(&l), vec!["docker.io/library/busybox:latest"]);
}

#[test]
fn platform_lint_like_buildkit() {
    let l = ok("FROM --platform=linux/amd64 alpine AS build-amd64\n");
    assert!(l
        .warnings
        .iter()
        .all(|w| w.rule != Some("FromPlatformFlagConstDisallowed")));
    let l = ok("FROM --platform=linux/amd64 alpine AS build\n");
    assert!(l
        .warnings
        .iter()
        .any(|w| w.rule == Some("FromPlatformFlagConstDisallowed")));
    let l = ok("FROM --platform=$BUILDPLATFORM alpine AS build\n");
    assert!(l
        .warnings
        .iter()
        .all(|w| w.rule != Some("FromPlatformFlagConstDisallowed")));
}

#[test]
fn reference_errors_say_which_character_is_wrong() {
    let e = err("FROM debian:%%BASE%%-slim\n");
    assert!(e
        .message
        .starts_with("failed to parse stage name \"debian:%%BASE%%-slim\""));
    assert_eq!(
        e.hint.as_deref(),
        Some("'%' cannot appear in an image reference (letters, digits and . _ - / : @ can)")
    );
}

/// BuildKit's ssh mounts (llb ExecOp.Marshal): the Nth ssh mount without a target is
/// /run/buildkit/ssh_agent.N (N counts ssh mounts only), SSH_AUTH_SOCK is the first ssh
/// mount's target unless the stage sets it, and the image config never sees it.
#[test]
fn ssh_mounts_are_numbered_and_set_ssh_auth_sock() {
    let l = ok("FROM scratch\nRUN --mount=type=cache,target=/c --mount=type=ssh,target=/a.sock --mount=type=ssh,id=gh,required,mode=0660,uid=1 true\nRUN --mount=type=ssh true\nENV SSH_AUTH_SOCK=/mine\nRUN --mount=type=ssh true\n");
    let e = execs(&l);
    let ssh: Vec<(&str, &MountKind)> = e[0]
        .mounts
        .iter()
        .filter(|m| matches!(m.kind, MountKind::Ssh { .. }))
        .map(|m| (m.target.as_str(), &m.kind))
        .collect();
    assert!(
        matches!(ssh[0], ("/a.sock", MountKind::Ssh { id, required: false, mode: 0o600, .. }) if id == "default")
    );
    assert!(
        matches!(ssh[1], ("/run/buildkit/ssh_agent.1", MountKind::Ssh { id, required: true, mode: 0o660, uid: 1, gid: 0 }) if id == "gh")
    );
    let auth = |e: &graph::Exec| -> Vec<String> {
        e.env
            .iter()
            .filter(|v| v.starts_with("SSH_AUTH_SOCK="))
            .cloned()
            .collect()
    };
    assert_eq!(auth(e[0]), vec!["SSH_AUTH_SOCK=/a.sock"]);
    assert_eq!(e[1].mounts[0].target, "/run/buildkit/ssh_agent.0");
    assert_eq!(auth(e[1]), vec!["SSH_AUTH_SOCK=/run/buildkit/ssh_agent.0"]);
    assert_eq!(auth(e[2]), vec!["SSH_AUTH_SOCK=/mine"]);
    let config = serde_json::to_string(&l.image).unwrap();
    assert!(
        !config.contains("ssh_agent") && !config.contains("a.sock"),
        "{config}"
    );
}

fn with_local(name: &str, excludes: &[&str]) -> LowerOptions {
    let mut o = LowerOptions::default();
    o.named_contexts.insert(
        name.into(),
        NamedContext::Local {
            exclude_patterns: excludes.iter().map(|s| s.to_string()).collect(),
        },
    );
    o
}

fn local_sources(l: &Lowered) -> Vec<(String, Vec<String>)> {
    l.graph
        .vertices
        .iter()
        .filter_map(|v| match &v.op {
            Op::Source(Source::Local {
                name,
                exclude_patterns,
            }) => Some((name.clone(), exclude_patterns.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn copy_from_a_local_named_context_reads_it_in_place() {
    let src = "FROM scratch\nCOPY --from=libs /a.txt /b/ /dst/\nCOPY app.py /\n";
    let l = ok_with(src, &with_local("libs", &["*.log"]), &Offline);
    // The directory is a source of its own, with its own .dockerignore patterns (the main
    // context keeps its name, `context`).
    let mut sources = local_sources(&l);
    sources.sort();
    assert_eq!(
        sources,
        vec![
            ("context".to_string(), vec![]),
            ("libs".to_string(), vec!["*.log".to_string()])
        ]
    );
    let copies: Vec<_> = l
        .graph
        .vertices
        .iter()
        .filter(|v| matches!(v.op, Op::File(_)))
        .collect();
    assert_eq!(copies.len(), 2);
    // Only the paths each step reads, by source: what goes into each step's cache key.
    assert_eq!(
        copies[0].meta.context_paths,
        BTreeMap::from([(
            "libs".to_string(),
            vec!["/a.txt".to_string(), "/b".to_string()]
        )])
    );
    assert_eq!(
        copies[1].meta.context_paths,
        BTreeMap::from([("context".to_string(), vec!["/app.py".to_string()])])
    );
    assert_eq!(
        images(&l),
        Vec::<String>::new(),
        "no image is pulled for libs"
    );
}

#[test]
fn from_a_local_named_context_copies_the_directory_and_has_an_empty_config() {
    let src = "FROM libs\nRUN ls\nCMD [\"x\"]\n";
    let l = ok_with(src, &with_local("libs", &[]), &Offline);
    let load = l
        .graph
        .vertices
        .iter()
        .find(|v| matches!(v.op, Op::File(_)))
        .expect("the directory is copied into a layer");
    assert_eq!(load.meta.name, "[context libs] load from client");
    assert_eq!(load.meta.context_paths["libs"], vec!["/"]);
    let Op::File(f) = &load.op else {
        unreachable!()
    };
    assert!(!f.on_input, "the directory is the whole tree");
    // BuildKit's emptyImage: WORKDIR / and the default PATH, nothing else.
    assert_eq!(l.image.config.working_dir, "/");
    assert_eq!(
        l.image.config.env,
        vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
    );
    // The FROM counts as step 1 of 2, as in BuildKit.
    let run = l
        .graph
        .vertices
        .iter()
        .find(|v| matches!(v.op, Op::Exec(_)))
        .unwrap();
    assert_eq!(run.meta.name, "[2/2] RUN ls");
    assert_eq!(run.inputs[0], load.digest);
}

#[test]
fn a_named_context_overrides_an_image_and_replaces_a_stage_of_its_name() {
    // `FROM alpine` with --build-context alpine=DIR: no image, the directory.
    let l = ok_with(
        "FROM alpine\nRUN true\n",
        &with_local("alpine", &[]),
        &Offline,
    );
    assert!(images(&l).is_empty(), "{:?}", images(&l));
    assert_eq!(local_sources(&l), vec![("alpine".to_string(), vec![])]);
    // The key is the familiar name without :latest, as BuildKit's dockerui matches it.
    let l = ok_with(
        "FROM docker.io/library/alpine:latest\nRUN true\n",
        &with_local("alpine", &[]),
        &Offline,
    );
    assert!(images(&l).is_empty());
    // A stage of the context's name is replaced: its commands are not run.
    let src = "FROM busybox AS deps\nRUN make\nFROM scratch\nCOPY --from=deps /out /out\n";
    let l = ok_with(src, &with_local("deps", &[]), &Offline);
    assert!(execs(&l).is_empty(), "the replaced stage's RUN is gone");
    assert!(images(&l).is_empty(), "{:?}", images(&l));
    let copy = l
        .graph
        .vertices
        .iter()
        .find(|v| matches!(v.op, Op::File(_)))
        .unwrap();
    assert_eq!(copy.meta.context_paths["deps"], vec!["/out"]);
}

#[test]
fn a_named_context_called_context_does_not_collide_with_the_main_one() {
    let src = "FROM scratch\nCOPY --from=context /a /a\nCOPY b /b\n";
    let l = ok_with(src, &with_local("context", &[]), &Offline);
    let mut sources = local_sources(&l);
    sources.sort();
    assert_eq!(
        sources,
        vec![
            ("_context".to_string(), vec![]),
            ("context".to_string(), vec![])
        ]
    );
}

/// The error texts BuildKit's own integration tests match (dockerfile_mount_test.go,
/// dockerfile_cmd_test.go, dockerfile_core_test.go): pipelines and users grep for them.
#[test]
fn error_texts_buildkit_tests_assert() {
    let cases = [
        (
            "FROM scratch\nRUN --mont=target=/mytmp,type=tmpfs /bin/true\n",
            &["unknown flag: --mont", "did you mean mount?"][..],
        ),
        (
            "FROM scratch\nRUN --mount=typ=tmpfs /bin/true\n",
            &["unexpected key 'typ'", "did you mean type?"][..],
        ),
        (
            "FROM scratch\nRUN --mount=type=tmp /bin/true\n",
            &["unsupported mount type \"tmp\"", "did you mean tmpfs?"][..],
        ),
        (
            "FROM scratch\nFNTRYPOINT [\"/bin/true\"]\n",
            &[
                "unknown instruction: FNTRYPOINT",
                "did you mean ENTRYPOINT?",
            ][..],
        ),
    ];
    for (src, wanted) in cases {
        let e = err(src);
        for w in wanted {
            assert!(
                e.message.contains(w),
                "{src:?}: {:?} lacks {w:?}",
                e.message
            );
        }
    }
}

/// `--no-cache-filter` (BuildKit's `no-cache` option with stage names): the RUN steps of the
/// named stages, matched in any case, skip the cache; other stages' steps and COPY do not.
#[test]
fn no_cache_filter_marks_the_named_stages_run_steps() {
    let src = "FROM scratch AS s0\nRUN a\nFROM scratch AS S1\nCOPY x /x\nRUN b\n\
               FROM scratch\nCOPY --from=s0 /a /a\nCOPY --from=s1 /b /b\n";
    let o = LowerOptions {
        no_cache_stages: vec!["s1".into()],
        ..LowerOptions::default()
    };
    let l = ok_with(src, &o, &Offline);
    let marked: Vec<(&str, bool)> = l
        .graph
        .vertices
        .iter()
        .filter(|v| !matches!(v.op, Op::Source(_)))
        .map(|v| (v.meta.name.as_str(), v.meta.ignore_cache))
        .collect();
    assert!(
        marked.contains(&("[s1 2/2] RUN b", true)) && marked.contains(&("[s0 1/1] RUN a", false)),
        "{marked:?}"
    );
    assert_eq!(
        marked.iter().filter(|(_, m)| *m).count(),
        1,
        "only s1's RUN: {marked:?}"
    );
}
