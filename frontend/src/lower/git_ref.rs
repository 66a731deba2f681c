//! An `ADD <git remote>` source as BuildKit's Dockerfile frontend reads it (its
//! dfgitutil.ParseGitRef): `remote[?query][#ref[:subdir]]`. The query's keys are `ref`, `tag`,
//! `branch` (made `refs/tags/...` and `refs/heads/...`), `subdir`, `commit` or `checksum`
//! (the commit the ref must resolve to), `keep-git-dir` and `submodules` (booleans; a key
//! alone is true). Conflicting values and unknown keys are errors with BuildKit's texts.
//! Knows URLs, not how the repository is fetched.

/// A git source split into what the Git op takes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct GitRef {
    /// The URL without query and fragment.
    pub remote: String,
    /// A branch, tag, `refs/...` name or commit sha; empty: the remote's HEAD.
    pub reference: String,
    pub subdir: String,
    /// `commit=`/`checksum=`: the commit the ref must resolve to.
    pub checksum: Option<String>,
    pub keep_git_dir: Option<bool>,
    pub submodules: Option<bool>,
}

/// Splits `src`; the error is BuildKit's text.
pub(super) fn parse(src: &str) -> Result<GitRef, String> {
    let (rest, fragment) = src.split_once('#').unwrap_or((src, ""));
    let (remote, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (reference, subdir) = fragment.split_once(':').unwrap_or((fragment, ""));
    let mut g = GitRef {
        remote: remote.to_string(),
        reference: reference.to_string(),
        subdir: subdir.to_string(),
        ..GitRef::default()
    };
    if query.is_empty() {
        return Ok(g);
    }
    let mut seen: Vec<String> = Vec::new();
    let (mut tag, mut branch) = (None, None);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = match pair.split_once('=') {
            Some((k, v)) => (unescape(k), Some(unescape(v))),
            None => (unescape(pair), None),
        };
        if seen.contains(&key) {
            return Err(format!("query {key:?} has multiple values"));
        }
        seen.push(key.clone());
        let value = value.filter(|v| !v.is_empty());
        let flag = |name: &str| match value.as_deref() {
            None => Ok(Some(true)),
            Some(v) => parse_bool(v)
                .map(Some)
                .ok_or_else(|| format!("invalid {name} value: {v:?}")),
        };
        match key.as_str() {
            "keep-git-dir" => g.keep_git_dir = flag("keep-git-dir")?,
            "submodules" => g.submodules = flag("submodules")?,
            _ => {
                let Some(v) = value else {
                    return Err(format!("query {key:?} has no value"));
                };
                match key.as_str() {
                    "ref" => {
                        conflict("ref", &g.reference, &v)?;
                        g.reference = v;
                    }
                    "tag" => tag = Some(v),
                    "branch" => branch = Some(v),
                    "subdir" => {
                        conflict("subdir", &g.subdir, &v)?;
                        g.subdir = v;
                    }
                    "checksum" | "commit" => g.checksum = Some(v),
                    _ => return Err(format!("unexpected query {key:?}")),
                }
            }
        }
    }
    if let Some(tag) = &tag {
        let full = qualified(tag, "refs/tags/");
        conflict("ref", &g.reference, &full)?;
        g.reference = full;
    }
    if let Some(branch) = branch {
        if tag.is_some() {
            return Err("branch conflicts with tag".to_string());
        }
        let full = qualified(&branch, "refs/heads/");
        conflict("ref", &g.reference, &full)?;
        g.reference = full;
    }
    Ok(g)
}

fn qualified(name: &str, prefix: &str) -> String {
    if name.starts_with(prefix) {
        name.to_string()
    } else {
        format!("{prefix}{name}")
    }
}

fn conflict(what: &str, had: &str, new: &str) -> Result<(), String> {
    if had.is_empty() || had == new {
        Ok(())
    } else {
        Err(format!("{what} conflicts: {had:?} vs {new:?}"))
    }
}

/// Go's strconv.ParseBool.
fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// A query component with `%XX` escapes and `+` decoded (as Go's url.ParseQuery); a bad
/// escape is kept as written.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = |c: u8| char::from(c).to_digit(16);
                match (hex(b[i + 1]), hex(b[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(src: &str) -> GitRef {
        parse(src).unwrap_or_else(|e| panic!("{src}: {e}"))
    }

    #[test]
    fn fragments_and_queries() {
        let g = ok("https://h/r.git#main:sub");
        assert_eq!(
            (g.remote.as_str(), g.reference.as_str(), g.subdir.as_str()),
            ("https://h/r.git", "main", "sub")
        );
        let g = ok("https://h/r.git?tag=v1&commit=abc");
        assert_eq!(g.remote, "https://h/r.git");
        assert_eq!(g.reference, "refs/tags/v1");
        assert_eq!(g.checksum.as_deref(), Some("abc"));
        assert_eq!(
            ok("http://h/r.git?branch=base").reference,
            "refs/heads/base"
        );
        assert_eq!(ok("http://h/r.git?ref=base").reference, "base");
        let g = ok("http://h/r.git?subdir=sub&ref=feature");
        assert_eq!(
            (g.reference.as_str(), g.subdir.as_str()),
            ("feature", "sub")
        );
        assert_eq!(
            ok("http://h/r.git?tag=v1#refs/tags/v1").reference,
            "refs/tags/v1"
        );
        let g = ok("http://h/r.git?keep-git-dir&submodules");
        assert_eq!((g.keep_git_dir, g.submodules), (Some(true), Some(true)));
        let g = ok("http://h/r.git?keep-git-dir=false&submodules=0");
        assert_eq!((g.keep_git_dir, g.submodules), (Some(false), Some(false)));
        assert_eq!(ok("http://h/r.git?subdir=a%2Fb").subdir, "a/b");
    }

    #[test]
    fn errors_are_buildkits() {
        let err = |src: &str| parse(src).unwrap_err();
        assert_eq!(
            err("http://h/r.git?tag=v1#refs/heads/master"),
            "ref conflicts: \"refs/heads/master\" vs \"refs/tags/v1\""
        );
        assert_eq!(
            err("http://h/r.git?tag=a&branch=b"),
            "branch conflicts with tag"
        );
        assert_eq!(err("http://h/r.git?ref="), "query \"ref\" has no value");
        assert_eq!(err("http://h/r.git?nope=1"), "unexpected query \"nope\"");
        assert_eq!(
            err("http://h/r.git?ref=a&ref=b"),
            "query \"ref\" has multiple values"
        );
        assert_eq!(
            err("http://h/r.git?submodules=maybe"),
            "invalid submodules value: \"maybe\""
        );
        assert_eq!(
            err("http://h/r.git?subdir=a#main:b"),
            "subdir conflicts: \"b\" vs \"a\""
        );
    }
}
