//! Tests for `.dockerignore` reading, matching, directory skipping, walking and file
//! precedence. The tables follow the cases of moby/patternmatcher's tests
//! (patternmatcher_test.go, ignorefile_test.go), written out as our own data.

use std::fs;
use std::path::Path;

use context::dockerignore::{find_ignore_file, read_patterns, IgnoreError, IgnoreFile, Matcher};
use context::walk::walk_context;
use proptest::prelude::*;

fn matcher(patterns: &[&str]) -> Matcher {
    try_matcher(patterns).unwrap_or_else(|e| panic!("patterns {patterns:?}: {e}"))
}

/// Splits a space-separated list, to keep expected listings on one line.
fn words(s: &str) -> Vec<&str> {
    s.split_whitespace().collect()
}

fn try_matcher(patterns: &[&str]) -> Result<Matcher, IgnoreError> {
    let owned: Vec<String> = patterns.iter().map(|p| p.to_string()).collect();
    Matcher::new(&owned)
}

/// A context directory under the system temp dir, removed on drop.
struct TempDir(testkit::files::TempDir);

impl TempDir {
    fn new(name: &str) -> TempDir {
        TempDir(testkit::files::temp_dir(&format!(
            "pallet-dockerignore-{name}"
        )))
    }

    fn file(&self, rel: &str, text: &str) {
        testkit::files::write(&self.path().join(rel), text);
    }

    fn dir(&self, rel: &str) {
        fs::create_dir_all(self.path().join(rel)).unwrap();
    }

    fn path(&self) -> &Path {
        self.0.path()
    }

    /// The ignore file found for `dockerfile` in this context, which must exist.
    fn find(&self, dockerfile: &str) -> IgnoreFile {
        find_ignore_file(self.path(), Path::new(dockerfile))
            .unwrap()
            .expect("an ignore file")
    }
}

// ---------------------------------------------------------------- read_patterns (ReadAll)

#[test]
fn read_patterns_like_ignorefile_readall() {
    let content =
        "test1\n/test2\n/a/file/here\n\nlastfile\n# this is a comment\n! /inverted/abs/path\n!\n! ";
    let expected = words("test1 test2 a/file/here lastfile !inverted/abs/path ! !");
    assert_eq!(read_patterns(content).unwrap(), expected);
    assert!(read_patterns("").unwrap().is_empty());
}

#[test]
fn read_patterns_rules() {
    let cases: &[(&str, &[&str])] = &[
        ("\u{feff}# bom then comment\nfoo", &["foo"]),
        ("\u{feff}foo", &["foo"]),
        ("foo\r\nbar\r\n", &["foo", "bar"]),
        ("  spaced  \n\t\ttabbed\t", &["spaced", "tabbed"]),
        // Only a '#' in column 1 starts a comment.
        ("  # not a comment", &["# not a comment"]),
        ("a/./b/../c", &["a/c"]),
        ("a//b/", &["a/b"]),
        ("./foo", &["foo"]),
        ("//foo", &["foo"]),
        ("/", &["/"]),
        ("!  /x/../y", &["!y"]),
        ("..\n../x", &["..", "../x"]),
        ("**/*.go", &["**/*.go"]),
    ];
    for (text, expected) in cases {
        assert_eq!(&read_patterns(text).unwrap(), expected, "input {text:?}");
    }
}

// ---------------------------------------------------------------- matching tables

/// Runs a table of `PATTERNS | PATHS => EXPECTED` lines. Patterns and paths are separated by
/// spaces; `EXPECTED` has one `y` (excluded) or `n` per path, or is `err` when the patterns
/// must be rejected. `#` starts a comment line.
fn check_table(table: &str, check: impl Fn(&Matcher, &str) -> bool) {
    for line in table.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (patterns, rest) = line.split_once(" | ").expect(line);
        let (paths, want) = rest.split_once(" => ").expect(line);
        let patterns: Vec<&str> = patterns.split_whitespace().collect();
        let patterns = if patterns == ["-"] { vec![] } else { patterns };
        let m = try_matcher(&patterns);
        if want == "err" {
            assert!(m.is_err(), "{patterns:?} should be rejected");
            continue;
        }
        let m = m.unwrap_or_else(|e| panic!("{line}: {e}"));
        let paths: Vec<&str> = paths.split_whitespace().collect();
        assert_eq!(paths.len(), want.len(), "{line}");
        for (path, want) in paths.iter().zip(want.chars()) {
            assert_eq!(
                check(&m, path),
                want == 'y',
                "patterns {patterns:?} path {path:?}"
            );
        }
    }
}

