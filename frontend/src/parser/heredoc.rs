//! Heredocs (`RUN <<EOF`, `COPY <<-'EOF' /dst`): finding the `<<WORD` markers in an
//! instruction line the way BuildKit does (`heredocsFromLine`, `ParseHeredoc`), and
//! `ChompHeredocContent`.
//!
//! BuildKit splits the line with its shell lexer (quotes and escapes kept, unset variables
//! left as written, whitespace after `<<` kept in the word), then matches each word against
//! `^(\d*)<<(-?)\s*([^<]*)$`. The delimiter is lexed twice, with and without quote removal:
//! if the quote counts differ, part of it was quoted and the body is not expanded. The lexer
//! is the frontend's one shell lexer (`crate::shell`), with an empty environment.

use crate::shell::{Lexer, ShellError};
use std::collections::BTreeMap;

/// A heredoc marker that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeredocError {
    /// The shell lexer refused the delimiter (an unclosed quote).
    #[error("{0}")]
    Lex(#[from] ShellError),
    /// The delimiter lexed to a different number of words with and without quote removal.
    #[error("internal lexing of heredoc produced inconsistent results: {rest}")]
    Inconsistent { rest: String },
}

/// A heredoc marker found in an instruction line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Marker {
    pub(crate) name: String,
    pub(crate) expand: bool,
    pub(crate) chomp: bool,
}

/// BuildKit's `heredocsFromLine`: a lexing failure means "no heredocs".
pub(crate) fn heredocs_from_line(line: &str) -> Result<Vec<Marker>, HeredocError> {
    let words = process_words(line, true, true).unwrap_or_default();
    let mut out = Vec::new();
    for word in words {
        if let Some(m) = parse_heredoc(&word)? {
            out.push(m);
        }
    }
    Ok(out)
}

/// BuildKit's `ParseHeredoc` on one word.
pub(crate) fn parse_heredoc(word: &str) -> Result<Option<Marker>, HeredocError> {
    let after_fd = word.trim_start_matches(|c: char| c.is_ascii_digit());
    let Some(after) = after_fd.strip_prefix("<<") else {
        return Ok(None);
    };
    let (chomp, after) = match after.strip_prefix('-') {
        Some(a) => (true, a),
        None => (false, after),
    };
    let rest = after.trim_start_matches(['\t', '\n', '\x0c', '\r', ' ']);
    if rest.is_empty() || rest.contains('<') {
        return Ok(None);
    }
    let words = process_words(rest, false, false)?;
    if words.len() != 1 {
        return Ok(None);
    }
    let raw = process_words(rest, true, false)?;
    if raw.len() != words.len() {
        return Err(HeredocError::Inconsistent {
            rest: rest.to_string(),
        });
    }
    let quotes = |s: &str| s.chars().filter(|&c| c == '\'' || c == '"').count();
    Ok(Some(Marker {
        expand: quotes(&words[0]) == quotes(&raw[0]),
        name: words.into_iter().next().unwrap_or_default(),
        chomp,
    }))
}

/// BuildKit's `ChompHeredocContent`: drops the leading tabs of every line.
pub(crate) fn chomp(content: &str) -> String {
    let mut out = String::with_capacity(content.len());
    for line in content.split_inclusive('\n') {
        out.push_str(line.trim_start_matches('\t'));
    }
    out
}

/// BuildKit's shell lexer with `SkipUnsetEnv` and an empty environment; errors carry the
/// lexer's full message (`failed to process "...": ...`).
fn process_words(
    input: &str,
    raw_quotes: bool,
    raw_escapes: bool,
) -> Result<Vec<String>, ShellError> {
    let lexer = Lexer {
        raw_quotes,
        raw_escapes,
        skip_unset_env: true,
        ..Lexer::new('\\')
    };
    lexer.process_words(input, &BTreeMap::<String, String>::new())
}
#[cfg(test)]
mod tests {
    use super::*;

    fn names(line: &str) -> Vec<String> {
        heredocs_from_line(line)
            .unwrap()
            .into_iter()
            .map(|m| m.name)
            .collect()
    }

    #[test]
    fn markers_like_buildkit() {
        assert_eq!(names("RUN <<EOF"), vec!["EOF"]);
        // `<<-` keeps no blanks after it: BuildKit's own test of this case is vacuous.
        assert!(names("RUN <<- EOF").is_empty());
        assert_eq!(names("RUN << -EOF"), vec!["-EOF"]);
        assert_eq!(names("RUN 4<<EOF"), vec!["EOF"]);
        assert_eq!(names("RUN <<EOF <<EOF2"), vec!["EOF", "EOF2"]);
        assert!(names("RUN '<<EOF'").is_empty());
        assert!(names("RUN \"<<EOF\"").is_empty());
        assert_eq!(names("RUN <<  EOF  > foo"), vec!["EOF"]);
        assert_eq!(names("RUN <<$EOF"), vec!["$EOF"]);
    }

    #[test]
    fn expand_detection() {
        let m = |w: &str| parse_heredoc(w).unwrap().unwrap();
        assert!(m("<<eof").expand);
        assert_eq!(m("<<eo'f'").name, "eof");
        assert!(!m("<<eo'f'").expand);
        assert_eq!(m("<<eo\\'f").name, "eo'f");
        assert!(m("<<eo\\'f").expand);
        assert!(!m("<<'e'o\\'f").expand);
        assert_eq!(m("<<'one two'").name, "one two");
        assert!(m("<<-EOF").chomp);
        for bad in ["<<'EOF", "<<\"EOF", "<<EOF'", "<<EOF\""] {
            assert!(parse_heredoc(bad).is_err(), "{bad}");
        }
        for not in ["", "EOF", "<<", "<<-", "<EOF", "<<<EOF", "<<EOF sh"] {
            assert!(parse_heredoc(not).unwrap().is_none(), "{not}");
        }
    }

    #[test]
    fn chomp_tabs() {
        assert_eq!(chomp("\thello\n\t\tworld\n"), "hello\nworld\n");
    }
}
