//! buildx's attestation flags, parsed: `--provenance[=true|false|min|max|mode=..,version=..]`,
//! `--attest type=provenance[,mode=min|max][,version=v1|v0.2][,builder-id=ID]
//! [,reproducible=BOOL][,disabled=BOOL]`, and `--sbom[=true|false|generator=IMAGE,...]` /
//! `--attest type=sbom[,generator=IMAGE][,KEY=VALUE...]` (BuildKit's SBOM scanner protocol:
//! the generator image runs over the result; default `docker/buildkit-syft-scanner:stable-1`;
//! other keys reach it as `BUILDKIT_SCAN_KEY=VALUE`).
//!
//! buildx's defaults: `mode=min` (its docs: "min (default)"); the SLSA version is BuildKit's
//! default, `v1` (solver/llbsolver/provenance.go: an empty version is v1).

/// How much the provenance records (BuildKit's `mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProvenanceMode {
    /// Timestamps, the frontend, materials; no build-arg values, secrets or build graph.
    Min,
    /// Also the build args, secret and ssh ids, the Dockerfile, the build graph and layers.
    Max,
}

/// The SLSA provenance schema of the predicate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlsaVersion {
    /// `https://slsa.dev/provenance/v1` (BuildKit's current default).
    V1,
    /// `https://slsa.dev/provenance/v0.2`.
    V02,
}

/// What `--provenance` / `--attest type=provenance` asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvenanceSpec {
    pub mode: ProvenanceMode,
    pub version: SlsaVersion,
    /// `builder-id=`: the builder's id (runDetails.builder.id); BuildKit's default is empty.
    pub builder_id: String,
    /// `reproducible=true`: the build is declared reproducible (metadata only).
    pub reproducible: bool,
}

impl Default for ProvenanceSpec {
    fn default() -> Self {
        ProvenanceSpec {
            mode: ProvenanceMode::Min,
            version: SlsaVersion::V1,
            builder_id: String::new(),
            reproducible: false,
        }
    }
}

/// BuildKit's default SBOM generator (frontend/attestations/parse.go).
pub const DEFAULT_SBOM_GENERATOR: &str = "docker/buildkit-syft-scanner:stable-1";

/// What `--sbom` / `--attest type=sbom` asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SbomSpec {
    /// The scanner image, normalized with a tag (`docker.io/docker/buildkit-syft-scanner:stable-1`).
    pub generator: String,
    /// The other keys, given to the scanner as `BUILDKIT_SCAN_KEY=VALUE`.
    pub params: std::collections::BTreeMap<String, String>,
}

/// One `--attest` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attest {
    /// `type=provenance` (None: `disabled=true`).
    Provenance(Option<ProvenanceSpec>),
    /// `type=sbom` (None: `disabled=true`).
    Sbom(Option<SbomSpec>),
}

/// Why an attestation flag cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AttestSpecError {
    #[error("invalid {flag} \"{value}\": {problem}")]
    Invalid {
        flag: &'static str,
        value: String,
        problem: String,
    },
}

/// `--provenance VALUE`: None when it turns provenance off.
pub fn parse_provenance_flag(value: &str) -> Result<Option<ProvenanceSpec>, AttestSpecError> {
    match value.trim() {
        "" | "true" | "1" => Ok(Some(ProvenanceSpec::default())),
        "false" | "0" => Ok(None),
        // buildx and docker's GitHub actions accept a bare mode.
        "min" | "max" => parse_attrs("--provenance", value, &format!("mode={}", value.trim())),
        v => parse_attrs("--provenance", value, v),
    }
}

/// `--attest type=provenance|sbom,...`.
pub fn parse_attest(value: &str) -> Result<Attest, AttestSpecError> {
    let fields = fields("--attest", value)?;
    let kind = fields
        .iter()
        .rev()
        .find(|(k, _)| k == "type")
        .map(|(_, v)| v.as_str());
    match kind {
        Some("provenance") => parse_attrs("--attest", value, value).map(Attest::Provenance),
        Some("sbom") => parse_sbom_attrs("--attest", value, value).map(Attest::Sbom),
        Some(other) => Err(invalid(
            "--attest",
            value,
            format!("unknown type \"{other}\" (type=provenance or type=sbom)"),
        )),
        None => Err(invalid(
            "--attest",
            value,
            "give type=provenance or type=sbom, e.g. --attest type=provenance,mode=max".into(),
        )),
    }
}

/// `--sbom VALUE`: None when it turns SBOMs off.
pub fn parse_sbom_flag(value: &str) -> Result<Option<SbomSpec>, AttestSpecError> {
    match value.trim() {
        "" | "true" | "1" => parse_sbom_attrs("--sbom", value, ""),
        "false" | "0" => Ok(None),
        v => parse_sbom_attrs("--sbom", value, v),
    }
}

/// The keys of an SBOM value: `generator`, `disabled`, the rest for the scanner.
fn parse_sbom_attrs(
    flag: &'static str,
    value: &str,
    attrs: &str,
) -> Result<Option<SbomSpec>, AttestSpecError> {
    let mut generator = DEFAULT_SBOM_GENERATOR.to_string();
    let mut params = std::collections::BTreeMap::new();
    let mut disabled = false;
    for (k, v) in fields(flag, attrs)? {
        match k.as_str() {
            "type" if v == "sbom" => {}
            "generator" => generator = v,
            "disabled" => disabled = boolean(flag, value, &k, &v)?,
            _ => {
                params.insert(k, v);
            }
        }
    }
    let generator = registry::Reference::parse_docker_ref(&generator)
        .map_err(|e| invalid(flag, value, format!("the generator image: {e}")))?
        .to_string();
    Ok((!disabled).then_some(SbomSpec { generator, params }))
}