/// moby's TestMatches table (one pattern each), under MatchesOrParentMatches.
const MATCHES: &str = r"
    ** | file file/ / dir/file dir/file/ => yyyyy
    **/ | file file/ / dir/file dir/file/ => yyyyy
    **/** | dir/file dir/file/ => yy
    dir/** | dir/file dir/file/ dir/dir2/file dir/dir2/file/ => yyyy
    **/dir | dir dir/file => yy
    **/dir2/* | dir/dir2/file dir/dir2/file/ => yy
    **/dir2/** | dir/dir2/dir3/file dir/dir2/dir3/file/ => yy
    **file | file dir/file dir/dir/file => yyy
    **/file | dir/file dir/dir/file => yy
    **/file* | dir/dir/file dir/dir/file.txt => yy
    **/file*txt | dir/dir/file.txt => y
    **/file*.txt | dir/dir/file.txt => y
    **/file*.txt* | dir/dir/file.txt => y
    **/**/*.txt | dir/dir/file.txt file.txt => yy
    **/**/*.txt2 | dir/dir/file.txt => n
    **/*.txt | file.txt => y
    a**/*.txt | a/file.txt a/dir/file.txt a/dir/dir/file.txt => yyy
    a/*.txt | a/dir/file.txt a/file.txt => ny
    a/*.txt** | a/file.txt => y
    a[b-d]e | ae ace aae => nyn
    a[^b-d]e | aze => y
    .* | .foo foo => yn
    abc.def | abcdef abc.def abcZdef => nyn
    abc?def | abcZdef abcdef => yn
    **/foo/bar | foo/bar dir/foo/bar dir/dir2/foo/bar => yyy
    abc/** | abc abc/def abc/def/ghi => nyy
    **/.foo | .foo bar.foo => yn
    a(b)c/def | a(b)c/def a(b)c/xyz => yn
    a.|)$(}+{bc | a.|)$(}+{bc => y
    dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl | dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl => y
    dist/*.whl | dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl => y
    # Escapes (the non-Windows rows).
    a\\ | a\ => y
    a\*b | a*b axb => yn
    \[x\] | [x] => y
    a\? | a? ab => yn
    # A leading slash is dropped: patterns are relative to the context root.
    /foo | foo => y
    /foo/bar | foo/bar/baz => y
    # Plain names only match at the root (unlike .gitignore); `*` stops at `/`.
    foo | sub/foo => n
    * | a/b => y
    */b | a/b a/c/b => yn
    # moby's `**x` is a plain suffix test, so it also matches inside a name.
    **file | dir/myfile => y
    **/file | dir/myfile => n
    # Character classes may match `/` (moby hands them to a regexp); `?` is one character.
    a[/]b | a/b => y
    ? | é => y
    a?b | a/b => n
";

#[test]
fn matches_table() {
    check_table(MATCHES, Matcher::is_excluded);
}

/// moby's multi-pattern table, its single-case tests and more exception cases.
const MULTI: &str = r"
    ** !util/docker/web | util/docker/web/foo => n
    ** !util/docker/web util/docker/web/foo | util/docker/web/foo => y
    ** !dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl | dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl => n
    ** !dist/*.whl | dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl => n
    * | fileutils.go => y
    *.go | fileutils.go => y
    !fileutils.go *.go | fileutils.go => y
    *.go !fileutils.go | fileutils.go => n
    docs !docs/README.md | docs/README.md docs/other.md docs => nyy
    docs/ !docs/README.md | docs/README.md => n
    docs/* !docs/README.md | docs/README.md => n
    - | /any/path/there => n
    node_modules !node_modules/keep | node_modules/keep/a/b node_modules/other => ny
    *.md !README*.md README-secret.md | README-secret.md README.md => yn
    # The context root is never excluded.
    * | . => n
    ** | . => n
";

#[test]
fn multi_pattern_table() {
    check_table(MULTI, Matcher::is_excluded);
    // Surrounding spaces and empty patterns are ignored.
    let m = matcher(&["docs", "  !docs/README.md  ", "", "config"]);
    assert!(!m.is_excluded("docs/README.md"));
    assert!(m.is_excluded("config/x"));
    assert!(!m.is_excluded(""));
}

/// Go's filepath.Match table as moby's TestMatch runs it.
const FILEPATH_MATCH: &str = r"
    abc | abc => y
    * | abc => y
    *c | abc => y
    a* | a abc ab/c => yyy
    a*/b | abc/b a/c/b => yn
    a*b*c*d*e*/f | axbxcxdxe/f axbxcxdxexxx/f axbxcxdxe/xxx/f axbxcxdxexxx/fff => yynn
    a*b?c*x | abxbbxdbxebxczzx abxbbxdbxebxczzy => yn
    ab[c] | abc => y
    ab[b-d] | abc => y
    ab[e-g] | abc => n
    ab[^c] | abc => n
    ab[^b-d] | abc => n
    ab[^e-g] | abc => y
    a\*b | a*b ab => yn
    a?b | a☺b a/b => yn
    a[^a]b | a☺b => y
    a???b | a☺b => n
    a[^a][^a][^a]b | a☺b => n
    [a-ζ]* | α => y
    *[a-ζ] | A => n
    a*b | a/b => n
    [\]a] | ] => y
    [\-] | - => y
    [x\-] | x - z => yyn
    [\-x] | x - a => yyn
    *x | xxx => y
    # Malformed patterns are rejected when the matcher is built.
    []a] | ] => err
    [-] | - => err
    [x-] | x => err
    [-x] | x => err
    \ | a => err
    [a-b-c] | a => err
    [ | a => err
    [^ | a => err
    [^bc | a => err
    a[ | a => err
    # A reversed range: moby accepts it in New and fails on first use (moby#52203); we
    # reject it up front.
    [Local-Only]/ | x => err
    [z-a] | b => err
";

#[test]
fn filepath_match_table() {
    check_table(FILEPATH_MATCH, Matcher::is_excluded);
}

#[test]
fn bad_patterns_are_named_in_errors() {
    let err = try_matcher(&["ok", "src/[a-"]).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, IgnoreError::BadPattern { ref pattern, .. } if pattern == "src/[a-"));
    assert!(msg.contains("\"src/[a-\""), "{msg}");

    for lone in ["!", " ! ", "!\t", "!/", "./!"] {
        let err = try_matcher(&["a", lone]).unwrap_err();
        assert!(matches!(err, IgnoreError::LoneExclamation), "{lone:?}");
        assert!(err.to_string().contains("illegal exclusion pattern"));
    }
    // The same file text, through read_patterns, fails the same way.
    let patterns = read_patterns("a\n!\n").unwrap();
    assert!(matches!(
        Matcher::new(&patterns),
        Err(IgnoreError::LoneExclamation)
    ));
}

#[test]
fn exceptions_are_reported() {
    assert!(!matcher(&["docs", "config"]).has_exceptions());
    assert!(!matcher(&[]).has_exceptions());
    for exception in ["!docs/README.md", "  !docs/README.md", "!docs/README.md  "] {
        assert!(matcher(&["docs", exception]).has_exceptions());
    }
}

// ---------------------------------------------------------------- can_skip_dir

/// `PATTERNS | DIRS => y/n`: whether each directory may be skipped while walking.
const CAN_SKIP: &str = r"
    node_modules | node_modules src => yn
    node_modules !node_modules/keep | node_modules node_modules/other => ny
    node_modules !node_modules/keep/deep | node_modules/keep node_modules/kee => ny
    # Wildcard exceptions could re-include anything they can reach.
    node_modules !**/keep | node_modules => n
    node_modules !node_*/keep | node_modules => n
    node_modules !node_modules/*.md | node_modules => n
    node_modules !other/*.md | node_modules => y
    node_modules !node_modules/keep/** | node_modules => n
    node_modules !node** | node_modules => n
    * !*/keep | any => n
    * !a?/keep | b ab => yn
    # An exception matching only the directory itself, then excluded again.
    build !buil? build | build => y
    # A directory that is not excluded is never skipped.
    *.log | logs => n
    **/*.log | a.log => y
";

#[test]
fn can_skip_dir_cases() {
    check_table(CAN_SKIP, Matcher::can_skip_dir);
}

// ---------------------------------------------------------------- walk_context

#[test]
fn walk_context_reincludes_under_excluded_dir() {
    let ctx = TempDir::new("walk");
    ctx.file("Dockerfile", "FROM scratch\n");
    ctx.file(".dockerignore", "node_modules\n!node_modules/keep\n*.log\n");
    ctx.file("src/main.rs", "");
    ctx.file("src/debug.log", "");
    ctx.file("debug.log", "");
    ctx.file("node_modules/big/index.js", "");
    ctx.file("node_modules/keep/a.js", "");
    ctx.file("node_modules/keep/sub/b.js", "");
    ctx.dir("empty");

    let patterns = ctx.find("Dockerfile").patterns;
    let m = Matcher::new(&patterns).unwrap();
    let listed = walk_context(ctx.path(), &m).unwrap();
    // `node_modules` is listed because it holds re-included paths; `*.log` only matches at
    // the root, as in docker, so `src/debug.log` stays.
    let expected = ".dockerignore Dockerfile empty node_modules node_modules/keep \
        node_modules/keep/a.js node_modules/keep/sub node_modules/keep/sub/b.js src \
        src/debug.log src/main.rs";
    assert_eq!(listed, words(expected));
}

#[test]
fn walk_context_hides_dockerfile_and_ignore_file_when_listed() {
    let ctx = TempDir::new("hide");
    ctx.file("Dockerfile", "FROM scratch\n");
    ctx.file(".dockerignore", "Dockerfile\n.dockerignore\n");
    ctx.file("app.txt", "");
    let found = ctx.find("Dockerfile");
    let listed = walk_context(ctx.path(), &Matcher::new(&found.patterns).unwrap()).unwrap();
    assert_eq!(listed, ["app.txt"]);
    // The frontend still reads both files directly.
    assert!(fs::read_to_string(ctx.path().join("Dockerfile")).is_ok());
}

#[test]
fn walk_context_without_patterns_lists_everything() {
    let ctx = TempDir::new("all");
    ctx.file("a/b/c.txt", "");
    ctx.file("z", "");
    let listed = walk_context(ctx.path(), &matcher(&[])).unwrap();
    assert_eq!(listed, ["a", "a/b", "a/b/c.txt", "z"]);
}

/// Pruning must not change the answer: the walk equals a brute-force filter of every path
/// (a file is listed when included, a directory when included or holding an included path).
#[test]
fn walk_context_agrees_with_brute_force() {
    let files: Vec<String> = words(
        "a/x.txt a/b/x.txt a/b/c/deep.md a/keep/k.txt node_modules/m/index.js \
         node_modules/keep/k.js docs/README.md docs/guide/intro.md top.txt x.log",
    )
    .into_iter()
    .map(String::from)
    .collect();
    let sets = "
        * | ** | ** !**/keep | * !a/keep | a !a/b/c | a !a/*/c/*.md | */* !*/keep | ? !?/k*
        node_modules !node_modules/keep | docs !**/*.md docs/guide | **/*.txt !a/**
        a/** !a/b/** a/b/c | ";
    check_walk_against_brute_force("brute", &files, sets);
}

/// A context wide enough that the walk lists directories on several threads at once.
#[test]
fn a_wide_context_walked_in_parallel_agrees_with_brute_force() {
    let mut files = Vec::new();
    for i in 0..150 {
        for f in ["a/x.txt", "a/keep/k.txt", "n/m.js", "n/keep/k.js", "d.md"] {
            files.push(format!("w{i:03}/{f}"));
        }
    }
    let sets = "** !**/keep | */n | **/*.txt !w00*/** | w1* !w1*/a/keep | ";
    check_walk_against_brute_force("wide", &files, sets);
}

/// Builds `files` in a context and checks the walk of each `|`-separated pattern set against
/// the definition: a file is listed when included, a directory when included or holding an
/// included path.
fn check_walk_against_brute_force(name: &str, files: &[String], sets: &str) {
    let ctx = TempDir::new(name);
    for f in files {
        ctx.file(f, "");
    }
    let mut all: Vec<String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for f in files {
        let parts: Vec<&str> = f.split('/').collect();
        for i in 1..=parts.len() {
            let p = parts[..i].join("/");
            if seen.insert(p.clone()) {
                all.push(p);
            }
        }
    }
    all.sort();
    for patterns in sets.split('|').map(words) {
        let m = matcher(&patterns);
        let included: Vec<bool> = all.iter().map(|p| !m.is_excluded(p)).collect();
        let expected: Vec<String> = all
            .iter()
            .enumerate()
            .filter(|&(i, p)| {
                // Sorted: whatever lies below `p` follows it, though not only that.
                included[i]
                    || all[i + 1..]
                        .iter()
                        .zip(&included[i + 1..])
                        .any(|(q, inc)| *inc && q.starts_with(&format!("{p}/")))
            })
            .map(|(_, p)| p.clone())
            .collect();
        assert_eq!(
            walk_context(ctx.path(), &m).unwrap(),
            expected,
            "patterns {patterns:?}"
        );
    }
}

#[cfg(unix)]
#[test]
fn walk_context_does_not_follow_symlinks() {
    let outside = TempDir::new("outside");
    outside.file("secret/key", "");
    let ctx = TempDir::new("links");
    ctx.file("real/file", "");
    std::os::unix::fs::symlink(outside.path().join("secret"), ctx.path().join("link")).unwrap();
    let listed = walk_context(ctx.path(), &matcher(&[])).unwrap();
    assert_eq!(listed, ["link", "real", "real/file"]);
}

#[cfg(unix)]
#[test]
fn walk_context_skips_unreadable_excluded_dir() {
    use std::os::unix::fs::PermissionsExt;
    let ctx = TempDir::new("perm");
    ctx.file("locked/x", "");
    ctx.file("ok", "");
    let locked = ctx.path().join("locked");
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o000)).unwrap();
    // Skipped entirely: never read, so no error even though it is unreadable.
    let listed = walk_context(ctx.path(), &matcher(&["locked"]));
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(listed.unwrap(), ["ok"]);
}

