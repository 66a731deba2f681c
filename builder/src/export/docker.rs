//! Image archives: the tar `docker load` reads and the OCI image layout, as one writer.
//!
//! `--output type=docker` (and `pallet save`) write what BuildKit's docker exporter and
//! `docker save` (moby 25+) write: an OCI image layout (`oci-layout`, `index.json`,
//! `blobs/sha256/...`) plus the Docker Image Specification v1.2 files at the top, `manifest.json`
//! (`[{"Config": "blobs/sha256/<hex>", "RepoTags": ["app:latest"], "Layers": [...]}]`) and the
//! legacy `repositories`. The layer entries of `manifest.json` point at the same blobs as the OCI
//! manifest, gzip or uncompressed: `docker load` and skopeo's `docker-archive:` decompress them.
//! `--output type=oci` is the same layout without the Docker files, as a tar or a directory.
//!
//! Media types are OCI's or Docker's v2 schema 2 (`oci-mediatypes=false`, the default of
//! `type=docker` as in buildx). Layers are gzip (the default), zstd or uncompressed at a level
//! ([`codec::Compression`]); zstd under Docker media types gets containerd's docker zstd
//! type, as BuildKit writes it. Tars are deterministic: entries sorted by name, numeric owner
//! 0:0, one mtime for every entry (SOURCE_DATE_EPOCH of the build, else 0).
//!
//! Knows images, blobs and references; not builds, Dockerfiles or the CLI.

use super::annotations::Annotations;
use super::attestation;
use crate::store::{
    compress_layer, compress_layers, index_bytes_with, layer_size, memoized_or_remote, Attestation,
    Descriptor, LayerRecord, ManifestBlobs, StoreError, StoredImage, MEDIA_CONFIG, MEDIA_INDEX,
    MEDIA_MANIFEST,
};
use cache::{BlobInfo, Root};
use graph::Platform;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER_GZIP: &str = codec::MEDIA_DOCKER_GZIP;
pub const DOCKER_LAYER_TAR: &str = codec::MEDIA_DOCKER_TAR;
pub const DOCKER_LAYER_ZSTD: &str = codec::MEDIA_DOCKER_ZSTD;

/// Which media types the manifest and its descriptors carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaTypes {
    /// `application/vnd.oci.image.*`
    Oci,
    /// Docker v2 schema 2 (`application/vnd.docker.*`), what `oci-mediatypes=false` asks for.
    Docker,
}

impl MediaTypes {
    fn manifest(self) -> &'static str {
        match self {
            MediaTypes::Oci => MEDIA_MANIFEST,
            MediaTypes::Docker => DOCKER_MANIFEST,
        }
    }

    fn config(self) -> &'static str {
        match self {
            MediaTypes::Oci => MEDIA_CONFIG,
            MediaTypes::Docker => DOCKER_CONFIG,
        }
    }
}

/// Layer blobs as the archive carries them (`compression=` of an output, `--compression`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// gzip at its default level (buildx's default), compressed once per diff id and
    /// remembered by `compress`.
    Gzip,
    /// The stored diffs as they are (what `docker save` writes); no compression cost.
    Uncompressed,
    /// Any algorithm and level ([`codec::Compression::parse`]: `zstd`, `zstd,level=19`,
    /// `gzip,level=1`, ...).
    Custom(codec::Compression),
}

impl Compression {
    /// The algorithm and level this stands for.
    pub fn layers(self) -> codec::Compression {
        match self {
            Compression::Gzip => codec::Compression::default(),
            Compression::Uncompressed => codec::Compression::Uncompressed,
            Compression::Custom(c) => c,
        }
    }
}

impl From<codec::Compression> for Compression {
    fn from(c: codec::Compression) -> Self {
        Compression::Custom(c)
    }
}

/// How an image is exported (the image half of an `--output`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageOptions {
    /// Normalized references with a tag (`docker.io/library/app:latest`) to name the image in
    /// the archive; empty means "the build's first tag, if any".
    pub names: Vec<String>,
    pub media_types: MediaTypes,
    pub compression: Compression,
    /// `--annotation`: on the manifest, and on its descriptor in index.json.
    pub annotations: Annotations,
}

