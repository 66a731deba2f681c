//! Shell word expansion, as BuildKit's Dockerfile shell lexer does it.
//!
//! This module owns *word expansion only*: given one word of a Dockerfile instruction and the
//! variables in scope, it removes quotes and escapes, substitutes `$VAR` / `${VAR...}`
//! references, and (for [`Lexer::process_words`]) splits the result into fields. Which
//! instructions expand their arguments, which variables are in scope (build args, `ENV`, the
//! automatic platform args), and the order in which they are merged are the instruction layer's
//! business: it hands a merged [`VarLookup`] in.
//!
//! The behaviour follows `frontend/dockerfile/shell/lex.go` of moby/buildkit (v0.26), as
//! observed on Linux, including its error texts:
//!
//! * `$name`, `${name}`; names are letters, digits and `_` (Unicode letters and decimal digits
//!   count, as Go's `unicode.IsLetter`/`IsDigit` define them). A name starting with a digit is
//!   all the digits that follow (`$10x` looks up `10`); the special parameters `@ * # ? - $ ! 0`
//!   are one-character names. Positional and special parameters are looked up like any other
//!   variable, so they expand to nothing unless the caller defines them.
//! * `${name:-word}`, `${name-word}`, `${name:+word}`, `${name+word}`, `${name:?word}`,
//!   `${name?word}` (the colon forms treat an empty value like an unset one). The error of `?`
//!   is `name: word`, or `name: is not allowed to be unset` / `name: is not allowed to be empty`
//!   when `word` is empty.
//! * `${name#pattern}`, `${name##pattern}`, `${name%pattern}`, `${name%%pattern}`: remove the
//!   shortest/longest matching prefix/suffix. Patterns know `*`, `?` and backslash escapes of
//!   `*`, `?` and `\` (`\}` and `\/` stand for `}` and `/`); there are no bracket expressions,
//!   so `[` is literal. As in BuildKit (which compiles them to Go regular expressions), `*` and
//!   `?` never match a newline. `${name:#...}` and `${name:%...}` are errors.
//! * `${name/pattern/replacement}` replaces the leftmost match (its `*`s as long as they can
//!   be), `${name//pattern/replacement}` every match. As in BuildKit, in the replace-all form
//!   `$0`/`${0}` in the replacement stand for the matched text, `$$` for `$`, and any other
//!   `$name` for nothing (Go's `Regexp.ReplaceAllString` template rules).
//! * The word of a modifier is itself expanded (nested `${...}`, quotes, escapes).
//! * Single quotes keep everything literal; double quotes keep everything but `$` expansions
//!   and escapes of `"`, `$` and the escape character itself. The escape character (`\` or
//!   `` ` ``, see [`Lexer::escape`]) outside quotes makes the next character literal and is
//!   dropped at the end of the word.
//! * Any other `${...}` form is an error: `unsupported modifier (X) in substitution`,
//!   `syntax error: bad substitution`, `syntax error: missing '}'`, and so on. Errors read
//!   `failed to process "WORD": REASON`, with `WORD` quoted as Go's `%q` quotes it.
//!
//! Deliberate deviations from BuildKit:
//!
//! * Field splitting ([`Expansion::words`], [`Lexer::process_words`]) keeps the text before a
//!   `${name<modifier>...}` expansion in its field. BuildKit shares one field buffer between
//!   the outer word and the modifier's nested word, so the nested one wipes what the field had
//!   so far: its `ProcessWords("80${P:-/tcp}")` gives `["/tcp"]` although its `ProcessWord`
//!   gives `"80/tcp"`. We give `["80/tcp"]`, which is what its code did before that buffer was
//!   shared and what the expanded text says. `result` is never affected.
//! * Expansions nested more than [`MAX_NESTING`] deep are an error instead of unbounded
//!   recursion (Go's growable stacks make that safe there, Rust's fixed ones do not).
//! * A word that expands to more than [`MAX_EXPANDED`] bytes is an error instead of an
//!   allocation that takes the machine's memory.
//!
//! Character classes come from tables of Unicode 15.0, the version of Go 1.21 and later.

