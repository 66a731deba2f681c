//! Multi-platform images in the store: a tag whose record carries one image per platform and
//! the OCI image index (over their manifests, each with its platform) stored as a blob. The
//! record's own fields are the default child's (the host's platform when there is one, else
//! the first), so code that knows one platform sees that one; platform-aware code (lowering's
//! `FROM`, `pallet run --platform`, exports, pushes) picks a child with [`for_platform`].

use super::{put_image, StoreError, StoredImage, MEDIA_INDEX, MEDIA_MANIFEST};
use cache::Root;
use graph::Platform;
use serde::{Deserialize, Serialize};

/// The platforms of a multi-platform image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredIndex {
    /// The OCI image index blob (over the children's stored manifests).
    pub digest: String,
    /// One image per platform, in the order built or imported.
    pub children: Vec<StoredImage>,
}

/// The platform an image's config records (`linux/arm64/v8`).
pub fn image_platform(img: &StoredImage) -> Platform {
    let c = &img.config;
    Platform {
        os: c.os.clone(),
        architecture: c.architecture.clone(),
        variant: c.variant.clone().unwrap_or_default(),
    }
}

/// Whether an image for `have` serves a request for `want`: same OS and architecture, and the
/// same variant where both name one (arm64 and arm64/v8 are one platform, as containerd
/// normalises them). An empty OS or architecture (an image from before platforms were recorded)
/// matches anything.
pub fn platform_fits(have: &Platform, want: &Platform) -> bool {
    let variant = |p: &Platform| match (p.architecture.as_str(), p.variant.as_str()) {
        ("arm64", "v8") => String::new(),
        (_, v) => v.to_string(),
    };
    (have.os.is_empty() || have.os == want.os)
        && (have.architecture.is_empty() || have.architecture == want.architecture)
        && (have.variant.is_empty() || want.variant.is_empty() || variant(have) == variant(want))
}

/// The image of `img` for `platform`: the matching child of an index, or `img` itself when it
/// is a single image for that platform; None when it has no such platform.
pub fn for_platform(img: &StoredImage, platform: &Platform) -> Option<StoredImage> {
    match &img.index {
        Some(index) => index
            .children
            .iter()
            .find(|c| platform_fits(&image_platform(c), platform))
            .map(|c| StoredImage {
                name: img.name.clone(),
                ..c.clone()
            }),
        None => platform_fits(&image_platform(img), platform).then(|| img.clone()),
    }
}

/// The image and, for a multi-platform one, each of its children (what the store must keep).
pub fn with_children(img: StoredImage) -> Vec<StoredImage> {
    let children = img
        .index
        .as_ref()
        .map(|i| i.children.clone())
        .unwrap_or_default();
    std::iter::once(img).chain(children).collect()
}

/// The platforms an image has (one for a single image).
pub fn platforms(img: &StoredImage) -> Vec<Platform> {
    match &img.index {
        Some(index) => index.children.iter().map(image_platform).collect(),
        None => vec![image_platform(img)],
    }
}

/// The OCI platform object of a descriptor (`variant` only when there is one).
pub fn platform_json(p: &Platform) -> serde_json::Value {
    let mut v = serde_json::json!({"architecture": p.architecture, "os": p.os});
    if !p.variant.is_empty() {
        v["variant"] = p.variant.clone().into();
    }
    v
}

/// An image index over `(media type, digest, size, platform)` manifests, as bytes (OCI's
/// index, or Docker's manifest list when `media_type` says so), with `annotations` (none for
/// Docker's list, which has no such field).
pub fn index_bytes(
    media_type: &str,
    manifests: &[(String, String, u64, Platform)],
    annotations: &std::collections::BTreeMap<String, String>,
) -> Vec<u8> {
    index_bytes_with(media_type, manifests, &[], annotations)
}

/// A manifest an index lists after its images: an attestation manifest (platform
/// `unknown/unknown`, BuildKit's `vnd.docker.reference.*` annotations naming the image).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexExtra {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    pub platform: Platform,
    pub annotations: std::collections::BTreeMap<String, String>,
}

