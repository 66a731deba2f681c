//! Build checks (BuildKit's `linter` rules): warnings about Dockerfiles that build but are
//! likely wrong, configured by the `# check=skip=RULE,...;error=true` directive. Rule names and
//! messages are BuildKit's, so its documentation applies.
//!
//! It records and filters; what triggers a rule is decided where the facts are
//! (`lower::checks` for the parsed file, dispatch for the rest).

use super::ast::Span;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Warning {
    /// BuildKit's rule name (`JSONArgsRecommended`), or None for a plain warning.
    pub rule: Option<&'static str>,
    pub message: String,
    /// Where, when it is about a line of the Dockerfile.
    pub span: Option<Span>,
}

/// A `# check=` value that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckDirectiveError {
    /// A `;`-separated part without `=`.
    #[error("invalid check option \"{0}\": expected key=value")]
    NotKeyValue(String),
    /// `error=` with something other than true/false/1/0 (lower-cased).
    #[error("invalid check error value \"{0}\": expected true or false")]
    ErrorValue(String),
    /// A key other than skip, error, experimental (lower-cased).
    #[error("invalid check option \"{0}\": expected skip, error or experimental")]
    UnknownOption(String),
}

/// Collects warnings, honouring the `# check=` directive.
#[derive(Debug, Default)]
pub struct Linter {
    skip_all: bool,
    skip: Vec<String>,
    /// `error=true`: warnings fail the build once lowering is done.
    pub error: bool,
    pub warnings: Vec<Warning>,
    /// `# check=skip=...` comments right above an instruction: its lines, and what they skip
    /// for it alone (all rules, or these).
    local: Vec<(Span, bool, Vec<String>)>,
}

impl Linter {
    /// Reads a `# check=` value (`skip=A,B;error=true`, `skip=all`).
    pub fn from_directive(check: Option<&str>) -> Result<Linter, CheckDirectiveError> {
        let mut l = Linter::default();
        let Some(check) = check else { return Ok(l) };
        for part in check.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| CheckDirectiveError::NotKeyValue(part.to_string()))?;
            match k.trim().to_lowercase().as_str() {
                "skip" => {
                    for rule in v.split(',').map(str::trim).filter(|r| !r.is_empty()) {
                        if rule.eq_ignore_ascii_case("all") {
                            l.skip_all = true;
                        } else {
                            l.skip.push(rule.to_string());
                        }
                    }
                }
                "error" => {
                    l.error = match v.trim().to_lowercase().as_str() {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        other => return Err(CheckDirectiveError::ErrorValue(other.to_string())),
                    }
                }
                "experimental" => {}
                other => return Err(CheckDirectiveError::UnknownOption(other.to_string())),
            }
        }
        Ok(l)
    }

    /// BuildKit's per-instruction checks: the first `check=` comment among those right above
    /// an instruction (its value up to a blank, so `skip=all // why` works) skips rules for
    /// that instruction's lines only. A value that cannot be read is ignored, as there.
    pub fn skip_locally(&mut self, span: Span, comments: &[String]) {
        for c in comments {
            let text = c.trim_start_matches('#').trim();
            let Some((key, value)) = text.split_once('=') else {
                continue;
            };
            if !key.trim().eq_ignore_ascii_case("check") {
                continue;
            }
            let value = value.split_whitespace().next().unwrap_or("");
            if let Ok(l) = Linter::from_directive(Some(value)) {
                self.local.push((span, l.skip_all, l.skip));
            }
            return;
        }
    }

    /// Records a rule violation unless the rule is skipped (for the file, or for the
    /// instruction at `span` by a comment above it).
    pub fn run(&mut self, rule: &'static str, message: String, span: Option<Span>) {
        if self.skip_all || self.skip.iter().any(|s| s == rule) {
            return;
        }
        if let Some(at) = span {
            let skipped = self.local.iter().any(|(s, all, rules)| {
                (s.start_line..=s.end_line.max(s.start_line)).contains(&at.start_line)
                    && (*all || rules.iter().any(|r| r == rule))
            });
            if skipped {
                return;
            }
        }
        if !self
            .warnings
            .iter()
            .any(|w| w.rule == Some(rule) && w.message == message && w.span == span)
        {
            self.warnings.push(Warning {
                rule: Some(rule),
                message,
                span,
            });
        }
    }

    /// A warning that is not a lint rule (always shown).
    pub fn note(&mut self, message: String, span: Option<Span>) {
        self.warnings.push(Warning {
            rule: None,
            message,
            span,
        });
    }

    pub fn rule_count(&self) -> usize {
        self.warnings.iter().filter(|w| w.rule.is_some()).count()
    }
}

/// BuildKit's SecretsUsedInArgOrEnv heuristic: a name with a secret-like word in it.
pub fn looks_like_secret(key: &str) -> bool {
    let words: Vec<String> = key
        .split(['_', '-', '.'])
        .map(|w| w.to_lowercase())
        .collect();
    let secret = [
        "apikey",
        "auth",
        "credential",
        "credentials",
        "key",
        "password",
        "pword",
        "passwd",
        "secret",
        "token",
    ];
    words.iter().any(|w| secret.contains(&w.as_str())) && !words.iter().any(|w| w == "public")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_directive() {
        let mut l =
            Linter::from_directive(Some("skip=JSONArgsRecommended,StageNameCasing;error=true"))
                .unwrap();
        assert!(l.error);
        l.run("JSONArgsRecommended", "x".into(), None);
        l.run("MaintainerDeprecated", "y".into(), None);
        assert_eq!(l.warnings.len(), 1);
        let mut all = Linter::from_directive(Some("skip=all")).unwrap();
        all.run("MaintainerDeprecated", "y".into(), None);
        assert!(all.warnings.is_empty());
        assert!(Linter::from_directive(Some("bogus")).is_err());
        assert!(Linter::from_directive(Some("error=maybe")).is_err());
    }

    #[test]
    fn secret_names() {
        for k in [
            "AWS_SECRET_ACCESS_KEY",
            "GITHUB_TOKEN",
            "password",
            "API-KEY",
            "auth",
        ] {
            assert!(looks_like_secret(k), "{k}");
        }
        for k in [
            "PYTHON_VERSION",
            "PUBLIC_KEY",
            "TOKENIZERS_PARALLELISM",
            "KEYBOARD",
        ] {
            assert!(!looks_like_secret(k), "{k}");
        }
    }
}
