//! Helpers for this crate's tests (the registry harness itself is `support`, std only): small
//! images made of deterministic bytes, push requests for them, clients configured for a test
//! registry.

#![allow(dead_code)]

use crate::support::Registry;
use registry::manifest::{OCI_INDEX, OCI_MANIFEST};
use registry::{
    sha256_digest, Client, Credential, Descriptor, DockerConfig, Platform, PushBlob, PushRequest,
    Reference, RegistryConfig,
};
use std::path::Path;
use std::time::Duration;

pub const LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const CONFIG: &str = "application/vnd.oci.image.config.v1+json";

/// An image: config blob, layer blobs, manifest bytes. The registry does not look inside
/// layers, so they are deterministic pseudo-random bytes.
pub struct Image {
    pub config: Vec<u8>,
    pub layers: Vec<Vec<u8>>,
    pub manifest: Vec<u8>,
    pub digest: String,
}

pub fn bytes(seed: &str, len: usize) -> Vec<u8> {
    let mut state: u64 = 0xcbf29ce484222325;
    for b in seed.bytes() {
        state = (state ^ u64::from(b)).wrapping_mul(0x100000001b3);
    }
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

pub fn descriptor(media_type: &str, data: &[u8]) -> Descriptor {
    Descriptor {
        media_type: media_type.into(),
        digest: sha256_digest(data),
        size: data.len() as u64,
        platform: None,
        annotations: None,
    }
}

pub fn image(seed: &str, layer_sizes: &[usize], arch: &str) -> Image {
    let layers: Vec<Vec<u8>> = layer_sizes
        .iter()
        .enumerate()
        .map(|(i, n)| bytes(&format!("{seed}-layer-{i}"), *n))
        .collect();
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": arch, "os": "linux",
        "config": {"Env": [format!("SEED={seed}")]},
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| sha256_digest(l)).collect::<Vec<_>>()},
    }))
    .unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(CONFIG, &config),
        "layers": layers.iter().map(|l| descriptor(LAYER, l)).collect::<Vec<_>>(),
    }))
    .unwrap();
    let digest = sha256_digest(&manifest);
    Image {
        config,
        layers,
        manifest,
        digest,
    }
}

impl Image {
    /// (descriptor, bytes) of the config then the layers.
    pub fn blobs(&self) -> Vec<(Descriptor, Vec<u8>)> {
        std::iter::once((descriptor(CONFIG, &self.config), self.config.clone()))
            .chain(
                self.layers
                    .iter()
                    .map(|l| (descriptor(LAYER, l), l.clone())),
            )
            .collect()
    }

    pub fn push_request(&self, target: &Reference, mount_from: &[&str]) -> PushRequest<'static> {
        PushRequest {
            target: target.clone(),
            manifest_media_type: OCI_MANIFEST.into(),
            manifest_bytes: self.manifest.clone(),
            blobs: self
                .blobs()
                .into_iter()
                .map(|(descriptor, data)| PushBlob {
                    descriptor,
                    open: Box::new(move || {
                        Ok(Box::new(std::io::Cursor::new(data.clone()))
                            as Box<dyn std::io::Read + Send>)
                    }),
                    mount_from: mount_from.iter().map(|s| s.to_string()).collect(),
                })
                .collect(),
        }
    }

    /// A descriptor for this image's manifest in an index.
    pub fn index_entry(&self, platform: &str) -> Descriptor {
        Descriptor {
            platform: Platform::parse(platform),
            ..descriptor(OCI_MANIFEST, &self.manifest)
        }
    }
}

pub fn index(entries: Vec<Descriptor>) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries,
    }))
    .unwrap()
}

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
        crate::support::Config::Htpasswd { user, pass }
        | crate::support::Config::Token { user, pass } => {
            Some(Credential::new(user.clone(), pass.clone()))
        }
        _ => None,
    };
    Client::new(config, docker_config(dir, &reg.host(), cred.as_ref()))
}

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
