//! The expansion proper: BuildKit's `shellWord` state machine over the chars of one word,
//! one function per construct (quotes, `$name`, `${name<modifier>}`, `${name/p/r}`).

use std::collections::BTreeSet;

use super::pattern::{compile, replace_all, replace_first, trim_prefix, trim_suffix};
use super::text::{go_quote, is_digit, is_letter, is_space, rune_string};
use super::{ExpandError, Expansion, Lexer, ShellError, VarLookup, MAX_EXPANDED, MAX_NESTING};
use crate::diagnostic::shorten;

/// Expands `word`; see [`Lexer::process_word`].
pub(super) fn process(
    lex: &Lexer,
    word: &str,
    env: &dyn VarLookup,
) -> Result<Expansion, ShellError> {
    let mut chars: Vec<char> = word.chars().collect();
    // Go's text/scanner, which BuildKit reads the word with, skips a leading byte order mark.
    if chars.first() == Some(&'\u{FEFF}') {
        chars.remove(0);
    }
    let mut sw = ShellWord {
        lex,
        env,
        chars,
        pos: 0,
        raw_escapes: lex.raw_escapes,
        depth: 0,
        matched: BTreeSet::new(),
        unmatched: BTreeSet::new(),
    };
    match sw.process_stop_on(None, lex.raw_escapes) {
        Ok((result, words)) => Ok(Expansion {
            result,
            words,
            matched: sw.matched,
            unmatched: sw.unmatched,
        }),
        Err(reason) => Err(ShellError {
            message: format!(
                "failed to process {}: {}",
                go_quote(&shorten(word, 200)),
                reason
            ),
            reason,
        }),
    }
}

/// Appends `part` to a word being expanded, unless that takes it past [`MAX_EXPANDED`].
fn grow(result: &mut String, part: &str) -> Result<(), ExpandError> {
    if result.len() + part.len() > MAX_EXPANDED {
        return Err(ExpandError::TooLarge);
    }
    result.push_str(part);
    Ok(())
}

/// Field splitting of the characters that make up a word, as they are produced.
#[derive(Default)]
struct Fields {
    word: String,
    words: Vec<String>,
    in_word: bool,
}

