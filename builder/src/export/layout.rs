//! OCI image layouts (image-spec `image-layout.md`): `oci-layout`, `index.json` and
//! `blobs/sha256/...`, as a directory or as a tar stream (buildx's `type=oci`).

use super::manifest::{Descriptor, ManifestBlobs, MEDIA_INDEX, MEDIA_MANIFEST};
use crate::store::StoreError;
use cache::Root;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Index {
    schema_version: u32,
    media_type: &'static str,
    manifests: Vec<Descriptor>,
}

fn index_json(m: &ManifestBlobs, tag: Option<&str>) -> Vec<u8> {
    let mut d = Descriptor::new(MEDIA_MANIFEST, &m.manifest);
    if let Some(name) = tag {
        // BuildKit's oci exporter: the full name for containerd, the tag for OCI tools.
        d.annotations
            .insert("io.containerd.image.name".into(), name.to_string());
        let short = name
            .rsplit_once(':')
            .filter(|(repo, _)| !repo.contains('/') || !name.contains('@'))
            .map(|(_, t)| t)
            .unwrap_or(name);
        d.annotations.insert(
            "org.opencontainers.image.ref.name".into(),
            short.to_string(),
        );
    }
    serde_json::to_vec(&Index {
        schema_version: 2,
        media_type: MEDIA_INDEX,
        manifests: vec![d],
    })
    .expect("index serializes")
}

const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

fn blob_digests(m: &ManifestBlobs) -> Vec<String> {
    let mut all: Vec<String> = m.layers.iter().map(|b| b.digest.clone()).collect();
    all.push(m.config.digest.clone());
    all.push(m.manifest.digest.clone());
    all.sort();
    all.dedup();
    all
}

fn io(what: String) -> impl FnOnce(std::io::Error) -> StoreError {
    move |source| StoreError::Io { what, source }
}

/// Writes the layout into `dest` (created if missing; blobs hard-linked from the store when
/// possible, copied otherwise).
pub fn write_layout_dir(
    root: &Root,
    m: &ManifestBlobs,
    tag: Option<&str>,
    dest: &Path,
) -> Result<(), StoreError> {
    let blobs = dest.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).map_err(io(format!("creating {}", blobs.display())))?;
    for digest in blob_digests(m) {
        let from = root.blobs.path(&digest)?;
        let to = blobs.join(digest.trim_start_matches("sha256:"));
        if to.exists() {
            continue;
        }
        if std::fs::hard_link(&from, &to).is_err() {
            std::fs::copy(&from, &to).map_err(io(format!(
                "copying {} to {}",
                from.display(),
                to.display()
            )))?;
        }
    }
    std::fs::write(dest.join("oci-layout"), OCI_LAYOUT)
        .map_err(io(format!("writing {}/oci-layout", dest.display())))?;
    std::fs::write(dest.join("index.json"), index_json(m, tag))
        .map_err(io(format!("writing {}/index.json", dest.display())))?;
    Ok(())
}

/// Writes the layout as a tar stream (deterministic: sorted entries, mtime `mtime`).
pub fn write_layout_tar(
    root: &Root,
    m: &ManifestBlobs,
    tag: Option<&str>,
    out: &mut dyn Write,
    mtime: u64,
) -> Result<(), StoreError> {
    let mut tar = tar::Builder::new(out);
    let mut entries: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    entries.insert("index.json".into(), index_json(m, tag));
    entries.insert("oci-layout".into(), OCI_LAYOUT.to_vec());
    let header = |size: u64| {
        let mut h = tar::Header::new_ustar();
        h.set_size(size);
        h.set_mode(0o644);
        h.set_mtime(mtime);
        h.set_entry_type(tar::EntryType::Regular);
        h
    };
    let mut dir = tar::Header::new_ustar();
    dir.set_entry_type(tar::EntryType::Directory);
    dir.set_mode(0o755);
    dir.set_mtime(mtime);
    dir.set_size(0);
    for d in ["blobs/", "blobs/sha256/"] {
        tar.append_data(&mut dir.clone(), d, std::io::empty())
            .map_err(io(format!("writing {d} to the layout tar")))?;
    }
    for digest in blob_digests(m) {
        let path = format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"));
        let file = root.blobs.open(&digest)?;
        let size = file
            .metadata()
            .map_err(io(format!("reading blob {digest}")))?
            .len();
        tar.append_data(&mut header(size), &path, file)
            .map_err(io(format!("writing {path} to the layout tar")))?;
    }
    for (path, data) in entries {
        tar.append_data(&mut header(data.len() as u64), &path, data.as_slice())
            .map_err(io(format!("writing {path} to the layout tar")))?;
    }
    tar.finish()
        .map_err(io("finishing the layout tar".into()))?;
    Ok(())
}
