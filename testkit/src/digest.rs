//! OCI digests of bytes, as the image spec writes them (`sha256:<hex>`).

use sha2::{Digest, Sha256};

/// `sha256:<64 hex digits>` of `data`.
pub fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}
