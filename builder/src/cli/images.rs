//! `pallet import` and `pallet images`.

use crate::progress::human_size;
use clap::Args;
use frontend::lower::platform;
use graph::time::rfc3339;
use std::process::ExitCode;

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
}

pub fn import(args: ImportArgs, root: Option<std::path::PathBuf>) -> Result<ExitCode, String> {
    super::require_root("pallet import")?;
    let name = registry::Reference::parse_docker_ref(&args.tag)
        .map_err(|e| format!("error: invalid -t {}: {e}\n", args.tag))?
        .to_string();
    let plat = match &args.platform {
        Some(p) => platform::parse(p).map_err(|e| format!("error: invalid --platform: {e}\n"))?,
        None => platform::host(),
    };
    let root = super::open_root(root)?;
    let now = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0)
        });
    let mut input: Box<dyn std::io::Read> = if args.file == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(
            std::fs::File::open(&args.file)
                .map_err(|e| format!("error: cannot read {}: {e}\n", args.file))?,
        )
    };
    let image =
        crate::store::import_rootfs(&root, &mut input, &args.file, &name, &plat, &rfc3339(now))
            .map_err(|e| format!("error: importing {}: {e}\n", args.file))?;
    crate::store::close_and_settle(root);
    println!("{} {}", image.name, image.manifest_digest);
    Ok(ExitCode::SUCCESS)
}

pub fn list(root: Option<std::path::PathBuf>) -> Result<ExitCode, String> {
    let root = super::open_root(root)?;
    let images =
        crate::store::list_images(&root).map_err(|e| format!("error: listing images: {e}\n"))?;
    println!(
        "{:<50} {:<19} {:<22} {:>10}",
        "NAME", "MANIFEST", "CREATED", "SIZE"
    );
    for img in images {
        let size: u64 = img
            .layers
            .iter()
            .filter_map(|d| crate::store::layer_size(&root, d).ok())
            .sum();
        let digest = img.manifest_digest.trim_start_matches("sha256:");
        println!(
            "{:<50} {:<19} {:<22} {:>10}",
            img.name,
            &digest[..digest.len().min(12)],
            img.config.created.as_deref().unwrap_or("-"),
            human_size(size)
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn prune(all: bool, root: Option<std::path::PathBuf>) -> Result<ExitCode, String> {
    let root = super::open_root(root)?;
    let lock = match root
        .try_lock_for_prune()
        .map_err(|e| format!("error: {e}\n"))?
    {
        Some(l) => l,
        None => {
            eprintln!("pallet: a build is using this store; waiting for it to finish");
            root.lock_for_prune().map_err(|e| format!("error: {e}\n"))?
        }
    };
    let r = crate::store::prune(&root, all).map_err(|e| format!("error: pruning: {e}\n"))?;
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

pub fn du(root: Option<std::path::PathBuf>) -> Result<ExitCode, String> {
    let root = super::open_root(root)?;
    let u = crate::store::disk_usage(&root).map_err(|e| format!("error: {e}\n"))?;
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
        "reclaimable: {}",
        human_size(u.blob_bytes.saturating_sub(u.referenced_bytes))
    );
    Ok(ExitCode::SUCCESS)
}
