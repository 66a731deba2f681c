//! pallet's OCI distribution client: references parsed and normalized as docker does, registry
//! settings (TLS, insecure registries, mirrors), credentials from docker's config.json and its
//! helpers, the bearer-token and basic auth flows, and pull/push over the distribution API with
//! retries. Blocking I/O on ureq (rustls); concurrency with scoped threads. Knows nothing of
//! builds, stores or layers: callers hand it sinks to write blobs into and openers to read them.
//!
//! HTTP is blocking ureq 3 (rustls), not reqwest as DESIGN.md first said: pallet has no tokio
//! runtime (the solver is rayon), ureq was already in the tree for `ADD <url>`, and blob
//! transfers run on scoped threads of their own, never on rayon's. Retries are ours: upload
//! bodies are streams that cannot be replayed, so an upload restarts from a fresh session.
//!
//! Modules: (references are the `reference` crate's, re-exported), `config` (TLS/insecure/mirrors
//! policy, BuildKit's per-registry tables), `credentials` (docker's config.json and helpers, then
//! containers auth files), `proxy` (Go's HTTP(S)_PROXY/NO_PROXY rule, shared with `ADD <url>`),
//! `client` (the API calls, reads with mirrors), `pull` (index -> platform -> manifest ->
//! config), `push` (blobs in parallel, manifest last), `manifest` (media types, platforms);
//! private: `tls` (rustls configuration per host: certs.d, pinned certificates, client
//! certificates; the connector under ureq), `transport` (agents, counting), `session` (endpoint
//! discovery, auth, retries, redirects), `auth` (challenges, tokens), `upload`, `digest`,
//! `encoding`.

mod auth;
pub mod client;
pub mod config;
pub mod credentials;
pub mod digest;
mod encoding;
pub mod error;
pub mod manifest;
pub mod proxy;
pub mod pull;
pub mod push;
mod session;
mod tls;
mod transport;
mod upload;

pub use client::{BlobOpener, Client, FetchedManifest, HashingSink};
pub use config::RegistryConfig;
pub use credentials::{Credential, DockerConfig};
pub use digest::sha256_digest;
pub use encoding::{base64_decode, base64_encode, query_escape};
pub use error::RegistryError;
pub use manifest::{Descriptor, ImageIndex, ImageManifest, Platform};
pub use pull::{resolve, ResolvedImage};
pub use push::{push_image, BlobOutcome, PushBlob, PushProgress, PushReport, PushRequest};
pub use reference::{Digest, DigestError, Reference, ReferenceError};
pub use transport::RequestCounts;
