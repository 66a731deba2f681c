//! The Dockerfile AST: what the parser produces and the instruction layer consumes.
//!
//! It mirrors BuildKit's `parser.Node` for one instruction: the keyword, its flags, its
//! argument words (BuildKit's `Next` chain), heredoc attachments and the line range. It knows
//! nothing of instruction semantics (which flags exist, what ENV means): that is `instructions`.

use std::error::Error;
use std::fmt;
use std::sync::Arc;

/// Lines are 1-based and inclusive, as BuildKit reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize)]
pub struct Span {
    pub start_line: usize,
    pub end_line: usize,
}

/// One heredoc attached to an instruction (`RUN <<EOF ... EOF`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Heredoc {
    /// The delimiter word without quotes or `-` (`EOF`).
    pub name: String,
    /// The body, with `<<-` tab stripping applied, ending in a newline unless empty.
    pub content: String,
    /// False when the delimiter was quoted (`<<"EOF"`): the body is not expanded.
    pub expand: bool,
    /// True for `<<-`: leading tabs were stripped.
    pub chomp: bool,
}

/// One instruction as parsed: BuildKit's top-level `Node` and its `Next` chain flattened.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Node {
    /// The instruction keyword, lower-cased (`from`, `run`, ...).
    pub keyword: String,
    /// The keyword exactly as written (`From`), for casing lint and messages.
    pub keyword_raw: String,
    /// The whole instruction as written, continuations joined (BuildKit's `Original`).
    pub original: String,
    /// Leading `--flag[=value]` words, as written (`--from=build`).
    pub flags: Vec<String>,
    /// The argument words, as BuildKit's line parser for this keyword splits them.
    /// For ONBUILD this is empty and `onbuild` holds the nested instruction.
    pub args: Vec<String>,
    /// True when the arguments came from a JSON array (exec form).
    pub json: bool,
    /// The nested instruction of `ONBUILD <instruction>`.
    pub onbuild: Option<Box<Node>>,
    /// Heredocs in the order they appear.
    pub heredocs: Vec<Heredoc>,
    pub span: Span,
    /// Comment lines directly above the instruction (without `#`), as BuildKit keeps them.
    pub prev_comment: Vec<String>,
}

/// The parser directives found at the top of the file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Directives {
    /// `# escape=` (default `\`).
    pub escape: char,
    /// `# syntax=` value and its line, if present.
    pub syntax: Option<(String, usize)>,
    /// `# check=` value and its line, if present (e.g. `skip=JSONArgsRecommended;error=true`).
    pub check: Option<(String, usize)>,
}

impl Default for Directives {
    fn default() -> Self {
        Directives {
            escape: '\\',
            syntax: None,
            check: None,
        }
    }
}

/// A non-fatal finding of the parser (BuildKit prints these as warnings).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ParseWarning {
    /// The lint rule name when it is one (`NoEmptyContinuation`), else None.
    pub rule: Option<&'static str>,
    pub message: String,
    pub span: Span,
}

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Dockerfile {
    pub directives: Directives,
    pub nodes: Vec<Node>,
    pub warnings: Vec<ParseWarning>,
}

/// A parse failure: what went wrong and on which line (1-based; 0 when the file as a whole is
/// at fault, e.g. empty). `column` is 1-based when known. Equality leaves `cause` out (its
/// message is in `message`).
#[derive(Debug, Clone)]
pub struct ParseError {
    pub message: String,
    pub span: Span,
    pub column: Option<usize>,
    /// The parser's typed error behind `message`, if any: what `source()` returns.
    pub cause: Option<Arc<dyn Error + Send + Sync>>,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl Error for ParseError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.cause.as_deref().map(|c| c as &(dyn Error + 'static))
    }
}

impl PartialEq for ParseError {
    fn eq(&self, other: &Self) -> bool {
        self.message == other.message && self.span == other.span && self.column == other.column
    }
}

impl Eq for ParseError {}
