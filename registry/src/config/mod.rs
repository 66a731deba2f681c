//! Registry settings: which registries may use plain HTTP, extra CA certificates and client
//! certificates per registry, mirrors, proxies, retry policy. Read from a JSON file shaped like
//! dockerd's daemon.json (`insecure-registries`, `registry-mirrors`, plus `registry-ca` and
//! `max-concurrent-transfers`) with BuildKit's per-registry table under `registry` (buildkitd.toml's
//! `[registry."HOST"]`: `mirrors`, `http`, `insecure`, `ca`, `keypair`), then amended by CLI
//! flags (the fields are public).
//!
//! Owns the policy questions "may HOST use plain HTTP?", "skip TLS verification for HOST?",
//! "which CA files and client certificates for HOST?" and "which mirrors for HOST?"; it does not
//! open connections.

mod hosts;

pub use hosts::{HostSettings, KeyPair};

use hosts::host_settings;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// Registries (`host[:port]`, or IP ranges in CIDR form like `10.0.0.0/8`) that may be
    /// reached over plain HTTP, and over HTTPS without certificate verification, as docker does.
    /// localhost / 127.0.0.0/8 / ::1 may always fall back to plain HTTP (but keep certificate
    /// verification over HTTPS: a deliberate difference from docker, which skips it).
    pub insecure: Vec<String>,
    /// Mirrors tried in order for docker.io before docker.io itself (URLs like https://mirror:5000).
    pub mirrors: Vec<String>,
    /// BuildKit's per-registry settings (`[registry."HOST"]`), by `host[:port]` as references
    /// name registries (`docker.io`, `ghcr.io`, `10.0.0.5:5000`).
    pub hosts: BTreeMap<String, HostSettings>,
    /// HTTP_PROXY / HTTPS_PROXY / NO_PROXY, by Go's rule.
    pub proxy: crate::proxy::ProxyEnv,
    /// Extra CA files by `host[:port]` (in addition to `certs_dir/HOST[:PORT]/*.crt`).
    pub ca_files: BTreeMap<String, PathBuf>,
    /// docker's per-registry certificate directory (default /etc/docker/certs.d; config key
    /// `certs-dir`): `HOST[:PORT]/*.crt` CAs, `*.cert` + `*.key` client certificates.
    pub certs_dir: PathBuf,
    /// Blobs transferred at once in a pull or push.
    pub max_concurrent: usize,
    /// Uploads larger than this go up in chunks (PATCH) instead of one PUT.
    pub chunk_size: u64,
    pub retry: RetryPolicy,
    pub transfer: TransferLimits,
}

/// When a transfer is given up as stalled or too slow (curl's `--speed-limit` idea): blob
/// downloads, and the small bodies (manifests, tokens, error answers) read whole; the idle
/// timeout also bounds each write of an upload:
/// config keys `transfer-idle-timeout` and `transfer-min-speed` / `transfer-speed-window`,
/// or `PALLET_REGISTRY_IDLE_TIMEOUT` (seconds), `PALLET_REGISTRY_MIN_SPEED` (bytes per second)
/// and `PALLET_REGISTRY_SPEED_WINDOW` (seconds), which win over the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferLimits {
    /// A read that waits this long breaks the connection; the download resumes (Range) and
    /// gives up after [`TransferLimits::SILENCES`] such waits in a row without a byte.
    pub idle_timeout: Duration,
    /// A download whose last `speed_window` brought fewer than `min_speed * speed_window`
    /// bytes fails (a registry trickling a byte a second never times out otherwise).
    pub min_speed: u64,
    pub speed_window: Duration,
}

impl TransferLimits {
    /// Silences in a row, without progress, before a download is given up.
    pub const SILENCES: u32 = 2;
}

