//! Our own versions of the cases in BuildKit's frontend/dockerfile/dockerfile_add_test.go
//! (status of each in testdata/parity/CHECKLIST.md). The URL cases use add_url's HTTP server
//! on 127.0.0.1.

use crate::add_url::Server;
use crate::parity_kit::{assert_files, can_run, read, Kit};
use std::io::Write;

/// A ustar header with owner 0:0 and mtime 0 written out (Go's archive/tar writes them; the
/// tar crate reads an empty numeric field as an error).
fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h
}

/// A tar of regular files (0644).
fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = header(tar::EntryType::Regular, 0o644, data.len() as u64);
        b.append_data(&mut h, name, *data).unwrap();
    }
    b.into_inner().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

fn dir_header() -> tar::Header {
    header(tar::EntryType::Directory, 0o755, 0)
}

/// testDockerfileAddArchive, testDockerfileAddArchiveWildcard: local tars (plain and gzip)
/// are unpacked, `--unpack=false` and COPY leave them whole, a wildcard unpacks each match;
/// from a URL the archive stays whole unless `--unpack=true`, and keeps the name given.
#[test]
fn archives_local_and_from_urls() {
    if !can_run("parity_add") {
        return;
    }
    let kit = Kit::new();
    let tar = tar_of(&[("foo", b"content0")]);
    let tgz = gzip(&tar);
    let ctx = kit.context("plain", "FROM scratch\nADD t.tar /\n", &[]);
    std::fs::write(ctx.join("t.tar"), &tar).unwrap();
    assert_files(&kit.local(&ctx, &[]), &[("foo", "content0")]);

    for (name, df, unpacked) in [
        ("gz", "FROM scratch\nADD t.tar.gz /\n", true),
        (
            "no-unpack",
            "FROM scratch\nADD --unpack=false t.tar.gz /\n",
            false,
        ),
        ("copy", "FROM scratch\nCOPY t.tar.gz /\n", false),
    ] {
        let ctx = kit.context(name, df, &[]);
        std::fs::write(ctx.join("t.tar.gz"), &tgz).unwrap();
        let out = kit.local(&ctx, &[]);
        if unpacked {
            assert_files(&out, &[("foo", "content0")]);
        } else {
            assert!(!out.join("foo").exists(), "{name}: unpacked");
            assert_eq!(std::fs::read(out.join("t.tar.gz")).unwrap(), tgz, "{name}");
        }
    }

    let ctx = kit.context("wildcard", "FROM scratch\nADD *.tar /dest\n", &[]);
    std::fs::write(ctx.join("t.tar"), &tar).unwrap();
    std::fs::write(ctx.join("b.tar"), tar_of(&[("bar", b"content1")])).unwrap();
    assert_files(
        &kit.local(&ctx, &[]),
        &[("dest/foo", "content0"), ("dest/bar", "content1")],
    );

    let server = Server::start();
    server.put("/t.tar.gz", &tgz, Some("\"e1\""), None);
    let url = server.url("/t.tar.gz");
    let ctx = kit.context("url", &format!("FROM scratch\nADD {url} /\n"), &[]);
    let out = kit.local(&ctx, &[]);
    assert_eq!(std::fs::read(out.join("t.tar.gz")).unwrap(), tgz);
    let ctx = kit.context(
        "url-unpack",
        &format!("FROM scratch\nADD --unpack=true {url} /dest/\n"),
        &[],
    );
    assert_files(&kit.local(&ctx, &[]), &[("dest/foo", "content0")]);
    // moby/buildkit#386: the name given wins over the URL's.
    let ctx = kit.context(
        "url-rename",
        &format!("FROM scratch\nADD {url} /newname.tar.gz\n"),
        &[],
    );
    let out = kit.local(&ctx, &[]);
    assert_eq!(std::fs::read(out.join("newname.tar.gz")).unwrap(), tgz);
}