mod lex;
mod pattern;
mod tables;
mod text;

pub use pattern::InvalidEscape;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{BuildHasher, Hash};

/// How deeply `${...}` expansions may nest inside each other's words.
pub const MAX_NESTING: usize = 200;

/// The largest word an expansion may produce, in bytes. BuildKit has no limit, and twelve
/// lines of `ARG A=$A$A$A$A$A$A$A$A` then ask for gigabytes; no real Dockerfile word comes
/// near this (Linux refuses a single argument or variable over 128 KiB at exec).
pub const MAX_EXPANDED: usize = 1 << 20;

/// Looks up variables for expansion (build args + env, already merged by the caller).
///
/// `None` means "unset", which differs from `Some("")` for the modifiers without a colon.
pub trait VarLookup {
    /// The value of `name`, if it is set.
    fn lookup(&self, name: &str) -> Option<String>;
}

impl<T: VarLookup + ?Sized> VarLookup for &T {
    fn lookup(&self, name: &str) -> Option<String> {
        (**self).lookup(name)
    }
}

impl<K, V> VarLookup for BTreeMap<K, V>
where
    K: std::borrow::Borrow<str> + Ord,
    V: AsRef<str>,
{
    fn lookup(&self, name: &str) -> Option<String> {
        self.get(name).map(|v| v.as_ref().to_owned())
    }
}

impl<K, V, S> VarLookup for HashMap<K, V, S>
where
    K: std::borrow::Borrow<str> + Hash + Eq,
    V: AsRef<str>,
    S: BuildHasher,
{
    fn lookup(&self, name: &str) -> Option<String> {
        self.get(name).map(|v| v.as_ref().to_owned())
    }
}

/// A list of `(name, value)` pairs; when a name occurs more than once the last one wins.
impl<K: AsRef<str>, V: AsRef<str>> VarLookup for [(K, V)] {
    fn lookup(&self, name: &str) -> Option<String> {
        self.iter()
            .rev()
            .find(|(k, _)| k.as_ref() == name)
            .map(|(_, v)| v.as_ref().to_owned())
    }
}

/// As for slices: the last pair with the name wins.
impl<K: AsRef<str>, V: AsRef<str>> VarLookup for Vec<(K, V)> {
    fn lookup(&self, name: &str) -> Option<String> {
        self.as_slice().lookup(name)
    }
}

/// As for slices: the last pair with the name wins.
impl<K: AsRef<str>, V: AsRef<str>, const N: usize> VarLookup for [(K, V); N] {
    fn lookup(&self, name: &str) -> Option<String> {
        self.as_slice().lookup(name)
    }
}

/// Builds a variable map from `NAME=value` entries (as in an image config's `Env`), the way
/// BuildKit's `EnvsFromSlice` does: the first `=` splits, an entry without `=` sets the name
/// to the empty string, and a later entry for the same name replaces an earlier one.
pub fn env_from_list<I, S>(entries: I) -> BTreeMap<String, String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut map = BTreeMap::new();
    for entry in entries {
        let entry = entry.as_ref();
        let (k, v) = entry.split_once('=').unwrap_or((entry, ""));
        map.insert(k.to_owned(), v.to_owned());
    }
    map
}

/// The word lexer: BuildKit's `shell.Lex`, its options as public fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lexer {
    /// The escape character: `\` by default, `` ` `` under the `# escape=`` ` directive.
    pub escape: char,
    /// Keep the quote characters in the result (they still group and protect their contents).
    pub raw_quotes: bool,
    /// Keep escape characters in the result (they still protect the next character).
    pub raw_escapes: bool,
    /// Leave references to unset variables as they were written (`$X`, `${X}`,
    /// `${X:-word}` with `word` expanded, ...) instead of expanding them. Errors are still
    /// errors, but `${X?msg}` and unknown modifiers on an unset `X` are kept, not reported.
    pub skip_unset_env: bool,
    /// Treat `'` and `"` as ordinary characters.
    pub skip_process_quotes: bool,
}

