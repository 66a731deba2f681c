//! `.dockerignore`: finding the file, reading its patterns and matching build-context paths
//! against them with moby's rules (`moby/patternmatcher` and its `ignorefile` reader). The
//! context walker that uses the matcher lives in [`crate::walk`].
//!
//! This module owns: which ignore file applies to a build, how its lines become patterns, what
//! each pattern matches, whether a path is excluded, and when a whole directory can be skipped.
//! It must not know about Dockerfile instructions, the build graph, how files are copied,
//! hashed or sent anywhere: it answers "is this context path in or out" and nothing else.
//!
//! # Which file
//! As in BuildKit's Dockerfile frontend (dockerui), `<Dockerfile name>.dockerignore` next to the
//! Dockerfile wins over `<context>/.dockerignore`: with `-f sub/app.Dockerfile` the file
//! `sub/app.Dockerfile.dockerignore` is used if it exists, else `.dockerignore` at the context
//! root, else nothing is ignored. See [`find_ignore_file`].
//!
//! # Rules (as moby's)
//! * Lines starting with `#` are comments (only in column 1); blank lines are skipped; lines
//!   are trimmed; a UTF-8 BOM at the start of the file is dropped.
//! * `!pattern` is an exception: it re-includes what earlier patterns excluded. The last
//!   pattern that matches a path decides.
//! * Patterns are cleaned like Go's `filepath.Clean`, and a leading `/` is dropped: patterns are
//!   always relative to the context root.
//! * `*` matches any run of non-`/` characters, `?` one non-`/` character, `[...]` a character
//!   class (`[^...]` negated, ranges `a-z`), `\` escapes the next character, and `**` matches any
//!   number of directories (including none) wherever it appears.
//! * A path is excluded when it, or any of its parent directories, matches
//!   (`MatchesOrParentMatches`). So `node_modules` excludes everything below it, and
//!   `!node_modules/keep` brings `node_modules/keep` back.
//!
//! # The Dockerfile and the ignore file themselves
//! The frontend always reads the Dockerfile and the ignore file, whatever the patterns say.
//! Whether they are visible to `COPY . .` follows the patterns like any other file: BuildKit
//! sends the Dockerfile to the frontend separately from the context, so a `.dockerignore`
//! listing `Dockerfile` or `.dockerignore` hides them from `COPY` but not from the frontend.
//! Nothing here special-cases those names.
//!
//! # Where we differ from moby, on purpose
//! * Syntax errors, including reversed ranges like `[z-a]`, fail [`Matcher::new`]; moby lets
//!   some through and errors (or panicked, moby#52203) on first match.
//! * moby turns patterns into a Go regexp and leaks regexp syntax: `\d` is a digit class, a
//!   `^` outside `[...]` is an anchor, `*` inside `[...]` breaks the class. Here `\x` is always
//!   a literal `x`, `^` is literal, and class contents follow `filepath.Match`.
//! * [`Matcher::can_skip_dir`] also handles wildcard exceptions (`!**/keep`), where moby's
//!   prefix test would wrongly skip and BuildKit's fsutil gives up skipping.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// File name of the context-wide ignore file.
pub const DOCKERIGNORE: &str = ".dockerignore";

/// An ignore file that was found, and the patterns read from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoreFile {
    pub path: PathBuf,
    pub patterns: Vec<String>,
}

/// What can go wrong reading ignore files, compiling patterns or walking a context.
#[derive(Debug, thiserror::Error)]
pub enum IgnoreError {
    #[error("cannot read {}: {source}; check that it exists and is readable", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{} is not valid UTF-8; save the ignore file as UTF-8 text", path.display())]
    NotUtf8 { path: PathBuf },
    #[error(
        "invalid .dockerignore pattern {pattern:?}: {reason}; fix or remove that line \
         (`\\` escapes a special character)"
    )]
    BadPattern { pattern: String, reason: String },
    #[error(
        "illegal exclusion pattern: \"!\"; an exception line must name what to re-include, \
         e.g. `!keep.txt`"
    )]
    LoneExclamation,
    #[error(
        "{} in the build context has a name that is not valid UTF-8; rename it or exclude it \
         in .dockerignore",
        path.display()
    )]
    NonUtf8Path { path: PathBuf },
    #[error("Dockerfile path {} has no file name; pass the path of the Dockerfile itself", path.display())]
    BadDockerfilePath { path: PathBuf },
}

