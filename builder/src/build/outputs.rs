//! `--output` values with buildx's meaning, parsed into what the exporters need.
//!
//! - `type=docker,dest=FILE[,name=REF[,REF...]][,oci-mediatypes=BOOL][,compression=C]`: the tar
//!   `docker load` reads (Docker media types unless `oci-mediatypes=true`).
//! - `type=oci,dest=PATH[,tar=BOOL][,name=...][,oci-mediatypes=BOOL][,compression=C]`: an OCI
//!   image layout as a tar, or a directory with `tar=false` (OCI media types unless
//!   `oci-mediatypes=false`).
//! - `type=local,dest=DIR`, or a bare `DIR`: the final file tree.
//! - `type=image[,name=REF[,REF...]][,push=BOOL][,oci-mediatypes=BOOL]`: names in the local
//!   store, pushed with `push=true`; `type=registry` is `type=image,push=true` (as in buildx).
//!
//! `dest=-` writes a tar to standard output. Fields are comma-separated CSV, so a list of names
//! is quoted: `type=docker,dest=x.tar,"name=app:1,app:latest"`. `compression` is `gzip` (the
//! default), `zstd` or `uncompressed`, with `compression-level=N` as in buildx. This module only parses; `build::write_output` and `export` write.

use crate::export::docker::{Compression, ImageOptions, MediaTypes};
use std::path::PathBuf;

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
    /// Names in the local store (none: the build's `-t` names), pushed when `push`.
    Image {
        names: Vec<String>,
        push: bool,
        media_types: MediaTypes,
        compression: Compression,
    },
}

/// True for the `dest` that means standard output.
pub fn is_stdout(dest: &std::path::Path) -> bool {
    dest.as_os_str() == "-"
}

/// Splits on commas outside double quotes and drops the quotes (buildx reads `--output` as CSV).
fn split_fields(spec: &str) -> Result<Vec<String>, String> {
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
        return Err(format!(
            "invalid --output \"{spec}\": a double quote is not closed"
        ));
    }
    Ok(fields)
}

fn parse_bool(spec: &str, key: &str, v: &str) -> Result<bool, String> {
    match v {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(format!(
            "invalid --output \"{spec}\": {key} must be true or false, not \"{v}\""
        )),
    }
}

fn parse_names(spec: &str, v: &str) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    for name in v.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let r = registry::Reference::parse(name)
            .map_err(|e| format!("invalid --output \"{spec}\": name={name}: {e}"))?;
        if r.digest().is_some() {
            return Err(format!(
                "invalid --output \"{spec}\": name={name} has a digest; archives name images by tag (name=app:1.0)"
            ));
        }
        names.push(r.with_default_tag().to_string());
    }
    Ok(names)
}

