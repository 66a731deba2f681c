//! The SLSA provenance predicate of one built image (one platform), as BuildKit writes it
//! (solver/llbsolver/provenance.go, provenance/predicate.go, provenance/types): the frontend
//! and its args, the Dockerfile's name, the locals, the materials (base images by digest,
//! remote sources), the builder platform, the build's times and completeness; `mode=max` adds
//! the build args' values, the secret and ssh ids, the Dockerfile itself, the build graph
//! (`buildConfig.llbDefinition`) and the image's layers. v1 is BuildKit's default shape; v0.2
//! is its `ConvertToSLSA02` of the same facts.
//!
//! Never in it: a secret's value (secrets are read by RUN steps only, the graph has their ids),
//! credentials in URLs (BuildKit's `xxxxx:xxxxx@`), and the values of build args and RUN
//! environment variables whose names look like secrets (BuildKit's SecretsUsedInArgOrEnv rule;
//! BuildKit itself records them in mode=max: a deliberate difference, README).
//!
//! The predicate knows no subject: an export or push makes the statement about the manifest it
//! writes (`export::attestation`).

use super::attest::{ProvenanceMode, ProvenanceSpec, SlsaVersion};
use crate::export::attestation::{image_purl, purl};
use crate::store::{Attestation, StoreError};
use frontend::lint::looks_like_secret;
use frontend::lower::{LowerOptions, NamedContext};
use graph::{Graph, MountKind, Op, Platform, Source};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

/// BuildKit's build types.
pub const BUILD_TYPE_V1: &str =
    "https://github.com/moby/buildkit/blob/master/docs/attestations/slsa-definitions.md";
pub const BUILD_TYPE_V02: &str = "https://mobyproject.org/buildkit@v1";
pub const PREDICATE_V1: &str = "https://slsa.dev/provenance/v1";
pub const PREDICATE_V02: &str = "https://slsa.dev/provenance/v0.2";
/// What stands for a value kept out of the provenance (BuildKit's word for credentials).
const REDACTED: &str = "xxxxx";

/// What the predicate of one image is made from.
pub struct ProvenanceInput<'a> {
    pub spec: &'a ProvenanceSpec,
    /// The Dockerfile's file name (configSource.path): `Dockerfile`, `app.Dockerfile`.
    pub filename: &'a str,
    /// The Dockerfile's text (mode=max's source).
    pub dockerfile: &'a str,
    pub lower: &'a LowerOptions,
    /// The local sources by name (`context`, each `--build-context NAME=DIR`).
    pub locals: Vec<String>,
    /// The image's graph and its root (one platform's).
    pub graph: &'a Graph,
    pub root: &'a graph::Digest,
    /// Each vertex's layer stack (the solve's), for mode=max's `layers`.
    pub chains: &'a crate::solver::Chains,
    pub started: SystemTime,
    pub finished: SystemTime,
    pub invocation_id: &'a str,
    pub builder_platform: &'a Platform,
    /// buildx's git facts (`revision`, `source`, `localdir:NAME`), recorded in every mode.
    pub vcs: &'a BTreeMap<String, String>,
}

/// The build's facts, in v1's shape; v0.2 is made from this.
struct Facts {
    args: BTreeMap<String, String>,
    request_complete: bool,
    secrets: Vec<Value>,
    ssh: Vec<Value>,
    locals: Vec<Value>,
    materials: Vec<Value>,
    materials_complete: bool,
    network: bool,
    build_config: Option<Value>,
    buildkit_metadata: Value,
}

/// The predicate of one image.
pub fn predicate(input: &ProvenanceInput) -> Attestation {
    let facts = facts(input);
    let (predicate_type, predicate) = match input.spec.version {
        SlsaVersion::V1 => (PREDICATE_V1, v1(input, facts)),
        SlsaVersion::V02 => (PREDICATE_V02, v02(input, facts)),
    };
    Attestation {
        predicate_type: predicate_type.to_string(),
        predicate: serde_json::to_string(&predicate).expect("a predicate serializes"),
    }
}

