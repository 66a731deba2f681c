//! Content digests (`sha256:<hex>`, also sha384/sha512 as go-digest accepts): computing them
//! incrementally while bytes stream through, and checking content against the digest that names
//! it.

use reference::Digest;
use sha2::Digest as _;

/// sha256 of `bytes` as `sha256:<hex>`.
pub fn sha256_digest(bytes: &[u8]) -> Digest {
    Digest::sha256_of_hex(&hex::encode(sha2::Sha256::digest(bytes)))
        .expect("a sha256 hash is a digest")
}

/// An incremental hasher for the algorithm a digest names.
#[derive(Clone)]
pub(crate) enum Hasher {
    Sha256(sha2::Sha256),
    Sha384(sha2::Sha384),
    Sha512(sha2::Sha512),
}

impl Hasher {
    /// The hasher for `digest`'s algorithm; None for algorithms we cannot verify.
    pub(crate) fn for_digest(digest: &str) -> Option<Hasher> {
        match digest.split_once(':')?.0 {
            "sha256" => Some(Hasher::Sha256(sha2::Sha256::new())),
            "sha384" => Some(Hasher::Sha384(sha2::Sha384::new())),
            "sha512" => Some(Hasher::Sha512(sha2::Sha512::new())),
            _ => None,
        }
    }

    pub(crate) fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha384(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    pub(crate) fn finish(self) -> String {
        match self {
            Hasher::Sha256(h) => format!("sha256:{}", hex::encode(h.finalize())),
            Hasher::Sha384(h) => format!("sha384:{}", hex::encode(h.finalize())),
            Hasher::Sha512(h) => format!("sha512:{}", hex::encode(h.finalize())),
        }
    }
}

/// The digest of `bytes` in the algorithm `like` uses (sha256 when unknown).
pub(crate) fn digest_like(like: &str, bytes: &[u8]) -> String {
    match Hasher::for_digest(like) {
        Some(mut h) => {
            h.update(bytes);
            h.finish()
        }
        None => sha256_digest(bytes).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests() {
        assert_eq!(
            sha256_digest(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let mut h = Hasher::for_digest("sha512:00").unwrap();
        h.update(b"abc");
        assert!(h.finish().starts_with("sha512:ddaf35a1"));
        assert!(Hasher::for_digest("md5:00").is_none());
    }
}
