//! `--allow ENTITLEMENT`: what a build may do beyond the sandbox, as buildx's flag grants it.
//! `security.insecure` lets `RUN --security=insecure` run unconfined (every capability, no
//! seccomp filter: see `exec/runc/insecure.rs`); without it such a step is refused before
//! anything runs, at its line. `network.host` is accepted and changes nothing: pallet's RUN
//! steps share the host's network unless they say `--network=none`.

use frontend::ast::Span;
use frontend::diagnostic::FrontendError;
use graph::{Graph, Op};

/// What `--allow` granted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Entitlements {
    pub security_insecure: bool,
}

/// An `--allow` value pallet does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid --allow \"{0}\": pallet knows security.insecure and network.host")]
pub struct UnknownEntitlement(pub String);

impl Entitlements {
    /// `--allow` values (each may hold a comma-separated list, as buildx takes them).
    pub fn parse(values: &[String]) -> Result<Entitlements, UnknownEntitlement> {
        let mut granted = Entitlements::default();
        for value in values.iter().flat_map(|v| v.split(',')) {
            match value.trim() {
                "security.insecure" => granted.security_insecure = true,
                "network.host" => {}
                other => return Err(UnknownEntitlement(other.to_string())),
            }
        }
        Ok(granted)
    }

    /// Refuses the first step of `graph` that needs an entitlement not granted.
    pub fn check(&self, graph: &Graph) -> Result<(), FrontendError> {
        if self.security_insecure {
            return Ok(());
        }
        let insecure = graph
            .vertices
            .iter()
            .find(|v| matches!(&v.op, Op::Exec(e) if e.insecure));
        let Some(step) = insecure else {
            return Ok(());
        };
        let message = format!(
            "{}: entitlement security.insecure is not allowed",
            step.meta.name.trim()
        );
        let e = match step.meta.lines {
            Some((start_line, end_line)) => FrontendError::new(
                message,
                Span {
                    start_line,
                    end_line,
                },
            ),
            None => FrontendError::global(message),
        };
        Err(e.with_hint(
            "pass --allow security.insecure to run it with every capability and no seccomp \
             filter (only for builds you trust), or drop --security=insecure",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_buildx_values() {
        let all = Entitlements::parse(&["network.host,security.insecure".into()]).unwrap();
        assert!(all.security_insecure);
        assert!(
            !Entitlements::parse(&["network.host".into()])
                .unwrap()
                .security_insecure
        );
        assert_eq!(
            Entitlements::parse(&["device".into()]).unwrap_err(),
            UnknownEntitlement("device".into())
        );
    }
}
