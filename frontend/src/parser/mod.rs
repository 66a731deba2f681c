//! Dockerfile text -> AST with BuildKit's grammar (`frontend/dockerfile/parser`), byte for
//! byte: the same nodes, arguments, flags, heredocs, line ranges and `Dump()` output.
//!
//! This module owns the line loop (BuildKit's `Parse`): directives at the top, comments,
//! escape-character continuations (with comment and blank lines inside them), one node per
//! logical line, and heredoc bodies read after the line that opens them. The pieces live in
//! the submodules: `directives`, `lines` (scanner, comments, continuations), `flags`
//! (`splitCommand`), `line_parsers` (per-keyword arguments), `json` (exec form), `heredoc`
//! (markers), `dump` (`Node.Dump()` and Go's `%q`), `gostr`/`goprint` (Go string semantics).
//!
//! # Input encoding
//!
//! Go treats a Dockerfile as bytes and carries invalid UTF-8 through unchanged. Our AST holds
//! `String`s, so [`parse`] rejects input that is not UTF-8 with
//! "Dockerfile is not valid UTF-8 at line N" (span and column point at the first bad byte)
//! instead of silently replacing bytes. A UTF-8 byte-order mark is stripped from the first
//! line, and CRLF line ends are accepted (the `\r` is dropped from instruction lines; heredoc
//! bodies keep their line ends as written, as in BuildKit).
//!
//! # BuildKit quirks reproduced on purpose
//!
//! - Unknown keywords parse (as `(foo "")`); the instruction layer rejects them.
//! - A physical line of 64 KiB or more stops the parse ("dockerfile line greater than max
//!   allowed size of 65535").
//! - Flags are read byte by byte: a non-ASCII byte becomes its Latin-1 character
//!   (`--chown=josé` reads as `--chown=josÃ©`), as BuildKit's `extractBuilderFlags` does.
//! - `PrevComment` drops the first byte of an indented comment line, not the `#`.
//!
//! # Deliberate differences from BuildKit
//!
//! - Error lines are the 1-based line at fault. BuildKit reports some errors (directive
//!   errors, an over-long line) one line early; "file with no instructions" points at the last
//!   line, or at line 1 for an empty file.
//! - Heredoc content has `<<-` tab stripping applied (BuildKit leaves that to the instruction
//!   layer); heredocs of `ONBUILD RUN <<EOF` hang on the ONBUILD node, as in BuildKit.
//! - The nested node of ONBUILD gets the span of its ONBUILD line (BuildKit leaves it 0), and
//!   `ONBUILD` nested more than 32 deep is an error (BuildKit has no limit; its instruction
//!   layer rejects any nesting).
//! - Where BuildKit's byte-wise scanning (flags, HEALTHCHECK) would cut a UTF-8 character in
//!   two, we return an error instead of producing invalid UTF-8.

mod directives;
mod dump;
mod flags;
mod goprint;
mod gostr;
mod heredoc;
mod json;
mod line_parsers;
mod lines;

pub use directives::DirectiveError;
pub use dump::{dump, dump_node, go_quote, go_quote_bytes};
pub use flags::FlagSplitError;
pub use heredoc::HeredocError;
pub use line_parsers::LineError;

/// A heredoc marker word (`<<EOF`, `<<-'EOF'`) as BuildKit's `MustParseHeredoc` reads it:
/// `(name, chomp, expand)`, or None when the word is not a marker.
pub fn heredoc_marker(word: &str) -> Option<(String, bool, bool)> {
    heredoc::parse_heredoc(word)
        .ok()
        .flatten()
        .map(|m| (m.name, m.chomp, m.expand))
}

use super::ast::{Directives, Dockerfile, Heredoc, Node, ParseError, ParseWarning, Span};
use directives::{escape_token, DirectiveParser};
use heredoc::Marker;
use lines::{
    comment_text, is_comment, is_empty_continuation_line, trim_comments, trim_continuation,
    trim_newline, Scanner, BOM,
};
use std::error::Error;
use std::sync::Arc;

