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

impl Warning {
    /// BuildKit's description of the rule (the same for every warning of it).
    pub fn description(&self) -> Option<&'static str> {
        rule_info(self.rule?).map(|r| r.description)
    }

    /// The rule's documentation page, as BuildKit gives it.
    pub fn url(&self) -> Option<&'static str> {
        rule_info(self.rule?).and_then(|r| r.url)
    }
}

/// What BuildKit's rule set says of a rule besides its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleInfo {
    pub name: &'static str,
    pub description: &'static str,
    pub url: Option<&'static str>,
    /// Off unless `# check=experimental=NAME` (or `experimental=all`) turns it on; skip
    /// lists do not apply to it (BuildKit's `Linter.Run`).
    pub experimental: bool,
}

/// A rule of the table: its documentation page is docs.docker.com/go/dockerfile/rule/PAGE/.
macro_rules! rule {
    ($name:literal, $description:literal, $page:literal $(,)?) => {
        RuleInfo {
            name: $name,
            description: $description,
            url: Some(concat!(
                "https://docs.docker.com/go/dockerfile/rule/",
                $page,
                "/"
            )),
            experimental: false,
        }
    };
}

/// BuildKit's rule set (frontend/dockerfile/linter/ruleset.go): the rules pallet runs.
pub const RULES: &[RuleInfo] = &[
    rule!("StageNameCasing", "Stage names should be lowercase", "stage-name-casing"),
    rule!("FromAsCasing", "The 'as' keyword should match the case of the 'from' keyword", "from-as-casing"),
    rule!("NoEmptyContinuation", "Empty continuation lines will become errors in a future release", "no-empty-continuation"),
    rule!("ConsistentInstructionCasing", "All commands within the Dockerfile should use the same casing (either upper or lower)", "consistent-instruction-casing"),
    rule!("DuplicateStageName", "Stage names should be unique", "duplicate-stage-name"),
    rule!("ReservedStageName", "Reserved words should not be used as stage names", "reserved-stage-name"),
    rule!("JSONArgsRecommended", "JSON arguments recommended for ENTRYPOINT/CMD to prevent unintended behavior related to OS signals", "json-args-recommended"),
    rule!("MaintainerDeprecated", "The MAINTAINER instruction is deprecated, use a label instead to define an image author", "maintainer-deprecated"),
    rule!("UndefinedArgInFrom", "FROM command must use declared ARGs", "undefined-arg-in-from"),
    rule!("WorkdirRelativePath", "Relative workdir without an absolute workdir declared within the build can have unexpected results if the base image changes", "workdir-relative-path"),
    rule!("UndefinedVar", "Variables should be defined before their use", "undefined-var"),
    rule!("MultipleInstructionsDisallowed", "Multiple instructions of the same type should not be used in the same stage", "multiple-instructions-disallowed"),
    rule!("LegacyKeyValueFormat", "Legacy key/value format with whitespace separator should not be used", "legacy-key-value-format"),
    RuleInfo {
        name: "InvalidBaseImagePlatform",
        description: "Base image platform does not match expected target platform",
        url: None,
        experimental: false,
    },
    rule!("RedundantTargetPlatform", "Setting platform to predefined $TARGETPLATFORM in FROM is redundant as this is the default behavior", "redundant-target-platform"),
    rule!("SecretsUsedInArgOrEnv", "Sensitive data should not be used in the ARG or ENV commands", "secrets-used-in-arg-or-env"),
    rule!("InvalidDefaultArgInFrom", "Default value for global ARG results in an empty or invalid base image name", "invalid-default-arg-in-from"),
    rule!("FromPlatformFlagConstDisallowed", "FROM --platform flag should not use a constant value", "from-platform-flag-const-disallowed"),
    rule!("CopyIgnoredFile", "Attempting to Copy file that is excluded by .dockerignore", "copy-ignored-file"),
    RuleInfo {
        experimental: true,
        ..rule!(
            "InvalidDefinitionDescription",
            "Comment for build stage or argument should follow the format: `# <arg/stage name> <description>`. If this is not intended to be a description comment, add an empty line or comment between the instruction and the comment.",
            "invalid-definition-description",
        )
    },
    rule!("ExposeProtoCasing", "Protocol in EXPOSE instruction should be lowercase", "expose-proto-casing"),
    rule!("ExposeInvalidFormat", "IP address and host-port mapping should not be used in EXPOSE instruction. This will become an error in a future release", "expose-invalid-format"),
];

/// The rule named `name`, if pallet runs it.
pub fn rule_info(name: &str) -> Option<RuleInfo> {
    RULES.iter().find(|r| r.name == name).copied()
}

/// Collects warnings, honouring the `# check=` directive.
#[derive(Debug, Default)]
pub struct Linter {
    rules: RuleSet,
    /// `error=true`: warnings fail the build once lowering is done.
    pub error: bool,
    pub warnings: Vec<Warning>,
    /// `# check=...` comments right above an instruction: its lines, and the rules they skip
    /// or turn on for it alone (merged with the file's, as BuildKit's `WithMergedConfig`).
    local: Vec<(Span, RuleSet)>,
}

/// Which rules a `check=` value skips and which experimental ones it turns on.
#[derive(Debug, Default, Clone)]
struct RuleSet {
    skip_all: bool,
    skip: Vec<String>,
    experimental_all: bool,
    experimental: Vec<String>,
}

