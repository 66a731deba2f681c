//! Manifests, indexes and descriptors in OCI and Docker v2 schema 2 media types, and platform
//! selection from an index.

use reference::Digest;
use serde::{Deserialize, Serialize};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    /// Checked when the descriptor is read: a manifest with a malformed digest is invalid.
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<std::collections::BTreeMap<String, String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

/// An image manifest (OCI or Docker v2 schema 2: the same shape).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    pub schema_version: u32,
    #[serde(default)]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

/// An image index (OCI) or manifest list (Docker): one manifest per platform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageIndex {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<std::collections::BTreeMap<String, String>>,
}

/// The Accept header for manifests: every manifest and index type pallet reads.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.oci.image.manifest.v1+json, \
    application/vnd.docker.distribution.manifest.v2+json";

/// Index media types (OCI index, Docker manifest list).
pub fn is_index_media_type(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_LIST
}

/// Image manifest media types (OCI, Docker v2 schema 2).
pub fn is_manifest_media_type(media_type: &str) -> bool {
    media_type == OCI_MANIFEST || media_type == DOCKER_MANIFEST
}

/// The media type of manifest bytes from the response's Content-Type, else the JSON's
/// `mediaType`, else its shape (`manifests` = index, `layers` = OCI manifest).
pub fn detect_media_type(content_type: Option<&str>, bytes: &[u8]) -> String {
    let header = content_type
        .map(|c| c.split(';').next().unwrap_or("").trim())
        .filter(|c| is_index_media_type(c) || is_manifest_media_type(c));
    if let Some(h) = header {
        return h.to_string();
    }
    let value: serde_json::Value = serde_json::from_slice(bytes).unwrap_or_default();
    if let Some(m) = value.get("mediaType").and_then(|m| m.as_str()) {
        return m.to_string();
    }
    if value.get("manifests").is_some() {
        OCI_INDEX.to_string()
    } else {
        OCI_MANIFEST.to_string()
    }
}

impl Platform {
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Platform {
        Platform {
            os: os.to_string(),
            architecture: architecture.to_string(),
            variant: variant.filter(|v| !v.is_empty()).map(str::to_string),
        }
    }

    /// `linux/amd64`, `linux/arm64/v8`, `linux/arm/v7` (os defaults to linux for `arm64`).
    pub fn parse(text: &str) -> Option<Platform> {
        let parts: Vec<&str> = text.split('/').collect();
        match parts.as_slice() {
            [arch] if !arch.is_empty() => Some(Platform::new("linux", arch, None)),
            [os, arch] if !os.is_empty() && !arch.is_empty() => Some(Platform::new(os, arch, None)),
            [os, arch, variant] if !os.is_empty() && !arch.is_empty() => {
                Some(Platform::new(os, arch, Some(variant)))
            }
            _ => None,
        }
    }

    /// The platform of the running binary (linux/amd64, linux/arm64/v8, ...).
    pub fn host() -> Platform {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            other => other,
        };
        Platform::new("linux", arch, None).normalized()
    }

    /// containerd's normalization: arch aliases (x86_64 -> amd64, aarch64 -> arm64), arm64
    /// without variant = v8, arm without variant = v7, amd64 variant v1 = none.
    pub fn normalized(&self) -> Platform {
        let os = self.os.to_lowercase();
        let mut variant = self.variant.as_deref().map(str::to_lowercase);
        let arch = match self.architecture.to_lowercase().as_str() {
            "x86_64" | "x86-64" | "amd64" => {
                if variant.as_deref() == Some("v1") {
                    variant = None;
                }
                "amd64".to_string()
            }
            "aarch64" | "arm64" => {
                if variant.is_none() || variant.as_deref() == Some("8") {
                    variant = Some("v8".into());
                }
                "arm64".to_string()
            }
            "armhf" => {
                variant = Some("v7".into());
                "arm".to_string()
            }
            "armel" => {
                variant = Some("v6".into());
                "arm".to_string()
            }
            "arm" => {
                variant = Some(match variant.as_deref() {
                    None | Some("7") => "v7".into(),
                    Some("5") | Some("6") | Some("8") => format!("v{}", variant.unwrap()),
                    Some(v) => v.to_string(),
                });
                "arm".to_string()
            }
            "i386" => "386".to_string(),
            other => other.to_string(),
        };
        Platform {
            os,
            architecture: arch,
            variant,
        }
    }

    /// Same platform after normalization.
    pub fn matches(&self, other: &Platform) -> bool {
        self.normalized() == other.normalized()
    }

    /// Attestation and other non-runnable entries of an index (`unknown/unknown`).
    pub fn is_unknown(&self) -> bool {
        self.os == "unknown" || self.architecture == "unknown"
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 13, defect 8: a digest from a manifest went raw into a blob URL.
    #[test]
    fn manifests_with_malformed_digests_are_refused() {
        let good = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let manifest = |digest: &str| {
            format!(
                r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
                "config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{good}","size":2}},
                "layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{digest}","size":2}}]}}"#
            )
        };
        assert!(serde_json::from_str::<ImageManifest>(&manifest(good)).is_ok());
        for bad in [
            "sha256:../../../../tmp/x",
            "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            "sha256:e3b0",
            "md5:d41d8cd98f00b204e9800998ecf8427e",
            "",
        ] {
            let err = serde_json::from_str::<ImageManifest>(&manifest(bad)).unwrap_err();
            assert!(err.to_string().contains("digest"), "{bad}: {err}");
        }
        let index = r#"{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:/../../etc","size":1}]}"#;
        assert!(serde_json::from_str::<ImageIndex>(index).is_err());
    }

    #[test]
    fn platform_normalization() {
        let arm64 = Platform::parse("linux/arm64").unwrap();
        assert!(arm64.matches(&Platform::parse("linux/arm64/v8").unwrap()));
        assert!(arm64.matches(&Platform::parse("linux/aarch64").unwrap()));
        assert!(!arm64.matches(&Platform::parse("linux/arm64/v9").unwrap()));
        let amd64 = Platform::parse("linux/amd64").unwrap();
        assert!(amd64.matches(&Platform::new("linux", "x86_64", None)));
        assert!(amd64.matches(&Platform::new("linux", "amd64", Some("v1"))));
        assert!(!amd64.matches(&Platform::new("linux", "amd64", Some("v3"))));
        assert!(Platform::parse("linux/arm")
            .unwrap()
            .matches(&Platform::parse("linux/arm/v7").unwrap()));
        assert_eq!(
            Platform::parse("linux/arm64/v8").unwrap().to_string(),
            "linux/arm64/v8"
        );
        assert!(Platform::parse("a/b/c/d").is_none());
        assert!(Platform::new("unknown", "unknown", None).is_unknown());
    }

    #[test]
    fn media_type_detection() {
        assert_eq!(detect_media_type(Some(OCI_INDEX), b"{}"), OCI_INDEX);
        assert_eq!(
            detect_media_type(Some("application/json"), br#"{"manifests": []}"#),
            OCI_INDEX
        );
        assert_eq!(
            detect_media_type(
                None,
                br#"{"mediaType": "application/vnd.docker.distribution.manifest.v2+json"}"#
            ),
            DOCKER_MANIFEST
        );
    }
}
