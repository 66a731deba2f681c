//! `--cache-to` and `--cache-from`, with buildx's syntax and meanings:
//! `type=registry,ref=REF[,mode=min|max][,compression=gzip|zstd][,compression-level=N]
//! [,oci-mediatypes=true|false][,ignore-error=true][,mounts=true]`, `type=local,dest=DIR` /
//! `type=local,src=DIR`, `--cache-to type=inline` (in the pushed image's manifest), and a bare
//! `REF` for `--cache-from type=registry,ref=REF` (a cache, or an image with an inline one).

use registry::Reference;
use std::path::PathBuf;

/// Where a cache is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A tag in a registry repository.
    Registry(Reference),
    /// An OCI image layout directory.
    Local(PathBuf),
    /// In the pushed image's manifest (`--cache-to type=inline`; read back with
    /// `--cache-from IMAGE`).
    Inline,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Registry(r) => write!(f, "type=registry ref={}", r.familiar()),
            Location::Local(d) => write!(f, "type=local dir={}", d.display()),
            Location::Inline => f.write_str("type=inline"),
        }
    }
}

/// Which steps an export covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// The steps whose layers make the exported image (buildx's default).
    #[default]
    Min,
    /// Every step of every stage that ran.
    Max,
}

/// One `--cache-from`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheFrom {
    pub location: Location,
}

/// One `--cache-to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheTo {
    pub location: Location,
    pub mode: Mode,
    pub compression: codec::Compression,
    /// OCI media types for the manifest and layers (buildx's default); false: Docker's.
    pub oci_media_types: bool,
    /// A failed export is a warning, not a failed build.
    pub ignore_error: bool,
    /// Export the contents of cache mounts (`mounts=true`): accepted, reserved in the format;
    /// the packer is not wired in yet.
    pub mounts: bool,
}

/// A `--cache-to`/`--cache-from` value that cannot be used: what, and what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {flag} \"{spec}\": {problem}")]
pub struct CacheSpecError {
    pub flag: &'static str,
    pub spec: String,
    pub problem: String,
}

fn fields(spec: &str) -> Vec<(String, String)> {
    spec.split(',')
        .filter(|f| !f.is_empty())
        .map(|f| match f.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), v.trim().to_string()),
            None => (f.trim().to_ascii_lowercase(), String::new()),
        })
        .collect()
}

