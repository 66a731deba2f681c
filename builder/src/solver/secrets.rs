//! `--secret` sources: where a secret's value comes from (a file or an environment variable)
//! and reading it when a step mounts it. Only ids reach the graph and the cache keys.

use std::path::PathBuf;

/// A `--secret` that cannot be parsed or read.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// An invalid `--secret` value, and what is wrong with it.
    #[error("invalid --secret \"{spec}\": {problem}")]
    Spec {
        spec: String,
        problem: SecretSpecProblem,
    },
    #[error("secret {id}: reading {}: {source}", path.display())]
    Read {
        id: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("secret {id}: environment variable {var} is not set")]
    EnvUnset { id: String, var: String },
}

/// What is wrong with a `--secret` value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretSpecProblem {
    #[error("\"{0}\" is not key=value")]
    NotKeyValue(String),
    #[error("unknown key \"{0}\" (id, src, env, type)")]
    UnknownKey(String),
    #[error("id= is required")]
    NoId,
    #[error("give src= or env=, not both")]
    SrcAndEnv,
    #[error("type must be file or env")]
    BadType,
    #[error("give src=PATH or env=VAR")]
    NoSource,
}

/// Where a `--secret` comes from. Only the id reaches the graph; the value is read when a
/// step mounts it and lives in memory and on a tmpfs only for that step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    File(PathBuf),
    Env(String),
}

impl SecretSource {
    /// Parses `id=ID,src=PATH` / `id=ID,env=VAR` (also `source=`, `type=file|env`).
    pub fn parse(spec: &str) -> Result<(String, SecretSource), SecretError> {
        Self::parse_spec(spec).map_err(|problem| SecretError::Spec {
            spec: spec.to_string(),
            problem,
        })
    }

    fn parse_spec(spec: &str) -> Result<(String, SecretSource), SecretSpecProblem> {
        let (mut id, mut src, mut env, mut kind) = (None, None, None, None);
        for field in spec.split(',') {
            let (k, v) = field
                .split_once('=')
                .ok_or_else(|| SecretSpecProblem::NotKeyValue(field.to_string()))?;
            match k {
                "id" => id = Some(v.to_string()),
                "src" | "source" => src = Some(v.to_string()),
                "env" => env = Some(v.to_string()),
                "type" => kind = Some(v.to_string()),
                other => return Err(SecretSpecProblem::UnknownKey(other.to_string())),
            }
        }
        let id = id.ok_or(SecretSpecProblem::NoId)?;
        let source = match (kind.as_deref(), src, env) {
            (Some("env"), Some(v), None) | (_, None, Some(v)) => SecretSource::Env(v),
            (Some("file") | None, Some(p), None) => SecretSource::File(PathBuf::from(p)),
            (Some("env"), None, None) => SecretSource::Env(id.clone()),
            (_, Some(_), Some(_)) => return Err(SecretSpecProblem::SrcAndEnv),
            (Some(t), _, _) if t != "file" && t != "env" => return Err(SecretSpecProblem::BadType),
            _ => return Err(SecretSpecProblem::NoSource),
        };
        Ok((id, source))
    }

    /// The secret's bytes, read now.
    pub(crate) fn read(&self, id: &str) -> Result<Vec<u8>, SecretError> {
        match self {
            SecretSource::File(p) => std::fs::read(p).map_err(|source| SecretError::Read {
                id: id.to_string(),
                path: p.clone(),
                source,
            }),
            SecretSource::Env(v) => {
                std::env::var(v)
                    .map(String::into_bytes)
                    .map_err(|_| SecretError::EnvUnset {
                        id: id.to_string(),
                        var: v.clone(),
                    })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_specs() {
        assert_eq!(
            SecretSource::parse("id=aws,src=/x").unwrap(),
            ("aws".into(), SecretSource::File("/x".into()))
        );
        assert_eq!(
            SecretSource::parse("id=tok,env=GH_TOKEN").unwrap(),
            ("tok".into(), SecretSource::Env("GH_TOKEN".into()))
        );
        assert_eq!(
            SecretSource::parse("type=env,id=TOK").unwrap(),
            ("TOK".into(), SecretSource::Env("TOK".into()))
        );
        assert!(SecretSource::parse("src=/x").is_err());
        assert!(SecretSource::parse("id=a").is_err());
        assert!(SecretSource::parse("id=a,src=/x,env=Y").is_err());
        assert!(SecretSource::parse("id=a,bogus=1").is_err());
    }
}