/// Reads the patterns of an ignore file (moby's `ignorefile.ReadAll`): BOM dropped, `#` lines
/// and blank lines skipped, each line trimmed and cleaned, a leading `/` removed, `!` kept in
/// front. A line that is only `!` is returned as `"!"`; [`Matcher::new`] rejects it.
///
/// Never fails today; the `Result` keeps room for limits without changing callers.
pub fn read_patterns(text: &str) -> Result<Vec<String>, IgnoreError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.starts_with('#') {
            continue;
        }
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let (invert, body) = match line.strip_prefix('!') {
            Some(rest) => (true, rest.trim()),
            None => (false, line),
        };
        let body = if body.is_empty() {
            String::new()
        } else {
            clean_relative(body)
        };
        out.push(if invert { format!("!{body}") } else { body });
    }
    Ok(out)
}

/// Finds the ignore file for a build: `<dockerfile>.dockerignore` beside the Dockerfile, else
/// `<context_dir>/.dockerignore`, else `None`. A relative `dockerfile` is taken relative to
/// `context_dir`; `-` (Dockerfile on stdin) only looks in the context. A missing file, or a
/// directory in its place, counts as absent; any other read error is reported.
pub fn find_ignore_file(
    context_dir: &Path,
    dockerfile: &Path,
) -> Result<Option<IgnoreFile>, IgnoreError> {
    if dockerfile != Path::new("-") {
        let df = context_dir.join(dockerfile); // an absolute `dockerfile` replaces the context
        let Some(name) = df.file_name() else {
            let path = dockerfile.to_path_buf();
            return Err(IgnoreError::BadDockerfilePath { path });
        };
        let mut ignore_name = name.to_os_string();
        ignore_name.push(DOCKERIGNORE);
        if let Some(found) = read_ignore_file(&df.with_file_name(ignore_name))? {
            return Ok(Some(found));
        }
    }
    read_ignore_file(&context_dir.join(DOCKERIGNORE))
}

/// The ignore file of a `--build-context NAME=DIR` directory: `DIR/.dockerignore` only.
/// BuildKit's dockerui (frontend/dockerui/namedcontext.go, the `local` case) reads
/// `.dockerignore` at the root of the named directory and uses its patterns as that source's
/// excludes; `<dockerfile>.dockerignore` and the main context's file do not apply to it.
pub fn named_context_ignore_file(dir: &Path) -> Result<Option<IgnoreFile>, IgnoreError> {
    read_ignore_file(&dir.join(DOCKERIGNORE))
}

fn read_ignore_file(path: &Path) -> Result<Option<IgnoreFile>, IgnoreError> {
    use io::ErrorKind::{IsADirectory, NotADirectory, NotFound};
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if matches!(e.kind(), NotFound | IsADirectory | NotADirectory) => return Ok(None),
        Err(e) => return Err(io_err(path)(e)),
    };
    let path = path.to_path_buf();
    match String::from_utf8(bytes) {
        Ok(text) => Ok(Some(IgnoreFile {
            patterns: read_patterns(&text)?,
            path,
        })),
        Err(_) => Err(IgnoreError::NotUtf8 { path }),
    }
}

/// Compiled patterns, ready to answer "is this context path excluded".
#[derive(Debug, Clone)]
pub struct Matcher {
    patterns: Vec<Pattern>,
}

impl Matcher {
    /// Compiles patterns (as from [`read_patterns`]) like moby's `patternmatcher.New`: each is
    /// trimmed and cleaned, empty ones are dropped, a leading `!` makes an exception. Beyond
    /// moby, the part after `!` is cleaned again and a leading `/` is dropped, so hand-written
    /// patterns behave like those read from a file. A pattern that is only `!`, or whose syntax
    /// is wrong (unclosed `[`, reversed range, trailing `\`), is an error naming the pattern.
    pub fn new(patterns: &[String]) -> Result<Matcher, IgnoreError> {
        let mut out = Vec::with_capacity(patterns.len());
        for raw in patterns {
            let p = raw.trim();
            if p.is_empty() {
                continue;
            }
            // moby cleans before looking at `!`, so `!/` and `./!` are a lone `!` too.
            let cleaned = clean(p);
            let (exception, body) = match cleaned.strip_prefix('!') {
                Some("") => return Err(IgnoreError::LoneExclamation),
                Some(rest) => (true, rest),
                None => (false, cleaned.as_str()),
            };
            let text = clean_relative(body);
            let (kind, toks) = compile(&text).map_err(|reason| IgnoreError::BadPattern {
                pattern: raw.clone(),
                reason,
            })?;
            let (head, tail) = literal_ends(&toks);
            out.push(Pattern {
                text,
                exception,
                kind,
                toks,
                head,
                tail,
            });
        }
        Ok(Matcher { patterns: out })
    }

