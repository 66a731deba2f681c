//! `--secret` sources: where a secret's value comes from (a file or an environment variable)
//! and reading it when a step mounts it. Only ids reach the graph and the cache keys.

use std::path::PathBuf;

/// A `--secret` that cannot be parsed or read.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// An invalid `--secret` value (the message names it and the accepted forms).
    #[error("{0}")]
    Spec(String),
    #[error("secret {id}: reading {}: {source}", path.display())]
    Read {
        id: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("secret {id}: environment variable {var} is not set")]
    EnvUnset { id: String, var: String },
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
        Self::parse_spec(spec).map_err(SecretError::Spec)
    }

    fn parse_spec(spec: &str) -> Result<(String, SecretSource), String> {
        let (mut id, mut src, mut env, mut kind) = (None, None, None, None);
        for field in spec.split(',') {
            let (k, v) = field.split_once('=').ok_or_else(|| {
                format!("invalid --secret \"{spec}\": \"{field}\" is not key=value")
            })?;
            match k {
                "id" => id = Some(v.to_string()),
                "src" | "source" => src = Some(v.to_string()),
                "env" => env = Some(v.to_string()),
                "type" => kind = Some(v.to_string()),
                other => {
                    return Err(format!(
                        "invalid --secret \"{spec}\": unknown key \"{other}\" (id, src, env, type)"
                    ))
                }
            }
        }
        let id = id.ok_or_else(|| format!("invalid --secret \"{spec}\": id= is required"))?;
        let source = match (kind.as_deref(), src, env) {
            (Some("env"), Some(v), None) | (_, None, Some(v)) => SecretSource::Env(v),
            (Some("file") | None, Some(p), None) => SecretSource::File(PathBuf::from(p)),
            (Some("env"), None, None) => SecretSource::Env(id.clone()),
            (_, Some(_), Some(_)) => {
                return Err(format!(
                    "invalid --secret \"{spec}\": give src= or env=, not both"
                ))
            }
            (Some(t), _, _) if t != "file" && t != "env" => {
                return Err(format!(
                    "invalid --secret \"{spec}\": type must be file or env"
                ))
            }
            _ => {
                return Err(format!(
                    "invalid --secret \"{spec}\": give src=PATH or env=VAR"
                ))
            }
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
