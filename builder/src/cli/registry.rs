//! `pallet pull`, `pallet push`, `pallet login`, `pallet logout`, and the registry flags the
//! build shares (insecure registries, CAs, mirrors, the settings file).

use super::error::{CliError, Context};
use super::{open_root, require_root};
use crate::export::docker::{Compression, MediaTypes};
use crate::export::push::{push_index, PushOptions};
use crate::progress::{stderr_printer_for, Mode, Summary};
use crate::store::{close_and_settle, get_image, store_name, RegistryResolver};
use clap::Args;
use frontend::lower::platform;
use registry::{Client, Credential, DockerConfig, Reference, RegistryConfig};
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

/// How to reach registries (flags override the settings file).
#[derive(Args, Debug, Clone, Default)]
pub struct RegistryArgs {
    /// A registry that may use plain HTTP (HOST[:PORT]); localhost always may
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]")]
    pub insecure: Vec<String>,
    /// A registry's CA certificate, besides /etc/docker/certs.d/HOST[:PORT]/*.crt
    #[arg(long = "registry-ca", value_name = "HOST[:PORT]=FILE")]
    pub ca: Vec<String>,
    /// A mirror for docker.io (URL), tried before docker.io
    #[arg(long = "registry-mirror", value_name = "URL")]
    pub mirrors: Vec<String>,
    /// Registry settings file (default: $PALLET_CONFIG, ~/.config/pallet/config.json,
    /// /etc/pallet/config.json)
    #[arg(long = "registry-config", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

impl RegistryArgs {
    /// The settings file (if any) amended by the flags.
    pub fn config(&self) -> Result<RegistryConfig, CliError> {
        let path = self.config.clone().or_else(RegistryConfig::default_path);
        let config = match &path {
            Some(p) => RegistryConfig::load(p)?,
            None => RegistryConfig::default(),
        };
        // PALLET_REGISTRY_IDLE_TIMEOUT and friends win over the file.
        let mut config = config
            .amend_from_env(&|name| std::env::var(name).ok())
            .map_err(CliError::msg)?;
        config.insecure.extend(self.insecure.iter().cloned());
        config.mirrors.extend(self.mirrors.iter().cloned());
        for spec in &self.ca {
            let (host, file) = spec.split_once('=').ok_or_else(|| {
                CliError::msg(format!(
                    "invalid --registry-ca \"{spec}\": write HOST[:PORT]=FILE"
                ))
            })?;
            config
                .ca_files
                .insert(host.to_string(), PathBuf::from(file));
        }
        Ok(config)
    }

    /// A client with these settings and docker's stored credentials.
    pub fn client(&self) -> Result<Client, CliError> {
        let credentials = DockerConfig::load(None)?;
        Ok(Client::new(self.config()?, credentials))
    }
}