/// testDockerfileAddArchiveWithImpliedParentDir (moby#53257), and
/// testDockerfileAddArchiveThroughAbsoluteSymlink (moby#53258): an archive whose entries
/// go through `var/run`, an absolute symlink to `/run` made by an earlier ADD, lands in /run
/// of the image (a hard link included), not on the host.
#[test]
fn archives_with_implied_parents_and_absolute_symlinks() {
    if !can_run("parity_add") {
        return;
    }
    let kit = Kit::new();
    let mut b = tar::Builder::new(Vec::new());
    let mut h = dir_header();
    b.append_data(&mut h, "etc/dnf/", std::io::empty()).unwrap();
    let mut h = header(tar::EntryType::Regular, 0o644, 8);
    b.append_data(&mut h, "etc/dnf/dnf.conf", &b"content0"[..])
        .unwrap();
    let ctx = kit.context("implied", "FROM scratch\nADD t.tar.gz /\n", &[]);
    std::fs::write(ctx.join("t.tar.gz"), gzip(&b.into_inner().unwrap())).unwrap();
    assert_files(&kit.local(&ctx, &[]), &[("etc/dnf/dnf.conf", "content0")]);

    let mut rootfs = tar::Builder::new(Vec::new());
    for d in ["run/", "var/"] {
        let mut h = dir_header();
        rootfs.append_data(&mut h, d, std::io::empty()).unwrap();
    }
    let mut h = header(tar::EntryType::Symlink, 0o777, 0);
    rootfs.append_link(&mut h, "var/run", "/run").unwrap();
    let mut payload = tar::Builder::new(Vec::new());
    for d in [
        "var/run/act/",
        "var/run/act/actions/",
        "var/run/act/actions/broad/",
        "var/run/act/actions/broad/.git/",
    ] {
        let mut h = dir_header();
        payload.append_data(&mut h, d, std::io::empty()).unwrap();
    }
    let head = b"ref: refs/heads/main\n";
    let mut h = header(tar::EntryType::Regular, 0o644, head.len() as u64);
    payload
        .append_data(&mut h, "var/run/act/actions/broad/.git/HEAD", &head[..])
        .unwrap();
    let mut h = header(tar::EntryType::Link, 0o644, 0);
    payload
        .append_link(
            &mut h,
            "var/run/act/actions/broad/.git/HEAD.link",
            "var/run/act/actions/broad/.git/HEAD",
        )
        .unwrap();
    let ctx = kit.context(
        "through-symlink",
        "FROM scratch\nADD rootfs.tar /\nADD payload.tar /\n",
        &[],
    );
    std::fs::write(ctx.join("rootfs.tar"), rootfs.into_inner().unwrap()).unwrap();
    std::fs::write(ctx.join("payload.tar"), payload.into_inner().unwrap()).unwrap();
    let out = kit.local(&ctx, &[]);
    let file = out.join("run/act/actions/broad/.git/HEAD");
    let link = out.join("run/act/actions/broad/.git/HEAD.link");
    assert_eq!(std::fs::read(&file).unwrap(), head);
    assert_eq!(std::fs::read(&link).unwrap(), head);
    use std::os::unix::fs::MetadataExt;
    let (f, l) = (
        std::fs::metadata(&file).unwrap(),
        std::fs::metadata(&link).unwrap(),
    );
    assert_eq!((f.dev(), f.ino()), (l.dev(), l.ino()), "a hard link");
    assert!(!std::path::Path::new("/run/act/actions/broad/.git/HEAD.link").exists());
}

