//! `--output` values with buildx's meaning, parsed into what the exporters need.
//!
//! - `type=docker,dest=FILE[,name=REF[,REF...]][,oci-mediatypes=BOOL][,compression=C]`: the tar
//!   `docker load` reads (Docker media types unless `oci-mediatypes=true`).
//! - `type=oci,dest=PATH[,tar=BOOL][,name=...][,oci-mediatypes=BOOL][,compression=C]`: an OCI
//!   image layout as a tar, or a directory with `tar=false` (OCI media types unless
//!   `oci-mediatypes=false`).
//! - `type=local,dest=DIR`, or a bare `DIR`: the final file tree.
//! - `type=tar,dest=FILE`, or a bare `-` (standard output): the final file tree as a tar.
//! - `type=image[,name=REF[,REF...]][,push=BOOL][,oci-mediatypes=BOOL]`: names in the local
//!   store, pushed with `push=true`; `type=registry` is `type=image,push=true` (as in buildx).
//!
//! `dest=-` writes a tar to standard output. Fields are comma-separated CSV, so a list of names
//! is quoted: `type=docker,dest=x.tar,"name=app:1,app:latest"`. `compression` is `gzip` (the
//! default), `zstd` or `uncompressed`, with `compression-level=N` as in buildx. This module only parses; `build::write_output` and `export` write.

use crate::export::docker::{Compression, ImageOptions, MediaTypes};
use crate::export::push::PushOptions;
use codec::CompressionSpecError;
use registry::{Reference, ReferenceError};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputSpec {
    /// An OCI image layout, as a tar file (`dest` `-` is standard output) or a directory.
    Oci {
        dest: PathBuf,
        tar: bool,
        image: ImageOptions,
    },
    /// A `docker load` tar: an OCI layout plus `manifest.json` and `repositories`.
    Docker { dest: PathBuf, image: ImageOptions },
    /// The image's file tree, all layers applied, in a directory.
    Local { dest: PathBuf },
    /// The same tree as a tar file (`dest` `-` is standard output).
    Tar { dest: PathBuf },
    /// Names in the local store (none: the build's `-t` names), pushed when `push`.
    Image {
        names: Vec<String>,
        push: bool,
        media_types: MediaTypes,
        compression: Compression,
    },
}

/// Why an `--output` value cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum OutputSpecError {
    #[error("invalid --output \"\": give type=docker|oci|local|tar,dest=PATH, or a directory")]
    Empty,
    /// A buildx output type pallet does not have yet.
    #[error(
        "--output type={0} is not built yet (type=docker, type=oci, type=local and type=tar are)"
    )]
    NotBuilt(String),
    /// The value `spec`, and what is wrong with it.
    #[error("invalid --output \"{spec}\": {problem}")]
    Invalid {
        spec: String,
        #[source]
        problem: OutputProblem,
    },
}

/// What is wrong with an `--output` value.
#[derive(Debug, thiserror::Error)]
pub enum OutputProblem {
    #[error("a double quote is not closed")]
    UnclosedQuote,
    #[error("\"{0}\" is not key=value")]
    NotKeyValue(String),
    #[error("give type=docker, type=oci, type=local or type=tar (or a bare DIR for type=local)")]
    NoType,
    #[error("unknown type \"{0}\" (docker, oci, local or tar)")]
    UnknownType(String),
    /// `key` is not one of `takes`, the keys of `type=kind`.
    #[error("type={kind} has no key \"{key}\" (it takes {})", .takes.join(", "))]
    UnknownKey {
        kind: String,
        key: String,
        takes: &'static [&'static str],
    },
    #[error("{key} must be true or false, not \"{value}\"")]
    NotBool { key: String, value: String },
    #[error("name={name}: {source}")]
    BadName {
        name: String,
        #[source]
        source: ReferenceError,
    },
    #[error("name={0} has a digest; archives name images by tag (name=app:1.0)")]
    NameDigest(String),
    #[error("{0}")]
    Compression(#[source] CompressionSpecError),
    /// `type=kind` has no `dest`; `needs` says which one it takes.
    #[error("type={kind} needs {needs}")]
    NoDest { kind: String, needs: &'static str },
    #[error(
        "tar=false writes a directory, which cannot go to standard output (dest=-); give dest=DIR"
    )]
    DirToStdout,
    #[error(
        "type=docker is always a tar (for docker load); use type=oci,tar=false for a directory"
    )]
    DockerNotTar,
    #[error(
        "type=local writes a directory, not standard output; give dest=DIR (or type=tar,dest=- \
         for the tree as a tar on standard output)"
    )]
    LocalToStdout,
}

