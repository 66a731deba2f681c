//! Frontend errors as the user sees them: what failed, where (file:line:col), the line itself
//! with a caret, and what to do. Every stage of the frontend reports through `FrontendError`:
//! a module's own typed error (a `MountError`, a `FlagError`, ...) becomes one where the
//! instruction's span is known, and stays behind it as its `source()`.
//!
//! It knows nothing of what the errors are about: no instruction, no stage.

use super::ast::{ParseError, Span};
use super::lint::Warning;
use std::error::Error;
use std::fmt;
use std::sync::Arc;

/// The typed error behind a `FrontendError` or a `ParseError`, shared so that both stay
/// `Clone`. Its message is already part of the outer error's.
pub type Cause = Arc<dyn Error + Send + Sync>;

/// An error in a Dockerfile (or in the flags that drive lowering), with its location.
///
/// Two errors are equal when they say the same thing at the same place: `cause` is left out
/// of the comparison (its message is in `message`).
#[derive(Debug, Clone)]
pub struct FrontendError {
    pub message: String,
    /// Lines of the instruction at fault; `start_line == 0` means no location (e.g. a flag).
    pub span: Span,
    /// 1-based column of the caret when known.
    pub column: Option<usize>,
    /// What to do about it, when we can say.
    pub hint: Option<String>,
    /// Text within the instruction that the caret should point at (a flag, a word); the
    /// line and column are found when rendering, since continuations may move it.
    pub needle: Option<Box<str>>,
    /// The typed error this one was made from, if any: what `source()` returns.
    pub cause: Option<Cause>,
    /// Lint warnings found before the error (BuildKit reports those its instruction parser
    /// found before an instruction that does not parse): shown before it. Boxed (and read
    /// through [`FrontendError::warnings`]) so that the error stays small.
    pub(crate) earlier: Option<Box<Earlier>>,
}

/// The warnings of [`FrontendError::warnings`].
#[derive(Debug, Clone)]
pub(crate) struct Earlier(Vec<Warning>);

impl PartialEq for FrontendError {
    fn eq(&self, other: &Self) -> bool {
        self.message == other.message
            && self.span == other.span
            && self.column == other.column
            && self.hint == other.hint
            && self.needle == other.needle
    }
}

impl Eq for FrontendError {}

impl FrontendError {
    /// The lint warnings found before this error, to show before it.
    pub fn warnings(&self) -> &[Warning] {
        self.earlier.as_deref().map_or(&[], |e| &e.0)
    }

    /// This error with the lint warnings found before it.
    pub fn with_warnings(mut self, warnings: Vec<Warning>) -> Self {
        self.earlier = (!warnings.is_empty()).then(|| Box::new(Earlier(warnings)));
        self
    }

    pub fn new(message: impl Into<String>, span: Span) -> Self {
        FrontendError {
            message: message.into(),
            span,
            column: None,
            hint: None,
            needle: None,
            cause: None,
            earlier: None,
        }
    }

    /// An error that says what `cause` says, at `span`; `cause` stays behind it as its
    /// `source()`.
    pub fn from_cause(cause: impl Error + Send + Sync + 'static, span: Span) -> Self {
        Self::new(cause.to_string(), span).with_cause(cause)
    }

    /// Keeps `cause` as this error's `source()` (its message should already be in `message`).
    pub fn with_cause(mut self, cause: impl Error + Send + Sync + 'static) -> Self {
        self.cause = Some(Arc::new(cause));
        self
    }