impl Default for TransferLimits {
    fn default() -> Self {
        TransferLimits {
            idle_timeout: Duration::from_secs(30),
            min_speed: 1024,
            speed_window: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Total attempts per request (1 = no retry).
    pub attempts: u32,
    /// First backoff; doubles each retry (with jitter), capped at `max_delay`.
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 5,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (0 = the first retry): base * 2^retry, capped, with
    /// up to 25% jitter so parallel transfers do not retry in lockstep.
    pub fn delay(&self, retry: u32) -> Duration {
        let base = self.base_delay.saturating_mul(1u32 << retry.min(16));
        let capped = base.min(self.max_delay);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let jitter = capped.mul_f64(f64::from(nanos % 1000) / 4000.0);
        capped + jitter
    }
}

/// A duration in whole seconds (at least 1) from a config value.
fn seconds(key: &str, value: &serde_json::Value) -> Result<Duration, String> {
    value
        .as_u64()
        .filter(|n| *n >= 1)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("\"{key}\" must be a number of seconds >= 1"))
}

/// Default chunk size for chunked uploads (distribution's own default buffer is 10 MiB; GCS
/// and S3 backends want parts of at least 5 MiB).
pub const DEFAULT_CHUNK_SIZE: u64 = 32 << 20;

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            insecure: Vec::new(),
            mirrors: Vec::new(),
            hosts: BTreeMap::new(),
            proxy: crate::proxy::ProxyEnv::from_process(),
            ca_files: BTreeMap::new(),
            certs_dir: PathBuf::from("/etc/docker/certs.d"),
            max_concurrent: 3,
            chunk_size: DEFAULT_CHUNK_SIZE,
            retry: RetryPolicy::default(),
            transfer: TransferLimits::default(),
        }
    }
}

const KNOWN_KEYS: &[&str] = &[
    "certs-dir",
    "insecure-registries",
    "registry-mirrors",
    "registry-ca",
    "max-concurrent-transfers",
    "registry",
    "transfer-idle-timeout",
    "transfer-min-speed",
    "transfer-speed-window",
];