/// testDockerfileAddChownArchive, testDockerfileAddChownExpand: `ADD --chown` gives the
/// owner to what an archive unpacks and to the directory it creates, and expands ENV and ARG.
#[test]
fn add_chown() {
    if !can_run("parity_add") {
        return;
    }
    let kit = Kit::new();
    let ctx = kit.context(
        "archive",
        "FROM busybox\nADD --chown=100:200 t.tar /out/\n\
         RUN [ \"$(stat -c '%u:%g' /out/foo)\" = 100:200 ] && [ \"$(stat -c '%u:%g' /out)\" = 100:200 ] \
             && [ \"$(cat /out/foo)\" = content0 ]\n",
        &[],
    );
    std::fs::write(ctx.join("t.tar"), tar_of(&[("foo", b"content0")])).unwrap();
    kit.ok(&ctx, &[]);

    let ctx = kit.context(
        "expand",
        "FROM busybox\nARG group\nENV owner 1000\nADD --chown=${owner}:${group} foo /\n\
         RUN [ \"$(stat -c \"%u %G\" /foo)\" == \"1000 nobody\" ]\n",
        &[("foo", "foo-contents")],
    );
    kit.ok(&ctx, &["--build-arg", "group=nobody"]);
}

/// testAddURLChmod, testAddChecksum: `--chmod` on downloads (octal, from an ARG), and
/// `--checksum` (literal, from ENV, mismatched, unsupported or unknown algorithms, no
/// algorithm, a local source).
#[test]
fn url_chmod_and_checksums() {
    if !can_run("parity_add") {
        return;
    }
    let kit = Kit::new();
    let server = Server::start();
    server.put("/foo", b"content1", Some("\"e2\""), None);
    let url = server.url("/foo");
    let ctx = kit.context(
        "chmod",
        &format!(
            "FROM busybox AS build\n\
             ADD --chmod=644 {url} /tmp/foo1\nADD --chmod=755 {url} /tmp/foo2\n\
             ADD --chmod=0413 {url} /tmp/foo3\nARG mode\nADD --chmod=${{mode}} {url} /tmp/foo4\n\
             RUN stat -c \"%04a\" /tmp/foo1 >> /dest && stat -c \"%04a\" /tmp/foo2 >> /dest && \
                 stat -c \"%04a\" /tmp/foo3 >> /dest && stat -c \"%04a\" /tmp/foo4 >> /dest\n\
             FROM scratch\nCOPY --from=build /dest /dest\n"
        ),
        &[],
    );
    assert_eq!(
        read(&kit.local(&ctx, &["--build-arg", "mode=400"]), "dest"),
        "0644\n0755\n0413\n0400\n"
    );

    let sum = testkit::digest::sha256(b"content1");
    let ok = [
        format!("FROM scratch\nADD --checksum={sum} {url} /tmp/foo\n"),
        format!("FROM scratch\nENV DIGEST={sum}\nENV LINK={url}\nADD --checksum=${{DIGEST}} ${{LINK}} /tmp/foo\n"),
    ];
    for (i, df) in ok.iter().enumerate() {
        let ctx = kit.context(&format!("sum-ok-{i}"), df, &[]);
        assert_files(&kit.local(&ctx, &[]), &[("tmp/foo", "content1")]);
    }
    let hex = sum.trim_start_matches("sha256:");
    let empty = testkit::digest::sha256(b"");
    for (i, (df, why)) in [
        (format!("FROM scratch\nADD --checksum={empty} {url} /tmp/foo\n"), "mismatch"),
        (
            format!("FROM scratch\nADD --checksum=md5:7e55db001d319a94b0b713529a756623 {url} /tmp/foo\n"),
            "unsupported digest algorithm",
        ),
        (format!("FROM scratch\nADD --checksum=unknown:{hex} {url} /tmp/foo\n"), "unsupported digest algorithm"),
        (format!("FROM scratch\nADD --checksum={hex} {url} /tmp/foo\n"), "invalid checksum digest format"),
        (format!("FROM scratch\nADD --checksum={} foo /tmp/foo\n", testkit::digest::sha256(b"local file")), "checksum requires HTTP(S) or Git sources"),
    ]
    .iter()
    .enumerate()
    {
        let ctx = kit.context(&format!("sum-bad-{i}"), df, &[("foo", "local file")]);
        let err = kit.error(&ctx, &[]);
        assert!(err.contains(why), "{df}: {err}");
    }
}