    /// An error that is not tied to a Dockerfile line (bad `--target`, bad `--build-arg`).
    pub fn global(message: impl Into<String>) -> Self {
        Self::new(message, Span::default())
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn with_needle(mut self, needle: impl Into<String>) -> Self {
        self.needle = Some(needle.into().into_boxed_str());
        self
    }

    /// The line and 1-based column the error points at, given the Dockerfile text.
    pub fn locate(&self, source: &str) -> Option<(usize, usize)> {
        if self.span.start_line == 0 {
            return None;
        }
        let lines: Vec<&str> = source.lines().collect();
        let end = self.span.end_line.max(self.span.start_line);
        if let Some(needle) = self.needle.as_deref().filter(|n| !n.is_empty()) {
            for line_no in self.span.start_line..=end {
                let text = clean(lines.get(line_no - 1).copied().unwrap_or(""));
                if let Some(byte) = text.find(needle) {
                    return Some((line_no, text[..byte].chars().count() + 1));
                }
            }
        }
        let text = clean(lines.get(self.span.start_line - 1).copied().unwrap_or(""));
        Some((
            self.span.start_line,
            self.column.unwrap_or_else(|| first_non_blank_column(text)),
        ))
    }

    pub fn with_column(mut self, column: usize) -> Self {
        self.column = Some(column);
        self
    }

    /// Adds a location if the error has none yet (inner errors keep the more precise one).
    pub fn at(mut self, span: Span) -> Self {
        if self.span.start_line == 0 {
            self.span = span;
        }
        self
    }

    /// Renders the error against the Dockerfile text:
    ///
    /// ```text
    /// error: unknown flag: --form
    ///  --> Dockerfile:3:6
    ///   |
    /// 3 | COPY --form=build /out /app
    ///   |      ^
    ///   = help: did you mean --from?
    /// ```
    pub fn render(&self, file: &str, source: &str) -> String {
        let mut out = format!("error: {}\n", self.message);
        match self.locate(source) {
            None => out.push_str(&format!(" --> {file}\n")),
            Some((line_no, column)) => {
                let lines: Vec<&str> = source.lines().collect();
                let line = clean(lines.get(line_no - 1).copied().unwrap_or(""));
                let (shown, shown_column) = window(line, column);
                let text = shown.as_str();
                out.push_str(&format!(" --> {file}:{line_no}:{column}\n"));
                let last = self.span.end_line.max(line_no);
                let width = last.to_string().len();
                let pad = " ".repeat(width);
                out.push_str(&format!("{pad} |\n{line_no:>width$} | {text}\n"));
                let caret_pad: String = text
                    .chars()
                    .take(shown_column.saturating_sub(1))
                    .map(|c| if c == '\t' { '\t' } else { ' ' })
                    .collect();
                out.push_str(&format!("{pad} | {caret_pad}^\n"));
                if self.span.start_line != self.span.end_line && self.span.end_line > 0 {
                    out.push_str(&format!(
                        "{pad} = note: the instruction spans lines {}-{}\n",
                        self.span.start_line, self.span.end_line
                    ));
                }
            }
        }
        if let Some(hint) = &self.hint {
            out.push_str(&format!("  = help: {hint}\n"));
        }
        out
    }
}

/// The most characters of a source line an error shows.
const MAX_SHOWN: usize = 160;

/// At most [`MAX_SHOWN`] characters of `line` around `column` (1-based), `…` marking what was
/// cut, and the column within what is shown: a 50 MB line is not echoed whole.
fn window(line: &str, column: usize) -> (String, usize) {
    let count = line.chars().count();
    if count <= MAX_SHOWN {
        return (line.to_string(), column);
    }
    let start = column
        .saturating_sub(1)
        .saturating_sub(MAX_SHOWN / 4)
        .min(count - MAX_SHOWN);
    let mut shown = String::new();
    if start > 0 {
        shown.push('…');
    }
    shown.extend(line.chars().skip(start).take(MAX_SHOWN));
    if start + MAX_SHOWN < count {
        shown.push('…');
    }
    let column = column.saturating_sub(start) + usize::from(start > 0);
    (shown, column)
}

/// `text` cut to at most `max` characters, with `…` where it was cut: for echoing user input
/// in messages.
pub fn shorten(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if text.chars().count() <= max {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out: String = text.chars().take(max).collect();
    out.push('…');
    std::borrow::Cow::Owned(out)
}

fn clean(line: &str) -> &str {
    line.trim_start_matches('\u{feff}').trim_end_matches('\r')
}

fn first_non_blank_column(text: &str) -> usize {
    text.chars().take_while(|c| c.is_whitespace()).count() + 1
}

impl fmt::Display for FrontendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.span.start_line > 0 {
            write!(f, "line {}: {}", self.span.start_line, self.message)?;
        } else {
            f.write_str(&self.message)?;
        }
        if let Some(hint) = &self.hint {
            write!(f, " ({hint})")?;
        }
        Ok(())
    }
}