impl RuleSet {
    /// Whether `rule` reports under these options, merged with `also` (an instruction's own).
    fn reports(&self, rule: &str, also: Option<&RuleSet>) -> bool {
        let sets = || std::iter::once(self).chain(also);
        if rule_info(rule).is_some_and(|r| r.experimental) {
            return sets().any(|s| s.experimental_all || s.experimental.iter().any(|r| r == rule));
        }
        !sets().any(|s| s.skip_all || s.skip.iter().any(|r| r == rule))
    }
}

/// A comma-separated rule list, or `all`.
fn rule_list(v: &str) -> (bool, Vec<String>) {
    if v.trim() == "all" {
        return (true, Vec::new());
    }
    let rules = v.split(',').map(str::trim).filter(|r| !r.is_empty());
    (false, rules.map(str::to_string).collect())
}

impl Linter {
    /// Reads a `# check=` value (`skip=A,B;error=true`, `skip=all`, `experimental=A|all`).
    pub fn from_directive(check: Option<&str>) -> Result<Linter, CheckDirectiveError> {
        let mut l = Linter::default();
        let Some(check) = check else { return Ok(l) };
        for part in check.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| CheckDirectiveError::NotKeyValue(part.to_string()))?;
            match k.trim().to_lowercase().as_str() {
                "skip" => {
                    let (all, rules) = rule_list(v);
                    l.rules.skip_all |= all;
                    l.rules.skip.extend(rules);
                }
                "error" => {
                    l.error = match v.trim().to_lowercase().as_str() {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        other => return Err(CheckDirectiveError::ErrorValue(other.to_string())),
                    }
                }
                "experimental" => {
                    let (all, rules) = rule_list(v);
                    l.rules.experimental_all |= all;
                    l.rules.experimental.extend(rules);
                }
                other => return Err(CheckDirectiveError::UnknownOption(other.to_string())),
            }
        }
        Ok(l)
    }

    /// BuildKit's per-instruction checks: the first `check=` comment among those right above
    /// an instruction (its value up to a blank, so `skip=all // why` works) skips rules (or
    /// turns experimental ones on) for that instruction's lines only. A value that cannot be
    /// read is ignored, as there.
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
                self.local.push((span, l.rules));
            }
            return;
        }
    }

    /// Records a rule violation unless the rule is skipped (for the file, or for the
    /// instruction at `span` by a comment above it), or is experimental and not turned on.
    pub fn run(&mut self, rule: &'static str, message: String, span: Option<Span>) {
        debug_assert!(rule_info(rule).is_some(), "{rule} is not in lint::RULES");
        let local = span.and_then(|at| {
            self.local.iter().find_map(|(s, set)| {
                (s.start_line..=s.end_line.max(s.start_line))
                    .contains(&at.start_line)
                    .then_some(set)
            })
        });
        if !self.rules.reports(rule, local) {
            return;
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
    fn experimental_rules_need_turning_on_and_ignore_skips() {
        let rule = "InvalidDefinitionDescription";
        let mut off = Linter::from_directive(None).unwrap();
        off.run(rule, "x".into(), None);
        assert!(off.warnings.is_empty());
        let mut on =
            Linter::from_directive(Some("skip=all;experimental=InvalidDefinitionDescription"))
                .unwrap();
        on.run(rule, "x".into(), None);
        on.run("MaintainerDeprecated", "y".into(), None);
        assert_eq!(on.warnings.len(), 1, "skip=all skips the others only");
        // Turned on for one instruction by a comment above it.
        let mut local = Linter::from_directive(None).unwrap();
        let at = Span {
            start_line: 3,
            end_line: 3,
        };
        local.skip_locally(at, &["check=experimental=all".to_string()]);
        local.run(rule, "x".into(), Some(at));
        local.run(
            rule,
            "x".into(),
            Some(Span {
                start_line: 5,
                end_line: 5,
            }),
        );
        assert_eq!(local.warnings.len(), 1);
        assert_eq!(local.warnings[0].span, Some(at));
    }

    #[test]
    fn rule_table() {
        for (i, r) in RULES.iter().enumerate() {
            assert!(
                RULES[..i].iter().all(|o| o.name != r.name),
                "{} twice",
                r.name
            );
            if let Some(url) = r.url {
                // docs.docker.com's page is the rule's name in kebab case.
                let mut kebab = String::new();
                for (j, c) in r.name.char_indices() {
                    let prev_lower = j > 0 && !r.name[..j].ends_with(|p: char| p.is_uppercase());
                    let next_lower =
                        r.name[j + c.len_utf8()..].starts_with(|n: char| n.is_lowercase());
                    if c.is_uppercase() && j > 0 && (prev_lower || next_lower) {
                        kebab.push('-');
                    }
                    kebab.push(c.to_ascii_lowercase());
                }
                assert_eq!(
                    url,
                    format!("https://docs.docker.com/go/dockerfile/rule/{kebab}/"),
                    "{}",
                    r.name
                );
            }
        }
        assert!(
            rule_info("InvalidDefinitionDescription")
                .unwrap()
                .experimental
        );
        assert!(!rule_info("CopyIgnoredFile").unwrap().experimental);
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
