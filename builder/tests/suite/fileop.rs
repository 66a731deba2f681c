//! COPY/ADD/WORKDIR/heredoc file operations on real temp directories: BuildKit's copy rules
//! (fsutil `copy.Copy`, file-op backend), ownership (as root), modes, times, links, filters,
//! and that nothing outside the source and destination roots is read or written.

use context::dockerignore::Matcher;
use graph::CopyAction;
use pallet::exec::fileop::{copy, mkdir, mkfile, FileOpError, Owner};
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{symlink, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use testkit::files::{mode, read};
use testkit::{require, Need::*};

/// A parent temp dir holding `src/` and `dest/` roots plus things that must stay untouched:
/// `sentinel.txt`, `outside` and `victim/`.
struct Env {
    _tmp: tempfile::TempDir,
    parent: PathBuf,
    src: PathBuf,
    dest: PathBuf,
}

impl Env {
    fn new() -> Env {
        let tmp = tempfile::tempdir().unwrap();
        let parent = tmp.path().to_path_buf();
        let src = parent.join("src");
        let dest = parent.join("dest");
        fs::create_dir(&src).unwrap();
        fs::create_dir(&dest).unwrap();
        fs::write(parent.join("sentinel.txt"), "sentinel").unwrap();
        fs::write(parent.join("outside"), "host secret").unwrap();
        fs::create_dir(parent.join("victim")).unwrap();
        fs::write(parent.join("victim/keep"), "victim").unwrap();
        Env {
            _tmp: tmp,
            parent,
            src,
            dest,
        }
    }

    fn s(&self, p: &str) -> PathBuf {
        self.src.join(p.trim_start_matches('/'))
    }

    fn d(&self, p: &str) -> PathBuf {
        self.dest.join(p.trim_start_matches('/'))
    }

    /// Writes a source file (parents created) with a mode.
    fn file(&self, p: &str, content: &str, mode: u32) {
        let path = self.s(p);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, content).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
    }

    fn copy(&self, a: &CopyAction) -> Result<(), FileOpError> {
        copy(&self.src, &self.dest, a, None, None)
    }

    /// Everything under the parent except the two roots: path -> (kind, mode, content).
    fn outside(&self) -> BTreeMap<PathBuf, (String, u32, Vec<u8>)> {
        let mut out = BTreeMap::new();
        walk(&self.parent, &mut |p: &Path| {
            if p == self.src || p == self.dest {
                return false;
            }
            let md = fs::symlink_metadata(p).unwrap();
            let content = if md.is_file() {
                fs::read(p).unwrap()
            } else {
                Vec::new()
            };
            let kind = format!("{:?}", md.file_type());
            out.insert(p.to_path_buf(), (kind, md.mode(), content));
            true
        });
        out
    }
}

/// Calls `f` on every path below `dir` (not following symlinks); `f` says whether to descend.
fn walk(dir: &Path, f: &mut dyn FnMut(&Path) -> bool) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        let descend = f(&p);
        if descend && fs::symlink_metadata(&p).unwrap().is_dir() {
            walk(&p, f);
        }
    }
}

/// Relative paths under `root`, sorted, directories with a trailing `/`.
fn tree(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    walk(root, &mut |p: &Path| {
        let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
        let dir = fs::symlink_metadata(p).unwrap().is_dir();
        out.push(if dir { format!("{rel}/") } else { rel });
        true
    });
    out
}

/// A context COPY as the Dockerfile lowering emits it.
fn action(src: &str, dest: &str) -> CopyAction {
    CopyAction {
        follow_symlinks: true,
        allow_wildcard: true,
        allow_empty_wildcard: true,
        ..CopyAction::new(0, src, dest)
    }
}

fn user_err(r: Result<(), FileOpError>) -> String {
    match r {
        Err(FileOpError::User(m)) => m,
        other => panic!("expected a user error, got {other:?}"),
    }
}

fn patterns(p: &[&str]) -> Vec<String> {
    p.iter().map(|s| s.to_string()).collect()
}

const TS: i64 = 1_700_000_000;

// ---- files and directories -------------------------------------------------------------

#[test]
fn file_to_file_keeps_content_mode_and_mtime() {
    let e = Env::new();
    e.file("a.txt", "hello", 0o640);
    filetime::set_file_mtime(e.s("a.txt"), filetime::FileTime::from_unix_time(1234, 0)).unwrap();
    e.copy(&action("/a.txt", "/b.txt")).unwrap();
    assert_eq!(read(&e.d("b.txt")), "hello");
    assert_eq!(mode(&e.d("b.txt")), 0o640);
    assert_eq!(fs::metadata(e.d("b.txt")).unwrap().mtime(), 1234);
    assert_eq!(tree(&e.dest), ["b.txt"]);
}

#[test]
fn file_to_dir_with_trailing_slash() {
    let e = Env::new();
    e.file("requirements.txt", "flask", 0o644);
    e.copy(&action("/requirements.txt", "/app/")).unwrap();
    assert_eq!(read(&e.d("app/requirements.txt")), "flask");
    assert_eq!(mode(&e.d("app")), 0o755);
}

#[test]
fn file_onto_existing_dir_without_slash_goes_inside() {
    let e = Env::new();
    e.file("a.txt", "x", 0o644);
    fs::create_dir(e.d("app")).unwrap();
    e.copy(&action("/a.txt", "/app")).unwrap();
    assert_eq!(read(&e.d("app/a.txt")), "x");
}

#[test]
fn file_replaces_existing_file() {
    let e = Env::new();
    e.file("a.txt", "new", 0o600);
    fs::write(e.d("a.txt"), "old content").unwrap();
    e.copy(&action("/a.txt", "/a.txt")).unwrap();
    assert_eq!(read(&e.d("a.txt")), "new");
    assert_eq!(mode(&e.d("a.txt")), 0o600);
}

