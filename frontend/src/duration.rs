//! Go's `time.ParseDuration` and `Duration.String`, which HEALTHCHECK flags and the history
//! line BuildKit writes for them use (`--interval=1m30s`, `Interval:1m30s`). Nothing
//! Dockerfile-specific.

/// A duration Go's `time.ParseDuration` refuses (its texts), with the input as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("time: invalid duration \"{0}\"")]
    Invalid(String),
    #[error("time: missing unit in duration \"{0}\"")]
    MissingUnit(String),
    #[error("time: unknown unit \"{unit}\" in duration \"{input}\"")]
    UnknownUnit { unit: String, input: String },
}

/// Parses a Go duration string (`300ms`, `1.5h`, `2h45m`, `0`) into nanoseconds.
pub fn parse(s: &str) -> Result<i64, DurationError> {
    let err = || DurationError::Invalid(s.to_string());
    let (neg, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(err());
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num = &rest[..num_len];
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return Err(err());
        }
        let value: f64 = num.parse().map_err(|_| err())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let scale = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "" => return Err(DurationError::MissingUnit(s.to_string())),
            _ => {
                return Err(DurationError::UnknownUnit {
                    unit: unit.to_string(),
                    input: s.to_string(),
                })
            }
        };
        total += value * scale;
    }
    if total > i64::MAX as f64 {
        return Err(err());
    }
    let n = total.round() as i64;
    Ok(if neg { -n } else { n })
}

/// Formats nanoseconds as Go's `Duration.String()` does (`1m30s`, `500ms`, `0s`).
pub fn format(ns: i64) -> String {
    if ns == 0 {
        return "0s".into();
    }
    let neg = ns < 0;
    let u = ns.unsigned_abs();
    let sign = if neg { "-" } else { "" };
    if u < 1_000 {
        return format!("{sign}{u}ns");
    }
    if u < 1_000_000 {
        return format!("{sign}{}µs", frac(u, 1_000));
    }
    if u < 1_000_000_000 {
        return format!("{sign}{}ms", frac(u, 1_000_000));
    }
    let h = u / 3_600_000_000_000;
    let m = (u / 60_000_000_000) % 60;
    let s_ns = u % 60_000_000_000;
    let mut out = String::from(sign);
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if h > 0 || m > 0 {
        out.push_str(&format!("{m}m"));
    }
    out.push_str(&format!("{}s", frac(s_ns, 1_000_000_000)));
    out
}

/// `v / unit` with the fractional part's trailing zeros removed.
fn frac(v: u64, unit: u64) -> String {
    let whole = v / unit;
    let rem = v % unit;
    if rem == 0 {
        return whole.to_string();
    }
    let digits = unit.to_string().len() - 1;
    let f = format!("{rem:0digits$}");
    format!("{whole}.{}", f.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats_like_go() {
        for (text, ns, shown) in [
            ("0", 0, "0s"),
            ("0s", 0, "0s"),
            ("5s", 5_000_000_000, "5s"),
            ("1m30s", 90_000_000_000, "1m30s"),
            ("1.5h", 5_400_000_000_000, "1h30m0s"),
            ("300ms", 300_000_000, "300ms"),
            ("1500ms", 1_500_000_000, "1.5s"),
            ("2us", 2_000, "2µs"),
            ("10ns", 10, "10ns"),
            ("1h", 3_600_000_000_000, "1h0m0s"),
        ] {
            assert_eq!(parse(text), Ok(ns), "{text}");
            assert_eq!(format(ns), shown, "{text}");
        }
    }

    #[test]
    fn rejects_bad_durations() {
        for bad in ["", "5", "s", "1x", "1..5s", "-", "1s5"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
