//! Our own versions of the cases in BuildKit's frontend/dockerfile/
//! dockerfile_namedcontext_test.go that run without a registry's images (status of each in
//! testdata/parity/CHECKLIST.md). An image tagged in the store stands for BuildKit's alpine.

use crate::parity_kit::{assert_files, can_run, read, Kit};
use std::path::Path;

/// testNamedImageContext: `--build-context busybox=docker-image://IMAGE` replaces the image
/// a stage is FROM (its files and its ENV, PATH included), and `base=docker-image://IMAGE`
/// replaces a stage that is itself FROM another stage (#5578).
#[test]
fn image_replaces_an_image_and_a_stage() {
    if !can_run("parity_namedcontext") {
        return;
    }
    let kit = Kit::new();
    let ctx = kit.context(
        "alpine",
        "FROM busybox\nRUN mkdir -p /etc && echo 3.99.0 > /etc/alpine-release\n\
         ENV PATH=/foobar:$PATH\nENV FOOBAR=foobar\n",
        &[],
    );
    kit.ok(&ctx, &["-t", "localhost/fake/alpine:latest"]);
    let image = "docker-image://localhost/fake/alpine:latest";

    let ctx = kit.context(
        "replaced",
        "FROM busybox AS base\nRUN cat /etc/alpine-release > /out\n\
         RUN env | grep PATH > /env_path\nRUN env | grep FOOBAR > /env_foobar\n\
         FROM scratch\nCOPY --from=base /out /\nCOPY --from=base /env_path /\n\
         COPY --from=base /env_foobar /\n",
        &[],
    );
    let out = kit.local(&ctx, &["--build-context", &format!("busybox={image}")]);
    assert_eq!(read(&out, "out"), "3.99.0\n");
    assert_eq!(read(&out, "env_foobar").trim(), "FOOBAR=foobar");
    assert!(read(&out, "env_path").contains("/foobar:"));

    let ctx = kit.context(
        "stage",
        "FROM busybox AS parent\nFROM parent AS base\nRUN echo base > /out\n\
         FROM base\nRUN [ -f /etc/alpine-release ]\nRUN [ ! -f /out ]\n",
        &[],
    );
    kit.ok(&ctx, &["--build-context", &format!("base={image}")]);
}

/// testNamedImageContextScratch: `docker-image://scratch` replaces an image with nothing.
#[test]
fn scratch_replaces_an_image() {
    if !can_run("parity_namedcontext") {
        return;
    }
    let kit = Kit::new();
    let ctx = kit.context(
        "ctx",
        "FROM busybox AS build\nCOPY <<EOF /out\nhello world!\nEOF\n",
        &[],
    );
    let out = kit.local(&ctx, &["--build-context", "busybox=docker-image://scratch"]);
    assert_eq!(testkit::files::list_dir(&out), ["out"]);
    assert_files(&out, &[("out", "hello world!\n")]);
}

/// testNamedLocalContext: a directory replaces a stage, read after its own .dockerignore.
#[test]
fn directory_replaces_a_stage() {
    if !can_run("parity_namedcontext") {
        return;
    }
    let kit = Kit::new();
    let ctx = kit.context(
        "ctx",
        "FROM busybox AS base\nRUN cat /etc/alpine-release > /out\nFROM scratch\nCOPY --from=base /o* /\n",
        &[],
    );
    let dir = kit.context(
        "basedir",
        "",
        &[
            ("out", "dummy-result"),
            ("out2", "dummy-result"),
            (".dockerignore", "out2\n"),
        ],
    );
    let out = kit.local(
        &ctx,
        &["--build-context", &format!("base={}", dir.display())],
    );
    assert_files(&out, &[("out", "dummy-result")]);
    assert!(!out.join("out2").exists());
}

