//! `--output` values with buildx's meaning (`type=oci,dest=FILE`, `type=oci,dest=DIR,tar=false`).

use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputSpec {
    /// An OCI image layout, as a tar file or a directory.
    Oci { dest: PathBuf, tar: bool },
}

pub fn parse_output(spec: &str) -> Result<OutputSpec, String> {
    let mut kind = None;
    let mut dest = None;
    let mut tar = true;
    for field in spec.split(',') {
        let (k, v) = field
            .split_once('=')
            .ok_or_else(|| format!("invalid --output \"{spec}\": \"{field}\" is not key=value"))?;
        match k {
            "type" => kind = Some(v.to_string()),
            "dest" => dest = Some(PathBuf::from(v)),
            "tar" => {
                tar = match v {
                    "true" => true,
                    "false" => false,
                    _ => {
                        return Err(format!(
                            "invalid --output \"{spec}\": tar must be true or false"
                        ))
                    }
                }
            }
            other => {
                return Err(format!(
                    "invalid --output \"{spec}\": unknown key \"{other}\" (type, dest, tar)"
                ))
            }
        }
    }
    match kind.as_deref() {
        Some("oci") => {
            let dest = dest
                .ok_or_else(|| format!("invalid --output \"{spec}\": type=oci needs dest=PATH"))?;
            Ok(OutputSpec::Oci { dest, tar })
        }
        Some(t @ ("docker" | "local" | "tar" | "image" | "registry")) => {
            Err(format!("--output type={t} is not built yet (type=oci is)"))
        }
        Some(t) => Err(format!("invalid --output \"{spec}\": unknown type \"{t}\"")),
        None => Err(format!(
            "invalid --output \"{spec}\": give type=oci,dest=PATH"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs() {
        assert_eq!(
            parse_output("type=oci,dest=out.tar").unwrap(),
            OutputSpec::Oci {
                dest: "out.tar".into(),
                tar: true
            }
        );
        assert_eq!(
            parse_output("type=oci,dest=d,tar=false").unwrap(),
            OutputSpec::Oci {
                dest: "d".into(),
                tar: false
            }
        );
        assert!(parse_output("type=oci").is_err());
        assert!(parse_output("type=docker,dest=x")
            .unwrap_err()
            .contains("not built yet"));
        assert!(parse_output("dest").is_err());
    }
}