fn facts(input: &ProvenanceInput) -> Facts {
    let max = input.spec.mode == ProvenanceMode::Max;
    let mut graph = input.graph.clone();
    graph.prune_to(input.root.as_str());
    let (args, request_complete) = request_args(input.lower, max);
    let mut secrets = BTreeMap::new();
    let mut ssh = BTreeMap::new();
    let mut network = false;
    for v in &graph.vertices {
        let Op::Exec(e) = &v.op else { continue };
        network |= e.network != graph::Network::None;
        for m in &e.mounts {
            match &m.kind {
                MountKind::Secret { id, required, .. } => {
                    secrets.insert(id.clone(), !required);
                }
                MountKind::Ssh { id, required, .. } => {
                    ssh.insert(id.clone(), !required);
                }
                _ => {}
            }
        }
    }
    let ids = |m: BTreeMap<String, bool>| -> Vec<Value> {
        m.into_iter()
            .map(|(id, optional)| {
                let mut v = json!({ "id": id });
                if optional {
                    v["optional"] = true.into();
                }
                v
            })
            .collect()
    };
    // BuildKit's dockerfile frontend reads the Dockerfile from a local of its own.
    let mut names = vec!["context".to_string(), "dockerfile".to_string()];
    names.extend(input.locals.iter().filter(|n| *n != "context").cloned());
    let locals = names.into_iter().map(|n| json!({ "name": n })).collect();
    Facts {
        args,
        request_complete,
        secrets: if max { ids(secrets) } else { Vec::new() },
        ssh: if max { ids(ssh) } else { Vec::new() },
        locals,
        materials: materials(&graph),
        // A local source's files are not materials BuildKit can name.
        materials_complete: false,
        network,
        build_config: max.then(|| build_config(&graph)),
        buildkit_metadata: {
            let mut meta = if max {
                buildkit_metadata(input, &graph)
            } else {
                json!({})
            };
            if !input.vcs.is_empty() {
                let vcs: BTreeMap<&String, String> = input
                    .vcs
                    .iter()
                    .map(|(k, v)| {
                        (
                            k,
                            if k == "source" {
                                redact_url(v)
                            } else {
                                v.clone()
                            },
                        )
                    })
                    .collect();
                meta["vcs"] = json!(vcs);
            }
            meta
        },
    }
}

/// The frontend's args as buildx sends them (`build-arg:K`, `label:K`, `target`,
/// `context:NAME`), and whether all are there as given: mode=min drops build args and labels
/// (BuildKit's scrubMinRequest), mode=max redacts secret-looking build args.
fn request_args(lower: &LowerOptions, max: bool) -> (BTreeMap<String, String>, bool) {
    let mut args = BTreeMap::new();
    let mut complete = true;
    for (k, v) in &lower.build_args {
        if !max {
            complete = false;
        } else if looks_like_secret(k) {
            complete = false;
            args.insert(format!("build-arg:{k}"), REDACTED.to_string());
        } else {
            args.insert(format!("build-arg:{k}"), v.clone());
        }
    }
    for (k, v) in &lower.labels {
        if max {
            args.insert(format!("label:{k}"), v.clone());
        } else {
            complete = false;
        }
    }
    if let Some(t) = &lower.target {
        args.insert("target".into(), t.clone());
    }
    for (name, c) in &lower.named_contexts {
        let v = match c {
            NamedContext::Image(r) => format!("docker-image://{r}"),
            NamedContext::Local { .. } => format!("local:{name}"),
        };
        args.insert(format!("context:{name}"), v);
    }
    (args, complete)
}

/// Base images by digest and remote sources (BuildKit's `slsaMaterials`), each once.
fn materials(graph: &Graph) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    for v in &graph.vertices {
        let Op::Source(s) = &v.op else { continue };
        let m = match s {
            Source::Image {
                reference,
                platform,
            } => image_material(reference, platform),
            Source::Http { url, checksum, .. } => {
                let mut m = json!({ "uri": redact_url(url) });
                if let Some((alg, hex)) = checksum.as_deref().and_then(|c| c.split_once(':')) {
                    m["digest"] = json!({ alg: hex });
                }
                Some(m)
            }
            Source::Git {
                remote, checksum, ..
            } => {
                let mut m = json!({ "uri": redact_url(remote) });
                if let Some(c) = checksum {
                    let alg = if c.len() == 64 { "sha256" } else { "sha1" };
                    m["digest"] = json!({ alg: c });
                }
                Some(m)
            }
            Source::Scratch | Source::Local { .. } => None,
        };
        if let Some(m) = m.filter(|m| !out.contains(m)) {
            out.push(m);
        }
    }
    out
}

