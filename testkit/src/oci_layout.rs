//! An OCI image layout directory as a test reads it (`index.json`, `blobs/sha256/`): the
//! manifest of its first image, blobs by digest, and each layer's entry paths; and umoci
//! unpacking one.

use serde_json::Value;
use std::io::Read;
use std::path::{Path, PathBuf};

/// An OCI image layout directory.
pub struct Layout {
    dir: PathBuf,
}

impl Layout {
    pub fn new(dir: &Path) -> Layout {
        Layout {
            dir: dir.to_path_buf(),
        }
    }

    /// The file of the blob `digest` (`sha256:...`).
    fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest
            .strip_prefix("sha256:")
            .unwrap_or_else(|| panic!("not a sha256 digest: {digest}"));
        self.dir.join("blobs/sha256").join(hex)
    }

    /// The blob `digest`'s bytes.
    fn blob(&self, digest: &str) -> Vec<u8> {
        let path = self.blob_path(digest);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn json(&self, bytes: &[u8]) -> Value {
        serde_json::from_slice(bytes).unwrap_or_else(|e| panic!("{}: {e}", self.dir.display()))
    }

    /// The blob `digest` read as JSON (a manifest, an index, a config).
    pub fn json_blob(&self, digest: &str) -> Value {
        self.json(&self.blob(digest))
    }

    /// `index.json`.
    pub fn index(&self) -> Value {
        let path = self.dir.join("index.json");
        self.json(&std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
    }

    /// The manifest of the index's first entry.
    pub fn manifest(&self) -> Value {
        let index = self.index();
        let digest = index["manifests"][0]["digest"]
            .as_str()
            .unwrap_or_else(|| panic!("no manifest in {index}"));
        self.json(&self.blob(digest))
    }

    /// The layer descriptors of that manifest, bottom first.
    pub fn layers(&self) -> Vec<Value> {
        self.manifest()["layers"]
            .as_array()
            .expect("manifest layers")
            .clone()
    }

    /// The digest and the blob file of the manifest's last layer.
    pub fn last_layer(&self) -> (String, PathBuf) {
        let layers = self.layers();
        let digest = layers.last().expect("a layer")["digest"]
            .as_str()
            .unwrap()
            .to_string();
        let path = self.blob_path(&digest);
        (digest, path)
    }

    /// The entry paths of each layer (gzip or uncompressed), as the tar names them, bottom
    /// first.
    pub fn layer_paths(&self) -> Vec<Vec<String>> {
        self.layer_entries()
            .into_iter()
            .map(|l| l.into_iter().map(|e| e.path).collect())
            .collect()
    }

    /// Each layer's entries (path, owner, mode), bottom first.
    pub fn layer_entries(&self) -> Vec<Vec<LayerEntry>> {
        self.layers()
            .iter()
            .map(|l| {
                let data = self.blob(l["digest"].as_str().unwrap());
                let mut raw = Vec::new();
                if l["mediaType"].as_str().unwrap().ends_with("gzip") {
                    flate2::read::GzDecoder::new(&data[..])
                        .read_to_end(&mut raw)
                        .unwrap();
                } else {
                    raw = data;
                }
                tar::Archive::new(&raw[..])
                    .entries()
                    .unwrap()
                    .map(|e| {
                        let e = e.unwrap();
                        let h = e.header();
                        LayerEntry {
                            path: e.path().unwrap().to_string_lossy().into_owned(),
                            uid: h.uid().unwrap(),
                            gid: h.gid().unwrap(),
                            mode: h.mode().unwrap(),
                        }
                    })
                    .collect()
            })
            .collect()
    }
}

/// One entry of a layer tar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerEntry {
    pub path: String,
    pub uid: u64,
    pub gid: u64,
    pub mode: u32,
}

/// `umoci unpack --image LAYOUT:TAG BUNDLE`, which must succeed (umoci is a reader no one here
/// wrote); returns the bundle's `rootfs`.
pub fn umoci_unpack(layout: &Path, tag: &str, bundle: &Path) -> PathBuf {
    crate::run::ok(
        std::process::Command::new("umoci")
            .args(["unpack", "--image", &format!("{}:{tag}", layout.display())])
            .arg(bundle),
    );
    bundle.join("rootfs")
}
