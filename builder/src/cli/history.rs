//! `pallet history IMAGE`: docker history's table (newest first: CREATED, CREATED BY, SIZE,
//! COMMENT), with `--largest` (layers by size, largest first, as dive's summary), `--no-trunc`
//! and `--format json` (one object per line, like `docker history --format json`). Each
//! history entry is paired with the layer it made; sizes are the stored (uncompressed) diffs.
//! Reads the local store only.

use super::error::CliError;
use super::open_root;
use super::stored::{find, normalize};
use crate::progress::human_size;
use crate::store::StoredImage;
use clap::{Args, ValueEnum};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Args, Debug)]
pub struct HistoryArgs {
    /// The image (name[:tag])
    pub image: String,
    /// Sort by layer size, largest first (empty layers last)
    #[arg(long)]
    pub largest: bool,
    /// Do not shorten CREATED BY
    #[arg(long)]
    pub no_trunc: bool,
    /// table for people, json for scripts (one object per line)
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

/// One history entry and its layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Row {
    pub created: Option<String>,
    pub created_by: String,
    pub comment: String,
    /// The layer's diff id (None: an empty layer, such as ENV).
    pub diff_id: Option<String>,
    /// Bytes of the stored diff (0 for empty layers; None: blob missing).
    pub size: Option<u64>,
}

/// History entries paired with layers, oldest first (as in the config).
pub(super) fn rows(root: &cache::Root, image: &StoredImage) -> Vec<Row> {
    let size_of = |d: &str| {
        root.blobs
            .path(d)
            .ok()
            .and_then(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
    };
    let mut layers = image.layers.iter();
    let mut out: Vec<Row> = image
        .config
        .history
        .iter()
        .map(|h| {
            let layer = if h.empty_layer { None } else { layers.next() };
            Row {
                created: h.created.clone(),
                created_by: h.created_by.clone(),
                comment: h.comment.clone(),
                diff_id: layer.cloned(),
                size: layer.map_or(Some(0), |d| size_of(d)),
            }
        })
        .collect();
    for d in layers {
        out.push(Row {
            created: None,
            created_by: "(no history entry)".into(),
            comment: String::new(),
            diff_id: Some(d.clone()),
            size: size_of(d),
        });
    }
    out
}

pub fn history(args: HistoryArgs, root: Option<PathBuf>) -> Result<ExitCode, CliError> {
    let name = normalize(&args.image)?;
    let root = open_root(root)?;
    let image = find(&root, &name)?;
    let mut rows = rows(&root, &image);
    rows.reverse();
    if args.largest {
        // Stable: equal sizes keep newest-first order.
        rows.sort_by_key(|r| std::cmp::Reverse(r.size.unwrap_or(0)));
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let out = match args.format {
        Format::Table => table(&rows, args.no_trunc, now),
        Format::Json => json(&rows),
    };
    print!("{out}");
    Ok(ExitCode::SUCCESS)
}

fn json(rows: &[Row]) -> String {
    let mut out = String::new();
    for r in rows {
        let v = serde_json::json!({
            "id": r.diff_id,
            "created": r.created,
            "created_by": r.created_by,
            "size": r.size,
            "empty_layer": r.diff_id.is_none(),
            "comment": r.comment,
        });
        let _ = writeln!(out, "{v}");
    }
    out
}

pub(super) fn table(rows: &[Row], no_trunc: bool, now: i64) -> String {
    let mut out = String::new();
    let width = if no_trunc { usize::MAX } else { 45 };
    let _ = writeln!(
        out,
        "{:<12}  {:<18}  {:<45}  {:>10}  COMMENT",
        "LAYER", "CREATED", "CREATED BY", "SIZE"
    );
    for r in rows {
        let layer = match &r.diff_id {
            Some(d) if no_trunc => d.clone(),
            Some(d) => short(d).to_string(),
            None => "<empty>".into(),
        };
        let created = r
            .created
            .as_deref()
            .and_then(parse_rfc3339)
            .map_or_else(|| "-".to_string(), |t| ago(now - t));
        let size = r.size.map_or_else(|| "missing".into(), human_size);
        let by = truncate(&r.created_by.replace('\n', " "), width);
        let _ = writeln!(
            out,
            "{layer:<12}  {created:<18}  {by:<45}  {size:>10}  {}",
            r.comment
        );
    }
    out
}

fn short(diff_id: &str) -> &str {
    let hex = diff_id.strip_prefix("sha256:").unwrap_or(diff_id);
    &hex[..hex.len().min(12)]
}

/// At most `width` characters, the last one `…` when cut (docker's style).
fn truncate(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_string();
    }
    let mut t: String = s.chars().take(width.saturating_sub(1)).collect();
    t.push('…');
    t
}

/// docker's relative times: `5 seconds ago`, `3 minutes ago`, `2 days ago`.
fn ago(secs: i64) -> String {
    let secs = secs.max(0);
    let (n, unit) = match secs {
        s if s < 60 => (s, "second"),
        s if s < 3600 => (s / 60, "minute"),
        s if s < 86_400 => (s / 3600, "hour"),
        s if s < 86_400 * 14 => (s / 86_400, "day"),
        s if s < 86_400 * 60 => (s / (86_400 * 7), "week"),
        s if s < 86_400 * 730 => (s / (86_400 * 30), "month"),
        s => (s / (86_400 * 365), "year"),
    };
    format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" })
}

/// Seconds since the epoch of `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`.
fn parse_rfc3339(s: &str) -> Option<i64> {
    let num = |a: usize, b: usize| s.get(a..b)?.parse::<i64>().ok();
    let (y, m, d) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hh, mm, ss) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    let rest = s.get(19..)?;
    let rest = rest.trim_start_matches(|c: char| c == '.' || c.is_ascii_digit());
    let offset = match rest {
        "Z" | "z" | "" => 0,
        o => {
            let sign = if o.starts_with('-') { -1 } else { 1 };
            let h: i64 = o.get(1..3)?.parse().ok()?;
            let mi: i64 = o.get(4..6)?.parse().ok()?;
            sign * (h * 3600 + mi * 60)
        }
    };
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss - offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_and_read_like_docker() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2023-11-14T22:13:20Z"), Some(1_700_000_000));
        assert_eq!(
            parse_rfc3339("2023-11-14T23:13:20.123+01:00"),
            Some(1_700_000_000)
        );
        assert_eq!(ago(5), "5 seconds ago");
        assert_eq!(ago(3600), "1 hour ago");
        assert_eq!(ago(86_400 * 3), "3 days ago");
    }

    #[test]
    fn table_truncates_unless_asked() {
        let rows = vec![Row {
            created: Some("2023-11-14T22:13:20Z".into()),
            created_by: format!("RUN {} # buildkit", "x".repeat(60)),
            comment: String::new(),
            diff_id: Some(format!("sha256:{}", "ab".repeat(32))),
            size: Some(2_500_000),
        }];
        let t = table(&rows, false, 1_700_000_060);
        assert!(t.contains("abababababab  1 minute ago"), "{t}");
        assert!(t.contains("…") && t.contains("2.5MB"), "{t}");
        let t = table(&rows, true, 1_700_000_060);
        assert!(
            t.contains("# buildkit") && t.contains(&"ab".repeat(32)),
            "{t}"
        );
    }
}
