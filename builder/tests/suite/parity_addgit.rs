//! Our own versions of the cases in BuildKit's frontend/dockerfile/dockerfile_addgit_test.go
//! and exclude_patterns_test.go (status of each in testdata/parity/CHECKLIST.md): `ADD <git>`
//! from repositories served over git's "dumb" HTTP protocol (the files of `.git` after
//! `git update-server-info`, as BuildKit's tests serve them with Go's file server), with
//! tags, `--checksum`, `--keep-git-dir`, `--chown`, the URL's query string, submodules, and
//! `COPY/ADD --exclude` over a context and over a repository.

use crate::add_url::Server;
use crate::parity_kit::{can_run, read, Kit};
use std::path::Path;
use testkit::files::{all_files, write};
use testkit::git::{command, git};
use testkit::{require, Need::*};

fn can_run_git(what: &str) -> bool {
    can_run(what) && require(what, &[Tool("git")])
}

/// Serves `repo/.git` at `URL/.git` (the files as they are now: call again after a change).
fn serve(server: &Server, repo: &Path) {
    git(repo, &["update-server-info"]);
    for file in all_files(&repo.join(".git")) {
        let rel = file
            .strip_prefix(repo)
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        server.put(
            &format!("/{rel}"),
            &std::fs::read(&file).unwrap(),
            None,
            None,
        );
    }
}

/// A repository with three commits of `foo` ("foo of vN"), each tagged v0.0.N; returns the
/// commits of v0.0.2 and v0.0.3.
fn tagged_repo(dir: &Path, object_format: &str) -> (String, String) {
    std::fs::create_dir_all(dir).unwrap();
    git(
        dir,
        &["init", "-q", &format!("--object-format={object_format}")],
    );
    for tag in ["v0.0.1", "v0.0.2", "v0.0.3"] {
        write(&dir.join("foo"), format!("foo of {tag}\n"));
        git(dir, &["add", "foo"]);
        git(dir, &["commit", "-q", "-m", tag]);
        git(dir, &["tag", tag]);
    }
    (
        git(dir, &["rev-parse", "v0.0.2"]),
        git(dir, &["rev-parse", "v0.0.3"]),
    )
}