    /// Whether `rel_path` ('/'-separated, relative to the context, as
    /// [`crate::walk::walk_context`] gives them) is excluded: the last pattern matching
    /// it or one of its parent directories is not an exception. The context root (`""` or `"."`)
    /// is never excluded.
    pub fn is_excluded(&self, rel_path: &str) -> bool {
        if rel_path.is_empty() || rel_path == "." {
            return false;
        }
        let parent = go_dir(rel_path);
        // The parent and each of its ancestors, as prefixes of `parent` (none for ".").
        let parents = || {
            let dirs = if parent == "." { "" } else { parent.as_str() };
            dirs.match_indices('/')
                .map(|(i, _)| &dirs[..i])
                .chain((!dirs.is_empty()).then_some(dirs))
        };
        self.decide(rel_path, |_, p| parents().any(|d| p.matches(d)))
    }

    /// The rule itself: the last pattern that matches `rel_path` or (`above`) one of its
    /// ancestors decides, excluded unless it is an exception.
    fn decide(&self, rel_path: &str, above: impl Fn(usize, &Pattern) -> bool) -> bool {
        let mut excluded = false;
        for (i, p) in self.patterns.iter().enumerate() {
            // Only a pattern that could flip the answer is worth evaluating.
            if p.exception != excluded {
                continue;
            }
            if p.matches(rel_path) || above(i, p) {
                excluded = !p.exception;
            }
        }
        excluded
    }

    /// [`Matcher::ancestors_matched`] of the context root: no pattern matches it.
    pub fn root_flags(&self) -> Vec<bool> {
        vec![false; self.patterns.len()]
    }

    /// For a walker: which patterns match directory `rel_dir` or one of its ancestors, from
    /// the same for its parent (`parent`, all false at the context root).
    pub fn ancestors_matched(&self, rel_dir: &str, parent: &[bool]) -> Vec<bool> {
        self.patterns
            .iter()
            .zip(parent)
            .map(|(p, &above)| above || p.matches(rel_dir))
            .collect()
    }

    /// [`Matcher::is_excluded`] for a path directly inside a directory whose
    /// [`Matcher::ancestors_matched`] is `dir`: one match per pattern instead of one per
    /// pattern and ancestor.
    pub fn is_excluded_in(&self, rel_path: &str, dir: &[bool]) -> bool {
        self.decide(rel_path, |i, _| dir[i])
    }

    /// Whether a walker may skip everything below `rel_dir`: the directory is excluded and no
    /// exception pattern could match any path below it, so nothing under it can come back.
    pub fn can_skip_dir(&self, rel_dir: &str) -> bool {
        self.is_excluded(rel_dir) && !self.exception_could_match_below(rel_dir)
    }

    /// Whether a pattern excludes every entry of the context root (`*`, `**` or `**/*`, not
    /// as an exception): BuildKit's CopyIgnoredFile check then warns about `COPY . .` too.
    pub fn excludes_root_entries(&self) -> bool {
        self.patterns
            .iter()
            .any(|p| !p.exception && matches!(p.text.as_str(), "*" | "**" | "**/*"))
    }

    /// Whether any pattern is an exception (`!...`).
    pub fn has_exceptions(&self) -> bool {
        self.patterns.iter().any(|p| p.exception)
    }

    pub(crate) fn exception_could_match_below(&self, rel_dir: &str) -> bool {
        let dir_slash = format!("{}/", rel_dir.trim_end_matches('/'));
        self.patterns
            .iter()
            .any(|p| p.exception && p.could_match_below(&dir_slash))
    }
}

/// One compiled pattern. `text` is the cleaned pattern without its `!`.
#[derive(Debug, Clone)]
struct Pattern {
    text: String,
    exception: bool,
    kind: Kind,
    toks: Vec<Tok>,
    /// The literal characters the token pattern starts and ends with: a path that does not
    /// start and end with them cannot match (checked before the NFA; `*.pyc` rejects most
    /// paths by their last character).
    head: String,
    tail: String,
}

/// How a pattern matches, chosen as moby's `compile` does: literal patterns compare strings,
/// `prefix/**` and `**suffix` use prefix/suffix tests, everything else the token matcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Exact,
    Prefix,
    Suffix,
    Tokens,
}

#[derive(Debug, Clone)]
enum Tok {
    Lit(char),
    /// `*`: any run of non-`/` characters.
    Star,
    /// `?`: one non-`/` character.
    One,
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
    /// `**` followed by more pattern: nothing, or anything ending in `/` (regex `(.*/)?`).
    AnyDirs,
    /// `**` at the end: anything (regex `.*`).
    AnyRest,
}

