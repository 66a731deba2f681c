//! Instruction flags (`--from=build`, `--link`, `--mount=...`) with BuildKit's `BFlags` rules:
//! each instruction declares the flags it takes; unknown, duplicated or malformed flags are errors.
//! It knows no instruction: which flags each takes is its parser's declaration.

use crate::ast::Span;
use crate::diagnostic::{suggest, FrontendError};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Bool,
    String,
    /// May repeat (`--mount`, `--exclude`).
    Strings,
}

/// The flags of one instruction: declare with `bool`/`string`/`strings`, then `parse`.
pub struct Flags<'a> {
    raw: &'a [String],
    declared: Vec<(&'static str, Kind)>,
    values: Vec<(&'static str, String)>,
}

/// A flag that cannot be used (BuildKit's texts), with the flag as written (`flag`, where
/// the caret goes).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlagError {
    /// A word among the flags that does not start with `--`.
    #[error("arg should start with -- : {flag}")]
    NotAFlag { flag: String },
    /// A flag the instruction does not declare; `known` are those it does.
    /// BuildKit's text: `unknown flag: --NAME`, with its `(did you mean NAME?)` when one is
    /// close.
    #[error("unknown flag: --{name}{}", did_you_mean(.name, .known))]
    Unknown {
        flag: String,
        name: String,
        known: Vec<&'static str>,
    },
    #[error("duplicate flag specified: {name}")]
    Duplicate { flag: String, name: String },
    #[error("missing a value on flag: {name}")]
    MissingValue { flag: String, name: String },
    #[error("expecting boolean value for flag {name}, not: {value}")]
    NotBool {
        flag: String,
        name: String,
        value: String,
    },
}

impl FlagError {
    /// The flag as written.
    pub fn flag(&self) -> &str {
        match self {
            FlagError::NotAFlag { flag }
            | FlagError::Unknown { flag, .. }
            | FlagError::Duplicate { flag, .. }
            | FlagError::MissingValue { flag, .. }
            | FlagError::NotBool { flag, .. } => flag,
        }
    }

    /// What to do about an unknown flag: the likely one, or the flags there are.
    pub fn hint(&self) -> Option<String> {
        let FlagError::Unknown { name, known, .. } = self else {
            return None;
        };
        Some(if suggest(name, known.iter().copied()).is_some() {
            // In the message already, as BuildKit puts it.
            return None;
        } else if known.is_empty() {
            "this instruction takes no flags".into()
        } else {
            let names: Vec<String> = known.iter().map(|n| format!("--{n}")).collect();
            format!("this instruction takes {}", names.join(", "))
        })
    }

    /// The error at an instruction's `span`, the caret on the flag, with `hint()` as help.
    pub fn at(self, span: Span) -> FrontendError {
        let hint = self.hint();
        let e = self.at_without_hint(span);
        match hint {
            Some(h) => e.with_hint(h),
            None => e,
        }
    }

    /// As `at`, without help: for the forms of an instruction that take no flags although
    /// its other forms do (`HEALTHCHECK NONE`), where listing them would mislead.
    pub fn at_without_hint(self, span: Span) -> FrontendError {
        let flag = self.flag().to_string();
        FrontendError::from_cause(self, span).with_needle(flag)
    }
}