impl RegistryConfig {
    /// `$PALLET_CONFIG`, else `$XDG_CONFIG_HOME/pallet/config.json` (or ~/.config), else
    /// `/etc/pallet/config.json`; the first that exists.
    pub fn default_path() -> Option<PathBuf> {
        if let Some(p) = std::env::var_os("PALLET_CONFIG").filter(|p| !p.is_empty()) {
            return Some(PathBuf::from(p));
        }
        let config_home = std::env::var_os("XDG_CONFIG_HOME")
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME")
                    .filter(|p| !p.is_empty())
                    .map(|h| PathBuf::from(h).join(".config"))
            });
        let candidates = config_home
            .map(|d| d.join("pallet/config.json"))
            .into_iter()
            .chain(std::iter::once(PathBuf::from("/etc/pallet/config.json")));
        candidates.into_iter().find(|p| p.is_file())
    }

    /// Defaults amended by the file at `path` (error names the file and the bad key).
    pub fn load(path: &Path) -> Result<RegistryConfig, crate::RegistryError> {
        let bad = |message: String| crate::RegistryError::Config {
            path: path.to_path_buf(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| bad(format!("cannot read: {e}")))?;
        RegistryConfig::default()
            .amend_from_json(&text)
            .map_err(bad)
    }

    /// Applies a daemon.json-shaped document; the error is the message without the file name.
    pub fn amend_from_json(mut self, text: &str) -> Result<RegistryConfig, String> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
        let serde_json::Value::Object(map) = value else {
            return Err("expected a JSON object".into());
        };
        for (key, value) in &map {
            let strings = |v: &serde_json::Value| -> Result<Vec<String>, String> {
                v.as_array()
                    .and_then(|a| {
                        a.iter()
                            .map(|s| s.as_str().map(str::to_string))
                            .collect::<Option<Vec<_>>>()
                    })
                    .ok_or_else(|| format!("\"{key}\" must be an array of strings"))
            };
            match key.as_str() {
                "insecure-registries" => {
                    for entry in strings(value)? {
                        if entry.contains("://") {
                            return Err(format!(
                                "\"insecure-registries\": {entry:?} must be host[:port] or a \
                                 CIDR range, without a scheme"
                            ));
                        }
                        self.insecure.push(entry);
                    }
                }
                "registry-mirrors" => {
                    for entry in strings(value)? {
                        if !(entry.starts_with("https://") || entry.starts_with("http://")) {
                            return Err(format!(
                                "\"registry-mirrors\": {entry:?} must be a URL (https://host[:port])"
                            ));
                        }
                        self.mirrors.push(entry.trim_end_matches('/').to_string());
                    }
                }
                "registry-ca" => {
                    let obj = value.as_object().ok_or(
                        "\"registry-ca\" must be an object {\"host:port\": \"/path/ca.crt\"}",
                    )?;
                    for (host, file) in obj {
                        let file = file
                            .as_str()
                            .ok_or_else(|| format!("\"registry-ca\": {host:?} must be a path"))?;
                        self.ca_files.insert(host.clone(), PathBuf::from(file));
                    }
                }
                "certs-dir" => {
                    let dir = value
                        .as_str()
                        .filter(|d| !d.is_empty())
                        .ok_or("\"certs-dir\" must be a directory path")?;
                    self.certs_dir = PathBuf::from(dir);
                }
                "registry" => {
                    let obj = value.as_object().ok_or(
                        "\"registry\" must be an object {\"HOST\": {\"mirrors\": [...], ...}} \
                         (buildkitd.toml's [registry.\"HOST\"] tables)",
                    )?;
                    for (host, table) in obj {
                        let settings = host_settings(host, table)?;
                        self.hosts.insert(host.clone(), settings);
                    }
                }
                "transfer-idle-timeout" => {
                    self.transfer.idle_timeout = seconds(key, value)?;
                }
                "transfer-speed-window" => {
                    self.transfer.speed_window = seconds(key, value)?;
                }
                "transfer-min-speed" => {
                    self.transfer.min_speed = value
                        .as_u64()
                        .ok_or("\"transfer-min-speed\" must be a number of bytes per second")?;
                }
                "max-concurrent-transfers" => {
                    let n = value
                        .as_u64()
                        .filter(|n| *n >= 1)
                        .ok_or("\"max-concurrent-transfers\" must be a number >= 1")?;
                    self.max_concurrent = n as usize;
                }
                other => {
                    return Err(format!(
                        "unknown key {other:?} (known: {})",
                        KNOWN_KEYS.join(", ")
                    ))
                }
            }
        }
        Ok(self)
    }

    /// The transfer limits from `PALLET_REGISTRY_IDLE_TIMEOUT`, `PALLET_REGISTRY_MIN_SPEED` and
    /// `PALLET_REGISTRY_SPEED_WINDOW`, where set (they win over the file).
    pub fn amend_from_env(
        mut self,
        var: &dyn Fn(&str) -> Option<String>,
    ) -> Result<RegistryConfig, String> {
        let number = |name: &str| -> Result<Option<u64>, String> {
            match var(name).filter(|v| !v.trim().is_empty()) {
                None => Ok(None),
                Some(v) => v
                    .trim()
                    .parse::<u64>()
                    .map(Some)
                    .map_err(|_| format!("{name}={v:?} is not a whole number")),
            }
        };
        if let Some(secs) = number("PALLET_REGISTRY_IDLE_TIMEOUT")? {
            self.transfer.idle_timeout = Duration::from_secs(secs.max(1));
        }
        if let Some(bytes) = number("PALLET_REGISTRY_MIN_SPEED")? {
            self.transfer.min_speed = bytes;
        }
        if let Some(secs) = number("PALLET_REGISTRY_SPEED_WINDOW")? {
            self.transfer.speed_window = Duration::from_secs(secs.max(1));
        }
        Ok(self)
    }

    /// True for localhost, 127.0.0.0/8 and ::1 (with or without a port).
    pub fn is_loopback(registry: &str) -> bool {
        let host = host_part(registry);
        host == "localhost"
            || host
                .parse::<IpAddr>()
                .map(|ip| ip.is_loopback())
                .unwrap_or(false)
    }

    /// Listed in `insecure` (by `host[:port]`, by host alone, or by a CIDR range containing it).
    pub fn is_insecure(&self, registry: &str) -> bool {
        let host = host_part(registry);
        self.insecure.iter().any(|entry| {
            if entry == registry || entry == host {
                return true;
            }
            match (cidr(entry), host.parse::<IpAddr>()) {
                (Some((net, bits)), Ok(ip)) => in_cidr(ip, net, bits),
                _ => false,
            }
        })
    }

    /// May `registry` be reached over plain HTTP (after HTTPS failed)?
    pub fn allows_http(&self, registry: &str) -> bool {
        Self::is_loopback(registry) || self.is_insecure(registry) || self.plain_http(registry)
    }

    /// Plain HTTP only, without trying HTTPS first (`"http": true` in its `registry` table).
    pub fn plain_http(&self, registry: &str) -> bool {
        self.hosts.get(registry).is_some_and(|h| h.http)
    }

    /// Skip certificate verification over HTTPS (only for explicitly insecure registries).
    pub fn skip_verify(&self, registry: &str) -> bool {
        self.is_insecure(registry) || self.hosts.get(registry).is_some_and(|h| h.insecure)
    }

    /// Extra CA files for `registry`: `certs_dir/HOST[:PORT]/*.crt` (sorted) then `ca_files`.
    pub fn ca_files_for(&self, registry: &str) -> Vec<PathBuf> {
        let mut files = Vec::new();
        // docker writes certs.d dirs for ports as `host:port`; for IPv6, brackets are kept.
        if let Ok(entries) = std::fs::read_dir(self.certs_dir.join(registry)) {
            let mut found: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "crt"))
                .collect();
            found.sort();
            files.extend(found);
        }
        if let Some(file) = self.ca_files.get(registry) {
            files.push(file.clone());
        }
        if let Some(h) = self.hosts.get(registry) {
            files.extend(h.ca.iter().cloned());
        }
        files
    }
}