impl Pattern {
    fn matches(&self, path: &str) -> bool {
        match self.kind {
            Kind::Exact => path == self.text,
            Kind::Prefix => path.starts_with(&self.text[..self.text.len() - 2]),
            Kind::Suffix => {
                let suffix = &self.text[2..];
                path.ends_with(suffix) || suffix.strip_prefix('/').is_some_and(|rest| path == rest)
            }
            Kind::Tokens => {
                path.starts_with(&self.head)
                    && path.ends_with(&self.tail)
                    && Nfa::run(&self.toks, path).accepts()
            }
        }
    }

    /// Whether this pattern could match some path `dir_slash + rest` with `rest` non-empty.
    /// May say yes when unsure; must never say no when it could.
    fn could_match_below(&self, dir_slash: &str) -> bool {
        match self.kind {
            Kind::Exact => self.text.len() > dir_slash.len() && self.text.starts_with(dir_slash),
            Kind::Prefix => {
                let prefix = &self.text[..self.text.len() - 2];
                prefix.starts_with(dir_slash) || dir_slash.starts_with(prefix)
            }
            Kind::Suffix => true,
            Kind::Tokens => Nfa::run(&self.toks, dir_slash).can_continue(),
        }
    }
}

/// Translates a cleaned pattern into tokens, choosing the match kind the way moby's
/// `Pattern.compile` does, and checks its syntax as Go's `filepath.Match` would.
fn compile(pattern: &str) -> Result<(Kind, Vec<Tok>), String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut kind = Kind::Exact;
    let mut toks = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let first = toks.is_empty();
        let c = chars[i];
        i += 1;
        let tok = match c {
            '*' if chars.get(i) == Some(&'*') => {
                i += 1;
                if chars.get(i) == Some(&'/') {
                    i += 1; // `**/` behaves as `**`
                }
                let at_end = i == chars.len();
                kind = match (first, at_end, kind) {
                    (true, _, _) => Kind::Suffix,
                    (false, true, Kind::Exact) => Kind::Prefix,
                    _ => Kind::Tokens,
                };
                toks.push(if at_end { Tok::AnyRest } else { Tok::AnyDirs });
                continue;
            }
            '*' => Tok::Star,
            '?' => Tok::One,
            '\\' => {
                let next = *chars.get(i).ok_or("trailing `\\` escapes nothing")?;
                i += 1;
                Tok::Lit(next)
            }
            '[' => parse_class(&chars, &mut i)?,
            ']' => Tok::Lit(']'),
            c => {
                toks.push(Tok::Lit(c));
                continue;
            }
        };
        toks.push(tok);
        kind = Kind::Tokens;
    }
    Ok((kind, toks))
}

/// Parses a character class after its `[`, with `filepath.Match`'s grammar.
fn parse_class(chars: &[char], i: &mut usize) -> Result<Tok, String> {
    let negated = chars.get(*i) == Some(&'^');
    if negated {
        *i += 1;
    }
    let mut ranges = Vec::new();
    loop {
        if chars.get(*i) == Some(&']') && !ranges.is_empty() {
            *i += 1;
            return Ok(Tok::Class { negated, ranges });
        }
        let lo = class_char(chars, i)?;
        let mut hi = lo;
        if chars.get(*i) == Some(&'-') {
            *i += 1;
            hi = class_char(chars, i)?;
        }
        if hi < lo {
            return Err(format!("character range `{lo}-{hi}` is out of order"));
        }
        ranges.push((lo, hi));
    }
}

fn class_char(chars: &[char], i: &mut usize) -> Result<char, String> {
    let unclosed = || "unclosed character class `[`".to_string();
    let mut c = *chars.get(*i).ok_or_else(unclosed)?;
    if c == '-' || c == ']' {
        return Err(format!("`{c}` must be escaped inside a character class"));
    }
    if c == '\\' {
        *i += 1;
        c = *chars.get(*i).ok_or_else(unclosed)?;
    }
    *i += 1;
    if *i >= chars.len() {
        return Err(unclosed());
    }
    Ok(c)
}

/// Live states of the token matcher: `n + 1` "before token i" states (state `n` accepts),
/// then `n` "inside the `.*` of the `AnyDirs` at token i" states. The semantics are those of
/// the regexp moby builds: `.` does not match a newline, classes may match `/`.
struct Nfa<'a> {
    toks: &'a [Tok],
    live: Vec<bool>,
}

