//! The CLI's one error type, [`CliError`], and its one renderer, [`CliError::render`].
//!
//! Every subcommand returns `Result<_, CliError>`. A `CliError` says what failed (a message, a
//! cause, or both: `what: cause`), keeps the cause as its [`source`](CliError::source), and
//! carries the `help` lines to print under it and the process exit code. Errors from the layers
//! below convert with `?` (any `std::error::Error`) or name what was being done with
//! [`Context::context`]; `Result<_, String>` from a layer that has no typed error yet converts the
//! same way through [`Context`] or [`CliError::new`].
//!
//! The house convention: an error's `Display` already includes its cause's message, so the
//! renderer prints `Display`, never the source chain. Dockerfile errors arrive rendered by the
//! frontend (with the source snippet and caret), and that text is printed as is.
//!
//! This module owns the shape of what pallet prints on failure; it knows nothing of subcommands.

use std::error::Error;
use std::fmt;
use std::process::ExitCode;

/// A cause of any kind from a layer below the CLI.
pub type Cause = Box<dyn Error + Send + Sync + 'static>;

/// The exit code of a failed pallet command (`pallet run` uses docker's 125 instead).
pub const FAILED: u8 = 1;

/// The exit code of a command line pallet cannot parse (an unknown flag, a missing value):
/// docker's 125, which pipelines written for `docker build` tell apart from a failed build.
pub const USAGE: u8 = 125;

/// What a CLI command reports when it fails.
pub struct CliError {
    /// What was being done (`reading the store`); None: the cause says it all.
    context: Option<String>,
    /// Why it failed; None: the context is the whole message.
    cause: Option<Cause>,
    /// `  = help: ...` lines, in order.
    help: Vec<String>,
    /// Text already rendered by the layer that failed (a Dockerfile snippet with a caret),
    /// printed instead of `error: <message>`.
    rendered: Option<String>,
    exit_code: u8,
}

impl CliError {
    /// A failure with nothing below it: the message is what the user reads after `error: `.
    pub fn msg(message: impl Into<String>) -> Self {
        CliError {
            context: Some(message.into()),
            cause: None,
            help: Vec::new(),
            rendered: None,
            exit_code: FAILED,
        }
    }

    /// A failure of a layer below, reported as it describes itself. Takes a typed error or,
    /// from a layer without one yet, a `String`.
    pub fn new(cause: impl Into<Cause>) -> Self {
        CliError {
            context: None,
            cause: Some(cause.into()),
            help: Vec::new(),
            rendered: None,
            exit_code: FAILED,
        }
    }

    /// A failure of a layer below, reported as `what: cause`.
    pub fn context(what: impl fmt::Display, cause: impl Into<Cause>) -> Self {
        CliError {
            context: Some(what.to_string()),
            ..CliError::new(cause)
        }
    }

    /// A failure whose report the layer below already rendered (the frontend's snippet of the
    /// Dockerfile); `cause` stays the source.
    pub fn rendered(cause: impl Into<Cause>, text: String) -> Self {
        CliError {
            rendered: Some(text),
            ..CliError::new(cause)
        }
    }

    /// Adds a `  = help: ...` line: what to do about it.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help.push(help.into());
        self
    }

    /// Sets the process exit code (default [`FAILED`]).
    pub fn with_exit_code(mut self, code: u8) -> Self {
        self.exit_code = code;
        self
    }

    /// The process exit code for this failure.
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.exit_code)
    }

    /// The error this one reports, if a layer below failed.
    pub fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.cause.as_deref().map(|e| e as &(dyn Error + 'static))
    }

    /// The one renderer: what pallet prints on standard error when a command fails.
    /// `error: <message>` and a `  = help: <help>` line per help, each ending in a newline; a
    /// report the layer below rendered is printed as it is (ending in a newline).
    pub fn render(&self) -> String {
        let mut out = match &self.rendered {
            Some(text) => text.clone(),
            None => format!("error: {self}\n"),
        };
        if !out.ends_with('\n') {
            out.push('\n');
        }
        for help in &self.help {
            out.push_str(&format!("  = help: {help}\n"));
        }
        out
    }
}