fn boolean(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

fn reference(r: &str) -> Result<Reference, String> {
    Reference::parse_docker_ref(r).map_err(|e| format!("ref {r} is not an image reference: {e}"))
}

impl CacheFrom {
    pub fn parse(spec: &str) -> Result<CacheFrom, CacheSpecError> {
        let err = |problem: String| CacheSpecError {
            flag: "--cache-from",
            spec: spec.to_string(),
            problem,
        };
        if !spec.contains('=') {
            // buildx: a bare reference is a registry cache.
            return Ok(CacheFrom {
                location: Location::Registry(reference(spec).map_err(err)?),
            });
        }
        let mut kind = None;
        let (mut r, mut src) = (None, None);
        for (k, v) in fields(spec) {
            match k.as_str() {
                "type" => kind = Some(v),
                "ref" => r = Some(v),
                "src" => src = Some(v),
                // buildx options that change nothing for an import.
                "digest" | "tag" => {}
                _ => return Err(err(format!("unknown option {k}"))),
            }
        }
        let location = match kind.as_deref().unwrap_or("registry") {
            "registry" => Location::Registry(
                reference(&r.ok_or_else(|| err("type=registry needs ref=REF".into()))?)
                    .map_err(err)?,
            ),
            "local" => Location::Local(PathBuf::from(
                src.ok_or_else(|| err("type=local needs src=DIR".into()))?,
            )),
            "inline" => {
                return Err(err(
                    "an inline cache is read from its image: write --cache-from IMAGE".into(),
                ))
            }
            other => {
                return Err(err(format!(
                    "unknown type {other}: use type=registry,ref=REF or type=local,src=DIR"
                )))
            }
        };
        Ok(CacheFrom { location })
    }
}

impl CacheTo {
    pub fn parse(spec: &str) -> Result<CacheTo, CacheSpecError> {
        let err = |problem: String| CacheSpecError {
            flag: "--cache-to",
            spec: spec.to_string(),
            problem,
        };
        let mut kind = None;
        let (mut r, mut dest) = (None, None);
        let mut mode = Mode::Min;
        let mut algorithm = "gzip".to_string();
        let mut level: Option<String> = None;
        let (mut oci_media_types, mut ignore_error, mut mounts) = (true, false, false);
        let flag = |k: &str, v: &str| {
            boolean(v).ok_or_else(|| err(format!("{k}={v}: expected true or false")))
        };
        for (k, v) in fields(spec) {
            match k.as_str() {
                "type" => kind = Some(v),
                "ref" => r = Some(v),
                "dest" => dest = Some(v),
                "mode" => {
                    mode = match v.as_str() {
                        "min" => Mode::Min,
                        "max" => Mode::Max,
                        _ => return Err(err(format!("mode={v}: expected min or max"))),
                    }
                }
                "compression" => algorithm = v,
                "compression-level" => level = Some(v),
                "oci-mediatypes" => oci_media_types = flag(&k, &v)?,
                "ignore-error" => ignore_error = flag(&k, &v)?,
                "mounts" => mounts = flag(&k, &v)?,
                // buildx options with no effect here: pallet's cache is always an image
                // manifest, and compressing again is never needed.
                "image-manifest" | "force-compression" => {
                    flag(&k, &v)?;
                }
                _ => return Err(err(format!("unknown option {k}"))),
            }
        }
        let compression = codec::Compression::parse(&match &level {
            Some(l) => format!("{algorithm},level={l}"),
            None => algorithm.clone(),
        })
        .map_err(|e| err(e.to_string()))?;
        let location = match kind.as_deref() {
            Some("registry") => Location::Registry(
                reference(&r.ok_or_else(|| err("type=registry needs ref=REF".into()))?)
                    .map_err(err)?,
            ),
            Some("local") => Location::Local(PathBuf::from(
                dest.ok_or_else(|| err("type=local needs dest=DIR".into()))?,
            )),
            Some("inline") => Location::Inline,
            Some(other) => {
                return Err(err(format!(
                    "unknown type {other}: use type=registry,ref=REF or type=local,dest=DIR"
                )))
            }
            None => {
                return Err(err(
                    "no type: write type=registry,ref=REF or type=local,dest=DIR".into(),
                ))
            }
        };
        Ok(CacheTo {
            location,
            mode,
            compression,
            oci_media_types,
            ignore_error,
            mounts,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_to_with_every_option() {
        let t = CacheTo::parse(
            "type=registry,ref=localhost:5000/app:cache,mode=max,compression=zstd,\
             oci-mediatypes=false,ignore-error=true,mounts=true",
        )
        .unwrap();
        assert_eq!(t.mode, Mode::Max);
        assert_eq!(t.compression.algorithm(), "zstd");
        assert!(!t.oci_media_types && t.ignore_error && t.mounts);
        match t.location {
            Location::Registry(r) => assert_eq!(r.to_string(), "localhost:5000/app:cache"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn local_and_bare_references() {
        let t = CacheTo::parse("type=local,dest=/tmp/c").unwrap();
        assert_eq!(t.location, Location::Local("/tmp/c".into()));
        assert_eq!(t.mode, Mode::Min);
        assert_eq!(t.compression, codec::Compression::default());
        let f = CacheFrom::parse("type=local,src=/tmp/c").unwrap();
        assert_eq!(f.location, Location::Local("/tmp/c".into()));
        let f = CacheFrom::parse("localhost:5000/app:cache").unwrap();
        assert!(matches!(f.location, Location::Registry(_)));
    }

    #[test]
    fn mistakes_say_what_to_write() {
        let e = CacheTo::parse("type=registry,mode=max").unwrap_err();
        assert!(e.to_string().contains("needs ref=REF"), "{e}");
        let e = CacheTo::parse("type=local,dest=/x,mode=all").unwrap_err();
        assert!(e.to_string().contains("expected min or max"), "{e}");
        let e = CacheTo::parse("type=s3,bucket=x").unwrap_err();
        assert!(e.to_string().contains("unknown"), "{e}");
        let e = CacheFrom::parse("type=local").unwrap_err();
        assert!(e.to_string().contains("src=DIR"), "{e}");
        assert_eq!(
            CacheTo::parse("type=inline").unwrap().location,
            Location::Inline
        );
        let e = CacheFrom::parse("type=inline").unwrap_err();
        assert!(e.to_string().contains("--cache-from IMAGE"), "{e}");
    }
}