/// [`index_bytes`] with `extra` manifests after the images (each with its annotations).
pub fn index_bytes_with(
    media_type: &str,
    manifests: &[(String, String, u64, Platform)],
    extra: &[IndexExtra],
    annotations: &std::collections::BTreeMap<String, String>,
) -> Vec<u8> {
    let mut listed: Vec<serde_json::Value> = manifests
        .iter()
        .map(|(media, digest, size, p)| {
            serde_json::json!({
                "mediaType": media,
                "digest": digest,
                "size": size,
                "platform": platform_json(p),
            })
        })
        .collect();
    for e in extra {
        listed.push(serde_json::json!({
            "mediaType": e.media_type,
            "digest": e.digest,
            "size": e.size,
            "platform": platform_json(&e.platform),
            "annotations": e.annotations,
        }));
    }
    // serde_json's map keeps keys sorted: the same children give the same bytes.
    let mut index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media_type,
        "manifests": listed,
    });
    if !annotations.is_empty() {
        index["annotations"] = serde_json::json!(annotations);
    }
    serde_json::to_vec(&index).expect("index serializes")
}

/// Tags `name` with a multi-platform image made of `children` (single images, each with its
/// platform in its config): stores the index blob over their manifests and the record.
pub fn put_index(
    root: &Root,
    name: &str,
    children: Vec<StoredImage>,
    host: &Platform,
) -> Result<StoredImage, StoreError> {
    let image = store_index(root, name, children, host)?;
    put_image(root, &image)?;
    Ok(image)
}

/// The record of a multi-platform image named `name` over `children` (the index blob stored,
/// nothing tagged); its own fields are the child for `host`, else the first child's.
pub fn store_index(
    root: &Root,
    name: &str,
    children: Vec<StoredImage>,
    host: &Platform,
) -> Result<StoredImage, StoreError> {
    if children.is_empty() {
        return Err(StoreError::Layer(
            "a multi-platform image needs at least one image".into(),
        ));
    }
    let mut manifests = Vec::new();
    for child in &children {
        let bytes = root.blobs.read(&child.manifest_digest)?;
        // A pulled image keeps its registry's manifest (maybe Docker's media type).
        let media_type = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|m| m["mediaType"].as_str().map(str::to_string))
            .unwrap_or_else(|| MEDIA_MANIFEST.to_string());
        let size = bytes.len() as u64;
        manifests.push((
            media_type,
            child.manifest_digest.clone(),
            size,
            image_platform(child),
        ));
    }
    let blob = root
        .blobs
        .put_bytes(&index_bytes(MEDIA_INDEX, &manifests, &Default::default()))?;
    let default = children
        .iter()
        .find(|c| platform_fits(&image_platform(c), host))
        .unwrap_or(&children[0])
        .clone();
    let children = children
        .into_iter()
        .map(|c| StoredImage { index: None, ..c })
        .collect();
    let image = StoredImage {
        name: name.to_string(),
        index: Some(StoredIndex {
            digest: blob.digest,
            children,
        }),
        ..default
    };
    Ok(image)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(os: &str, arch: &str, variant: &str) -> Platform {
        Platform {
            os: os.into(),
            architecture: arch.into(),
            variant: variant.into(),
        }
    }

    #[test]
    fn variants_fit_as_containerd_normalises_them() {
        assert!(platform_fits(
            &p("linux", "arm64", "v8"),
            &p("linux", "arm64", "")
        ));
        assert!(platform_fits(
            &p("linux", "arm64", ""),
            &p("linux", "arm64", "v8")
        ));
        assert!(platform_fits(
            &p("linux", "arm", "v7"),
            &p("linux", "arm", "v7")
        ));
        assert!(!platform_fits(
            &p("linux", "arm", "v6"),
            &p("linux", "arm", "v7")
        ));
        assert!(!platform_fits(
            &p("linux", "amd64", ""),
            &p("linux", "arm64", "")
        ));
        assert!(platform_fits(&p("", "", ""), &p("linux", "arm64", "")));
    }

    #[test]
    fn index_bytes_are_stable_and_carry_platforms() {
        let m = vec![
            (
                "m".to_string(),
                "sha256:a".to_string(),
                3,
                p("linux", "amd64", ""),
            ),
            (
                "m".to_string(),
                "sha256:b".to_string(),
                4,
                p("linux", "arm", "v7"),
            ),
        ];
        let none = Default::default();
        let a = index_bytes(MEDIA_INDEX, &m, &none);
        assert_eq!(a, index_bytes(MEDIA_INDEX, &m, &none));
        let v: serde_json::Value = serde_json::from_slice(&a).unwrap();
        assert_eq!(v["manifests"][1]["platform"]["variant"], "v7");
        assert!(v["manifests"][0]["platform"].get("variant").is_none());
    }
}