/// What failed, without `error: ` or help: `context: cause`, `context` or `cause`.
impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.context, &self.cause) {
            (Some(what), Some(cause)) => write!(f, "{what}: {cause}"),
            (Some(what), None) => f.write_str(what),
            (None, Some(cause)) => write!(f, "{cause}"),
            (None, None) => Ok(()),
        }
    }
}

impl fmt::Debug for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CliError")
            .field("message", &self.to_string())
            .field("help", &self.help)
            .field("rendered", &self.rendered.is_some())
            .field("exit_code", &self.exit_code)
            .field("source", &self.cause)
            .finish()
    }
}

/// `?` on any typed error: reported as it describes itself (`error: <its Display>`).
/// (`CliError` is not itself a `std::error::Error`, which is what lets this impl exist.)
impl<E: Error + Send + Sync + 'static> From<E> for CliError {
    fn from(e: E) -> Self {
        CliError::new(e)
    }
}

/// Names what was being done when a layer below failed.
pub trait Context<T> {
    /// `error: <what>: <cause>`.
    fn context(self, what: impl fmt::Display) -> Result<T, CliError>;

    /// As [`context`](Context::context), with the text made only on failure.
    fn with_context<D: fmt::Display>(self, what: impl FnOnce() -> D) -> Result<T, CliError>;

    /// The cause alone, as it describes itself: for a `Result<_, String>` from a layer that has
    /// no typed error yet (a typed one converts with plain `?`).
    fn or_fail(self) -> Result<T, CliError>;
}

impl<T, E: Into<Cause>> Context<T> for Result<T, E> {
    fn context(self, what: impl fmt::Display) -> Result<T, CliError> {
        self.map_err(|e| CliError::context(what, e))
    }

    fn with_context<D: fmt::Display>(self, what: impl FnOnce() -> D) -> Result<T, CliError> {
        self.map_err(|e| CliError::context(what(), e))
    }

    fn or_fail(self) -> Result<T, CliError> {
        self.map_err(CliError::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io(kind: std::io::ErrorKind, text: &str) -> std::io::Error {
        std::io::Error::new(kind, text)
    }

    #[test]
    fn renders_message_then_help_lines() {
        let e = CliError::msg("--push needs a name to push to").with_help("add -t NAME");
        assert_eq!(
            e.render(),
            "error: --push needs a name to push to\n  = help: add -t NAME\n"
        );
        assert_eq!(e.exit_code(), ExitCode::from(FAILED));
        assert!(e.source().is_none());
    }

    #[test]
    fn context_joins_the_cause_and_keeps_it_as_source() {
        let r: Result<(), _> = Err(io(std::io::ErrorKind::NotFound, "gone"));
        let e = r.context("reading the store").unwrap_err();
        assert_eq!(e.render(), "error: reading the store: gone\n");
        assert_eq!(e.source().unwrap().to_string(), "gone");
        let e = CliError::from(io(std::io::ErrorKind::Other, "disk full"));
        assert_eq!(e.render(), "error: disk full\n");
    }

    #[test]
    fn string_causes_from_untyped_layers_read_the_same() {
        let r: Result<(), String> = Err("invalid --progress \"x\"".into());
        assert_eq!(
            r.clone().or_fail().unwrap_err().render(),
            "error: invalid --progress \"x\"\n"
        );
        let e = r.with_context(|| "--compression").unwrap_err();
        assert_eq!(e.to_string(), "--compression: invalid --progress \"x\"");
        assert!(e.source().is_some());
    }

    #[test]
    fn rendered_text_is_printed_as_is_with_the_exit_code() {
        let e = CliError::rendered(
            io(std::io::ErrorKind::Other, "unknown instruction"),
            "error: unknown instruction\n --> Dockerfile:2:1\n".into(),
        )
        .with_exit_code(125);
        assert_eq!(
            e.render(),
            "error: unknown instruction\n --> Dockerfile:2:1\n"
        );
        assert_eq!(e.exit_code(), ExitCode::from(125));
        assert_eq!(e.to_string(), "unknown instruction");
    }
}