/// BuildKit's `suggest.WrapError` suffix for an unknown flag.
fn did_you_mean(name: &str, known: &[&'static str]) -> String {
    suggest(name, known.iter().copied())
        .map_or_else(String::new, |s| format!(" (did you mean {s}?)"))
}

impl<'a> Flags<'a> {
    pub fn new(raw: &'a [String]) -> Self {
        Flags {
            raw,
            declared: Vec::new(),
            values: Vec::new(),
        }
    }

    pub fn declare_bool(&mut self, name: &'static str) -> &mut Self {
        self.declared.push((name, Kind::Bool));
        self
    }

    pub fn declare_string(&mut self, name: &'static str) -> &mut Self {
        self.declared.push((name, Kind::String));
        self
    }

    pub fn declare_strings(&mut self, name: &'static str) -> &mut Self {
        self.declared.push((name, Kind::Strings));
        self
    }

    /// Checks every raw flag against the declarations and records values.
    pub fn parse(&mut self) -> Result<(), FlagError> {
        for raw in self.raw {
            let flag = || raw.clone();
            let Some(body) = raw.strip_prefix("--") else {
                return Err(FlagError::NotAFlag { flag: flag() });
            };
            if body.is_empty() {
                return Ok(());
            }
            let (name, value) = match body.find('=') {
                Some(i) => (&body[..i], Some(&body[i + 1..])),
                None => (body, None),
            };
            let name_s = || name.to_string();
            let Some(&(decl, kind)) = self.declared.iter().find(|(n, _)| *n == name) else {
                return Err(FlagError::Unknown {
                    flag: flag(),
                    name: name_s(),
                    known: self.declared.iter().map(|(n, _)| *n).collect(),
                });
            };
            if kind != Kind::Strings && self.values.iter().any(|(n, _)| *n == decl) {
                return Err(FlagError::Duplicate {
                    flag: flag(),
                    name: name_s(),
                });
            }
            let missing = || FlagError::MissingValue {
                flag: flag(),
                name: name_s(),
            };
            let value = match kind {
                Kind::Bool => match value {
                    Some("") => return Err(missing()),
                    None => "true".to_string(),
                    Some(v) => match v.to_lowercase().as_str() {
                        "true" => "true".into(),
                        "false" => "false".into(),
                        _ => {
                            return Err(FlagError::NotBool {
                                flag: flag(),
                                name: name_s(),
                                value: v.to_string(),
                            })
                        }
                    },
                },
                Kind::String | Kind::Strings => match value {
                    None => return Err(missing()),
                    Some(v) => v.to_string(),
                },
            };
            self.values.push((decl, value));
        }
        Ok(())
    }

    /// The value of a string flag, if given.
    pub fn string(&self, name: &str) -> Option<String> {
        self.values
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
    }

    /// All values of a repeatable flag, in order.
    pub fn strings(&self, name: &str) -> Vec<String> {
        self.values
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// A bool flag: `None` when not given (BuildKit distinguishes that for `--unpack`).
    pub fn bool(&self, name: &str) -> Option<bool> {
        self.string(name).map(|v| v == "true")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_declared_flags() {
        let r = raw(&["--from=build", "--link", "--exclude=a", "--exclude=b"]);
        let mut f = Flags::new(&r);
        f.declare_string("from")
            .declare_bool("link")
            .declare_strings("exclude");
        f.parse().unwrap();
        assert_eq!(f.string("from").as_deref(), Some("build"));
        assert_eq!(f.bool("link"), Some(true));
        assert_eq!(f.strings("exclude"), vec!["a", "b"]);
    }

    #[test]
    fn rejects_bad_flags_like_buildkit() {
        let cases: &[(&[&str], &str)] = &[
            (&["--form=x"], "unknown flag: --form (did you mean from?)"),
            (&["--xyzzy"], "unknown flag: --xyzzy"),
            (&["--from=a", "--from=b"], "duplicate flag specified: from"),
            (&["--from"], "missing a value on flag: from"),
            (&["--link="], "missing a value on flag: link"),
            (
                &["--link=maybe"],
                "expecting boolean value for flag link, not: maybe",
            ),
        ];
        for (flags, msg) in cases {
            let r = raw(flags);
            let mut f = Flags::new(&r);
            f.declare_string("from").declare_bool("link");
            assert_eq!(f.parse().unwrap_err().to_string(), *msg);
        }
        let r = raw(&["--form=x"]);
        let mut f = Flags::new(&r);
        f.declare_string("from");
        assert_eq!(
            f.parse().unwrap_err().hint(),
            None,
            "in the message already"
        );
        let r = raw(&["--xyzzy"]);
        let mut f = Flags::new(&r);
        f.declare_string("from");
        assert_eq!(
            f.parse().unwrap_err().hint().as_deref(),
            Some("this instruction takes --from")
        );
    }
}