/// testAddGitSHA1, testAddGitSHA256 (testAddGit): a tag, then `--keep-git-dir --chown
/// --checksum` with the ref from build args (owners 4242:8484 as user 4242, a clean `git
/// status` of the kept repository), `--checksum` without `--keep-git-dir` (no `.git`), a ref
/// already fetched, a commit as both ref and checksum; a checksum of another commit and one
/// that is not hex fail with BuildKit's words.
#[test]
fn add_git_tags_checksums_and_kept_git_dirs() {
    if !can_run_git("parity_addgit") {
        return;
    }
    let kit = Kit::new();
    for format in ["sha1", "sha256"] {
        let repo = kit.store.path(&format!("repo-{format}"));
        let (v2, v3) = tagged_repo(&repo, format);
        let server = Server::start();
        serve(&server, &repo);
        let url = server.url("/.git");

        let ctx = kit.context(
            &format!("basic-{format}"),
            &format!(
                "FROM busybox\n\
                 ADD {url}#v0.0.1 /x\n\
                 RUN cd /x && [ \"$(cat foo)\" = \"foo of v0.0.1\" ]\n\
                 ARG REPO=\"{url}\"\n\
                 ARG TAG=\"v0.0.2\"\n\
                 ADD --keep-git-dir=true --chown=4242:8484 --checksum={v2} ${{REPO}}#${{TAG}} /buildkit-chowned\n\
                 USER 4242\n\
                 RUN cd /buildkit-chowned && [ \"$(cat foo)\" = \"foo of v0.0.2\" ] && \
                 [ \"$(stat -c %u foo)\" = \"4242\" ] && [ \"$(stat -c %g foo)\" = \"8484\" ]\n"
            ),
            &[],
        );
        let out = kit.local(&ctx, &[]);
        // BuildKit runs `git status -s` in the image (alpine's git); the host's git reads the
        // exported tree instead.
        let status = command(&out.join("buildkit-chowned"))
            .args(["-c", "safe.directory=*", "status", "-s"])
            .output()
            .unwrap();
        assert!(status.status.success(), "{format}: {status:?}");
        assert_eq!(testkit::text(&status.stdout), "", "{format}: git status -s");

        let df = |tag: &str, flags: &str, dest: &str, checks: &str| {
            format!(
                "FROM busybox\nARG REPO=\"{url}\"\nARG TAG=\"{tag}\"\n\
                 ADD {flags} ${{REPO}}#${{TAG}} {dest}\n{checks}"
            )
        };
        let cases = [
            (
                "nogitdir",
                df(
                    "v0.0.3",
                    &format!("--checksum={v3}"),
                    "/nogitdir",
                    "RUN [ \"$(cat /nogitdir/foo)\" = \"foo of v0.0.3\" ]\n\
                     RUN [ ! -d /nogitdir/.git ]\n",
                ),
            ),
            (
                "again",
                df(
                    "v0.0.2",
                    &format!("--keep-git-dir --checksum={v2}"),
                    "/nogitdir",
                    "RUN [ \"$(cat /nogitdir/foo)\" = \"foo of v0.0.2\" ]\n\
                     RUN [ -d /nogitdir/.git ]\n",
                ),
            ),
            (
                "commit",
                df(
                    &v3,
                    &format!("--keep-git-dir=true --checksum={v3}"),
                    "/commitdir",
                    "RUN [ \"$(cat /commitdir/foo)\" = \"foo of v0.0.3\" ]\n\
                     RUN [ -d /commitdir/.git ]\n",
                ),
            ),
        ];
        for (name, dockerfile) in cases {
            let ctx = kit.context(&format!("{name}-{format}"), &dockerfile, &[]);
            kit.ok(&ctx, &[]);
        }
        let ctx = kit.context(
            &format!("wrong-{format}"),
            &df("v0.0.3", &format!("--checksum={v2}"), "/faildir", ""),
            &[],
        );
        let err = kit.error(&ctx, &[]);
        assert!(
            err.contains("expected checksum to match"),
            "{format}: {err}"
        );
        let ctx = kit.context(
            &format!("garbage-{format}"),
            &df("v0.0.3", "--checksum=foobar", "/faildir", ""),
            &[],
        );
        let err = kit.error(&ctx, &[]);
        assert!(
            err.contains("invalid checksum") && err.contains("expected hex commit hash"),
            "{format}: {err}"
        );
    }
}

/// testAddGitChecksumCache: adding `--checksum` to an `ADD <git>` keeps the steps after it
/// cached (a RUN that writes a random value gives the same value).
#[test]
fn add_git_checksum_keeps_the_cache() {
    if !can_run_git("parity_addgit") {
        return;
    }
    let kit = Kit::new();
    let repo = kit.store.path("repo");
    let (v2, _) = tagged_repo(&repo, "sha1");
    let server = Server::start();
    serve(&server, &repo);
    let url = server.url("/.git");
    let df = |flags: &str| {
        format!(
            "FROM busybox AS src\nADD --keep-git-dir {flags} {url}#v0.0.2 /repo\n\
             RUN cat /proc/sys/kernel/random/uuid > /repo/unique.txt\n\
             FROM scratch\nCOPY --from=src /repo/unique.txt /\n"
        )
    };
    let first = kit.local(&kit.context("plain", &df(""), &[]), &[]);
    let second = kit.local(
        &kit.context("pinned", &df(&format!("--checksum={v2}")), &[]),
        &[],
    );
    assert_eq!(read(&first, "unique.txt"), read(&second, "unique.txt"));
}