/// A manifest stored in the content store, ready to be written out.
#[derive(Debug, Clone)]
pub struct ExportedImage {
    pub blobs: ManifestBlobs,
    /// The manifest's media type (for the index descriptor).
    pub media_type: &'static str,
    /// Uncompressed diff ids, bottom first (for `repositories`).
    pub diff_ids: Vec<String>,
    /// Annotations for the manifest's descriptor in index.json.
    pub descriptor_annotations: BTreeMap<String, String>,
    /// A multi-platform image: each platform's manifest and blobs (`blobs.manifest` is then
    /// the image index over them, `media_type` the index's).
    pub children: Vec<ManifestBlobs>,
}

/// An image manifest as pallet writes it (an image's, an attestation manifest's).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Manifest {
    pub schema_version: u32,
    pub media_type: &'static str,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// Stores the config bytes and a manifest over the layers, compressed as asked (compressed
/// blobs are made once per diff id, algorithm and level, and reused by later exports).
pub fn store_image(
    root: &Root,
    config: &[u8],
    layers: &[LayerRecord],
    opts: &ImageOptions,
) -> Result<ExportedImage, StoreError> {
    let compression = opts.compression.layers();
    let blobs: Vec<BlobInfo> = compress_layers(root, layers, &compression)?;
    store_image_over(root, config, layers, blobs, opts)
}

/// [`store_image`] for a push: a layer a remote cache holds in the push's compression is
/// named by that blob (the push HEADs or mounts it), not compressed or fetched.
pub fn store_push_image(
    root: &Root,
    config: &[u8],
    layers: &[LayerRecord],
    opts: &ImageOptions,
) -> Result<ExportedImage, StoreError> {
    let compression = opts.compression.layers();
    let blobs: Vec<BlobInfo> = layers
        .iter()
        .map(|l| match memoized_or_remote(root, l, &compression)? {
            Some(blob) => Ok(blob),
            None => compress_layer(root, l, &compression),
        })
        .collect::<Result<_, _>>()?;
    store_image_over(root, config, layers, blobs, opts)
}

fn store_image_over(
    root: &Root,
    config: &[u8],
    layers: &[LayerRecord],
    blobs: Vec<BlobInfo>,
    opts: &ImageOptions,
) -> Result<ExportedImage, StoreError> {
    let compression = opts.compression.layers();
    let config_blob = root.blobs.put_bytes(config)?;
    let types = opts.media_types;
    let layer_type = compression.media_type(types == MediaTypes::Oci);
    let manifest = Manifest {
        schema_version: 2,
        media_type: types.manifest(),
        config: Descriptor::new(types.config(), &config_blob),
        layers: blobs
            .iter()
            .map(|b| Descriptor::new(layer_type, b))
            .collect(),
        annotations: opts.annotations.manifest.clone(),
    };
    let manifest_blob = root
        .blobs
        .put_bytes(&serde_json::to_vec(&manifest).expect("manifest serializes"))?;
    Ok(ExportedImage {
        blobs: ManifestBlobs {
            manifest: manifest_blob,
            config: config_blob,
            layers: blobs,
        },
        media_type: types.manifest(),
        diff_ids: layers.iter().map(|l| l.diff_id.clone()).collect(),
        descriptor_annotations: opts.annotations.manifest_descriptor.clone(),
        children: Vec::new(),
    })
}

/// Stores an image index (OCI's, or Docker's manifest list with Docker media types) over
/// exported images, each with its platform; the result writes out as one multi-platform image.
pub fn store_index(
    root: &Root,
    children: Vec<(ExportedImage, Platform)>,
    types: MediaTypes,
    annotations: &Annotations,
) -> Result<ExportedImage, StoreError> {
    let none = vec![&[][..]; children.len()];
    store_attested_index(root, children, &none, &[], types, annotations)
}

