//! Instruction flags (`--from=build`, `--link`, `--mount=...`) with BuildKit's `BFlags` rules:
//! each instruction declares the flags it takes; unknown, duplicated or malformed flags are errors.

use crate::diagnostic::suggest;

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

/// A flag error with the raw flag text it concerns (to place the caret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagError {
    pub message: String,
    pub flag: String,
    pub hint: Option<String>,
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
            let fail = |message: String| FlagError {
                message,
                flag: raw.clone(),
                hint: None,
            };
            let Some(body) = raw.strip_prefix("--") else {
                return Err(fail(format!("arg should start with -- : {raw}")));
            };
            if body.is_empty() {
                return Ok(());
            }
            let (name, value) = match body.find('=') {
                Some(i) => (&body[..i], Some(&body[i + 1..])),
                None => (body, None),
            };
            let Some(&(decl, kind)) = self.declared.iter().find(|(n, _)| *n == name) else {
                let mut e = fail(format!("unknown flag: {name}"));
                if let Some(s) = suggest(name, self.declared.iter().map(|(n, _)| *n)) {
                    e.hint = Some(format!("did you mean --{s}?"));
                } else if self.declared.is_empty() {
                    e.hint = Some("this instruction takes no flags".into());
                } else {
                    let names: Vec<String> = self
                        .declared
                        .iter()
                        .map(|(n, _)| format!("--{n}"))
                        .collect();
                    e.hint = Some(format!("this instruction takes {}", names.join(", ")));
                }
                return Err(e);
            };
            if kind != Kind::Strings && self.values.iter().any(|(n, _)| *n == decl) {
                return Err(fail(format!("duplicate flag specified: {name}")));
            }
            let value = match kind {
                Kind::Bool => match value {
                    Some("") => return Err(fail(format!("missing a value on flag: {name}"))),
                    None => "true".to_string(),
                    Some(v) => match v.to_lowercase().as_str() {
                        "true" => "true".into(),
                        "false" => "false".into(),
                        _ => {
                            return Err(fail(format!(
                                "expecting boolean value for flag {name}, not: {v}"
                            )))
                        }
                    },
                },
                Kind::String | Kind::Strings => match value {
                    None => return Err(fail(format!("missing a value on flag: {name}"))),
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
            (&["--form=x"], "unknown flag: form"),
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
            assert_eq!(f.parse().unwrap_err().message, *msg);
        }
        let r = raw(&["--form=x"]);
        let mut f = Flags::new(&r);
        f.declare_string("from");
        assert_eq!(
            f.parse().unwrap_err().hint.as_deref(),
            Some("did you mean --from?")
        );
    }
}
