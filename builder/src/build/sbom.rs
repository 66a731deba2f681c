//! SBOM attestations (`--sbom`, `--attest type=sbom`) by BuildKit's SBOM scanner protocol
//! (its docs/attestations/sbom-protocol.md, frontend/attestations/sbom/sbom.go): the generator
//! image runs its entrypoint and cmd, for the build platform, with the built image's file tree
//! read-only at `/run/src/core/sbom` (`BUILDKIT_SCAN_SOURCE`), a tmpfs at `/tmp`, its other
//! keys as `BUILDKIT_SCAN_KEY=VALUE`, and writes in-toto statements (SPDX JSON) to `/run/out`
//! (`BUILDKIT_SCAN_DESTINATION`). Each file there becomes an attestation of the image (its
//! predicate type and predicate; the export gives it its subject).
//!
//! The scan is a graph of its own solved after the image (the generator, `/run/out` made in
//! it, the scanner run over the image's root): the image's steps are cache hits, the scan a
//! step like any other, cached by the image it scanned. Extras (`scan-context`, `scan-stage`:
//! the build context and intermediate stages) are not scanned.

use super::attest::SbomSpec;
use super::BuildError;
use crate::events::Event;
use crate::solver::{solve, SolveOptions};
use crate::store::{open_layer, Attestation};
use graph::resolve::ImageResolver;
use graph::{
    Exec, ExecMount, FileAction, FileOp, Graph, Meta, MountKind, Network, Op, Platform, Source,
};
use std::io::Read;

const SOURCE: &str = "/run/src/core/sbom";
const DESTINATION: &str = "/run/out";
/// The most a scanner may write in one statement (an SPDX document of a large image is a few
/// MB).
const STATEMENT_LIMIT: u64 = 64 << 20;
/// The most statements read from one scan, and their most bytes in all (they are kept with
/// the image in the store's records).
const STATEMENTS_LIMIT: usize = 64;
const TOTAL_LIMIT: u64 = 128 << 20;

/// Scans the image `root` of `graph` with the generator; its statements as attestations.
pub fn scan(
    spec: &SbomSpec,
    graph: &Graph,
    root: &graph::Digest,
    host: &Platform,
    resolver: &dyn ImageResolver,
    opts: &SolveOptions,
    events: &(dyn Fn(Event) + Sync),
) -> Result<Vec<Attestation>, BuildError> {
    let failed = |why: String| BuildError::Sbom {
        generator: spec.generator.clone(),
        why,
    };
    let resolved = resolver
        .resolve(&spec.generator, host)
        .map_err(|e| failed(format!("resolving the generator image: {e}")))?
        .ok_or_else(|| failed("the generator image cannot be found".into()))?;
    let cfg = &resolved.image.config;
    let mut args: Vec<String> = cfg.entrypoint.clone().unwrap_or_default();
    args.extend(cfg.cmd.clone().unwrap_or_default());
    if args.is_empty() {
        return Err(failed(
            "the generator image has no entrypoint or cmd to run".into(),
        ));
    }
    let mut env = cfg.env.clone();
    env.push(format!("BUILDKIT_SCAN_DESTINATION={DESTINATION}"));
    env.push(format!("BUILDKIT_SCAN_SOURCE={SOURCE}"));
    for (k, v) in &spec.params {
        env.push(format!("BUILDKIT_SCAN_{k}={v}"));
    }
    let mut g = graph.clone();
    let meta = |name: String| Meta {
        name,
        stage: "sbom".into(),
        ..Default::default()
    };
    let generator = g.add(
        Op::Source(Source::Image {
            reference: resolved.reference.clone(),
            platform: host.clone(),
        }),
        Vec::new(),
        meta(format!("[sbom] FROM {}", spec.generator)),
    );
    let out_dir = g.add(
        Op::File(FileOp {
            on_input: true,
            actions: vec![FileAction::Mkdir {
                path: DESTINATION.into(),
                mode: 0o755,
                parents: true,
                owner: None,
                timestamp: None,
            }],
        }),
        vec![generator],
        meta(format!("[sbom] mkdir {DESTINATION}")),
    );
    let run = g.add(
        Op::Exec(Exec {
            args,
            env,
            cwd: if cfg.working_dir.is_empty() {
                "/".into()
            } else {
                cfg.working_dir.clone()
            },
            user: cfg.user.clone(),
            network: Network::Default,
            insecure: false,
            mounts: vec![
                ExecMount {
                    target: SOURCE.into(),
                    kind: MountKind::Input {
                        input: 1,
                        source: "/".into(),
                        readonly: true,
                    },
                },
                ExecMount {
                    target: "/tmp".into(),
                    kind: MountKind::Tmpfs { size: None },
                },
            ],
            platform: None,
            hostname: String::new(),
            shm_size: 0,
            ulimits: Vec::new(),
        }),
        vec![out_dir, root.clone()],
        meta(format!("[sbom] generating sbom using {}", spec.generator)),
    );
    let solved = solve(&g, &run, opts, events)?;
    let top = solved
        .layers
        .last()
        .ok_or_else(|| failed("the scan made no layer".into()))?;
    let statements = read_statements(opts.root, &top.diff_id).map_err(failed)?;
    if statements.is_empty() {
        return Err(failed(format!(
            "the scanner wrote no statement to {DESTINATION} (BUILDKIT_SCAN_DESTINATION)"
        )));
    }
    Ok(statements)
}

