//! HTTP dates (`Last-Modified`), as Go's `http.ParseTime` reads them: the mtime of an
//! `ADD <url>` file.

/// An HTTP date (`Last-Modified`) as Unix seconds: IMF-fixdate, RFC 850 or asctime, the
/// three forms Go's `http.ParseTime` (and so BuildKit) accepts.
pub(super) fn parse_http_date(s: &str) -> Option<i64> {
    let s = s.trim();
    let month = |m: &str| {
        [
            "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
        ]
        .iter()
        .position(|x| m.eq_ignore_ascii_case(x))
        .map(|i| i as u32 + 1)
    };
    let hms = |t: &str| -> Option<(u32, u32, u32)> {
        let mut it = t.split(':').map(|p| p.parse::<u32>().ok());
        let (h, m, s) = (it.next()??, it.next()??, it.next()??);
        (it.next().is_none() && h < 24 && m < 60 && s < 61).then_some((h, m, s))
    };
    let (year, mon, day, (h, mi, se)) = if let Some((_, rest)) = s.split_once(',') {
        let parts: Vec<&str> = rest.split_whitespace().collect();
        match parts.as_slice() {
            // Sun, 06 Nov 1994 08:49:37 GMT
            [d, m, y, t, "GMT"] => (y.parse::<i64>().ok()?, month(m)?, d.parse().ok()?, hms(t)?),
            // Sunday, 06-Nov-94 08:49:37 GMT
            [dmy, t, "GMT"] => {
                let mut it = dmy.split('-');
                let (d, m, y) = (it.next()?, it.next()?, it.next()?);
                let y: i64 = y.parse().ok()?;
                let y = match y {
                    0..=68 => 2000 + y,
                    69..=99 => 1900 + y,
                    _ => y,
                };
                (y, month(m)?, d.parse().ok()?, hms(t)?)
            }
            _ => return None,
        }
    } else {
        // Sun Nov  6 08:49:37 1994
        match s.split_whitespace().collect::<Vec<_>>().as_slice() {
            [_, m, d, t, y] => (y.parse().ok()?, month(m)?, d.parse().ok()?, hms(t)?),
            _ => return None,
        }
    };
    if !(1..=31).contains(&day) {
        return None;
    }
    Some(days_from_civil(year, mon, day) * 86_400 + (h * 3600 + mi * 60 + se) as i64)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates() {
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784111777)
        );
        assert_eq!(
            parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"),
            Some(784111777)
        );
        assert_eq!(parse_http_date("Sun Nov  6 08:49:37 1994"), Some(784111777));
        assert_eq!(
            parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(1445412480)
        );
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(
            parse_http_date("Thu, 29 Feb 2024 12:00:00 GMT"),
            Some(1709208000)
        );
        assert_eq!(parse_http_date("yesterday"), None);
        assert_eq!(parse_http_date("Sun, 06 Foo 1994 08:49:37 GMT"), None);
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 25:49:37 GMT"), None);
    }
}
