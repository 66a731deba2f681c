//! `pallet pull`, `pallet push`, `pallet login`, `pallet logout`, and the registry flags the
//! build shares (insecure registries, CAs, mirrors, the settings file).

use crate::progress::{stderr_printer_for, Mode, Summary};
use clap::Args;
use registry::{Client, Credential, DockerConfig, Reference, RegistryConfig};
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

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
    pub fn config(&self) -> Result<RegistryConfig, String> {
        let path = self.config.clone().or_else(RegistryConfig::default_path);
        let mut config = match &path {
            Some(p) => RegistryConfig::load(p).map_err(|e| format!("error: {e}\n"))?,
            None => RegistryConfig::default(),
        };
        config.insecure.extend(self.insecure.iter().cloned());
        config.mirrors.extend(self.mirrors.iter().cloned());
        for spec in &self.ca {
            let (host, file) = spec.split_once('=').ok_or_else(|| {
                format!("error: invalid --registry-ca \"{spec}\": write HOST[:PORT]=FILE\n")
            })?;
            config
                .ca_files
                .insert(host.to_string(), PathBuf::from(file));
        }
        Ok(config)
    }

    /// A client with these settings and docker's stored credentials.
    pub fn client(&self) -> Result<Client, String> {
        let credentials = DockerConfig::load(None).map_err(|e| format!("error: {e}\n"))?;
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

pub fn pull(args: PullArgs, root: Option<PathBuf>) -> Result<ExitCode, String> {
    super::require_root("pallet pull")?;
    let reference = parse_ref(&args.image)?;
    let platform = match &args.platform {
        Some(p) => frontend::lower::platform::parse(p)
            .map_err(|e| format!("error: invalid --platform: {e}\n"))?,
        None => frontend::lower::platform::host(),
    };
    let client = args.registry.client()?;
    let root = super::open_root(root)?;
    let lock = root.lock_for_build().map_err(|e| format!("error: {e}\n"))?;
    let printer = stderr_printer_for(progress_mode(&args.progress)?, Some("pull"));
    let started = std::time::Instant::now();
    let events = |e| printer.event(e);
    let resolver = crate::store::RegistryResolver {
        root: &root,
        client: Some(&client),
        pull: true,
        events: &events,
    };
    let result = resolver.image(&reference, &platform);
    drop(lock);
    crate::store::close_and_settle(root);
    printer.finish(&Summary {
        image: Some(reference.familiar()),
        digest: result.as_ref().ok().map(|i| i.manifest_digest.clone()),
        seconds: started.elapsed().as_secs_f64(),
        error: result.as_ref().err().map(|e| e.to_string()),
        command: Some("pull"),
        ..Summary::default()
    });
    let image = result.map_err(|e| format!("error: {e}\n"))?;
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

pub fn push(args: PushArgs, root: Option<PathBuf>) -> Result<ExitCode, String> {
    let name = parse_ref(&args.image)?;
    let target = match &args.destination {
        Some(d) => parse_ref(d)?,
        None => name.clone(),
    };
    let opts = crate::export::push::PushOptions {
        media_types: media_types(&args.format)?,
        compression: match &args.compression {
            Some(c) => crate::export::docker::Compression::Custom(
                codec::Compression::parse(c).map_err(|e| format!("error: --compression: {e}\n"))?,
            ),
            None => crate::export::docker::Compression::Gzip,
        },
    };
    let client = args.registry.client()?;
    let root = super::open_root(root)?;
    let _lock = root.lock_for_build().map_err(|e| format!("error: {e}\n"))?;
    let image = crate::store::get_image(&root, &crate::store::store_name(&name))
        .map_err(|e| format!("error: {e}\n"))?
        .ok_or_else(|| {
            format!(
                "error: no image {} in the local store\n  = help: `pallet images` lists them; build with -t or pull it first\n",
                name.familiar()
            )
        })?;
    let printer = stderr_printer_for(progress_mode(&args.progress)?, Some("push"));
    let started = std::time::Instant::now();
    let result = crate::export::push::push_stored(&root, &client, &image, &target, &opts, &|e| {
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
    let report = result.map_err(|e| format!("error: {e}\n"))?;
    println!("{}: {}", target.familiar(), report.digest);
    Ok(ExitCode::SUCCESS)
}

fn progress_mode(s: &str) -> Result<Mode, String> {
    Mode::parse(s).map_err(|e| format!("error: {e}\n"))
}

/// `--format` / `oci-mediatypes`.
pub fn media_types(format: &str) -> Result<crate::export::docker::MediaTypes, String> {
    match format {
        "oci" => Ok(crate::export::docker::MediaTypes::Oci),
        "docker" => Ok(crate::export::docker::MediaTypes::Docker),
        other => Err(format!(
            "error: invalid --format \"{other}\": use oci or docker\n"
        )),
    }
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

pub fn login(args: LoginArgs) -> Result<ExitCode, String> {
    let server = registry_host(args.server.as_deref());
    let username = match args.username {
        Some(u) => u,
        None => prompt("Username: ")?,
    };
    let password = if args.password_stdin {
        if args.password.is_some() {
            return Err("error: --password and --password-stdin are mutually exclusive\n".into());
        }
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| format!("error: reading the password from standard input: {e}\n"))?;
        s.trim_end_matches(['\n', '\r']).to_string()
    } else if let Some(p) = args.password {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
        p
    } else {
        prompt_hidden("Password: ")?
    };
    if username.is_empty() || password.is_empty() {
        return Err("error: a username and a password are needed\n".into());
    }
    let credential = Credential {
        username,
        secret: password,
    };
    let client = args.registry.client()?;
    client
        .check_login(&server, Some(&credential))
        .map_err(|e| format!("error: login to {server} failed: {e}\n"))?;
    let mut config = DockerConfig::load(None).map_err(|e| format!("error: {e}\n"))?;
    config
        .store(&server, &credential)
        .map_err(|e| format!("error: {e}\n"))?;
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

pub fn logout(args: LogoutArgs) -> Result<ExitCode, String> {
    let server = registry_host(args.server.as_deref());
    let mut config = DockerConfig::load(None).map_err(|e| format!("error: {e}\n"))?;
    if config.erase(&server).map_err(|e| format!("error: {e}\n"))? {
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

fn prompt(label: &str) -> Result<String, String> {
    eprint!("{label}");
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| format!("error: reading standard input: {e}\n"))?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// Reads a line with the terminal's echo off (when standard input is a terminal).
fn prompt_hidden(label: &str) -> Result<String, String> {
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

fn parse_ref(s: &str) -> Result<Reference, String> {
    Reference::parse_docker_ref(s).map_err(|e| format!("error: {e}\n"))
}
