//! Source wildcards: Go's `filepath.Match` for one path component, and fsutil's
//! `ResolveWildcards` (split the source at its first wildcard component, resolve the part
//! before it, walk below it matching one component per level, without following symlinks,
//! not descending into matched directories).

use super::resolve::{clean_components, io_error, is_missing, resolve};
use super::FileOpError;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

/// Whether a component has `*`, `?` or `[` not escaped by `\` (fsutil `containsWildcards`).
pub(crate) fn has_wildcards(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1,
            b'*' | b'?' | b'[' => return true,
            _ => {}
        }
        i += 1;
    }
    false
}

/// Go `filepath.Match(pattern, name)` for a single component. A malformed pattern matches
/// nothing (fsutil ignores `ErrBadPattern` the same way).
pub(crate) fn go_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    match_from(&p, &n).unwrap_or(false)
}

/// Backtracking matcher: `*` any run of characters, `?` one character, `[...]` a class,
/// `\x` a literal `x`. `None` for a malformed pattern.
fn match_from(p: &[char], n: &[char]) -> Option<bool> {
    let (mut pi, mut ni) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    loop {
        if pi < p.len() {
            match p[pi] {
                '*' => {
                    star = Some((pi, ni));
                    pi += 1;
                    continue;
                }
                '?' if ni < n.len() => {
                    pi += 1;
                    ni += 1;
                    continue;
                }
                '[' => {
                    let (matched, next) = match_class(p, pi + 1, n.get(ni).copied())?;
                    if matched {
                        pi = next;
                        ni += 1;
                        continue;
                    }
                }
                '\\' => {
                    let c = *p.get(pi + 1)?;
                    if n.get(ni) == Some(&c) {
                        pi += 2;
                        ni += 1;
                        continue;
                    }
                }
                c if c != '?' && n.get(ni) == Some(&c) => {
                    pi += 1;
                    ni += 1;
                    continue;
                }
                _ => {}
            }
        } else if ni == n.len() {
            return Some(true);
        }
        // Mismatch: let the last `*` swallow one more character, if there is one.
        match star {
            Some((sp, sn)) if sn < n.len() => {
                star = Some((sp, sn + 1));
                pi = sp + 1;
                ni = sn + 1;
            }
            _ => return validate_rest(&p[pi.min(p.len())..]).map(|()| false),
        }
    }
}

/// Go reports a bad pattern even when the name already failed to match; keep that: a
/// malformed tail makes the whole pattern match nothing (the caller treats `None` as false).
fn validate_rest(p: &[char]) -> Option<()> {
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            '\\' => {
                p.get(i + 1)?;
                i += 2;
            }
            '[' => {
                let (_, next) = match_class(p, i + 1, None)?;
                i = next;
            }
            _ => i += 1,
        }
    }
    Some(())
}

/// Matches `c` against the class starting after `[` at `start`. Returns whether it matched
/// and the index after `]`; `None` when the class is malformed. `c == None` only parses.
fn match_class(p: &[char], start: usize, c: Option<char>) -> Option<(bool, usize)> {
    let mut i = start;
    let negated = p.get(i) == Some(&'^');
    if negated {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    loop {
        let ch = *p.get(i)?;
        if ch == ']' && !first {
            i += 1;
            break;
        }
        first = false;
        let (lo, after) = class_char(p, i)?;
        i = after;
        let mut hi = lo;
        if p.get(i) == Some(&'-') {
            let (h, after) = class_char(p, i + 1)?;
            hi = h;
            i = after;
        }
        if lo > hi {
            return None;
        }
        if let Some(c) = c {
            if lo <= c && c <= hi {
                matched = true;
            }
        }
    }
    Some((c.is_some() && matched != negated, i))
}

fn class_char(p: &[char], i: usize) -> Option<(char, usize)> {
    match *p.get(i)? {
        '-' | ']' => None,
        '\\' => Some((*p.get(i + 1)?, i + 2)),
        c => Some((c, i + 1)),
    }
}

/// One wildcard match: the host path (its parent directories are real, resolved ones) and
/// its path relative to the directory before the first wildcard component ('/'-separated).
pub(crate) struct Match {
    pub path: PathBuf,
    pub rel_to_base: String,
}

/// fsutil `ResolveWildcards`: `src` is split at its first component with a wildcard; the part
/// before is resolved in `root` (through symlinks, the last one only with `follow`), and the
/// rest is matched component by component below it, in name order. A matched directory is not
/// searched further; symlinks met while searching are not followed. `None` when `src` has no
/// wildcard at all. A missing base directory matches nothing.
pub(crate) fn resolve_wildcards(
    root: &Path,
    src: &str,
    follow: bool,
) -> Result<Option<Vec<Match>>, FileOpError> {
    let comps = clean_components(OsStr::new(src));
    let Some(split) = comps
        .iter()
        .position(|c| has_wildcards(&c.to_string_lossy()))
    else {
        return Ok(None);
    };
    let mut base_path = OsString::from("/");
    for c in &comps[..split] {
        base_path.push(c);
        base_path.push("/");
    }
    let base = if split == 0 {
        root.to_path_buf()
    } else {
        resolve(root, &base_path, follow)?
    };
    let patterns: Vec<String> = comps[split..]
        .iter()
        .map(|c| c.to_string_lossy().into_owned())
        .collect();
    let mut out = Vec::new();
    walk(root, &base, "", &patterns, &mut out)?;
    Ok(Some(out))
}

fn walk(
    root: &Path,
    dir: &Path,
    rel: &str,
    patterns: &[String],
    out: &mut Vec<Match>,
) -> Result<(), FileOpError> {
    let Some((pattern, rest)) = patterns.split_first() else {
        return Ok(());
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if is_missing(&e) => return Ok(()),
        Err(e) => return Err(io_error(root, dir, e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| io_error(root, dir, e))?;
        let is_dir = entry
            .file_type()
            .map_err(|e| io_error(root, &entry.path(), e))?
            .is_dir();
        names.push((entry.file_name(), is_dir));
    }
    names.sort();
    for (name, is_dir) in names {
        let lossy = name.to_string_lossy();
        if !go_match(pattern, &lossy) {
            continue;
        }
        let child_rel = if rel.is_empty() {
            lossy.into_owned()
        } else {
            format!("{rel}/{lossy}")
        };
        if rest.is_empty() {
            out.push(Match {
                path: dir.join(&name),
                rel_to_base: child_rel,
            });
        } else if is_dir {
            walk(root, &dir.join(&name), &child_rel, rest, out)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::go_match;

    #[test]
    fn go_match_rules() {
        assert!(go_match("*.py", "app.py"));
        assert!(go_match("*", ".hidden"));
        assert!(go_match("a?c", "abc"));
        assert!(!go_match("a?c", "ac"));
        assert!(go_match("[a-c]x", "bx"));
        assert!(!go_match("[^a-c]x", "bx"));
        assert!(go_match("arr[[]0].txt", "arr[0].txt"));
        assert!(go_match("\\*", "*"));
        assert!(!go_match("\\*", "a"));
        assert!(go_match("*a*b", "xxaxxb"));
        assert!(!go_match("[", "["));
        assert!(!go_match("a[", "b"));
        assert!(!go_match("[z-a]", "b"));
    }
}
