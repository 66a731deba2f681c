//! `RUN --mount=...` values: BuildKit's `parseMount` (CSV of key=value, types bind, cache,
//! tmpfs, secret, ssh; defaults and validation). Before dispatch it runs without an expander
//! (only `from` is checked); at dispatch, with the stage's variables. What a mount becomes in
//! the graph is lowering's (`lower::exec_mounts`).

use super::Expander;
use crate::diagnostic::suggest;
use crate::shell::ShellError;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MountType {
    Bind,
    Cache,
    Tmpfs,
    Secret,
    Ssh,
}

impl MountType {
    fn parse(s: &str) -> Option<MountType> {
        Some(match s {
            "bind" => MountType::Bind,
            "cache" => MountType::Cache,
            "tmpfs" => MountType::Tmpfs,
            "secret" => MountType::Secret,
            "ssh" => MountType::Ssh,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            MountType::Bind => "bind",
            MountType::Cache => "cache",
            MountType::Tmpfs => "tmpfs",
            MountType::Secret => "secret",
            MountType::Ssh => "ssh",
        }
    }
}

impl fmt::Display for MountType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One parsed `--mount`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Mount {
    pub kind: MountType,
    pub from: Option<String>,
    pub source: Option<String>,
    pub target: Option<String>,
    pub readonly: bool,
    /// `id=` (cache id, secret id, ssh id).
    pub id: Option<String>,
    pub sharing: Option<String>,
    pub required: bool,
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// `env=` of a secret mount: expose the secret as this variable.
    pub env: Option<String>,
    /// `size=` of a tmpfs mount, in bytes.
    pub size: Option<u64>,
}

const KEYS: &[&str] = &[
    "type",
    "from",
    "source",
    "target",
    "readonly",
    "id",
    "sharing",
    "required",
    "mode",
    "uid",
    "gid",
    "src",
    "dst",
    "destination",
    "ro",
    "rw",
    "readwrite",
    "env",
    "size",
];

/// A `--mount` value that cannot be used (BuildKit's texts).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MountError {
    /// The value is not one CSV record.
    #[error("failed to parse csv mounts: {0}")]
    Csv(#[source] CsvError),
    /// A field without `=` that is not `ro`, `rw` or `required`.
    #[error("invalid field '{0}' must be a key=value pair")]
    NotKeyValue(String),
    /// A value whose variables could not be expanded.
    #[error("{0}")]
    Expand(#[from] ShellError),
    /// `from=` with a variable (checked before dispatch, where stages are linked).
    #[error("'from' doesn't support variable expansion, define alias stage instead")]
    FromVariable,
    #[error("unsupported mount type \"{value}\"{}", did_you_mean(.suggestion))]
    UnsupportedType {
        value: String,
        suggestion: Option<&'static str>,
    },
    /// A key no mount type has (lower-cased), in the field as written.
    #[error("unexpected key '{key}' in '{field}'{}", did_you_mean(.suggestion))]
    UnexpectedKey {
        key: String,
        field: String,
        suggestion: Option<&'static str>,
    },
    /// `required` on a mount that is not a secret or an ssh agent.
    #[error("unexpected key 'required' for mount type '{0}'")]
    RequiredNotAllowed(MountType),
    /// A boolean key (`ro`, `rw`, `required`) with a value Go's `ParseBool` refuses.
    #[error("invalid value for {key}: {value}")]
    NotBool { key: String, value: String },
    /// `mode`, `uid`, `gid` or `size` that is not a number of its kind.
    #[error("invalid value {value} for {key}")]
    NotNumber { key: &'static str, value: String },
    #[error("unsupported sharing value \"{0}\"")]
    UnsupportedSharing(String),
    /// An option (`mode`, `uid`, `gid`, `size`, `env`) the mount's type does not take.
    #[error("{option} not allowed for \"{kind}\" type mounts")]
    NotAllowed {
        option: &'static str,
        kind: MountType,
    },
    #[error("invalid cache sharing set for {0} mount")]
    SharingNotCache(MountType),
    #[error("secret mount should not have a from")]
    SecretFrom,
    /// A secret mount with none of source, target, id and env.
    #[error("invalid secret mount. one of source, target required")]
    SecretUnnamed,
    #[error("both source and id can't be set")]
    SecretSourceAndId,
}

/// A `--mount` value that is not one CSV record (Go's `encoding/csv` texts).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CsvError {
    #[error("extraneous or missing \" in quoted-field")]
    QuotedField,
    #[error("bare \" in non-quoted-field")]
    BareQuote,
}

fn did_you_mean(suggestion: &Option<&str>) -> String {
    suggestion.map_or_else(String::new, |s| format!(" (did you mean {s}?)"))
}

/// Parses one `--mount` value. With `ex == None` only the syntax and `from` are checked.
pub fn parse_mount(value: &str, mut ex: Option<&mut Expander>) -> Result<Mount, MountError> {
    let fields = csv_record(value).map_err(MountError::Csv)?;
    let checking_only = ex.is_none();
    let mut parsed = MountFields {
        mount: Mount {
            kind: MountType::Bind,
            from: None,
            source: None,
            target: None,
            readonly: false,
            id: None,
            sharing: None,
            required: false,
            mode: None,
            uid: None,
            gid: None,
            env: None,
            size: None,
        },
        readonly_given: false,
    };
    for field in &fields {
        match field.split_once('=') {
            None => parsed.set_flag(&field.to_lowercase(), field)?,
            Some((key, val)) => {
                let key = key.to_lowercase();
                if let Some(val) = field_value(&key, val, ex.as_deref_mut())? {
                    parsed.set(&key, field, val)?;
                }
            }
        }
    }
    let MountFields {
        mut mount,
        readonly_given,
    } = parsed;
    if !checking_only {
        validate(&mut mount, readonly_given)?;
    }
    Ok(mount)
}

/// The value of a `key=value` field to use: expanded at dispatch. While checking (no
/// expander), only `from` (which may not use variables) and a constant `type` (which decides
/// whether `required` is allowed) are read; the rest waits for dispatch (`None`).
fn field_value(
    key: &str,
    val: &str,
    ex: Option<&mut Expander>,
) -> Result<Option<String>, MountError> {
    match ex {
        Some(ex) => Ok(Some(ex(val)?)),
        None if key == "from" => {
            if has_variable(val) {
                return Err(MountError::FromVariable);
            }
            Ok(Some(val.to_string()))
        }
        None if key == "type" && !has_variable(val) => Ok(Some(val.to_string())),
        None => Ok(None),
    }
}

/// A mount as its fields are read, and whether `readonly`/`rw` was given (if not, the
/// type's default applies).
struct MountFields {
    mount: Mount,
    readonly_given: bool,
}

impl MountFields {
    /// A field without a value: `ro`, `rw` or `required` (lower-cased), as written in `field`.
    fn set_flag(&mut self, key: &str, field: &str) -> Result<(), MountError> {
        match key {
            "readonly" | "ro" => self.set_readonly(true),
            "readwrite" | "rw" => self.set_readonly(false),
            "required" => {
                self.check_required_allowed()?;
                self.mount.required = true;
            }
            _ => return Err(MountError::NotKeyValue(field.to_string())),
        }
        Ok(())
    }

    /// A `key=value` field (key lower-cased, value expanded), as written in `field`.
    fn set(&mut self, key: &str, field: &str, val: String) -> Result<(), MountError> {
        let m = &mut self.mount;
        match key {
            "type" => m.kind = parse_type(&val)?,
            "from" => m.from = Some(val),
            "source" | "src" => m.source = Some(val),
            "target" | "dst" | "destination" => m.target = Some(val),
            "readonly" | "ro" => self.set_readonly(parse_bool(key, &val)?),
            "readwrite" | "rw" => self.set_readonly(!parse_bool(key, &val)?),
            "required" => {
                self.check_required_allowed()?;
                self.mount.required = parse_bool(key, &val)?;
            }
            "id" => m.id = Some(val),
            "sharing" => m.sharing = Some(parse_sharing(&val)?),
            "mode" => {
                m.mode = Some(u32::from_str_radix(&val, 8).map_err(|_| not_number("mode", &val))?)
            }
            "uid" => m.uid = Some(val.parse().map_err(|_| not_number("uid", &val))?),
            "gid" => m.gid = Some(val.parse().map_err(|_| not_number("gid", &val))?),
            "env" => m.env = Some(val),
            "size" => m.size = Some(parse_size(&val)?),
            _ => {
                return Err(MountError::UnexpectedKey {
                    key: key.to_string(),
                    field: field.to_string(),
                    suggestion: suggest(key, KEYS.iter().copied()),
                })
            }
        }
        Ok(())
    }

    fn set_readonly(&mut self, readonly: bool) {
        self.mount.readonly = readonly;
        self.readonly_given = true;
    }

    /// `required` is for secrets and ssh agents only (the type must come first).
    fn check_required_allowed(&self) -> Result<(), MountError> {
        match self.mount.kind {
            MountType::Secret | MountType::Ssh => Ok(()),
            kind => Err(MountError::RequiredNotAllowed(kind)),
        }
    }
}

fn parse_type(val: &str) -> Result<MountType, MountError> {
    MountType::parse(&val.to_lowercase()).ok_or_else(|| MountError::UnsupportedType {
        value: val.to_string(),
        suggestion: suggest(val, ["bind", "cache", "tmpfs", "secret", "ssh"]),
    })
}

fn parse_sharing(val: &str) -> Result<String, MountError> {
    let s = val.to_lowercase();
    if !matches!(s.as_str(), "shared" | "private" | "locked") {
        return Err(MountError::UnsupportedSharing(val.to_string()));
    }
    Ok(s)
}

fn parse_bool(key: &str, val: &str) -> Result<bool, MountError> {
    parse_go_bool(val).ok_or_else(|| MountError::NotBool {
        key: key.to_string(),
        value: val.to_string(),
    })
}

fn not_number(key: &'static str, val: &str) -> MountError {
    MountError::NotNumber {
        key,
        value: val.to_string(),
    }
}

/// BuildKit's checks once every field is read: which options each type takes, the
/// read-only default, and what a secret mount needs.
fn validate(m: &mut Mount, readonly_given: bool) -> Result<(), MountError> {
    let file_info_allowed = matches!(
        m.kind,
        MountType::Secret | MountType::Ssh | MountType::Cache
    );
    for (set, option) in [
        (m.mode.is_some(), "mode"),
        (m.uid.is_some(), "uid"),
        (m.gid.is_some(), "gid"),
    ] {
        if set && !file_info_allowed {
            return Err(MountError::NotAllowed {
                option,
                kind: m.kind,
            });
        }
    }
    if !readonly_given {
        m.readonly = !matches!(m.kind, MountType::Cache | MountType::Tmpfs);
    }
    if m.sharing.is_some() && m.kind != MountType::Cache {
        return Err(MountError::SharingNotCache(m.kind));
    }
    if m.size.is_some() && m.kind != MountType::Tmpfs {
        return Err(MountError::NotAllowed {
            option: "size",
            kind: m.kind,
        });
    }
    if m.env.is_some() && m.kind != MountType::Secret {
        return Err(MountError::NotAllowed {
            option: "env",
            kind: m.kind,
        });
    }
    if m.kind == MountType::Secret {
        if m.from.is_some() {
            return Err(MountError::SecretFrom);
        }
        if m.source.is_none() && m.target.is_none() && m.id.is_none() && m.env.is_none() {
            return Err(MountError::SecretUnnamed);
        }
        if m.source.is_some() && m.id.is_some() {
            return Err(MountError::SecretSourceAndId);
        }
    }
    Ok(())
}

fn has_variable(s: &str) -> bool {
    let b = s.as_bytes();
    b.windows(2).any(|w| w[0] == b'$')
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// `size=` of tmpfs: bytes, or with a k/m/g suffix (docker's RAMInBytes style).
fn parse_size(s: &str) -> Result<u64, MountError> {
    let bad = || not_number("size", s);
    let lower = s.to_lowercase();
    let t = lower.trim_end_matches('b');
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1u64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    let n: f64 = num.trim().parse().map_err(|_| bad())?;
    if n < 0.0 {
        return Err(bad());
    }
    Ok((n * mult as f64) as u64)
}

/// One CSV record as Go's `encoding/csv` reads it (quotes group commas, `""` is a quote).
fn csv_record(s: &str) -> Result<Vec<String>, CsvError> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars().peekable();
    let mut at_field_start = true;
    while let Some(c) = chars.next() {
        if at_field_start && c == '"' {
            at_field_start = false;
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        cur.push('"');
                    }
                    Some('"') => break,
                    Some(c) => cur.push(c),
                    None => return Err(CsvError::QuotedField),
                }
            }
            match chars.peek() {
                None | Some(',') => {}
                Some(_) => return Err(CsvError::QuotedField),
            }
            continue;
        }
        at_field_start = false;
        match c {
            ',' => {
                fields.push(std::mem::take(&mut cur));
                at_field_start = true;
            }
            '"' => return Err(CsvError::BareQuote),
            c => cur.push(c),
        }
    }
    fields.push(cur);
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_expanded(v: &str) -> Result<Mount, String> {
        let mut id = |w: &str| Ok(w.replace("$HOME", "/root"));
        parse_mount(v, Some(&mut id)).map_err(|e| e.to_string())
    }

    #[test]
    fn cache_mount_defaults() {
        let m = parse_expanded("type=cache,target=$HOME/.cache/pip").unwrap();
        assert_eq!(m.kind, MountType::Cache);
        assert_eq!(m.target.as_deref(), Some("/root/.cache/pip"));
        assert!(!m.readonly);
        let m = parse_expanded("type=cache,target=/x,sharing=LOCKED,id=pip,mode=0755,uid=1000")
            .unwrap();
        assert_eq!(m.sharing.as_deref(), Some("locked"));
        assert_eq!(m.mode, Some(0o755));
        assert_eq!(m.uid, Some(1000));
    }

    #[test]
    fn bind_is_readonly_unless_rw() {
        assert!(parse_expanded("target=/src").unwrap().readonly);
        assert!(!parse_expanded("type=bind,target=/src,rw").unwrap().readonly);
        assert!(
            !parse_expanded("type=bind,target=/src,readwrite=true")
                .unwrap()
                .readonly
        );
    }

    #[test]
    fn secret_rules() {
        let m = parse_expanded("type=secret,id=aws,env=AWS_KEY,required").unwrap();
        assert!(m.required && m.readonly);
        assert_eq!(m.env.as_deref(), Some("AWS_KEY"));
        assert_eq!(
            parse_expanded("type=secret").unwrap_err(),
            "invalid secret mount. one of source, target required"
        );
        assert_eq!(
            parse_expanded("type=secret,id=a,from=b").unwrap_err(),
            "secret mount should not have a from"
        );
    }

    #[test]
    fn errors_name_the_problem() {
        assert!(parse_expanded("type=cahce,target=/x")
            .unwrap_err()
            .contains("did you mean cache"));
        assert_eq!(
            parse_expanded("type=bind,target=/x,sharing=locked").unwrap_err(),
            "invalid cache sharing set for bind mount"
        );
        assert_eq!(
            parse_expanded("type=bind,mode=0700").unwrap_err(),
            "mode not allowed for \"bind\" type mounts"
        );
        assert!(parse_expanded("type=cache,target=/x,bogus=1")
            .unwrap_err()
            .contains("unexpected key"));
        assert_eq!(
            parse_mount("type=bind,from=$X,target=/x", None).unwrap_err(),
            MountError::FromVariable
        );
    }

    #[test]
    fn checking_without_expander_accepts_what_dispatch_accepts() {
        for spec in [
            "type=secret,id=aws,required",
            "type=secret,id=$ID",
            "type=$T,target=/x",
            "type=ssh,required=true",
        ] {
            assert!(parse_mount(spec, None).is_ok(), "{spec}");
        }
        assert!(parse_mount("type=cache,required", None).is_err());
    }

    #[test]
    fn csv_quotes() {
        assert_eq!(csv_record("a,\"b,c\",d").unwrap(), vec!["a", "b,c", "d"]);
        assert_eq!(csv_record("\"x\"\"y\"").unwrap(), vec!["x\"y"]);
        assert!(csv_record("a\"b").is_err());
    }
}