/// testGitQueryString (its `add_` half; the `context_` half builds from a git URL as the
/// context, which pallet does not do): the query's ref, branch, tag, commit, subdir,
/// keep-git-dir and submodules keys, alone, mixed with the `#ref:subdir` fragment, and in
/// conflict, each in BuildKit's Dockerfile whose targets read the added tree, the kept
/// `.git/HEAD` or the submodule's file.
#[test]
fn add_git_query_string() {
    if !can_run_git("parity_addgit") {
        return;
    }
    let kit = Kit::new();
    let sub = kit.store.path("submod");
    std::fs::create_dir_all(&sub).unwrap();
    git(&sub, &["init", "-q"]);
    write(&sub.join("file"), "123\n");
    git(&sub, &["add", "file"]);
    git(&sub, &["commit", "-q", "-m", "initial"]);
    let sub_server = Server::start();
    serve(&sub_server, &sub);

    let repo = kit.store.path("repo");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q"]);
    write(&repo.join("foo"), "base\n");
    git(
        &repo,
        &["submodule", "add", "-q", &sub_server.url("/.git"), "submod"],
    );
    git(&repo, &["add", "foo", "submod"]);
    git(&repo, &["commit", "-q", "-m", "initial"]);
    git(&repo, &["tag", "v0.0.1"]);
    git(&repo, &["branch", "base"]);
    write(&repo.join("foo"), "feature\n");
    write(&repo.join("sub/foo"), "subfeature\n");
    git(&repo, &["add", "foo", "sub"]);
    git(&repo, &["commit", "-q", "-m", "feature"]);
    git(&repo, &["branch", "feature"]);
    git(&repo, &["checkout", "-q", "-B", "main", "base"]);
    for tag in ["v0.0.2", "latest"] {
        write(&repo.join("foo"), format!("{tag}\n"));
        git(&repo, &["add", "foo"]);
        git(&repo, &["commit", "-q", "-m", tag]);
        git(&repo, &["tag", tag]);
    }
    let v2 = git(&repo, &["rev-parse", "v0.0.2"]);
    let latest = git(&repo, &["rev-parse", "latest"]);
    let server = Server::start();
    serve(&server, &repo);
    let u = server.url("/.git");

    // (url, target, Ok(content of /repo/foo) or Err(part of the error))
    let cases: Vec<(String, &str, Result<String, &str>)> = vec![
        (
            format!("{u}?tag=v0.0.2&commit={latest}"),
            "",
            Err("expected checksum to match"),
        ),
        (format!("{u}#v0.0.2"), "", Ok("v0.0.2\n".into())),
        (format!("{u}?ref=base"), "", Ok("base\n".into())),
        (format!("{u}?branch=base"), "", Ok("base\n".into())),
        (
            format!("{u}?branch=invalid"),
            "",
            Err("repository does not contain ref"),
        ),
        (
            format!("{u}?branch=v0.0.2"),
            "",
            Err("repository does not contain ref"),
        ),
        (
            format!("{u}?tag=v0.0.2#refs/tags/v0.0.2"),
            "",
            Ok("v0.0.2\n".into()),
        ),
        (format!("{u}?commit={latest}"), "", Ok("latest\n".into())),
        (
            format!("{u}?commit={}", &v2[..8]),
            "",
            Err("expected checksum to match"),
        ),
        (
            format!("{u}?commit={}", &latest[..8]),
            "",
            Ok("latest\n".into()),
        ),
        (format!("{u}?ref={v2}"), "", Ok("v0.0.2\n".into())),
        (
            format!("{u}?ref={}", &v2[..8]),
            "",
            Err("repository does not contain ref"),
        ),
        (
            format!("{u}?tag=v0.0.2&commit={v2}"),
            "",
            Ok("v0.0.2\n".into()),
        ),
        (
            format!("{u}?ref={v2}&commit={v2}"),
            "",
            Ok("v0.0.2\n".into()),
        ),
        (
            format!("{u}?tag=v0.0.2#refs/heads/main"),
            "",
            Err("ref conflicts"),
        ),
        (format!("{u}#feature:sub"), "", Ok("subfeature\n".into())),
        (
            format!("{u}?subdir=sub&ref=feature"),
            "",
            Ok("subfeature\n".into()),
        ),
        (
            format!("{u}?keep-git-dir=true"),
            "withgit",
            Ok(format!("{latest}\n")),
        ),
        (
            format!("{u}?tag=v0.0.2&keep-git-dir=true"),
            "withgit",
            Ok(format!("{v2}\n")),
        ),
        (u.clone(), "withgit", Err(".git/HEAD\": not found")),
        (
            format!("{u}?keep-git-dir&submodules"),
            "withgit",
            Ok(format!("{latest}\n")),
        ),
        (
            format!("{u}?keep-git-dir=false"),
            "withgit",
            Err(".git/HEAD\": not found"),
        ),
        (u.clone(), "withsubmod", Ok("123\n".into())),
        (
            format!("{u}?submodules=true"),
            "withsubmod",
            Ok("123\n".into()),
        ),
        (format!("{u}?submodules"), "withsubmod", Ok("123\n".into())),
        (
            format!("{u}?submodules=false"),
            "withsubmod",
            Err("submod/file\": not found"),
        ),
    ];
    for (i, (url, target, want)) in cases.iter().enumerate() {
        let ctx = kit.context(
            &format!("q{i}"),
            &format!(
                "FROM scratch AS main\nADD {url} /repo/\n\n\
                 FROM scratch AS withsubmod\nCOPY --from=main /repo/submod/file /repo/foo\n\n\
                 FROM scratch AS withgit\nCOPY --from=main /repo/.git/HEAD /repo/foo\n\n\
                 FROM main\n"
            ),
            &[],
        );
        let mut args = Vec::new();
        if !target.is_empty() {
            args.extend(["--target", target]);
        }
        match want {
            Ok(content) => {
                let out = kit.local(&ctx, &args);
                assert_eq!(&read(&out, "repo/foo"), content, "{url} {target}");
            }
            Err(part) => {
                let err = kit.error(&ctx, &args);
                assert!(
                    err.contains(part),
                    "{url} {target}: want {part:?} in:\n{err}"
                );
            }
        }
    }
}