fn invalid(flag: &'static str, value: &str, problem: String) -> AttestSpecError {
    AttestSpecError::Invalid {
        flag,
        value: value.to_string(),
        problem,
    }
}

fn fields(flag: &'static str, value: &str) -> Result<Vec<(String, String)>, AttestSpecError> {
    value
        .split(',')
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .map(|f| {
            f.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .ok_or_else(|| invalid(flag, value, format!("\"{f}\" is not key=value")))
        })
        .collect()
}

fn boolean(flag: &'static str, value: &str, key: &str, v: &str) -> Result<bool, AttestSpecError> {
    match v {
        "true" | "1" | "" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(invalid(
            flag,
            value,
            format!("{key} must be true or false, not \"{v}\""),
        )),
    }
}

/// The keys of a provenance value (`type=provenance` included for `--attest`).
fn parse_attrs(
    flag: &'static str,
    value: &str,
    attrs: &str,
) -> Result<Option<ProvenanceSpec>, AttestSpecError> {
    let mut spec = ProvenanceSpec::default();
    let mut disabled = false;
    for (k, v) in fields(flag, attrs)? {
        match k.as_str() {
            "type" if v == "provenance" => {}
            "mode" => {
                spec.mode = match v.as_str() {
                    "min" => ProvenanceMode::Min,
                    // BuildKit reads `full` as max.
                    "max" | "full" => ProvenanceMode::Max,
                    _ => {
                        return Err(invalid(
                            flag,
                            value,
                            format!("invalid mode \"{v}\" (min or max)"),
                        ))
                    }
                }
            }
            "version" => {
                spec.version = match v.as_str() {
                    "v1" => SlsaVersion::V1,
                    "v0.2" => SlsaVersion::V02,
                    _ => {
                        return Err(invalid(
                            flag,
                            value,
                            format!("invalid provenance SLSA version \"{v}\" (v1 or v0.2)"),
                        ))
                    }
                }
            }
            "builder-id" => spec.builder_id = v,
            "reproducible" => spec.reproducible = boolean(flag, value, &k, &v)?,
            "disabled" => disabled = boolean(flag, value, &k, &v)?,
            // Only where provenance goes among several exporters: pallet's outputs that carry
            // it are images, which BuildKit counts as inline.
            "inline-only" => {
                boolean(flag, value, &k, &v)?;
            }
            _ => {
                return Err(invalid(
                    flag,
                    value,
                    format!(
                        "unknown key \"{k}\" (provenance takes mode, version, builder-id, \
                         reproducible, disabled, inline-only)"
                    ),
                ))
            }
        }
    }
    Ok((!disabled).then_some(spec))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provenance_shorthands_are_buildxs() {
        assert_eq!(
            parse_provenance_flag("true").unwrap(),
            Some(ProvenanceSpec::default())
        );
        assert_eq!(parse_provenance_flag("false").unwrap(), None);
        let max = parse_provenance_flag("mode=max,version=v0.2")
            .unwrap()
            .unwrap();
        assert_eq!(max.mode, ProvenanceMode::Max);
        assert_eq!(max.version, SlsaVersion::V02);
        assert_eq!(
            parse_provenance_flag("max").unwrap().unwrap().mode,
            ProvenanceMode::Max
        );
        let err = parse_provenance_flag("mode=most").unwrap_err().to_string();
        assert!(err.contains("invalid mode \"most\""), "{err}");
        let err = parse_provenance_flag("colour=blue")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown key \"colour\""), "{err}");
    }

    #[test]
    fn attest_takes_provenance_and_sbom() {
        let Attest::Provenance(Some(s)) =
            parse_attest("type=provenance,mode=max,builder-id=https://ci/run/1").unwrap()
        else {
            panic!("provenance")
        };
        assert_eq!(s.mode, ProvenanceMode::Max);
        assert_eq!(s.builder_id, "https://ci/run/1");
        assert_eq!(
            parse_attest("type=provenance,disabled=true").unwrap(),
            Attest::Provenance(None)
        );
        let Attest::Sbom(Some(sbom)) = parse_attest("type=sbom").unwrap() else {
            panic!("sbom")
        };
        assert_eq!(
            sbom.generator,
            "docker.io/docker/buildkit-syft-scanner:stable-1"
        );
        let Attest::Sbom(Some(sbom)) =
            parse_attest("type=sbom,generator=r.lan/scan,scan-stage=true").unwrap()
        else {
            panic!("sbom")
        };
        assert_eq!(sbom.generator, "r.lan/scan:latest");
        assert_eq!(sbom.params["scan-stage"], "true");
        assert!(parse_attest("mode=max")
            .unwrap_err()
            .to_string()
            .contains("give type=provenance"));
        assert!(parse_attest("type=vex")
            .unwrap_err()
            .to_string()
            .contains("unknown type"));
        assert_eq!(parse_sbom_flag("false").unwrap(), None);
        assert!(parse_sbom_flag("true").unwrap().is_some());
        assert!(parse_sbom_flag("generator=Bad Name")
            .unwrap_err()
            .to_string()
            .contains("generator image"));
        let err = parse_attest("type=provenance,version=v3")
            .unwrap_err()
            .to_string();
        assert!(err.contains("SLSA version"), "{err}");
    }
}