fn error(
    message: impl Into<String>,
    start: usize,
    end: usize,
    column: Option<usize>,
) -> ParseError {
    ParseError {
        message: message.into(),
        span: Span {
            start_line: start,
            end_line: end.max(start),
        },
        column,
        cause: None,
    }
}

/// A parse error at lines `start..=end` that says what `cause` says, keeping it as the
/// error's `source()`.
fn caused(cause: impl Error + Send + Sync + 'static, start: usize, end: usize) -> ParseError {
    let mut e = error(cause.to_string(), start, end, None);
    e.cause = Some(Arc::new(cause));
    e
}

/// Validates UTF-8, pointing at the first bad byte.
fn as_utf8(source: &[u8]) -> Result<&str, ParseError> {
    std::str::from_utf8(source).map_err(|e| {
        let good = &source[..e.valid_up_to()];
        let line_start = good.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let line = good.iter().filter(|&&b| b == b'\n').count() + 1;
        // The prefix is valid UTF-8, so counting characters gives the column.
        let column = String::from_utf8_lossy(&good[line_start..]).chars().count() + 1;
        error(
            format!("Dockerfile is not valid UTF-8 at line {line}"),
            line,
            line,
            Some(column),
        )
    })
}

/// Parses a whole Dockerfile (bytes: a UTF-8 BOM and CRLF are accepted). See the module
/// documentation for the handling of invalid UTF-8.
pub fn parse(source: &[u8]) -> Result<Dockerfile, ParseError> {
    let text = as_utf8(source)?;
    let mut reader = Reader {
        scanner: Scanner::new(text),
        parser: DirectiveParser::default(),
        directives: Directives::default(),
        line: 0,
        comments: Vec::new(),
        warnings: Vec::new(),
    };
    let mut nodes: Vec<Node> = Vec::new();
    while let Some(raw) = reader.scanner.next_line() {
        if let Some(node) = reader.instruction(raw)? {
            nodes.push(node);
        }
    }
    if nodes.is_empty() {
        let at = reader.line.max(1);
        return Err(error("file with no instructions", at, at, None));
    }
    if reader.scanner.too_long {
        let at = reader.line + 1;
        return Err(error(
            format!(
                "dockerfile line greater than max allowed size of {}",
                lines::MAX_LINE - 1
            ),
            at,
            at,
            None,
        ));
    }
    Ok(Dockerfile {
        directives: reader.directives,
        nodes,
        warnings: reader.warnings,
    })
}

/// BuildKit's `Parse` loop: the lines read so far, the directives (and so the escape
/// character) found at the top, the comments above the next instruction, and the warnings.
struct Reader<'a> {
    scanner: Scanner<'a>,
    parser: DirectiveParser,
    directives: Directives,
    /// The 1-based number of the last line read.
    line: usize,
    comments: Vec<String>,
    warnings: Vec<ParseWarning>,
}

impl<'a> Reader<'a> {
    /// The instruction that starts at line `raw`, with its continuation lines and heredoc
    /// bodies read; `None` for a blank, comment or directive line.
    fn instruction(&mut self, mut raw: &'a str) -> Result<Option<Node>, ParseError> {
        if self.line == 0 {
            raw = raw.strip_prefix(BOM).unwrap_or(raw);
        }
        if is_comment(raw) {
            let comment = comment_text(raw);
            if comment.is_empty() {
                self.comments.clear();
            } else {
                self.comments.push(comment);
            }
        }
        let (processed, is_directive) = self
            .process_line(raw, true)
            .map_err(|e| caused(e, self.line + 1, self.line + 1))?;
        if is_directive {
            self.comments.pop();
        }
        self.line += 1;
        let start_line = self.line;
        let escape = self.directives.escape;
        let (first, end_of_line) = trim_continuation(processed, escape);
        if end_of_line && first.is_empty() {
            return Ok(None);
        }
        let line = self.logical_line(first, end_of_line)?;
        let prev = std::mem::take(&mut self.comments);
        let mut node = line_parsers::node_from_line(&line, escape, prev, 0)
            .map_err(|e| caused(e, start_line, self.line))?;
        if can_contain_heredoc(&node) && line.contains("<<") {
            let markers =
                heredoc::heredocs_from_line(&line).map_err(|e| caused(e, start_line, self.line))?;
            for marker in markers {
                let doc = self.heredoc_body(marker, start_line)?;
                node.heredocs.push(doc);
            }
        }
        set_span(
            &mut node,
            Span {
                start_line,
                end_line: self.line,
            },
        );
        Ok(Some(node))
    }

