//! `pallet inspect` (an image's config, history and layer sizes, as text or JSON) and
//! `pallet tag` (another name for an image record). Both read the local store only.

use super::error::{CliError, Context};
use super::history;
use super::open_root;
use super::stored::{find, normalize};
use crate::progress::human_size;
use crate::store::{image_platform, layer_size, put_image, StoredImage};
use clap::{Args, ValueEnum};
use graph::image::{HealthConfig, Image};
use std::cmp::Reverse;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// The image (name[:tag])
    pub image: String,
    /// Output format: text for people, json for scripts (the config plus layers with sizes)
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// Also list the layers largest first, with the instruction that made each (dive's summary)
    #[arg(long)]
    pub largest: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Args, Debug)]
pub struct TagArgs {
    /// The existing image
    pub source: String,
    /// The new name
    pub target: String,
}

/// A layer and the size of its stored diff (None: the blob is missing).
struct Layer {
    diff_id: String,
    size: Option<u64>,
}

pub fn inspect(args: InspectArgs, root: Option<PathBuf>) -> Result<ExitCode, CliError> {
    let name = normalize(&args.image)?;
    let root = open_root(root)?;
    let image = find(&root, &name)?;
    let layers: Vec<Layer> = image
        .layers
        .iter()
        .map(|d| Layer {
            diff_id: d.clone(),
            size: layer_size(&root, d).ok(),
        })
        .collect();
    let out = match args.format {
        Format::Text => text(&image, &layers),
        Format::Json => json(&image, &layers),
    };
    print!("{out}");
    if args.largest && args.format == Format::Text {
        let mut rows = history::rows(&root, &image);
        rows.retain(|r| r.diff_id.is_some());
        rows.sort_by_key(|r| Reverse(r.size.unwrap_or(0)));
        print!("\nLayers by size:\n{}", history::table(&rows, false, now()));
    }
    Ok(ExitCode::SUCCESS)
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

pub fn tag(args: TagArgs, root: Option<PathBuf>) -> Result<ExitCode, CliError> {
    let source = normalize(&args.source)?;
    let target = normalize(&args.target)?;
    let root = open_root(root)?;
    let mut image = find(&root, &source)?;
    image.name = target;
    put_image(&root, &image).with_context(|| format!("tagging {source} as {}", image.name))?;
    Ok(ExitCode::SUCCESS)
}

fn json(image: &StoredImage, layers: &[Layer]) -> String {
    let total: u64 = layers.iter().filter_map(|l| l.size).sum();
    let value = serde_json::json!({
        "name": image.name,
        "manifest_digest": image.manifest_digest,
        "config_digest": image.config_digest,
        "config": image.config,
        "layers": layers
            .iter()
            .map(|l| serde_json::json!({ "diff_id": l.diff_id, "size": l.size }))
            .collect::<Vec<_>>(),
        "size": total,
    });
    let mut value = value;
    // A multi-platform image: its index and each platform's manifest.
    if let Some(index) = &image.index {
        value["index_digest"] = index.digest.clone().into();
        value["platforms"] = index
            .children
            .iter()
            .map(|c| {
                serde_json::json!({
                    "platform": image_platform(c).to_string(),
                    "manifest_digest": c.manifest_digest,
                    "config_digest": c.config_digest,
                })
            })
            .collect::<Vec<_>>()
            .into();
    }
    // Attestations (`--provenance`): each predicate, by platform for a multi-platform image.
    let attested: Vec<serde_json::Value> = attested(image)
        .flat_map(|(platform, c)| {
            c.attestations.iter().map(move |a| {
                serde_json::json!({
                    "platform": platform,
                    "predicate_type": a.predicate_type,
                    "predicate": serde_json::from_str::<serde_json::Value>(&a.predicate)
                        .unwrap_or_else(|_| a.predicate.clone().into()),
                })
            })
        })
        .collect();
    if !attested.is_empty() {
        value["attestations"] = attested.into();
    }
    let mut text = serde_json::to_string_pretty(&value).expect("JSON values serialize");
    text.push('\n');
    text
}

/// Each image of `image` (itself, or each platform's) with its platform.
fn attested(image: &StoredImage) -> impl Iterator<Item = (String, &StoredImage)> {
    let images: Vec<&StoredImage> = match &image.index {
        Some(index) => index.children.iter().collect(),
        None => vec![image],
    };
    images
        .into_iter()
        .map(|c| (image_platform(c).to_string(), c))
}

fn text(image: &StoredImage, layers: &[Layer]) -> String {
    let img: &Image = &image.config;
    let c = &img.config;
    let mut out = String::new();
    let o = &mut out;
    let dash = |s: &str| {
        if s.is_empty() {
            "-".to_string()
        } else {
            s.to_string()
        }
    };
    field(o, "Name", &image.name);
    if let Some(index) = &image.index {
        field(o, "Index", &index.digest);
        for c in &index.children {
            field(
                o,
                "Platform",
                &format!("{} {}", image_platform(c), c.manifest_digest),
            );
        }
    }
    for (platform, c) in attested(image) {
        for a in &c.attestations {
            field(
                o,
                "Attestation",
                &format!("{platform} {}", a.predicate_type),
            );
        }
    }
    field(o, "Manifest", &image.manifest_digest);
    field(o, "Config", &image.config_digest);
    field(o, "Created", &dash(img.created.as_deref().unwrap_or("")));
    let mut platform = format!("{}/{}", img.os, img.architecture);
    if let Some(v) = img.variant.as_deref().filter(|v| !v.is_empty()) {
        platform.push('/');
        platform.push_str(v);
    }
    field(o, "Platform", &platform);
    list(o, "Env", &c.env);
    field(o, "Entrypoint", &json_list(c.entrypoint.as_deref()));
    field(o, "Cmd", &json_list(c.cmd.as_deref()));
    field(o, "WorkingDir", &dash(&c.working_dir));
    field(o, "User", &dash(&c.user));
    let ports: Vec<String> = c.exposed_ports.keys().cloned().collect();
    field(o, "ExposedPorts", &dash(&ports.join(" ")));
    let labels: Vec<String> = c.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    list(o, "Labels", &labels);
    field(o, "Healthcheck", &healthcheck(c.healthcheck.as_ref()));
    // The rest only when set.
    if !c.volumes.is_empty() {
        let volumes: Vec<&str> = c.volumes.keys().map(String::as_str).collect();
        field(o, "Volumes", &volumes.join(" "));
    }
    if !c.stop_signal.is_empty() {
        field(o, "StopSignal", &c.stop_signal);
    }
    if !c.shell.is_empty() {
        field(o, "Shell", &json_list(Some(&c.shell)));
    }
    if !c.on_build.is_empty() {
        list(o, "OnBuild", &c.on_build);
    }

    o.push_str("\nHistory:\n");
    let row = |o: &mut String, size: &str, layer: &str, created: &str, by: &str| {
        let _ = writeln!(o, "  {size:>10}  {layer:<12}  {created:<25}  {by}");
    };
    row(o, "SIZE", "LAYER", "CREATED", "CREATED BY");
    let mut next = layers.iter();
    for h in &img.history {
        let created = h.created.as_deref().unwrap_or("-");
        let by = if h.created_by.is_empty() {
            "-"
        } else {
            h.created_by.as_str()
        };
        if h.empty_layer {
            row(o, "-", "-", created, by);
            continue;
        }
        match next.next() {
            Some(l) => row(o, &size(l.size), short(&l.diff_id), created, by),
            None => row(o, "?", "(no layer)", created, by),
        }
    }
    for l in next {
        row(
            o,
            &size(l.size),
            short(&l.diff_id),
            "-",
            "(no history entry)",
        );
    }
    let total: u64 = layers.iter().filter_map(|l| l.size).sum();
    let missing = layers.iter().filter(|l| l.size.is_none()).count();
    let plural = if layers.len() == 1 { "" } else { "s" };
    let _ = write!(
        o,
        "\n{:<14}{} in {} layer{plural}",
        "Size:",
        human_size(total),
        layers.len()
    );
    if missing > 0 {
        let _ = write!(o, " ({missing} layer blob(s) missing from the store)");
    }
    o.push('\n');
    out
}

/// `Label:       value`; an empty label continues the previous field.
fn field(out: &mut String, label: &str, value: &str) {
    let label = if label.is_empty() {
        String::new()
    } else {
        format!("{label}:")
    };
    let _ = writeln!(out, "{label:<14}{value}");
}

/// One value per line, the first after the label, the rest aligned under it.
fn list(out: &mut String, label: &str, values: &[String]) {
    match values.split_first() {
        None => field(out, label, "-"),
        Some((first, rest)) => {
            field(out, label, first);
            for v in rest {
                field(out, "", v);
            }
        }
    }
}

fn json_list(values: Option<&[String]>) -> String {
    match values {
        None | Some([]) => "-".into(),
        Some(v) => serde_json::to_string(v).expect("strings serialize"),
    }
}

fn healthcheck(h: Option<&HealthConfig>) -> String {
    let Some(h) = h else {
        return "-".into();
    };
    let mut s = match h.test.split_first() {
        None => return "-".into(),
        Some((kind, _)) if kind == "NONE" => return "NONE (disabled)".into(),
        Some((kind, args)) if kind == "CMD-SHELL" => format!("CMD-SHELL {}", args.join(" ")),
        Some((kind, args)) if kind == "CMD" => format!("CMD {}", json_list(Some(args))),
        Some(_) => json_list(Some(&h.test)),
    };
    for (name, ns) in [
        ("interval", h.interval),
        ("timeout", h.timeout),
        ("start-period", h.start_period),
        ("start-interval", h.start_interval),
    ] {
        if ns != 0 {
            let _ = write!(s, " --{name}={}", seconds(ns));
        }
    }
    if h.retries != 0 {
        let _ = write!(s, " --retries={}", h.retries);
    }
    s
}

/// Nanoseconds as docker prints durations (`30s`, `1.5s`, `500ms`).
fn seconds(ns: i64) -> String {
    if ns % 1_000_000_000 == 0 {
        format!("{}s", ns / 1_000_000_000)
    } else if ns % 1_000_000 == 0 && ns < 1_000_000_000 {
        format!("{}ms", ns / 1_000_000)
    } else {
        format!("{}s", ns as f64 / 1e9)
    }
}

fn size(n: Option<u64>) -> String {
    n.map_or_else(|| "missing".into(), human_size)
}

fn short(diff_id: &str) -> &str {
    let hex = diff_id.strip_prefix("sha256:").unwrap_or(diff_id);
    &hex[..hex.len().min(12)]
}