/// True for the `dest` that means standard output.
pub fn is_stdout(dest: &Path) -> bool {
    dest.as_os_str() == "-"
}

pub fn parse_output(spec: &str) -> Result<OutputSpec, OutputSpecError> {
    let invalid = |problem| OutputSpecError::Invalid {
        spec: spec.to_string(),
        problem,
    };
    let fields = split_fields(spec).map_err(invalid)?;
    if let Some(shorthand) = shorthand(&fields) {
        return shorthand;
    }
    let pairs = key_values(&fields).map_err(invalid)?;
    let kind = match pairs.iter().rev().find(|(k, _)| *k == "type") {
        Some((_, t)) => *t,
        None => return Err(invalid(OutputProblem::NoType)),
    };
    let keys = match kind {
        "cacheonly" => return Err(OutputSpecError::NotBuilt(kind.to_string())),
        kind => keys_of(kind).map_err(invalid)?,
    };
    let values = Values::read(kind, keys, &pairs).map_err(invalid)?;
    output(kind, values).map_err(invalid)
}

/// Splits on commas outside double quotes and drops the quotes (buildx reads `--output` as CSV).
fn split_fields(spec: &str) -> Result<Vec<String>, OutputProblem> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    for c in spec.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(String::new()),
            c => fields.last_mut().expect("one field").push(c),
        }
    }
    if quoted {
        return Err(OutputProblem::UnclosedQuote);
    }
    Ok(fields)
}

/// A bare `DIR` (type=local) or `-` (type=tar on standard output, as buildx reads it); None
/// when the value has keys.
fn shorthand(fields: &[String]) -> Option<Result<OutputSpec, OutputSpecError>> {
    let [only] = fields else {
        return None;
    };
    if only.is_empty() {
        return Some(Err(OutputSpecError::Empty));
    }
    if only.contains('=') {
        return None;
    }
    if only == "-" {
        return Some(Ok(OutputSpec::Tar { dest: only.into() }));
    }
    Some(Ok(OutputSpec::Local { dest: only.into() }))
}

fn key_values(fields: &[String]) -> Result<Vec<(&str, &str)>, OutputProblem> {
    let mut pairs = Vec::new();
    for field in fields {
        let (k, v) = field
            .split_once('=')
            .ok_or_else(|| OutputProblem::NotKeyValue(field.clone()))?;
        pairs.push((k.trim(), v));
    }
    Ok(pairs)
}

/// The keys `type=kind` takes (besides `type`).
fn keys_of(kind: &str) -> Result<&'static [&'static str], OutputProblem> {
    match kind {
        "oci" | "docker" => Ok(&[
            "dest",
            "tar",
            "name",
            "oci-mediatypes",
            "compression",
            "compression-level",
        ]),
        "local" | "tar" => Ok(&["dest"]),
        "image" | "registry" => Ok(&[
            "name",
            "push",
            "oci-mediatypes",
            "compression",
            "compression-level",
        ]),
        other => Err(OutputProblem::UnknownType(other.to_string())),
    }
}

