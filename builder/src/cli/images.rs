//! `pallet import`, `pallet images`, `pallet prune` and `pallet du`.

use super::error::{CliError, Context};
use super::{open_root, require_root};
use crate::progress::human_size;
use crate::store::{self, close_and_settle, disk_usage, import_rootfs, layer_size, list_images};
use clap::Args;
use frontend::lower::platform;
use graph::time::rfc3339;
use registry::Reference;
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// The root file tree as a tar (plain or gzip); `-` reads standard input
    pub file: String,
    /// Name and optionally a tag for the image (name:tag)
    #[arg(short = 't', long = "tag", required = true)]
    pub tag: String,
    /// Platform to record in the image config (default: the host's)
    #[arg(long)]
    pub platform: Option<String>,
    /// Add the image to NAME as one more platform: NAME becomes (or stays) a multi-platform
    /// image with an OCI index; an earlier image of the same platform under NAME is replaced
    #[arg(long)]
    pub append: bool,
}

pub fn import(args: ImportArgs, root: Option<PathBuf>) -> Result<ExitCode, CliError> {
    require_root("pallet import")?;
    let name = Reference::parse_docker_ref(&args.tag)
        .with_context(|| format!("invalid -t {}", args.tag))?
        .to_string();
    let plat = match &args.platform {
        Some(p) => platform::parse(p).context("invalid --platform")?,
        None => platform::host(),
    };
    let root = open_root(root)?;
    let now = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0)
        });
    let mut input: Box<dyn Read> = if args.file == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(
            std::fs::File::open(&args.file)
                .with_context(|| format!("cannot read {}", args.file))?,
        )
    };
    let before = if args.append {
        store::get_image(&root, &name).context("reading the image to append to")?
    } else {
        None
    };
    let mut image = import_rootfs(&root, &mut input, &args.file, &name, &plat, &rfc3339(now))
        .with_context(|| format!("importing {}", args.file))?;
    if let Some(before) = before {
        let mut children: Vec<store::StoredImage> = match before.index {
            Some(index) => index.children,
            None => vec![before],
        };
        children.retain(|c| store::image_platform(c) != plat);
        children.push(image);
        let index = store::put_index(&root, &name, children, &platform::host())
            .context("tagging the multi-platform image")?;
        image = store::StoredImage {
            manifest_digest: index
                .index
                .as_ref()
                .map(|i| i.digest.clone())
                .unwrap_or_default(),
            ..index
        };
    }
    close_and_settle(root);
    println!("{} {}", image.name, image.manifest_digest);
    Ok(ExitCode::SUCCESS)
}

pub fn list(root: Option<PathBuf>) -> Result<ExitCode, CliError> {
    let root = open_root(root)?;
    let images = list_images(&root).context("listing images")?;
    println!(
        "{:<50} {:<19} {:<22} {:>10}  PLATFORMS",
        "NAME", "MANIFEST", "CREATED", "SIZE"
    );
    for img in images {
        let size: u64 = img
            .layers
            .iter()
            .filter_map(|d| layer_size(&root, d).ok())
            .sum();
        // A multi-platform image shows its index's digest and every platform.
        let digest = img
            .index
            .as_ref()
            .map_or(img.manifest_digest.as_str(), |i| i.digest.as_str())
            .trim_start_matches("sha256:");
        let platforms: Vec<String> = store::platforms(&img)
            .iter()
            .map(|p| p.to_string())
            .collect();
        println!(
            "{:<50} {:<19} {:<22} {:>10}  {}",
            img.name,
            &digest[..digest.len().min(12)],
            img.config.created.as_deref().unwrap_or("-"),
            human_size(size),
            platforms.join(",")
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn prune(all: bool, root: Option<PathBuf>) -> Result<ExitCode, CliError> {
    let root = open_root(root)?;
    let lock = match root.try_lock_for_prune()? {
        Some(l) => l,
        None => {
            eprintln!("pallet: a build is using this store; waiting for it to finish");
            root.lock_for_prune()?
        }
    };
    let r = store::prune(&root, all).context("pruning")?;
    drop(lock);
    println!(
        "Deleted {} images, {} cache records, {} blobs, {} snapshots, {} cache mounts\nTotal reclaimed space: {}",
        r.images,
        r.cache_records,
        r.blobs,
        r.snapshots,
        r.cache_mounts,
        human_size(r.bytes)
    );
    Ok(ExitCode::SUCCESS)
}

pub fn du(root: Option<PathBuf>) -> Result<ExitCode, CliError> {
    let root = open_root(root)?;
    let u = disk_usage(&root)?;
    println!("{:<16} {:>8} {:>10}", "TYPE", "COUNT", "SIZE");
    println!(
        "{:<16} {:>8} {:>10}",
        "images",
        u.images,
        human_size(u.referenced_bytes)
    );
    println!(
        "{:<16} {:>8} {:>10}",
        "blobs",
        u.blobs,
        human_size(u.blob_bytes)
    );
    println!(
        "{:<16} {:>8} {:>10}",
        "snapshots",
        u.snapshots,
        human_size(u.snapshot_bytes)
    );
    println!(
        "{:<16} {:>8} {:>10}",
        "cache mounts",
        "-",
        human_size(u.cache_mount_bytes)
    );
    println!("{:<16} {:>8} {:>10}", "cache records", u.cache_records, "-");
    println!(
        "{:<16} {:>8} {:>10}",
        "temporary",
        "-",
        human_size(u.temporary_bytes)
    );
    println!(
        "reclaimable: {}",
        human_size(u.blob_bytes.saturating_sub(u.referenced_bytes) + u.leftover_bytes)
    );
    Ok(ExitCode::SUCCESS)
}
