//! OCI annotations a build adds to what it writes out (`--annotation`, buildx's flag):
//! `[TYPE[,TYPE]:]KEY=VALUE`, TYPE `manifest` (the default) or `manifest-descriptor` (on the
//! manifest's descriptor in an OCI layout's index.json). `index` and `index-descriptor` (on the
//! image index of a multi-platform build, and on its descriptor in index.json) need an image
//! index, which a single-platform build does not make: refused there as BuildKit refuses them
//! ("index annotations not supported for single platform export"). A platform qualifier
//! (`manifest[linux/arm64]:`, `manifest-descriptor[...]`) puts an annotation on that
//! platform's manifest only ([`Annotations::for_platform`]), as BuildKit's exporter does; on
//! `index` types the qualifier changes nothing (BuildKit applies those to the index whatever
//! platform they name).

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
    /// `manifest[PLATFORM]:` and `manifest-descriptor[PLATFORM]:` annotations, in the order
    /// given, for [`Annotations::for_platform`].
    pub per_platform: Vec<PlatformAnnotation>,
}

/// An annotation for one platform's manifest (or its descriptor).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformAnnotation {
    /// `os/arch[/variant]`, normalized as `--platform` values are.
    pub platform: String,
    /// On the manifest's descriptor instead of the manifest.
    pub descriptor: bool,
    pub key: String,
    pub value: String,
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
    #[error("invalid --annotation \"{value}\": platform \"{platform}\": {why}")]
    Platform {
        value: String,
        platform: String,
        why: String,
    },
}

impl Annotations {
    pub fn is_empty(&self) -> bool {
        self.manifest.is_empty()
            && self.manifest_descriptor.is_empty()
            && self.index.is_empty()
            && self.index_descriptor.is_empty()
            && self.per_platform.is_empty()
    }

    /// What applies to the manifest of `platform` (`os/arch[/variant]`): the annotations for
    /// every platform, then those qualified with this platform (a later value wins); the
    /// index's as they are; no qualified ones left.
    pub fn for_platform(&self, platform: &str) -> Annotations {
        let mut out = Annotations {
            per_platform: Vec::new(),
            ..self.clone()
        };
        let platform = normalize(platform).unwrap_or_else(|_| platform.to_string());
        for a in self.per_platform.iter().filter(|a| a.platform == platform) {
            let place = match a.descriptor {
                false => &mut out.manifest,
                true => &mut out.manifest_descriptor,
            };
            place.insert(a.key.clone(), a.value.clone());
        }
        out
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
                let (kind, platform) = split_platform(kind, value)?;
                if let Some(platform) = platform {
                    let descriptor = match kind {
                        "manifest" => false,
                        "manifest-descriptor" => true,
                        // BuildKit applies index annotations whatever platform they name.
                        "index" | "index-descriptor" => {
                            if !multi_platform {
                                return Err(AnnotationError::NoIndex(value.clone()));
                            }
                            let place = match kind {
                                "index" => &mut out.index,
                                _ => &mut out.index_descriptor,
                            };
                            place.insert(key.to_string(), val.to_string());
                            continue;
                        }
                        other => {
                            return Err(AnnotationError::UnknownType {
                                value: value.clone(),
                                kind: other.to_string(),
                            })
                        }
                    };
                    out.per_platform.push(PlatformAnnotation {
                        platform,
                        descriptor,
                        key: key.to_string(),
                        value: val.to_string(),
                    });
                    continue;
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

/// `manifest[linux/arm64]` -> (`manifest`, the platform normalized); a kind without a
/// qualifier as it is.
fn split_platform<'a>(
    kind: &'a str,
    value: &str,
) -> Result<(&'a str, Option<String>), AnnotationError> {
    let Some((kind, rest)) = kind.split_once('[') else {
        return Ok((kind, None));
    };
    let platform = rest
        .strip_suffix(']')
        .ok_or_else(|| AnnotationError::Syntax(value.to_string()))?;
    let platform = normalize(platform).map_err(|why| AnnotationError::Platform {
        value: value.to_string(),
        platform: platform.to_string(),
        why,
    })?;
    Ok((kind, Some(platform)))
}

/// A platform as `--platform` reads it (`linux/arm64/v8` is `linux/arm64`), written out.
fn normalize(platform: &str) -> Result<String, String> {
    frontend::lower::platform::parse(platform)
        .map(|p| p.to_string())
        .map_err(|e| e.to_string())
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
            parse(&["manifest[linux/nosucharch/x/y]:a=1"]),
            Err(AnnotationError::Platform { .. })
        ));
        assert!(matches!(
            parse(&["manifest[linux/arm64:a=1"]),
            Err(AnnotationError::Syntax(_))
        ));
        assert!(matches!(
            parse(&["index[linux/arm64]:a=1"]),
            Err(AnnotationError::NoIndex(_))
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

    #[test]
    fn a_platform_qualifier_picks_that_platforms_manifest() {
        let a = Annotations::parse(
            &[
                "manifest:all=1",
                "manifest[linux/arm64/v8]:only=arm",
                "manifest-descriptor[linux/amd64]:d=amd",
                "manifest[linux/arm64]:all=2",
                "index[linux/amd64]:i=x",
            ]
            .map(String::from),
            true,
        )
        .unwrap();
        let arm = a.for_platform("linux/arm64");
        assert_eq!(arm.manifest["all"], "2");
        assert_eq!(arm.manifest["only"], "arm");
        assert!(arm.manifest_descriptor.is_empty());
        assert!(arm.per_platform.is_empty());
        let amd = a.for_platform("linux/amd64");
        assert_eq!(amd.manifest["all"], "1");
        assert!(!amd.manifest.contains_key("only"));
        assert_eq!(amd.manifest_descriptor["d"], "amd");
        // Index annotations go on the index, whatever platform they name.
        assert_eq!(a.index["i"], "x");
        assert_eq!(amd.index["i"], "x");
    }
}