/// The keys of a `type=KIND,...` value, read over buildx's defaults for KIND.
struct Values {
    dest: Option<PathBuf>,
    tar: bool,
    names: Vec<String>,
    /// OCI media types (else Docker's).
    oci_types: bool,
    compression: Compression,
    push: bool,
}

impl Values {
    fn read(
        kind: &str,
        keys: &'static [&'static str],
        pairs: &[(&str, &str)],
    ) -> Result<Values, OutputProblem> {
        let mut v = Values {
            dest: None,
            tar: true,
            names: Vec::new(),
            // OCI media types by default for images the registry gets (the rule),
            // Docker's for type=docker (what docker load expects).
            oci_types: matches!(kind, "oci" | "image" | "registry"),
            compression: Compression::Gzip,
            push: kind == "registry",
        };
        let mut algorithm: Option<&str> = None;
        let mut level: Option<&str> = None;
        for &(k, value) in pairs {
            match k {
                "type" => {}
                _ if !keys.contains(&k) => {
                    return Err(OutputProblem::UnknownKey {
                        kind: kind.to_string(),
                        key: k.to_string(),
                        takes: keys,
                    })
                }
                "dest" => v.dest = Some(PathBuf::from(value)),
                "tar" => v.tar = parse_bool(k, value)?,
                "push" => v.push = parse_bool(k, value)?,
                "oci-mediatypes" => v.oci_types = value.is_empty() || parse_bool(k, value)?,
                "name" => v.names = parse_names(value)?,
                "compression" => algorithm = Some(value),
                "compression-level" => level = Some(value),
                _ => unreachable!("every key of `keys` is matched"),
            }
        }
        v.compression = compression(algorithm, level)?;
        Ok(v)
    }

    fn media_types(&self) -> MediaTypes {
        if self.oci_types {
            MediaTypes::Oci
        } else {
            MediaTypes::Docker
        }
    }
}

fn parse_bool(key: &str, value: &str) -> Result<bool, OutputProblem> {
    match value {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(OutputProblem::NotBool {
            key: key.to_string(),
            value: value.to_string(),
        }),
    }
}

fn parse_names(value: &str) -> Result<Vec<String>, OutputProblem> {
    let mut names = Vec::new();
    for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let r = Reference::parse(name).map_err(|source| OutputProblem::BadName {
            name: name.to_string(),
            source,
        })?;
        if r.digest().is_some() {
            return Err(OutputProblem::NameDigest(name.to_string()));
        }
        names.push(r.with_default_tag().to_string());
    }
    Ok(names)
}

/// buildx's `compression=zstd,compression-level=N`, read by the one compression parser.
fn compression(algorithm: Option<&str>, level: Option<&str>) -> Result<Compression, OutputProblem> {
    match (algorithm, level) {
        (None | Some("gzip"), None) => Ok(Compression::Gzip),
        (Some("uncompressed"), None) => Ok(Compression::Uncompressed),
        (algorithm, level) => {
            let mut text = algorithm.unwrap_or("gzip").to_string();
            if let Some(l) = level {
                text.push_str(&format!(",level={l}"));
            }
            let parsed = codec::Compression::parse(&text).map_err(OutputProblem::Compression)?;
            Ok(Compression::Custom(parsed))
        }
    }
}