impl Default for Lexer {
    fn default() -> Self {
        Self::new('\\')
    }
}

/// The outcome of expanding one word: BuildKit's `ProcessWordResult`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Expansion {
    /// The expanded word, quotes and escapes removed, spaces kept.
    pub result: String,
    /// The expanded word split into fields at unquoted, unescaped whitespace (whitespace that
    /// comes out of a variable's value splits too). Empty quotes make no field.
    pub words: Vec<String>,
    /// Names referenced and found.
    pub matched: BTreeSet<String>,
    /// Names referenced but unset.
    pub unmatched: BTreeSet<String>,
}

/// An expansion error; `message` is BuildKit's text, e.g.
/// `failed to process "${X:?}": X: is not allowed to be unset`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ShellError {
    /// The full message, as BuildKit's error prints: `failed to process "WORD": ` and the
    /// reason.
    pub message: String,
    /// Why the word could not be expanded.
    #[source]
    pub reason: ExpandError,
}

/// Why a word could not be expanded (BuildKit's texts, without the word).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpandError {
    /// A quote or `${` whose closing character never came.
    #[error("unexpected end of statement while looking for matching {0}")]
    Unterminated(char),
    #[error("unexpected end of statement while looking for matching single-quote")]
    UnclosedSingleQuote,
    #[error("unexpected end of statement while looking for matching double-quote")]
    UnclosedDoubleQuote,
    /// More than [`MAX_NESTING`] `${...}` inside each other.
    #[error("syntax error: expansions nested more than {MAX_NESTING} deep")]
    TooDeep,
    #[error("syntax error: missing '}}'")]
    MissingBrace,
    #[error("syntax error: missing '/' in ${{}}")]
    MissingSlash,
    /// `${}`, `${{`, `${:...}`.
    #[error("syntax error: bad substitution")]
    BadSubstitution,
    /// The modifier as written (`:#`, `!`).
    #[error("unsupported modifier ({0}) in substitution")]
    UnsupportedModifier(String),
    /// The word grew past [`MAX_EXPANDED`] bytes.
    #[error(
        "the expanded word is larger than {} MiB: variables that expand to themselves several \
         times grow exponentially; shorten the values (pallet stops expanding at this size)",
        MAX_EXPANDED >> 20
    )]
    TooLarge,
    /// `${NAME?message}` (or `:?`) on an unset (or empty) variable.
    #[error("{name}: {message}")]
    Required { name: String, message: String },
    /// A `#`, `%` or `/` pattern with an escape Go's regexp refuses.
    #[error("invalid pattern ({pattern}) in substitution: {source}")]
    InvalidPattern {
        pattern: String,
        source: InvalidEscape,
    },
}

impl Lexer {
    /// A lexer with the given escape character and every option off.
    pub fn new(escape: char) -> Self {
        Lexer {
            escape,
            raw_quotes: false,
            raw_escapes: false,
            skip_unset_env: false,
            skip_process_quotes: false,
        }
    }

    /// Expands one word (BuildKit's `ProcessWordWithMatches`): the result, its fields, and
    /// which referenced names were set and which were not.
    pub fn process_word(&self, word: &str, env: &dyn VarLookup) -> Result<Expansion, ShellError> {
        lex::process(self, word, env)
    }

    /// Expands one word and splits it into fields (BuildKit's `ProcessWords`).
    pub fn process_words(
        &self,
        word: &str,
        env: &dyn VarLookup,
    ) -> Result<Vec<String>, ShellError> {
        self.process_word(word, env).map(|e| e.words)
    }
}
