//! Content digests as go-digest validates them: `sha256:` + 64 lowercase hex digits (or
//! `sha384:` 96, `sha512:` 128). Every digest that comes from outside (a manifest, an index,
//! a registry header, an OCI layout) becomes a [`Digest`] at the boundary, so a value like
//! `sha256:../../../../tmp/x` never reaches a URL or a file path.

use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;

/// A validated content digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Digest(String);

/// Why a string is not a digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("invalid digest {0:?}: expected sha256:<64 lowercase hex digits>")]
    Format(String),
    #[error("invalid digest {0:?}: the hex part has the wrong length for its algorithm")]
    Length(String),
    #[error("unsupported digest algorithm in {0:?} (sha256, sha384 and sha512 are)")]
    Unsupported(String),
}

impl Digest {
    /// Checks `s` (go-digest's `Digest.Validate`).
    pub fn parse(s: &str) -> Result<Digest, DigestError> {
        let Some((algorithm, hex)) = s.split_once(':') else {
            return Err(DigestError::Format(shown(s)));
        };
        let size = match algorithm {
            "sha256" => 64,
            "sha384" => 96,
            "sha512" => 128,
            a if !a.is_empty()
                && a.bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()) =>
            {
                return Err(DigestError::Unsupported(shown(s)))
            }
            _ => return Err(DigestError::Format(shown(s))),
        };
        if !hex.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(DigestError::Format(shown(s)));
        }
        if hex.len() != size {
            return Err(DigestError::Length(shown(s)));
        }
        Ok(Digest(s.to_string()))
    }

    /// The sha256 digest of a hex string already computed here (a hasher's output).
    pub fn sha256_of_hex(hex: &str) -> Result<Digest, DigestError> {
        Digest::parse(&format!("sha256:{hex}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The algorithm (`sha256`).
    pub fn algorithm(&self) -> &str {
        self.0.split_once(':').map_or("", |(a, _)| a)
    }

    /// The hex part.
    pub fn hex(&self) -> &str {
        self.0.split_once(':').map_or("", |(_, h)| h)
    }
}

/// At most 100 characters of a rejected value, for messages.
fn shown(s: &str) -> String {
    if s.chars().count() <= 100 {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(100).collect();
        out.push('…');
        out
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Digest, D::Error> {
        let s = String::deserialize(d)?;
        Digest::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl std::str::FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Digest, DigestError> {
        Digest::parse(s)
    }
}

impl std::ops::Deref for Digest {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Digest {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for Digest {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<Digest> for String {
    fn from(d: Digest) -> String {
        d.0
    }
}

impl PartialEq<str> for Digest {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for Digest {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl PartialEq<String> for Digest {
    fn eq(&self, other: &String) -> bool {
        &self.0 == other
    }
}

impl PartialEq<Digest> for String {
    fn eq(&self, other: &Digest) -> bool {
        *self == other.0
    }
}

impl PartialEq<Digest> for &str {
    fn eq(&self, other: &Digest) -> bool {
        *self == other.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn only_well_formed_digests_pass() {
        assert_eq!(Digest::parse(&format!("sha256:{HEX}")).unwrap().hex(), HEX);
        for bad in [
            "sha256:../../../../tmp/x",
            "sha256:",
            "",
            "sha256",
            &format!("sha256:{}", HEX.to_uppercase()),
            &format!("sha256:{HEX}00"),
            &format!("sha256:{}", &HEX[..63]),
            &format!("SHA256:{HEX}"),
            &format!("sha256:{HEX}/../x"),
            &format!("sha256:{HEX}\n"),
            &format!("md5:{HEX}"),
        ] {
            assert!(Digest::parse(bad).is_err(), "{bad:?} passed");
        }
        assert!(matches!(
            Digest::parse(&format!("blake3:{HEX}")),
            Err(DigestError::Unsupported(_))
        ));
        let sha512 = format!("sha512:{}", "ab".repeat(64));
        assert_eq!(Digest::parse(&sha512).unwrap().algorithm(), "sha512");
    }

    #[test]
    fn json_is_checked_on_the_way_in() {
        let good: Digest = serde_json::from_str(&format!("\"sha256:{HEX}\"")).unwrap();
        assert_eq!(
            serde_json::to_string(&good).unwrap(),
            format!("\"sha256:{HEX}\"")
        );
        let bad = serde_json::from_str::<Digest>("\"sha256:../../etc/passwd\"").unwrap_err();
        assert!(bad.to_string().contains("invalid digest"), "{bad}");
    }
}
