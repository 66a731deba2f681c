//! Images from an OCI image layout directory (`--build-context name=oci-layout://DIR[:TAG|@DIGEST]`,
//! and later `pallet load`): index.json -> manifest -> config and layers into the store. Each
//! layer (plain, gzip or zstd, by its media type: [`codec::decompressor`]) is
//! decompressed into a diff blob whose digest must equal the config's diff id, then unpacked as
//! a snapshot with the usual safety rules.

use super::layers::ensure_snapshot;
use super::{put_image, StoreError, StoredImage};
use cache::Root;
use graph::image::Image;
use serde_json::Value;
use std::path::Path;

fn bad(dir: &Path, msg: impl std::fmt::Display) -> StoreError {
    StoreError::Layer(format!("OCI layout {}: {msg}", dir.display()))
}

/// The file of blob `digest` in the layout: the digest is checked first (sha256 and 64 hex
/// digits), so a manifest's `sha256:../../x` never names a file outside `DIR/blobs/sha256`.
fn blob_path(dir: &Path, digest: &str) -> Result<std::path::PathBuf, StoreError> {
    let parsed = registry::Digest::parse(digest).map_err(|e| {
        bad(
            dir,
            format!("{e}; the layout is damaged or hostile, rewrite it with a trusted tool"),
        )
    })?;
    if parsed.algorithm() != "sha256" {
        return Err(bad(dir, format!("unsupported digest {parsed} (sha256 is)")));
    }
    Ok(dir.join("blobs/sha256").join(parsed.hex()))
}

fn read_blob(dir: &Path, digest: &str) -> Result<Vec<u8>, StoreError> {
    let data = std::fs::read(blob_path(dir, digest)?)
        .map_err(|e| bad(dir, format!("blob {digest}: {e}")))?;
    use sha2::Digest;
    let actual = format!("sha256:{}", hex::encode(sha2::Sha256::digest(&data)));
    if actual != digest {
        return Err(bad(dir, format!("blob {digest} has digest {actual}")));
    }
    Ok(data)
}

/// Picks the manifest: by digest (`@sha256:...`), by tag (`org.opencontainers.image.ref.name`),
/// or the only one.
fn pick_manifest(dir: &Path, index: &Value, selector: Option<&str>) -> Result<String, StoreError> {
    let manifests = index["manifests"]
        .as_array()
        .ok_or_else(|| bad(dir, "index.json has no manifests"))?;
    let digest_of = |m: &Value| m["digest"].as_str().map(str::to_string);
    match selector {
        Some(s) if s.starts_with("sha256:") => manifests
            .iter()
            .filter_map(digest_of)
            .find(|d| d == s)
            .ok_or_else(|| bad(dir, format!("no manifest {s}"))),
        Some(tag) => manifests
            .iter()
            .find(|m| m["annotations"]["org.opencontainers.image.ref.name"].as_str() == Some(tag))
            .and_then(digest_of)
            .ok_or_else(|| bad(dir, format!("no manifest tagged {tag}"))),
        None if manifests.len() == 1 => {
            digest_of(&manifests[0]).ok_or_else(|| bad(dir, "manifest without digest"))
        }
        None => Err(bad(
            dir,
            format!(
                "{} manifests: say which with :TAG or @sha256:DIGEST",
                manifests.len()
            ),
        )),
    }
}

/// The one image manifest of an index whose other entries (if any) are attestation manifests
/// (`vnd.docker.reference.type=attestation-manifest`); None for anything else (a manifest, or
/// an index of several platforms).
fn sole_image(index: &Value) -> Option<String> {
    let manifests = index["manifests"].as_array()?;
    let mut images = manifests.iter().filter(|m| {
        m["annotations"]["vnd.docker.reference.type"].as_str() != Some("attestation-manifest")
    });
    let image = images.next()?;
    if images.next().is_some() {
        return None;
    }
    image["digest"].as_str().map(str::to_string)
}

/// Imports the selected image of the layout at `dir` and tags it `name`.
pub fn import_oci_layout(
    root: &Root,
    dir: &Path,
    selector: Option<&str>,
    name: &str,
) -> Result<StoredImage, StoreError> {
    let index: Value = serde_json::from_slice(
        &std::fs::read(dir.join("index.json")).map_err(|e| bad(dir, format!("index.json: {e}")))?,
    )
    .map_err(|e| bad(dir, format!("index.json: {e}")))?;
    let mut manifest_digest = pick_manifest(dir, &index, selector)?;
    let mut manifest_bytes = read_blob(dir, &manifest_digest)?;
    let mut manifest: Value =
        serde_json::from_slice(&manifest_bytes).map_err(|e| bad(dir, format!("manifest: {e}")))?;
    // One image beside its attestation manifests (an attested build's output: BuildKit's
    // and pallet's `--provenance`): the image.
    if let Some(only) = sole_image(&manifest) {
        manifest_digest = only;
        manifest_bytes = read_blob(dir, &manifest_digest)?;
        manifest = serde_json::from_slice(&manifest_bytes)
            .map_err(|e| bad(dir, format!("manifest: {e}")))?;
    }
    if manifest["manifests"].is_array() {
        return Err(bad(dir, "the selected manifest is an index (multi-platform): pick a platform's manifest by digest"));
    }
    let config_digest = manifest["config"]["digest"]
        .as_str()
        .ok_or_else(|| bad(dir, "manifest has no config"))?
        .to_string();
    let config_bytes = read_blob(dir, &config_digest)?;
    let config: Image =
        serde_json::from_slice(&config_bytes).map_err(|e| bad(dir, format!("config: {e}")))?;
    let layers = manifest["layers"]
        .as_array()
        .ok_or_else(|| bad(dir, "manifest has no layers"))?;
    if layers.len() != config.rootfs.diff_ids.len() {
        return Err(bad(
            dir,
            format!(
                "{} layers but {} diff ids in the config",
                layers.len(),
                config.rootfs.diff_ids.len()
            ),
        ));
    }
    for (layer, diff_id) in layers.iter().zip(&config.rootfs.diff_ids) {
        if super::layer_forms::has_layer(root, diff_id) {
            ensure_snapshot(root, diff_id)?;
            continue;
        }
        let digest = layer["digest"]
            .as_str()
            .ok_or_else(|| bad(dir, "layer without digest"))?;
        let media = layer["mediaType"].as_str().unwrap_or("");
        let file = std::fs::File::open(blob_path(dir, digest)?)
            .map_err(|e| bad(dir, format!("layer {digest}: {e}")))?;
        let mut reader = codec::decompressor(media, std::io::BufReader::new(file))
            .map_err(|e| bad(dir, format!("layer {digest}: {e}")))?;
        let mut writer = root.blobs.writer()?;
        std::io::copy(&mut reader, &mut writer)
            .map_err(|e| bad(dir, format!("layer {digest}: {e}")))?;
        writer.commit_expect(diff_id).map_err(|e| {
            bad(
                dir,
                format!("layer {digest} does not match diff id {diff_id}: {e}"),
            )
        })?;
        ensure_snapshot(root, diff_id)?;
    }
    let image = StoredImage {
        name: name.to_string(),
        manifest_digest: manifest_digest.clone(),
        config_digest: config_digest.clone(),
        layers: config.rootfs.diff_ids.clone(),
        config,
        repo_digest: None,
        index: None,
        attestations: Vec::new(),
    };
    // Keep the config and manifest blobs so the image can be exported unchanged.
    root.blobs.put_bytes(&config_bytes)?;
    root.blobs.put_bytes(&manifest_bytes)?;
    put_image(root, &image)?;
    Ok(image)
}
