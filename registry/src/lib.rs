//! pallet's OCI distribution client: references parsed and normalized as docker does, registry
//! settings (TLS, insecure registries, mirrors), credentials from docker's config.json and its
//! helpers, the bearer-token and basic auth flows, and pull/push over the distribution API with
//! retries. Blocking I/O on ureq (rustls); concurrency with scoped threads. Knows nothing of
//! builds, stores or layers: callers hand it sinks to write blobs into and openers to read them.

pub mod client;
pub mod config;
pub mod credentials;
pub mod error;
pub mod manifest;
pub mod pull;
pub mod push;
pub mod reference;

pub use client::Client;
pub use config::RegistryConfig;
pub use credentials::{Credential, DockerConfig};
pub use error::RegistryError;
pub use manifest::{Descriptor, Platform};
pub use reference::{Reference, ReferenceError};