/// The context exclude_patterns_test.go builds: four directories of files with several
/// extensions and two symlinks (one dangling).
fn exclude_files() -> Vec<(&'static str, &'static str)> {
    vec![
        ("dir1/file-101.png", "2"),
        ("dir1/file-102.txt", "3"),
        ("dir1/file-103.jpeg", "4"),
        ("dir2/file-201.pdf", "6"),
        ("dir2/file-202.jpeg", "7"),
        ("dir2/file-203.png", "8"),
        ("dir3/file-301.mp3", "9"),
        ("dir3/file-302.mpeg", "10"),
        ("dir4/file-401.txt", "11"),
    ]
}

/// The files each builder stage of exclude_patterns_test.go keeps (content, or the target
/// of a symlink); every other file of the context is excluded.
const KEPT: &[(&str, &str)] = &[
    ("builder1/1/dir1/file-102.txt", "3"),
    ("builder1/1/dir2/file-201.pdf", "6"),
    ("builder1/1/dir3/file-301.mp3", "9"),
    ("builder1/1/dir3/file-302.mpeg", "10"),
    ("builder1/1/dir4/file-401.txt", "11"),
    ("builder1/1/dir4/file-402.txt", "->file-401.txt"),
    ("builder1/1/dir4/file-403.txt", "->file-404.txt"),
    ("builder2/2/dir1/file-101.png", "2"),
    ("builder2/2/dir1/file-103.jpeg", "4"),
    ("builder2/2/dir2/file-202.jpeg", "7"),
    ("builder2/2/dir2/file-203.png", "8"),
    ("builder2/2/dir3/file-301.mp3", "9"),
    ("builder2/2/dir3/file-302.mpeg", "10"),
    ("builder3/3/file-302.mpeg", "10"),
    ("builder4/4/file-302.mpeg", "10"),
    ("builder5/5/file-102.txt", "3"),
    ("builder5/5/file-401.txt", "11"),
    ("builder5/5/file-402.txt", "->file-401.txt"),
    ("builder5/5/file-403.txt", "->file-404.txt"),
];