// ---------------------------------------------------------------- which ignore file

#[test]
fn dockerfile_specific_ignore_file_wins() {
    let ctx = TempDir::new("prec");
    ctx.file("Dockerfile", "FROM scratch\n");
    ctx.file(".dockerignore", "from-context\n");
    ctx.file("Dockerfile.dockerignore", "from-dockerfile\n");
    let found = ctx.find("Dockerfile");
    assert_eq!(found.path, ctx.path().join("Dockerfile.dockerignore"));
    assert_eq!(found.patterns, ["from-dockerfile"]);

    fs::remove_file(ctx.path().join("Dockerfile.dockerignore")).unwrap();
    let found = ctx.find("Dockerfile");
    assert_eq!(found.path, ctx.path().join(".dockerignore"));
    assert_eq!(found.patterns, ["from-context"]);

    fs::remove_file(ctx.path().join(".dockerignore")).unwrap();
    assert!(find_ignore_file(ctx.path(), Path::new("Dockerfile"))
        .unwrap()
        .is_none());
}

#[test]
fn ignore_file_beside_a_dockerfile_in_a_subdir() {
    let ctx = TempDir::new("sub");
    ctx.file("sub/app.Dockerfile", "FROM scratch\n");
    ctx.file("sub/app.Dockerfile.dockerignore", "\u{feff}/secret\n");
    ctx.file(".dockerignore", "other\n");
    // A Dockerfile-specific file at the context root does not apply to sub/app.Dockerfile.
    ctx.file("app.Dockerfile.dockerignore", "wrong\n");

    let found = ctx.find("sub/app.Dockerfile");
    assert_eq!(
        found.path,
        ctx.path().join("sub/app.Dockerfile.dockerignore")
    );
    assert_eq!(found.patterns, ["secret"]);

    // Absolute Dockerfile paths work the same.
    let abs = ctx.path().join("sub/app.Dockerfile");
    let found = find_ignore_file(ctx.path(), &abs).unwrap().unwrap();
    assert_eq!(found.patterns, ["secret"]);

    // Without the specific file, the context's .dockerignore applies.
    fs::remove_file(ctx.path().join("sub/app.Dockerfile.dockerignore")).unwrap();
    let found = ctx.find("sub/app.Dockerfile");
    assert_eq!(found.patterns, ["other"]);
}