/// Small files are copied with one read and one write, larger ones partly through the kernel:
/// every size around the boundary (128 KiB) arrives whole.
#[test]
fn files_of_every_size_class_copy_byte_for_byte() {
    let e = Env::new();
    let sizes = [
        0usize, 1, 4096, 131_071, 131_072, 131_073, 300_000, 2_000_000,
    ];
    for (i, size) in sizes.iter().enumerate() {
        let data: Vec<u8> = (0..*size)
            .map(|j| (j * 31 + i * 7 + j / 256) as u8)
            .collect();
        let path = e.s(&format!("sizes/f{i}"));
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, &data).unwrap();
    }
    e.copy(&action("/sizes", "/out/")).unwrap();
    for (i, size) in sizes.iter().enumerate() {
        let got = fs::read(e.d(&format!("out/f{i}"))).unwrap();
        let want = fs::read(e.s(&format!("sizes/f{i}"))).unwrap();
        assert_eq!(got.len(), *size);
        assert!(got == want, "file of {size} bytes differs");
    }
}

#[test]
fn file_cannot_replace_a_directory() {
    let e = Env::new();
    e.file("a.txt", "x", 0o644);
    fs::create_dir_all(e.d("app/a.txt")).unwrap();
    let m = user_err(e.copy(&action("/a.txt", "/app/")));
    assert!(m.contains("cannot replace directory /app/a.txt"), "{m}");
}

#[test]
fn directory_onto_existing_file_is_an_error() {
    let e = Env::new();
    e.file("dir/f", "x", 0o644);
    fs::write(e.d("target"), "file").unwrap();
    let m = user_err(e.copy(&action("/dir", "/target")));
    assert!(m.contains("not a directory"), "{m}");
}

#[test]
fn directory_copies_its_contents() {
    let e = Env::new();
    e.file("src/main.py", "main", 0o644);
    e.file("src/pkg/mod.py", "mod", 0o644);
    e.copy(&action("/src", "/app/")).unwrap();
    assert_eq!(
        tree(&e.dest),
        ["app/", "app/main.py", "app/pkg/", "app/pkg/mod.py"]
    );
}

#[test]
fn dot_source_copies_the_whole_root() {
    let e = Env::new();
    e.file("a", "1", 0o644);
    e.file("d/b", "2", 0o644);
    e.copy(&action("/.", "/app/")).unwrap();
    assert_eq!(tree(&e.d("app")), ["a", "d/", "d/b"]);
}

#[test]
fn directory_itself_when_not_contents_only() {
    let e = Env::new();
    e.file("src/f", "x", 0o644);
    fs::set_permissions(e.s("src"), fs::Permissions::from_mode(0o700)).unwrap();
    fs::create_dir(e.d("app")).unwrap();
    let mut a = action("/src", "/app");
    a.dir_contents_only = false;
    e.copy(&a).unwrap();
    assert_eq!(tree(&e.d("app")), ["src/", "src/f"]);
    assert_eq!(mode(&e.d("app/src")), 0o700);
}

#[test]
fn existing_destination_dir_keeps_metadata_nested_dirs_take_the_source() {
    let e = Env::new();
    e.file("src/sub/f", "x", 0o644);
    fs::set_permissions(e.s("src/sub"), fs::Permissions::from_mode(0o750)).unwrap();
    fs::create_dir_all(e.d("app/sub")).unwrap();
    fs::set_permissions(e.d("app"), fs::Permissions::from_mode(0o700)).unwrap();
    fs::set_permissions(e.d("app/sub"), fs::Permissions::from_mode(0o777)).unwrap();
    e.copy(&action("/src", "/app/")).unwrap();
    assert_eq!(mode(&e.d("app")), 0o700);
    assert_eq!(mode(&e.d("app/sub")), 0o750);
}

#[test]
fn trailing_slash_creates_the_directory_chain() {
    let e = Env::new();
    e.file("a.txt", "x", 0o644);
    e.copy(&action("/a.txt", "/new/deep/dir/")).unwrap();
    assert_eq!(read(&e.d("new/deep/dir/a.txt")), "x");
    for d in ["new", "new/deep", "new/deep/dir"] {
        assert_eq!(mode(&e.d(d)), 0o755, "{d}");
    }
}

#[test]
fn create_dest_path_controls_missing_parents() {
    let e = Env::new();
    e.file("a.txt", "x", 0o644);
    let mut a = action("/a.txt", "/missing/parent/a.txt");
    a.create_dest_path = false;
    let m = user_err(e.copy(&a));
    assert!(m.contains("/missing/parent"), "{m}");
    assert!(tree(&e.dest).is_empty());
    a.create_dest_path = true;
    e.copy(&a).unwrap();
    assert_eq!(read(&e.d("missing/parent/a.txt")), "x");
}

// ---- wildcards and missing sources ------------------------------------------------------

#[test]
fn wildcard_several_matches_make_dest_a_directory() {
    let e = Env::new();
    e.file("a.txt", "a", 0o644);
    e.file("b.txt", "b", 0o644);
    e.file("c.md", "c", 0o644);
    e.copy(&action("/*.txt", "/out")).unwrap();
    assert_eq!(tree(&e.dest), ["out/", "out/a.txt", "out/b.txt"]);
}

#[test]
fn wildcard_single_match_without_slash_is_a_file() {
    let e = Env::new();
    e.file("only.txt", "o", 0o644);
    e.copy(&action("/o?ly.[st]xt", "/out")).unwrap();
    assert_eq!(read(&e.d("out")), "o");
}

#[test]
fn wildcard_in_a_middle_component_and_dirs_copy_contents() {
    let e = Env::new();
    e.file("app/pkg1/a.py", "a", 0o644);
    e.file("app/pkg2/b.py", "b", 0o644);
    e.file("app/pkg2/c.txt", "c", 0o644);
    e.file("app/other/d.py", "d", 0o644);
    e.copy(&action("/app/pkg*/*.py", "/out/")).unwrap();
    assert_eq!(tree(&e.d("out")), ["a.py", "b.py"]);
    // Matched directories contribute their contents (BuildKit's `COPY dir* /x/`).
    e.copy(&action("/app/pkg*", "/flat/")).unwrap();
    assert_eq!(tree(&e.d("flat")), ["a.py", "b.py", "c.txt"]);
}

