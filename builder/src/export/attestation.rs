//! Attestation manifests, stored as BuildKit stores them (its
//! docs/attestations/attestation-storage.md): beside each image manifest of an index, one
//! manifest for platform `unknown/unknown` whose descriptor carries
//! `vnd.docker.reference.type=attestation-manifest` and `vnd.docker.reference.digest=<the
//! image manifest's digest>`; its layers are in-toto statements
//! (`application/vnd.in-toto+json`, annotated with their predicate type) whose subject is that
//! image manifest, and its config an image config for `unknown/unknown` whose diff ids are the
//! statements' digests.
//!
//! The predicates come from the store ([`Attestation`], made by the build); a statement is
//! made here for each manifest an export or push writes, since the subject is the digest of
//! that manifest (its compression and media types change it). Knows manifests and blobs, not
//! builds.

use super::docker::Manifest;
use crate::store::{
    Attestation, Descriptor, IndexExtra, ManifestBlobs, StoreError, StoredImage, MEDIA_CONFIG,
    MEDIA_MANIFEST,
};
use cache::Root;
use graph::Platform;
use std::collections::BTreeMap;

/// The media type of an in-toto statement layer.
pub const MEDIA_IN_TOTO: &str = "application/vnd.in-toto+json";
/// The statement type BuildKit writes for every predicate.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// The annotation key whose value says what kind of reference a descriptor is.
pub const REFERENCE_TYPE: &str = "vnd.docker.reference.type";
/// The annotation key naming the image manifest an attestation manifest is about.
pub const REFERENCE_DIGEST: &str = "vnd.docker.reference.digest";
/// [`REFERENCE_TYPE`]'s value for an attestation manifest.
pub const ATTESTATION_MANIFEST: &str = "attestation-manifest";
/// The annotation key of a statement layer naming its predicate type.
pub const PREDICATE_TYPE: &str = "in-toto.io/predicate-type";

/// The image manifest an attestation manifest is about.
pub struct Subject<'a> {
    /// The manifest's digest (`sha256:...`), exactly as written or pushed.
    pub digest: &'a str,
    /// The image's names (normalized references with a tag); each becomes a subject name.
    pub names: &'a [String],
    pub platform: &'a Platform,
}

/// An attestation manifest in the store: its blobs, and its entry for the index.
pub struct AttestationManifest {
    pub blobs: ManifestBlobs,
    pub entry: IndexExtra,
}

/// Whether `image` (or one of its platforms) has attestations.
pub fn has_attestations(image: &StoredImage) -> bool {
    !image.attestations.is_empty()
        || image
            .index
            .as_ref()
            .is_some_and(|i| i.children.iter().any(|c| !c.attestations.is_empty()))
}

/// The in-toto statement of `att` about `subject`, as bytes.
pub fn statement(att: &Attestation, subject: &Subject) -> Result<Vec<u8>, StoreError> {
    let predicate: serde_json::Value =
        serde_json::from_str(&att.predicate).map_err(|source| StoreError::Json {
            what: "an attestation's predicate in the store is not valid JSON".into(),
            source,
        })?;
    let hex = subject.digest.trim_start_matches("sha256:");
    let mut subjects: Vec<serde_json::Value> = subject
        .names
        .iter()
        .filter_map(|n| image_purl(n, Some(subject.platform)))
        .map(|name| serde_json::json!({"name": name, "digest": {"sha256": hex}}))
        .collect();
    if subjects.is_empty() {
        // in-toto's name for a subject that has none.
        subjects.push(serde_json::json!({"name": "_", "digest": {"sha256": hex}}));
    }
    let statement = serde_json::json!({
        "_type": STATEMENT_TYPE,
        "predicateType": att.predicate_type,
        "subject": subjects,
        "predicate": predicate,
    });
    Ok(serde_json::to_vec(&statement).expect("a statement serializes"))
}

