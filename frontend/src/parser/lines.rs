//! Physical lines: BuildKit's line scanner (`bufio.Scanner` with a split function that keeps
//! the line ending and a 64 KiB token limit), comment detection, and the escape-character
//! line continuation (`([^\\])\\[ \t]*$|^\\[ \t]*$`).

use super::gostr::{trim_left_space, trim_space};

/// `bufio.MaxScanTokenSize`: a line of this many bytes (excluding `\n`) or more stops the
/// scanner with "dockerfile line greater than max allowed size of 65535".
pub(crate) const MAX_LINE: usize = 64 * 1024;

/// The UTF-8 byte-order mark, stripped from the first line only.
pub(crate) const BOM: &str = "\u{feff}";

/// Yields physical lines including their `\n` (the last one may lack it).
pub(crate) struct Scanner<'a> {
    src: &'a str,
    pos: usize,
    /// Set when a line exceeded [`MAX_LINE`]: scanning stopped there.
    pub(crate) too_long: bool,
}

impl<'a> Scanner<'a> {
    pub(crate) fn new(src: &'a str) -> Self {
        Scanner {
            src,
            pos: 0,
            too_long: false,
        }
    }

    pub(crate) fn next_line(&mut self) -> Option<&'a str> {
        if self.too_long || self.pos >= self.src.len() {
            return None;
        }
        let rest = &self.src[self.pos..];
        let (content, token) = match rest.find('\n') {
            Some(i) => (i, i + 1),
            None => (rest.len(), rest.len()),
        };
        if content >= MAX_LINE {
            self.too_long = true;
            return None;
        }
        self.pos += token;
        Some(&rest[..token])
    }
}

/// Go's `bytes.TrimRight(line, "\r\n")`.
pub(crate) fn trim_newline(line: &str) -> &str {
    line.trim_end_matches(['\r', '\n'])
}

/// A comment line: `#` after optional leading whitespace.
pub(crate) fn is_comment(line: &str) -> bool {
    trim_left_space(line).starts_with('#')
}

/// Comment lines become empty, others stay (BuildKit's `trimComments`).
pub(crate) fn trim_comments(line: &str) -> &str {
    if is_comment(line) {
        ""
    } else {
        line
    }
}

/// Whitespace-only line (inside a continuation it is an "empty continuation line").
pub(crate) fn is_empty_continuation_line(line: &str) -> bool {
    trim_left_space(trim_newline(line)).is_empty()
}

/// The comment text BuildKit records for `PrevComment`: the line minus its first *byte*,
/// trimmed. (For `  # x` that is `# x`; a multi-byte first character leaves stray bytes in
/// Go, which we render as U+FFFD.)
pub(crate) fn comment_text(line: &str) -> String {
    let rest = &line.as_bytes()[1..];
    let s = String::from_utf8_lossy(rest);
    trim_space(&s).to_string()
}

/// Removes a trailing line-continuation escape. Returns the kept text and whether the
/// logical line ends here (no continuation).
pub(crate) fn trim_continuation(line: &str, escape: char) -> (&str, bool) {
    let t = line.trim_end_matches([' ', '\t']);
    if let Some(before) = t.strip_suffix(escape) {
        if before.is_empty() {
            return ("", false);
        }
        if !before.ends_with(escape) {
            return (before, false);
        }
    }
    (line, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuation() {
        assert_eq!(trim_continuation("RUN a \\", '\\'), ("RUN a ", false));
        assert_eq!(trim_continuation("RUN a\\ \t", '\\'), ("RUN a", false));
        assert_eq!(trim_continuation("\\  ", '\\'), ("", false));
        assert_eq!(trim_continuation("a\\\\", '\\'), ("a\\\\", true));
        assert_eq!(trim_continuation("a`", '`'), ("a", false));
        assert_eq!(trim_continuation("a\\", '`'), ("a\\", true));
    }

    #[test]
    fn scanner_limit() {
        let long = "a".repeat(MAX_LINE);
        let src = format!("x\n{long}\ny\n");
        let mut sc = Scanner::new(&src);
        assert_eq!(sc.next_line(), Some("x\n"));
        assert_eq!(sc.next_line(), None);
        assert!(sc.too_long);
    }
}