/// [`store_index`] where child `i` has the attestations `attestations[i]` (none: empty): each
/// attested child gets an attestation manifest about it, listed after the images (see
/// [`super::attestation`]); `names` name the image in the statements' subjects.
pub fn store_attested_index(
    root: &Root,
    children: Vec<(ExportedImage, Platform)>,
    attestations: &[&[Attestation]],
    names: &[String],
    types: MediaTypes,
    annotations: &Annotations,
) -> Result<ExportedImage, StoreError> {
    let manifests: Vec<(String, String, u64, Platform)> = children
        .iter()
        .map(|(img, p)| {
            (
                img.media_type.to_string(),
                img.blobs.manifest.digest.clone(),
                img.blobs.manifest.size,
                p.clone(),
            )
        })
        .collect();
    let mut extra = Vec::new();
    let mut extra_blobs = Vec::new();
    for ((img, p), atts) in children.iter().zip(attestations) {
        if atts.is_empty() {
            continue;
        }
        if types != MediaTypes::Oci {
            return Err(StoreError::Layer(NO_DOCKER_ATTESTATIONS.into()));
        }
        let subject = attestation::Subject {
            digest: &img.blobs.manifest.digest,
            names,
            platform: p,
        };
        let made = attestation::store_attestations(root, atts, &subject)?;
        extra.push(made.entry);
        extra_blobs.push(made.blobs);
    }
    let media_type = match types {
        MediaTypes::Oci => MEDIA_INDEX,
        MediaTypes::Docker => registry::manifest::DOCKER_LIST,
    };
    let index = root.blobs.put_bytes(&index_bytes_with(
        media_type,
        &manifests,
        &extra,
        &annotations.index,
    ))?;
    let first = children
        .first()
        .map(|(img, _)| img.clone())
        .ok_or_else(|| StoreError::Layer("an image index needs at least one image".into()))?;
    Ok(ExportedImage {
        blobs: ManifestBlobs {
            manifest: index,
            ..first.blobs.clone()
        },
        media_type,
        diff_ids: first.diff_ids,
        descriptor_annotations: annotations.index_descriptor.clone(),
        children: children
            .into_iter()
            .map(|(img, _)| img.blobs)
            .chain(extra_blobs)
            .collect(),
    })
}

/// BuildKit's refusal, with what to do.
pub const NO_DOCKER_ATTESTATIONS: &str =
    "cannot export attestations with \"oci-mediatypes=false\": Docker's manifest list has no \
     annotations to mark an attestation manifest; use OCI media types (oci-mediatypes=true, \
     --push-format oci) or build without --provenance";

/// The layers of a stored image (diff ids with the sizes of their stored blobs).
pub fn stored_layers(root: &Root, image: &StoredImage) -> Result<Vec<LayerRecord>, StoreError> {
    image
        .layers
        .iter()
        .map(|diff_id| {
            let size = layer_size(root, diff_id).map_err(|_| {
                StoreError::Layer(format!(
                    "layer {diff_id} of {} is missing from the store; rebuild, pull or \
                     re-import the image",
                    image.name
                ))
            })?;
            Ok(LayerRecord {
                diff_id: diff_id.clone(),
                size,
                created: None,
            })
        })
        .collect()
}

/// The exact config bytes of a stored image (its config blob), or the record's config
/// serialized the way the exporter writes it when the blob is gone.
pub fn stored_config(root: &Root, image: &StoredImage) -> Vec<u8> {
    root.blobs
        .read(&image.config_digest)
        .unwrap_or_else(|_| serde_json::to_vec(&image.config).expect("config serializes"))
}

/// What goes into an archive besides the blobs.
pub struct ArchiveOptions<'a> {
    /// Normalized references with a tag; each becomes an `index.json` entry and a RepoTag.
    pub names: &'a [String],
    /// Add `manifest.json` and `repositories` (`type=docker`); without, a plain OCI layout.
    pub docker_manifest: bool,
    /// Modification time of every entry (seconds since the epoch).
    pub mtime: u64,
}