/// testNamedImageContextTimestamps: an image built FROM a named image context is created
/// after it (its own time, not the base's).
#[test]
fn an_image_from_a_named_image_has_its_own_time() {
    if !can_run("parity_namedcontext") {
        return;
    }
    let kit = Kit::new();
    let df = "FROM alpine\nRUN echo foo >> /test\n";
    let ctx = kit.context("base", "FROM busybox\nRUN echo foo >> /test\n", &[]);
    let base = kit.config(&ctx, &["-t", "localhost/stamps/base:latest"]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let ctx = kit.context("derived", df, &[]);
    let derived = kit.config(
        &ctx,
        &[
            "--build-context",
            "alpine=docker-image://localhost/stamps/base:latest",
        ],
    );
    let (b, d) = (
        base["created"].as_str().unwrap(),
        derived["created"].as_str().unwrap(),
    );
    // RFC 3339 in UTC with the same layout: later sorts after.
    assert!(d > b, "base {b}, derived {d}");
}

/// testEagerNamedContextLookup: named contexts of stages the target does not need are never
/// resolved (both name images that do not exist).
#[test]
fn unused_named_contexts_are_not_resolved() {
    if !can_run("parity_namedcontext") {
        return;
    }
    let kit = Kit::new();
    let ctx = kit.context("alpine", "FROM busybox\n", &[]);
    kit.ok(&ctx, &["-t", "localhost/fake/alpine:latest"]);
    let ctx = kit.context(
        "ctx",
        "FROM broken AS notused\nFROM localhost/fake/alpine AS base\nRUN echo \"base\" > /foo\n\
         FROM busybox AS otherstage\nFROM scratch\nCOPY --from=base /foo /foo\n",
        &[],
    );
    let out = kit.local(
        &ctx,
        &[
            "--build-context",
            "notused=docker-image://docker.io/library/nosuchimage:latest",
            "--build-context",
            "busybox=docker-image://docker.io/library/dontexist:latest",
        ],
    );
    assert_files(&out, &[("foo", "base\n")]);
}

/// testNamedOCILayoutContext: two stages replaced by the image of an OCI layout, by manifest
/// digest: its files (under its WORKDIR) and its ENV.
#[test]
fn oci_layout_replaces_stages() {
    if !can_run("parity_namedcontext") {
        return;
    }
    let kit = Kit::new();
    let ctx = kit.context(
        "oci",
        "FROM busybox:latest\nWORKDIR /test\nRUN sh -c \"echo -n first > out\"\n\
         RUN sh -c \"echo -n second > out2\"\nENV foo=bar\n",
        &[],
    );
    let layout = kit.store.path("layout");
    let spec = format!("type=oci,dest={},tar=false", layout.display());
    kit.ok(&ctx, &["-o", &spec]);
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let digest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let ctx = kit.context(
        "ctx",
        "FROM busybox AS base\nRUN cat /etc/alpine-release > out\n\
         FROM foo AS imported\nRUN echo -n $foo > outfoo\n\
         FROM scratch\nCOPY --from=base /test/o* /\nCOPY --from=imported /test/outfoo /\n",
        &[],
    );
    let named = format!("oci-layout://{}@{digest}", layout.display());
    let out = kit.local(
        &ctx,
        &[
            "--build-context",
            &format!("base={named}"),
            "--build-context",
            &format!("foo={named}"),
        ],
    );
    assert_files(
        &out,
        &[("out", "first"), ("out2", "second"), ("outfoo", "bar")],
    );
}

/// testNamedOCILayoutContextExport: an image written as an OCI layout by one build, named by
/// `--build-context NAME=oci-layout://DIR@DIGEST` as the target's base in the next, gives
/// the result its config (WORKDIR, ENV) and files.
#[test]
fn oci_layout_of_an_earlier_build_is_the_target_base() {
    if !can_run("parity_namedcontext") {
        return;
    }
    let kit = Kit::new();
    let ctx = kit.context(
        "oci-export",
        "\nFROM scratch\nWORKDIR /test\nENV foo=bar\n\t",
        &[],
    );
    let layout = kit.store.path("oci-export-layout");
    let spec = format!("type=oci,dest={},tar=false", layout.display());
    kit.ok(&ctx, &["-o", &spec]);
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 1);
    let digest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let ctx = kit.context("oci-import", "\nFROM nonexistent AS base\n", &[]);
    let named = format!("nonexistent=oci-layout://{}@{digest}", layout.display());
    let config = kit.config(&ctx, &["--build-context", &named]);
    assert_eq!(config["config"]["WorkingDir"], "/test", "{config}");
    let env = config["config"]["Env"].as_array().unwrap();
    assert!(env.iter().any(|e| e == "foo=bar"), "{config}");
    let out = kit.local(&ctx, &["--build-context", &named]);
    assert!(out.join("test").is_dir(), "the layout's files");
}