/// The output of type `kind` (one `keys_of` knows) with `v`'s values.
fn output(kind: &str, v: Values) -> Result<OutputSpec, OutputProblem> {
    let media_types = v.media_types();
    if matches!(kind, "image" | "registry") {
        return Ok(OutputSpec::Image {
            names: v.names,
            push: v.push,
            compression: v.compression,
            media_types,
        });
    }
    let dest = match v.dest {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => {
            let needs = match kind {
                "docker" => {
                    "dest=FILE (a tar for `docker load -i FILE`; pallet has no daemon to load into)"
                }
                "oci" => "dest=FILE, or dest=DIR with tar=false",
                "tar" => "dest=FILE (or dest=- for standard output)",
                _ => "dest=DIR",
            };
            return Err(OutputProblem::NoDest {
                kind: kind.to_string(),
                needs,
            });
        }
    };
    let image = ImageOptions {
        names: v.names,
        media_types,
        compression: v.compression,
        annotations: Default::default(),
    };
    let tar = v.tar;
    match kind {
        "oci" if !tar && is_stdout(&dest) => Err(OutputProblem::DirToStdout),
        "oci" => Ok(OutputSpec::Oci { dest, tar, image }),
        "docker" if !tar => Err(OutputProblem::DockerNotTar),
        "docker" => Ok(OutputSpec::Docker { dest, image }),
        "tar" => Ok(OutputSpec::Tar { dest }),
        _ if is_stdout(&dest) => Err(OutputProblem::LocalToStdout),
        _ => Ok(OutputSpec::Local { dest }),
    }
}

/// Whether the output reads the layers' bytes (everything but a store tag, whose push HEADs or
/// mounts a remote cache's blobs and fetches one only to upload it).
pub(super) fn writes_files(out: &OutputSpec) -> bool {
    !matches!(out, OutputSpec::Image { .. })
}