pub fn parse_output(spec: &str) -> Result<OutputSpec, String> {
    let fields = split_fields(spec)?;
    if let [only] = fields.as_slice() {
        if only.is_empty() {
            return Err(
                "invalid --output \"\": give type=docker|oci|local,dest=PATH, or a directory"
                    .into(),
            );
        }
        if !only.contains('=') {
            if only == "-" {
                return Err("--output - (the file tree as a tar on standard output, buildx's type=tar) is not built yet; use -o type=docker,dest=- for an image tar, or -o DIR for the file tree".into());
            }
            return Ok(OutputSpec::Local { dest: only.into() });
        }
    }
    let mut pairs = Vec::new();
    for field in &fields {
        let (k, v) = field
            .split_once('=')
            .ok_or_else(|| format!("invalid --output \"{spec}\": \"{field}\" is not key=value"))?;
        pairs.push((k.trim(), v));
    }
    let kind = match pairs.iter().rev().find(|(k, _)| *k == "type") {
        Some((_, t)) => *t,
        None => {
            return Err(format!(
                "invalid --output \"{spec}\": give type=docker, type=oci or type=local (or a bare DIR for type=local)"
            ))
        }
    };
    let keys: &[&str] = match kind {
        "oci" | "docker" => &[
            "dest",
            "tar",
            "name",
            "oci-mediatypes",
            "compression",
            "compression-level",
        ],
        "local" => &["dest"],
        "image" | "registry" => &[
            "name",
            "push",
            "oci-mediatypes",
            "compression",
            "compression-level",
        ],
        "tar" | "cacheonly" => {
            return Err(format!(
                "--output type={kind} is not built yet (type=docker, type=oci and type=local are)"
            ))
        }
        other => {
            return Err(format!(
                "invalid --output \"{spec}\": unknown type \"{other}\" (docker, oci or local)"
            ))
        }
    };
    let mut dest = None;
    let mut tar = true;
    let mut names = Vec::new();
    // OCI media types by default for images the registry gets (the rule), Docker's for
    // type=docker (what docker load expects).
    let mut oci_types = matches!(kind, "oci" | "image" | "registry");
    let mut algorithm: Option<String> = None;
    let mut level: Option<String> = None;
    let mut push = kind == "registry";
    for (k, v) in pairs {
        match k {
            "type" => {}
            _ if !keys.contains(&k) => {
                return Err(format!(
                    "invalid --output \"{spec}\": type={kind} has no key \"{k}\" (it takes {})",
                    keys.join(", ")
                ))
            }
            "dest" => dest = Some(PathBuf::from(v)),
            "tar" => tar = parse_bool(spec, k, v)?,
            "push" => push = parse_bool(spec, k, v)?,
            "oci-mediatypes" => oci_types = v.is_empty() || parse_bool(spec, k, v)?,
            "name" => names = parse_names(spec, v)?,
            "compression" => algorithm = Some(v.to_string()),
            "compression-level" => level = Some(v.to_string()),
            _ => unreachable!("every key of `keys` is matched"),
        }
    }
    // buildx's `compression=zstd,compression-level=N`, read by the one compression parser.
    let compression = match (algorithm.as_deref(), level) {
        (None | Some("gzip"), None) => Compression::Gzip,
        (Some("uncompressed"), None) => Compression::Uncompressed,
        (algorithm, level) => {
            let mut text = algorithm.unwrap_or("gzip").to_string();
            if let Some(l) = level {
                text.push_str(&format!(",level={l}"));
            }
            Compression::Custom(
                codec::Compression::parse(&text)
                    .map_err(|e| format!("invalid --output \"{spec}\": {e}"))?,
            )
        }
    };
    if matches!(kind, "image" | "registry") {
        return Ok(OutputSpec::Image {
            names,
            push,
            compression,
            media_types: if oci_types {
                MediaTypes::Oci
            } else {
                MediaTypes::Docker
            },
        });
    }
    let dest = match dest {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => {
            let what = match kind {
                "docker" => {
                    "dest=FILE (a tar for `docker load -i FILE`; pallet has no daemon to load into)"
                }
                "oci" => "dest=FILE, or dest=DIR with tar=false",
                _ => "dest=DIR",
            };
            return Err(format!(
                "invalid --output \"{spec}\": type={kind} needs {what}"
            ));
        }
    };
    let image = ImageOptions {
        names,
        media_types: if oci_types {
            MediaTypes::Oci
        } else {
            MediaTypes::Docker
        },
        compression,
    };
    match kind {
        "oci" if !tar && is_stdout(&dest) => Err(format!(
            "invalid --output \"{spec}\": tar=false writes a directory, which cannot go to standard output (dest=-); give dest=DIR"
        )),
        "oci" => Ok(OutputSpec::Oci { dest, tar, image }),
        "docker" if !tar => Err(format!(
            "invalid --output \"{spec}\": type=docker is always a tar (for docker load); use type=oci,tar=false for a directory"
        )),
        "docker" => Ok(OutputSpec::Docker { dest, image }),
        _ if is_stdout(&dest) => Err(format!(
            "invalid --output \"{spec}\": type=local writes a directory, not standard output; give dest=DIR"
        )),
        _ => Ok(OutputSpec::Local { dest }),
    }
}

/// The compression an export or push of this build will use (the first one, if several
/// differ), so the solver can compress each layer in the background as soon as it is final.
/// None when nothing is exported as an image or pushed.
pub fn background_compression(
    outputs: &[OutputSpec],
    push: Option<&crate::export::push::PushOptions>,
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
        }
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
            .contains("needs dest=FILE"));
        assert!(parse_output("type=oci,dest=-,tar=false")
            .unwrap_err()
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
        let err = parse_output("type=docker").unwrap_err();
        assert!(err.contains("docker load"), "{err}");
        let err = parse_output("type=docker,dest=x,tar=false").unwrap_err();
        assert!(err.contains("type=oci,tar=false"), "{err}");
        let err = parse_output("type=docker,dest=x,name=App").unwrap_err();
        assert!(err.contains("name=App"), "{err}");
        let err = parse_output("type=docker,dest=x,name=a@sha256:0000000000000000000000000000000000000000000000000000000000000000").unwrap_err();
        assert!(err.contains("by tag"), "{err}");
        let err = parse_output("type=docker,dest=x,compression=lz4").unwrap_err();
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
        assert!(parse_output("-").unwrap_err().contains("not built yet"));
        let err = parse_output("type=local,dest=o,tar=false").unwrap_err();
        assert!(err.contains("has no key \"tar\""), "{err}");
        assert!(parse_output("type=local").unwrap_err().contains("dest=DIR"));
    }

    #[test]
    fn bad_specs_say_what_to_do() {
        assert!(parse_output("").unwrap_err().contains("give type="));
        assert!(parse_output("dest=x").unwrap_err().contains("give type="));
        assert!(parse_output("type=oci,dest")
            .unwrap_err()
            .contains("key=value"));
        assert!(parse_output("type=nope,dest=x")
            .unwrap_err()
            .contains("unknown type \"nope\""));
        assert!(parse_output("type=cacheonly")
            .unwrap_err()
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
            .contains("tar must be true or false"));
        assert!(parse_output("type=oci,\"dest=x")
            .unwrap_err()
            .contains("not closed"));
    }
}
