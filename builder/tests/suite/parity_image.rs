//! Our own versions of the cases in BuildKit's frontend/dockerfile/dockerfile_image_test.go
//! and dockerfile_history_test.go (status of each in testdata/parity/CHECKLIST.md).

use crate::parity_kit::{can_run, Kit};
use serde_json::{json, Value};

/// testPullScratch (the Dockerfile part), testDockerfileScratchConfig: an image FROM scratch
/// with only config instructions has no layers, one history entry, a PATH, os, architecture
/// and a working directory; an image FROM it adds one layer and keeps its labels.
#[test]
fn scratch_images() {
    if !can_run("parity_image") {
        return;
    }
    let kit = Kit::new();
    let ctx = kit.context("env", "FROM scratch\nENV foo=bar\n", &[]);
    let c = kit.config(&ctx, &[]);
    assert_ne!(c["os"], "");
    assert!(c["os"].is_string() && c["architecture"].is_string(), "{c}");
    assert_ne!(c["architecture"], "");
    assert!(
        c["config"]["WorkingDir"]
            .as_str()
            .is_some_and(|w| !w.is_empty()),
        "{c}"
    );
    assert_eq!(c["rootfs"]["type"], "layers");
    assert_eq!(c["rootfs"]["diff_ids"].as_array().map_or(0, Vec::len), 0);
    let history = c["history"].as_array().unwrap();
    assert_eq!(history.len(), 1, "{history:?}");
    assert!(history[0]["created_by"]
        .as_str()
        .unwrap()
        .contains("ENV foo=bar"));
    assert_eq!(history[0]["empty_layer"], true);
    let env = c["config"]["Env"].as_array().unwrap();
    assert!(env.contains(&json!("foo=bar")), "{env:?}");
    assert!(
        env.iter().any(|e| e.as_str().unwrap().starts_with("PATH=")),
        "{env:?}"
    );

    let ctx = kit.context("label", "FROM scratch\nLABEL foo=bar\n", &[]);
    kit.ok(&ctx, &["-t", "docker.io/moby/testpullscratch:latest"]);
    let ctx = kit.context(
        "from-it",
        "FROM docker.io/moby/testpullscratch:latest\nLABEL bar=baz\nCOPY foo .\n",
        &[("foo", "foo-contents")],
    );
    let c = kit.config(&ctx, &[]);
    assert_eq!(c["rootfs"]["diff_ids"].as_array().unwrap().len(), 1);
    assert_eq!(c["config"]["Labels"], json!({"foo": "bar", "bar": "baz"}));
}

/// testOCILayoutMultiname (#5572): an OCI output with two names lists the manifest twice,
/// once per name, in the directory and in the tar alike.
#[test]
fn oci_layout_with_two_names() {
    if !can_run("parity_image") {
        return;
    }
    let kit = Kit::new();
    let ctx = kit.context("ctx", "FROM scratch\nCOPY <<EOF /foo\nhello\nEOF\n", &[]);
    let dir = kit.store.path("layout");
    let spec = format!(
        "type=oci,dest={},tar=false,\"name=org/repo:tag1,org/repo:tag2\"",
        dir.display()
    );
    kit.ok(&ctx, &["-o", &spec]);
    let index: Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let tar = kit.store.path("layout.tar");
    let spec = format!(
        "type=oci,dest={},\"name=org/repo:tag1,org/repo:tag2\"",
        tar.display()
    );
    kit.ok(&ctx, &["-o", &spec]);
    let mut archive = tar::Archive::new(std::fs::File::open(&tar).unwrap());
    let mut from_tar = None;
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path().unwrap().to_str() == Some("index.json") {
            from_tar = Some(serde_json::from_reader::<_, Value>(&mut entry).unwrap());
        }
    }
    for idx in [index, from_tar.expect("index.json in the tar")] {
        let m = idx["manifests"].as_array().unwrap();
        assert_eq!(m.len(), 2, "{idx}");
        for key in ["digest", "platform", "mediaType", "size"] {
            assert_eq!(m[0][key], m[1][key], "{key}");
        }
        for (i, tag) in ["tag1", "tag2"].iter().enumerate() {
            let a = &m[i]["annotations"];
            assert_eq!(
                a["io.containerd.image.name"],
                format!("docker.io/org/repo:{tag}")
            );
            assert_eq!(a["org.opencontainers.image.ref.name"], *tag);
        }
    }
}

/// testExportedHistory, testExportedHistoryFlattenArgs (#5505): the history of the last stage
/// only, with each instruction, its empty_layer and a time; EXPOSE's ports sorted; ARGs
/// redeclared keep their place in the `RUN |N` prefix, with the last value.
#[test]
fn exported_history() {
    if !can_run("parity_image") {
        return;
    }
    let kit = Kit::new();
    let ctx = kit.context(
        "history",
        "FROM busybox AS base\nENV foo=bar\nCOPY foo /foo2\n\
         FROM busybox\nLABEL lbl=val\nCOPY --from=base foo2 foo3\nWORKDIR /\n\
         RUN echo bar > foo4\nRUN [\"ls\"]\nEXPOSE 2375 5000 1234/udp\n",
        &[("foo", "contents0")],
    );
    let c = kit.config(&ctx, &[]);
    let history = c["history"].as_array().unwrap();
    let base = 1; // the kit's busybox has one history entry (BuildKit's busybox two).
    assert_eq!(history.len(), base + 6, "{history:?}");
    assert_eq!(c["rootfs"]["diff_ids"].as_array().unwrap().len(), base + 3);
    let expected = [
        ("lbl=val", true),
        ("COPY foo2 foo3", false),
        ("WORKDIR /", true),
        ("echo bar > foo4", false),
        ("RUN ls", false),
        ("EXPOSE [1234/udp 2375/tcp 5000/tcp]", true),
    ];
    for (i, (text, empty)) in expected.iter().enumerate() {
        let h = &history[base + i];
        assert!(h["created_by"].as_str().unwrap().contains(text), "{i}: {h}");
        assert_eq!(h["empty_layer"].as_bool().unwrap_or(false), *empty, "{h}");
        assert!(h["created"].is_string(), "{h}");
    }

    let ctx = kit.context(
        "flatten",
        "FROM busybox\nARG foo=bar\nARG bar=123\nARG foo=bar2\nRUN ls /etc/\n",
        &[],
    );
    let c = kit.config(&ctx, &[]);
    let history: Vec<&str> = c["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["created_by"].as_str().unwrap())
        .collect();
    let first = history
        .iter()
        .position(|h| *h == "ARG foo=bar")
        .expect("ARG foo=bar in the history");
    assert!(first > 0);
    assert_eq!(history.len(), first + 4, "{history:?}");
    assert!(history[first + 1].contains("ARG bar=123"));
    assert!(history[first + 2].contains("ARG foo=bar2"));
    let run = history[first + 3];
    assert!(run.contains("ls /etc/"), "{run}");
    assert!(!run.contains("ARG foo=bar"), "{run}");
    assert!(run.contains("RUN |2 foo=bar2 bar=123 "), "{run}");
}
