//! The per-keyword argument parsers: BuildKit's dispatch table in `parser.go` and the
//! functions of `line_parsers.go`. Each turns the text after the flags into the argument
//! words of the node (BuildKit's `Next` chain), the JSON attribute, or a nested node.

use super::dump::go_quote;
use super::flags::{split_command, FlagSplitError};
use super::gostr::{is_byte_space, is_space, split_ws, to_lower};
use super::json::{parse_json, Json};
use crate::ast::{Node, Span};

/// Deepest `ONBUILD ONBUILD ...` nesting we accept (BuildKit has no limit; the instruction
/// layer rejects any nesting anyway, and a limit keeps recursion bounded).
pub(crate) const MAX_ONBUILD_DEPTH: usize = 32;

/// An instruction line that cannot be split into its arguments (BuildKit's texts).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    /// The leading `--flags` end inside a UTF-8 character.
    #[error("{0}")]
    Flags(#[from] FlagSplitError),
    /// Legacy `ENV key` / `LABEL key` without a value.
    #[error("{keyword} must have two arguments")]
    MissingValue { keyword: &'static str },
    /// A `key=value` list with a word that has no `=`.
    #[error("Syntax error - can't find = in {}. Must be of the form: name=value", go_quote(.word))]
    MissingEquals { word: String },
    /// A JSON array with an element that is not a string.
    #[error("when using JSON array syntax, arrays must be comprised of strings only")]
    NotStringArray,
    /// `ONBUILD ONBUILD ...` nested deeper than BuildKit could ever need (32).
    #[error("ONBUILD nested more than {MAX_ONBUILD_DEPTH} levels deep")]
    OnbuildTooDeep,
    /// The HEALTHCHECK type word ends inside a UTF-8 character.
    #[error("HEALTHCHECK type ends inside a multi-byte character (BuildKit splits bytes)")]
    HealthcheckSplitCharacter,
}

/// What a line parser produced for one instruction.
#[derive(Default)]
pub(crate) struct Body {
    pub(crate) args: Vec<String>,
    pub(crate) json: bool,
    pub(crate) onbuild: Option<Box<Node>>,
}

impl Body {
    fn words(args: Vec<String>) -> Body {
        Body {
            args,
            ..Body::default()
        }
    }
}

/// BuildKit's `newNodeFromLine`: keyword, flags and dispatch on the lower-cased keyword.
/// Unknown keywords are accepted here (their argument is one empty word, as BuildKit's
/// `parseIgnore` leaves it); the instruction layer rejects them.
pub(crate) fn node_from_line(
    line: &str,
    escape: char,
    comments: Vec<String>,
    depth: usize,
) -> Result<Node, LineError> {
    let split = split_command(line)?;
    let keyword = to_lower(split.cmd);
    let rest = split.args;
    let body = match keyword.as_str() {
        "add" | "copy" | "volume" => parse_maybe_json_to_list(rest)?,
        "arg" => Body::words(parse_words(rest, escape)),
        "cmd" | "entrypoint" | "run" | "shell" => parse_maybe_json(rest)?,
        "env" => parse_name_val(rest, "ENV", escape)?,
        "label" => parse_name_val(rest, "LABEL", escape)?,
        "expose" | "from" => Body::words(parse_strings_whitespace_delimited(rest)),
        "healthcheck" => parse_health_config(rest)?,
        "maintainer" | "stopsignal" | "user" | "workdir" => parse_string(rest),
        "onbuild" => parse_sub_command(rest, escape, depth)?,
        _ => Body::words(vec![String::new()]),
    };
    Ok(Node {
        keyword,
        keyword_raw: split.cmd.to_string(),
        original: line.to_string(),
        flags: split.flags,
        args: body.args,
        json: body.json,
        onbuild: body.onbuild,
        heredocs: Vec::new(),
        span: Span::default(),
        prev_comment: comments,
    })
}

/// ONBUILD: the rest is a whole instruction of its own.
fn parse_sub_command(rest: &str, escape: char, depth: usize) -> Result<Body, LineError> {
    if rest.is_empty() {
        return Ok(Body::default());
    }
    if depth >= MAX_ONBUILD_DEPTH {
        return Err(LineError::OnbuildTooDeep);
    }
    let child = node_from_line(rest, escape, Vec::new(), depth + 1)?;
    Ok(Body {
        onbuild: Some(Box::new(child)),
        ..Body::default()
    })
}

#[derive(PartialEq, Clone, Copy)]
enum Phase {
    Spaces,
    Word,
    Quote,
}

/// BuildKit's `parseWords`: splits on whitespace outside quotes; quotes and escapes are
/// kept in the words (they are processed later, by the shell lexer).
pub(crate) fn parse_words(rest: &str, escape: char) -> Vec<String> {
    let chars: Vec<char> = rest.chars().collect();
    let n = chars.len();
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut quote = '\0';
    let mut blank_ok = false;
    let mut word = String::new();
    let mut pos = 0usize;
    while pos <= n {
        let ch = if pos < n { chars[pos] } else { '\0' };
        if phase == Phase::Spaces {
            if pos == n {
                break;
            }
            if is_space(ch) {
                pos += 1;
                continue;
            }
            phase = Phase::Word;
        }
        if pos == n {
            if blank_ok || !word.is_empty() {
                words.push(word);
            }
            break;
        }
        if phase == Phase::Word {
            if is_space(ch) {
                phase = Phase::Spaces;
                if blank_ok || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                blank_ok = false;
                pos += 1;
                continue;
            }
            if ch == '\'' || ch == '"' {
                quote = ch;
                blank_ok = true;
                phase = Phase::Quote;
            }
            let mut ch = ch;
            if ch == escape {
                if pos + 1 == n {
                    pos += 1;
                    continue;
                }
                word.push(ch);
                pos += 1;
                ch = chars[pos];
            }
            word.push(ch);
            pos += 1;
            continue;
        }
        // Phase::Quote
        let mut ch = ch;
        if ch == quote {
            phase = Phase::Word;
        }
        if ch == escape && quote != '\'' {
            if pos + 1 == n {
                phase = Phase::Word;
                pos += 1;
                continue;
            }
            pos += 1;
            word.push(ch);
            ch = chars[pos];
        }
        word.push(ch);
        pos += 1;
    }
    words
}

/// ENV and LABEL: `key value` (legacy: one pair, the value is the rest of the line) or
/// `k=v k2=v2 ...`. Each pair becomes three words: key, value, and `""` or `"="`.
fn parse_name_val(rest: &str, key: &'static str, escape: char) -> Result<Body, LineError> {
    let words = parse_words(rest, escape);
    if words.is_empty() {
        return Ok(Body::default());
    }
    if !words[0].contains('=') {
        let parts = split_ws(rest, 2);
        if parts.len() < 2 {
            return Err(LineError::MissingValue { keyword: key });
        }
        return Ok(Body::words(vec![
            parts[0].to_string(),
            parts[1].to_string(),
            String::new(),
        ]));
    }
    let mut args = Vec::with_capacity(words.len() * 3);
    for word in &words {
        let Some((k, v)) = word.split_once('=') else {
            return Err(LineError::MissingEquals { word: word.clone() });
        };
        args.push(k.to_string());
        args.push(v.to_string());
        args.push("=".to_string());
    }
    Ok(Body::words(args))
}

/// FROM and EXPOSE (and the shell form of ADD/COPY/VOLUME): split on `[\t\v\f\r ]+`.
fn parse_strings_whitespace_delimited(rest: &str) -> Vec<String> {
    if rest.is_empty() {
        return Vec::new();
    }
    split_ws(rest, -1).into_iter().map(str::to_string).collect()
}

/// MAINTAINER, STOPSIGNAL, USER, WORKDIR: the rest as one word.
fn parse_string(rest: &str) -> Body {
    if rest.is_empty() {
        return Body::default();
    }
    Body::words(vec![rest.to_string()])
}

fn json_body(args: Vec<String>) -> Body {
    Body {
        args,
        json: true,
        onbuild: None,
    }
}

/// RUN, CMD, ENTRYPOINT, SHELL: a JSON string array, else the rest as one word.
fn parse_maybe_json(rest: &str) -> Result<Body, LineError> {
    if rest.is_empty() {
        return Ok(Body::default());
    }
    match parse_json(rest) {
        Json::Strings(v) => Ok(json_body(v)),
        Json::NotStrings => Err(LineError::NotStringArray),
        Json::Shell => Ok(Body::words(vec![rest.to_string()])),
    }
}

/// ADD, COPY, VOLUME: a JSON string array, else whitespace-separated words.
fn parse_maybe_json_to_list(rest: &str) -> Result<Body, LineError> {
    match parse_json(rest) {
        Json::Strings(v) => Ok(json_body(v)),
        Json::NotStrings => Err(LineError::NotStringArray),
        Json::Shell => Ok(Body::words(parse_strings_whitespace_delimited(rest))),
    }
}

/// HEALTHCHECK: the first word (`CMD`, `NONE`, anything), then the rest as for CMD.
/// BuildKit finds the word end byte by byte; splitting inside a character is refused.
fn parse_health_config(rest: &str) -> Result<Body, LineError> {
    let b = rest.as_bytes();
    let sep = b.iter().position(|&c| is_byte_space(c)).unwrap_or(b.len());
    let next = b[sep..]
        .iter()
        .position(|&c| !is_byte_space(c))
        .map_or(b.len(), |i| sep + i);
    if sep == 0 {
        return Ok(Body::default());
    }
    let (Some(typ), Some(tail)) = (rest.get(..sep), rest.get(next..)) else {
        return Err(LineError::HealthcheckSplitCharacter);
    };
    let cmd = parse_maybe_json(tail)?;
    let mut args = vec![typ.to_string()];
    args.extend(cmd.args);
    Ok(Body {
        args,
        json: cmd.json,
        onbuild: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_like_buildkit() {
        let w = |s: &str| parse_words(s, '\\');
        assert_eq!(w("foo bar"), vec!["foo", "bar"]);
        assert_eq!(w("foo\\ bar"), vec!["foo\\ bar"]);
        assert_eq!(w("foo bar 'abc xyz'"), vec!["foo", "bar", "'abc xyz'"]);
        assert_eq!(w("föo bàr \"âbc xÿz\""), vec!["föo", "bàr", "\"âbc xÿz\""]);
        assert_eq!(w("a=''"), vec!["a=''"]);
        assert_eq!(w("x\\"), vec!["x"]);
    }
}