enum Content {
    Blob(String),
    Bytes(Vec<u8>),
}

fn io(what: String) -> impl FnOnce(std::io::Error) -> StoreError {
    move |source| StoreError::Io { what, source }
}

fn blob_path(digest: &str) -> String {
    format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"))
}

/// containerd's name annotations: the full name, and the tag alone as the OCI ref name.
fn index_json(img: &ExportedImage, names: &[String]) -> Vec<u8> {
    let mut manifests = Vec::new();
    let descriptor = || {
        let mut d = Descriptor::new(img.media_type, &img.blobs.manifest);
        d.annotations.extend(img.descriptor_annotations.clone());
        d
    };
    for name in names {
        let mut d = descriptor();
        let tag = registry::Reference::parse(name)
            .ok()
            .and_then(|r| r.tag().map(str::to_string))
            .unwrap_or_else(|| name.clone());
        d.annotations
            .insert("io.containerd.image.name".into(), name.clone());
        d.annotations
            .insert("org.opencontainers.image.ref.name".into(), tag);
        manifests.push(d);
    }
    if manifests.is_empty() {
        manifests.push(descriptor());
    }
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Index {
        schema_version: u32,
        media_type: &'static str,
        manifests: Vec<Descriptor>,
    }
    serde_json::to_vec(&Index {
        schema_version: 2,
        media_type: MEDIA_INDEX,
        manifests,
    })
    .expect("index serializes")
}

/// `manifest.json` (Docker Image Specification v1.2) and `repositories`, as docker save.
fn docker_files(img: &ExportedImage, names: &[String]) -> (Vec<u8>, Option<Vec<u8>>) {
    #[derive(Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct Item {
        config: String,
        repo_tags: Vec<String>,
        layers: Vec<String>,
    }
    let mut repo_tags = Vec::new();
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let top = img
        .diff_ids
        .last()
        .map(|d| d.trim_start_matches("sha256:").to_string());
    for name in names {
        let Ok(r) = registry::Reference::parse(name) else {
            continue;
        };
        let Some(tag) = r.tag() else { continue };
        let familiar = r.familiar();
        let repo = familiar
            .strip_suffix(&format!(":{tag}"))
            .unwrap_or(&familiar);
        if let Some(top) = &top {
            repositories
                .entry(repo.to_string())
                .or_default()
                .insert(tag.to_string(), top.clone());
        }
        repo_tags.push(familiar);
    }
    let manifest = serde_json::to_vec(&[Item {
        config: blob_path(&img.blobs.config.digest),
        repo_tags,
        layers: img
            .blobs
            .layers
            .iter()
            .map(|l| blob_path(&l.digest))
            .collect(),
    }])
    .expect("manifest.json serializes");
    let repositories = (!repositories.is_empty())
        .then(|| serde_json::to_vec(&repositories).expect("repositories serializes"));
    (manifest, repositories)
}

/// Every file of the archive by path, sorted (BTreeMap), blobs deduplicated.
fn entries(img: &ExportedImage, opts: &ArchiveOptions) -> BTreeMap<String, Content> {
    let mut all = BTreeMap::new();
    for m in std::iter::once(&img.blobs).chain(&img.children) {
        for b in m.layers.iter().chain([&m.config, &m.manifest]) {
            all.insert(blob_path(&b.digest), Content::Blob(b.digest.clone()));
        }
    }
    all.insert(
        "oci-layout".into(),
        Content::Bytes(br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec()),
    );
    all.insert(
        "index.json".into(),
        Content::Bytes(index_json(img, opts.names)),
    );
    if opts.docker_manifest {
        let (manifest, repositories) = docker_files(img, opts.names);
        all.insert("manifest.json".into(), Content::Bytes(manifest));
        if let Some(r) = repositories {
            all.insert("repositories".into(), Content::Bytes(r));
        }
    }
    all
}