impl Error for FrontendError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.cause.as_deref().map(|c| c as &(dyn Error + 'static))
    }
}

/// The same error with the same cause: a `ParseError` is a `FrontendError` without hint or
/// needle.
impl From<ParseError> for FrontendError {
    fn from(e: ParseError) -> Self {
        FrontendError {
            message: e.message,
            span: e.span,
            column: e.column,
            hint: None,
            needle: None,
            cause: e.cause,
            earlier: None,
        }
    }
}

/// The closest candidate to `word` by edit distance, if it is close enough to be a likely typo
/// (BuildKit's `suggest` package does the same for flags, instructions and stage names).
pub fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let word_lower = word.to_lowercase();
    let mut best: Option<(&str, usize)> = None;
    for c in candidates {
        let d = edit_distance(&word_lower, &c.to_lowercase());
        if best.is_none_or(|(_, bd)| d < bd) {
            best = Some((c, d));
        }
    }
    let (c, d) = best?;
    // BuildKit's `suggest.Search`: anything closer than 3 edits (an exact match says
    // nothing, except where only the case differs).
    (d > 0 && d < 3 || d == 0 && c != word).then_some(c)
}

/// [`suggest`] with the case significant, as BuildKit's `suggest.Search(v, opts, true)`
/// (variable names): none when `word` is itself a candidate, else the first closest one
/// fewer than 3 edits away.
pub fn suggest_exact<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let mut best: Option<(&str, usize)> = None;
    for c in candidates {
        if c == word {
            return None;
        }
        let d = edit_distance(word, c);
        if d < best.map_or(3, |(_, bd)| bd) {
            best = Some((c, d));
        }
    }
    best.map(|(c, _)| c)
}

/// Optimal-string-alignment distance: Levenshtein plus adjacent transpositions (`form`/`from`).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_words_only() {
        assert_eq!(suggest("form", ["from", "chown", "chmod"]), Some("from"));
        assert_eq!(suggest("RUNN", ["RUN", "CMD"]), Some("RUN"));
        assert_eq!(suggest("xyzzy", ["from", "chown"]), None);
        assert_eq!(suggest("FROM", ["from"]), Some("from"));
    }

    #[test]
    fn cause_is_the_source_and_not_part_of_equality() {
        let cause = crate::duration::parse("5q").unwrap_err();
        let e = FrontendError::from_cause(cause.clone(), Span::default());
        assert_eq!(e.message, cause.to_string());
        let source = std::error::Error::source(&e).unwrap();
        assert_eq!(source.downcast_ref(), Some(&cause));
        assert_eq!(e, FrontendError::new(cause.to_string(), Span::default()));
    }

    #[test]
    fn renders_caret_under_column() {
        let src = "FROM a\nCOPY --form=b x y\n";
        let e = FrontendError::new(
            "unknown flag: form",
            Span {
                start_line: 2,
                end_line: 2,
            },
        )
        .with_column(6)
        .with_hint("did you mean --from?");
        let r = e.render("Dockerfile", src);
        assert!(r.contains(" --> Dockerfile:2:6\n"), "{r}");
        assert!(r.contains("2 | COPY --form=b x y\n  |      ^\n"), "{r}");
        assert!(r.contains("help: did you mean --from?"), "{r}");
    }
}

#[cfg(test)]
mod window_tests {
    use super::window;

    #[test]
    fn long_lines_are_shown_around_the_column() {
        let line = format!("{}X{}", "a".repeat(1000), "b".repeat(1000));
        let (shown, column) = window(&line, 1001);
        assert!(shown.chars().count() <= 162, "{}", shown.len());
        assert_eq!(shown.chars().nth(column - 1), Some('X'), "{shown}");
        assert!(shown.starts_with('…') && shown.ends_with('…'));
        let (shown, column) = window("short", 3);
        assert_eq!((shown.as_str(), column), ("short", 3));
        let (shown, column) = window(&line, 1);
        assert_eq!(shown.chars().next(), Some('a'));
        assert_eq!(column, 1);
    }
}
