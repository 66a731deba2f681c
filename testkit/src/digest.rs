//! OCI digests of bytes, as the image spec writes them (`sha256:<hex>`).

use sha2::{Digest, Sha256};

/// `sha256:<64 hex digits>` of `data`.
pub fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(data))
}

/// The 64 hex digits of the sha256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}