/// The compression an export or push of this build will use (the first one, if several
/// differ), so the solver can compress each layer in the background as soon as it is final.
/// None when nothing is exported as an image or pushed.
pub fn background_compression(
    outputs: &[OutputSpec],
    push: Option<&PushOptions>,
) -> Option<codec::Compression> {
    let from_outputs = outputs.iter().find_map(|o| match o {
        OutputSpec::Oci { image, .. } | OutputSpec::Docker { image, .. } => Some(image.compression),
        OutputSpec::Image {
            push: true,
            compression,
            ..
        } => Some(*compression),
        _ => None,
    });
    from_outputs
        .or(push.map(|p| p.compression))
        .map(Compression::layers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(names: &[&str], media_types: MediaTypes) -> ImageOptions {
        ImageOptions {
            names: names.iter().map(|n| n.to_string()).collect(),
            media_types,
            compression: Compression::Gzip,
            annotations: Default::default(),
        }
    }

    #[test]
    fn errors_can_be_held_as_the_clis_cause() {
        fn cause<E: std::error::Error + Send + Sync + 'static>() {}
        cause::<OutputSpecError>();
        cause::<crate::build::BuildError>();
    }

    #[test]
    fn oci_outputs() {
        assert_eq!(
            parse_output("type=oci,dest=out.tar").unwrap(),
            OutputSpec::Oci {
                dest: "out.tar".into(),
                tar: true,
                image: image(&[], MediaTypes::Oci),
            }
        );
        assert_eq!(
            parse_output("type=oci,dest=d,tar=false,oci-mediatypes=false").unwrap(),
            OutputSpec::Oci {
                dest: "d".into(),
                tar: false,
                image: image(&[], MediaTypes::Docker),
            }
        );
        assert!(parse_output("type=oci")
            .unwrap_err()
            .to_string()
            .contains("needs dest=FILE"));
        assert!(parse_output("type=oci,dest=-,tar=false")
            .unwrap_err()
            .to_string()
            .contains("standard output"));
    }

    #[test]
    fn docker_outputs() {
        assert_eq!(
            parse_output("type=docker,dest=x.tar").unwrap(),
            OutputSpec::Docker {
                dest: "x.tar".into(),
                image: image(&[], MediaTypes::Docker),
            }
        );
        let OutputSpec::Docker { image: img, .. } = parse_output(
            "type=docker,dest=-,\"name=app,ghcr.io/o/app:1\",oci-mediatypes=true,compression=uncompressed",
        )
        .unwrap() else {
            panic!("not docker")
        };
        assert_eq!(
            img.names,
            ["docker.io/library/app:latest", "ghcr.io/o/app:1"]
        );
        assert_eq!(img.media_types, MediaTypes::Oci);
        assert_eq!(img.compression, Compression::Uncompressed);
        let err = parse_output("type=docker").unwrap_err().to_string();
        assert!(err.contains("docker load"), "{err}");
        let err = parse_output("type=docker,dest=x,tar=false")
            .unwrap_err()
            .to_string();
        assert!(err.contains("type=oci,tar=false"), "{err}");
        let err = parse_output("type=docker,dest=x,name=App")
            .unwrap_err()
            .to_string();
        assert!(err.contains("name=App"), "{err}");
        let err = parse_output("type=docker,dest=x,name=a@sha256:0000000000000000000000000000000000000000000000000000000000000000").unwrap_err().to_string();
        assert!(err.contains("by tag"), "{err}");
        let err = parse_output("type=docker,dest=x,compression=lz4")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown algorithm \"lz4\""), "{err}");
        let OutputSpec::Oci { image, .. } =
            parse_output("type=oci,dest=x,compression=zstd,compression-level=19").unwrap()
        else {
            panic!("an OCI output")
        };
        assert_eq!(
            image.compression,
            Compression::Custom(codec::Compression::Zstd { level: 19 })
        );
    }

    #[test]
    fn local_outputs_and_shorthand() {
        assert_eq!(
            parse_output("type=local,dest=out").unwrap(),
            OutputSpec::Local { dest: "out".into() }
        );
        assert_eq!(
            parse_output("./out dir").unwrap(),
            OutputSpec::Local {
                dest: "./out dir".into()
            }
        );
        // buildx's `-o -`: the tree as a tar on standard output.
        assert_eq!(
            parse_output("-").unwrap(),
            OutputSpec::Tar { dest: "-".into() }
        );
        assert_eq!(
            parse_output("type=tar,dest=out.tar").unwrap(),
            OutputSpec::Tar {
                dest: "out.tar".into()
            }
        );
        let err = parse_output("type=tar").unwrap_err().to_string();
        assert!(err.contains("type=tar needs dest=FILE"), "{err}");
        let err = parse_output("type=tar,dest=x,name=a")
            .unwrap_err()
            .to_string();
        assert!(err.contains("has no key \"name\""), "{err}");
        let err = parse_output("type=local,dest=o,tar=false")
            .unwrap_err()
            .to_string();
        assert!(err.contains("has no key \"tar\""), "{err}");
        assert!(parse_output("type=local")
            .unwrap_err()
            .to_string()
            .contains("dest=DIR"));
    }

    #[test]
    fn bad_specs_say_what_to_do() {
        assert!(parse_output("")
            .unwrap_err()
            .to_string()
            .contains("give type="));
        assert!(parse_output("dest=x")
            .unwrap_err()
            .to_string()
            .contains("give type="));
        assert!(parse_output("type=oci,dest")
            .unwrap_err()
            .to_string()
            .contains("key=value"));
        assert!(parse_output("type=nope,dest=x")
            .unwrap_err()
            .to_string()
            .contains("unknown type \"nope\""));
        assert!(parse_output("type=cacheonly")
            .unwrap_err()
            .to_string()
            .contains("not built yet"));
        assert_eq!(
            parse_output("type=registry,name=r.lan/app:1").unwrap(),
            OutputSpec::Image {
                names: vec!["r.lan/app:1".into()],
                push: true,
                media_types: MediaTypes::Oci,
                compression: Compression::Gzip,
            }
        );
        assert_eq!(
            parse_output("type=image,push=false,oci-mediatypes=false").unwrap(),
            OutputSpec::Image {
                names: vec![],
                push: false,
                media_types: MediaTypes::Docker,
                compression: Compression::Gzip,
            }
        );
        assert!(parse_output("type=oci,dest=x,tar=maybe")
            .unwrap_err()
            .to_string()
            .contains("tar must be true or false"));
        assert!(parse_output("type=oci,\"dest=x")
            .unwrap_err()
            .to_string()
            .contains("not closed"));
    }
}
