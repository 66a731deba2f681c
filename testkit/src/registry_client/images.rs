//! Small images made of deterministic bytes, for the registry client's tests: config and
//! layer blobs, the manifest, an index over several, and push requests for them. The registry
//! does not look inside layers, so they are pseudo-random bytes, not tars.

use registry::manifest::{OCI_INDEX, OCI_MANIFEST};
use registry::{sha256_digest, Descriptor, Platform, PushBlob, PushRequest, Reference};

/// The media type the layers are pushed as.
pub const LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// The media type of the config blob.
pub const CONFIG: &str = "application/vnd.oci.image.config.v1+json";

/// An image: config blob, layer blobs, manifest bytes. The registry does not look inside
/// layers, so they are deterministic pseudo-random bytes.
pub struct Image {
    pub config: Vec<u8>,
    pub layers: Vec<Vec<u8>>,
    pub manifest: Vec<u8>,
    pub digest: String,
}

/// `len` pseudo-random bytes, the same for the same seed.
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

/// The descriptor of `data` as a blob of this media type.
pub fn descriptor(media_type: &str, data: &[u8]) -> Descriptor {
    Descriptor {
        media_type: media_type.into(),
        digest: sha256_digest(data),
        size: data.len() as u64,
        platform: None,
        annotations: None,
    }
}

/// An image for `arch` with one layer of each size; `seed` makes its bytes (and digests).
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
    let digest = sha256_digest(&manifest).to_string();
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

    /// A push of this image to `target`, each blob offering these repositories to mount from.
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

/// An OCI index over these manifest descriptors.
pub fn index(entries: Vec<Descriptor>) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries,
    }))
    .unwrap()
}