/// `pkg:docker/busybox@latest?platform=linux%2Famd64` with the pinned digest: the name as
/// written (a tag keeps its tag; a digest alone stays in the purl).
fn image_material(reference: &str, platform: &Platform) -> Option<Value> {
    let (named, digest) = match reference.rsplit_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (reference, None),
    };
    let written = if registry::Reference::parse(named)
        .ok()
        .is_some_and(|r| r.tag().is_some())
    {
        named
    } else {
        reference
    };
    // An `oci-layout://` build context's image, imported under this name (cli/named_context.rs).
    let kind = if written.starts_with("localhost/pallet-build-context/") {
        "oci"
    } else {
        "docker"
    };
    let uri = purl(kind, written, Some(platform)).or_else(|| image_purl(reference, None))?;
    let mut m = json!({ "uri": uri });
    if let Some((alg, hex)) = digest.and_then(|d| d.split_once(':')) {
        m["digest"] = json!({ alg: hex });
    }
    Some(m)
}

/// `https://user:pass@host/x` -> `https://xxxxx:xxxxx@host/x` (BuildKit's RedactCredentials).
fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let host_end = rest.find('/').unwrap_or(rest.len());
    match rest[..host_end].rsplit_once('@') {
        Some((userinfo, host)) => {
            let creds = if userinfo.contains(':') {
                format!("{REDACTED}:{REDACTED}")
            } else {
                REDACTED.to_string()
            };
            format!("{scheme}://{creds}@{host}{}", &rest[host_end..])
        }
        None => url.to_string(),
    }
}

/// mode=max's build graph, as BuildKit's `llbDefinition`: one step per op (`stepN`, its op,
/// its inputs as `stepM:0`), then the terminal step naming the result.
fn build_config(graph: &Graph) -> Value {
    let index: BTreeMap<&str, usize> = graph
        .vertices
        .iter()
        .enumerate()
        .map(|(i, v)| (v.digest.as_str(), i))
        .collect();
    let mut steps: Vec<Value> = graph
        .vertices
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let mut op = serde_json::to_value(&v.op).expect("an op serializes");
            redact_op(&mut op);
            let mut step = json!({ "id": format!("step{i}"), "op": op });
            let inputs: Vec<String> = v
                .inputs
                .iter()
                .filter_map(|d| index.get(d.as_str()))
                .map(|j| format!("step{j}:0"))
                .collect();
            if !inputs.is_empty() {
                step["inputs"] = inputs.into();
            }
            step
        })
        .collect();
    if let Some(last) = graph.vertices.len().checked_sub(1) {
        steps.push(json!({
            "id": format!("step{}", graph.vertices.len()),
            "inputs": [format!("step{last}:0")],
        }));
    }
    json!({ "llbDefinition": steps })
}

/// Secret-looking `K=V` environment entries and URL credentials, redacted in a serialized op.
fn redact_op(op: &mut Value) {
    match op {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                match (k.as_str(), &mut *v) {
                    ("env", Value::Array(entries)) => {
                        for e in entries.iter_mut() {
                            if let Some((name, _)) = e.as_str().and_then(|s| s.split_once('=')) {
                                if looks_like_secret(name) {
                                    *e = format!("{name}={REDACTED}").into();
                                }
                            }
                        }
                    }
                    ("url" | "remote", Value::String(s)) => *s = redact_url(s),
                    _ => redact_op(v),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_op),
        _ => {}
    }
}

/// mode=max's `buildkit_metadata`: the Dockerfile with each step's lines, and the layers.
fn buildkit_metadata(input: &ProvenanceInput, graph: &Graph) -> Value {
    let mut locations = Map::new();
    for (i, v) in graph.vertices.iter().enumerate() {
        if let Some((start, end)) = v.meta.lines {
            locations.insert(
                format!("step{i}"),
                json!({ "locations": [{ "ranges": [{
                    "start": { "line": start },
                    "end": { "line": end },
                }]}]}),
            );
        }
    }
    let mut meta = json!({
        "source": {
            "locations": locations,
            "infos": [{
                "filename": input.filename,
                "language": "Dockerfile",
                "data": registry::base64_encode(input.dockerfile.as_bytes()),
            }],
        },
    });
    // Each step's layer stack (BuildKit's `stepN:0`, one stack each), by diff id: the export
    // compresses them afterwards, so the compressed digests are not known here.
    let mut layers = Map::new();
    for (i, v) in graph.vertices.iter().enumerate() {
        let Some(chain) = input
            .chains
            .get(v.digest.as_str())
            .filter(|c| !c.is_empty())
        else {
            continue;
        };
        let chain: Vec<Value> = chain
            .iter()
            .map(|l| {
                json!({
                    "mediaType": crate::store::MEDIA_LAYER_TAR,
                    "digest": l.diff_id,
                    "size": l.size,
                })
            })
            .collect();
        layers.insert(format!("step{i}:0"), json!([chain]));
    }
    if !layers.is_empty() {
        meta["layers"] = Value::Object(layers);
    }
    meta
}

