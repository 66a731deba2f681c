//! Parser directives (`# syntax=`, `# escape=`, `# check=`): BuildKit's `DirectiveParser`.
//!
//! Directives are only recognised while every line so far has been a directive: the first
//! line that is anything else (blank line, other comment, instruction) ends the search.
//! Keys are case-insensitive, each may appear once, and `escape` must be `\` or a backtick.

use super::gostr::trim_left_space;

/// A directive that cannot be used (BuildKit's texts).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectiveError {
    /// `# escape=` with something other than `\` or a backtick.
    #[error("invalid escape token '{0}' does not match ` or \\")]
    InvalidEscape(String),
    /// The same directive a second time (its lower-cased name).
    #[error("only one {0} parser directive can be used")]
    Repeated(String),
}

/// A directive found on a line.
pub(crate) struct Directive {
    /// Lower-cased key: `syntax`, `escape` or `check`.
    pub(crate) name: String,
    pub(crate) value: String,
    /// 1-based line of the directive.
    pub(crate) line: usize,
}

#[derive(Default)]
pub(crate) struct DirectiveParser {
    line: usize,
    seen: Vec<String>,
    done: bool,
}

/// Go RE2's `\s`: `[\t\n\f\r ]` (no vertical tab).
fn is_re2_space(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\x0c' | '\r' | ' ')
}

/// Matches `^([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$` and returns (key, value).
fn match_directive(s: &str) -> Option<(&str, &str)> {
    let mut chars = s.char_indices();
    match chars.next() {
        Some((_, c)) if c.is_ascii_alphabetic() => {}
        _ => return None,
    }
    let key_end = s
        .char_indices()
        .find(|&(_, c)| !c.is_ascii_alphanumeric())
        .map_or(s.len(), |(i, _)| i);
    let key = &s[..key_end];
    let rest = s[key_end..].trim_start_matches(is_re2_space);
    let rest = rest.strip_prefix('=')?;
    let value = rest.trim_start_matches(is_re2_space);
    let value = value.trim_end_matches(is_re2_space);
    if value.is_empty() {
        // `.+?` needs one character: the regex backtracks and takes the last blank one.
        let last = rest.chars().next_back()?;
        if last == '\n' {
            return None;
        }
        return Some((key, &rest[rest.len() - last.len_utf8()..]));
    }
    // `.` does not match a newline.
    if value.contains('\n') {
        return None;
    }
    Some((key, value))
}

/// Checks an `escape` directive value (BuildKit's `setEscapeToken`).
pub(crate) fn escape_token(value: &str) -> Result<char, DirectiveError> {
    match value {
        "\\" => Ok('\\'),
        "`" => Ok('`'),
        _ => Err(DirectiveError::InvalidEscape(value.to_string())),
    }
}

impl DirectiveParser {
    /// Feeds one line (newline and leading whitespace already trimmed). Returns the
    /// directive it holds, if any, or the error for a repeated directive.
    pub(crate) fn parse_line(&mut self, line: &str) -> Result<Option<Directive>, DirectiveError> {
        self.line += 1;
        if self.done {
            return Ok(None);
        }
        let Some(rest) = line.strip_prefix('#') else {
            self.done = true;
            return Ok(None);
        };
        let rest = trim_left_space(rest);
        let Some((key, value)) = match_directive(rest) else {
            self.done = true;
            return Ok(None);
        };
        let k = key.to_ascii_lowercase();
        if !matches!(k.as_str(), "syntax" | "escape" | "check") {
            self.done = true;
            return Ok(None);
        }
        if self.seen.contains(&k) {
            return Err(DirectiveError::Repeated(k));
        }
        self.seen.push(k.clone());
        Ok(Some(Directive {
            name: k,
            value: value.to_string(),
            line: self.line,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directive_regex() {
        assert_eq!(match_directive("escape = `"), Some(("escape", "`")));
        assert_eq!(
            match_directive("syntax=docker/dockerfile:1  "),
            Some(("syntax", "docker/dockerfile:1"))
        );
        assert_eq!(match_directive("Comment here. x=y"), None);
        assert_eq!(match_directive("escape="), None);
        assert_eq!(match_directive("escape= \t"), Some(("escape", "\t")));
        assert_eq!(match_directive("1x=y"), None);
    }
}
