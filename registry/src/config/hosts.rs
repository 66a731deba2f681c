//! BuildKit's per-registry settings (buildkitd.toml's `[registry."HOST"]` tables, under the
//! config's `registry` key): mirrors for any registry, plain HTTP, skipped verification, CA
//! files, client certificates; and docker's certs.d client certificates (`*.cert` + `*.key`).
//! Answers "which mirrors for HOST?" and "which client certificates for HOST?".

use super::RegistryConfig;
use std::path::PathBuf;

/// One `[registry."HOST"]` table of buildkitd.toml.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostSettings {
    /// Mirrors tried in order for pulls before the registry itself: `host[:port]` (HTTPS, or
    /// plain HTTP where that host may use it) or a URL (`http://host:port`).
    pub mirrors: Vec<String>,
    /// Plain HTTP only (BuildKit's `http = true`).
    pub http: bool,
    /// HTTPS without certificate verification (BuildKit's `insecure = true`).
    pub insecure: bool,
    /// CA files, besides certs.d's.
    pub ca: Vec<PathBuf>,
    /// Client certificates for mutual TLS, besides certs.d's.
    pub keypairs: Vec<KeyPair>,
}

/// A client certificate (PEM, possibly with its chain) and its private key (PEM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPair {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl RegistryConfig {
    /// Mirrors for pulls from `domain` (as a reference names it), in order:
    /// `registry."DOMAIN".mirrors`, then for docker.io `registry-mirrors`. Each is
    /// `(host[:port], forced scheme)`.
    pub fn mirrors_for(&self, domain: &str) -> Vec<(String, Option<String>)> {
        let docker_hub = matches!(
            domain,
            "docker.io" | "index.docker.io" | "registry-1.docker.io"
        );
        let table = match docker_hub {
            true => ["docker.io", "index.docker.io", "registry-1.docker.io"]
                .iter()
                .find_map(|k| self.hosts.get(*k)),
            false => self.hosts.get(domain),
        };
        let legacy = if docker_hub { &self.mirrors[..] } else { &[] };
        table
            .map(|t| &t.mirrors[..])
            .unwrap_or(&[])
            .iter()
            .chain(legacy)
            .map(|m| match m.split_once("://") {
                Some((scheme, rest)) => (
                    rest.trim_end_matches('/').to_string(),
                    Some(scheme.to_string()),
                ),
                None => (m.trim_end_matches('/').to_string(), None),
            })
            .collect()
    }

    /// Client certificates for `registry`: docker's `certs_dir/HOST[:PORT]/*.cert`, each with
    /// the `*.key` of the same name (sorted), then the `keypair`s of its `registry` table. The
    /// error is (what is wrong, what to do).
    pub fn client_keypairs(&self, registry: &str) -> Result<Vec<KeyPair>, (String, String)> {
        let dir = self.certs_dir.join(registry);
        let mut pairs = Vec::new();
        if let Ok(entries) = std::fs::read_dir(&dir) {
            let mut files: Vec<PathBuf> =
                entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
            files.sort();
            for file in &files {
                let ext = file.extension().and_then(|x| x.to_str());
                if ext == Some("cert") {
                    let key = file.with_extension("key");
                    if !key.is_file() {
                        return Err((
                            format!(
                                "client certificate {} has no key {}",
                                file.display(),
                                key.display()
                            ),
                            "put the certificate's private key beside it with the same name \
                             and .key; CA certificates go in files named *.crt"
                                .into(),
                        ));
                    }
                    pairs.push(KeyPair {
                        cert: file.clone(),
                        key,
                    });
                } else if ext == Some("key") && !file.with_extension("cert").is_file() {
                    return Err((
                        format!(
                            "client key {} has no certificate {}",
                            file.display(),
                            file.with_extension("cert").display()
                        ),
                        "put the client certificate beside it with the same name and .cert".into(),
                    ));
                }
            }
        }
        if let Some(h) = self.hosts.get(registry) {
            pairs.extend(h.keypairs.iter().cloned());
        }
        Ok(pairs)
    }
}