/// The in-toto statements a scan wrote under `run/out/` in its layer `diff_id`.
fn read_statements(root: &cache::Root, diff_id: &str) -> Result<Vec<Attestation>, String> {
    let layer = open_layer(root, diff_id).map_err(|e| e.to_string())?;
    let mut tar = tar::Archive::new(layer);
    let mut out = Vec::new();
    let mut total = 0u64;
    let entries = tar
        .entries()
        .map_err(|e| format!("reading the scan: {e}"))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("reading the scan: {e}"))?;
        let path = entry
            .path()
            .map_err(|e| format!("reading the scan: {e}"))?
            .to_string_lossy()
            .into_owned();
        let path = path.trim_start_matches("./");
        let Some(name) = path.strip_prefix("run/out/") else {
            continue;
        };
        // Whiteouts and subdirectories are not statements.
        if !entry.header().entry_type().is_file()
            || name.contains('/')
            || name.is_empty()
            || name.starts_with(".wh.")
        {
            continue;
        }
        if out.len() == STATEMENTS_LIMIT {
            return Err(format!(
                "the scanner wrote more than {STATEMENTS_LIMIT} files"
            ));
        }
        let mut text = Vec::new();
        entry
            .take(STATEMENT_LIMIT + 1)
            .read_to_end(&mut text)
            .map_err(|e| format!("reading {name}: {e}"))?;
        if text.len() as u64 > STATEMENT_LIMIT {
            return Err(format!("{name} is larger than {STATEMENT_LIMIT} bytes"));
        }
        total += text.len() as u64;
        if total > TOTAL_LIMIT {
            return Err(format!(
                "the scanner wrote more than {TOTAL_LIMIT} bytes of statements"
            ));
        }
        out.push(statement(name, &text)?);
    }
    Ok(out)
}

/// A scan file as an attestation: an in-toto statement's predicate type and predicate.
fn statement(name: &str, text: &[u8]) -> Result<Attestation, String> {
    let v: serde_json::Value = serde_json::from_slice(text)
        .map_err(|e| format!("{name} is not an in-toto statement (JSON): {e}"))?;
    let predicate_type = v["predicateType"]
        .as_str()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| format!("{name} is not an in-toto statement: no predicateType"))?;
    let predicate = v
        .get("predicate")
        .ok_or_else(|| format!("{name} is not an in-toto statement: no predicate"))?;
    Ok(Attestation {
        predicate_type: predicate_type.to_string(),
        predicate: serde_json::to_string(predicate).expect("JSON serializes"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_files_must_be_statements() {
        let a = statement(
            "sbom.spdx.json",
            br#"{"_type":"https://in-toto.io/Statement/v1","predicateType":"https://spdx.dev/Document","predicate":{"name":"x"}}"#,
        )
        .unwrap();
        assert_eq!(a.predicate_type, "https://spdx.dev/Document");
        assert_eq!(a.predicate, r#"{"name":"x"}"#);
        assert!(statement("a.json", b"{}")
            .unwrap_err()
            .contains("no predicateType"));
        assert!(statement("a.json", b"nope")
            .unwrap_err()
            .contains("not an in-toto"));
    }
}