#[test]
fn wildcard_without_match_is_fine_when_allowed() {
    let e = Env::new();
    e.file("a.txt", "a", 0o644);
    e.copy(&action("/*.nope", "/out/")).unwrap();
    assert!(tree(&e.dest).is_empty());
}

#[test]
fn wildcard_without_match_is_an_error_when_not_allowed() {
    let e = Env::new();
    let mut a = action("/*.nope", "/out/");
    a.allow_empty_wildcard = false;
    let m = user_err(e.copy(&a));
    assert!(m.contains("\"/*.nope\": not found"), "{m}");
}

#[test]
fn missing_source_names_the_path_and_the_context() {
    let e = Env::new();
    let m = user_err(e.copy(&action("/missing.txt", "/")));
    assert!(m.contains("\"/missing.txt\": not found"), "{m}");
    assert!(
        m.contains("relative to the root of the build context"),
        "{m}"
    );
    assert!(tree(&e.dest).is_empty());
}

#[test]
fn required_paths_must_exist() {
    let e = Env::new();
    e.file("x/a.txt", "a", 0o644);
    let mut a = action("/", "/p/");
    a.include_patterns = patterns(&["x/b.txt"]);
    a.required_paths = patterns(&["/x/b.txt"]);
    let m = user_err(e.copy(&a));
    assert!(m.contains("\"/x/b.txt\": not found"), "{m}");
}

// ---- owner, mode, times -----------------------------------------------------------------

fn owner_of(p: &Path) -> (u32, u32) {
    let md = fs::symlink_metadata(p).unwrap();
    (md.uid(), md.gid())
}