/// `host` of `host[:port]`, `[v6]:port` -> `v6`.
pub(crate) fn host_part(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match registry.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) && !h.contains(':') => h,
        _ => registry,
    }
}

fn cidr(entry: &str) -> Option<(IpAddr, u32)> {
    let (net, bits) = entry.split_once('/')?;
    Some((net.parse().ok()?, bits.parse().ok()?))
}

fn in_cidr(ip: IpAddr, net: IpAddr, bits: u32) -> bool {
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) if bits <= 32 => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            (u32::from(ip) & mask) == (u32::from(net) & mask)
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) if bits <= 128 => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            (u128::from(ip) & mask) == (u128::from(net) & mask)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_policy() {
        let c = RegistryConfig {
            insecure: vec![
                "reg.local:5000".into(),
                "10.1.0.0/16".into(),
                "plain".into(),
            ],
            ..RegistryConfig::default()
        };
        assert!(c.allows_http("localhost:5000"));
        assert!(c.allows_http("127.0.0.1:41000"));
        assert!(c.allows_http("[::1]:5000"));
        assert!(c.allows_http("reg.local:5000"));
        assert!(!c.allows_http("reg.local:5001"));
        assert!(c.allows_http("10.1.2.3:5000"));
        assert!(!c.allows_http("10.2.2.3:5000"));
        assert!(c.allows_http("plain:443"));
        assert!(!c.allows_http("registry.example.com"));
        assert!(!c.allows_http("docker.io"));
        // HTTPS for non-listed hosts keeps verification, even on loopback.
        assert!(!c.skip_verify("127.0.0.1:5000"));
        assert!(c.skip_verify("reg.local:5000"));
    }

    #[test]
    fn load_daemon_json() {
        let dir = std::env::temp_dir().join(format!("pallet-reg-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("config.json");
        std::fs::write(
            &file,
            r#"{"insecure-registries": ["r:5000"], "registry-mirrors": ["https://m:5000/"],
                "registry-ca": {"h:443": "/x/ca.crt"}, "max-concurrent-transfers": 7}"#,
        )
        .unwrap();
        let c = RegistryConfig::load(&file).unwrap();
        assert_eq!(c.insecure, vec!["r:5000"]);
        assert_eq!(c.mirrors, vec!["https://m:5000"]);
        assert_eq!(c.ca_files_for("h:443"), vec![PathBuf::from("/x/ca.crt")]);
        assert_eq!(c.max_concurrent, 7);
        assert_eq!(c.retry.attempts, 5);

        std::fs::write(&file, r#"{"insecure-registries": [], "debug": true}"#).unwrap();
        let e = RegistryConfig::load(&file).unwrap_err().to_string();
        assert!(e.contains("config.json") && e.contains("\"debug\""), "{e}");
        std::fs::write(&file, r#"{"registry-mirrors": ["m:5000"]}"#).unwrap();
        let e = RegistryConfig::load(&file).unwrap_err().to_string();
        assert!(e.contains("registry-mirrors"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let p = RetryPolicy::default();
        assert!(p.delay(0) >= Duration::from_millis(200));
        assert!(p.delay(0) < Duration::from_millis(260));
        assert!(p.delay(1) >= Duration::from_millis(400));
        assert!(p.delay(10) <= Duration::from_millis(6250));
    }
}
