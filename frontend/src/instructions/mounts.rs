//! `RUN --mount=...` values: BuildKit's `parseMount` (CSV of key=value, types bind, cache,
//! tmpfs, secret, ssh; defaults and validation). Before dispatch it runs without an expander
//! (only `from` is checked); at dispatch, with the stage's variables.

use super::Expander;
use crate::diagnostic::suggest;

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

/// Parses one `--mount` value. With `ex == None` only the syntax and `from` are checked.
pub fn parse_mount(value: &str, mut ex: Option<&mut Expander>) -> Result<Mount, String> {
    let fields = csv_record(value).map_err(|e| format!("failed to parse csv mounts: {e}"))?;
    let checking_only = ex.is_none();
    let mut m = Mount {
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
    };
    let mut ro_auto = true;
    for field in &fields {
        let (key, val) = match field.split_once('=') {
            Some((k, v)) => (k.to_lowercase(), Some(v)),
            None => (field.to_lowercase(), None),
        };
        let Some(val) = val else {
            match key.as_str() {
                "readonly" | "ro" => {
                    m.readonly = true;
                    ro_auto = false;
                    continue;
                }
                "readwrite" | "rw" => {
                    m.readonly = false;
                    ro_auto = false;
                    continue;
                }
                "required" if matches!(m.kind, MountType::Secret | MountType::Ssh) => {
                    m.required = true;
                    continue;
                }
                "required" => {
                    return Err(format!(
                        "unexpected key 'required' for mount type '{}'",
                        m.kind.as_str()
                    ))
                }
                _ => return Err(format!("invalid field '{field}' must be a key=value pair")),
            }
        };
        let val = match ex.as_deref_mut() {
            Some(ex) => ex(val)?,
            None if key == "from" => {
                if has_variable(val) {
                    return Err(
                        "'from' doesn't support variable expansion, define alias stage instead"
                            .into(),
                    );
                }
                val.to_string()
            }
            // Without an expander only the type (for `required`) is read; the rest is checked
            // at dispatch, after expansion.
            None if key == "type" && !has_variable(val) => val.to_string(),
            None => continue,
        };
        let bool_value = |v: &str| parse_go_bool(v).ok_or(format!("invalid value for {key}: {v}"));
        match key.as_str() {
            "type" => {
                m.kind = MountType::parse(&val.to_lowercase()).ok_or_else(|| {
                    let mut msg = format!("unsupported mount type \"{val}\"");
                    let types = ["bind", "cache", "tmpfs", "secret", "ssh"];
                    if let Some(s) = suggest(&val, types) {
                        msg.push_str(&format!(" (did you mean {s}?)"));
                    }
                    msg
                })?;
            }
            "from" => m.from = Some(val),
            "source" | "src" => m.source = Some(val),
            "target" | "dst" | "destination" => m.target = Some(val),
            "readonly" | "ro" => {
                m.readonly = bool_value(&val)?;
                ro_auto = false;
            }
            "readwrite" | "rw" => {
                m.readonly = !bool_value(&val)?;
                ro_auto = false;
            }
            "required" if matches!(m.kind, MountType::Secret | MountType::Ssh) => {
                m.required = bool_value(&val)?;
            }
            "required" => {
                return Err(format!(
                    "unexpected key 'required' for mount type '{}'",
                    m.kind.as_str()
                ))
            }
            "id" => m.id = Some(val),
            "sharing" => {
                let s = val.to_lowercase();
                if !matches!(s.as_str(), "shared" | "private" | "locked") {
                    return Err(format!("unsupported sharing value \"{val}\""));
                }
                m.sharing = Some(s);
            }
            "mode" => {
                m.mode = Some(
                    u32::from_str_radix(&val, 8)
                        .map_err(|_| format!("invalid value {val} for mode"))?,
                )
            }
            "uid" => {
                m.uid = Some(
                    val.parse()
                        .map_err(|_| format!("invalid value {val} for uid"))?,
                )
            }
            "gid" => {
                m.gid = Some(
                    val.parse()
                        .map_err(|_| format!("invalid value {val} for gid"))?,
                )
            }
            "env" => m.env = Some(val),
            "size" => m.size = Some(parse_size(&val)?),
            _ => {
                let mut msg = format!("unexpected key '{key}' in '{field}'");
                if let Some(s) = suggest(&key, KEYS.iter().copied()) {
                    msg.push_str(&format!(" (did you mean {s}?)"));
                }
                return Err(msg);
            }
        }
    }
    if !checking_only {
        validate(&mut m, ro_auto)?;
    }
    Ok(m)
}

fn validate(m: &mut Mount, ro_auto: bool) -> Result<(), String> {
    let file_info_allowed = matches!(
        m.kind,
        MountType::Secret | MountType::Ssh | MountType::Cache
    );
    for (set, name) in [
        (m.mode.is_some(), "mode"),
        (m.uid.is_some(), "uid"),
        (m.gid.is_some(), "gid"),
    ] {
        if set && !file_info_allowed {
            return Err(format!(
                "{name} not allowed for \"{}\" type mounts",
                m.kind.as_str()
            ));
        }
    }
    if ro_auto {
        m.readonly = !matches!(m.kind, MountType::Cache | MountType::Tmpfs);
    }
    if m.sharing.is_some() && m.kind != MountType::Cache {
        return Err(format!(
            "invalid cache sharing set for {} mount",
            m.kind.as_str()
        ));
    }
    if m.size.is_some() && m.kind != MountType::Tmpfs {
        return Err(format!(
            "size not allowed for \"{}\" type mounts",
            m.kind.as_str()
        ));
    }
    if m.env.is_some() && m.kind != MountType::Secret {
        return Err(format!(
            "env not allowed for \"{}\" type mounts",
            m.kind.as_str()
        ));
    }
    if m.kind == MountType::Secret {
        if m.from.is_some() {
            return Err("secret mount should not have a from".into());
        }
        if m.source.is_none() && m.target.is_none() && m.id.is_none() && m.env.is_none() {
            return Err("invalid secret mount. one of source, target required".into());
        }
        if m.source.is_some() && m.id.is_some() {
            return Err("both source and id can't be set".into());
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
fn parse_size(s: &str) -> Result<u64, String> {
    let bad = || format!("invalid value {s} for size");
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
fn csv_record(s: &str) -> Result<Vec<String>, String> {
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
                    None => return Err("extraneous or missing \" in quoted-field".into()),
                }
            }
            match chars.peek() {
                None | Some(',') => {}
                Some(_) => return Err("extraneous or missing \" in quoted-field".into()),
            }
            continue;
        }
        at_field_start = false;
        match c {
            ',' => {
                fields.push(std::mem::take(&mut cur));
                at_field_start = true;
            }
            '"' => return Err("bare \" in non-quoted-field".into()),
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
        parse_mount(v, Some(&mut id))
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
            "'from' doesn't support variable expansion, define alias stage instead"
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