/// Which of `names` (files directly in `dir`) were opened while `f` ran, told by inotify.
fn opened_during(dir: &Path, names: &[&str], f: impl FnOnce()) -> Vec<String> {
    let c_dir = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: plain syscalls on a descriptor this function owns and closes; the buffer
    // outlives the read.
    unsafe {
        let fd = libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC);
        assert!(fd >= 0, "inotify_init1");
        let wd = libc::inotify_add_watch(fd, c_dir.as_ptr(), libc::IN_OPEN);
        assert!(wd >= 0, "inotify_add_watch {}", dir.display());
        f();
        let mut opened = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
            if n <= 0 {
                break;
            }
            let mut at = 0usize;
            let head = std::mem::size_of::<libc::inotify_event>();
            while at + head <= n as usize {
                let ev =
                    std::ptr::read_unaligned(buf.as_ptr().add(at).cast::<libc::inotify_event>());
                let name = &buf[at + head..at + head + ev.len as usize];
                let name = String::from_utf8_lossy(name)
                    .trim_end_matches('\0')
                    .to_string();
                if names.contains(&name.as_str()) && !opened.contains(&name) {
                    opened.push(name);
                }
                at += head + ev.len as usize;
            }
        }
        libc::close(fd);
        opened.sort();
        opened
    }
}

/// testNamedFilteredContext: BuildKit counts the bytes its session transfers from a named
/// local context; pallet reads the directory in place, so the equivalent is which files it
/// opens. A stage that copies or mounts one file of the context opens that file only (the
/// 4 MB `bar` beside it is never read or hashed); using the context as a base image reads it
/// all. The same with the named context replacing a stage of the same name.
#[test]
fn named_context_files_are_read_only_when_used() {
    if !can_run("parity_namedcontext") {
        return;
    }
    let kit = Kit::new();
    let base = "\nFROM scratch AS copy_from\nCOPY --from=foo /foo /\n\n\
                FROM busybox AS run_mount\nRUN --mount=from=foo,src=/foo,target=/in/foo cp /in/foo /foo\n\n\
                FROM foo AS image_source\nCOPY --from=busybox / /\nRUN cat /foo > /bar\n\n\
                FROM scratch AS all\nCOPY --link --from=copy_from /foo /foo.b\n\
                COPY --link --from=run_mount /foo /foo.c\nCOPY --link --from=image_source /bar /foo.d\n";
    let full = format!("\nFROM scratch AS foo\nCOPY <<EOF /foo\ntest\nEOF\n{base}");
    let mut n = 0;
    for (variant, dockerfile) in [("new", base.to_string()), ("replace", full)] {
        let ctx = kit.context(&format!("filtered-{variant}"), &dockerfile, &[]);
        for (target, want) in [
            ("run_mount", &["foo"][..]),
            ("copy_from", &["foo"][..]),
            ("image_source", &["bar", "foo"][..]),
            ("all", &["bar", "foo"][..]),
        ] {
            // A fresh directory each time: nothing remembered of an earlier build's reads.
            n += 1;
            let foo = kit.store.path(&format!("foo-{n}"));
            std::fs::create_dir_all(&foo).unwrap();
            std::fs::write(foo.join("foo"), "foo").unwrap();
            std::fs::write(foo.join("bar"), vec![0u8; 4096 * 1000]).unwrap();
            let named = format!("foo={}", foo.display());
            let opened = opened_during(&foo, &["foo", "bar"], || {
                kit.ok(&ctx, &["--target", target, "--build-context", &named]);
            });
            assert_eq!(opened, want, "{variant} {target}");
        }
    }
}