fn request(f: &Facts) -> Value {
    let mut r = json!({ "frontend": "dockerfile.v0", "locals": f.locals });
    if !f.args.is_empty() {
        r["args"] = json!(f.args);
    }
    if !f.secrets.is_empty() {
        r["secrets"] = f.secrets.clone().into();
    }
    if !f.ssh.is_empty() {
        r["ssh"] = f.ssh.clone().into();
    }
    r
}

fn v1(input: &ProvenanceInput, f: Facts) -> Value {
    let mut internal = json!({ "builderPlatform": input.builder_platform.to_string() });
    if let Some(c) = &f.build_config {
        internal["buildConfig"] = c.clone();
    }
    let mut metadata = json!({
        "invocationId": input.invocation_id,
        "startedOn": time(input.started),
        "finishedOn": time(input.finished),
        "buildkit_completeness": {
            "request": f.request_complete,
            "resolvedDependencies": f.materials_complete,
        },
        "buildkit_metadata": f.buildkit_metadata,
    });
    if input.spec.reproducible {
        metadata["buildkit_reproducible"] = true.into();
    }
    if f.materials_complete && !f.network {
        metadata["buildkit_hermetic"] = true.into();
    }
    let mut definition = json!({
        "buildType": BUILD_TYPE_V1,
        "externalParameters": {
            "configSource": { "path": input.filename },
            "request": request(&f),
        },
        "internalParameters": internal,
    });
    if !f.materials.is_empty() {
        definition["resolvedDependencies"] = f.materials.clone().into();
    }
    json!({
        "buildDefinition": definition,
        "runDetails": {
            "builder": { "id": input.spec.builder_id },
            "metadata": metadata,
        },
    })
}

fn v02(input: &ProvenanceInput, f: Facts) -> Value {
    let mut metadata = json!({
        "buildInvocationID": input.invocation_id,
        "buildStartedOn": time(input.started),
        "buildFinishedOn": time(input.finished),
        "completeness": {
            "parameters": f.request_complete,
            "environment": true,
            "materials": f.materials_complete,
        },
        "reproducible": input.spec.reproducible,
        "https://mobyproject.org/buildkit@v1#metadata": f.buildkit_metadata,
    });
    if f.materials_complete && !f.network {
        metadata["https://mobyproject.org/buildkit@v1#hermetic"] = true.into();
    }
    let mut p = json!({
        "builder": { "id": input.spec.builder_id },
        "buildType": BUILD_TYPE_V02,
        "invocation": {
            "configSource": { "entryPoint": input.filename },
            "parameters": request(&f),
            "environment": { "platform": input.builder_platform.to_string() },
        },
        "metadata": metadata,
    });
    if !f.materials.is_empty() {
        p["materials"] = f.materials.clone().into();
    }
    if let Some(c) = f.build_config {
        p["buildConfig"] = c;
    }
    p
}