#[derive(Args, Debug)]
pub struct PullArgs {
    /// Image to pull (NAME[:TAG] or NAME@DIGEST)
    pub image: String,
    /// Platform to pull from a multi-platform image (os/arch[/variant]); default: the host's
    #[arg(long)]
    pub platform: Option<String>,
    /// Progress output: auto, tty, plain, json
    #[arg(long, default_value = "auto")]
    pub progress: String,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

pub fn pull(args: PullArgs, root: Option<PathBuf>) -> Result<ExitCode, CliError> {
    require_root("pallet pull")?;
    let reference = Reference::parse_docker_ref(&args.image)?;
    let platform = match &args.platform {
        Some(p) => platform::parse(p).context("invalid --platform")?,
        None => platform::host(),
    };
    let client = args.registry.client()?;
    let root = open_root(root)?;
    let lock = root.lock_for_build()?;
    let printer = stderr_printer_for(Mode::parse(&args.progress)?, Some("pull"));
    let started = Instant::now();
    let events = |e| printer.event(e);
    let resolver = RegistryResolver {
        root: &root,
        client: Some(&client),
        pull: true,
        events: &events,
        lazy: None,
    };
    let result = resolver.image(&reference, &platform);
    drop(lock);
    close_and_settle(root);
    printer.finish(&Summary {
        image: Some(reference.familiar()),
        digest: result.as_ref().ok().map(|i| i.manifest_digest.clone()),
        seconds: started.elapsed().as_secs_f64(),
        error: result.as_ref().err().map(|e| e.to_string()),
        command: Some("pull"),
        ..Summary::default()
    });
    let image = result?;
    println!(
        "{}: {}",
        reference.familiar(),
        image
            .repo_digest
            .as_deref()
            .unwrap_or(&image.manifest_digest)
    );
    Ok(ExitCode::SUCCESS)
}

#[derive(Args, Debug)]
pub struct PushArgs {
    /// Image in the local store
    pub image: String,
    /// Where to push it (default: the image's own name)
    pub destination: Option<String>,
    /// Manifest and layer media types for a built image: oci (default) or docker
    #[arg(long, default_value = "oci", value_name = "oci|docker")]
    pub format: String,
    /// Layer compression for a built image: gzip (default), zstd, uncompressed, with ,level=N
    #[arg(long)]
    pub compression: Option<String>,
    /// Progress output: auto, tty, plain, json
    #[arg(long, default_value = "auto")]
    pub progress: String,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

pub fn push(args: PushArgs, root: Option<PathBuf>) -> Result<ExitCode, CliError> {
    let name = Reference::parse_docker_ref(&args.image)?;
    let target = match &args.destination {
        Some(d) => Reference::parse_docker_ref(d)?,
        None => name.clone(),
    };
    let opts = PushOptions {
        media_types: media_types(&args.format)?,
        compression: match &args.compression {
            Some(c) => compression_flag(c)?,
            None => Compression::Gzip,
        },
        annotations: Default::default(),
        subject_names: Vec::new(),
    };
    let client = args.registry.client()?;
    let root = open_root(root)?;
    let _lock = root.lock_for_build()?;
    let image = get_image(&root, &store_name(&name))?.ok_or_else(|| {
        CliError::msg(format!("no image {} in the local store", name.familiar()))
            .with_help("`pallet images` lists them; build with -t or pull it first")
    })?;
    let printer = stderr_printer_for(Mode::parse(&args.progress)?, Some("push"));
    let started = Instant::now();
    // A multi-platform image goes up as its platforms, then its index.
    let result = push_index(&root, &client, &image, &target, &opts, &|e| {
        printer.event(e)
    });
    printer.finish(&Summary {
        image: Some(target.familiar()),
        digest: result.as_ref().ok().map(|r| r.digest.clone()),
        seconds: started.elapsed().as_secs_f64(),
        error: result.as_ref().err().map(|e| e.to_string()),
        command: Some("push"),
        ..Summary::default()
    });
    let report = result?;
    println!("{}: {}", target.familiar(), report.digest);
    Ok(ExitCode::SUCCESS)
}

/// `--format` / `--push-format`: the manifest and layer media types.
pub fn media_types(format: &str) -> Result<MediaTypes, CliError> {
    match format {
        "oci" => Ok(MediaTypes::Oci),
        "docker" => Ok(MediaTypes::Docker),
        other => Err(CliError::msg(format!(
            "invalid --format \"{other}\": use oci or docker"
        ))),
    }
}

/// `--compression ALGORITHM[,level=N]` of `build` and `push`.
pub fn compression_flag(spec: &str) -> Result<Compression, CliError> {
    let codec = codec::Compression::parse(spec).context("--compression")?;
    Ok(Compression::Custom(codec))
}

#[derive(Args, Debug)]
pub struct LoginArgs {
    /// Registry host (default: docker.io)
    pub server: Option<String>,
    #[arg(short = 'u', long)]
    pub username: Option<String>,
    /// Password (prefer --password-stdin: a flag shows in the process list)
    #[arg(short = 'p', long)]
    pub password: Option<String>,
    /// Read the password from standard input
    #[arg(long)]
    pub password_stdin: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

pub fn login(args: LoginArgs) -> Result<ExitCode, CliError> {
    let server = registry_host(args.server.as_deref());
    let username = match args.username {
        Some(u) => u,
        None => prompt("Username: ")?,
    };
    let password = if args.password_stdin {
        if args.password.is_some() {
            return Err(CliError::msg(
                "--password and --password-stdin are mutually exclusive",
            ));
        }
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("reading the password from standard input")?;
        s.trim_end_matches(['\n', '\r']).to_string()
    } else if let Some(p) = args.password {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
        p
    } else {
        prompt_hidden("Password: ")?
    };
    if username.is_empty() || password.is_empty() {
        return Err(CliError::msg("a username and a password are needed"));
    }
    let credential = Credential {
        username,
        secret: password,
    };
    let client = args.registry.client()?;
    client
        .check_login(&server, Some(&credential))
        .with_context(|| format!("login to {server} failed"))?;
    let mut config = DockerConfig::load(None)?;
    config.store(&server, &credential)?;
    eprintln!(
        "Login Succeeded (credentials saved for {server} via {})",
        config.path().display()
    );
    Ok(ExitCode::SUCCESS)
}

#[derive(Args, Debug)]
pub struct LogoutArgs {
    /// Registry host (default: docker.io)
    pub server: Option<String>,
}

pub fn logout(args: LogoutArgs) -> Result<ExitCode, CliError> {
    let server = registry_host(args.server.as_deref());
    let mut config = DockerConfig::load(None)?;
    if config.erase(&server)? {
        eprintln!("Removing login credentials for {server}");
    } else {
        eprintln!("Not logged in to {server}");
    }
    Ok(ExitCode::SUCCESS)
}

/// docker's server argument: a host, maybe written as a URL; docker.io's aliases folded.
fn registry_host(arg: Option<&str>) -> String {
    let raw = arg.unwrap_or("docker.io");
    let host = raw
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or(raw);
    match host {
        "index.docker.io" | "registry-1.docker.io" | "" => "docker.io".to_string(),
        h => h.to_string(),
    }
}

fn prompt(label: &str) -> Result<String, CliError> {
    eprint!("{label}");
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("reading standard input")?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// Reads a line with the terminal's echo off (when standard input is a terminal).
fn prompt_hidden(label: &str) -> Result<String, CliError> {
    // SAFETY: termios calls on fd 0 with a zeroed struct that tcgetattr fills.
    unsafe {
        let mut saved: libc::termios = std::mem::zeroed();
        if libc::isatty(0) == 0 || libc::tcgetattr(0, &mut saved) != 0 {
            return prompt(label);
        }
        let mut quiet = saved;
        quiet.c_lflag &= !libc::ECHO;
        libc::tcsetattr(0, libc::TCSANOW, &quiet);
        let line = prompt(label);
        libc::tcsetattr(0, libc::TCSANOW, &saved);
        eprintln!();
        line
    }
}
