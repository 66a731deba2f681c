//! pallet's registry client (the `registry` crate) set up for a [test
//! registry](crate::docker_registry): settings with fast retries and no host certificates,
//! credentials in a private docker config.json, references into the registry, and pulling an
//! image back whole. [`images`] makes the images to push.

pub mod images;

use crate::docker_registry::{Config, Registry};
use registry::{Client, Credential, DockerConfig, Platform, Reference, RegistryConfig};
use std::path::Path;
use std::time::Duration;

/// Settings for tests: no /etc/docker/certs.d, fast retries.
pub fn test_config(dir: &Path) -> RegistryConfig {
    RegistryConfig {
        certs_dir: dir.join("no-certs.d"),
        retry: registry::config::RetryPolicy {
            attempts: 5,
            base_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(200),
        },
        ..RegistryConfig::default()
    }
}

/// A docker config.json in `dir` holding `cred` for `host` (or nothing).
pub fn docker_config(dir: &Path, host: &str, cred: Option<&Credential>) -> DockerConfig {
    let path = dir.join("docker-config.json");
    let mut dc = DockerConfig::empty(&path);
    if let Some(c) = cred {
        dc.store(host, c).unwrap();
    }
    DockerConfig::load_file(&path).unwrap()
}

/// A client for `reg`: its CA trusted, its credentials (if it has auth) stored.
pub fn client_for(reg: &Registry, dir: &Path) -> Client {
    let mut config = test_config(dir);
    if let Some(ca) = reg.ca_path() {
        config.ca_files.insert(reg.host(), ca.to_path_buf());
    }
    let cred = match reg.config() {
        Config::Htpasswd { user, pass }
        | Config::Token { user, pass }
        | Config::SelfSigned {
            htpasswd: Some((user, pass)),
        } => Some(Credential::new(user.clone(), pass.clone())),
        _ => None,
    };
    Client::new(config, docker_config(dir, &reg.host(), cred.as_ref()))
}

/// `HOST/REST` of the registry.
pub fn reference(reg: &Registry, rest: &str) -> Reference {
    Reference::parse(&format!("{}/{rest}", reg.host())).unwrap()
}

/// Pulls `r` back: manifest bytes and every blob verified.
pub fn pull_all(client: &Client, r: &Reference, platform: &str) -> registry::ResolvedImage {
    let resolved = registry::resolve(client, r, &Platform::parse(platform).unwrap()).unwrap();
    for layer in &resolved.manifest.layers {
        let mut sink = Vec::new();
        client.fetch_blob(r, layer, &mut sink, &|_| {}).unwrap();
        assert_eq!(sink.len() as u64, layer.size);
    }
    resolved
}