/// One `registry."HOST"` table (buildkitd.toml's keys); the error names the host and key.
pub(super) fn host_settings(host: &str, table: &serde_json::Value) -> Result<HostSettings, String> {
    let at = |key: &str| format!("\"registry\".{host:?}.{key}");
    let table = table
        .as_object()
        .ok_or_else(|| format!("\"registry\".{host:?} must be an object"))?;
    let strings = |key: &str, v: &serde_json::Value| -> Result<Vec<String>, String> {
        v.as_array()
            .and_then(|a| {
                a.iter()
                    .map(|s| s.as_str().map(str::to_string))
                    .collect::<Option<Vec<_>>>()
            })
            .ok_or_else(|| format!("{} must be an array of strings", at(key)))
    };
    let mut settings = HostSettings::default();
    for (key, value) in table {
        match key.as_str() {
            "mirrors" => {
                for mirror in strings(key, value)? {
                    let rest = mirror.split_once("://").map_or(mirror.as_str(), |(_, r)| r);
                    let scheme = mirror.split_once("://").map(|(s, _)| s);
                    if rest.trim_end_matches('/').contains('/')
                        || scheme.is_some_and(|s| s != "http" && s != "https")
                        || rest.is_empty()
                    {
                        return Err(format!(
                            "{}: {mirror:?} must be host[:port] or http(s)://host[:port] \
                             (mirrors with a path are not supported)",
                            at(key)
                        ));
                    }
                    settings.mirrors.push(mirror);
                }
            }
            "http" | "insecure" => {
                let flag = value
                    .as_bool()
                    .ok_or_else(|| format!("{} must be true or false", at(key)))?;
                if key == "http" {
                    settings.http = flag;
                } else {
                    settings.insecure = flag;
                }
            }
            "ca" => {
                settings.ca = strings(key, value)?
                    .into_iter()
                    .map(PathBuf::from)
                    .collect();
            }
            "keypair" => {
                let pairs = value.as_array().ok_or_else(|| {
                    format!("{} must be an array of {{\"key\", \"cert\"}}", at(key))
                })?;
                for pair in pairs {
                    let field = |name: &str| {
                        pair.get(name)
                            .and_then(|v| v.as_str())
                            .map(PathBuf::from)
                            .ok_or_else(|| {
                                format!("{}: each entry needs \"{name}\" (a path)", at(key))
                            })
                    };
                    settings.keypairs.push(KeyPair {
                        cert: field("cert")?,
                        key: field("key")?,
                    });
                }
            }
            other => {
                return Err(format!(
                    "{}: unknown key (known: mirrors, http, insecure, ca, keypair)",
                    at(other)
                ))
            }
        }
    }
    Ok(settings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_tables_as_buildkitd_has_them() {
        let c = RegistryConfig::default()
            .amend_from_json(
                r#"{"registry-mirrors": ["https://hub-mirror:5000"],
                    "certs-dir": "/x/certs.d",
                    "registry": {
                      "docker.io": {"mirrors": ["first:5000"]},
                      "ghcr.io": {"mirrors": ["m1.lan", "http://m2.lan:5001/"]},
                      "plain.lan:5000": {"http": true},
                      "self.lan": {"insecure": true, "ca": ["/a.crt"],
                                   "keypair": [{"key": "/k.pem", "cert": "/c.pem"}]}}}"#,
            )
            .unwrap();
        let hub = |m: &str, s: Option<&str>| (m.to_string(), s.map(str::to_string));
        assert_eq!(
            c.mirrors_for("docker.io"),
            vec![
                hub("first:5000", None),
                hub("hub-mirror:5000", Some("https"))
            ]
        );
        assert_eq!(
            c.mirrors_for("ghcr.io"),
            vec![hub("m1.lan", None), hub("m2.lan:5001", Some("http"))]
        );
        assert!(c.mirrors_for("quay.io").is_empty());
        assert!(c.plain_http("plain.lan:5000") && c.allows_http("plain.lan:5000"));
        assert!(!c.plain_http("self.lan") && c.skip_verify("self.lan"));
        assert!(!c.skip_verify("plain.lan:5000"));
        assert_eq!(c.certs_dir, PathBuf::from("/x/certs.d"));
        assert!(c
            .ca_files_for("self.lan")
            .ends_with(&[PathBuf::from("/a.crt")]));
        assert_eq!(
            c.client_keypairs("self.lan").unwrap(),
            vec![KeyPair {
                cert: "/c.pem".into(),
                key: "/k.pem".into()
            }]
        );

        for (bad, says) in [
            (r#"{"registry": {"h": {"mirror": []}}}"#, "unknown key"),
            (
                r#"{"registry": {"h": {"mirrors": ["m/path"]}}}"#,
                "with a path",
            ),
            (
                r#"{"registry": {"h": {"mirrors": ["ftp://m"]}}}"#,
                "host[:port]",
            ),
            (r#"{"registry": {"h": {"http": "yes"}}}"#, "true or false"),
            (
                r#"{"registry": {"h": {"keypair": [{"key": "/k"}]}}}"#,
                "\"cert\"",
            ),
            (r#"{"registry": ["h"]}"#, "must be an object"),
        ] {
            let e = RegistryConfig::default().amend_from_json(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn client_certificates_in_certs_d_come_in_pairs() {
        let dir = std::env::temp_dir().join(format!("pallet-certs-d-{}", std::process::id()));
        let host = dir.join("r:5000");
        std::fs::create_dir_all(&host).unwrap();
        let c = RegistryConfig {
            certs_dir: dir.clone(),
            ..RegistryConfig::default()
        };
        std::fs::write(host.join("ca.crt"), "").unwrap();
        std::fs::write(host.join("client.cert"), "").unwrap();
        let (e, hint) = c.client_keypairs("r:5000").unwrap_err();
        assert!(
            e.contains("client.cert has no key") && e.contains("client.key"),
            "{e}"
        );
        assert!(hint.contains(".crt"), "{hint}");
        std::fs::write(host.join("client.key"), "").unwrap();
        let pairs = c.client_keypairs("r:5000").unwrap();
        assert_eq!(pairs.len(), 1);
        assert_eq!(pairs[0].key, host.join("client.key"));
        std::fs::write(host.join("other.key"), "").unwrap();
        let (e, _) = c.client_keypairs("r:5000").unwrap_err();
        assert!(e.contains("other.key has no certificate"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