/// A `type=local` output's attestations, as BuildKit's local exporter writes them at the top
/// of `dest`: the provenance predicate (indented) as `provenance.json`; each other one (an
/// SBOM) as an in-toto statement without subject, `sbom.spdx.json`, then `sbom-2.spdx.json`...
pub fn write_local(dest: &std::path::Path, atts: &[Attestation]) -> Result<(), StoreError> {
    let mut others = 0;
    for att in atts {
        let predicate: Value =
            serde_json::from_str(&att.predicate).map_err(|source| StoreError::Json {
                what: format!("the {} predicate", att.predicate_type),
                source,
            })?;
        let (name, value) = if att
            .predicate_type
            .starts_with("https://slsa.dev/provenance/")
        {
            ("provenance.json".to_string(), predicate)
        } else {
            others += 1;
            let name = match others {
                1 => "sbom.spdx.json".to_string(),
                n => format!("sbom-{n}.spdx.json"),
            };
            let statement = json!({
                "_type": crate::export::attestation::STATEMENT_TYPE,
                "predicateType": att.predicate_type,
                "predicate": predicate,
            });
            (name, statement)
        };
        let path = dest.join(name);
        let text = serde_json::to_vec_pretty(&value).expect("a predicate serializes");
        std::fs::write(&path, text).map_err(|source| StoreError::Io {
            what: format!("writing {}", path.display()),
            source,
        })?;
    }
    Ok(())
}

/// RFC 3339 with nanoseconds (a quick build starts and ends within one second).
pub fn time(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = graph::time::rfc3339(d.as_secs() as i64);
    let base = secs.trim_end_matches('Z');
    format!("{base}.{:09}Z", d.subsec_nanos())
}

/// A build's invocation id: 25 base-36 characters, as BuildKit's identity.NewID.
pub fn invocation_id(started: SystemTime) -> String {
    let nanos = started
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let seed = format!("{nanos}/{}", std::process::id());
    let hash = blake3::hash(seed.as_bytes());
    let alphabet = b"0123456789abcdefghijklmnopqrstuvwxyz";
    hash.as_bytes()
        .iter()
        .take(25)
        .map(|b| alphabet[*b as usize % 36] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_urls_are_redacted() {
        assert_eq!(
            redact_url("https://user:pass@example.invalid/repo.git"),
            "https://xxxxx:xxxxx@example.invalid/repo.git"
        );
        assert_eq!(
            redact_url("https://token@example.invalid/a@b"),
            "https://xxxxx@example.invalid/a@b"
        );
        assert_eq!(
            redact_url("https://example.invalid/x"),
            "https://example.invalid/x"
        );
    }

    #[test]
    fn secret_looking_env_is_redacted_in_ops() {
        let mut op = json!({"exec": {"env": ["PATH=/bin", "API_TOKEN=hunter2"], "args": ["sh"]}});
        redact_op(&mut op);
        assert_eq!(op["exec"]["env"][0], "PATH=/bin");
        assert_eq!(op["exec"]["env"][1], "API_TOKEN=xxxxx");
    }

    #[test]
    fn min_drops_build_args_and_labels_and_max_redacts_secrets() {
        let mut lower = LowerOptions::default();
        lower.build_args.insert("FOO".into(), "bar".into());
        lower
            .build_args
            .insert("GITHUB_TOKEN".into(), "ghp_x".into());
        lower.labels.insert("lbl".into(), "abc".into());
        let (min, complete) = request_args(&lower, false);
        assert!(min.is_empty() && !complete);
        let (max, complete) = request_args(&lower, true);
        assert_eq!(max["build-arg:FOO"], "bar");
        assert_eq!(max["label:lbl"], "abc");
        assert_eq!(max["build-arg:GITHUB_TOKEN"], REDACTED);
        assert!(!complete);
        lower.build_args.remove("GITHUB_TOKEN");
        assert!(request_args(&lower, true).1);
    }

    #[test]
    fn times_have_nanoseconds_and_ids_are_25_chars() {
        let t = UNIX_EPOCH + std::time::Duration::new(1_700_000_000, 5);
        assert_eq!(time(t), "2023-11-14T22:13:20.000000005Z");
        assert_eq!(invocation_id(t).len(), 25);
    }

    #[test]
    fn image_materials_keep_the_tag_and_carry_the_digest() {
        let d = "a".repeat(64);
        let p = Platform {
            os: "linux".into(),
            architecture: "amd64".into(),
            variant: String::new(),
        };
        let m =
            image_material(&format!("docker.io/library/busybox:latest@sha256:{d}"), &p).unwrap();
        assert_eq!(m["uri"], "pkg:docker/busybox@latest?platform=linux%2Famd64");
        assert_eq!(m["digest"]["sha256"], d);
        let m = image_material(&format!("docker.io/library/busybox@sha256:{d}"), &p).unwrap();
        assert_eq!(
            m["uri"],
            format!("pkg:docker/busybox?digest=sha256%3A{d}&platform=linux%2Famd64")
        );
    }
}
