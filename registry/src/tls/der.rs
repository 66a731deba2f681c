//! The few fields of an X.509 certificate the pinned-certificate check reads that webpki does
//! not hand out: the validity period and the extended key usages. A minimal DER reader (tag,
//! length, value) over the certificate's outer structure; anything it does not expect is an
//! error, never a guess.

/// What [`read`] takes from a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Facts {
    /// notBefore and notAfter, in seconds since the Unix epoch.
    pub(super) not_before: i64,
    pub(super) not_after: i64,
    /// The extendedKeyUsage OIDs (DER contents), None when the extension is absent.
    pub(super) eku: Option<Vec<Vec<u8>>>,
}

/// id-kp-serverAuth, 1.3.6.1.5.5.7.3.1.
pub(super) const SERVER_AUTH: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01];
/// id-ce-extKeyUsage, 2.5.29.37.
const EXT_KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x25];

const SEQUENCE: u8 = 0x30;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;
const OID: u8 = 0x06;
const OCTET_STRING: u8 = 0x04;
const BOOLEAN: u8 = 0x01;
const EXTENSIONS: u8 = 0xa3;

/// One TLV off the front of `input`: (tag, contents, rest).
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// A TLV that must have `tag`.
fn expect(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (t, value, rest) = tlv(input)?;
    (t == tag).then_some((value, rest))
}

/// The issuer Name of a DER certificate, whole (its SEQUENCE tag and length included), as a
/// server's list of acceptable client certificate authorities names it.
pub(super) fn issuer(cert: &[u8]) -> Option<&[u8]> {
    let (certificate, _) = expect(cert, SEQUENCE)?;
    let (tbs, _) = expect(certificate, SEQUENCE)?;
    let mut rest = tbs;
    if rest.first() == Some(&0xa0) {
        rest = tlv(rest)?.2;
    }
    rest = tlv(rest)?.2; // serialNumber
    rest = expect(rest, SEQUENCE)?.1; // signature algorithm
    let after = expect(rest, SEQUENCE)?.1;
    Some(&rest[..rest.len() - after.len()])
}

/// The validity period and extended key usages of a DER certificate.
pub(super) fn read(cert: &[u8]) -> Option<Facts> {
    let (certificate, _) = expect(cert, SEQUENCE)?;
    let (tbs, _) = expect(certificate, SEQUENCE)?;
    let mut rest = tbs;
    // version [0] EXPLICIT, optional.
    if rest.first() == Some(&0xa0) {
        rest = tlv(rest)?.2;
    }
    rest = tlv(rest)?.2; // serialNumber
    rest = expect(rest, SEQUENCE)?.1; // signature algorithm
    rest = expect(rest, SEQUENCE)?.1; // issuer
    let (validity, after) = expect(rest, SEQUENCE)?;
    let (not_before, validity) = time(validity)?;
    let (not_after, _) = time(validity)?;
    rest = expect(after, SEQUENCE)?.1; // subject
    rest = expect(rest, SEQUENCE)?.1; // subjectPublicKeyInfo
    let mut eku = None;
    while let Some((tag, value, next)) = tlv(rest) {
        if tag == EXTENSIONS {
            eku = extended_key_usage(value)?;
        }
        rest = next;
    }
    Some(Facts {
        not_before,
        not_after,
        eku,
    })
}

/// The EKU extension's OIDs from `[3] { SEQUENCE OF Extension }`; Ok(None) without one.
fn extended_key_usage(explicit: &[u8]) -> Option<Option<Vec<Vec<u8>>>> {
    let (mut extensions, _) = expect(explicit, SEQUENCE)?;
    while !extensions.is_empty() {
        let (extension, next) = expect(extensions, SEQUENCE)?;
        extensions = next;
        let (oid, mut rest) = expect(extension, OID)?;
        if oid != EXT_KEY_USAGE {
            continue;
        }
        if rest.first() == Some(&BOOLEAN) {
            rest = tlv(rest)?.2;
        }
        let (value, _) = expect(rest, OCTET_STRING)?;
        let (mut purposes, _) = expect(value, SEQUENCE)?;
        let mut oids = Vec::new();
        while !purposes.is_empty() {
            let (purpose, next) = expect(purposes, OID)?;
            oids.push(purpose.to_vec());
            purposes = next;
        }
        return Some(Some(oids));
    }
    Some(None)
}

/// A UTCTime (`YYMMDDHHMMSSZ`, 1950-2049) or GeneralizedTime (`YYYYMMDDHHMMSSZ`) as Unix
/// seconds, and what follows it.
fn time(input: &[u8]) -> Option<(i64, &[u8])> {
    let (tag, value, rest) = tlv(input)?;
    let digits = |s: &[u8]| -> Option<i64> {
        s.iter().try_fold(0i64, |acc, b| {
            b.is_ascii_digit().then(|| acc * 10 + i64::from(b - b'0'))
        })
    };
    let (year, rest_of_it) = match (tag, value.len()) {
        (UTC_TIME, 13) => {
            let yy = digits(&value[..2])?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &value[2..])
        }
        (GENERALIZED_TIME, 15) => (digits(&value[..4])?, &value[4..]),
        _ => return None,
    };
    if rest_of_it.last() != Some(&b'Z') {
        return None;
    }
    let field = |i: usize| digits(&rest_of_it[i..i + 2]);
    let (month, day) = (field(0)?, field(2)?);
    let (hour, minute, second) = (field(4)?, field(6)?, field(8)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some((days * 86_400 + hour * 3600 + minute * 60 + second, rest))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        let utc = [&[UTC_TIME, 13][..], b"491231235959Z"].concat();
        assert_eq!(time(&utc).unwrap().0, 2_524_607_999);
        let utc = [&[UTC_TIME, 13][..], b"500101000000Z"].concat();
        assert_eq!(time(&utc).unwrap().0, -631_152_000);
        let gen = [&[GENERALIZED_TIME, 15][..], b"20260102030405Z"].concat();
        assert_eq!(time(&gen).unwrap().0, 1_767_323_045);
        let local = [&[GENERALIZED_TIME, 15][..], b"20260102030405+"].concat();
        assert!(time(&local).is_none());
    }

    #[test]
    fn truncated_input_is_refused() {
        assert!(read(&[]).is_none());
        assert!(read(&[0x30, 0x82, 0x01]).is_none());
        assert!(read(&[0x30, 0x05, 0x30, 0x03, 0x02, 0x01]).is_none());
    }
}
