//! `pallet save`: a stored image as a tar, with the writers of `--output`.
//!
//! `--format docker` (the default, as `docker save`) writes what `--output type=docker` writes:
//! the tar `docker load` and skopeo's `docker-archive:` read. `--format oci` writes what
//! `--output type=oci` writes: an OCI image layout tar (skopeo's `oci-archive:`). Layers are
//! gzip like the build outputs; the compressed blobs are shared with earlier exports.

use crate::export::docker::{self, ArchiveOptions, Compression, ImageOptions, MediaTypes};
use clap::{Args, ValueEnum};
use std::path::Path;
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

pub fn save(args: SaveArgs, root: Option<std::path::PathBuf>) -> Result<ExitCode, String> {
    let name = registry::Reference::parse_docker_ref(&args.image)
        .map_err(|e| format!("error: invalid image name {}: {e}\n", args.image))?;
    if name.digest().is_some() {
        return Err(format!(
            "error: pallet save takes a name:tag, not a digest ({})\n  = help: `pallet images` lists the stored names\n",
            args.image
        ));
    }
    let name = name.to_string();
    let dest = Path::new(&args.output);
    // SAFETY: isatty has no preconditions.
    if args.output == "-" && unsafe { libc::isatty(1) } == 1 {
        return Err("error: refusing to write an image tar to a terminal\n  = help: redirect standard output (`> app.tar`) or give -o FILE\n".into());
    }
    let root = super::open_root(root)?;
    // save writes compressed blobs into the store: hold it like a build, so prune waits.
    let _lock = root.lock_for_build().map_err(|e| format!("error: {e}\n"))?;
    let image = crate::store::get_image(&root, &name)
        .map_err(|e| format!("error: reading {name} from the store: {e}\n"))?
        .ok_or_else(|| {
            format!(
                "error: no image {} in the store at {}\n  = help: `pallet images` lists the stored images; pass --root if they live elsewhere\n",
                args.image,
                root.path.display()
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
    };
    let fail = |e: crate::store::StoreError| format!("error: saving {name}: {e}\n");
    let layers = docker::stored_layers(&root, &image).map_err(fail)?;
    let config = docker::stored_config(&root, &image);
    let exported = docker::store_image(&root, &config, &layers, &opts).map_err(fail)?;
    let mtime = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    let archive = ArchiveOptions {
        names: &opts.names,
        docker_manifest,
        mtime,
    };
    docker::write_archive_to(&root, &exported, &archive, dest).map_err(fail)?;
    Ok(ExitCode::SUCCESS)
}
