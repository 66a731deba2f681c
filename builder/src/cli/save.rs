//! `pallet save`: a stored image as a tar, with the writers of `--output`.
//!
//! `--format docker` (the default, as `docker save`) writes what `--output type=docker` writes:
//! the tar `docker load` and skopeo's `docker-archive:` read. `--format oci` writes what
//! `--output type=oci` writes: an OCI image layout tar (skopeo's `oci-archive:`). Layers are
//! gzip like the build outputs; the compressed blobs are shared with earlier exports. A
//! multi-platform image saves as its index with every platform in OCI format, and as the
//! host's platform alone in docker's. An attested image (`--provenance`) saves in OCI format
//! under an index with its attestation manifests; docker's format has no place for them.

use super::error::{CliError, Context};
use super::open_root;
use crate::export::attestation::has_attestations;
use crate::export::docker::{self, ArchiveOptions, Compression, ImageOptions, MediaTypes};
use crate::store::{get_image, image_platform, Attestation, StoredImage};
use clap::{Args, ValueEnum};
use registry::Reference;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Format {
    /// docker load's tar (Docker media types, manifest.json + OCI layout)
    Docker,
    /// OCI image layout tar (OCI media types)
    Oci,
}

#[derive(Args, Debug)]
pub struct SaveArgs {
    /// The image (name[:tag])
    pub image: String,
    /// Output file; `-` (the default, as docker save) writes to standard output
    #[arg(short = 'o', long = "output", value_name = "FILE", default_value = "-")]
    pub output: String,
    /// Archive format
    #[arg(long, value_enum, default_value = "docker")]
    pub format: Format,
}

pub fn save(args: SaveArgs, root: Option<PathBuf>) -> Result<ExitCode, CliError> {
    let name = Reference::parse_docker_ref(&args.image)
        .with_context(|| format!("invalid image name {}", args.image))?;
    if name.digest().is_some() {
        return Err(CliError::msg(format!(
            "pallet save takes a name:tag, not a digest ({})",
            args.image
        ))
        .with_help("`pallet images` lists the stored names"));
    }
    let name = name.to_string();
    let dest = Path::new(&args.output);
    // SAFETY: isatty has no preconditions.
    if args.output == "-" && unsafe { libc::isatty(1) } == 1 {
        return Err(
            CliError::msg("refusing to write an image tar to a terminal")
                .with_help("redirect standard output (`> app.tar`) or give -o FILE"),
        );
    }
    let root = open_root(root)?;
    // save writes compressed blobs into the store: hold it like a build, so prune waits.
    let _lock = root.lock_for_build()?;
    let image = get_image(&root, &name)
        .with_context(|| format!("reading {name} from the store"))?
        .ok_or_else(|| {
            CliError::msg(format!(
                "no image {} in the store at {}",
                args.image,
                root.path.display()
            ))
            .with_help(
                "`pallet images` lists the stored images; pass --root if they live elsewhere",
            )
        })?;
    let (media_types, docker_manifest) = match args.format {
        Format::Docker => (MediaTypes::Docker, true),
        Format::Oci => (MediaTypes::Oci, false),
    };
    let opts = ImageOptions {
        names: vec![image.name.clone()],
        media_types,
        compression: Compression::Gzip,
        annotations: Default::default(),
    };
    let saving = || format!("saving {name}");
    let export_one = |image: &StoredImage| {
        let layers = docker::stored_layers(&root, image)?;
        let config = docker::stored_config(&root, image);
        docker::store_image(&root, &config, &layers, &opts)
    };
    // A multi-platform image: every platform under its index in an OCI layout; docker load's
    // format holds one image, the host's platform (as docker save of such an image does).
    // An attested image (`--provenance`) keeps its attestation manifests in an OCI layout.
    let as_index = image.index.is_some() || has_attestations(&image);
    let exported = match args.format {
        Format::Oci if as_index => {
            let images: Vec<&StoredImage> = match &image.index {
                Some(index) => index.children.iter().collect(),
                None => vec![&image],
            };
            let mut children = Vec::new();
            for child in &images {
                children.push((
                    export_one(child).with_context(saving)?,
                    image_platform(child),
                ));
            }
            let attestations: Vec<&[Attestation]> =
                images.iter().map(|c| c.attestations.as_slice()).collect();
            docker::store_attested_index(
                &root,
                children,
                &attestations,
                &opts.names,
                media_types,
                &Default::default(),
            )
            .with_context(saving)?
        }
        _ => export_one(&image).with_context(saving)?,
    };
    let mtime = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    let archive = ArchiveOptions {
        names: &opts.names,
        docker_manifest,
        mtime,
    };
    docker::write_archive_to(&root, &exported, &archive, dest).with_context(saving)?;
    Ok(ExitCode::SUCCESS)
}
