//! OCI annotations a build adds to what it writes out (`--annotation`, buildx's flag):
//! `[TYPE[,TYPE]:]KEY=VALUE`, TYPE `manifest` (the default) or `manifest-descriptor` (on the
//! manifest's descriptor in an OCI layout's index.json). `index` and `index-descriptor` (on the
//! image index of a multi-platform build, and on its descriptor in index.json) need an image
//! index, which a single-platform build does not make: refused there as BuildKit refuses them
//! ("index annotations not supported for single platform export"). A platform qualifier
//! (`manifest[linux/arm64]:`) is not taken yet.

use std::collections::BTreeMap;

/// Annotations by where they go.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Annotations {
    /// On the image manifest (changes its digest).
    pub manifest: BTreeMap<String, String>,
    /// On the manifest's descriptor in index.json (OCI layout outputs).
    pub manifest_descriptor: BTreeMap<String, String>,
    /// On the image index of a multi-platform build (changes its digest).
    pub index: BTreeMap<String, String>,
    /// On the image index's descriptor in index.json (OCI layout outputs).
    pub index_descriptor: BTreeMap<String, String>,
}

/// An `--annotation` value pallet cannot apply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnnotationError {
    #[error("invalid --annotation \"{0}\": write [TYPE:]KEY=VALUE")]
    Syntax(String),
    #[error("invalid --annotation \"{value}\": unknown type \"{kind}\" (manifest, manifest-descriptor, index, index-descriptor)")]
    UnknownType { value: String, kind: String },
    #[error(
        "--annotation \"{0}\": index annotations not supported for single platform export \
         (there is no image index to put them on)"
    )]
    NoIndex(String),
    #[error(
        "--annotation \"{0}\": annotations for one platform ([PLATFORM]) are not supported yet; \
         drop the [PLATFORM] to annotate every platform's manifest"
    )]
    Platform(String),
}

impl Annotations {
    pub fn is_empty(&self) -> bool {
        self.manifest.is_empty()
            && self.manifest_descriptor.is_empty()
            && self.index.is_empty()
            && self.index_descriptor.is_empty()
    }

    /// Parses every `--annotation` value (a later one wins for the same key and place), as
    /// buildx does: the key is what comes before the first `=`; a colon in it separates the
    /// types (`manifest,manifest-descriptor:KEY`). `multi_platform`: the build makes an image
    /// index (else `index` types are refused).
    pub fn parse(values: &[String], multi_platform: bool) -> Result<Annotations, AnnotationError> {
        let mut out = Annotations::default();
        for value in values {
            let (key, val) = value
                .split_once('=')
                .ok_or_else(|| AnnotationError::Syntax(value.clone()))?;
            let (kinds, key) = key.split_once(':').unwrap_or(("", key));
            if key.is_empty() {
                return Err(AnnotationError::Syntax(value.clone()));
            }
            for kind in kinds.split(',') {
                if kind.contains('[') {
                    return Err(AnnotationError::Platform(value.clone()));
                }
                let place = match kind {
                    "" | "manifest" => &mut out.manifest,
                    "manifest-descriptor" => &mut out.manifest_descriptor,
                    "index" | "index-descriptor" if !multi_platform => {
                        return Err(AnnotationError::NoIndex(value.clone()))
                    }
                    "index" => &mut out.index,
                    "index-descriptor" => &mut out.index_descriptor,
                    other => {
                        return Err(AnnotationError::UnknownType {
                            value: value.clone(),
                            kind: other.to_string(),
                        })
                    }
                };
                place.insert(key.to_string(), val.to_string());
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(values: &[&str]) -> Result<Annotations, AnnotationError> {
        Annotations::parse(
            &values.iter().map(|v| v.to_string()).collect::<Vec<_>>(),
            false,
        )
    }

    #[test]
    fn types_default_to_the_manifest() {
        let a = parse(&[
            "org.opencontainers.image.title=app",
            "manifest:a=1",
            "manifest,manifest-descriptor:b=2",
            "manifest-descriptor:c=x=y",
            "manifest:org.example:colon=3",
        ])
        .unwrap();
        assert_eq!(a.manifest["org.opencontainers.image.title"], "app");
        assert_eq!(a.manifest["a"], "1");
        assert_eq!(a.manifest["b"], "2");
        assert_eq!(a.manifest_descriptor["b"], "2");
        assert_eq!(a.manifest_descriptor["c"], "x=y");
        assert_eq!(a.manifest["org.example:colon"], "3");
    }

    #[test]
    fn what_needs_an_index_or_a_platform_is_refused() {
        assert!(matches!(
            parse(&["index:a=1"]),
            Err(AnnotationError::NoIndex(_))
        ));
        assert!(matches!(
            parse(&["manifest[linux/arm64]:a=1"]),
            Err(AnnotationError::Platform(_))
        ));
        assert!(matches!(
            parse(&["novalue"]),
            Err(AnnotationError::Syntax(_))
        ));
        assert!(matches!(parse(&["=v"]), Err(AnnotationError::Syntax(_))));
        let multi = Annotations::parse(&["index,index-descriptor:a=1".to_string()], true).unwrap();
        assert_eq!(multi.index["a"], "1");
        assert_eq!(multi.index_descriptor["a"], "1");
        assert!(matches!(
            parse(&["org.example:x=1"]),
            Err(AnnotationError::UnknownType { .. })
        ));
    }
}
