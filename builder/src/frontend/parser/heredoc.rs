//! Heredocs (`RUN <<EOF`, `COPY <<-'EOF' /dst`): finding the `<<WORD` markers in an
//! instruction line the way BuildKit does (`heredocsFromLine`, `ParseHeredoc`), and
//! `ChompHeredocContent`.
//!
//! BuildKit splits the line with its shell lexer (quotes and escapes kept, unset variables
//! left as written, whitespace after `<<` kept in the word), then matches each word against
//! `^(\d*)<<(-?)\s*([^<]*)$`. The delimiter is lexed twice, with and without quote removal:
//! if the quote counts differ, part of it was quoted and the body is not expanded. A small
//! copy of that lexer lives here (the environment is always empty).

use super::dump::go_quote;
use super::gostr::is_space;

/// A heredoc marker found in an instruction line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Marker {
    pub(crate) name: String,
    pub(crate) expand: bool,
    pub(crate) chomp: bool,
}

/// BuildKit's `heredocsFromLine`: a lexing failure means "no heredocs".
pub(crate) fn heredocs_from_line(line: &str) -> Result<Vec<Marker>, String> {
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
pub(crate) fn parse_heredoc(word: &str) -> Result<Option<Marker>, String> {
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
    let wrap = |e: String| format!("failed to process {}: {e}", go_quote(rest));
    let words = process_words(rest, false, false).map_err(wrap)?;
    if words.len() != 1 {
        return Ok(None);
    }
    let raw = process_words(rest, true, false).map_err(wrap)?;
    if raw.len() != words.len() {
        return Err(format!(
            "internal lexing of heredoc produced inconsistent results: {rest}"
        ));
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

/// Word accumulator of the shell lexer (`wordsStruct`).
#[derive(Default)]
struct Words {
    word: String,
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, ch: char) {
        if is_space(ch) {
            if self.in_word && !self.word.is_empty() {
                self.words.push(std::mem::take(&mut self.word));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(ch);
        }
    }

    fn add_raw_char(&mut self, ch: char) {
        self.word.push(ch);
        self.in_word = true;
    }

    fn add_string(&mut self, s: &str) {
        s.chars().for_each(|c| self.add_char(c));
    }

    fn add_raw_string(&mut self, s: &str) {
        self.word.push_str(s);
        self.in_word = true;
    }

    fn finish(mut self) -> Vec<String> {
        if !self.word.is_empty() {
            self.words.push(self.word);
        }
        self.words
    }
}

const ESCAPE: char = '\\';

/// BuildKit's shell lexer with `SkipUnsetEnv` and an empty environment.
struct Lexer {
    chars: Vec<char>,
    pos: usize,
    raw_quotes: bool,
    raw_escapes: bool,
}

type LexResult<T> = Result<T, String>;

fn process_words(input: &str, raw_quotes: bool, raw_escapes: bool) -> LexResult<Vec<String>> {
    let mut lx = Lexer {
        chars: input.chars().collect(),
        pos: 0,
        raw_quotes,
        raw_escapes,
    };
    lx.stop_on(None, raw_escapes).map(|(_, words)| words)
}

/// How Go prints `string(ch)` for a scanned rune, EOF being U+FFFD.
fn rune_str(ch: Option<char>) -> String {
    ch.unwrap_or('\u{fffd}').to_string()
}

impl Lexer {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    fn stop_on(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> LexResult<(String, Vec<String>)> {
        let saved = std::mem::replace(&mut self.raw_escapes, raw_escapes);
        let r = self.stop_on_inner(stop);
        self.raw_escapes = saved;
        r
    }

    fn stop_on_inner(&mut self, stop: Option<char>) -> LexResult<(String, Vec<String>)> {
        let mut result = String::new();
        let mut words = Words::default();
        while let Some(ch) = self.peek() {
            if stop == Some(ch) {
                self.next();
                return Ok((result, words.finish()));
            }
            let special = match ch {
                '$' => Some(self.dollar()?),
                '<' => Some(self.possible_heredoc()),
                '\'' => Some(self.single_quote()?),
                '"' => Some(self.double_quote()?),
                _ => None,
            };
            if let Some(tmp) = special {
                result.push_str(&tmp);
                if ch == '$' {
                    words.add_string(&tmp);
                } else {
                    words.add_raw_string(&tmp);
                }
                continue;
            }
            let mut ch = self.next().unwrap_or_default();
            if ch == ESCAPE {
                if self.raw_escapes {
                    words.add_raw_char(ch);
                    result.push(ch);
                }
                match self.next() {
                    None => break,
                    Some(c) => ch = c,
                }
                words.add_raw_char(ch);
            } else {
                words.add_char(ch);
            }
            result.push(ch);
        }
        if let Some(s) = stop {
            return Err(format!(
                "unexpected end of statement while looking for matching {s}"
            ));
        }
        Ok((result, words.finish()))
    }

    fn single_quote(&mut self) -> LexResult<String> {
        let mut result = String::new();
        let open = self.next().unwrap_or('\'');
        if self.raw_quotes {
            result.push(open);
        }
        loop {
            match self.next() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching single-quote"
                            .into(),
                    )
                }
                Some('\'') => {
                    if self.raw_quotes {
                        result.push('\'');
                    }
                    return Ok(result);
                }
                Some(c) => result.push(c),
            }
        }
    }

    fn double_quote(&mut self) -> LexResult<String> {
        let mut result = String::new();
        let open = self.next().unwrap_or('"');
        if self.raw_quotes {
            result.push(open);
        }
        loop {
            match self.peek() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching double-quote"
                            .into(),
                    )
                }
                Some('"') => {
                    self.next();
                    if self.raw_quotes {
                        result.push('"');
                    }
                    return Ok(result);
                }
                Some('$') => {
                    let v = self.dollar()?;
                    result.push_str(&v);
                }
                Some(_) => {
                    let mut ch = self.next().unwrap_or_default();
                    if ch == ESCAPE {
                        if self.raw_escapes {
                            result.push(ch);
                        }
                        match self.peek() {
                            None => continue,
                            Some(c) if c == '"' || c == '$' || c == ESCAPE => {
                                self.next();
                                ch = c;
                            }
                            Some(_) => {}
                        }
                    }
                    result.push(ch);
                }
            }
        }
    }

    /// `<<` keeps the blanks that follow it, so `<< EOF` stays one word.
    fn possible_heredoc(&mut self) -> String {
        self.next();
        if self.peek() != Some('<') {
            return "<".into();
        }
        self.next();
        let mut out = String::from("<<");
        while let Some(c @ (' ' | '\t' | '\r')) = self.peek() {
            out.push(c);
            self.next();
        }
        out
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && is_digit(ch) {
                while let Some(d) = self.peek().filter(|&d| is_digit(d)) {
                    name.push(d);
                    self.next();
                }
                return name;
            }
            if name.is_empty() && "@*#?-$!0".contains(ch) {
                self.next();
                return ch.to_string();
            }
            if !ch.is_alphabetic() && !is_digit(ch) && ch != '_' {
                break;
            }
            name.push(ch);
            self.next();
        }
        name
    }

    /// `$name` / `${...}` with every variable unset: returned as written.
    fn dollar(&mut self) -> LexResult<String> {
        self.next();
        if self.peek() != Some('{') {
            let name = self.name();
            return Ok(format!("${name}"));
        }
        self.next();
        match self.peek() {
            None => return Err("syntax error: missing '}'".into()),
            Some('{' | '}' | ':') => return Err("syntax error: bad substitution".into()),
            Some(_) => {}
        }
        let name = self.name();
        let mut ch = self.next();
        let mut chs = rune_str(ch);
        let missing = |lx: &Lexer, e: String, msg: &str| {
            if lx.peek().is_none() {
                msg.to_string()
            } else {
                e
            }
        };
        match ch {
            Some('}') => Ok(format!("${{{name}}}")),
            Some(':' | '+' | '-' | '?' | '#' | '%') => {
                let null_is_unset = ch == Some(':');
                if null_is_unset {
                    ch = self.next();
                    chs.push_str(&rune_str(ch));
                }
                let raw = matches!(ch, Some('#' | '%'));
                if null_is_unset && raw {
                    return Err(format!("unsupported modifier ({chs}) in substitution"));
                }
                let (word, _) = self
                    .stop_on(Some('}'), raw)
                    .map_err(|e| missing(self, e, "syntax error: missing '}'"))?;
                Ok(format!("${{{name}{chs}{word}}}"))
            }
            Some('/') => {
                if self.peek() == Some('/') {
                    self.next();
                }
                let (pattern, _) = self
                    .stop_on(Some('/'), true)
                    .map_err(|e| missing(self, e, "syntax error: missing '/' in ${}"))?;
                let (replacement, _) = self
                    .stop_on(Some('}'), true)
                    .map_err(|e| missing(self, e, "syntax error: missing '}'"))?;
                Ok(format!("${{{name}/{pattern}/{replacement}}}"))
            }
            _ => Err(format!("unsupported modifier ({chs}) in substitution")),
        }
    }
}

/// Go's `unicode.IsDigit` (decimal digits; in Latin-1 only `0`-`9`).
fn is_digit(c: char) -> bool {
    if (c as u32) < 0x100 {
        c.is_ascii_digit()
    } else {
        c.is_numeric()
    }
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