/// Writes the archive as a tar stream; `archive` names it in errors (`the image archive
/// /out.tar`: a full disk says which file it filled).
fn write_archive(
    root: &Root,
    img: &ExportedImage,
    opts: &ArchiveOptions,
    archive: &str,
    out: &mut dyn Write,
) -> Result<(), StoreError> {
    let mut tar = tar::Builder::new(out);
    let header = |kind: tar::EntryType, mode: u32, size: u64| {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(opts.mtime);
        h.set_size(size);
        h
    };
    let mut wrote_dirs = false;
    for (path, content) in entries(img, opts) {
        // "blobs/" and "blobs/sha256/" sort just before their first blob.
        if path.starts_with("blobs/") && !wrote_dirs {
            for dir in ["blobs/", "blobs/sha256/"] {
                let mut h = header(tar::EntryType::Directory, 0o755, 0);
                tar.append_data(&mut h, dir, std::io::empty())
                    .map_err(io(format!("writing {dir} to {archive}")))?;
            }
            wrote_dirs = true;
        }
        let what = || format!("writing {path} to {archive}");
        match content {
            Content::Blob(digest) => {
                let file = root.blobs.open(&digest)?;
                let size = file
                    .metadata()
                    .map_err(io(format!("reading blob {digest}")))?
                    .len();
                let mut h = header(tar::EntryType::Regular, 0o644, size);
                tar.append_data(&mut h, &path, file).map_err(io(what()))?;
            }
            Content::Bytes(data) => {
                let mut h = header(tar::EntryType::Regular, 0o644, data.len() as u64);
                tar.append_data(&mut h, &path, data.as_slice())
                    .map_err(io(what()))?;
            }
        }
    }
    tar.into_inner()
        .and_then(|w| w.flush())
        .map_err(io(format!("finishing {archive}")))?;
    Ok(())
}

/// Writes the archive's files into `dest` (created if missing; blobs hard-linked from the store
/// when possible, copied otherwise; `index.json` replaced).
pub fn write_archive_dir(
    root: &Root,
    img: &ExportedImage,
    opts: &ArchiveOptions,
    dest: &Path,
) -> Result<(), StoreError> {
    let blobs = dest.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).map_err(io(format!("creating {}", blobs.display())))?;
    for (path, content) in entries(img, opts) {
        let to = dest.join(&path);
        match content {
            Content::Blob(digest) => {
                if to.exists() {
                    continue;
                }
                let from = root.blobs.path(&digest)?;
                if std::fs::hard_link(&from, &to).is_err() {
                    std::fs::copy(&from, &to).map_err(io(format!(
                        "copying {} to {}",
                        from.display(),
                        to.display()
                    )))?;
                }
            }
            Content::Bytes(data) => {
                std::fs::write(&to, data).map_err(io(format!("writing {}", to.display())))?
            }
        }
    }
    Ok(())
}

/// Writes the archive as a tar to the file `dest`, or to standard output when `dest` is `-`.
/// A file left half-written by an error is removed.
pub fn write_archive_to(
    root: &Root,
    img: &ExportedImage,
    opts: &ArchiveOptions,
    dest: &Path,
) -> Result<(), StoreError> {
    if dest.as_os_str() == "-" {
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        return write_archive(root, img, opts, "the image archive on stdout", &mut out);
    }
    let file = std::fs::File::create(dest).map_err(|source| {
        let hint = match source.kind() {
            std::io::ErrorKind::NotFound => " (create its directory first)",
            std::io::ErrorKind::IsADirectory => " (give a file name, not a directory)",
            _ => "",
        };
        StoreError::Io {
            what: format!("creating the image archive {}{hint}", dest.display()),
            source,
        }
    })?;
    let mut out = std::io::BufWriter::new(file);
    let archive = format!("the image archive {}", dest.display());
    let result = write_archive(root, img, opts, &archive, &mut out).and_then(|()| {
        let file = out
            .into_inner()
            .map_err(|e| io(format!("writing {}", dest.display()))(e.into_error()))?;
        file.sync_all()
            .map_err(io(format!("writing {}", dest.display())))
    });
    if result.is_err() {
        let _ = std::fs::remove_file(dest);
    }
    result
}
