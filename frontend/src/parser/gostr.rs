//! Go string semantics the parser depends on: `unicode.IsSpace`, `strings.TrimSpace`,
//! `strings.ToLower`, and `regexp.Split` on BuildKit's `[\t\v\f\r ]+` whitespace class.
//!
//! BuildKit is written in Go, so "byte for byte" compatibility means reproducing these
//! library functions, quirks included.

/// Go's `unicode.IsSpace`: the Unicode White_Space property (same set as Rust's).
pub(crate) fn is_space(c: char) -> bool {
    c.is_whitespace()
}

/// Go's `unicode.IsSpace(rune(b))` applied to a single byte, as BuildKit does when it walks
/// a string byte by byte (`extractBuilderFlags`, `parseHealthConfig`): 0x85 and 0xA0 count.
pub(crate) fn is_byte_space(b: u8) -> bool {
    matches!(b, b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | b' ' | 0x85 | 0xa0)
}

/// Go's `strings.TrimSpace`.
pub(crate) fn trim_space(s: &str) -> &str {
    s.trim_matches(is_space)
}

/// Go's `strings.TrimLeftFunc(s, unicode.IsSpace)`.
pub(crate) fn trim_left_space(s: &str) -> &str {
    s.trim_start_matches(is_space)
}

/// Go's `strings.ToLower`: simple per-rune case mapping (so `İ` becomes `i`, and a final
/// sigma is not special).
pub(crate) fn to_lower(s: &str) -> String {
    if s.is_ascii() {
        return s.to_ascii_lowercase();
    }
    s.chars()
        .map(|c| match c {
            '\u{130}' => 'i',
            _ => c.to_lowercase().next().unwrap_or(c),
        })
        .collect()
}

/// A member of BuildKit's `reWhitespace` class `[\t\v\f\r ]`.
pub(crate) fn is_re_ws(c: char) -> bool {
    matches!(c, '\t' | '\x0b' | '\x0c' | '\r' | ' ')
}

/// Go's `regexp.MustCompile("[\t\v\f\r ]+").Split(s, n)` (`n < 0`: no limit), including its
/// corner cases (a leading or trailing separator yields an empty field).
pub(crate) fn split_ws(s: &str, n: isize) -> Vec<&str> {
    if n == 0 {
        return Vec::new();
    }
    if s.is_empty() {
        return vec![""];
    }
    let mut matches: Vec<(usize, usize)> = Vec::new();
    let mut iter = s.char_indices().peekable();
    while let Some((i, c)) = iter.next() {
        if n > 0 && matches.len() as isize == n {
            break;
        }
        if is_re_ws(c) {
            let mut end = i + c.len_utf8();
            while let Some(&(j, d)) = iter.peek() {
                if !is_re_ws(d) {
                    break;
                }
                end = j + d.len_utf8();
                iter.next();
            }
            matches.push((i, end));
        }
    }
    let mut out = Vec::with_capacity(matches.len() + 1);
    let (mut beg, mut end) = (0usize, 0usize);
    for (m0, m1) in matches {
        if n > 0 && out.len() as isize == n - 1 {
            break;
        }
        end = m0;
        if m1 != 0 {
            out.push(&s[beg..end]);
        }
        beg = m1;
    }
    if end != s.len() {
        out.push(&s[beg..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_like_go() {
        assert_eq!(split_ws("a b\t c", -1), vec!["a", "b", "c"]);
        assert_eq!(split_ws("a  b c", 2), vec!["a", "b c"]);
        assert_eq!(split_ws("abc", 2), vec!["abc"]);
        assert_eq!(split_ws("", -1), vec![""]);
        assert_eq!(split_ws("a ", -1), vec!["a", ""]);
        assert_eq!(split_ws(" a", -1), vec!["", "a"]);
    }

    #[test]
    fn lower_like_go() {
        assert_eq!(to_lower("RUN"), "run");
        assert_eq!(to_lower("İX"), "ix");
    }
}