#[test]
fn chown_applies_to_every_copied_entry_and_created_dir() {
    let e = Env::new();
    e.file("src/a.txt", "a", 0o644);
    e.file("src/sub/b.txt", "b", 0o644);
    symlink("/etc/existing", e.s("src/link")).unwrap();
    // The link's target exists in the destination and must keep its owner (lchown).
    fs::create_dir(e.d("etc")).unwrap();
    fs::write(e.d("etc/existing"), "root's").unwrap();
    let o = Owner {
        uid: 1000,
        gid: 1000,
    };
    copy(&e.src, &e.dest, &action("/src", "/opt/app/"), Some(o), None).unwrap();
    for p in [
        "opt",
        "opt/app",
        "opt/app/a.txt",
        "opt/app/sub",
        "opt/app/sub/b.txt",
    ] {
        assert_eq!(owner_of(&e.d(p)), (1000, 1000), "{p}");
    }
    assert!(fs::symlink_metadata(e.d("opt/app/link"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(owner_of(&e.d("opt/app/link")), (1000, 1000));
    assert_eq!(owner_of(&e.d("etc/existing")), (0, 0));
}

#[test]
fn without_owner_source_ids_are_kept() {
    let e = Env::new();
    e.file("a.txt", "a", 0o644);
    std::os::unix::fs::lchown(e.s("a.txt"), Some(1234), Some(5678)).unwrap();
    e.copy(&action("/a.txt", "/a.txt")).unwrap();
    assert_eq!(owner_of(&e.d("a.txt")), (1234, 5678));
}

#[test]
fn chmod_octal_applies_to_files_and_dirs_not_symlinks() {
    let e = Env::new();
    e.file("d/f", "x", 0o600);
    symlink("f", e.s("d/l")).unwrap();
    let mut a = action("/d", "/out/");
    a.mode = Some("0751".into());
    e.copy(&a).unwrap();
    assert_eq!(mode(&e.d("out/f")), 0o751);
    assert_eq!(
        mode(&e.d("out")),
        0o751,
        "a destination the copy creates gets the octal mode (fsutil since tonistiigi/fsutil#228)"
    );
    assert_eq!(fs::read_link(e.d("out/l")).unwrap(), Path::new("f"));
    let mut a = action("/", "/all/");
    a.dir_contents_only = true;
    a.mode = Some("750".into());
    e.copy(&a).unwrap();
    assert_eq!(mode(&e.d("all/d")), 0o750);
    assert_eq!(mode(&e.d("all/d/f")), 0o750);
}

#[test]
fn chmod_symbolic_uses_capital_x_for_dirs_and_executables() {
    let e = Env::new();
    e.file("d/plain", "x", 0o600);
    e.file("d/tool", "x", 0o700);
    e.file("d/sub/inner", "x", 0o666);
    let mut a = action("/", "/out/");
    a.mode = Some("u=rwX,go=rX".into());
    e.copy(&a).unwrap();
    assert_eq!(mode(&e.d("out/d")), 0o755);
    assert_eq!(mode(&e.d("out/d/sub")), 0o755);
    assert_eq!(mode(&e.d("out/d/plain")), 0o644);
    assert_eq!(mode(&e.d("out/d/tool")), 0o755);
    assert_eq!(mode(&e.d("out/d/sub/inner")), 0o644);
    let mut a = action("/d/plain", "/p2");
    a.mode = Some("u+x,go-w".into());
    e.copy(&a).unwrap();
    assert_eq!(mode(&e.d("p2")), 0o700);
    let mut a = action("/d/plain", "/p3");
    a.mode = Some("bogus".into());
    assert!(user_err(e.copy(&a)).contains("invalid chmod"));
}

#[test]
fn timestamp_sets_every_mtime_including_links_and_created_dirs() {
    let e = Env::new();
    e.file("src/a", "a", 0o644);
    e.file("src/sub/b", "b", 0o644);
    symlink("a", e.s("src/l")).unwrap();
    let mut a = action("/src", "/new/app/");
    a.timestamp = Some(TS);
    e.copy(&a).unwrap();
    for p in [
        "new",
        "new/app",
        "new/app/a",
        "new/app/sub",
        "new/app/sub/b",
        "new/app/l",
    ] {
        assert_eq!(fs::symlink_metadata(e.d(p)).unwrap().mtime(), TS, "{p}");
    }
}

#[test]
fn without_timestamp_source_mtimes_are_kept() {
    let e = Env::new();
    e.file("src/sub/b", "b", 0o644);
    symlink("sub/b", e.s("src/l")).unwrap();
    let t = filetime::FileTime::from_unix_time(1_000_000, 0);
    filetime::set_file_mtime(e.s("src/sub/b"), t).unwrap();
    filetime::set_file_mtime(e.s("src/sub"), t).unwrap();
    filetime::set_symlink_file_times(e.s("src/l"), t, t).unwrap();
    e.copy(&action("/src", "/app/")).unwrap();
    for p in ["app/sub", "app/sub/b", "app/l"] {
        assert_eq!(
            fs::symlink_metadata(e.d(p)).unwrap().mtime(),
            1_000_000,
            "{p}"
        );
    }
}

// ---- links, special files, xattrs -------------------------------------------------------

#[test]
fn hardlinks_within_the_copy_stay_linked() {
    let e = Env::new();
    e.file("d/a", "shared", 0o644);
    fs::hard_link(e.s("d/a"), e.s("d/b")).unwrap();
    e.file("d/c", "alone", 0o644);
    e.copy(&action("/d", "/out/")).unwrap();
    let (a, b) = (
        fs::metadata(e.d("out/a")).unwrap(),
        fs::metadata(e.d("out/b")).unwrap(),
    );
    assert_eq!(a.ino(), b.ino());
    assert_eq!(a.nlink(), 2);
    assert_eq!(fs::metadata(e.d("out/c")).unwrap().nlink(), 1);
}

#[test]
fn symlinks_inside_a_copied_dir_are_copied_as_links() {
    let e = Env::new();
    e.file("d/f", "x", 0o644);
    symlink("/etc/passwd", e.s("d/abs")).unwrap();
    symlink("../../outside", e.s("d/rel")).unwrap();
    symlink("f", e.s("d/local")).unwrap();
    symlink("nowhere", e.s("d/dangling")).unwrap();
    e.copy(&action("/d", "/out/")).unwrap();
    for (name, target) in [
        ("abs", "/etc/passwd"),
        ("rel", "../../outside"),
        ("local", "f"),
        ("dangling", "nowhere"),
    ] {
        assert_eq!(
            fs::read_link(e.d(&format!("out/{name}"))).unwrap(),
            Path::new(target)
        );
    }
}

#[test]
fn source_symlink_is_followed_inside_the_root() {
    let e = Env::new();
    e.file("data/real.txt", "real", 0o644);
    symlink("/data/real.txt", e.s("link")).unwrap();
    e.copy(&action("/link", "/out/")).unwrap();
    // Named after the link, with the target's content.
    assert_eq!(read(&e.d("out/link")), "real");
    assert!(!fs::symlink_metadata(e.d("out/link"))
        .unwrap()
        .file_type()
        .is_symlink());
    let mut a = action("/link", "/kept");
    a.follow_symlinks = false;
    e.copy(&a).unwrap();
    assert_eq!(
        fs::read_link(e.d("kept")).unwrap(),
        Path::new("/data/real.txt")
    );
}

#[test]
fn fifo_is_copied_as_a_fifo() {
    let e = Env::new();
    fs::create_dir(e.s("d")).unwrap();
    let c = std::ffi::CString::new(e.s("d/pipe").to_str().unwrap()).unwrap();
    // SAFETY: valid path string.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o640) }, 0);
    e.copy(&action("/d", "/out/")).unwrap();
    let md = fs::symlink_metadata(e.d("out/pipe")).unwrap();
    assert!(md.file_type().is_fifo());
    assert_eq!(md.mode() & 0o777, 0o640);
}

#[test]
fn xattrs_are_copied_except_selinux_and_overlayfs_ones() {
    let e = Env::new();
    e.file("f", "x", 0o644);
    if xattr::set(e.s("f"), "user.pallet", b"v").is_err() {
        eprintln!("skipped: no user xattrs on this filesystem");
        return;
    }
    // overlayfs would read this in a layer as "this directory hides the ones below".
    xattr::set(e.s("f"), "user.overlay.opaque", b"y").unwrap();
    e.copy(&action("/f", "/f")).unwrap();
    assert_eq!(
        xattr::get(e.d("f"), "user.pallet").unwrap().as_deref(),
        Some(&b"v"[..])
    );
    assert_eq!(xattr::get(e.d("f"), "user.overlay.opaque").unwrap(), None);
}

// ---- filters ----------------------------------------------------------------------------

fn dockerignore(p: &[&str]) -> Matcher {
    Matcher::new(&patterns(p)).unwrap()
}

#[test]
fn exclude_callback_skips_paths_and_honours_reincludes() {
    let e = Env::new();
    e.file("app.py", "x", 0o644);
    e.file("debug.log", "x", 0o644);
    e.file("node_modules/dep/index.js", "x", 0o644);
    e.file("node_modules/keep/k.js", "x", 0o644);
    e.file("sub/trace.log", "x", 0o644);
    let m = dockerignore(&["**/*.log", "node_modules", "!node_modules/keep"]);
    let cb = |p: &str| m.is_excluded(p);
    copy(&e.src, &e.dest, &action("/", "/app/"), None, Some(&cb)).unwrap();
    assert_eq!(
        tree(&e.d("app")),
        [
            "app.py",
            "node_modules/",
            "node_modules/keep/",
            "node_modules/keep/k.js",
            "sub/"
        ]
    );
}

#[test]
fn exclude_callback_on_the_source_itself_is_not_found() {
    let e = Env::new();
    e.file("secret.txt", "x", 0o644);
    e.file("build/out.bin", "x", 0o644);
    let m = dockerignore(&["secret.txt", "build"]);
    let cb = |p: &str| m.is_excluded(p);
    let r = copy(
        &e.src,
        &e.dest,
        &action("/secret.txt", "/"),
        None,
        Some(&cb),
    );
    assert!(user_err(r).contains(".dockerignore"));
    let r = copy(&e.src, &e.dest, &action("/build", "/b/"), None, Some(&cb));
    assert!(user_err(r).contains("\"/build\": not found"));
    // Wildcards just don't see excluded paths.
    copy(&e.src, &e.dest, &action("/*", "/w/"), None, Some(&cb)).unwrap();
    assert_eq!(tree(&e.dest), Vec::<String>::new());
}

#[test]
fn exclude_patterns_with_double_star_and_exception() {
    let e = Env::new();
    e.file("src/a.tmp", "x", 0o644);
    e.file("src/deep/er/b.tmp", "x", 0o644);
    e.file("src/deep/keep.tmp", "x", 0o644);
    e.file("src/deep/code.rs", "x", 0o644);
    e.file("src/cache/big", "x", 0o644);
    let mut a = action("/src", "/out/");
    a.exclude_patterns = patterns(&["**/*.tmp", "!deep/keep.tmp", "cache"]);
    e.copy(&a).unwrap();
    assert_eq!(
        tree(&e.d("out")),
        ["deep/", "deep/code.rs", "deep/er/", "deep/keep.tmp"]
    );
}

#[test]
fn exclude_patterns_filter_wildcard_matches() {
    let e = Env::new();
    e.file("home.txt", "x", 0o644);
    e.file("home.md", "x", 0o644);
    e.file("homer.md", "x", 0o644);
    let mut a = action("/hom*", "/mydir/");
    a.exclude_patterns = patterns(&["*.txt"]);
    e.copy(&a).unwrap();
    assert_eq!(tree(&e.d("mydir")), ["home.md", "homer.md"]);
}

#[test]
fn include_patterns_keep_parents_like_copy_parents() {
    let e = Env::new();
    e.file("x/a.txt", "a", 0o644);
    e.file("y/b.txt", "b", 0o644);
    e.file("y/c.md", "c", 0o644);
    e.file("z/d.txt", "d", 0o644);
    fs::set_permissions(e.s("x"), fs::Permissions::from_mode(0o750)).unwrap();
    let mut a = action("/", "/parents/");
    a.include_patterns = patterns(&["x/a.txt", "y/*.txt"]);
    e.copy(&a).unwrap();
    assert_eq!(tree(&e.d("parents")), ["x/", "x/a.txt", "y/", "y/b.txt"]);
    assert_eq!(mode(&e.d("parents/x")), 0o750);
}

// ---- mkdir / mkfile ---------------------------------------------------------------------

#[test]
fn mkdir_p_with_owner_mode_and_time() {
    let e = Env::new();
    let o = Owner {
        uid: 1000,
        gid: 1000,
    };
    mkdir(&e.dest, "/app/src/pkg", 0o755, true, Some(o), Some(TS)).unwrap();
    for d in ["app", "app/src", "app/src/pkg"] {
        let md = fs::metadata(e.d(d)).unwrap();
        assert!(md.is_dir());
        assert_eq!(
            (md.uid(), md.gid(), md.mode() & 0o7777, md.mtime()),
            (1000, 1000, 0o755, TS),
            "{d}"
        );
    }
    // Existing directories are fine and untouched.
    mkdir(&e.dest, "/app/src", 0o700, true, None, None).unwrap();
    assert_eq!(mode(&e.d("app/src")), 0o755);
    mkdir(&e.dest, "/app", 0o700, false, None, None).unwrap();
    // A file in the way is an error.
    fs::write(e.d("app/file"), "x").unwrap();
    let m = user_err(mkdir(&e.dest, "/app/file/sub", 0o755, true, None, None));
    assert!(m.contains("/app/file"), "{m}");
    let m = user_err(mkdir(&e.dest, "/app/file", 0o755, false, None, None));
    assert!(m.contains("/app/file"), "{m}");
}

#[test]
fn mkdir_without_parents_needs_the_parent() {
    let e = Env::new();
    let m = user_err(mkdir(&e.dest, "/a/b", 0o755, false, None, None));
    assert!(m.contains("parent /a does not exist"), "{m}");
    mkdir(&e.dest, "/a", 0o711, false, None, Some(TS)).unwrap();
    assert_eq!(mode(&e.d("a")), 0o711);
    assert_eq!(fs::metadata(e.d("a")).unwrap().mtime(), TS);
}

#[test]
fn mkfile_writes_content_mode_owner_time_and_overwrites() {
    let e = Env::new();
    let o = Owner {
        uid: 1000,
        gid: 1001,
    };
    mkfile(
        &e.dest,
        "/heredoc",
        0o755,
        b"#!/bin/sh\necho hi\n",
        Some(o),
        Some(TS),
    )
    .unwrap();
    let md = fs::metadata(e.d("heredoc")).unwrap();
    assert_eq!(read(&e.d("heredoc")), "#!/bin/sh\necho hi\n");
    assert_eq!(
        (md.uid(), md.gid(), md.mode() & 0o7777, md.mtime()),
        (1000, 1001, 0o755, TS)
    );
    mkfile(&e.dest, "/heredoc", 0o644, b"short", None, None).unwrap();
    assert_eq!(read(&e.d("heredoc")), "short");
    assert_eq!(mode(&e.d("heredoc")), 0o644);
    let m = user_err(mkfile(&e.dest, "/no/such/file", 0o644, b"", None, None));
    assert!(
        m.contains("parent directory /no/such does not exist"),
        "{m}"
    );
}

// ---- safety: nothing outside the roots --------------------------------------------------

#[test]
fn source_absolute_symlink_resolves_inside_the_source_root() {
    let e = Env::new();
    let before = e.outside();
    symlink("/etc/passwd", e.s("link")).unwrap();
    let m = user_err(e.copy(&action("/link", "/passwd")));
    assert!(m.contains("\"/link\": not found"), "{m}");
    assert!(tree(&e.dest).is_empty());
    // With a root-local /etc/passwd, that one is copied, never the host's.
    e.file("etc/passwd", "root-local", 0o644);
    e.copy(&action("/link", "/passwd")).unwrap();
    assert_eq!(read(&e.d("passwd")), "root-local");
    // An absolute link to the host path of the sentinel stays inside too.
    symlink(e.parent.join("sentinel.txt"), e.s("hostlink")).unwrap();
    assert!(user_err(e.copy(&action("/hostlink", "/s"))).contains("not found"));
    assert_eq!(before, e.outside());
}

#[test]
fn source_relative_symlink_cannot_climb_out() {
    let e = Env::new();
    let before = e.outside();
    symlink("../../outside", e.s("link")).unwrap();
    fs::create_dir(e.s("dir")).unwrap();
    symlink("../../..", e.s("dir/up")).unwrap();
    assert!(user_err(e.copy(&action("/link", "/x"))).contains("not found"));
    // A directory link climbing out is the source root itself: `/dir/up/di*` is `/dir`.
    e.copy(&action("/dir/up/di*", "/w/")).unwrap();
    assert_eq!(tree(&e.d("w")), ["up"]);
    e.file("outside", "root-local", 0o644);
    e.copy(&action("/link", "/x")).unwrap();
    assert_eq!(read(&e.d("x")), "root-local");
    assert_eq!(before, e.outside());
}

#[test]
fn dotdot_in_source_and_dest_stays_inside() {
    let e = Env::new();
    let before = e.outside();
    assert!(user_err(e.copy(&action("/../outside", "/x"))).contains("not found"));
    e.file("a.txt", "a", 0o644);
    e.copy(&action("/../../a.txt", "/../../../sentinel.txt"))
        .unwrap();
    assert_eq!(read(&e.d("sentinel.txt")), "a");
    assert_eq!(before, e.outside());
}

#[test]
fn dest_symlinks_resolve_inside_the_dest_root() {
    let e = Env::new();
    let before = e.outside();
    e.file("a.txt", "payload", 0o644);
    let victim = e.parent.join("victim");
    symlink(&victim, e.d("etc")).unwrap();
    e.copy(&action("/a.txt", "/etc/x")).unwrap();
    let inside = e.dest.join(victim.strip_prefix("/").unwrap()).join("x");
    assert_eq!(read(&inside), "payload");
    // A relative link climbing out lands in the root as well.
    symlink("../../victim", e.d("up")).unwrap();
    e.copy(&action("/a.txt", "/up/y")).unwrap();
    assert_eq!(read(&e.d("victim/y")), "payload");
    // The destination itself being such a link.
    symlink(e.parent.join("sentinel.txt"), e.d("s")).unwrap();
    e.copy(&action("/a.txt", "/s")).unwrap();
    assert!(!e.parent.join("victim/x").exists());
    assert_eq!(before, e.outside());
}

#[test]
fn dest_tree_symlinks_are_replaced_or_refused_never_followed() {
    let e = Env::new();
    let before = e.outside();
    e.file("d/f", "new", 0o644);
    e.file("d/sub/g", "new", 0o644);
    fs::create_dir(e.d("app")).unwrap();
    symlink(e.parent.join("outside"), e.d("app/f")).unwrap();
    e.copy(&action("/d/f", "/app/")).unwrap();
    assert_eq!(read(&e.d("app/f")), "new");
    assert!(!fs::symlink_metadata(e.d("app/f"))
        .unwrap()
        .file_type()
        .is_symlink());
    symlink(e.parent.join("victim"), e.d("app/sub")).unwrap();
    let m = user_err(e.copy(&action("/d", "/app/")));
    assert!(m.contains("not a directory"), "{m}");
    assert_eq!(before, e.outside());
}

#[test]
fn mkdir_and_mkfile_through_symlinks_stay_inside() {
    let e = Env::new();
    let before = e.outside();
    symlink(e.parent.join("victim"), e.d("etc")).unwrap();
    // The link's target does not exist inside the root, so there is no parent yet.
    assert!(user_err(mkfile(&e.dest, "/etc/evil", 0o644, b"x", None, None)).contains("parent"));
    mkdir(&e.dest, "/etc/dir/sub", 0o755, true, None, None).unwrap();
    mkfile(&e.dest, "/etc/evil", 0o644, b"x", None, None).unwrap();
    symlink("../../../..", e.d("up")).unwrap();
    mkdir(&e.dest, "/up/made", 0o755, true, None, None).unwrap();
    assert!(e.d("made").is_dir());
    let inside = e
        .dest
        .join(e.parent.strip_prefix("/").unwrap())
        .join("victim");
    assert!(inside.join("evil").is_file() && inside.join("dir/sub").is_dir());
    assert_eq!(before, e.outside());
}

// ---- ADD: local archives ----------------------------------------------------------------

/// A tar entry header with a raw name (the tar crate refuses `..` through `set_path`).
fn tar_header(name: &str, kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_uid(1234);
    h.set_gid(4321);
    h.set_mtime(1_500_000_000);
    h.set_cksum();
    h
}

/// Writes a gzip-compressed tar to the source root.
fn write_tgz(e: &Env, name: &str, build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) {
    let mut b = tar::Builder::new(Vec::new());
    build(&mut b);
    let data = b.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &data).unwrap();
    fs::write(e.s(name), gz.finish().unwrap()).unwrap();
}

fn add(src: &str, dest: &str) -> CopyAction {
    let mut a = action(src, dest);
    a.attempt_unpack = true;
    a
}

#[test]
fn add_unpacks_a_tar_gz_keeping_modes_owners_times_and_links() {
    let e = Env::new();
    write_tgz(&e, "app.tar.gz", |b| {
        b.append(
            &tar_header("bin/", tar::EntryType::Directory, 0o750, 0),
            &[][..],
        )
        .unwrap();
        b.append(
            &tar_header("bin/tool", tar::EntryType::Regular, 0o755, 2),
            &b"hi"[..],
        )
        .unwrap();
        let mut l = tar_header("bin/alias", tar::EntryType::Symlink, 0o777, 0);
        l.set_link_name("tool").unwrap();
        l.set_cksum();
        b.append(&l, &[][..]).unwrap();
        let mut h = tar_header("bin/hard", tar::EntryType::Link, 0o755, 0);
        h.set_link_name("bin/tool").unwrap();
        h.set_cksum();
        b.append(&h, &[][..]).unwrap();
        b.append(
            &tar_header("implied/deep/f", tar::EntryType::Regular, 0o600, 1),
            &b"x"[..],
        )
        .unwrap();
    });
    e.copy(&add("/app.tar.gz", "/opt/")).unwrap();
    assert_eq!(
        tree(&e.d("opt")),
        [
            "bin/",
            "bin/alias",
            "bin/hard",
            "bin/tool",
            "implied/",
            "implied/deep/",
            "implied/deep/f"
        ]
    );
    assert_eq!(read(&e.d("opt/bin/tool")), "hi");
    assert_eq!(mode(&e.d("opt/bin")), 0o750);
    assert_eq!(mode(&e.d("opt/bin/tool")), 0o755);
    assert_eq!(mode(&e.d("opt/implied")), 0o755);
    assert_eq!(owner_of(&e.d("opt/bin/tool")), (1234, 4321));
    assert_eq!(
        fs::metadata(e.d("opt/bin/tool")).unwrap().mtime(),
        1_500_000_000
    );
    assert_eq!(fs::metadata(e.d("opt/bin")).unwrap().mtime(), 1_500_000_000);
    assert_eq!(
        fs::read_link(e.d("opt/bin/alias")).unwrap(),
        Path::new("tool")
    );
    assert_eq!(
        fs::metadata(e.d("opt/bin/hard")).unwrap().ino(),
        fs::metadata(e.d("opt/bin/tool")).unwrap().ino()
    );
    // --chown overrides the archive's ids.
    let o = Owner { uid: 7, gid: 8 };
    copy(&e.src, &e.dest, &add("/app.tar.gz", "/o2"), Some(o), None).unwrap();
    assert_eq!(owner_of(&e.d("o2/bin/tool")), (7, 8));
    // Without attempt_unpack the archive is a file like any other.
    e.copy(&action("/app.tar.gz", "/raw.tgz")).unwrap();
    assert!(fs::metadata(e.d("raw.tgz")).unwrap().is_file());
}

/// ADD reads archives as Go's archive/tar (BuildKit's reader) does: blank numeric fields (some
/// tar writers leave uid, gid and mtime empty) read as 0, and PAX records override the
/// header: a path over 100 bytes, an owner id too large for the octal field, a time with
/// nanoseconds.
#[test]
fn add_reads_blank_fields_and_pax_records_as_go_does() {
    let e = Env::new();
    let long = format!("{}/f", "d".repeat(120));
    write_tgz(&e, "odd.tar.gz", |b| {
        let mut h = tar_header("blank", tar::EntryType::Regular, 0o644, 2);
        let gnu = h.as_gnu_mut().unwrap();
        for field in [&mut gnu.uid[..], &mut gnu.gid[..], &mut gnu.mtime[..]] {
            field.fill(0);
        }
        h.set_cksum();
        b.append(&h, &b"ok"[..]).unwrap();
        b.append_pax_extensions([
            ("path", long.as_bytes()),
            ("uid", &b"3000000"[..]),
            ("mtime", &b"1600000000.25"[..]),
        ])
        .unwrap();
        b.append(
            &tar_header("short", tar::EntryType::Regular, 0o600, 1),
            &b"x"[..],
        )
        .unwrap();
    });
    e.copy(&add("/odd.tar.gz", "/o/")).unwrap();
    assert_eq!(read(&e.d("o/blank")), "ok");
    assert_eq!(owner_of(&e.d("o/blank")), (0, 0));
    assert_eq!(fs::metadata(e.d("o/blank")).unwrap().mtime(), 0);
    let f = e.d(&format!("o/{long}"));
    assert_eq!(read(&f), "x");
    assert_eq!(owner_of(&f), (3_000_000, 4321));
    let md = fs::metadata(&f).unwrap();
    assert_eq!((md.mtime(), md.mtime_nsec()), (1_600_000_000, 250_000_000));
    assert!(!e.d("o/short").exists(), "the PAX path did not apply");
}

#[test]
fn add_copies_files_that_are_not_archives() {
    let e = Env::new();
    e.file("notes.gz.txt", "plain text, not a tar", 0o644);
    e.copy(&add("/notes.gz.txt", "/n/")).unwrap();
    assert_eq!(read(&e.d("n/notes.gz.txt")), "plain text, not a tar");
}

/// Runs a shell command line in `dir`, which must succeed; the tools must exist (checked
/// first with the kit's gate: a failure under CI=true, a skip with a note elsewhere).
fn sh(dir: &Path, script: &str) {
    testkit::run::ok(
        std::process::Command::new("sh")
            .args(["-c", script])
            .current_dir(dir),
    );
}

/// ADD unpacks tars compressed by the real CLIs (gzip, bzip2, xz, zstd, and GNU tar's own
/// --zstd/--xz/--bzip2), telling the compression by magic bytes, not by name, as BuildKit.
#[test]
fn add_unpacks_bzip2_xz_and_zstd_tars_made_by_the_cli_tools() {
    if !require(
        "ADD of archives made by the CLI tools",
        &[
            Tool("tar"),
            Tool("gzip"),
            Tool("bzip2"),
            Tool("xz"),
            Tool("zstd"),
        ],
    ) {
        return;
    }
    let e = Env::new();
    let work = e.parent.join("work");
    fs::create_dir_all(work.join("tree/etc/app")).unwrap();
    fs::write(work.join("tree/etc/app/conf"), "key=value\n").unwrap();
    fs::set_permissions(
        work.join("tree/etc/app/conf"),
        fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    // Large enough for several blocks/frames/streams with the multithreaded encoders.
    let big: String = (0..200_000).map(|i| format!("{i}\n")).collect();
    fs::write(work.join("tree/big.txt"), &big).unwrap();
    symlink("etc/app/conf", work.join("tree/conf-link")).unwrap();
    sh(
        &work,
        "tar --numeric-owner --owner=0 --group=0 -C tree -cf app.tar . \
         && gzip -kc app.tar > app.tar.gz && bzip2 -kc app.tar > app.tar.bz2 \
         && xz -T2 -kc app.tar > app.tar.xz && zstd -q -T2 -c app.tar > app.tar.zst \
         && tar --zstd -C tree -cf gnu.tar.zst . && tar --xz -C tree -cf gnu.txz . \
         && tar --bzip2 -C tree -cf gnu.tbz . \
         && zstd -q -c app.tar > no-extension \
         && head -c 100000 app.tar > part1 && tail -c +100001 app.tar > part2 \
         && (zstd -q -c part1; zstd -q -c part2) > multi.zst \
         && (xz -c part1; xz -c part2) > multi.xz \
         && (bzip2 -c part1; bzip2 -c part2) > multi.bz2 \
         && (gzip -c part1; gzip -c part2) > multi.gz",
    );
    for name in [
        "app.tar",
        "app.tar.gz",
        "app.tar.bz2",
        "app.tar.xz",
        "app.tar.zst",
        "gnu.tar.zst",
        "gnu.txz",
        "gnu.tbz",
        "no-extension",
        "multi.zst",
        "multi.xz",
        "multi.bz2",
        "multi.gz",
    ] {
        fs::copy(work.join(name), e.s(name)).unwrap();
        let dest = format!("/out/{name}/");
        e.copy(&add(&format!("/{name}"), &dest)).unwrap();
        let out = e.d(&format!("out/{name}"));
        assert_eq!(
            tree(&out),
            ["big.txt", "conf-link", "etc/", "etc/app/", "etc/app/conf"],
            "{name}"
        );
        assert_eq!(read(&out.join("etc/app/conf")), "key=value\n", "{name}");
        assert_eq!(mode(&out.join("etc/app/conf")), 0o640, "{name}");
        assert_eq!(read(&out.join("big.txt")), big, "{name}");
        assert_eq!(
            fs::read_link(out.join("conf-link")).unwrap(),
            Path::new("etc/app/conf"),
            "{name}"
        );
    }
}

/// A file that starts like a compressed stream but is not a compressed tar (or is a
/// compressed non-tar) is copied as it is, as BuildKit does.
#[test]
fn add_copies_compressed_files_that_are_not_tars() {
    if !require(
        "ADD of files compressed by the CLI tools",
        &[Tool("xz"), Tool("zstd"), Tool("bzip2")],
    ) {
        return;
    }
    let e = Env::new();
    let junk = [0xfd, b'7', b'z', b'X', b'Z', 0, 1, 2];
    fs::write(e.s("rootfs.tar.xz"), junk).unwrap();
    e.copy(&add("/rootfs.tar.xz", "/")).unwrap();
    assert_eq!(fs::read(e.d("rootfs.tar.xz")).unwrap(), junk);
    e.file("notes.txt", "just text, compressed", 0o644);
    sh(
        &e.src,
        "zstd -q notes.txt -o notes.zst && xz -k notes.txt && bzip2 -k notes.txt",
    );
    for name in ["notes.zst", "notes.txt.xz", "notes.txt.bz2"] {
        let before = fs::read(e.s(name)).unwrap();
        e.copy(&add(&format!("/{name}"), "/c/")).unwrap();
        assert_eq!(
            fs::read(e.d(&format!("c/{name}"))).unwrap(),
            before,
            "{name}"
        );
    }
}

#[test]
fn add_archive_cannot_write_outside() {
    let e = Env::new();
    let before = e.outside();
    write_tgz(&e, "evil.tar.gz", |b| {
        b.append(
            &tar_header("../../../outside", tar::EntryType::Regular, 0o644, 1),
            &b"x"[..],
        )
        .unwrap();
    });
    let m = user_err(e.copy(&add("/evil.tar.gz", "/x/")));
    assert!(m.contains("outside the extraction directory"), "{m}");
    // A symlink in the archive pointing at a host path, then a file through it.
    let victim = e.parent.join("victim");
    write_tgz(&e, "link.tar.gz", |b| {
        let mut l = tar_header("lnk", tar::EntryType::Symlink, 0o777, 0);
        l.set_link_name(&victim).unwrap();
        l.set_cksum();
        b.append(&l, &[][..]).unwrap();
        b.append(
            &tar_header("lnk/evil", tar::EntryType::Regular, 0o644, 1),
            &b"x"[..],
        )
        .unwrap();
        let mut up = tar_header("up", tar::EntryType::Symlink, 0o777, 0);
        up.set_link_name("../../../..").unwrap();
        up.set_cksum();
        b.append(&up, &[][..]).unwrap();
        b.append(
            &tar_header("up/sentinel.txt", tar::EntryType::Regular, 0o644, 1),
            &b"x"[..],
        )
        .unwrap();
    });
    e.copy(&add("/link.tar.gz", "/y/")).unwrap();
    let inside = e
        .d("y")
        .join(victim.strip_prefix("/").unwrap())
        .join("evil");
    assert_eq!(read(&inside), "x");
    assert_eq!(read(&e.d("y/sentinel.txt")), "x");
    assert_eq!(before, e.outside());
}