/// Checks an output of the exclude Dockerfiles: exactly the files of [`KEPT`] (and, when
/// `git_dir`, the kept `.git` that `COPY --from=base .` takes along), and an empty
/// `builder6/6`.
fn assert_kept(out: &Path, how: &str, git_dir: bool) {
    let mut found: Vec<String> = Vec::new();
    let mut dirs = vec![out.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            if git_dir && p.file_name() == Some(std::ffi::OsStr::new(".git")) {
                continue;
            }
            if m.is_dir() {
                dirs.push(p);
            } else {
                found.push(p.strip_prefix(out).unwrap().to_str().unwrap().to_string());
            }
        }
    }
    found.sort();
    let mut want: Vec<String> = KEPT.iter().map(|(p, _)| p.to_string()).collect();
    want.sort();
    assert_eq!(found, want, "{how}: the files kept");
    for (path, content) in KEPT {
        let p = out.join(path);
        let got = match content.strip_prefix("->") {
            Some(_) => format!("->{}", std::fs::read_link(&p).unwrap().display()),
            None => read(out, path),
        };
        assert_eq!(&got, content, "{how}: {path}");
    }
    let six = std::fs::read_dir(out.join("builder6/6")).unwrap().count();
    assert_eq!(six, 0, "{how}: builder6/6 is empty");
}

const EXCLUDE_STAGES: &str = "\
FROM scratch AS builder1
COPY {from}--exclude=*/*.png --exclude=*/*.jpeg . /1

FROM scratch AS builder2
COPY {from}--exclude=*/*.pdf --exclude=*/*.txt . /2

FROM scratch AS builder3
{add}--exclude=*.mp3 dir3/ /3/

FROM scratch AS builder4
COPY {from}--exclude=*.mp3 --exclude=*.jpeg --exclude=*.png --exclude=*.pdf --exclude=*.txt dir* /4/

FROM scratch AS builder5
{add}--exclude=*.mp* --exclude=*.jpeg --exclude=*.png --exclude=*.pdf dir* /5

FROM scratch AS builder6
{add}--exclude=* dir* /6

FROM scratch
COPY --from=builder1 / /builder1
COPY --from=builder2 / /builder2
COPY --from=builder3 / /builder3
COPY --from=builder4 / /builder4
COPY --from=builder5 / /builder5
COPY --from=builder6 / /builder6
";

/// testExcludedFilesOnCopy: `COPY/ADD --exclude` over the context (directories, wildcard
/// sources, symlinks kept as symlinks, everything excluded), then the same from a stage that
/// ADDs the context committed to a git repository (`COPY --from=base` for every ADD).
#[test]
fn excluded_files_on_copy() {
    if !can_run_git("parity_addgit") {
        return;
    }
    let kit = Kit::new();
    let stages = EXCLUDE_STAGES
        .replace("{from}", "")
        .replace("{add}", "ADD ");
    let ctx = kit.context("exclude", &stages, &exclude_files());
    std::os::unix::fs::symlink("file-401.txt", ctx.join("dir4/file-402.txt")).unwrap();
    std::os::unix::fs::symlink("file-404.txt", ctx.join("dir4/file-403.txt")).unwrap();
    // The Dockerfile is in another directory, as in BuildKit's test (not in the context).
    let dockerfile = kit.store.path("exclude.Dockerfile");
    std::fs::rename(ctx.join("Dockerfile"), &dockerfile).unwrap();
    let out = kit.local(&ctx, &["-f", dockerfile.to_str().unwrap()]);
    assert_kept(&out, "from the context", false);

    git(&ctx, &["init", "-q"]);
    git(&ctx, &["add", "."]);
    git(&ctx, &["commit", "-q", "-m", "0.1"]);
    git(&ctx, &["tag", "0.1"]);
    let server = Server::start();
    serve(&server, &ctx);
    let stages = EXCLUDE_STAGES
        .replace("{from}", "--from=base ")
        .replace("{add}", "COPY --from=base ");
    let from_git = format!(
        "FROM scratch AS base\nARG REPO=\"{}\"\nARG TAG=\"0.1\"\n\
         ADD --keep-git-dir=true ${{REPO}}#${{TAG}} /\n\n{stages}",
        server.url("/.git")
    );
    let df = kit.context("exclude-git", &from_git, &[]);
    let empty = kit.context("empty", "", &[]);
    let out = kit.local(&empty, &["-f", df.join("Dockerfile").to_str().unwrap()]);
    assert_kept(&out, "from a git repository", true);
}
