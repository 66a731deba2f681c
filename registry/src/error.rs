//! Errors that say what failed, where (reference, HTTP method and status) and what to do. The
//! registry's error JSON (UNAUTHORIZED, DENIED, NAME_UNKNOWN, BLOB_UNKNOWN, MANIFEST_INVALID...)
//! is turned into that message. Never contains credentials or tokens.

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// Placeholder until the client lands; replace with the real variants.
    #[error("{0}")]
    Other(String),
}