    /// A logical line: `first` and, while a line ends with the escape character, the next
    /// ones (comment lines inside are skipped; blank ones too, with a NoEmptyContinuation
    /// warning).
    fn logical_line(&mut self, first: &str, mut end_of_line: bool) -> Result<String, ParseError> {
        let escape = self.directives.escape;
        let mut line = first.to_string();
        let mut has_empty_continuation = false;
        while !end_of_line {
            let Some(raw) = self.scanner.next_line() else {
                break;
            };
            let (processed, _) = self
                .process_line(raw, false)
                .map_err(|e| caused(e, self.line + 1, self.line + 1))?;
            self.line += 1;
            if is_comment(raw) {
                continue;
            }
            if is_empty_continuation_line(processed) {
                has_empty_continuation = true;
                continue;
            }
            let (part, eol) = trim_continuation(processed, escape);
            end_of_line = eol;
            line.push_str(part);
        }
        if has_empty_continuation {
            self.warnings.push(ParseWarning {
                rule: Some("NoEmptyContinuation"),
                message: format!("Empty continuation line found in: {line}"),
                span: Span {
                    start_line: self.line,
                    end_line: self.line,
                },
            });
        }
        Ok(line)
    }

    /// The body of one heredoc of the instruction that starts at `start_line`: the lines up
    /// to its delimiter (after leading tabs for `<<-`), which must come.
    fn heredoc_body(&mut self, marker: Marker, start_line: usize) -> Result<Heredoc, ParseError> {
        let mut content = String::new();
        let mut terminated = false;
        while let Some(raw) = self.scanner.next_line() {
            self.line += 1;
            let mut candidate = trim_newline(raw);
            if marker.chomp {
                candidate = candidate.trim_start_matches('\t');
            }
            if candidate == marker.name {
                terminated = true;
                break;
            }
            content.push_str(raw);
        }
        if !terminated {
            return Err(error("unterminated heredoc", start_line, self.line, None));
        }
        if marker.chomp {
            content = heredoc::chomp(&content);
        }
        Ok(Heredoc {
            name: marker.name,
            content,
            expand: marker.expand,
            chomp: marker.chomp,
        })
    }

    /// BuildKit's `processLine`: trims the line end (and leading blanks for the first line
    /// of an instruction), looks for a directive, and blanks comment lines. Returns the
    /// processed text and whether the line was a directive.
    fn process_line<'l>(
        &mut self,
        raw: &'l str,
        strip_left: bool,
    ) -> Result<(&'l str, bool), DirectiveError> {
        let mut token = trim_newline(raw);
        if strip_left {
            token = gostr::trim_left_space(token);
        }
        let found = match self.parser.parse_line(token)? {
            None => false,
            Some(d) => {
                match d.name.as_str() {
                    "escape" => self.directives.escape = escape_token(&d.value)?,
                    "syntax" => self.directives.syntax = Some((d.value, d.line)),
                    _ => self.directives.check = Some((d.value, d.line)),
                }
                true
            }
        };
        Ok((trim_comments(token), found))
    }
}

/// Sets the line range on a node and on its ONBUILD-nested nodes.
fn set_span(node: &mut Node, span: Span) {
    let mut cur = Some(node);
    while let Some(n) = cur {
        n.span = span;
        cur = n.onbuild.as_deref_mut();
    }
}

/// BuildKit's `canContainHeredoc`: RUN, COPY and ADD in shell form, also under ONBUILD.
fn can_contain_heredoc(node: &Node) -> bool {
    let target = match (&node.keyword[..], &node.onbuild) {
        ("onbuild", Some(child)) => child,
        _ => node,
    };
    matches!(target.keyword.as_str(), "run" | "copy" | "add") && !target.json
}