/// Stores the attestation manifest for `subject` (its statements, config and manifest).
pub fn store_attestations(
    root: &Root,
    atts: &[Attestation],
    subject: &Subject,
) -> Result<AttestationManifest, StoreError> {
    let mut layers = Vec::new();
    let mut layer_blobs = Vec::new();
    for att in atts {
        let blob = root.blobs.put_bytes(&statement(att, subject)?)?;
        let mut d = Descriptor::new(MEDIA_IN_TOTO, &blob);
        d.annotations
            .insert(PREDICATE_TYPE.into(), att.predicate_type.clone());
        layers.push(d);
        layer_blobs.push(blob);
    }
    // BuildKit's attestationsConfig: an image config for unknown/unknown whose diff ids are the
    // statements (uncompressed: their own digests).
    let config = serde_json::json!({
        "architecture": "unknown",
        "os": "unknown",
        "config": {},
        "rootfs": {
            "type": "layers",
            "diff_ids": layer_blobs.iter().map(|b| b.digest.clone()).collect::<Vec<_>>(),
        },
    });
    let config_blob = root
        .blobs
        .put_bytes(&serde_json::to_vec(&config).expect("a config serializes"))?;
    let manifest = Manifest {
        schema_version: 2,
        media_type: MEDIA_MANIFEST,
        config: Descriptor::new(MEDIA_CONFIG, &config_blob),
        layers,
        annotations: BTreeMap::new(),
    };
    let manifest_blob = root
        .blobs
        .put_bytes(&serde_json::to_vec(&manifest).expect("a manifest serializes"))?;
    let entry = IndexExtra {
        media_type: MEDIA_MANIFEST.to_string(),
        digest: manifest_blob.digest.clone(),
        size: manifest_blob.size,
        platform: unknown_platform(),
        annotations: BTreeMap::from([
            (REFERENCE_TYPE.to_string(), ATTESTATION_MANIFEST.to_string()),
            (REFERENCE_DIGEST.to_string(), subject.digest.to_string()),
        ]),
    };
    Ok(AttestationManifest {
        blobs: ManifestBlobs {
            manifest: manifest_blob,
            config: config_blob,
            layers: layer_blobs,
        },
        entry,
    })
}

/// The platform of an attestation manifest.
pub fn unknown_platform() -> Platform {
    Platform {
        os: "unknown".into(),
        architecture: "unknown".into(),
        variant: String::new(),
    }
}

/// An image reference as a package URL, as BuildKit's `purl.RefToPURL` writes it:
/// `pkg:docker/busybox@latest?platform=linux%2Famd64`, `pkg:docker/ghcr.io/o/app?digest=...`.
/// None when `reference` does not parse.
pub fn image_purl(reference: &str, platform: Option<&Platform>) -> Option<String> {
    purl("docker", reference, platform)
}

/// [`image_purl`] with the package type (`docker`, or `oci` for an OCI layout's image).
pub fn purl(kind: &str, reference: &str, platform: Option<&Platform>) -> Option<String> {
    let r = registry::Reference::parse(reference).ok()?;
    let familiar = registry::Reference::parse(&r.name()).ok()?.familiar();
    let mut qualifiers: Vec<(&str, String)> = Vec::new();
    if let Some(d) = r.digest() {
        qualifiers.push(("digest", d.to_string()));
    }
    // TagNameOnly: a name alone is `latest`; a digest alone has no version.
    let version = match (r.tag(), r.digest()) {
        (Some(t), _) => Some(t.to_string()),
        (None, None) => Some("latest".to_string()),
        (None, Some(_)) => None,
    };
    if let Some(p) = platform {
        qualifiers.push(("platform", p.to_string()));
    }
    let mut out = format!("pkg:{kind}/");
    let segments: Vec<String> = familiar.split('/').map(registry::query_escape).collect();
    out.push_str(&segments.join("/"));
    if let Some(v) = version {
        out.push('@');
        out.push_str(&registry::query_escape(&v));
    }
    qualifiers.sort();
    for (i, (k, v)) in qualifiers.iter().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        out.push_str(&format!("{k}={}", registry::query_escape(v)));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn amd64() -> Platform {
        Platform {
            os: "linux".into(),
            architecture: "amd64".into(),
            variant: String::new(),
        }
    }

    #[test]
    fn purls_are_buildkits() {
        assert_eq!(
            image_purl("docker.io/library/busybox:latest", Some(&amd64())).unwrap(),
            "pkg:docker/busybox@latest?platform=linux%2Famd64"
        );
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            image_purl(&format!("ghcr.io/o/app@{d}"), None).unwrap(),
            format!(
                "pkg:docker/ghcr.io/o/app?digest=sha256%3A{}",
                "a".repeat(64)
            )
        );
        assert_eq!(
            image_purl("127.0.0.1:5000/x/y:1", None).unwrap(),
            "pkg:docker/127.0.0.1%3A5000/x/y@1"
        );
    }

    #[test]
    fn a_statement_names_its_subject() {
        let att = Attestation {
            predicate_type: "https://slsa.dev/provenance/v1".into(),
            predicate: r#"{"a":1}"#.into(),
        };
        let d = format!("sha256:{}", "b".repeat(64));
        let names = vec!["docker.io/library/app:1".to_string()];
        let bytes = statement(
            &att,
            &Subject {
                digest: &d,
                names: &names,
                platform: &amd64(),
            },
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["_type"], STATEMENT_TYPE);
        assert_eq!(v["subject"][0]["digest"]["sha256"], "b".repeat(64));
        assert_eq!(
            v["subject"][0]["name"],
            "pkg:docker/app@1?platform=linux%2Famd64"
        );
        assert_eq!(v["predicate"]["a"], 1);
        let bad = Attestation {
            predicate: "{".into(),
            ..att
        };
        assert!(statement(
            &bad,
            &Subject {
                digest: &d,
                names: &[],
                platform: &amd64()
            }
        )
        .is_err());
    }
}
