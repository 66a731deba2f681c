//! Registry settings: which registries may use plain HTTP, extra CA certificates per registry,
//! mirrors for docker.io, retry policy. Read from a JSON file shaped like dockerd's daemon.json
//! (`insecure-registries`, `registry-mirrors`, plus `registry-ca`), then amended by CLI flags.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// Registries (`host[:port]`) that may be reached over plain HTTP (or HTTPS without
    /// verification failing over to HTTP, as docker does). localhost / 127.0.0.1 / ::1 are always
    /// insecure-allowed, as in docker.
    pub insecure: Vec<String>,
    /// Mirrors tried in order for docker.io before docker.io itself (URLs like https://mirror:5000).
    pub mirrors: Vec<String>,
    /// Extra CA files by `host[:port]` (in addition to `certs_dir/HOST[:PORT]/*.crt`).
    pub ca_files: BTreeMap<String, PathBuf>,
    /// docker's per-registry certificate directory (default /etc/docker/certs.d).
    pub certs_dir: PathBuf,
    /// Blobs transferred at once in a pull or push.
    pub max_concurrent: usize,
    /// Uploads larger than this go up in chunks (PATCH) instead of one PUT.
    pub chunk_size: u64,
    pub retry: RetryPolicy,
}

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Total attempts per request (1 = no retry).
    pub attempts: u32,
    /// First backoff; doubles each retry (with jitter), capped at `max_delay`.
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        todo!()
    }
}

impl RegistryConfig {
    /// `$PALLET_CONFIG`, else `$XDG_CONFIG_HOME/pallet/config.json` (or ~/.config), else
    /// `/etc/pallet/config.json`; the first that exists.
    pub fn default_path() -> Option<PathBuf> {
        todo!()
    }

    /// Defaults amended by the file at `path` (error names the file and the bad key).
    pub fn load(path: &Path) -> Result<RegistryConfig, crate::RegistryError> {
        let _ = path;
        todo!()
    }
}