#[test]
fn ignore_file_edge_cases() {
    let ctx = TempDir::new("edge");
    // An empty Dockerfile-specific file still takes precedence: it means "ignore nothing".
    ctx.file("Dockerfile.dockerignore", "");
    ctx.file(".dockerignore", "x\n");
    let found = ctx.find("Dockerfile");
    assert!(found.patterns.is_empty());

    // Dockerfile from stdin: only the context's file applies.
    let found = ctx.find("-");
    assert_eq!(found.patterns, ["x"]);

    // A directory named .dockerignore is not an ignore file.
    let other = TempDir::new("edge-dir");
    other.dir(".dockerignore");
    assert!(find_ignore_file(other.path(), Path::new("Dockerfile"))
        .unwrap()
        .is_none());

    // Not UTF-8: an error naming the file.
    other.file("Dockerfile.dockerignore", "");
    fs::write(
        other.path().join("Dockerfile.dockerignore"),
        [0xff, 0xfe, b'a'],
    )
    .unwrap();
    let err = find_ignore_file(other.path(), Path::new("Dockerfile")).unwrap_err();
    assert!(matches!(err, IgnoreError::NotUtf8 { .. }));
    assert!(err.to_string().contains("Dockerfile.dockerignore"));

    // A Dockerfile path without a file name is refused.
    assert!(matches!(
        find_ignore_file(ctx.path(), Path::new("..")),
        Err(IgnoreError::BadDockerfilePath { .. })
    ));
}