impl Fields {
    /// An unquoted character: whitespace ends the current field.
    fn add_char(&mut self, c: char) {
        if is_space(c) {
            if self.in_word && !self.word.is_empty() {
                self.words.push(std::mem::take(&mut self.word));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(c);
        }
    }

    fn add_raw_char(&mut self, c: char) {
        self.word.push(c);
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

struct ShellWord<'a> {
    lex: &'a Lexer,
    env: &'a dyn VarLookup,
    chars: Vec<char>,
    pos: usize,
    /// Whether escape characters are kept; on inside patterns and replacements.
    raw_escapes: bool,
    depth: usize,
    matched: BTreeSet<String>,
    unmatched: BTreeSet<String>,
}

impl ShellWord<'_> {
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

    /// Processes up to `stop` (consumed) or the end of the word (`stop` of `None`), with
    /// `raw_escapes` in force meanwhile. Returns the text and its fields.
    fn process_stop_on(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Result<(String, Vec<String>), ExpandError> {
        let saved = std::mem::replace(&mut self.raw_escapes, raw_escapes);
        let out = self.stop_on(stop);
        self.raw_escapes = saved;
        out
    }

    fn stop_on(&mut self, stop: Option<char>) -> Result<(String, Vec<String>), ExpandError> {
        let mut result = String::new();
        let mut fields = Fields::default();
        let quotes = !self.lex.skip_process_quotes;
        while let Some(c) = self.peek() {
            if stop == Some(c) {
                self.next();
                return Ok((result, fields.finish()));
            }
            if c == '$' || c == '<' || (quotes && (c == '\'' || c == '"')) {
                let part = match c {
                    '$' => self.process_dollar()?,
                    '<' => self.process_possible_heredoc(),
                    '\'' => self.process_single_quote()?,
                    _ => self.process_double_quote()?,
                };
                grow(&mut result, &part)?;
                if c == '$' {
                    fields.add_string(&part);
                } else {
                    fields.add_raw_string(&part);
                }
                continue;
            }
            let mut c = self.next().unwrap_or(c);
            if c == self.lex.escape {
                if self.raw_escapes {
                    fields.add_raw_char(c);
                    result.push(c);
                }
                // The escape escapes the next character; at the end it is dropped.
                match self.next() {
                    Some(escaped) => c = escaped,
                    None => break,
                }
                fields.add_raw_char(c);
            } else {
                fields.add_char(c);
            }
            result.push(c);
        }
        match stop {
            Some(s) => Err(ExpandError::Unterminated(s)),
            None => Ok((result, fields.finish())),
        }
    }

    /// BuildKit's `processPossibleHeredoc`: `<<` keeps the blanks after it in the same word,
    /// so `<< EOF` is one field (the parser finds heredoc markers this way).
    fn process_possible_heredoc(&mut self) -> String {
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

    fn process_single_quote(&mut self) -> Result<String, ExpandError> {
        let mut result = String::new();
        let open = self.next();
        if self.lex.raw_quotes {
            result.extend(open);
        }
        loop {
            match self.next() {
                None => return Err(ExpandError::UnclosedSingleQuote),
                Some('\'') => {
                    if self.lex.raw_quotes {
                        result.push('\'');
                    }
                    return Ok(result);
                }
                Some(c) => result.push(c),
            }
        }
    }

    fn process_double_quote(&mut self) -> Result<String, ExpandError> {
        let mut result = String::new();
        let open = self.next();
        if self.lex.raw_quotes {
            result.extend(open);
        }
        loop {
            match self.peek() {
                None => return Err(ExpandError::UnclosedDoubleQuote),
                Some('"') => {
                    self.next();
                    if self.lex.raw_quotes {
                        result.push('"');
                    }
                    return Ok(result);
                }
                Some('$') => {
                    let value = self.process_dollar()?;
                    result.push_str(&value);
                }
                Some(c) => {
                    self.next();
                    let mut c = c;
                    if c == self.lex.escape {
                        if self.raw_escapes {
                            result.push(c);
                        }
                        match self.peek() {
                            // An escape at the very end is ignored (and the quote unclosed).
                            None => continue,
                            // Only these can be escaped; other escapes stay as they are.
                            Some(p) if p == '"' || p == '$' || p == self.lex.escape => {
                                self.next();
                                c = p;
                            }
                            Some(_) => {}
                        }
                    }
                    result.push(c);
                }
            }
        }
    }

    fn process_dollar(&mut self) -> Result<String, ExpandError> {
        if self.depth >= MAX_NESTING {
            return Err(ExpandError::TooDeep);
        }
        self.depth += 1;
        let out = self.dollar();
        self.depth -= 1;
        out
    }

    /// `$name` or `${...}`, at the `$`.
    fn dollar(&mut self) -> Result<String, ExpandError> {
        self.next(); // '$'

        // $xxx case
        if self.peek() != Some('{') {
            let name = self.process_name();
            if name.is_empty() {
                return Ok("$".into());
            }
            return Ok(match self.get_env(&name) {
                Some(value) => value,
                None if self.lex.skip_unset_env => format!("${name}"),
                None => String::new(),
            });
        }

        self.next(); // '{'
        match self.peek() {
            None => return Err(ExpandError::MissingBrace),
            Some('{' | '}' | ':') => return Err(ExpandError::BadSubstitution),
            Some(_) => {}
        }
        let name = self.process_name();
        let ch = self.next();
        match ch {
            Some('}') => {
                // Normal ${xx} case
                Ok(match self.get_env(&name) {
                    Some(value) => value,
                    None if self.lex.skip_unset_env => format!("${{{name}}}"),
                    None => String::new(),
                })
            }
            Some(':' | '+' | '-' | '?' | '#' | '%') => self.modifier(name, ch),
            Some('/') => self.substitution(name),
            _ => Err(ExpandError::UnsupportedModifier(rune_string(ch))),
        }
    }

    /// `${name<op>word}` after `${name`, `ch` being the first character of the operator:
    /// `:-`, `-`, `:+`, `+`, `:?`, `?`, `#`, `##`, `%`, `%%`.
    fn modifier(&mut self, name: String, mut ch: Option<char>) -> Result<String, ExpandError> {
        let mut chs = rune_string(ch);
        let null_is_unset = ch == Some(':');
        if null_is_unset {
            ch = self.next();
            chs.push_str(&rune_string(ch));
        }
        let raw_escapes = matches!(ch, Some('#' | '%'));
        if null_is_unset && raw_escapes {
            return Err(ExpandError::UnsupportedModifier(chs));
        }
        let word = match self.process_stop_on(Some('}'), raw_escapes) {
            Ok((word, _)) => word,
            Err(_) if self.peek().is_none() => return Err(ExpandError::MissingBrace),
            Err(e) => return Err(e),
        };
        let value = self.get_env(&name);
        if self.lex.skip_unset_env && value.is_none() {
            return Ok(format!("${{{name}{chs}{word}}}"));
        }
        let empty = value
            .as_deref()
            .is_none_or(|v| null_is_unset && v.is_empty());
        match ch {
            Some('-') => Ok(if empty {
                word
            } else {
                value.unwrap_or_default()
            }),
            Some('+') => Ok(if empty { String::new() } else { word }),
            Some('?') => match value {
                Some(v) if !empty => Ok(v),
                _ => {
                    let message = if !word.is_empty() {
                        word
                    } else if value.is_none() {
                        "is not allowed to be unset".into()
                    } else {
                        "is not allowed to be empty".into()
                    };
                    Err(ExpandError::Required { name, message })
                }
            },
            Some(op @ ('#' | '%')) => {
                // #/% remove the shortest match, ##/%% the longest.
                let (pattern, greedy) = match word.strip_prefix(op) {
                    Some(rest) => (rest, true),
                    None => (word.as_str(), false),
                };
                let value = value.unwrap_or_default();
                if op == '%' {
                    trim_suffix(pattern, &value, greedy)
                } else {
                    trim_prefix(pattern, &value, greedy)
                }
            }
            _ => Err(ExpandError::UnsupportedModifier(chs)),
        }
    }

    /// `${name/pattern/replacement}` or `${name//pattern/replacement}`, after `${name/`.
    fn substitution(&mut self, name: String) -> Result<String, ExpandError> {
        let replace_every = self.peek() == Some('/');
        if replace_every {
            self.next();
        }
        let pattern = match self.process_stop_on(Some('/'), true) {
            Ok((p, _)) => p,
            Err(_) if self.peek().is_none() => return Err(ExpandError::MissingSlash),
            Err(e) => return Err(e),
        };
        let replacement = match self.process_stop_on(Some('}'), true) {
            Ok((r, _)) => r,
            Err(_) if self.peek().is_none() => return Err(ExpandError::MissingBrace),
            Err(e) => return Err(e),
        };
        let value = match self.get_env(&name) {
            Some(value) => value,
            None if self.lex.skip_unset_env => {
                return Ok(format!("${{{name}/{pattern}/{replacement}}}"));
            }
            None => String::new(),
        };
        let re = compile(&pattern, true, false).map_err(|e| ExpandError::InvalidPattern {
            pattern: pattern.clone(),
            source: e,
        })?;
        if replace_every {
            replace_all(&re, &value, &replacement, MAX_EXPANDED).ok_or(ExpandError::TooLarge)
        } else {
            let out = replace_first(&re, &value, &replacement);
            if out.len() > MAX_EXPANDED {
                return Err(ExpandError::TooLarge);
            }
            Ok(out)
        }
    }

    /// Reads a name: letters, digits and `_`; or a run of digits (positional parameter); or
    /// one special parameter character.
    fn process_name(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self.peek() {
            if name.is_empty() && is_digit(c) {
                while let Some(d) = self.peek().filter(|&d| is_digit(d)) {
                    self.next();
                    name.push(d);
                }
                return name;
            }
            if name.is_empty() && is_special_param(c) {
                self.next();
                return c.to_string();
            }
            if !is_letter(c) && !is_digit(c) && c != '_' {
                break;
            }
            self.next();
            name.push(c);
        }
        name
    }

    fn get_env(&mut self, name: &str) -> Option<String> {
        let value = self.env.lookup(name);
        let set = if value.is_some() {
            &mut self.matched
        } else {
            &mut self.unmatched
        };
        set.insert(name.to_owned());
        value
    }
}

/// The special parameters of POSIX sh (section 2.5.2).
fn is_special_param(c: char) -> bool {
    matches!(c, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0')
}