impl<'a> Nfa<'a> {
    /// Feeds `input` from the start state, stopping early once nothing is live.
    fn run(toks: &'a [Tok], input: &str) -> Self {
        let mut nfa = Nfa {
            toks,
            live: vec![false; 2 * toks.len() + 1],
        };
        // Two state sets, swapped per character (a no-op rebuild matches every context path).
        let mut next = Nfa {
            toks,
            live: vec![false; nfa.live.len()],
        };
        nfa.add(0);
        for c in input.chars() {
            if !nfa.live.contains(&true) {
                break;
            }
            next.live.fill(false);
            nfa.step_into(c, &mut next);
            std::mem::swap(&mut nfa, &mut next);
        }
        nfa
    }

    /// Marks a state live, following the moves that consume nothing.
    fn add(&mut self, state: usize) {
        if std::mem::replace(&mut self.live[state], true) {
            return;
        }
        match self.toks.get(state) {
            Some(Tok::Star | Tok::AnyRest) => self.add(state + 1),
            Some(Tok::AnyDirs) => {
                self.add(state + 1);
                self.add(self.toks.len() + 1 + state);
            }
            _ => {}
        }
    }

    /// The states `c` leads to from these, into `next` (all dead on entry).
    fn step_into(&self, c: char, next: &mut Nfa<'a>) {
        let n = self.toks.len();
        for state in (0..self.live.len()).filter(|&s| self.live[s]) {
            let Some(tok) = self.toks.get(state) else {
                if state > n {
                    // Inside `(.*/)?`: any char but a newline; a `/` may also end it.
                    if c != '\n' {
                        next.add(state);
                    }
                    if c == '/' {
                        next.add(state - n);
                    }
                }
                continue;
            };
            match tok {
                Tok::Lit(l) if *l == c => next.add(state + 1),
                Tok::One if c != '/' => next.add(state + 1),
                Tok::Class { negated, ranges }
                    if ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated =>
                {
                    next.add(state + 1)
                }
                Tok::Star if c != '/' => next.add(state),
                Tok::AnyRest if c != '\n' => next.add(state),
                _ => {}
            }
        }
    }

    fn accepts(&self) -> bool {
        self.live[self.toks.len()]
    }

    /// Whether some non-empty continuation could still lead to acceptance.
    fn can_continue(&self) -> bool {
        let n = self.toks.len();
        self.live
            .iter()
            .enumerate()
            .any(|(state, &live)| live && state != n)
    }
}

/// The literal characters before the first and after the last non-literal token.
fn literal_ends(toks: &[Tok]) -> (String, String) {
    let lit = |t: &Tok| match t {
        Tok::Lit(c) => Some(*c),
        _ => None,
    };
    let head: String = toks.iter().map_while(lit).collect();
    if head.chars().count() == toks.len() {
        return (head, String::new());
    }
    let mut tail: Vec<char> = toks.iter().rev().map_while(lit).collect();
    tail.reverse();
    (head, tail.into_iter().collect())
}

/// Go's `path.Clean`: collapse `//`, drop `.`, resolve `..` lexically; `""` becomes `"."`.
fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => match parts.last() {
                Some(&last) if last != ".." => {
                    parts.pop();
                }
                _ if rooted => {}
                _ => parts.push(".."),
            },
            _ => parts.push(part),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

/// [`clean`], then without a leading `/` (patterns are relative to the context root).
fn clean_relative(pattern: &str) -> String {
    let cleaned = clean(pattern);
    match cleaned.strip_prefix('/') {
        Some(rest) if !rest.is_empty() => rest.to_string(),
        _ => cleaned,
    }
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> IgnoreError {
    let path = path.to_path_buf();
    move |source| IgnoreError::Io { path, source }
}

/// Go's `path.Dir`: everything before the last `/`, cleaned.
fn go_dir(path: &str) -> String {
    match path.rfind('/') {
        Some(i) => clean(&path[..=i]),
        None => ".".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_ends_only_prefilter_the_token_matcher() {
        let (_, toks) = compile("ab*ba").unwrap();
        assert_eq!(literal_ends(&toks), ("ab".into(), "ba".into()));
        let m = Matcher::new(&["ab*ba".into(), "*.pyc".into()]).unwrap();
        assert!(m.is_excluded("abxba"));
        assert!(m.is_excluded("abba"));
        // Starts with "ab" and ends with "ba", yet too short for both: the NFA says no.
        assert!(!m.is_excluded("aba"));
        assert!(m.is_excluded("x.pyc"));
        assert!(!m.is_excluded("x.py"));
        assert!(!m.is_excluded("dir/x.pyc"), "`*` stops at `/`");
    }
}