// ---------------------------------------------------------------- properties

fn pattern_strategy() -> impl Strategy<Value = String> {
    prop::string::string_regex("!?[ab*?/.\\\\\\[\\]^-]{0,10}").unwrap()
}

/// Patterns likely to exclude whole directories, mixed with exceptions that may reach below.
fn skip_pattern_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::string::string_regex("[ab*]{1,2}(/[ab*]{1,2})?").unwrap(),
        prop::string::string_regex("![ab*?/\\[\\]-]{1,8}").unwrap(),
        pattern_strategy(),
    ]
}

fn component_strategy() -> impl Strategy<Value = String> {
    prop::string::string_regex("[ab][ab*?\\[\\].-]{0,2}").unwrap()
}

fn rel_path_strategy() -> impl Strategy<Value = String> {
    prop::collection::vec(component_strategy(), 1..4).prop_map(|c| c.join("/"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_patterns_never_panic(
        patterns in prop::collection::vec(pattern_strategy(), 0..5),
        path in prop::string::string_regex("[ab/.*?\\[\\]\\\\]{0,12}").unwrap(),
    ) {
        let _ = read_patterns(&patterns.join("\n"));
        if let Ok(m) = Matcher::new(&patterns) {
            let _ = m.is_excluded(&path);
            let _ = m.can_skip_dir(&path);
            let _ = m.has_exceptions();
        }
    }

    /// Skipping a directory never loses anything: every path below a skippable directory is
    /// excluded.
    #[test]
    fn skipped_dirs_hide_only_excluded_paths(
        patterns in prop::collection::vec(skip_pattern_strategy(), 1..5),
        dir in rel_path_strategy(),
        below in prop::collection::vec(rel_path_strategy(), 1..6),
    ) {
        if let Ok(m) = Matcher::new(&patterns) {
            if m.can_skip_dir(&dir) {
                for rest in &below {
                    let path = format!("{dir}/{rest}");
                    prop_assert!(m.is_excluded(&path), "{dir:?} skippable but {path:?} included");
                }
            }
        }
    }
}
